//! Port of poe-test-loops `wheel_accept.pm`: a ListenAccept wheel on a listening socket made
//! outside POE accepts five SocketFactory clients, its events renamed with `event()` right
//! after construction. Also the UNIX-listener variant and the port's `pause_accept`.
//!
//! Differences from POE: `AcceptEvent` carries the peer as `Option<IpAddr>` (ARG1) and port
//! (ARG2) with the wheel ID at ARG3, where POE passes accept()'s packed sockaddr as ARG1 and
//! the ID as ARG2. POE 1.370's ListenAccept has no `pause_accept`; this port's has.

mod common;
use common::timeout;
use mio::net::{TcpStream, UnixStream};
use reactor::wheel::WheelError;
use reactor::wheel::{ListenAccept, SocketFactory};
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle, WheelId};
use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;

const CONNECTOR_COUNT: usize = 5;

/// A peer as AcceptEvent reports it: address (none for UNIX sockets) and port.
type Peer = (Option<IpAddr>, u16);

#[derive(Default, Debug)]
struct Log {
    /// (peer address, peer port) of each accepted connection.
    accepted: Vec<Peer>,
    /// Events that arrived under the names given before `event()` renamed them.
    old_names: Vec<String>,
    wrong_id: usize,
    listener_errors: Vec<String>,
    /// Local ports of the connectors, as their SocketFactory bound them.
    connector_ports: Vec<u16>,
    connected: usize,
    connect_errors: Vec<String>,
    timeouts: usize,
}

type Shared = Rc<RefCell<Log>>;

#[derive(Default)]
struct Listener {
    wheel: Option<WheelHandle>,
    accept_count: usize,
}

fn listener_session(log: Shared, listening: std::net::TcpListener) -> Session<Listener> {
    let listening = RefCell::new(Some(listening));
    let (l1, l2, l3, l4) = (Rc::clone(&log), Rc::clone(&log), Rc::clone(&log), log);
    Session::new(Listener::default())
        .on(
            "_start",
            move |ctx: &mut Ctx<'_, Listener>| -> Result<(), HandlerError> {
                let sock = listening.borrow_mut().take().ok_or("started twice")?;
                let w = ListenAccept::tcp(sock, "got_connection_nonexistent")?
                    .error_event("got_error_nonexistent")
                    .build(ctx)?;
                let id = w.id();
                ctx.heap().wheel = Some(w);
                ctx.wheel_mut::<ListenAccept>(id)
                    .ok_or("no wheel")?
                    .event(Some("got_connection"), Some("got_error"));
                ctx.delay("got_timeout", 10.0, ())?;
                Ok(())
            },
        )
        .on(
            "got_connection",
            move |ctx: &mut Ctx<'_, Listener>| -> Result<(), HandlerError> {
                // The accepted socket, then the peer, then the wheel ID.
                let _sock = ctx.take_arg::<TcpStream>(0)?;
                let peer = (*ctx.arg::<Option<IpAddr>>(1)?, *ctx.arg::<u16>(2)?);
                let id = *ctx.arg::<WheelId>(3)?;
                if Some(id) != ctx.heap().wheel.as_ref().map(WheelHandle::id) {
                    l1.borrow_mut().wrong_id += 1;
                }
                l1.borrow_mut().accepted.push(peer);
                ctx.heap().accept_count += 1;
                if ctx.heap().accept_count == CONNECTOR_COUNT {
                    // Upstream waits a second for strays; a tenth is plenty on loopback.
                    ctx.delay("got_timeout", 0.1, ())?;
                }
                Ok(())
            },
        )
        .on(
            "got_error",
            move |ctx: &mut Ctx<'_, Listener>| -> Result<(), HandlerError> {
                let msg = format!(
                    "{} {}",
                    ctx.arg::<WheelError>(0)?.operation,
                    ctx.arg::<WheelError>(0)?.errno
                );
                l2.borrow_mut().listener_errors.push(msg);
                ctx.heap().wheel = None;
                ctx.delay("got_timeout", 0.1, ())?;
                Ok(())
            },
        )
        .on("got_timeout", move |ctx: &mut Ctx<'_, Listener>| {
            l3.borrow_mut().timeouts += 1;
            ctx.heap().wheel = None;
        })
        .on(
            "got_connection_nonexistent",
            move |ctx: &mut Ctx<'_, Listener>| {
                let e = ctx.event().to_owned();
                l4.borrow_mut().old_names.push(e);
            },
        )
}

fn connector_session(log: Shared, port: u16) -> Session<Option<WheelHandle>> {
    let (l1, l2) = (Rc::clone(&log), log);
    Session::new(None)
        .on(
            "_start",
            move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                let w = SocketFactory::connect("127.0.0.1", port)
                    .success_event("got_connection")
                    .failure_event("got_error")
                    .build(ctx)?;
                let local = ctx
                    .wheel_ref::<SocketFactory>(w.id())
                    .and_then(|f| f.getsockname())
                    .ok_or("connector has no local address")?;
                l1.borrow_mut().connector_ports.push(local.port());
                *ctx.heap() = Some(w);
                Ok(())
            },
        )
        .on("got_connection", {
            let l = Rc::clone(&l2);
            move |ctx: &mut Ctx<'_, Option<WheelHandle>>| {
                l.borrow_mut().connected += 1;
                *ctx.heap() = None;
            }
        })
        .on(
            "got_error",
            move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                let msg = format!(
                    "{} {}",
                    ctx.arg::<WheelError>(0)?.operation,
                    ctx.arg::<WheelError>(0)?.errno
                );
                l2.borrow_mut().connect_errors.push(msg);
                *ctx.heap() = None;
                Ok(())
            },
        )
}

#[test]
fn listen_accept_takes_five_socketfactory_clients() {
    let _guard = timeout(15, "listen_accept_takes_five_socketfactory_clients");
    // IO::Socket::INET->new(LocalAddr => '127.0.0.1', Listen => 5, Reuse => 'yes'); std
    // sets SO_REUSEADDR on Unix.
    let listening = std::net::TcpListener::bind("127.0.0.1:0");
    // pass("created listening socket")
    let listening = listening.expect("created listening socket");
    let bound_port = listening.local_addr().unwrap().port();
    let log: Shared = Rc::default();
    let mut k = Kernel::new().unwrap();
    k.create(listener_session(Rc::clone(&log), listening))
        .unwrap();
    for _ in 0..CONNECTOR_COUNT {
        k.create(connector_session(Rc::clone(&log), bound_port))
            .unwrap();
    }
    k.run().unwrap();
    let log = log.borrow();
    // ok($_[HEAP]->{accept_count} == CONNECTOR_COUNT, "listening socket accepted connections")
    assert_eq!(log.accepted.len(), CONNECTOR_COUNT, "{log:?}");
    assert!(
        log.old_names.is_empty(),
        "renamed events used old names: {log:?}"
    );
    assert!(log.listener_errors.is_empty(), "{log:?}");
    assert!(log.connect_errors.is_empty(), "{log:?}");
    assert_eq!(log.connected, CONNECTOR_COUNT);
    assert_eq!(log.wrong_id, 0, "wheel id in every AcceptEvent");
    assert_eq!(log.timeouts, 1, "the short timeout ended the listener");
    // Each accepted peer is one of our connectors.
    let mut accepted_ports: Vec<u16> = log.accepted.iter().map(|&(_, p)| p).collect();
    let mut connector_ports = log.connector_ports.clone();
    accepted_ports.sort_unstable();
    connector_ports.sort_unstable();
    assert_eq!(accepted_ports, connector_ports);
    assert!(log
        .accepted
        .iter()
        .all(|&(ip, _)| ip == Some(IpAddr::from([127, 0, 0, 1]))));
}

#[test]
fn listen_accept_on_a_unix_listener() {
    let _guard = timeout(10, "listen_accept_on_a_unix_listener");
    let dir = std::env::temp_dir().join(format!("reactor-accept-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("sock");
    let listening = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let got: Rc<RefCell<Vec<Peer>>> = Rc::default();
    let g = Rc::clone(&got);
    let mut k = Kernel::new().unwrap();
    let listening = RefCell::new(Some(listening));
    k.create(
        Session::new(Option::<WheelHandle>::None)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let l = listening.borrow_mut().take().ok_or("twice")?;
                    *ctx.heap() = Some(ListenAccept::unix(l, "accepted")?.build(ctx)?);
                    Ok(())
                },
            )
            .on(
                "accepted",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let _sock = ctx.take_arg::<UnixStream>(0)?;
                    g.borrow_mut()
                        .push((*ctx.arg::<Option<IpAddr>>(1)?, *ctx.arg::<u16>(2)?));
                    if g.borrow().len() == 2 {
                        *ctx.heap() = None;
                    }
                    Ok(())
                },
            ),
    )
    .unwrap();
    let clients: Vec<_> = (0..2)
        .map(|_| std::os::unix::net::UnixStream::connect(&path).unwrap())
        .collect();
    let run = k.run();
    drop(clients);
    let _ = std::fs::remove_dir_all(&dir);
    run.unwrap();
    assert_eq!(*got.borrow(), [(None, 0), (None, 0)]);
}

/// `pause_accept` leaves connections waiting in the backlog; `resume_accept` takes them.
#[test]
fn pause_accept_holds_connections_until_resumed() {
    let _guard = timeout(10, "pause_accept_holds_connections_until_resumed");
    let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listening.local_addr().unwrap().port();
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let (l1, l2) = (Rc::clone(&log), Rc::clone(&log));
    let listening = RefCell::new(Some(listening));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(Option::<WheelHandle>::None)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let l = listening.borrow_mut().take().ok_or("twice")?;
                    let w = ListenAccept::tcp(l, "accepted")?.build(ctx)?;
                    let id = w.id();
                    *ctx.heap() = Some(w);
                    ctx.wheel_mut::<ListenAccept>(id)
                        .ok_or("no wheel")?
                        .pause_accept();
                    // All three clients are connected (the kernel completes the handshakes)
                    // before this fires; none may have been accepted.
                    ctx.delay("resume", 0.05, ())?;
                    Ok(())
                },
            )
            .on(
                "resume",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    l1.borrow_mut().push("resume".into());
                    let id = ctx.heap().as_ref().ok_or("no wheel")?.id();
                    ctx.wheel_mut::<ListenAccept>(id)
                        .ok_or("no wheel")?
                        .resume_accept();
                    Ok(())
                },
            )
            .on(
                "accepted",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let _sock = ctx.take_arg::<TcpStream>(0)?;
                    l2.borrow_mut().push("accepted".into());
                    if l2.borrow().len() == 4 {
                        *ctx.heap() = None;
                    }
                    Ok(())
                },
            ),
    )
    .unwrap();
    // Blocking connects complete against the backlog without anyone accepting.
    let clients: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    k.run().unwrap();
    drop(clients);
    assert_eq!(
        *log.borrow(),
        ["resume", "accepted", "accepted", "accepted"]
    );
}
