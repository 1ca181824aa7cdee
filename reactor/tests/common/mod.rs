//! Helpers shared by the wheel and component tests. Not every test file uses every one.
#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

mod watchdog;
#[allow(unused_imports)] // not every test file arms one
pub use watchdog::timeout;

mod fds;
#[allow(unused_imports)] // not every test file checks descriptors
pub use fds::{assert_no_new_fds, open_fds, Fds};

/// How long one test may run.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Runs a test body on a thread of its own and fails the test if it has not finished
/// within [`LIMIT`]: a kernel that waits forever must fail the test, not stall it. (A
/// thread rather than a timer session, which would change what is tested: its timers
/// would keep the kernel from ever being idle.)
pub fn bounded(what: &'static str, body: fn() -> Result<(), Box<dyn std::error::Error>>) {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::Builder::new()
        .name(what.to_owned())
        .spawn(move || {
            let r = body().map_err(|e| e.to_string());
            let _ = tx.send(());
            r
        })
        .expect("spawn the test thread");
    if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(LIMIT) {
        panic!("{what}: still running after {LIMIT:?}; the kernel is stuck");
    }
    match h.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Reads what a non-blocking `peer` has into `got`, without waiting; whether it saw the
/// end of the stream.
pub fn read_available(peer: &mut impl std::io::Read, got: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 65536];
    loop {
        match peer.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) => panic!("peer read: {e}"),
        }
    }
}

/// A TCP connection over 127.0.0.1, both ends non-blocking: the accepted end as a mio
/// stream, for a wheel, and the connecting end, the peer.
pub fn tcp_pair() -> (mio::net::TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    peer.set_nonblocking(true).unwrap();
    (mio::net::TcpStream::from_std(server), peer)
}
