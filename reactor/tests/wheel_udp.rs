//! The `Udp` datagram wheel (CPAN's `POE::Wheel::UDP`; no test of POE's own covers it):
//! datagrams in as events with payload and sender, out through a bounded queue, errors as
//! typed `ErrorEvent`s, pausing, dropping the wheel inside its own event, and taking the
//! socket back. Peers outside the kernel are plain `std::net` sockets on 127.0.0.1.

mod common;
use common::{assert_no_new_fds, timeout};
use mio::net::UdpSocket;
use reactor::errno::{ECONNREFUSED, EDESTADDRREQ};
use reactor::wheel::{Protocol, QueueFull, SocketFactory, Udp, UdpEvent, WheelError};
use reactor::{Ctx, Error, HandlerError, Kernel, Session, WheelHandle, WheelId};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

/// Serialises the tests of this file, so that the descriptors one test opens are not taken
/// for another's leak.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The descriptors open now, after a kernel was made and dropped once.
fn fds_now() -> common::Fds {
    let mut k = Kernel::new().unwrap();
    k.run().unwrap();
    common::open_fds()
}

fn loopback() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Runs `session` to the end, at most 10 s.
fn run<H: 'static>(session: Session<H>, what: &'static str) {
    let _guard = timeout(10, what);
    let mut k = Kernel::new().unwrap();
    k.create(session).unwrap();
    k.run().unwrap();
}

fn udp<'a, H: 'static>(ctx: &'a mut Ctx<'_, H>, id: WheelId) -> Result<&'a mut Udp, HandlerError> {
    Ok(ctx.wheel_mut::<Udp>(id).ok_or("no wheel")?)
}

// ---------------------------------------------------------------------------------------

const ROUNDS: usize = 20;

#[derive(Default)]
struct Ping {
    a: Option<WheelHandle>,
    b: Option<WheelHandle>,
    b_addr: Option<SocketAddr>,
    a_addr: Option<SocketAddr>,
    a_got: Vec<(Vec<u8>, SocketAddr, WheelId)>,
    b_got: Vec<(Vec<u8>, SocketAddr, WheelId)>,
    flushed: Vec<WheelId>,
}

#[test]
fn two_wheels_trade_datagrams() {
    let _serial = serial();
    let before = fds_now();
    let out: Rc<RefCell<Ping>> = Rc::default();
    let o = Rc::clone(&out);
    run(
        Session::new(Ping::default())
            .on(
                "_start",
                |ctx: &mut Ctx<'_, Ping>| -> Result<(), HandlerError> {
                    let (sa, sb) = (loopback(), loopback());
                    let (aa, ba) = (sa.local_addr()?, sb.local_addr()?);
                    let a = Udp::builder(sa)
                        .input_event("a_input")
                        .flushed_event("flushed")
                        .build(ctx)?;
                    let b = Udp::builder(sb)
                        .input_event("b_input")
                        .flushed_event("flushed")
                        .build(ctx)?;
                    udp(ctx, a.id())?.put("0", ba)?;
                    let h = ctx.heap();
                    (h.a, h.b, h.a_addr, h.b_addr) = (Some(a), Some(b), Some(aa), Some(ba));
                    Ok(())
                },
            )
            .on(
                "b_input",
                |ctx: &mut Ctx<'_, Ping>| -> Result<(), HandlerError> {
                    let payload = ctx.take_arg::<Vec<u8>>(0)?;
                    let from = *ctx.arg::<SocketAddr>(1)?;
                    let id = *ctx.arg::<WheelId>(2)?;
                    let mut answer = payload.clone();
                    answer.push(b'!');
                    ctx.heap().b_got.push((payload, from, id));
                    udp(ctx, id)?.put(answer, from)?;
                    Ok(())
                },
            )
            .on(
                "a_input",
                |ctx: &mut Ctx<'_, Ping>| -> Result<(), HandlerError> {
                    let payload = ctx.take_arg::<Vec<u8>>(0)?;
                    let from = *ctx.arg::<SocketAddr>(1)?;
                    let id = *ctx.arg::<WheelId>(2)?;
                    ctx.heap().a_got.push((payload, from, id));
                    let n = ctx.heap().a_got.len();
                    if n == ROUNDS {
                        let h = ctx.heap();
                        (h.a, h.b) = (None, None);
                    } else {
                        udp(ctx, id)?.put(n.to_string(), from)?;
                    }
                    Ok(())
                },
            )
            .on(
                "flushed",
                |ctx: &mut Ctx<'_, Ping>| -> Result<(), HandlerError> {
                    let id = *ctx.arg::<WheelId>(0)?;
                    ctx.heap().flushed.push(id);
                    Ok(())
                },
            )
            .on("_stop", move |ctx: &mut Ctx<'_, Ping>| {
                *o.borrow_mut() = std::mem::take(ctx.heap());
            }),
        "two_wheels_trade_datagrams",
    );
    let p = out.borrow();
    let (a_addr, b_addr) = (p.a_addr.unwrap(), p.b_addr.unwrap());
    assert_eq!(p.b_got.len(), ROUNDS);
    assert_eq!(p.a_got.len(), ROUNDS);
    for (n, (payload, from, _)) in p.b_got.iter().enumerate() {
        assert_eq!(payload, n.to_string().as_bytes());
        assert_eq!(*from, a_addr);
    }
    for (n, (payload, from, _)) in p.a_got.iter().enumerate() {
        assert_eq!(payload, format!("{n}!").as_bytes());
        assert_eq!(*from, b_addr);
    }
    // Each wheel's events carry its own id.
    let a_id = p.a_got[0].2;
    let b_id = p.b_got[0].2;
    assert_ne!(a_id, b_id);
    assert!(p.a_got.iter().all(|g| g.2 == a_id) && p.b_got.iter().all(|g| g.2 == b_id));
    // One flush per datagram sent: each put found an empty queue.
    assert_eq!(p.flushed.iter().filter(|&&i| i == a_id).count(), ROUNDS);
    assert_eq!(p.flushed.iter().filter(|&&i| i == b_id).count(), ROUNDS);
    drop(p);
    assert_no_new_fds(&before);
}

#[derive(Default)]
struct Pair {
    server: Option<WheelHandle>,
    client: Option<WheelHandle>,
    factories: Vec<WheelHandle>,
    client_got: Option<(Vec<u8>, SocketAddr)>,
    server_addr: Option<SocketAddr>,
}

#[test]
fn a_connected_socket_from_socketfactory_puts_without_an_address() {
    let _serial = serial();
    let out: Rc<RefCell<Pair>> = Rc::default();
    let o = Rc::clone(&out);
    run(
        Session::new(Pair::default())
            .on(
                "_start",
                |ctx: &mut Ctx<'_, Pair>| -> Result<(), HandlerError> {
                    let f = SocketFactory::udp()
                        .bind_address("127.0.0.1")
                        .success_event("server_socket")
                        .failure_event("failed")
                        .build(ctx)?;
                    ctx.heap().factories.push(f);
                    Ok(())
                },
            )
            .on(
                "server_socket",
                |ctx: &mut Ctx<'_, Pair>| -> Result<(), HandlerError> {
                    let s = ctx.take_arg::<UdpSocket>(0)?;
                    let addr = s.local_addr()?;
                    let w = Udp::builder(s).input_event("server_input").build(ctx)?;
                    ctx.heap().server = Some(w);
                    ctx.heap().server_addr = Some(addr);
                    let f = SocketFactory::connect("127.0.0.1", addr.port())
                        .protocol(Protocol::Udp)
                        .success_event("client_socket")
                        .failure_event("failed")
                        .build(ctx)?;
                    ctx.heap().factories.push(f);
                    Ok(())
                },
            )
            .on(
                "client_socket",
                |ctx: &mut Ctx<'_, Pair>| -> Result<(), HandlerError> {
                    let s = ctx.take_arg::<UdpSocket>(0)?;
                    ctx.heap().factories.clear();
                    let w = Udp::builder(s).input_event("client_input").build(ctx)?;
                    udp(ctx, w.id())?.put_connected("hello")?;
                    ctx.heap().client = Some(w);
                    Ok(())
                },
            )
            .on(
                "server_input",
                |ctx: &mut Ctx<'_, Pair>| -> Result<(), HandlerError> {
                    let mut payload = ctx.take_arg::<Vec<u8>>(0)?;
                    let from = *ctx.arg::<SocketAddr>(1)?;
                    let id = *ctx.arg::<WheelId>(2)?;
                    payload.extend_from_slice(b", world");
                    udp(ctx, id)?.put(payload, from)?;
                    Ok(())
                },
            )
            .on(
                "client_input",
                |ctx: &mut Ctx<'_, Pair>| -> Result<(), HandlerError> {
                    let payload = ctx.take_arg::<Vec<u8>>(0)?;
                    let from = *ctx.arg::<SocketAddr>(1)?;
                    let h = ctx.heap();
                    h.client_got = Some((payload, from));
                    (h.server, h.client) = (None, None);
                    Ok(())
                },
            )
            .on(
                "failed",
                |ctx: &mut Ctx<'_, Pair>| -> Result<(), HandlerError> {
                    Err(format!("{}", ctx.arg::<WheelError>(0)?).into())
                },
            )
            .on("_stop", move |ctx: &mut Ctx<'_, Pair>| {
                *o.borrow_mut() = std::mem::take(ctx.heap());
            }),
        "a_connected_socket_from_socketfactory",
    );
    let p = out.borrow();
    assert_eq!(
        p.client_got,
        Some((b"hello, world".to_vec(), p.server_addr.unwrap()))
    );
}

#[test]
fn the_output_queue_is_bounded_and_hands_a_refused_datagram_back() {
    let _serial = serial();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = peer.local_addr().unwrap();
    #[derive(Default)]
    struct H {
        w: Option<WheelHandle>,
        refused: Option<QueueFull>,
        queued: Vec<(usize, usize)>,
        flushes: usize,
        after_flush: Option<bool>,
    }
    let out: Rc<RefCell<H>> = Rc::default();
    let o = Rc::clone(&out);
    run(
        Session::new(H::default())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, H>| -> Result<(), HandlerError> {
                    let w = Udp::builder(loopback())
                        .max_queued(10)
                        .flushed_event("flushed")
                        .build(ctx)?;
                    let id = w.id();
                    ctx.heap().w = Some(w);
                    let u = udp(ctx, id)?;
                    u.put("123456", to)?;
                    let q1 = (u.driver_out_octets(), u.driver_out_messages());
                    let refused = u.put("12345", to).expect_err("over the bound");
                    let q2 = (u.driver_out_octets(), u.driver_out_messages());
                    u.put("1234", to)?;
                    let q3 = (u.driver_out_octets(), u.driver_out_messages());
                    let h = ctx.heap();
                    h.refused = Some(refused);
                    h.queued = vec![q1, q2, q3];
                    Ok(())
                },
            )
            .on(
                "flushed",
                move |ctx: &mut Ctx<'_, H>| -> Result<(), HandlerError> {
                    ctx.heap().flushes += 1;
                    let id = *ctx.arg::<WheelId>(0)?;
                    if ctx.heap().flushes == 1 {
                        // The queue is empty again: a full-sized put goes in.
                        let ok = udp(ctx, id)?.put("0123456789", to).is_ok();
                        ctx.heap().after_flush = Some(ok);
                    } else {
                        ctx.heap().w = None;
                    }
                    Ok(())
                },
            )
            .on("_stop", move |ctx: &mut Ctx<'_, H>| {
                *o.borrow_mut() = std::mem::take(ctx.heap());
            }),
        "bounded queue",
    );
    let h = out.borrow();
    assert_eq!(h.queued, [(6, 1), (6, 1), (10, 2)]);
    let refused = h.refused.as_ref().unwrap();
    assert_eq!(refused.payload, b"12345");
    assert_eq!(refused.addr, Some(to));
    assert_eq!(refused.queued, 6);
    assert_eq!(
        refused.to_string(),
        "datagram of 5 octets refused: 6 octets already wait to be sent"
    );
    // Through `?` it becomes a handler failure like any other error.
    let _: HandlerError = refused.clone().into();
    assert_eq!(h.after_flush, Some(true));
    assert_eq!(h.flushes, 2);
    // The peer got the three datagrams that were queued, in order.
    let mut buf = [0; 16];
    for want in ["123456", "1234", "0123456789"] {
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], want.as_bytes());
    }
}

#[derive(Default)]
struct Errs {
    w: Option<WheelHandle>,
    errors: Vec<(WheelError, WheelId)>,
    flushes: usize,
}

#[test]
fn a_datagram_without_a_destination_is_an_error_event_and_the_wheel_goes_on() {
    let _serial = serial();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = peer.local_addr().unwrap();
    let out: Rc<RefCell<Errs>> = Rc::default();
    let o = Rc::clone(&out);
    run(
        Session::new(Errs::default())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Errs>| -> Result<(), HandlerError> {
                    let w = Udp::builder(loopback())
                        .error_event("error")
                        .flushed_event("flushed")
                        .build(ctx)?;
                    let u = udp(ctx, w.id())?;
                    // Not connected: `send` has nowhere to go. The next one does.
                    u.put_connected("lost")?;
                    u.put("found", to)?;
                    ctx.heap().w = Some(w);
                    Ok(())
                },
            )
            .on(
                "error",
                |ctx: &mut Ctx<'_, Errs>| -> Result<(), HandlerError> {
                    let e = ctx.arg::<WheelError>(0)?.clone();
                    let id = *ctx.arg::<WheelId>(1)?;
                    ctx.heap().errors.push((e, id));
                    Ok(())
                },
            )
            .on("flushed", |ctx: &mut Ctx<'_, Errs>| {
                ctx.heap().flushes += 1;
                ctx.heap().w = None;
            })
            .on("_stop", move |ctx: &mut Ctx<'_, Errs>| {
                *o.borrow_mut() = std::mem::take(ctx.heap());
            }),
        "send error",
    );
    let h = out.borrow();
    assert_eq!(h.errors.len(), 1, "{:?}", h.errors);
    let (e, _) = &h.errors[0];
    assert_eq!((e.operation, e.errno), ("send", EDESTADDRREQ));
    assert_eq!(e.message, "Destination address required");
    assert_eq!(h.flushes, 1);
    let mut buf = [0; 16];
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"found");
}

#[test]
fn a_port_with_no_one_behind_it_is_a_recv_error() {
    let _serial = serial();
    // A port that was just free: nothing listens there, the system answers with ICMP
    // "port unreachable", which a connected socket's next call reports.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out: Rc<RefCell<Errs>> = Rc::default();
    let o = Rc::clone(&out);
    run(
        Session::new(Errs::default())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Errs>| -> Result<(), HandlerError> {
                    let s = loopback();
                    s.connect(dead)?;
                    let w = Udp::builder(s)
                        .input_event("input")
                        .error_event("error")
                        .build(ctx)?;
                    udp(ctx, w.id())?.put_connected("anyone?")?;
                    ctx.heap().w = Some(w);
                    Ok(())
                },
            )
            .on(
                "input",
                |_: &mut Ctx<'_, Errs>| -> Result<(), HandlerError> {
                    Err("no datagram can come".into())
                },
            )
            .on(
                "error",
                |ctx: &mut Ctx<'_, Errs>| -> Result<(), HandlerError> {
                    let e = ctx.arg::<WheelError>(0)?.clone();
                    let id = *ctx.arg::<WheelId>(1)?;
                    let h = ctx.heap();
                    h.errors.push((e, id));
                    h.w = None;
                    Ok(())
                },
            )
            .on("_stop", move |ctx: &mut Ctx<'_, Errs>| {
                *o.borrow_mut() = std::mem::take(ctx.heap());
            }),
        "recv error",
    );
    let h = out.borrow();
    assert_eq!(h.errors.len(), 1, "{:?}", h.errors);
    let (e, _) = &h.errors[0];
    assert_eq!((e.operation, e.errno), ("recv", ECONNREFUSED));
    assert_eq!(e.kind, std::io::ErrorKind::ConnectionRefused);
}

#[derive(Default)]
struct Paused {
    w: Option<WheelHandle>,
    got: Vec<Vec<u8>>,
    /// Datagrams seen while paused.
    early: usize,
    ticks: usize,
}

/// A socket with `n` datagrams ("0", "1", ...) already waiting in it.
fn socket_with_datagrams(n: usize) -> (UdpSocket, std::net::UdpSocket) {
    let s = loopback();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..n {
        peer.send_to(i.to_string().as_bytes(), s.local_addr().unwrap())
            .unwrap();
    }
    (s, peer)
}

#[test]
fn paused_input_waits_in_the_socket_until_resumed() {
    let _serial = serial();
    let (socket, _peer) = socket_with_datagrams(3);
    let socket = RefCell::new(Some(socket));
    let out: Rc<RefCell<Paused>> = Rc::default();
    let o = Rc::clone(&out);
    run(
        Session::new(Paused::default())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Paused>| -> Result<(), HandlerError> {
                    let s = socket.borrow_mut().take().ok_or("once")?;
                    let w = Udp::builder(s).input_event("input").build(ctx)?;
                    let u = udp(ctx, w.id())?;
                    u.pause_input();
                    assert!(u.is_input_paused());
                    ctx.heap().w = Some(w);
                    ctx.yield_("tick", ())?;
                    Ok(())
                },
            )
            .on(
                "tick",
                |ctx: &mut Ctx<'_, Paused>| -> Result<(), HandlerError> {
                    // Five timeslices, each with a poll that reports the socket readable.
                    ctx.heap().ticks += 1;
                    if ctx.heap().ticks < 5 {
                        ctx.yield_("tick", ())?;
                    } else {
                        let id = ctx.heap().w.as_ref().ok_or("wheel")?.id();
                        udp(ctx, id)?.resume_input();
                    }
                    Ok(())
                },
            )
            .on(
                "input",
                |ctx: &mut Ctx<'_, Paused>| -> Result<(), HandlerError> {
                    let payload = ctx.take_arg::<Vec<u8>>(0)?;
                    let h = ctx.heap();
                    if h.ticks < 5 {
                        h.early += 1;
                    }
                    h.got.push(payload);
                    if h.got.len() == 3 {
                        h.w = None;
                    }
                    Ok(())
                },
            )
            .on("_stop", move |ctx: &mut Ctx<'_, Paused>| {
                *o.borrow_mut() = std::mem::take(ctx.heap());
            }),
        "pause",
    );
    let h = out.borrow();
    assert_eq!(h.early, 0, "nothing delivered while paused");
    assert_eq!(h.got, [b"0".to_vec(), b"1".to_vec(), b"2".to_vec()]);
}

#[test]
fn dropping_the_wheel_in_its_input_event_stops_it_at_once() {
    let _serial = serial();
    let before = fds_now();
    let (socket, peer) = socket_with_datagrams(3);
    let socket = RefCell::new(Some(socket));
    let out: Rc<RefCell<Paused>> = Rc::default();
    let o = Rc::clone(&out);
    run(
        Session::new(Paused::default())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Paused>| -> Result<(), HandlerError> {
                    let s = socket.borrow_mut().take().ok_or("once")?;
                    let w = Udp::builder(s).input_event("input").build(ctx)?;
                    ctx.heap().w = Some(w);
                    Ok(())
                },
            )
            .on(
                "input",
                |ctx: &mut Ctx<'_, Paused>| -> Result<(), HandlerError> {
                    let payload = ctx.take_arg::<Vec<u8>>(0)?;
                    let h = ctx.heap();
                    h.got.push(payload);
                    h.w = None;
                    Ok(())
                },
            )
            .on("_stop", move |ctx: &mut Ctx<'_, Paused>| {
                *o.borrow_mut() = std::mem::take(ctx.heap());
            }),
        "drop in input",
    );
    assert_eq!(out.borrow().got, [b"0".to_vec()]);
    drop(peer);
    assert_no_new_fds(&before);
}

#[test]
fn a_datagram_of_60000_octets_arrives_whole() {
    let _serial = serial();
    let (socket, peer) = socket_with_datagrams(0);
    let big: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
    peer.send_to(&big, socket.local_addr().unwrap()).unwrap();
    let socket = RefCell::new(Some(socket));
    let out: Rc<RefCell<Paused>> = Rc::default();
    let o = Rc::clone(&out);
    run(
        Session::new(Paused::default())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Paused>| -> Result<(), HandlerError> {
                    let s = socket.borrow_mut().take().ok_or("once")?;
                    ctx.heap().w = Some(Udp::builder(s).input_event("input").build(ctx)?);
                    Ok(())
                },
            )
            .on(
                "input",
                |ctx: &mut Ctx<'_, Paused>| -> Result<(), HandlerError> {
                    let payload = ctx.take_arg::<Vec<u8>>(0)?;
                    let h = ctx.heap();
                    h.got.push(payload);
                    h.w = None;
                    Ok(())
                },
            )
            .on("_stop", move |ctx: &mut Ctx<'_, Paused>| {
                *o.borrow_mut() = std::mem::take(ctx.heap());
            }),
        "big datagram",
    );
    assert_eq!(out.borrow().got, [big]);
}

#[test]
fn a_renamed_input_event_takes_the_next_datagram() {
    let _serial = serial();
    let (socket, _peer) = socket_with_datagrams(2);
    let socket = RefCell::new(Some(socket));
    let out: Rc<RefCell<Vec<String>>> = Rc::default();
    let (o1, o2) = (Rc::clone(&out), Rc::clone(&out));
    run(
        Session::new(None::<WheelHandle>)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let s = socket.borrow_mut().take().ok_or("once")?;
                    *ctx.heap() = Some(Udp::builder(s).input_event("first").build(ctx)?);
                    Ok(())
                },
            )
            .on(
                "first",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    o1.borrow_mut().push("first".into());
                    let id = *ctx.arg::<WheelId>(2)?;
                    udp(ctx, id)?.event(UdpEvent::Input, Some("second"));
                    Ok(())
                },
            )
            .on("second", move |ctx: &mut Ctx<'_, Option<WheelHandle>>| {
                o2.borrow_mut().push("second".into());
                *ctx.heap() = None;
            }),
        "rename",
    );
    assert_eq!(*out.borrow(), ["first", "second"]);
}

#[test]
fn the_socket_can_be_taken_back_out() {
    let _serial = serial();
    let socket = loopback();
    let addr = socket.local_addr().unwrap();
    let mut k = Kernel::new().unwrap();
    let back: Rc<RefCell<Option<UdpSocket>>> = Rc::default();
    let b = Rc::clone(&back);
    let socket = RefCell::new(Some(socket));
    k.create(Session::new(()).on(
        "_start",
        move |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
            let s = socket.borrow_mut().take().ok_or("once")?;
            let w = Udp::builder(s).input_event("input").build(ctx)?;
            assert_eq!(
                ctx.wheel_ref::<Udp>(w.id()).ok_or("wheel")?.local_addr()?,
                addr
            );
            let taken = ctx.wheel_take::<Udp>(w).ok_or("taken")?;
            *b.borrow_mut() = Some(taken.into_socket());
            Ok(())
        },
    ))
    .unwrap();
    // With its only wheel taken, the session has nothing left to wait for.
    k.run().unwrap();
    assert_eq!(back.borrow().as_ref().unwrap().local_addr().unwrap(), addr);
}

#[test]
fn an_empty_queue_bound_is_refused() {
    let _serial = serial();
    let mut k = Kernel::new().unwrap();
    let r: Rc<RefCell<Option<reactor::Result<WheelHandle>>>> = Rc::default();
    let r2 = Rc::clone(&r);
    k.create(Session::new(()).on("_start", move |ctx: &mut Ctx<'_, ()>| {
        *r2.borrow_mut() = Some(Udp::builder(loopback()).max_queued(0).build(ctx));
    }))
    .unwrap();
    k.run().unwrap();
    let got = r.borrow_mut().take().unwrap();
    assert!(matches!(got, Err(Error::InvalidArgument(_))), "{got:?}");
}
