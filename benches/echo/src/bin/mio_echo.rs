//! The floor: a bare mio line-echo loop, no framework. Each readable edge gets one read
//! (a short read means the socket is drained); every complete line read is written back
//! at once, in one write per read; output that does not fit waits for a writable edge.
//!
//! Usage: `mio_echo --port P [--events N] [--late-writes 1]` (0 = any port); prints
//! `listening on ADDR` first. `--events` is the most events one poll takes in (1024).
//! `--late-writes 1` writes with POE's timing instead: answers read in one poll's events
//! are queued and written after the next poll returns (that poll does not wait), in the
//! order they were read, as our kernel does; to see what the timing alone costs.

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
    /// With late writes: listed for the write pass after the next poll.
    listed: bool,
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
fn on_readable(c: &mut Conn, buf: &mut [u8], late: bool) -> bool {
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
            let ok = if late {
                // Queued for the write pass after the next poll.
                c.out.extend_from_slice(&c.partial);
                c.partial.clear();
                c.out.extend_from_slice(&data[..=last]);
                true
            } else if c.partial.is_empty() {
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
    let capacity: usize = opts.get("events", 1024)?;
    let late = opts.get::<u8>("late-writes", 0)? != 0;
    raise_nofile();
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(([127, 0, 0, 1], port).into())?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    announce(listener.local_addr()?);
    let mut conns: slab::Slab<Conn> = slab::Slab::new();
    let mut events = Events::with_capacity(capacity);
    let mut buf = vec![0u8; 65536];
    // With late writes: connections with answers read before the last poll, to write
    // after it, and those read since.
    let mut due: Vec<usize> = Vec::new();
    let mut queued: Vec<usize> = Vec::new();
    loop {
        let timeout = (!queued.is_empty()).then_some(std::time::Duration::ZERO);
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        std::mem::swap(&mut due, &mut queued);
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
                                listed: false,
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
            if ev.is_writable() && !c.out.is_empty() && !c.listed {
                alive = flush(c);
            }
            if alive && (ev.is_readable() || ev.is_read_closed()) {
                alive = on_readable(c, &mut buf, late);
                if late && !c.out.is_empty() && !c.listed {
                    c.listed = true;
                    queued.push(key);
                }
            }
            if !alive || ev.is_error() {
                let mut c = conns.remove(key);
                let _ = poll.registry().deregister(&mut c.stream);
            }
        }
        // The write pass: answers queued before this poll.
        for key in due.drain(..) {
            let Some(c) = conns.get_mut(key) else {
                continue;
            };
            if !c.listed {
                continue;
            }
            c.listed = false;
            if !flush(c) {
                let mut c = conns.remove(key);
                let _ = poll.registry().deregister(&mut c.stream);
            }
        }
    }
}
