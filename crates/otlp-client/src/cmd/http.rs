//! A plain, bounded HTTP/1.1 GET for reading an agent's admin port
//! (`doctor`, `top`): blocking, every step under a timeout, the answer cut
//! at a size limit.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

/// `GET path` on `addr`: the status and the body (at most `max_bytes` of
/// answer are read). The admin server answers with a `content-length` body
/// and closes the connection (`Connection: close`).
pub(crate) fn get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    max_bytes: u64,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // One write: a request split over several segments is still valid
    // HTTP, but there is no reason to send it so.
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    stream.take(max_bytes).read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer")
        })?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_owned()))
}
