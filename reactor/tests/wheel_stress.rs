//! Robustness of the wheels under load and abuse (no upstream counterpart):
//! - 200 concurrent TCP connections each echo 100 lines through ReadWrite; every line is
//!   checked, and no file descriptor is left behind;
//! - a peer that resets the connection while the wheel is writing gives a write
//!   ErrorEvent, once, and nothing panics;
//! - dropping a wheel inside its own InputEvent stops its events at once (the rest of the
//!   chunk, pending output, FlushedEvent) and closes its socket;
//! - 8 MiB put at once for a reader that takes 1 KiB per timeslice arrive intact, with
//!   LowEvent once on the way down and FlushedEvent exactly once, at the end.
//!
//! The tests of this file run one at a time (a lock), so that the descriptors one test
//! opens are not taken for another's leak (`common::assert_no_new_fds`).

mod common;
use common::timeout;
use mio::net::{TcpStream, UnixStream};
use reactor::filter::{Line, Stream};
use reactor::wheel::WheelError;
use reactor::wheel::{ReadWrite, RwEvent, SocketFactory};
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle, WheelId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Serialises the tests of this file.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A kernel made and dropped once, so that anything the first kernel sets up for the
/// whole process is in place before descriptors are counted.
fn warm_up() {
    let mut k = Kernel::new().unwrap();
    k.run().unwrap();
}

fn text<H: 'static>(ctx: &Ctx<'_, H>) -> Result<String, HandlerError> {
    Ok(String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?)
}

// ---------------------------------------------------------------------------------------
// 200 connections x 100 lines.

const CLIENTS: usize = 200;
const LINES: usize = 100;

fn line_for(client: usize, n: usize) -> String {
    // Lengths vary from 8 to ~300 octets so that lines straddle reads.
    let pad = "x".repeat((client * 7 + n * 13) % 293);
    format!("{client:03} {n:03} {pad}")
}

#[derive(Default, Debug)]
struct EchoStats {
    server_lines: usize,
    server_errors: Vec<(String, i32)>,
    client_lines: usize,
    mismatches: Vec<String>,
    clients_done: usize,
    failures: Vec<String>,
}

#[derive(Default)]
struct EchoServer {
    listener: Option<WheelHandle>,
    conns: HashMap<WheelId, WheelHandle>,
}

#[derive(Default)]
struct EchoClients {
    /// Connecting factories, by wheel ID, with their client number.
    factories: HashMap<WheelId, (usize, WheelHandle)>,
    /// Connected wheels: client number, next line expected, handle.
    conns: HashMap<WheelId, (usize, usize, WheelHandle)>,
}

fn echo_server(stats: Rc<RefCell<EchoStats>>, port: Rc<RefCell<u16>>) -> Session<EchoServer> {
    let (s1, s2, s3) = (Rc::clone(&stats), Rc::clone(&stats), stats);
    Session::new(EchoServer::default())
        .on(
            "_start",
            move |ctx: &mut Ctx<'_, EchoServer>| -> Result<(), HandlerError> {
                let w = SocketFactory::listen()
                    .bind_address("127.0.0.1")
                    .success_event("accepted")
                    .failure_event("failed")
                    .build(ctx)?;
                *port.borrow_mut() = ctx
                    .wheel_ref::<SocketFactory>(w.id())
                    .and_then(|f| f.getsockname())
                    .ok_or("not bound")?
                    .port();
                ctx.heap().listener = Some(w);
                ctx.alias_set("echo_server")?;
                Ok(())
            },
        )
        .on(
            "accepted",
            |ctx: &mut Ctx<'_, EchoServer>| -> Result<(), HandlerError> {
                let sock = ctx.take_arg::<TcpStream>(0)?;
                let w = ReadWrite::builder(sock)
                    .filter(Line::new())
                    .input_event("line")
                    .error_event("conn_error")
                    .build(ctx)?;
                ctx.heap().conns.insert(w.id(), w);
                Ok(())
            },
        )
        .on(
            "line",
            move |ctx: &mut Ctx<'_, EchoServer>| -> Result<(), HandlerError> {
                let line = ctx.arg::<Vec<u8>>(0)?.clone();
                let id = *ctx.arg::<WheelId>(1)?;
                s1.borrow_mut().server_lines += 1;
                ctx.wheel_mut::<ReadWrite>(id)
                    .ok_or("no wheel")?
                    .put_one(line)?;
                Ok(())
            },
        )
        .on(
            "conn_error",
            move |ctx: &mut Ctx<'_, EchoServer>| -> Result<(), HandlerError> {
                let op = ctx.arg::<WheelError>(0)?.operation.to_owned();
                let errno = ctx.arg::<WheelError>(0)?.errno;
                let id = *ctx.arg::<WheelId>(1)?;
                s2.borrow_mut().server_errors.push((op, errno));
                ctx.heap().conns.remove(&id);
                Ok(())
            },
        )
        .on(
            "failed",
            move |ctx: &mut Ctx<'_, EchoServer>| -> Result<(), HandlerError> {
                let msg = format!(
                    "server {} {}",
                    ctx.arg::<WheelError>(0)?.operation,
                    ctx.arg::<WheelError>(0)?.errno
                );
                s3.borrow_mut().failures.push(msg);
                Ok(())
            },
        )
        .on(
            "shutdown",
            |ctx: &mut Ctx<'_, EchoServer>| -> Result<(), HandlerError> {
                ctx.heap().listener = None;
                ctx.alias_remove("echo_server")?;
                Ok(())
            },
        )
}

fn echo_clients(stats: Rc<RefCell<EchoStats>>, port: u16) -> Session<EchoClients> {
    let (s1, s2, s3, s4) = (
        Rc::clone(&stats),
        Rc::clone(&stats),
        Rc::clone(&stats),
        stats,
    );
    Session::new(EchoClients::default())
        .on(
            "_start",
            move |ctx: &mut Ctx<'_, EchoClients>| -> Result<(), HandlerError> {
                for c in 0..CLIENTS {
                    let f = SocketFactory::connect("127.0.0.1", port)
                        .success_event("connected")
                        .failure_event("connect_failed")
                        .build(ctx)?;
                    ctx.heap().factories.insert(f.id(), (c, f));
                }
                Ok(())
            },
        )
        .on(
            "connected",
            |ctx: &mut Ctx<'_, EchoClients>| -> Result<(), HandlerError> {
                let sock = ctx.take_arg::<TcpStream>(0)?;
                let fid = *ctx.arg::<WheelId>(3)?;
                let (c, _factory) = ctx.heap().factories.remove(&fid).ok_or("unknown factory")?;
                let w = ReadWrite::builder(sock)
                    .filter(Line::new())
                    .input_event("echo")
                    .error_event("client_error")
                    .build(ctx)?;
                let id = w.id();
                ctx.heap().conns.insert(id, (c, 0, w));
                let lines: Vec<String> = (0..LINES).map(|n| line_for(c, n)).collect();
                ctx.wheel_mut::<ReadWrite>(id)
                    .ok_or("no wheel")?
                    .put(lines)?;
                Ok(())
            },
        )
        .on(
            "echo",
            move |ctx: &mut Ctx<'_, EchoClients>| -> Result<(), HandlerError> {
                let line = text(ctx)?;
                let id = *ctx.arg::<WheelId>(1)?;
                let (c, n) = {
                    let e = ctx.heap().conns.get_mut(&id).ok_or("unknown wheel")?;
                    e.1 += 1;
                    (e.0, e.1 - 1)
                };
                let mut st = s1.borrow_mut();
                st.client_lines += 1;
                if line != line_for(c, n) {
                    st.mismatches
                        .push(format!("client {c} line {n}: got {line:?}"));
                }
                if n + 1 == LINES {
                    st.clients_done += 1;
                    let all = st.clients_done == CLIENTS;
                    drop(st);
                    ctx.heap().conns.remove(&id);
                    if all {
                        ctx.post("echo_server", "shutdown", ())?;
                    }
                }
                Ok(())
            },
        )
        .on(
            "client_error",
            move |ctx: &mut Ctx<'_, EchoClients>| -> Result<(), HandlerError> {
                let msg = format!(
                    "client {} {}",
                    ctx.arg::<WheelError>(0)?.operation,
                    ctx.arg::<WheelError>(0)?.errno
                );
                let id = *ctx.arg::<WheelId>(1)?;
                s2.borrow_mut().failures.push(msg);
                ctx.heap().conns.remove(&id);
                Ok(())
            },
        )
        .on(
            "connect_failed",
            move |ctx: &mut Ctx<'_, EchoClients>| -> Result<(), HandlerError> {
                let msg = format!(
                    "connect {} {}",
                    ctx.arg::<WheelError>(0)?.operation,
                    ctx.arg::<WheelError>(0)?.errno
                );
                let id = *ctx.arg::<WheelId>(1)?;
                s3.borrow_mut().failures.push(msg);
                ctx.heap().factories.remove(&id);
                Ok(())
            },
        )
        .on("_stop", move |_ctx: &mut Ctx<'_, EchoClients>| {
            // Nothing to do; present so that a stray event name shows up as a failure.
            let _ = &s4;
        })
}

#[test]
fn two_hundred_connections_echo_a_hundred_lines_each() {
    let _serial = serial();
    let _guard = timeout(60, "two_hundred_connections_echo_a_hundred_lines_each");
    warm_up();
    let fds_before = common::open_fds();
    let stats: Rc<RefCell<EchoStats>> = Rc::default();
    {
        let port = Rc::new(RefCell::new(0));
        let mut k = Kernel::new().unwrap();
        k.create(echo_server(Rc::clone(&stats), Rc::clone(&port)))
            .unwrap();
        let port = *port.borrow();
        assert_ne!(port, 0);
        k.create(echo_clients(Rc::clone(&stats), port)).unwrap();
        k.run().unwrap();
    }
    let st = stats.borrow();
    assert!(st.failures.is_empty(), "{:?}", st.failures);
    assert!(
        st.mismatches.is_empty(),
        "{} bad lines, first: {:?}",
        st.mismatches.len(),
        st.mismatches.first()
    );
    assert_eq!(st.clients_done, CLIENTS);
    assert_eq!(st.client_lines, CLIENTS * LINES);
    assert_eq!(st.server_lines, CLIENTS * LINES);
    // Every server-side connection ended with EOF from its client.
    assert_eq!(st.server_errors.len(), CLIENTS);
    assert!(st
        .server_errors
        .iter()
        .all(|(op, errno)| op == "read" && *errno == 0));
    common::assert_no_new_fds(&fds_before);
}

// ---------------------------------------------------------------------------------------
// A peer resets the connection while the wheel writes.

#[derive(Default)]
struct ResetHeap {
    listener: Option<WheelHandle>,
    conn: Option<WheelHandle>,
}

#[test]
fn a_peer_reset_mid_write_is_one_write_error() {
    let _serial = serial();
    let _guard = timeout(30, "a_peer_reset_mid_write_is_one_write_error");
    // Far more than loopback socket buffers can hold, so the wheel is still writing when
    // the peer goes.
    const BIG: usize = 32 * 1024 * 1024;
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let port = Rc::new(RefCell::new(0u16));
    let (l1, l2, p) = (Rc::clone(&log), Rc::clone(&log), Rc::clone(&port));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(ResetHeap::default())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, ResetHeap>| -> Result<(), HandlerError> {
                    let w = SocketFactory::listen()
                        .bind_address("127.0.0.1")
                        .success_event("accepted")
                        .failure_event("failed")
                        .build(ctx)?;
                    *p.borrow_mut() = ctx
                        .wheel_ref::<SocketFactory>(w.id())
                        .and_then(|f| f.getsockname())
                        .ok_or("not bound")?
                        .port();
                    ctx.heap().listener = Some(w);
                    Ok(())
                },
            )
            .on(
                "accepted",
                |ctx: &mut Ctx<'_, ResetHeap>| -> Result<(), HandlerError> {
                    let sock = ctx.take_arg::<TcpStream>(0)?;
                    ctx.heap().listener = None;
                    // No InputEvent: only the write side can notice the reset.
                    let w = ReadWrite::builder(sock)
                        .filter(Stream::new())
                        .error_event("conn_error")
                        .flushed_event("flushed")
                        .build(ctx)?;
                    let id = w.id();
                    ctx.heap().conn = Some(w);
                    ctx.wheel_mut::<ReadWrite>(id)
                        .ok_or("no wheel")?
                        .put_one(vec![b'z'; BIG])?;
                    Ok(())
                },
            )
            .on(
                "conn_error",
                move |ctx: &mut Ctx<'_, ResetHeap>| -> Result<(), HandlerError> {
                    let op = ctx.arg::<WheelError>(0)?.operation.to_owned();
                    let errno = ctx.arg::<WheelError>(0)?.errno;
                    let id = *ctx.arg::<WheelId>(1)?;
                    let left = ctx
                        .wheel_ref::<ReadWrite>(id)
                        .map_or(0, |w| w.driver_out_octets());
                    l1.borrow_mut()
                        .push(format!("{op} error {errno} left>0={}", left > 0));
                    // Keep the wheel a little: a second error would show up meanwhile.
                    ctx.delay("finish", 0.05, ())?;
                    Ok(())
                },
            )
            .on("flushed", move |_ctx: &mut Ctx<'_, ResetHeap>| {
                l2.borrow_mut().push("flushed".into());
            })
            .on(
                "failed",
                |_ctx: &mut Ctx<'_, ResetHeap>| -> Result<(), HandlerError> {
                    Err(HandlerError::new("listen failed"))
                },
            )
            .on("finish", |ctx: &mut Ctx<'_, ResetHeap>| {
                ctx.heap().conn = None;
            }),
    )
    .unwrap();
    let port = *port.borrow();
    let peer = std::thread::spawn(move || -> std::io::Result<usize> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        let mut buf = vec![0u8; 64 * 1024];
        s.read_exact(&mut buf)?;
        // SO_LINGER 0: close() sends a reset instead of a FIN.
        socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO))?;
        drop(s);
        Ok(buf.len())
    });
    let run = k.run();
    let read = peer.join().expect("peer thread");
    run.unwrap();
    assert_eq!(read.unwrap(), 64 * 1024);
    let log = log.borrow();
    assert_eq!(log.len(), 1, "exactly one event: {log:?}");
    assert!(
        log[0] == "write error 104 left>0=true" || log[0] == "write error 32 left>0=true",
        "a write error (ECONNRESET or EPIPE): {log:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Dropping a wheel inside its own InputEvent.

const DROPPED: usize = 20;

#[derive(Default)]
struct DropHeap {
    wheels: HashMap<WheelId, WheelHandle>,
}

#[test]
fn dropping_a_wheel_in_its_own_input_event_stops_it_and_closes_it() {
    let _serial = serial();
    let _guard = timeout(
        20,
        "dropping_a_wheel_in_its_own_input_event_stops_it_and_closes_it",
    );
    warm_up();
    let fds_before = common::open_fds();
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let mut peers = Vec::new();
    let mut ends = Vec::new();
    for _ in 0..DROPPED {
        let (a, mut b) = UnixStream::pair().unwrap();
        // Three records in one chunk: the wheel is dropped at the first.
        b.write_all(b"first\nsecond\nthird\n").unwrap();
        peers.push(b);
        ends.push(a);
    }
    {
        let ends = RefCell::new(ends);
        let (l1, l2, l3) = (Rc::clone(&log), Rc::clone(&log), Rc::clone(&log));
        let mut k = Kernel::new().unwrap();
        k.create(
            Session::new(DropHeap::default())
                .on(
                    "_start",
                    move |ctx: &mut Ctx<'_, DropHeap>| -> Result<(), HandlerError> {
                        for sock in ends.borrow_mut().drain(..) {
                            let w = ReadWrite::builder(sock)
                                .input_event("in")
                                .error_event("err")
                                .flushed_event("flushed")
                                .build(ctx)?;
                            ctx.heap().wheels.insert(w.id(), w);
                        }
                        Ok(())
                    },
                )
                .on(
                    "in",
                    move |ctx: &mut Ctx<'_, DropHeap>| -> Result<(), HandlerError> {
                        let line = text(ctx)?;
                        let id = *ctx.arg::<WheelId>(1)?;
                        l1.borrow_mut().push(format!("{id} in {line}"));
                        // Output queued, then the wheel goes: nothing of it may be written.
                        ctx.wheel_mut::<ReadWrite>(id)
                            .ok_or_else(|| format!("wheel {id} event after its drop"))?
                            .put_one("reply")?;
                        // The wheel itself goes right after this handler returns.
                        ctx.heap().wheels.remove(&id);
                        Ok(())
                    },
                )
                .on(
                    "err",
                    move |ctx: &mut Ctx<'_, DropHeap>| -> Result<(), HandlerError> {
                        let id = *ctx.arg::<WheelId>(3)?;
                        l2.borrow_mut().push(format!("{id} err"));
                        Ok(())
                    },
                )
                .on(
                    "flushed",
                    move |ctx: &mut Ctx<'_, DropHeap>| -> Result<(), HandlerError> {
                        let id = *ctx.arg::<WheelId>(0)?;
                        l3.borrow_mut().push(format!("{id} flushed"));
                        Ok(())
                    },
                ),
        )
        .unwrap();
        k.run().unwrap();
        // Every wheel's socket is closed: each peer reads EOF, and not "reply".
        for (i, p) in peers.iter_mut().enumerate() {
            let mut buf = [0u8; 64];
            match p.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => panic!("peer {i} got {:?}", String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    panic!("peer {i}: the wheel's socket is still open")
                }
                Err(e) => panic!("peer {i}: {e}"),
            }
        }
    }
    drop(peers);
    let log = log.borrow();
    let expected: Vec<String> = (1..=DROPPED).map(|i| format!("{i} in first")).collect();
    assert_eq!(*log, expected);
    common::assert_no_new_fds(&fds_before);
}

// ---------------------------------------------------------------------------------------
// 8 MiB for a slow reader.

const LARGE: usize = 8 * 1024 * 1024;
const PIECE: usize = 64 * 1024;

fn byte_at(i: usize) -> u8 {
    ((i * 31) ^ (i >> 13)) as u8
}

#[derive(Default, Debug)]
struct LargeLog {
    put_high: Option<bool>,
    /// Writer-side events in order, with the octets the reader had at that moment.
    writer_events: Vec<(&'static str, usize)>,
    received: usize,
    bad_at: Option<usize>,
    reader_done: bool,
    writer_closed_by: Option<(String, i32)>,
    other: Vec<String>,
}

#[derive(Default)]
struct LargeHeap {
    writer: Option<WheelHandle>,
    reader: Option<WheelHandle>,
}

fn large_session<S>(log: Rc<RefCell<LargeLog>>, writer_end: S, reader_end: S) -> Session<LargeHeap>
where
    S: Read + Write + mio::event::Source + std::os::fd::AsFd + 'static,
{
    let ends = RefCell::new(Some((writer_end, reader_end)));
    let (l1, l2, l3, l4, l5, l6) = (
        Rc::clone(&log),
        Rc::clone(&log),
        Rc::clone(&log),
        Rc::clone(&log),
        Rc::clone(&log),
        log,
    );
    Session::new(LargeHeap::default())
        .on(
            "_start",
            move |ctx: &mut Ctx<'_, LargeHeap>| -> Result<(), HandlerError> {
                let (we, re) = ends.borrow_mut().take().ok_or("twice")?;
                let writer = ReadWrite::builder(we)
                    .filter(Stream::new())
                    .watermarks(LARGE / 2, LARGE / 8)
                    .event(RwEvent::High, "w_high")
                    .event(RwEvent::Low, "w_low")
                    .flushed_event("w_flushed")
                    // Reading the writer's socket tells it when the reader has gone.
                    .input_event("w_input")
                    .error_event("w_error")
                    .build(ctx)?;
                // The slow reader: 1 KiB per read, one read per timeslice.
                let reader = ReadWrite::builder(re)
                    .filter(Stream::new())
                    .block_size(1024)
                    .input_event("r_input")
                    .error_event("r_error")
                    .build(ctx)?;
                let wid = writer.id();
                ctx.heap().writer = Some(writer);
                ctx.heap().reader = Some(reader);
                let pieces: Vec<Vec<u8>> = (0..LARGE / PIECE)
                    .map(|p| (p * PIECE..(p + 1) * PIECE).map(byte_at).collect())
                    .collect();
                let high = ctx
                    .wheel_mut::<ReadWrite>(wid)
                    .ok_or("no writer")?
                    .put(pieces)?;
                l1.borrow_mut().put_high = Some(high);
                Ok(())
            },
        )
        .on(
            "r_input",
            move |ctx: &mut Ctx<'_, LargeHeap>| -> Result<(), HandlerError> {
                let chunk = ctx.arg::<Vec<u8>>(0)?;
                let mut log = l2.borrow_mut();
                if chunk.len() > 1024 {
                    log.other
                        .push(format!("read of {} > BlockSize", chunk.len()));
                }
                let start = log.received;
                if log.bad_at.is_none() {
                    if let Some(k) = chunk
                        .iter()
                        .enumerate()
                        .position(|(k, &b)| b != byte_at(start + k))
                    {
                        log.bad_at = Some(start + k);
                    }
                }
                log.received += chunk.len();
                if log.received >= LARGE {
                    log.reader_done = true;
                    drop(log);
                    ctx.heap().reader = None;
                }
                Ok(())
            },
        )
        .on(
            "r_error",
            move |ctx: &mut Ctx<'_, LargeHeap>| -> Result<(), HandlerError> {
                let msg = format!(
                    "reader {} {}",
                    ctx.arg::<WheelError>(0)?.operation,
                    ctx.arg::<WheelError>(0)?.errno
                );
                l3.borrow_mut().other.push(msg);
                ctx.heap().reader = None;
                Ok(())
            },
        )
        .on("w_flushed", move |_ctx: &mut Ctx<'_, LargeHeap>| {
            let mut log = l4.borrow_mut();
            let r = log.received;
            log.writer_events.push(("flushed", r));
        })
        .on("w_low", move |_ctx: &mut Ctx<'_, LargeHeap>| {
            let mut log = l5.borrow_mut();
            let r = log.received;
            log.writer_events.push(("low", r));
        })
        .on(
            "w_high",
            |_ctx: &mut Ctx<'_, LargeHeap>| -> Result<(), HandlerError> {
                // put() already set the high-water state, so POE never emits HighEvent here.
                Err(HandlerError::new("HighEvent fired"))
            },
        )
        .on(
            "w_input",
            |_ctx: &mut Ctx<'_, LargeHeap>| -> Result<(), HandlerError> {
                Err(HandlerError::new("the reader sent something"))
            },
        )
        .on(
            "w_error",
            move |ctx: &mut Ctx<'_, LargeHeap>| -> Result<(), HandlerError> {
                let e = (
                    ctx.arg::<WheelError>(0)?.operation.to_owned(),
                    ctx.arg::<WheelError>(0)?.errno,
                );
                l6.borrow_mut().writer_closed_by = Some(e);
                ctx.heap().writer = None;
                Ok(())
            },
        )
}

fn check_large(log: &LargeLog) {
    assert!(log.other.is_empty(), "{:?}", log.other);
    assert_eq!(log.bad_at, None, "first wrong byte");
    assert!(log.reader_done);
    assert_eq!(log.received, LARGE);
    // put() of 8 MiB against HighMark 4 MiB returns true.
    assert_eq!(log.put_high, Some(true));
    let names: Vec<&str> = log.writer_events.iter().map(|&(n, _)| n).collect();
    // LowEvent once on the way down, then FlushedEvent exactly once.
    assert_eq!(names, ["low", "flushed"], "{:?}", log.writer_events);
    // The buffer empties when the last octets enter the socket, before the slow reader has
    // them all.
    let (_, at_flush) = log.writer_events[1];
    assert!(
        at_flush < LARGE,
        "the reader was behind when the buffer emptied"
    );
    // The writer learned of the reader's close as EOF.
    assert_eq!(log.writer_closed_by, Some(("read".to_owned(), 0)));
}

#[test]
fn eight_mib_to_a_slow_reader_over_a_unix_socket() {
    let _serial = serial();
    let _guard = timeout(60, "eight_mib_to_a_slow_reader_over_a_unix_socket");
    let (w, r) = UnixStream::pair().unwrap();
    let log: Rc<RefCell<LargeLog>> = Rc::default();
    let mut k = Kernel::new().unwrap();
    k.create(large_session(Rc::clone(&log), w, r)).unwrap();
    k.run().unwrap();
    check_large(&log.borrow());
}

#[test]
fn eight_mib_to_a_slow_reader_over_tcp() {
    let _serial = serial();
    let _guard = timeout(60, "eight_mib_to_a_slow_reader_over_tcp");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let log: Rc<RefCell<LargeLog>> = Rc::default();
    let mut k = Kernel::new().unwrap();
    k.create(large_session(
        Rc::clone(&log),
        TcpStream::from_std(a),
        TcpStream::from_std(b),
    ))
    .unwrap();
    k.run().unwrap();
    check_large(&log.borrow());
}

// ---------------------------------------------------------------------------------------
// Data and EOF in one readiness edge.

/// A client that sends its last line and closes at once: the line and the FIN reach the
/// server together, as one edge of readiness. The wheel must deliver the line and then
/// the EOF (POE's select loop sees the handle readable again after the line).
#[test]
fn last_line_and_eof_arriving_together_are_both_reported() {
    let _serial = serial();
    let _guard = timeout(20, "last_line_and_eof_arriving_together_are_both_reported");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    // Both are queued at the server before its wheel exists.
    client.write_all(b"last words\n").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let (l1, l2, l3) = (Rc::clone(&log), Rc::clone(&log), Rc::clone(&log));
    let server = RefCell::new(Some(TcpStream::from_std(server)));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(Option::<WheelHandle>::None)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let s = server.borrow_mut().take().ok_or("twice")?;
                    let w = ReadWrite::builder(s)
                        .input_event("in")
                        .error_event("err")
                        .build(ctx)?;
                    *ctx.heap() = Some(w);
                    // Give up (and fail) rather than hang.
                    ctx.delay("timeout", 3.0, ())?;
                    Ok(())
                },
            )
            .on(
                "in",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    l1.borrow_mut().push(format!("in {}", text(ctx)?));
                    Ok(())
                },
            )
            .on(
                "err",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let e = format!(
                        "{} error {}",
                        ctx.arg::<WheelError>(0)?.operation,
                        ctx.arg::<WheelError>(0)?.errno
                    );
                    l2.borrow_mut().push(e);
                    *ctx.heap() = None;
                    ctx.alarm_clear("timeout")?;
                    Ok(())
                },
            )
            .on("timeout", move |ctx: &mut Ctx<'_, Option<WheelHandle>>| {
                l3.borrow_mut().push("timeout".into());
                *ctx.heap() = None;
            }),
    )
    .unwrap();
    k.run().unwrap();
    drop(client);
    assert_eq!(*log.borrow(), ["in last words", "read error 0"]);
}
