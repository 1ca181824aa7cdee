//! Anonymous conduits between two ends in one process or across a fork (POE's
//! `POE::Pipe::OneWay` and `POE::Pipe::TwoWay`, which delegate to `IO::Pipely`).
//!
//! Every end is non-blocking and close-on-exec, ready to be watched with
//! [`Kernel::select_read`](crate::Kernel::select_read) or given to a
//! [`ReadWrite`](crate::wheel::ReadWrite) wheel: a one-way pipe's ends as its input and output
//! handles ([`ReadWrite::split`](crate::wheel::ReadWrite::split)), a two-way conduit's end as its
//! one duplex handle ([`ReadWrite::builder`](crate::wheel::ReadWrite::builder)).
//!
//! ```
//! use std::io::{Read, Write};
//!
//! let (mut rx, mut tx) = reactor::pipe::one_way()?;
//! tx.write_all(b"ping")?;
//! let mut buf = [0u8; 4];
//! rx.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"ping");
//!
//! let (mut a, mut b) = reactor::pipe::two_way()?;
//! b.write_all(b"pong")?;
//! a.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"pong");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! (The reads above succeed at once because the bytes are already there; a non-blocking
//! end that has nothing to read returns [`std::io::ErrorKind::WouldBlock`].)
//!
//! | POE | here |
//! |---|---|
//! | `POE::Pipe::OneWay->new()` → `($read, $write)` | [`one_way()`] → `(Receiver, Sender)` |
//! | `POE::Pipe::TwoWay->new()` → `($a_read, $a_write, $b_read, $b_write)` | [`two_way()`] → `(a, b)`: each end reads and writes |
//! | `POE::Pipe::TwoWay->new("inet")` | [`two_way_inet()`]: a TCP connection on 127.0.0.1 |
//! | `POE::Pipe::OneWay->new("socketpair")` | [`two_way()`], using each end in one direction |

use mio::net::{TcpStream, UnixStream};
use mio::unix::pipe::{Receiver, Sender};
use std::io;

/// A one-way pipe: bytes written to the [`Sender`] are read from the [`Receiver`] (POE's
/// `POE::Pipe::OneWay->new()`, `IO::Pipely`'s `pipely`).
#[doc(alias = "OneWay")]
#[doc(alias = "pipely")]
pub fn one_way() -> io::Result<(Receiver, Sender)> {
    let (tx, rx) = mio::unix::pipe::new()?;
    Ok((rx, tx))
}

/// A two-way conduit: a connected pair of UNIX stream sockets, each end both read and
/// written (POE's `POE::Pipe::TwoWay->new()`, `IO::Pipely`'s `socketpairly`).
#[doc(alias = "TwoWay")]
#[doc(alias = "socketpairly")]
pub fn two_way() -> io::Result<(UnixStream, UnixStream)> {
    UnixStream::pair()
}

/// A two-way conduit over TCP on the loopback address (POE's
/// `POE::Pipe::TwoWay->new("inet")`): for code that needs a real TCP socket on both ends.
/// The listener used to make the connection is closed before this returns.
pub fn two_way_inet() -> io::Result<(TcpStream, TcpStream)> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let a = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (b, _) = listener.accept()?;
    for s in [&a, &b] {
        s.set_nonblocking(true)?;
        s.set_nodelay(true)?;
    }
    Ok((TcpStream::from_std(a), TcpStream::from_std(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Reads exactly `n` bytes from a non-blocking end, waiting at most about a second.
    fn read_n(r: &mut impl Read, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        for _ in 0..1000 {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => {
                    got.extend_from_slice(&buf[..k]);
                    if got.len() >= n {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        got
    }

    #[test]
    fn one_way_carries_bytes_and_does_not_block() {
        let (mut rx, mut tx) = one_way().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            rx.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        tx.write_all(b"abc").unwrap();
        assert_eq!(read_n(&mut rx, 3), b"abc");
        drop(tx);
        assert_eq!(
            rx.read(&mut buf).unwrap(),
            0,
            "end-of-file once the writer is gone"
        );
    }

    #[test]
    fn two_way_carries_bytes_both_ways() {
        let (mut a, mut b) = two_way().unwrap();
        a.write_all(b"to b").unwrap();
        b.write_all(b"to a").unwrap();
        assert_eq!(read_n(&mut b, 4), b"to b");
        assert_eq!(read_n(&mut a, 4), b"to a");
    }

    #[test]
    fn two_way_inet_is_a_loopback_tcp_connection() {
        let (mut a, mut b) = two_way_inet().unwrap();
        assert!(a.peer_addr().unwrap().ip().is_loopback());
        assert_eq!(a.local_addr().unwrap(), b.peer_addr().unwrap());
        a.write_all(b"x").unwrap();
        b.write_all(b"yz").unwrap();
        assert_eq!(read_n(&mut b, 1), b"x");
        assert_eq!(read_n(&mut a, 2), b"yz");
    }
}
