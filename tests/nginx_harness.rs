//! Tests of the nginx test harness itself (`tests/common/nginx.rs`).

#[path = "common/nginx.rs"]
mod nginx;

use nginx::{Nginx, NginxConfig};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One parsed HTTP/1.1 response.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn connect(n: &Nginx) -> TcpStream {
    let s = TcpStream::connect(n.addr()).expect("connect to nginx");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn send_get(s: &mut TcpStream, n: &Nginx, path: &str) {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        n.port()
    );
    s.write_all(req.as_bytes()).unwrap();
}

/// Reads one response (Content-Length framed) from `s`, with `buf` holding bytes already
/// read past the previous response. `Ok(None)` on a clean EOF before any byte.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Response>> {
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let k = s.read(&mut chunk)?;
        if k == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF in headers",
            ));
        }
        buf.extend_from_slice(&chunk[..k]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, status_line.to_owned()))?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Content-Length"))?;
    buf.drain(..head_end);
    while buf.len() < len {
        let k = s.read(&mut chunk)?;
        if k == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF in body"));
        }
        buf.extend_from_slice(&chunk[..k]);
    }
    let body = buf.drain(..len).collect();
    Ok(Some(Response {
        status,
        headers,
        body,
    }))
}

fn get(n: &Nginx, path: &str) -> Response {
    let mut s = connect(n);
    send_get(&mut s, n, path);
    read_response(&mut s, &mut Vec::new())
        .expect("read response")
        .expect("a response before EOF")
}

/// Whether the server has closed `s`: reads until EOF (true) or a reset; any data is a
/// failure.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(k) => panic!("unexpected {k} bytes after the last response"),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
        Err(_) => false,
    }
}

#[test]
fn serves_body_over_http11() {
    let n = Nginx::start(NginxConfig::default()).expect("nginx starts");
    let r = get(&n, "/");
    assert_eq!(r.status, 200, "error log: {}", n.error_log());
    assert_eq!(r.body, b"hello\n");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(get(&n, "/nope").status, 404);
}

#[test]
fn binary_body_and_big_file() {
    let body: Vec<u8> = (0..=255u8).chain([0, b'"', b'\\', b'$', b'\n']).collect();
    let n = Nginx::start(NginxConfig {
        body: body.clone(),
        ..NginxConfig::default()
    })
    .expect("nginx starts");
    assert_eq!(get(&n, "/").body, body);
    let big = get(&n, "/big");
    assert_eq!(big.status, 200);
    assert_eq!(big.body.len(), nginx::BIG_LEN);
    assert!(big.body == nginx::big_body());
}

#[test]
fn keepalive_requests_limit_closes_after_the_last() {
    let n = Nginx::start(NginxConfig {
        keepalive_requests: 5,
        ..NginxConfig::default()
    })
    .expect("nginx starts");
    let mut s = connect(&n);
    let mut buf = Vec::new();
    let mut responses = 0;
    // One request at a time; stop at EOF, bounded well past the limit.
    for _ in 0..10 {
        if send_get_ok(&mut s, &n) {
            match read_response(&mut s, &mut buf) {
                Ok(Some(r)) => {
                    assert_eq!(r.status, 200);
                    assert_eq!(r.body, b"hello\n");
                    responses += 1;
                    if responses == 5 {
                        assert_eq!(r.header("connection"), Some("close"));
                    } else {
                        assert_eq!(r.header("connection"), Some("keep-alive"));
                    }
                }
                Ok(None) => break,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("reading response {}: {e}", responses + 1),
            }
        } else {
            break;
        }
    }
    assert_eq!(responses, 5);
    assert!(closed_by_server(&mut s));
}

fn send_get_ok(s: &mut TcpStream, n: &Nginx) -> bool {
    let req = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", n.port());
    s.write_all(req.as_bytes()).is_ok()
}

#[test]
fn close_location_closes_after_response() {
    let n = Nginx::start(NginxConfig::default()).expect("nginx starts");
    let mut s = connect(&n);
    send_get(&mut s, &n, "/close");
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf).unwrap().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello\n");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(buf.is_empty());
    assert!(closed_by_server(&mut s));
}

#[test]
fn two_instances_in_parallel_and_cleanup() {
    let a = Nginx::start(NginxConfig::default()).expect("first nginx starts");
    let b = Nginx::start(NginxConfig {
        body: b"second\n".to_vec(),
        workers: 2,
        ..NginxConfig::default()
    })
    .expect("second nginx starts");
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    assert_eq!(get(&a, "/").body, b"hello\n");
    assert_eq!(get(&b, "/").body, b"second\n");
    let (dir, addr) = (b.dir().to_owned(), b.addr());
    drop(b);
    assert!(!dir.exists(), "prefix directory removed on drop");
    assert!(
        TcpStream::connect(addr).is_err(),
        "port closed once nginx is dropped"
    );
    assert_eq!(get(&a, "/").body, b"hello\n");
}
