//! One DNS exchange with the server: the request's bytes out, the answer's bytes back.
//!
//! TCP first, one connection per exchange: an answer of any size comes whole, and an
//! UPDATE's answer is not lost to a dropped datagram (RFC 2136 lets a requestor use
//! either transport). When the server takes no TCP connection, the same bytes go once
//! over UDP (RFC 1035 section 4.2.1); a lost datagram is then a timeout, which the
//! switch retries, re-reading first. The messages themselves are hickory's; this file
//! only frames them (RFC 1035 section 4.2.2: a two-byte length before each message).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

/// Connecting must be quick: a server that does not accept at once is unlikely to
/// answer, and UDP still has its turn within the caller's limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an answer may take once the request is sent. Within the switch's 10 s per
/// call, with the connect timeout before it.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest UDP answer taken (EDNS's usual limit is 1232; this is the protocol's).
const UDP_MAX: usize = 65_535;

/// Why no answer came.
#[derive(Debug)]
pub struct Failure {
    /// No answer in time (a retry may help), rather than refused or broken.
    pub timed_out: bool,
    pub message: String,
}

/// Sends `request` to `server` (`host:port`) and returns the answer's bytes.
pub async fn exchange(server: &str, request: &[u8]) -> Result<Vec<u8>, Failure> {
    let addr = resolve(server).await?;
    let tcp = match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => return over_tcp(stream, request).await,
        Ok(Err(e)) => format!("TCP: {e}"),
        Err(_) => format!("TCP: no connection within {} s", CONNECT_TIMEOUT.as_secs()),
    };
    over_udp(addr, request).await.map_err(|udp| Failure {
        timed_out: udp.timed_out,
        message: format!("{tcp}; {}", udp.message),
    })
}

async fn resolve(server: &str) -> Result<SocketAddr, Failure> {
    let found = timeout(CONNECT_TIMEOUT, tokio::net::lookup_host(server)).await;
    match found {
        Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| Failure {
            timed_out: false,
            message: format!("{server} resolves to no address"),
        }),
        Ok(Err(e)) => Err(Failure {
            timed_out: false,
            message: format!("cannot resolve {server}: {e}"),
        }),
        Err(_) => Err(Failure {
            timed_out: true,
            message: format!("cannot resolve {server} in time"),
        }),
    }
}

async fn over_tcp(mut stream: TcpStream, request: &[u8]) -> Result<Vec<u8>, Failure> {
    let exchange = async {
        let length = u16::try_from(request.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "request too long"))?;
        let mut framed = Vec::with_capacity(request.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(request);
        stream.write_all(&framed).await?;
        let length = stream.read_u16().await?;
        let mut answer = vec![0; usize::from(length)];
        stream.read_exact(&mut answer).await?;
        Ok::<_, io::Error>(answer)
    };
    match timeout(ANSWER_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Err(Failure {
            timed_out: false,
            message: "TCP: the server closed the connection without an answer".into(),
        }),
        Ok(Err(e)) => Err(Failure {
            timed_out: false,
            message: format!("TCP: {e}"),
        }),
        Err(_) => Err(Failure {
            timed_out: true,
            message: format!("TCP: no answer within {} s", ANSWER_TIMEOUT.as_secs()),
        }),
    }
}

/// A connected socket: only the server's datagrams arrive, and a closed port is
/// reported (ICMP) rather than waited out.
async fn over_udp(addr: SocketAddr, request: &[u8]) -> Result<Vec<u8>, Failure> {
    let exchange = async {
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(addr).await?;
        socket.send(request).await?;
        let mut answer = vec![0; UDP_MAX];
        let n = socket.recv(&mut answer).await?;
        answer.truncate(n);
        Ok::<_, io::Error>(answer)
    };
    match timeout(ANSWER_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(Failure {
            timed_out: false,
            message: format!("UDP: {e}"),
        }),
        Err(_) => Err(Failure {
            timed_out: true,
            message: format!("UDP: no answer within {} s", ANSWER_TIMEOUT.as_secs()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on TCP: one framed request in, its bytes reversed back, framed.
    #[tokio::test]
    async fn tcp_frames_each_message_with_its_length() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let length = stream.read_u16().await.unwrap();
            let mut request = vec![0; usize::from(length)];
            stream.read_exact(&mut request).await.unwrap();
            request.reverse();
            let mut framed = (request.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&request);
            stream.write_all(&framed).await.unwrap();
        });
        assert_eq!(exchange(&server, b"query").await.unwrap(), b"yreuq");
    }

    /// No TCP on the port: the same bytes go once over UDP.
    #[tokio::test]
    async fn without_tcp_the_request_goes_over_udp() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server = socket.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let mut request = vec![0; 512];
            let (n, from) = socket.recv_from(&mut request).await.unwrap();
            request.truncate(n);
            request.reverse();
            socket.send_to(&request, from).await.unwrap();
        });
        assert_eq!(exchange(&server, b"update").await.unwrap(), b"etadpu");
    }

    /// Nothing on the port: refused on both, said for each, and not a timeout.
    #[tokio::test]
    async fn a_closed_port_is_refused_on_both_transports() {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let failure = exchange(&format!("127.0.0.1:{port}"), b"query")
            .await
            .unwrap_err();
        assert!(!failure.timed_out, "{failure:?}");
        assert!(
            failure.message.starts_with("TCP: ") && failure.message.contains("; UDP: "),
            "{failure:?}"
        );
    }
}
