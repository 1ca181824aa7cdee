//! A Client::TCP connecting to a port where nobody listens gets `ConnectError`, and `run()`
//! returns: a port of poe-test-loops' `POE/Test/Loops/connect_errors.pm` (written for
//! POE::XS::Loop::Poll, which mishandled errors on connecting sockets).
//!
//! As upstream, the port is kept bound but not listening for the whole test, so nobody
//! else can take it; a watcher session fails the test if nothing happens in 10 seconds.
//! Two more tests, not upstream, check the `ConnectTimeout` path (`ETIMEDOUT`, POE's
//! `('connect', ETIMEDOUT, "Connection timed out")`) and the `connect` event.

mod common;
use common::bounded;
use reactor::component::ClientTcp;
use reactor::errno::ETIMEDOUT;
use reactor::wheel::WheelError;
use reactor::{AlarmId, Ctx, HandlerError, Kernel, Session};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

/// Upstream's `IO::Socket::INET->new(LocalAddr => '127.0.0.1')`: a bound TCP socket that
/// does not listen, so connecting to its port is refused.
fn unused_port() -> std::io::Result<(socket2::Socket, u16)> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    let port = s
        .local_addr()?
        .as_socket()
        .map(|a| a.port())
        .ok_or_else(|| std::io::Error::other("not an inet address"))?;
    Ok((s, port))
}

#[test]
fn connection_refused_reaches_connect_error() {
    bounded(
        "connection_refused_reaches_connect_error",
        connection_refused_reaches_connect_error_body,
    );
}

fn connection_refused_reaches_connect_error_body() -> Result<(), Box<dyn std::error::Error>> {
    let (_reserved, port) = unused_port()?;
    let mut k = Kernel::new()?;
    let log: Log = Rc::default();

    // Timeout.
    let l = log.clone();
    k.create(
        Session::new(None::<AlarmId>)
            .on(
                "_start",
                |ctx: &mut Ctx<'_, Option<AlarmId>>| -> Result<(), HandlerError> {
                    ctx.alias_set("watcher")?;
                    let id = ctx.delay_set("timeout", 10, ())?;
                    *ctx.heap() = Some(id);
                    Ok(())
                },
            )
            .on(
                "timeout",
                move |ctx: &mut Ctx<'_, Option<AlarmId>>| -> Result<(), HandlerError> {
                    ctx.post("client", "shutdown", ())?;
                    push(&l, "fail: timeout for connection");
                    Ok(())
                },
            )
            .on("shutdown", |ctx: &mut Ctx<'_, Option<AlarmId>>| {
                if let Some(id) = ctx.heap().take() {
                    let _ = ctx.alarm_remove(id);
                }
            })
            .on("_stop", |_: &mut Ctx<'_, Option<AlarmId>>| {}),
    )?;

    // Test connection failure.
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    ClientTcp::builder("127.0.0.1", port)
        .alias("client")
        .connected(move |_| push(&l1, "fail: should have failed to connect"))
        .connect_error(move |ctx| -> Result<(), HandlerError> {
            ctx.post("watcher", "shutdown", ())?;
            let (op, errno) = (
                ctx.arg::<WheelError>(0)?.operation.to_owned(),
                ctx.arg::<WheelError>(0)?.errno,
            );
            // Upstream only passes; the error itself is ECONNREFUSED on connect.
            push(&l2, format!("expected connection failure: {op} {errno}"));
            Ok(())
        })
        .server_input(move |_| push(&l3, "ServerInput called unexpectedly"))
        .build(&mut k)?;

    k.run()?;
    // run() returned successfully.
    assert_eq!(*log.borrow(), ["expected connection failure: connect 111"]);
    assert_eq!(k.session_count(), 0);
    Ok(())
}

/// `ConnectTimeout` (Client/TCP.pm:214-224): a connection that never completes ends with
/// `ConnectError("connect", ETIMEDOUT, "Connection timed out")` and the factory dropped,
/// so the session ends. The connection never completes because the listener's accept
/// queue is full (backlog 0, one connection already waiting): Linux drops the SYN.
#[test]
fn connect_timeout() {
    bounded("connect_timeout", connect_timeout_body);
}

fn connect_timeout_body() -> Result<(), Box<dyn std::error::Error>> {
    let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    listener.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    listener.listen(0)?;
    let addr = listener
        .local_addr()?
        .as_socket()
        .ok_or("not an inet address")?;
    let _filler = std::net::TcpStream::connect(addr)?;

    let mut k = Kernel::new()?;
    let log: Log = Rc::default();
    let (l1, l2) = (log.clone(), log.clone());
    let t0 = Instant::now();
    ClientTcp::builder("127.0.0.1", addr.port())
        .connect_timeout(0.2)
        .connected(move |_| push(&l1, "connected"))
        .connect_error(move |ctx| -> Result<(), HandlerError> {
            push(
                &l2,
                format!(
                    "{} {} {}",
                    ctx.arg::<WheelError>(0)?.operation,
                    ctx.arg::<WheelError>(0)?.errno,
                    ctx.arg::<WheelError>(0)?.message
                ),
            );
            Ok(())
        })
        .server_input(|_| {})
        .build(&mut k)?;
    k.run()?;
    assert_eq!(
        *log.borrow(),
        [format!("connect {ETIMEDOUT} Connection timed out")]
    );
    assert!(t0.elapsed() >= Duration::from_millis(200));
    Ok(())
}

/// The `connect` event retargets and reconnects (Client/TCP.pm:183-188): a client whose
/// first target refuses is sent, from `ConnectError`, to a listening port instead.
#[test]
fn connect_event_retargets() {
    bounded("connect_event_retargets", connect_event_retargets_body);
}

fn connect_event_retargets_body() -> Result<(), Box<dyn std::error::Error>> {
    let (_reserved, refused) = unused_port()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let good = listener.local_addr()?.port();
    let mut k = Kernel::new()?;
    let log: Log = Rc::default();
    let (l1, l2) = (log.clone(), log.clone());
    ClientTcp::builder("127.0.0.1", refused)
        .connect_error(move |ctx| -> Result<(), HandlerError> {
            push(&l1, format!("refused {}", ctx.arg::<WheelError>(0)?.errno));
            ctx.yield_("connect", ("127.0.0.1".to_owned(), good))?;
            Ok(())
        })
        .connected(move |ctx| -> Result<(), HandlerError> {
            let port = ctx.heap().remote_port();
            push(&l2, format!("connected to {port}"));
            ctx.yield_("shutdown", ())?;
            Ok(())
        })
        .server_input(|_| {})
        .build(&mut k)?;
    k.run()?;
    assert_eq!(
        *log.borrow(),
        ["refused 111".to_owned(), format!("connected to {good}")]
    );
    Ok(())
}
