//! Port of poe-test-loops `wheel_sf_udp.pm`, and SocketFactory's other datagram sockets.
//!
//! Upstream: one session makes two UDP sockets with SocketFactory (`BindAddress =>
//! '127.0.0.1'`, `BindPort => 0`, `SocketProtocol => 'udp'`, `Reuse => 'yes'`), watches
//! each with `select_read`, and once both exist the second sends "1: this is a test" to
//! the first. Each peer answers what it receives, rot13'd, with `recv`/`send`, until it has
//! sent 10 datagrams; then `ev_took_too_long` (0.5 s after the last datagram, 5 s at most)
//! stops watching the sockets and the session ends. Its `_stop` checks: no socket, send or
//! receive errors on either peer, and 10 datagrams sent by each.
//!
//! Perl-only parts: `getsockname` + `unpack_sockaddr_in` is `local_addr()`; `send` and
//! `recv` are `send_to` and `recv_from`; `FailureEvent` has the wheel id in `ARG1`, not
//! `ARG3` (the error is one `WheelError`).
//!
//! The other tests: what POE's SocketFactory does with the rest of the datagram options
//! (connected UDP sockets, unbound ones, IPv6, UNIX datagram sockets, abstract names), its
//! failures, and the combinations `build` refuses.

mod common;
use common::{assert_no_new_fds, timeout};
use mio::net::{UdpSocket, UnixDatagram};
use reactor::errno::{EADDRINUSE, EPROTONOSUPPORT};
use reactor::wheel::{Domain, Protocol, SocketFactory, SocketType, WheelError};
use reactor::{Ctx, Error, HandlerError, Kernel, Session, WheelHandle, WheelId};
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::rc::Rc;

/// Serialises the tests of this file, so that the descriptors one test opens are not taken
/// for another's leak (`common::assert_no_new_fds`).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The descriptors open now, after a kernel was made and dropped once (so that what the
/// first kernel sets up for the whole process is not counted).
fn fds_now() -> common::Fds {
    let mut k = Kernel::new().unwrap();
    k.run().unwrap();
    common::open_fds()
}

const MAX_SEND_COUNT: usize = 10;

fn rot13(b: &[u8]) -> Vec<u8> {
    b.iter()
        .map(|&c| match c {
            b'a'..=b'm' | b'A'..=b'M' => c + 13,
            b'n'..=b'z' | b'N'..=b'Z' => c - 13,
            _ => c,
        })
        .collect()
}

/// One peer's part of the heap (`peer_a_*` or `peer_b_*`).
#[derive(Default)]
struct Peer {
    setup_wheel: Option<WheelHandle>,
    id: Option<WheelId>,
    socket: Option<UdpSocket>,
    recv_error: usize,
    send_error: usize,
    sock_error: usize,
    send_count: usize,
    /// What the success event said besides the socket: (ARG1, ARG2, ARG3).
    success_args: Option<(Option<IpAddr>, u16, WheelId)>,
    /// What each datagram said, as received.
    received: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Heap {
    peers: [Peer; 2],
    test_one: bool,
    test_two: bool,
}

/// What `_stop` saw: the heap, kept for the assertions.
type Stopped = Rc<RefCell<Option<Heap>>>;

fn udp_session(stopped: Stopped) -> Session<Heap> {
    let mut s = Session::new(Heap::default())
        .on(
            "_start",
            |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                for (i, ev) in ["a", "b"].iter().enumerate() {
                    let w = SocketFactory::udp()
                        .bind_address("127.0.0.1")
                        .bind_port(0)
                        .reuse(true)
                        .success_event(&format!("ev_peer_{ev}_socket"))
                        .failure_event(&format!("ev_peer_{ev}_error"))
                        .build(ctx)?;
                    let p = &mut ctx.heap().peers[i];
                    p.id = Some(w.id());
                    p.setup_wheel = Some(w);
                }
                ctx.heap().test_one = true;
                ctx.heap().test_two = true;
                ctx.delay("ev_took_too_long", 5, ())?;
                Ok(())
            },
        )
        .on("_stop", move |ctx: &mut Ctx<'_, Heap>| {
            *stopped.borrow_mut() = Some(std::mem::take(ctx.heap()));
        })
        .on("ev_took_too_long", |ctx: &mut Ctx<'_, Heap>| {
            for i in 0..2 {
                if let Some(s) = ctx.heap().peers[i].socket.take() {
                    let _ = ctx.select_read_clear(&s);
                }
            }
        });
    for (i, me) in ["a", "b"].into_iter().enumerate() {
        let other = 1 - i;
        s = s
            .on(
                &format!("ev_peer_{me}_socket"),
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    let socket = ctx.take_arg::<UdpSocket>(0)?;
                    let args = (
                        *ctx.arg::<Option<IpAddr>>(1)?,
                        *ctx.arg::<u16>(2)?,
                        *ctx.arg::<WheelId>(3)?,
                    );
                    let input = format!("ev_peer_{me}_input");
                    ctx.select_read(&socket, &input, ())?;
                    let heap = ctx.heap();
                    heap.peers[i].setup_wheel = None;
                    heap.peers[i].success_args = Some(args);
                    heap.peers[i].socket = Some(socket);
                    if heap.peers[other].socket.is_some() {
                        // getsockname($heap->{peer_X_socket_handle})
                        let to = heap.peers[other]
                            .socket
                            .as_ref()
                            .ok_or("other")?
                            .local_addr()?;
                        let p = &mut heap.peers[i];
                        p.send_count += 1;
                        let socket = p.socket.as_ref().ok_or("socket")?;
                        if socket.send_to(b"1: this is a test", to).is_err() {
                            p.send_error += 1;
                        }
                    }
                    Ok(())
                },
            )
            .on(
                &format!("ev_peer_{me}_error"),
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    let id = *ctx.arg::<WheelId>(1)?;
                    let heap = ctx.heap();
                    if Some(id) == heap.peers[i].id {
                        heap.peers[i].setup_wheel = None;
                        if i == 0 {
                            heap.test_one = false;
                        } else {
                            heap.test_two = false;
                        }
                    }
                    heap.peers[i].sock_error += 1;
                    Ok(())
                },
            )
            .on(
                &format!("ev_peer_{me}_input"),
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    // ARG0 is the descriptor; the socket is the one in the heap.
                    let fd = *ctx.arg::<RawFd>(0)?;
                    let p = &mut ctx.heap().peers[i];
                    let socket = p.socket.as_ref().ok_or("no socket")?;
                    assert_eq!(fd, socket.as_raw_fd());
                    let mut buf = [0u8; 1024];
                    match socket.recv_from(&mut buf) {
                        Ok((n, remote)) => {
                            p.received.push(buf[..n].to_vec());
                            if p.send_count < MAX_SEND_COUNT {
                                let message = rot13(&buf[..n]);
                                p.send_count += 1;
                                if socket.send_to(&message, remote).is_err() {
                                    p.send_error += 1;
                                }
                            } else {
                                ctx.delay("ev_took_too_long", 0.5, ())?;
                            }
                        }
                        Err(_) => p.recv_error += 1,
                    }
                    Ok(())
                },
            );
    }
    s
}

#[test]
fn two_udp_peers_trade_rot13_datagrams() {
    let _serial = serial();
    let _guard = timeout(10, "two_udp_peers_trade_rot13_datagrams");
    let before = fds_now();
    let stopped: Stopped = Rc::default();
    let mut k = Kernel::new().unwrap();
    k.create(udp_session(Rc::clone(&stopped))).unwrap();
    k.run().unwrap();
    drop(k);
    let heap = stopped.borrow_mut().take().expect("_stop ran");
    let [a, b] = &heap.peers;
    // ok($heap->{test_one}, "test one"), ok($heap->{test_two}, "test two")
    assert!(heap.test_one, "test one");
    assert!(heap.test_two, "test two");
    // ok(!$heap->{peer_X_recv_error}, ...), send and sock errors likewise
    for (name, p) in [("a", a), ("b", b)] {
        assert_eq!(p.recv_error, 0, "peer {name} no recv errors");
        assert_eq!(p.send_error, 0, "peer {name} no send errors");
        assert_eq!(p.sock_error, 0, "peer {name} no sock errors");
        // ok($heap->{peer_X_send_count} == $max_send_count, ...)
        assert_eq!(p.send_count, MAX_SEND_COUNT, "peer {name} sent 10");
    }
    // Beyond upstream: what the exchange carried, and what SocketFactory handed over.
    assert_eq!(b.received.len(), MAX_SEND_COUNT);
    assert_eq!(a.received.len(), MAX_SEND_COUNT);
    // b started, so a hears the text as sent and b hears it rot13'd.
    assert!(a.received.iter().all(|m| m == b"1: this is a test"));
    assert!(b.received.iter().all(|m| m == b"1: guvf vf n grfg"));
    // A bound UDP socket's SuccessEvent: (socket, undef, undef, id).
    assert_eq!(a.success_args, Some((None, 0, a.id.unwrap())));
    assert_eq!(b.success_args, Some((None, 0, b.id.unwrap())));
    assert_ne!(a.id, b.id);
    assert_no_new_fds(&before);
}

/// Runs one session whose `_start` builds what `start` makes and records every
/// SuccessEvent and FailureEvent; returns them in order.
#[derive(Debug)]
enum Outcome {
    Success {
        socket: Box<dyn std::any::Any>,
        addr: Option<IpAddr>,
        port: u16,
        id: WheelId,
    },
    Failure(WheelError),
}

type Start = Box<dyn Fn(&mut Ctx<'_, Vec<WheelHandle>>) -> reactor::Result<()>>;

fn outcomes(start: Start) -> Vec<Outcome> {
    let seen: Rc<RefCell<Vec<Outcome>>> = Rc::default();
    let mut k = Kernel::new().unwrap();
    let (s1, s2) = (Rc::clone(&seen), Rc::clone(&seen));
    k.create(
        Session::new(Vec::<WheelHandle>::new())
            .on("_start", move |ctx: &mut Ctx<'_, Vec<WheelHandle>>| {
                start(ctx)
            })
            .on(
                "ok",
                move |ctx: &mut Ctx<'_, Vec<WheelHandle>>| -> Result<(), HandlerError> {
                    let socket: Box<dyn std::any::Any> = if ctx.args().is::<UdpSocket>(0) {
                        Box::new(ctx.take_arg::<UdpSocket>(0)?)
                    } else {
                        Box::new(ctx.take_arg::<UnixDatagram>(0)?)
                    };
                    s1.borrow_mut().push(Outcome::Success {
                        socket,
                        addr: *ctx.arg::<Option<IpAddr>>(1)?,
                        port: *ctx.arg::<u16>(2)?,
                        id: *ctx.arg::<WheelId>(3)?,
                    });
                    Ok(())
                },
            )
            .on(
                "bad",
                move |ctx: &mut Ctx<'_, Vec<WheelHandle>>| -> Result<(), HandlerError> {
                    // ARG1 is the id of the one factory there is.
                    assert_eq!(
                        ctx.heap().first().map(WheelHandle::id),
                        ctx.arg::<WheelId>(1).ok().copied()
                    );
                    s2.borrow_mut()
                        .push(Outcome::Failure(ctx.arg::<WheelError>(0)?.clone()));
                    ctx.heap().clear();
                    Ok(())
                },
            ),
    )
    .unwrap();
    let _guard = timeout(10, "outcomes");
    k.run().unwrap();
    let out = std::mem::take(&mut *seen.borrow_mut());
    out
}

fn socket_of<T: 'static>(o: Outcome) -> (T, Option<IpAddr>, u16, WheelId) {
    match o {
        Outcome::Success {
            socket,
            addr,
            port,
            id,
        } => (
            *socket.downcast::<T>().expect("a socket of that type"),
            addr,
            port,
            id,
        ),
        Outcome::Failure(e) => panic!("failed: {e}"),
    }
}

#[test]
fn a_connected_udp_socket_comes_with_its_peer() {
    let _serial = serial();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = peer.local_addr().unwrap();
    let mut got = outcomes(Box::new(move |ctx| {
        let w = SocketFactory::connect("127.0.0.1", to.port())
            .protocol(Protocol::Udp)
            .bind_address("127.0.0.1")
            .success_event("ok")
            .failure_event("bad")
            .build(ctx)?;
        // The local address is known at once, as POE's getsockname.
        let local = ctx
            .wheel_ref::<SocketFactory>(w.id())
            .unwrap()
            .getsockname();
        assert_eq!(local.map(|a| a.ip()), Some(IpAddr::from([127, 0, 0, 1])));
        ctx.heap().push(w);
        Ok(())
    }));
    assert_eq!(got.len(), 1);
    let (socket, addr, port, _) = socket_of::<UdpSocket>(got.remove(0));
    assert_eq!((addr, port), (Some(to.ip()), to.port()));
    assert_eq!(socket.peer_addr().unwrap(), to);
    // Connected: `send` needs no address.
    socket.send(b"hello").unwrap();
    let mut buf = [0; 8];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"hello"[..], socket.local_addr().unwrap())
    );
}

#[test]
fn a_udp_socket_without_bind_parameters_is_not_bound() {
    let _serial = serial();
    // POE binds a UDP socket only when BindAddress or BindPort is given.
    let mut got = outcomes(Box::new(|ctx| {
        let w = SocketFactory::udp()
            .success_event("ok")
            .failure_event("bad")
            .build(ctx)?;
        ctx.heap().push(w);
        Ok(())
    }));
    let (socket, addr, port, _) = socket_of::<UdpSocket>(got.remove(0));
    assert_eq!((addr, port), (None, 0));
    assert_eq!(socket.local_addr().unwrap(), "0.0.0.0:0".parse().unwrap());
}

#[test]
fn the_success_event_comes_even_when_the_factory_is_dropped_at_once() {
    let _serial = serial();
    // POE yields the event from `new`: deleting the wheel does not take it back.
    let got = outcomes(Box::new(|ctx| {
        let w = SocketFactory::udp()
            .bind_address("127.0.0.1")
            .success_event("ok")
            .failure_event("bad")
            .build(ctx)?;
        drop(w);
        Ok(())
    }));
    assert_eq!(got.len(), 1);
    assert!(matches!(got[0], Outcome::Success { .. }));
}

#[test]
fn udp_over_ipv6() {
    let _serial = serial();
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback address here");
        return;
    }
    let mut got = outcomes(Box::new(|ctx| {
        let w = SocketFactory::udp()
            .domain(Domain::Inet6)
            .bind_address("::1")
            .success_event("ok")
            .failure_event("bad")
            .build(ctx)?;
        ctx.heap().push(w);
        Ok(())
    }));
    let (socket, ..) = socket_of::<UdpSocket>(got.remove(0));
    let local = socket.local_addr().unwrap();
    assert_eq!(local.ip(), "::1".parse::<IpAddr>().unwrap());
    assert_ne!(local.port(), 0);
}

#[test]
fn a_udp_bind_to_a_port_in_use_is_a_failure_event() {
    let _serial = serial();
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let got = outcomes(Box::new(move |ctx| {
        let w = SocketFactory::udp()
            .bind_address("127.0.0.1")
            .bind_port(port)
            .success_event("ok")
            .failure_event("bad")
            .build(ctx)?;
        ctx.heap().push(w);
        Ok(())
    }));
    match &got[..] {
        [Outcome::Failure(e)] => {
            assert_eq!((e.operation, e.errno), ("bind", EADDRINUSE));
            assert_eq!(e.message, "Address already in use");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tcp_datagrams_fail_as_in_poe() {
    let _serial = serial();
    // SocketType => SOCK_DGRAM with the default protocol (tcp): socket() says
    // "Protocol not supported", as under POE.
    let got = outcomes(Box::new(|ctx| {
        let w = SocketFactory::listen()
            .bind_address("127.0.0.1")
            .socket_type(SocketType::Datagram)
            .success_event("ok")
            .failure_event("bad")
            .build(ctx)?;
        ctx.heap().push(w);
        Ok(())
    }));
    match &got[..] {
        [Outcome::Failure(e)] => {
            assert_eq!((e.operation, e.errno), ("socket", EPROTONOSUPPORT));
        }
        other => panic!("{other:?}"),
    }
}

/// Builds `b` in a session and returns what `build` said.
fn build_result(b: reactor::wheel::SocketFactoryBuilder) -> reactor::Result<()> {
    let out = Rc::new(RefCell::new(None));
    let o = Rc::clone(&out);
    let b = RefCell::new(Some(b));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(())
            .on("_start", move |ctx: &mut Ctx<'_, ()>| {
                let b = b.borrow_mut().take().expect("once");
                *o.borrow_mut() = Some(
                    b.success_event("ok")
                        .failure_event("bad")
                        .build(ctx)
                        .map(drop),
                );
            })
            .on("ok", |_: &mut Ctx<'_, ()>| {})
            .on("bad", |_: &mut Ctx<'_, ()>| {}),
    )
    .unwrap();
    k.run().unwrap();
    let r = out.borrow_mut().take().expect("built");
    r
}

#[test]
fn combinations_that_mean_nothing_are_refused_by_build() {
    let _serial = serial();
    let dir = TempDir::new("sf-udp-bad");
    // SocketProtocol 'udp' with AF_UNIX (POE: "SocketProtocol ignored for Unix socket").
    let r = build_result(SocketFactory::unix(dir.0.join("s")).protocol(Protocol::Udp));
    match r {
        Err(Error::InvalidArgument(what)) => assert!(what.contains("udp"), "{what}"),
        other => panic!("{other:?}"),
    }
    // ListenQueue with UDP (POE: "Ignoring ListenQueue parameter for non-listening socket").
    let r = build_result(
        SocketFactory::udp()
            .bind_address("127.0.0.1")
            .listen_queue(5),
    );
    match r {
        Err(e @ Error::InvalidArgument(_)) => {
            assert!(e.to_string().contains("ListenQueue"), "{e}");
            assert_eq!(e.errno(), reactor::errno::EINVAL);
        }
        other => panic!("{other:?}"),
    }
    // ListenQueue with a UNIX datagram socket.
    let r = build_result(
        SocketFactory::unix(dir.0.join("d"))
            .socket_type(SocketType::Datagram)
            .listen_queue(5),
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    // Nothing was made.
    assert!(!dir.0.join("s").exists() && !dir.0.join("d").exists());
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let base = std::env::temp_dir();
        for n in 0..1000 {
            let p = base.join(format!("reactor-{tag}-{}-{n}", std::process::id()));
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

/// A UNIX datagram server at `server` and a client connected to it from its own address
/// `client`, both made by SocketFactory and read with `select_read`: the client says
/// "ping", the server answers "pong" to the sender's address, the client stops both.
#[derive(Default)]
struct Dgram {
    server: Option<UnixDatagram>,
    client: Option<UnixDatagram>,
    factories: Vec<WheelHandle>,
    server_got: Vec<(Vec<u8>, Option<PathBuf>)>,
    client_got: Vec<Vec<u8>>,
    connected_args: Option<(Option<IpAddr>, u16)>,
}

fn unix_datagram_exchange(
    server: reactor::wheel::SocketFactoryBuilder,
    client: reactor::wheel::SocketFactoryBuilder,
) -> Dgram {
    let out: Rc<RefCell<Option<Dgram>>> = Rc::default();
    let o = Rc::clone(&out);
    let builders = RefCell::new(Some((server, client)));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(Dgram::default())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Dgram>| -> Result<(), HandlerError> {
                    let (server, client) = builders.borrow_mut().take().ok_or("once")?;
                    let s = server
                        .socket_type(SocketType::Datagram)
                        .success_event("server_ready")
                        .failure_event("failed")
                        .build(ctx)?;
                    ctx.heap().factories.push(s);
                    // The server's socket is bound now: the client may connect to it.
                    let c = client
                        .socket_type(SocketType::Datagram)
                        .success_event("client_ready")
                        .failure_event("failed")
                        .build(ctx)?;
                    ctx.heap().factories.push(c);
                    Ok(())
                },
            )
            .on(
                "server_ready",
                |ctx: &mut Ctx<'_, Dgram>| -> Result<(), HandlerError> {
                    let s = ctx.take_arg::<UnixDatagram>(0)?;
                    ctx.select_read(&s, "server_input", ())?;
                    ctx.heap().server = Some(s);
                    Ok(())
                },
            )
            .on(
                "client_ready",
                |ctx: &mut Ctx<'_, Dgram>| -> Result<(), HandlerError> {
                    let c = ctx.take_arg::<UnixDatagram>(0)?;
                    let args = (*ctx.arg::<Option<IpAddr>>(1)?, *ctx.arg::<u16>(2)?);
                    ctx.select_read(&c, "client_input", ())?;
                    c.send(b"ping")?;
                    let h = ctx.heap();
                    h.connected_args = Some(args);
                    h.client = Some(c);
                    h.factories.clear();
                    Ok(())
                },
            )
            .on(
                "server_input",
                |ctx: &mut Ctx<'_, Dgram>| -> Result<(), HandlerError> {
                    let h = ctx.heap();
                    let s = h.server.as_ref().ok_or("server")?;
                    let mut buf = [0; 64];
                    let (n, from) = s.recv_from(&mut buf)?;
                    let path = from.as_pathname().map(PathBuf::from).or_else(|| {
                        use std::os::linux::net::SocketAddrExt;
                        from.as_abstract_name()
                            .map(|n| PathBuf::from(format!("@{}", String::from_utf8_lossy(n))))
                    });
                    h.server_got.push((buf[..n].to_vec(), path));
                    // Answer the sender at its own address.
                    use std::os::linux::net::SocketAddrExt;
                    let answer = match (from.as_pathname(), from.as_abstract_name()) {
                        (Some(p), _) => s.send_to(b"pong", p),
                        (None, Some(name)) => {
                            // mio sends to paths only: std's socket, on a copy of the
                            // descriptor, sends to an abstract name.
                            use std::os::fd::AsFd;
                            let a = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                            let fd = s.as_fd().try_clone_to_owned()?;
                            std::os::unix::net::UnixDatagram::from(fd).send_to_addr(b"pong", &a)
                        }
                        (None, None) => return Err("the client has no address".into()),
                    };
                    answer?;
                    Ok(())
                },
            )
            .on(
                "client_input",
                |ctx: &mut Ctx<'_, Dgram>| -> Result<(), HandlerError> {
                    let h = ctx.heap();
                    let c = h.client.as_ref().ok_or("client")?;
                    let mut buf = [0; 64];
                    let n = c.recv(&mut buf)?;
                    h.client_got.push(buf[..n].to_vec());
                    let (s, c) = (h.server.take(), h.client.take());
                    if let Some(s) = s {
                        ctx.select_read_clear(&s)?;
                    }
                    if let Some(c) = c {
                        ctx.select_read_clear(&c)?;
                    }
                    Ok(())
                },
            )
            .on(
                "failed",
                |ctx: &mut Ctx<'_, Dgram>| -> Result<(), HandlerError> {
                    Err(format!("failed: {}", ctx.arg::<WheelError>(0)?).into())
                },
            )
            .on("_stop", move |ctx: &mut Ctx<'_, Dgram>| {
                *o.borrow_mut() = Some(std::mem::take(ctx.heap()));
            }),
    )
    .unwrap();
    let _guard = timeout(10, "unix_datagram_exchange");
    k.run().unwrap();
    let r = out.borrow_mut().take().expect("_stop ran");
    r
}

#[test]
fn unix_datagram_sockets_at_paths() {
    let _serial = serial();
    let before = fds_now();
    let dir = TempDir::new("sf-unix-dgram");
    let (srv, cli) = (dir.0.join("server"), dir.0.join("client"));
    let r = unix_datagram_exchange(
        SocketFactory::unix(&srv),
        // POE: SocketDomain => AF_UNIX, SocketType => SOCK_DGRAM, RemoteAddress => $srv,
        // BindAddress => $cli.
        SocketFactory::connect(srv.to_str().unwrap(), 0)
            .domain(Domain::Unix)
            .bind_address(cli.to_str().unwrap()),
    );
    assert_eq!(r.server_got, [(b"ping".to_vec(), Some(cli.clone()))]);
    assert_eq!(r.client_got, [b"pong".to_vec()]);
    // A connected UNIX socket has no IP peer: (undef, undef) here as (None, 0).
    assert_eq!(r.connected_args, Some((None, 0)));
    // The socket files stay, as POE leaves them; the program removes them.
    assert!(srv.exists() && cli.exists());
    drop(dir);
    assert_no_new_fds(&before);
}

#[test]
fn unix_datagram_sockets_with_abstract_names() {
    let _serial = serial();
    let before = fds_now();
    let tag = format!("reactor-dgram-{}", std::process::id());
    let (srv, cli) = (format!("{tag}-server"), format!("{tag}-client"));
    let r = unix_datagram_exchange(
        SocketFactory::unix_abstract(&srv),
        // The POE spelling: a path that starts with NUL.
        SocketFactory::unix_abstract(&srv)
            .unix_connect()
            .bind_address(format!("\0{cli}")),
    );
    assert_eq!(
        r.server_got,
        [(b"ping".to_vec(), Some(PathBuf::from(format!("@{cli}"))))]
    );
    assert_eq!(r.client_got, [b"pong".to_vec()]);
    // Abstract names leave no file behind.
    assert!(!std::env::temp_dir().join(&srv).exists());
    assert_no_new_fds(&before);
}

#[test]
fn a_udp_socket_works_with_select_read_and_the_kernel_s_level_triggering() {
    let _serial = serial();
    // Three datagrams wait before the watcher exists; the handler reads one per call:
    // the watcher is called again while data remains, once per timeslice, as under POE.
    let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let to = socket.local_addr().unwrap();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for m in ["one", "two", "three"] {
        peer.send_to(m.as_bytes(), to).unwrap();
    }
    #[derive(Default)]
    struct H {
        socket: Option<UdpSocket>,
        got: Vec<(String, SocketAddr)>,
        calls: usize,
    }
    let out: Rc<RefCell<Vec<(String, SocketAddr)>>> = Rc::default();
    let o = Rc::clone(&out);
    let socket = RefCell::new(Some(socket));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(H::default())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, H>| -> Result<(), HandlerError> {
                    let s = socket.borrow_mut().take().ok_or("once")?;
                    ctx.select_read(&s, "readable", ())?;
                    ctx.heap().socket = Some(s);
                    Ok(())
                },
            )
            .on(
                "readable",
                |ctx: &mut Ctx<'_, H>| -> Result<(), HandlerError> {
                    let h = ctx.heap();
                    h.calls += 1;
                    let s = h.socket.as_ref().ok_or("socket")?;
                    let mut buf = [0; 16];
                    let (n, from) = s.recv_from(&mut buf)?;
                    h.got.push((String::from_utf8(buf[..n].to_vec())?, from));
                    if h.got.len() == 3 {
                        let s = h.socket.take().ok_or("socket")?;
                        ctx.select_read_clear(&s)?;
                    }
                    Ok(())
                },
            )
            .on("_stop", move |ctx: &mut Ctx<'_, H>| {
                assert_eq!(ctx.heap().calls, 3, "one call per datagram");
                *o.borrow_mut() = std::mem::take(&mut ctx.heap().got);
            }),
    )
    .unwrap();
    let _guard = timeout(10, "select_read on a UdpSocket");
    k.run().unwrap();
    let from = peer.local_addr().unwrap();
    assert_eq!(
        *out.borrow(),
        [
            ("one".to_owned(), from),
            ("two".to_owned(), from),
            ("three".to_owned(), from)
        ]
    );
}
