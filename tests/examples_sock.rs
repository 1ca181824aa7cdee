//! The datagram and UNIX socket examples, run as programs: `udp_echo` (every datagram back
//! to its sender, then a clean exit on SIGINT) and `unix_echo` (a line echo at a UNIX
//! socket path or an abstract name, then a clean exit on SIGTERM that removes the socket
//! file).
//!
//! The servers print `listening on ADDRESS` first (an address on 127.0.0.1 with port 0, a
//! path in a temporary directory, an `@name`); the tests read that line, then talk to them
//! with plain `std` sockets. Every read and wait is bounded, so a broken server fails the
//! test instead of hanging it.

mod common;

use common::example_server::{Server, STEP};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::UdpSocket;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

fn udp_client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind a client socket");
    s.set_read_timeout(Some(STEP)).expect("read timeout");
    s
}

/// Sends `what` to `to` and returns the answer and who sent it.
fn round_trip(
    s: &UdpSocket,
    to: std::net::SocketAddr,
    what: &[u8],
) -> (Vec<u8>, std::net::SocketAddr) {
    s.send_to(what, to).expect("send");
    let mut buf = vec![0; 65536];
    let (n, from) = s.recv_from(&mut buf).expect("an answer within the timeout");
    buf.truncate(n);
    (buf, from)
}

#[test]
fn udp_echo_sends_every_datagram_back_and_exits_0_on_sigint() {
    let mut server = Server::start("udp_echo");
    let to = server.addr;
    assert_eq!(to.ip().to_string(), "127.0.0.1");
    assert_ne!(to.port(), 0);
    let a = udp_client();
    let b = udp_client();
    assert_eq!(round_trip(&a, to, b"hello"), (b"hello".to_vec(), to));
    assert_eq!(
        round_trip(&b, to, "héllo wörld".as_bytes()).0,
        "héllo wörld".as_bytes()
    );
    // An empty datagram is a datagram too.
    assert_eq!(round_trip(&a, to, b"").0, b"");
    let big: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(round_trip(&b, to, &big).0, big);
    // A burst: every datagram comes back, in order (loopback does not reorder).
    for i in 0..50 {
        a.send_to(format!("burst {i}").as_bytes(), to)
            .expect("send");
    }
    let mut buf = [0; 64];
    for i in 0..50 {
        let (n, _) = a.recv_from(&mut buf).expect("an answer within the timeout");
        assert_eq!(&buf[..n], format!("burst {i}").as_bytes());
    }
    server.signal("-INT");
    let status = server.wait();
    assert!(status.success(), "udp_echo exited with {status}");
}

#[test]
fn udp_echo_dies_when_its_port_is_taken() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port().to_string();
    let out = std::process::Command::new(common::example("udp_echo"))
        .args(["--port", &port])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bind error 98"), "{err}");
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let base = std::env::temp_dir();
        for n in 0..1000 {
            let p = base.join(format!("keepalive-{tag}-{}-{n}", std::process::id()));
            if std::fs::create_dir(&p).is_ok() {
                return TempDir(p);
            }
        }
        panic!("cannot create a temporary directory in {}", base.display());
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A line client on a UNIX stream.
struct UnixClient {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl UnixClient {
    fn new(s: UnixStream) -> UnixClient {
        s.set_read_timeout(Some(STEP)).expect("read timeout");
        let w = s.try_clone().expect("clone");
        UnixClient {
            r: BufReader::new(s),
            w,
        }
    }

    fn say(&mut self, line: &str) {
        self.w
            .write_all(format!("{line}\n").as_bytes())
            .expect("write");
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self.r.read_line(&mut l).expect("a line within the timeout");
        assert!(n > 0, "unexpected EOF");
        l.trim_end_matches(['\r', '\n']).to_owned()
    }

    fn at_eof(&mut self) -> bool {
        let mut rest = Vec::new();
        self.r.read_to_end(&mut rest).is_ok() && rest.is_empty()
    }
}

fn unix_echo_conversation(mut a: UnixClient, mut b: UnixClient, server: &mut Server) {
    a.say("hello");
    assert_eq!(a.line(), "hello");
    b.say("two words");
    b.say("and a third line");
    assert_eq!(b.line(), "two words");
    assert_eq!(b.line(), "and a third line");
    a.say("héllo wörld");
    assert_eq!(a.line(), "héllo wörld");
    // A signal with both clients connected: the server closes them and exits 0.
    server.signal("-TERM");
    assert!(a.at_eof(), "client a not disconnected");
    assert!(b.at_eof(), "client b not disconnected");
    let status = server.wait();
    assert!(status.success(), "unix_echo exited with {status}");
}

#[test]
fn unix_echo_at_a_path_echoes_and_cleans_up_on_sigterm() {
    let dir = TempDir::new("unix-echo");
    let path = dir.0.join("echo.sock");
    // A socket file left by an earlier run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("a stale socket"));
    assert!(path.exists());
    let (mut server, at) = Server::start_at("unix_echo", &["--path", path.to_str().unwrap()]);
    assert_eq!(at, path.to_str().unwrap());
    let a = UnixClient::new(UnixStream::connect(&path).expect("connect"));
    let b = UnixClient::new(UnixStream::connect(&path).expect("connect"));
    unix_echo_conversation(a, b, &mut server);
    assert!(!path.exists(), "the socket file was removed");
}

#[test]
fn unix_echo_at_an_abstract_name() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("keepalive-unix-echo-{}", std::process::id());
    let (mut server, at) = Server::start_at("unix_echo", &["--path", &format!("@{name}")]);
    assert_eq!(at, format!("@{name}"));
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let a = UnixClient::new(UnixStream::connect_addr(&addr).expect("connect"));
    let b = UnixClient::new(UnixStream::connect_addr(&addr).expect("connect"));
    unix_echo_conversation(a, b, &mut server);
    // The name went with the server.
    assert!(UnixStream::connect_addr(&addr).is_err());
}

#[test]
fn unix_echo_dies_when_its_path_cannot_be_bound() {
    let dir = TempDir::new("unix-echo-bad");
    let missing = dir.0.join("no-such-dir").join("echo.sock");
    let out = std::process::Command::new(common::example("unix_echo"))
        .args(["--path", missing.to_str().unwrap()])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bind error 2"), "{err}");
}
