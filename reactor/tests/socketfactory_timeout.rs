//! Port of POE's `t/90_regression/socketfactory-timeout.t`: a SocketFactory connecting to
//! `localhost` port 0 must fail with a FailureEvent rather than hang. Also: connecting to a
//! closed port fails with ECONNREFUSED (111), and construction-time failures arrive as
//! events after `build` returns, as POE's `new` yields them.
//!
//! POE 1.370 answers the port-0 connect with `('connect', 111, 'Connection refused', id)`
//! (checked with perl).

mod common;
use common::timeout;
use reactor::wheel::SocketFactory;
use reactor::wheel::WheelError;
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle, WheelId};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

type Log = Rc<RefCell<Vec<String>>>;

#[derive(Default)]
struct Heap {
    socket: Option<WheelHandle>,
}

/// The upstream session: connect, arm a 5-second timeout, and report which came first.
fn connect_session(log: Log, host: &'static str, port: u16) -> Session<Heap> {
    let (l1, l2, l3, l4) = (Rc::clone(&log), Rc::clone(&log), Rc::clone(&log), log);
    Session::new(Heap::default())
        .on(
            "_start",
            move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                let w = SocketFactory::connect(host, port)
                    .success_event("sock_up")
                    .failure_event("sock_down")
                    .build(ctx)?;
                l1.borrow_mut().push(format!("built wheel {}", w.id()));
                ctx.heap().socket = Some(w);
                ctx.delay("timeout", 5.0, ())?;
                Ok(())
            },
        )
        .on(
            "sock_up",
            move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                // fail("Successful connection to an unused port?")
                l2.borrow_mut().push("sock_up".into());
                ctx.heap().socket = None;
                ctx.alarm_clear("timeout")?;
                Ok(())
            },
        )
        .on(
            "sock_down",
            move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                // pass("Failed to connect as expected")
                let op = ctx.arg::<WheelError>(0)?.operation.to_owned();
                let errno = ctx.arg::<WheelError>(0)?.errno;
                let msg = ctx.arg::<WheelError>(0)?.message.clone();
                let id = *ctx.arg::<WheelId>(1)?;
                let ours = ctx.heap().socket.as_ref().map(WheelHandle::id) == Some(id);
                l3.borrow_mut().push(format!(
                    "sock_down {op} {errno} {} wheel {id} ours={ours}",
                    // POE's errstr is strerror(); keep the leading words only.
                    msg.split(" (os error").next().unwrap_or("")
                ));
                ctx.heap().socket = None;
                ctx.alarm_clear("timeout")?;
                Ok(())
            },
        )
        .on("timeout", move |ctx: &mut Ctx<'_, Heap>| {
            // fail("Timed out before getting SuccessEvent or FailureEvent")
            l4.borrow_mut().push("timeout".into());
            ctx.heap().socket = None;
        })
}

#[test]
fn connect_to_localhost_port_0_fails_without_hanging() {
    let _guard = timeout(15, "connect_to_localhost_port_0_fails_without_hanging");
    let log: Log = Rc::default();
    let mut k = Kernel::new().unwrap();
    k.create(connect_session(Rc::clone(&log), "localhost", 0))
        .unwrap();
    let started = std::time::Instant::now();
    k.run().unwrap();
    let log = log.borrow();
    assert_eq!(
        *log,
        [
            "built wheel 1",
            "sock_down connect 111 Connection refused wheel 1 ours=true"
        ]
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the failure must come well before the 5 s timeout"
    );
}

#[test]
fn connect_to_a_closed_port_is_refused_with_errno_111() {
    let _guard = timeout(15, "connect_to_a_closed_port_is_refused_with_errno_111");
    // A port that was just free: bind, note it, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let log: Log = Rc::default();
    let mut k = Kernel::new().unwrap();
    k.create(connect_session(Rc::clone(&log), "127.0.0.1", port))
        .unwrap();
    k.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "built wheel 1",
            "sock_down connect 111 Connection refused wheel 1 ours=true"
        ]
    );
}

/// POE's SocketFactory constructor never croaks on socket errors: it yields the
/// FailureEvent, so the failure arrives after `new` has returned the wheel.
#[test]
fn bind_failure_arrives_as_an_event_after_build_returns() {
    let _guard = timeout(15, "bind_failure_arrives_as_an_event_after_build_returns");
    // Hold a port without SO_REUSEADDR conflicts: a listening socket makes bind fail with
    // EADDRINUSE even with SO_REUSEADDR on the second socket.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let log: Log = Rc::default();
    let (l1, l2, l3) = (Rc::clone(&log), Rc::clone(&log), Rc::clone(&log));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(Heap::default())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    let w = SocketFactory::listen()
                        .bind_address("127.0.0.1")
                        .bind_port(port)
                        .success_event("up")
                        .failure_event("down")
                        .build(ctx)?;
                    l1.borrow_mut().push(format!("built wheel {}", w.id()));
                    ctx.heap().socket = Some(w);
                    Ok(())
                },
            )
            .on(
                "down",
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    let op = ctx.arg::<WheelError>(0)?.operation.to_owned();
                    let errno = ctx.arg::<WheelError>(0)?.errno;
                    let id = *ctx.arg::<WheelId>(1)?;
                    l2.borrow_mut()
                        .push(format!("down {op} {errno} wheel {id}"));
                    ctx.heap().socket = None;
                    Ok(())
                },
            )
            .on("up", move |ctx: &mut Ctx<'_, Heap>| {
                l3.borrow_mut().push("up".into());
                ctx.heap().socket = None;
            }),
    )
    .unwrap();
    k.run().unwrap();
    drop(holder);
    assert_eq!(*log.borrow(), ["built wheel 1", "down bind 98 wheel 1"]);
}
