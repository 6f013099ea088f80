//! A TCP fault proxy on 127.0.0.1: forwards to one target and, toggled at run time,
//! delays every chunk, swallows everything (a black hole: connections stay open, nothing
//! arrives), or resets connections. `tc netem` is not in this kernel (TESTING.md); this
//! stands in for it on the paths the test routes through the proxy.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward as is.
    Pass,
    /// Forward each chunk after this long.
    Delay(Duration),
    /// Accept and hold connections, forward nothing either way.
    Blackhole,
    /// Reset every connection, new and open (RST, not FIN).
    Reset,
}

#[derive(Debug)]
struct Shared {
    fault: Mutex<Fault>,
    /// Open connections, to reset them when told.
    open: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

/// The proxy; stops accepting when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    pub port: u16,
    pub target: u16,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:target`.
    pub fn start(target: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            fault: Mutex::new(Fault::Pass),
            open: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || serve(client, target, &s));
            }
        });
        FaultProxy {
            port,
            target,
            shared,
        }
    }

    pub fn set(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
        if fault == Fault::Reset || fault == Fault::Blackhole {
            // Open connections too: a reset closes them, a black hole leaves them open
            // but forwards nothing more (the copy loops check the fault per chunk).
            if fault == Fault::Reset {
                for c in self.shared.open.lock().unwrap().drain(..) {
                    reset(&c);
                }
            }
        }
    }

    pub fn fault(&self) -> Fault {
        *self.shared.fault.lock().unwrap()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for c in self.shared.open.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
    let _ = stream.shutdown(Shutdown::Both);
}

fn serve(client: TcpStream, target: u16, s: &Arc<Shared>) {
    let fault = *s.fault.lock().unwrap();
    match fault {
        Fault::Reset => {
            reset(&client);
            return;
        }
        Fault::Blackhole => {
            // Hold it open and read nothing until the proxy stops or the fault lifts:
            // the client sees a connection that never answers.
            s.open.lock().unwrap().push(client.try_clone().unwrap());
            while !s.stop.load(Ordering::SeqCst) && *s.fault.lock().unwrap() == Fault::Blackhole {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        Fault::Pass | Fault::Delay(_) => {}
    }
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
        reset(&client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    {
        let mut open = s.open.lock().unwrap();
        open.push(client.try_clone().unwrap());
        open.push(upstream.try_clone().unwrap());
    }
    let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let s2 = Arc::clone(s);
    std::thread::spawn(move || copy(c2, u2, &s2));
    copy(upstream, client, s);
}

/// Copies `from` to `to` chunk by chunk, applying the fault in force for each chunk.
fn copy(mut from: TcpStream, mut to: TcpStream, s: &Shared) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        loop {
            let fault = *s.fault.lock().unwrap();
            match fault {
                Fault::Pass => break,
                Fault::Delay(d) => {
                    std::thread::sleep(d);
                    break;
                }
                // Swallow: wait until the fault lifts (or the proxy stops), then drop
                // what was held, as a black hole would have.
                Fault::Blackhole => {
                    if s.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Fault::Reset => {
                    reset(&from);
                    reset(&to);
                    return;
                }
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
