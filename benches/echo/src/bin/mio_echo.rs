//! The floor: a bare mio line-echo loop, no framework. Each readable edge gets one read
//! (a short read means the socket is drained); every complete line read is written back
//! at once, in one write per read; output that does not fit waits for a writable edge.
//!
//! Usage: `mio_echo --port P` (0 = any); prints `listening on ADDR` first.

use echo_bench::{announce, raise_nofile, Opts};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    /// A partial line waiting for its newline.
    partial: Vec<u8>,
    /// Output the socket did not take yet.
    out: Vec<u8>,
}

/// Writes `data` or queues what does not fit. Returns false on a fatal error.
fn send(stream: &mut TcpStream, out: &mut Vec<u8>, data: &[u8]) -> bool {
    if !out.is_empty() {
        out.extend_from_slice(data);
        return true;
    }
    let mut off = 0;
    while off < data.len() {
        match stream.write(&data[off..]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    out.extend_from_slice(&data[off..]);
    true
}

fn flush(c: &mut Conn) -> bool {
    while !c.out.is_empty() {
        match c.stream.write(&c.out) {
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Reads what is there and echoes complete lines. Returns false when the connection ends.
fn on_readable(c: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        let n = match c.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        let data = &buf[..n];
        if let Some(last) = data.iter().rposition(|&b| b == b'\n') {
            let ok = if c.partial.is_empty() {
                send(&mut c.stream, &mut c.out, &data[..=last])
            } else {
                c.partial.extend_from_slice(&data[..=last]);
                let lines = std::mem::take(&mut c.partial);
                send(&mut c.stream, &mut c.out, &lines)
            };
            if !ok {
                return false;
            }
            c.partial.extend_from_slice(&data[last + 1..]);
        } else {
            c.partial.extend_from_slice(data);
        }
        if n < buf.len() {
            // Drained: the next arrival raises a new edge.
            return true;
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opts = Opts::from_env()?;
    let port: u16 = opts.get("port", 0)?;
    raise_nofile();
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(([127, 0, 0, 1], port).into())?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    announce(listener.local_addr()?);
    let mut conns: slab::Slab<Conn> = slab::Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 65536];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let entry = conns.vacant_entry();
                            poll.registry().register(
                                &mut stream,
                                Token(entry.key()),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            entry.insert(Conn {
                                stream,
                                partial: Vec::new(),
                                out: Vec::new(),
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let key = ev.token().0;
            let Some(c) = conns.get_mut(key) else {
                continue;
            };
            let mut alive = true;
            if ev.is_writable() && !c.out.is_empty() {
                alive = flush(c);
            }
            if alive && (ev.is_readable() || ev.is_read_closed()) {
                alive = on_readable(c, &mut buf);
            }
            if !alive || ev.is_error() {
                let mut c = conns.remove(key);
                let _ = poll.registry().deregister(&mut c.stream);
            }
        }
    }
}
