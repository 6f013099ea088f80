//! A fake Redis on loopback that speaks just enough RESP to be scripted: it reads each
//! command (an array of bulk strings) and writes whatever the test says, broken replies
//! included. The agent's connection sends PING and INFO ALL (no HELLO, no CLIENT
//! SETINFO, no AUTH without a password), so a script needs little more than those.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// What to answer to one command.
pub enum Answer {
    /// These exact bytes.
    Raw(Vec<u8>),
    /// These bytes, then filler without end, as fast as the peer reads, until the
    /// connection breaks: a reply that declares a huge size and streams it.
    Endless(Vec<u8>),
}

type Script = dyn Fn(&[String]) -> Answer + Send + Sync;

pub struct FakeRedis {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl FakeRedis {
    /// Serves every connection with `script` (command name upper-cased, then its
    /// arguments, lossily as text).
    pub fn start(script: impl Fn(&[String]) -> Answer + Send + Sync + 'static) -> FakeRedis {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let stopping = Arc::clone(&stop);
        thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let script = Arc::clone(&script);
                        let stop = Arc::clone(&stopping);
                        thread::spawn(move || serve(stream, &*script, &stop));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeRedis { port, stop }
    }

    /// A server that answers PING with PONG and INFO with `info` (other commands `+OK`).
    pub fn answering_info(info: Answer) -> FakeRedis {
        let info = match info {
            Answer::Raw(bytes) => (bytes, false),
            Answer::Endless(bytes) => (bytes, true),
        };
        FakeRedis::start(move |cmd| match cmd[0].as_str() {
            "PING" => Answer::Raw(b"+PONG\r\n".to_vec()),
            "INFO" if info.1 => Answer::Endless(info.0.clone()),
            "INFO" => Answer::Raw(info.0.clone()),
            _ => Answer::Raw(b"+OK\r\n".to_vec()),
        })
    }
}

impl Drop for FakeRedis {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A bulk-string reply.
pub fn bulk(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

fn serve(stream: TcpStream, script: &Script, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while !stop.load(Ordering::Relaxed) {
        let command = match read_command(&mut reader) {
            Ok(Some(command)) => command,
            Ok(None) => return,
            Err(e) if is_timeout(&e) => continue,
            Err(_) => return,
        };
        match script(&command) {
            Answer::Raw(bytes) => {
                if writer.write_all(&bytes).is_err() {
                    return;
                }
            }
            Answer::Endless(head) => {
                if writer.write_all(&head).is_err() {
                    return;
                }
                let filler = vec![b'x'; 64 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    if writer.write_all(&filler).is_err() {
                        return;
                    }
                }
                return;
            }
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// One command: `*N` then N bulk strings. `None` at end of stream.
fn read_command(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Vec<String>>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let count: usize = line.trim().trim_start_matches('*').parse().unwrap_or(0);
    let mut parts = Vec::with_capacity(count);
    for _ in 0..count {
        line.clear();
        reader.read_line(&mut line)?;
        let len: usize = line.trim().trim_start_matches('$').parse().unwrap_or(0);
        let mut data = vec![0; len + 2];
        reader.read_exact(&mut data)?;
        data.truncate(len);
        parts.push(String::from_utf8_lossy(&data).into_owned());
    }
    if let Some(name) = parts.first_mut() {
        *name = name.to_ascii_uppercase();
    }
    Ok((!parts.is_empty()).then_some(parts))
}
