//! A fault-injecting HTTP/1.1 proxy for tests: it forwards every request to a server on
//! 127.0.0.1 and logs it, and, for requests that match a rule, answers by itself,
//! rewrites the server's answer, waits, or hangs up instead, a set number of times.
//! Used in front of `moto_server`, which answers every Route53 change INSYNC at once and
//! never throttles.
//!
//! One connection per exchange: every answer carries `Connection: close`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What to do with a matching request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer with this status and body; the server never sees the request.
    Respond {
        status: u16,
        content_type: String,
        body: String,
    },
    /// Forward, then replace every `from` by `to` in the server's answer.
    Rewrite { from: String, to: String },
    /// Wait, then forward.
    Delay(Duration),
    /// Close the connection without an answer.
    HangUp,
}

impl Action {
    /// An AWS REST-XML error (the shape Route53 sends), e.g. `400`, `Throttling`.
    pub fn aws_error(status: u16, code: &str, message: &str) -> Action {
        Action::Respond {
            status,
            content_type: "text/xml".into(),
            body: format!(
                "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
                 <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>faulty-http-0001</RequestId></ErrorResponse>"
            ),
        }
    }
}

/// One request as the proxy saw it, and what became of it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The request line and headers, as received (e.g. to see who signed it).
    pub head: String,
    pub body: String,
    /// The status sent back; 0 when the proxy hung up or the server was unreachable.
    pub status: u16,
    /// The rule applied, if any.
    pub fault: Option<String>,
}

struct Rule {
    method: String,
    path_contains: String,
    remaining: u32,
    action: Action,
}

struct Shared {
    upstream: u16,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Exchange>>,
    stop: AtomicBool,
}

pub struct FaultyHttp {
    pub port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultyHttp {
    /// Listens on a free loopback port and forwards to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> FaultyHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream,
            rules: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept_shared = shared.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = accept_shared.clone();
                std::thread::spawn(move || serve(&shared, stream));
            }
        });
        FaultyHttp {
            port,
            shared,
            accept: Some(accept),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The next `times` requests with `method` whose path contains `path_contains` get
    /// `action`. Rules are tried in the order they were added.
    pub fn inject(&self, method: &str, path_contains: &str, times: u32, action: Action) {
        self.shared.rules.lock().unwrap().push(Rule {
            method: method.to_ascii_uppercase(),
            path_contains: path_contains.to_owned(),
            remaining: times,
            action,
        });
    }

    /// Drops every rule that has not been used up.
    pub fn clear_faults(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    pub fn log(&self) -> Vec<Exchange> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Requests seen with `method` whose path contains `path_contains`.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.log()
            .iter()
            .filter(|e| e.method.eq_ignore_ascii_case(method) && e.path.contains(path_contains))
            .count()
    }
}

impl Drop for FaultyHttp {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn serve(shared: &Shared, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let Some((head, body)) = read_request(&mut client) else {
        return;
    };
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or_default().to_owned();
    let action = {
        let mut rules = shared.rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|r| r.remaining > 0 && r.method == method && path.contains(&r.path_contains))
            .map(|r| {
                r.remaining -= 1;
                r.action.clone()
            })
    };
    let fault = action.as_ref().map(|a| format!("{a:?}"));
    let (status, answer) = match action {
        Some(Action::Respond {
            status,
            content_type,
            body,
        }) => (
            status,
            Some(response(status, &content_type, body.as_bytes())),
        ),
        Some(Action::HangUp) => (0, None),
        Some(Action::Delay(wait)) => {
            std::thread::sleep(wait);
            forward(shared.upstream, &head, &body, None)
        }
        Some(Action::Rewrite { from, to }) => {
            forward(shared.upstream, &head, &body, Some((&from, &to)))
        }
        None => forward(shared.upstream, &head, &body, None),
    };
    shared.log.lock().unwrap().push(Exchange {
        method,
        path,
        head: head.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
        fault,
    });
    if let Some(answer) = answer {
        let _ = client.write_all(&answer);
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// The request head (up to the blank line) and its body (Content-Length or chunked).
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let (head, rest) = read_head(stream)?;
    let body = read_body(stream, &head, rest, false)?;
    Some((head, body))
}

fn read_head(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Some((head, buf[end + 4..].to_vec()));
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The body after `head`: by Content-Length, chunked, or (for an answer) until EOF.
fn read_body(
    stream: &mut TcpStream,
    head: &str,
    mut body: Vec<u8>,
    to_eof: bool,
) -> Option<Vec<u8>> {
    let length = header(head, "content-length").and_then(|v| v.parse::<usize>().ok());
    let chunked =
        header(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut chunk = [0u8; 8192];
    loop {
        let done = match length {
            Some(n) => body.len() >= n,
            None if chunked => find(&body, b"0\r\n\r\n").is_some(),
            None => !to_eof,
        };
        if done {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(_) if to_eof => break,
            Err(_) => return None,
        }
    }
    if let Some(n) = length {
        body.truncate(n);
    } else if chunked {
        body = dechunk(&body);
    }
    Some(body)
}

/// Sends the request to the server with `Connection: close`, reads the whole answer,
/// applies `rewrite` to its body, and returns (status, the answer to relay).
fn forward(
    upstream: u16,
    head: &str,
    body: &[u8],
    rewrite: Option<(&str, &str)>,
) -> (u16, Option<Vec<u8>>) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return (0, None);
    };
    let _ = server.set_read_timeout(Some(Duration::from_secs(30)));
    let mut request = without_headers(head, &["connection", "content-length", "transfer-encoding"]);
    request.push_str(&format!(
        "\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    if server
        .write_all(request.as_bytes())
        .and_then(|_| server.write_all(body))
        .is_err()
    {
        return (0, None);
    }
    let Some((answer_head, rest)) = read_head(&mut server) else {
        return (0, None);
    };
    let Some(mut answer_body) = read_body(&mut server, &answer_head, rest, true) else {
        return (0, None);
    };
    if let Some((from, to)) = rewrite {
        answer_body = String::from_utf8_lossy(&answer_body)
            .replace(from, to)
            .into_bytes();
    }
    let status = answer_head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut out = without_headers(
        &answer_head,
        &["connection", "content-length", "transfer-encoding"],
    );
    out.push_str(&format!(
        "\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer_body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(&answer_body);
    (status, Some(out))
}

fn response(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `head` without the named headers (no trailing line break).
fn without_headers(head: &str, names: &[&str]) -> String {
    head.split("\r\n")
        .enumerate()
        .filter(|(i, line)| {
            *i == 0
                || !line
                    .split_once(':')
                    .is_some_and(|(k, _)| names.iter().any(|n| k.trim().eq_ignore_ascii_case(n)))
        })
        .map(|(_, line)| line)
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(body, b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end]).unwrap_or("");
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        let start = line_end + 2;
        if n == 0 || body.len() < start + n {
            break;
        }
        out.extend_from_slice(&body[start..start + n]);
        body = &body[(start + n + 2).min(body.len())..];
    }
    out
}
