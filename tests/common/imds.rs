//! A stand-in for the EC2 Instance Metadata Service on loopback, speaking IMDSv2 as AWS
//! documents it, for the credential chain's tests:
//!
//! - `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` (1 to 21600)
//!   opens a session and answers its token, with the TTL granted in the same header
//!   of the answer; without the header it is a 400 ("How
//!   Instance Metadata Service Version 2 works",
//!   <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-v2-how-it-works.html>).
//! - Every `GET` carries the token in `X-aws-ec2-metadata-token`; without it (IMDSv2
//!   required) or with another one, 401.
//! - `GET /latest/meta-data/iam/security-credentials/` answers the role's name, and
//!   `GET /latest/meta-data/iam/security-credentials/<role>` its credentials as JSON
//!   (`Code`, `LastUpdated`, `Type`, `AccessKeyId`, `SecretAccessKey`, `Token`,
//!   `Expiration`) ("Retrieve security credentials from instance metadata",
//!   <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-security-credentials.html>).
//!
//! It is also a container credentials endpoint (ECS task roles, EKS Pod Identity), at
//! [`Imds::container_uri`] for `AWS_CONTAINER_CREDENTIALS_FULL_URI`: a `GET` with
//! `Authorization: <AWS_CONTAINER_AUTHORIZATION_TOKEN>` answers [`CONTAINER_ACCESS_KEY`]'s
//! credentials, the same JSON without `Code` ("Container credential provider",
//! <https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html>);
//! without it, 401.
//!
//! Every request is logged. [`Imds::silent`] accepts connections and never answers: a
//! metadata address that does not respond, as off EC2.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const ROLE: &str = "redis-failover-agent-role";
pub const ACCESS_KEY: &str = "ASIAIMDSEXAMPLE00001";
pub const SECRET_KEY: &str = "imds-secret-key-never-printed";
pub const SESSION_TOKEN: &str = "imds-session-token-never-printed";
const IMDS_TOKEN: &str = "imdsv2-token-0123456789";
pub const CONTAINER_ACCESS_KEY: &str = "ASIACONTAINER0000001";
pub const CONTAINER_AUTHORIZATION: &str = "container-authorization-never-printed";
const CONTAINER_PATH: &str = "/v1/credentials";

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The `X-aws-ec2-metadata-token-ttl-seconds` header, as given.
    pub ttl: Option<String>,
    /// The `X-aws-ec2-metadata-token` header was the token this fake issued.
    pub with_token: bool,
    /// The `Authorization` header was [`CONTAINER_AUTHORIZATION`].
    pub authorized: bool,
    pub status: u16,
}

pub struct Imds {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Imds {
    /// Serves the role [`ROLE`] with [`ACCESS_KEY`], [`SECRET_KEY`] and
    /// [`SESSION_TOKEN`], valid for an hour.
    pub fn start() -> Imds {
        Self::spawn(true)
    }

    /// Accepts connections and reads requests, answers nothing.
    pub fn silent() -> Imds {
        Self::spawn(false)
    }

    fn spawn(answers: bool) -> Imds {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the metadata fake");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        // The thread ends with the test process; a test holds one fake at most.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(stream, answers, &log));
            }
        });
        Imds { port, seen }
    }

    /// What `AWS_EC2_METADATA_SERVICE_ENDPOINT` should say.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// What `AWS_CONTAINER_CREDENTIALS_FULL_URI` should say.
    pub fn container_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CONTAINER_PATH}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(mut stream: TcpStream, answers: bool, log: &Mutex<Vec<Seen>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(head) = read_head(&mut stream) else {
        return;
    };
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or_default().to_owned();
    let ttl = header(&head, "x-aws-ec2-metadata-token-ttl-seconds").map(str::to_owned);
    let with_token = header(&head, "x-aws-ec2-metadata-token") == Some(IMDS_TOKEN);
    let authorized = header(&head, "authorization") == Some(CONTAINER_AUTHORIZATION);
    if !answers {
        log.lock().unwrap().push(Seen {
            method,
            path,
            ttl,
            with_token,
            authorized,
            status: 0,
        });
        // Hold the connection open, silent, until the client gives up.
        let _ = stream.read(&mut [0u8; 1]);
        return;
    }
    let (status, body) = answer(&method, &path, ttl.as_deref(), with_token, authorized);
    let granted = match (status, &ttl) {
        (200, Some(ttl)) if method == "PUT" => {
            format!("X-aws-ec2-metadata-token-ttl-seconds: {ttl}\r\n")
        }
        _ => String::new(),
    };
    log.lock().unwrap().push(Seen {
        method,
        path,
        ttl,
        with_token,
        authorized,
        status,
    });
    let reply = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\n{granted}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

fn answer(
    method: &str,
    path: &str,
    ttl: Option<&str>,
    with_token: bool,
    authorized: bool,
) -> (u16, String) {
    const CREDENTIALS: &str = "/latest/meta-data/iam/security-credentials/";
    match (method, path) {
        ("GET", CONTAINER_PATH) if authorized => (200, credentials(CONTAINER_ACCESS_KEY, false)),
        ("GET", CONTAINER_PATH) => (401, String::new()),
        ("PUT", "/latest/api/token") => match ttl.and_then(|t| t.parse::<u32>().ok()) {
            Some(1..=21600) => (200, IMDS_TOKEN.to_owned()),
            _ => (400, String::new()),
        },
        ("GET", _) if !with_token => (401, String::new()),
        ("GET", CREDENTIALS) => (200, ROLE.to_owned()),
        ("GET", p) if p.strip_prefix(CREDENTIALS) == Some(ROLE) => {
            (200, credentials(ACCESS_KEY, true))
        }
        _ => (404, String::new()),
    }
}

/// A role's credentials under `access_key`, as the metadata service (`with_code`) or
/// the container endpoint words them; they expire in an hour.
fn credentials(access_key: &str, with_code: bool) -> String {
    // Whole seconds, as the metadata service writes them.
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let now = UNIX_EPOCH + Duration::from_secs(secs);
    let iso8601 = redis_failover_agent::model::rfc3339::format;
    let mut json = serde_json::json!({
        "AccessKeyId": access_key,
        "SecretAccessKey": SECRET_KEY,
        "Token": SESSION_TOKEN,
        "Expiration": iso8601(now + Duration::from_secs(3600)),
    });
    if with_code {
        json["Code"] = "Success".into();
        json["LastUpdated"] = iso8601(now).into();
        json["Type"] = "AWS-HMAC".into();
    }
    json.to_string()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    }
}

fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// A request header's value, by name in any case.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
