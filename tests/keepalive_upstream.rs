//! The upstream POE::Component::Client::Keepalive test suite (t/01..13, 50, 51), ported
//! with the same scenarios and assertions, against a real `Server::TCP` test server on
//! 127.0.0.1 in the same kernel. Tests that waited seconds in Perl wait for the event they
//! were waiting for instead (a flush, a close), or use millisecond settings.

mod common;

use common::ka::{describe, finish, finish_then, label, start, v4_resolver, wait_for};
use common::test_server::TestServer;
use keepalive::reactor::errno::{ECONNREFUSED, ETIMEDOUT};
use keepalive::reactor::wheel::ReadWrite;
use keepalive::reactor::wheel::WheelError;
use keepalive::reactor::Session;
use keepalive::{Connection, Keepalive, Request, ResolverKind, Response};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

// ---------------------------------------------------------------------------------------------

/// 01_socket_reuse: a new connection, freed, then reused at once.
#[test]
fn t01_socket_reuse() {
    let (_run, fds, mut k) = start("t01", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let (o, ka2, srv) = (out.clone(), ka.clone(), server.clone());
    let port = server.port;
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(
                        ctx,
                        Request::new("http", "localhost", port, "got_conn").context("first"),
                    )
                    .unwrap();
                }
            })
            .on("got_conn", move |ctx| {
                let r: Response = ctx.take_arg(0).unwrap();
                o.borrow_mut().push(describe(&r));
                let which = label(&r);
                drop(r);
                if which == "first" {
                    ka2.allocate(
                        ctx,
                        Request::new("http", "localhost", port, "got_conn").context("second"),
                    )
                    .unwrap();
                } else {
                    srv.shutdown(ctx);
                    ka2.shutdown(ctx);
                }
            }),
    )
    .unwrap();
    drop((ka, server));
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            "first conn from_cache=None",
            "second conn from_cache=Some(\"immediate\")"
        ]
    );
}

/// 02_socket_queue: max_open 1 queues the second request, which gets the first socket
/// (deferred); a request for another port evicts the idle socket and is refused.
#[test]
fn t02_socket_queue() {
    let (_run, fds, mut k) = start("t02", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    // A port that is bound but not listening: connects are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let ka = Keepalive::builder().max_open(1).build(&mut k).unwrap();
    let out = log();
    let port = server.port;
    let (o, ka2, srv) = (out.clone(), ka.clone(), server.clone());
    let seen = Rc::new(RefCell::new(0));
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    for c in ["first", "second"] {
                        ka.allocate(
                            ctx,
                            Request::new("http", "127.0.0.1", port, "got_first_conn").context(c),
                        )
                        .unwrap();
                    }
                }
            })
            .on("got_first_conn", move |ctx| {
                let r: Response = ctx.take_arg(0).unwrap();
                o.borrow_mut().push(describe(&r));
                drop(r);
                *seen.borrow_mut() += 1;
                if *seen.borrow() == 2 {
                    ctx.yield_("test_max_queue", ()).unwrap();
                }
            })
            .on("test_max_queue", {
                let ka = ka2.clone();
                move |ctx| {
                    ka.allocate(
                        ctx,
                        Request::new("http", "127.0.0.1", port, "got_third_conn").context("third"),
                    )
                    .unwrap();
                    ka.allocate(
                        ctx,
                        Request::new("http", "127.0.0.1", closed_port, "got_fourth_conn")
                            .context("fourth"),
                    )
                    .unwrap();
                }
            })
            .on("got_third_conn", {
                let o = out.clone();
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    o.borrow_mut().push(describe(&r));
                }
            })
            .on("got_fourth_conn", {
                let o = out.clone();
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    let f = r.error().expect("no connection").clone();
                    assert_eq!(f.function, "connect");
                    assert!(
                        f.errnum == Some(ECONNREFUSED) || f.errnum == Some(ETIMEDOUT),
                        "{f:?}"
                    );
                    let e = f.errstr.to_lowercase();
                    assert!(
                        e == "connection refused" || e == "connection timed out",
                        "{e}"
                    );
                    o.borrow_mut().push(describe(&r));
                    srv.shutdown(ctx);
                    ka2.shutdown(ctx);
                }
            }),
    )
    .unwrap();
    drop((ka, server));
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            "first conn from_cache=None",
            "second conn from_cache=Some(\"deferred\")",
            "third conn from_cache=Some(\"immediate\")",
            "fourth error connect Some(111) Connection refused",
        ]
    );
}

/// 03_each_queue: max_per_host 1 makes same-key requests wait and take the freed socket.
#[test]
fn t03_each_queue() {
    let (_run, fds, mut k) = start("t03", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .max_per_host(1)
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = server.port;
    let req = move |c: &'static str| Request::new("http", "localhost", port, "got_conn").context(c);
    let (o, ka2, srv) = (out.clone(), ka.clone(), server.clone());
    k.create(
        Session::new(0u32)
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("first")).unwrap();
                    ka.allocate(ctx, req("second")).unwrap();
                }
            })
            .on("got_conn", move |ctx| {
                let r: Response = ctx.take_arg(0).unwrap();
                o.borrow_mut().push(describe(&r));
                match label(&r) {
                    "second" => ctx.yield_("test_pool_alive", ()).unwrap(),
                    "third" => {
                        // Still held: "fourth" must wait for it.
                        ka2.allocate(ctx, req("fourth")).unwrap();
                    }
                    "fourth" => {
                        srv.shutdown(ctx);
                        ka2.shutdown(ctx);
                    }
                    _ => {}
                }
            })
            .on("test_pool_alive", {
                let ka = ka.clone();
                move |ctx| {
                    *ctx.heap() += 1;
                    if *ctx.heap() < 2 {
                        ctx.yield_("test_pool_alive", ()).unwrap();
                    } else {
                        ka.allocate(ctx, req("third")).unwrap();
                    }
                }
            }),
    )
    .unwrap();
    drop((ka, server));
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            "first conn from_cache=None",
            "second conn from_cache=Some(\"deferred\")",
            "third conn from_cache=Some(\"immediate\")",
            "fourth conn from_cache=Some(\"deferred\")",
        ]
    );
}

#[derive(Default)]
struct Held {
    conns: Vec<Connection>,
}

/// 04_free_each: two new connections; the one shut down at the wheel is not pooled, the
/// other is, and is handed out at once; a closed socket is discarded without trouble.
#[test]
fn t04_free_each() {
    let (_run, fds, mut k) = start("t04", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = server.port;
    let req = move |c: &'static str| Request::new("http", "localhost", port, "got_conn").context(c);
    let (o, ka2, srv) = (out.clone(), ka.clone(), server.clone());
    k.create(
        Session::new(Held::default())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("first")).unwrap();
                    ka.allocate(ctx, req("second")).unwrap();
                }
            })
            .on("got_conn", move |ctx| {
                let r: Response = ctx.take_arg(0).unwrap();
                o.borrow_mut().push(describe(&r));
                let which = label(&r);
                let mut c = r.connection.expect("connected");
                if which == "third" {
                    c.close(ctx);
                    drop(c);
                    srv.shutdown(ctx);
                    ka2.shutdown(ctx);
                    return;
                }
                ctx.heap().conns.push(c);
                if ctx.heap().conns.len() == 2 {
                    // The last one received is started and shut down both ways.
                    let mut last = ctx.heap().conns.pop().unwrap();
                    let id = last.start(ctx, |b| b).unwrap();
                    let w = ctx.wheel_mut::<ReadWrite>(id).unwrap();
                    w.shutdown_input();
                    w.shutdown_output();
                    drop(last);
                    ctx.heap().conns.clear();
                    ka2.allocate(ctx, req("third")).unwrap();
                }
            }),
    )
    .unwrap();
    drop((ka, server));
    finish(k, fds);
    let got = out.borrow().clone();
    assert_eq!(got.len(), 3);
    let mut first_two = got[..2].to_vec();
    first_two.sort();
    assert_eq!(
        first_two,
        ["first conn from_cache=None", "second conn from_cache=None"]
    );
    assert_eq!(got[2..], ["third conn from_cache=Some(\"immediate\")"]);
}

/// 05_errors: bad arguments are typed errors with Perl's messages.
#[test]
fn t05_errors() {
    let (_run, fds, mut k) = start("t05", 10);
    let e = Keepalive::builder().max_open(0).build(&mut k).unwrap_err();
    assert_eq!(e.to_string(), "new() needs a non-zero 'max_open'");
    let e = Keepalive::builder()
        .max_per_host(0)
        .build(&mut k)
        .unwrap_err();
    assert_eq!(e.to_string(), "new() needs a non-zero 'max_per_host'");
    let ka = Keepalive::new(&mut k).unwrap();
    // Outside any session there is nobody to answer.
    let e = ka
        .allocate(&mut k, Request::new("http", "localhost", 80, "narf"))
        .unwrap_err();
    assert!(matches!(e, keepalive::Error::NoRequester));
    let msgs = Rc::new(RefCell::new(Vec::new()));
    let m = msgs.clone();
    let ka2 = ka.clone();
    k.create(Session::new(()).on("_start", move |ctx| {
        let push = |r: Result<keepalive::RequestId, keepalive::Error>| {
            m.borrow_mut()
                .push(r.map(|_| "ok".to_owned()).unwrap_or_else(|e| e.to_string()))
        };
        push(ka2.allocate(ctx, Request::new("", "localhost", 80, "narf")));
        push(ka2.allocate(ctx, Request::new("http", "", 80, "narf")));
        push(ka2.allocate(ctx, Request::new("http", "localhost", 0, "narf")));
        push(ka2.allocate(ctx, Request::new("http", "localhost", 80, "")));
        push(ka2.allocate(
            ctx,
            Request::new("http", "localhost", 80, "narf").timeout(Duration::ZERO),
        ));
        // A request to a port nobody listens on, cancelled twice.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let id = ka2
            .allocate(ctx, Request::new("http", "127.0.0.1", port, "narf"))
            .unwrap();
        ka2.deallocate(ctx, id).unwrap();
        let e = ka2.deallocate(ctx, id).unwrap_err();
        m.borrow_mut().push(e.to_string());
        ka2.shutdown(ctx);
        push(ka2.allocate(ctx, Request::new("http", "localhost", 80, "narf")));
    }))
    .unwrap();
    drop(ka);
    finish(k, fds);
    assert_eq!(
        *msgs.borrow(),
        [
            "allocate() needs a 'scheme'",
            "allocate() needs an 'addr'",
            "allocate() needs a 'port'",
            "allocate() needs an 'event'",
            "allocate() needs a non-zero 'timeout'",
            "deallocate() requires a request ID",
            "allocate() on shut-down connection manager",
        ]
    );
}

/// 06_activity: a pooled socket that receives data is not reused, and its data never
/// reaches the next connection.
#[test]
fn t06_activity() {
    let (_run, fds, mut k) = start("t06", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = server.port;
    let req =
        move |c: &'static str, ev: &str| Request::new("http", "localhost", port, ev).context(c);
    let (o, ka2, srv) = (out.clone(), ka.clone(), server.clone());
    k.create(
        Session::new(Held::default())
            .on("_start", {
                let ka = ka.clone();
                let srv = server.clone();
                move |ctx| {
                    *srv.notify.borrow_mut() = Some((ctx.session(), "server_flushed".into()));
                    ka.allocate(ctx, req("first", "got_conn")).unwrap();
                }
            })
            .on("got_conn", {
                let o = out.clone();
                let srv = server.clone();
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    o.borrow_mut().push(describe(&r));
                    // The server writes to this client, and the connection is freed unread.
                    srv.send_something(ctx);
                }
            })
            .on("server_flushed", {
                let ka = ka.clone();
                let once = std::cell::Cell::new(false);
                move |ctx| {
                    if !once.replace(true) {
                        ka.allocate(ctx, req("second", "got_conn2")).unwrap();
                    }
                }
            })
            .on("got_conn2", {
                let o = out.clone();
                let srv = server.clone();
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    o.borrow_mut().push(describe(&r));
                    let mut c = r.connection.expect("connected");
                    let id = c
                        .start(ctx, |b| b.input_event("got_input"))
                        .expect("wheel starts");
                    o.borrow_mut()
                        .push(format!("wheel defined: {}", c.wheel() == Some(id)));
                    ctx.heap().conns.push(c);
                    // A line for the new connection only: it must be the one read.
                    srv.send_something(ctx);
                }
            })
            .on("got_input", move |ctx| {
                let line: Vec<u8> = ctx.take_arg(0).unwrap();
                o.borrow_mut()
                    .push(format!("input {}", String::from_utf8_lossy(&line)));
                ctx.heap().conns.clear();
                *srv.notify.borrow_mut() = None;
                srv.shutdown(ctx);
                ka2.shutdown(ctx);
            }),
    )
    .unwrap();
    drop((ka, server));
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            "first conn from_cache=None",
            "second conn from_cache=None",
            "wheel defined: true",
            "input line 2",
        ]
    );
}

/// 07_keep_alive: an idle socket is closed after keep_alive; later requests connect anew.
#[test]
fn t07_keep_alive() {
    let (_run, fds, mut k) = start("t07", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .keep_alive(Duration::from_millis(50))
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = server.port;
    let req = move |c: &'static str| Request::new("http", "localhost", port, "got_conn").context(c);
    let (o, ka2, srv) = (out.clone(), ka.clone(), server.clone());
    k.create(
        Session::new(0u32)
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("first")).unwrap();
                }
            })
            .on("got_conn", move |ctx| {
                let r: Response = ctx.take_arg(0).unwrap();
                o.borrow_mut().push(describe(&r));
                drop(r);
                if ctx_of_str(&o) == "first" {
                    // Wait until the pool has let the socket go (bounded).
                    ctx.delay("check_idle", 0.01, ()).unwrap();
                } else {
                    *ctx.heap() += 1;
                    if *ctx.heap() == 2 {
                        srv.shutdown(ctx);
                        ka2.shutdown(ctx);
                    }
                }
            })
            .on("check_idle", {
                let ka = ka.clone();
                let o = out.clone();
                let start = std::time::Instant::now();
                move |ctx| {
                    if ka.stats().total.idle > 0 {
                        assert!(start.elapsed() < Duration::from_secs(5), "never expired");
                        ctx.delay("check_idle", 0.01, ()).unwrap();
                        return;
                    }
                    o.borrow_mut().push(format!(
                        "expired after keep_alive: {}",
                        ka.stats().counters.expired
                    ));
                    ka.allocate(ctx, req("second")).unwrap();
                    ka.allocate(ctx, req("third")).unwrap();
                }
            }),
    )
    .unwrap();
    drop((ka, server));
    finish(k, fds);
    let got = out.borrow().clone();
    assert_eq!(
        got[..2],
        ["first conn from_cache=None", "expired after keep_alive: 1"]
    );
    let mut rest = got[2..].to_vec();
    rest.sort();
    assert_eq!(
        rest,
        ["second conn from_cache=None", "third conn from_cache=None"]
    );
}

fn ctx_of_str(o: &Log) -> String {
    o.borrow()
        .last()
        .and_then(|l| l.split(' ').next())
        .unwrap_or("")
        .to_owned()
}

/// 08_quick_reuse: under max_open 2, a request for another server evicts an idle socket.
#[test]
fn t08_quick_reuse() {
    let (_run, fds, mut k) = start("t08", 10);
    let a = Rc::new(TestServer::spawn(&mut k));
    let b = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .max_open(2)
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let (pa, pb) = (a.port, b.port);
    let req =
        move |c: &'static str, p: u16| Request::new("http", "localhost", p, "got_conn").context(c);
    let (o, ka2) = (out.clone(), ka.clone());
    let (a2, b2) = (a.clone(), b.clone());
    k.create(
        Session::new(0u32)
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("first", pa)).unwrap();
                    ka.allocate(ctx, req("second", pa)).unwrap();
                }
            })
            .on("got_conn", move |ctx| {
                let r: Response = ctx.take_arg(0).unwrap();
                o.borrow_mut().push(describe(&r));
                let which = label(&r);
                assert!(r.connection.is_ok(), "{which}");
                drop(r);
                match which {
                    "first" | "second" => {
                        *ctx.heap() += 1;
                        if *ctx.heap() == 2 {
                            ka2.allocate(ctx, req("third", pa)).unwrap();
                        }
                    }
                    "third" => {
                        ka2.allocate(ctx, req("fourth", pb)).unwrap();
                    }
                    "fourth" => {
                        assert_eq!(ka2.stats().counters.evictions, 1);
                        a2.shutdown(ctx);
                        b2.shutdown(ctx);
                        ka2.shutdown(ctx);
                    }
                    other => panic!("unexpected context {other}"),
                }
            }),
    )
    .unwrap();
    drop((ka, a, b));
    finish(k, fds);
    let got = out.borrow().clone();
    let mut first_two = got[..2].to_vec();
    first_two.sort();
    assert_eq!(
        first_two,
        ["first conn from_cache=None", "second conn from_cache=None"]
    );
    assert_eq!(
        got[2..],
        [
            "third conn from_cache=Some(\"immediate\")",
            "fourth conn from_cache=None"
        ]
    );
}

/// 09_timeout: a request whose timeout has passed before its connect completes gets
/// Perl's ("connect", 110) error; a refused connect gets 111.
#[test]
fn t09_timeout() {
    let (_run, fds, mut k) = start("t09", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    // Bound, not listening.
    let bound = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bound_port = bound.local_addr().unwrap().port();
    drop(bound);
    let ka = Keepalive::builder()
        .timeout(Duration::from_nanos(1))
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = server.port;
    let (o, ka2, srv) = (out.clone(), ka.clone(), server.clone());
    k.create(
        Session::new(0u32)
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(
                        ctx,
                        Request::new("http", "127.0.0.1", port, "got_conn").context("first"),
                    )
                    .unwrap();
                    ka.allocate(
                        ctx,
                        Request::new("http", "127.0.0.1", bound_port, "got_conn")
                            .context("second")
                            .timeout(Duration::from_millis(500)),
                    )
                    .unwrap();
                }
            })
            .on("got_conn", move |ctx| {
                let r: Response = ctx.take_arg(0).unwrap();
                assert_eq!(r.from_cache(), None);
                let f = r.error().expect("no connection");
                if f.errnum != Some(ECONNREFUSED) {
                    assert_eq!(f.errnum, Some(ETIMEDOUT));
                }
                o.borrow_mut().push(describe(&r));
                *ctx.heap() += 1;
                if *ctx.heap() == 2 {
                    srv.shutdown(ctx);
                    ka2.shutdown(ctx);
                }
            }),
    )
    .unwrap();
    drop((ka, server));
    finish(k, fds);
    let mut got = out.borrow().clone();
    got.sort();
    assert_eq!(
        got,
        [
            "first error connect Some(110) Connection timed out",
            "second error connect Some(111) Connection refused"
        ]
    );
}

/// 10_resolver: two sessions with a manager each, one with its own resolver and one with
/// the system's; both connect, then shut their manager down.
#[test]
fn t10_resolver() {
    let (_run, fds, mut k) = start("t10", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let out = log();
    let port = server.port;
    let done = Rc::new(RefCell::new(0));
    for (name, kind) in [
        ("with", Some(v4_resolver())),
        ("without", None::<ResolverKind>),
    ] {
        let (o, srv, done) = (out.clone(), server.clone(), done.clone());
        k.create(
            Session::new(None::<Keepalive>)
                .on("_start", move |ctx| {
                    let mut b = Keepalive::builder();
                    if let Some(kind) = kind.clone() {
                        b = b.resolver(kind);
                    }
                    let ka = b.build(ctx).unwrap();
                    ka.allocate(
                        ctx,
                        Request::new("http", "localhost", port, "got_conn").context(name),
                    )
                    .unwrap();
                    *ctx.heap() = Some(ka);
                })
                .on("got_conn", move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    o.borrow_mut().push(describe(&r));
                    drop(r);
                    let ka = ctx.heap().take().unwrap();
                    ka.shutdown(ctx);
                    *done.borrow_mut() += 1;
                    if *done.borrow() == 2 {
                        srv.shutdown(ctx);
                    }
                }),
        )
        .unwrap();
    }
    drop(server);
    finish(k, fds);
    let mut got = out.borrow().clone();
    got.sort();
    assert_eq!(
        got,
        ["with conn from_cache=None", "without conn from_cache=None"]
    );
}

// ---------------------------------------------------------------------------------------------
// 11, 12, 13, 50, 51.

#[derive(Default)]
struct Dead {
    conn: Option<Connection>,
    wheel: Option<keepalive::reactor::WheelId>,
}

/// 11_dead_socket: a socket freed with the server's EOF pending is not reused; the waiting
/// request gets a new connection. Input and error events carry the wheel's id.
#[test]
fn t11_dead_socket() {
    use keepalive::reactor::WheelId;
    let (_run, fds, mut k) = start("t11", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .max_per_host(1)
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = server.port;
    let req = move |c: &'static str| Request::new("http", "localhost", port, "got_conn").context(c);
    k.create(
        Session::new(Dead::default())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("first")).unwrap();
                    ka.allocate(ctx, req("second")).unwrap();
                }
            })
            .on("got_conn", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    o.borrow_mut().push(describe(&r));
                    let which = label(&r);
                    // Upstream: `!defined from_cache` for both (fail at once, not later).
                    assert_eq!(r.from_cache(), None, "{which} must be a new connection");
                    if which == "second" {
                        o.borrow_mut().push(format!(
                            "freed with EOF pending, not reused: {}",
                            ka.stats().counters.not_reusable
                        ));
                    }
                    let mut c = r.connection.expect("connected");
                    let input = if which == "first" {
                        "cleanup1"
                    } else {
                        "input"
                    };
                    let id = c
                        .start(ctx, |b| b.error_event("error").input_event(input))
                        .unwrap();
                    ctx.heap().conn = Some(c);
                    ctx.heap().wheel = Some(id);
                    // The server writes once it has accepted this (its only) client.
                    let srv = srv.clone();
                    let me = ctx.session();
                    wait_for(
                        ctx,
                        "the server to accept",
                        move || srv.client_count() == 1,
                        me,
                        "send",
                    );
                }
            })
            .on("send", {
                let srv = server.clone();
                move |ctx| srv.send_something(ctx)
            })
            .on("cleanup1", {
                let (o, srv) = (out.clone(), server.clone());
                move |ctx| {
                    let wid = *ctx.arg::<WheelId>(1).unwrap();
                    let ours = ctx.heap().wheel == Some(wid);
                    o.borrow_mut()
                        .push(format!("cleanup1: input from our wheel: {ours}"));
                    // The server closes: the end is pending on the socket when it is freed.
                    srv.shutdown_clients(ctx);
                    ctx.heap().wheel = None;
                    ctx.heap().conn = None;
                }
            })
            .on("input", {
                let (o, srv) = (out.clone(), server.clone());
                move |ctx| {
                    let wid = *ctx.arg::<WheelId>(1).unwrap();
                    let ours = ctx.heap().wheel == Some(wid);
                    o.borrow_mut()
                        .push(format!("input arrives from new socket: {ours}"));
                    srv.shutdown_clients(ctx);
                }
            })
            .on("error", {
                let (o, srv, ka) = (out.clone(), server.clone(), ka.clone());
                move |ctx| {
                    let op = ctx.arg::<WheelError>(0).unwrap().operation;
                    let errnum = ctx.arg::<WheelError>(0).unwrap().errno;
                    let wid = *ctx.arg::<WheelId>(1).unwrap();
                    let ours = ctx.heap().wheel == Some(wid);
                    o.borrow_mut()
                        .push(format!("error {op} {errnum} from our wheel: {ours}"));
                    if let Some(w) = ctx.heap().wheel.take() {
                        if let Some(rw) = ctx.wheel_mut::<ReadWrite>(w) {
                            rw.shutdown_input();
                            rw.shutdown_output();
                        }
                    }
                    ctx.heap().conn = None;
                    srv.shutdown(ctx);
                    ka.shutdown(ctx);
                }
            }),
    )
    .unwrap();
    drop((ka, server));
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            "first conn from_cache=None",
            "cleanup1: input from our wheel: true",
            "second conn from_cache=None",
            "freed with EOF pending, not reused: 1",
            "input arrives from new socket: true",
            "error read 0 from our wheel: true",
        ]
    );
}

/// 12_extref: a manager made outside any session; the requester lives only for its pending
/// request; the manager is shut down while the connection is held, which is dropped after:
/// the program ends cleanly and the held socket is closed (the server sees its end).
#[test]
fn t12_extref() {
    let (_run, fds, mut k) = start("t12", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    // Built before any session exists.
    let ka = Keepalive::builder().build(&mut k).unwrap();
    let out = log();
    let port = server.port;
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    // Nothing else keeps this session alive.
                    ka.allocate(
                        ctx,
                        Request::new("http", "127.0.0.1", port, "got_conn").context("first"),
                    )
                    .unwrap();
                }
            })
            .on("got_conn", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    o.borrow_mut().push(describe(&r));
                    let conn = r.connection.expect("connected");
                    ka.shutdown(ctx);
                    o.borrow_mut().push(format!(
                        "shut down holding it: in_use={} shut_down={}",
                        ka.stats().total.in_use,
                        ka.is_shut_down()
                    ));
                    drop(conn);
                    let s = srv.clone();
                    let me = ctx.session();
                    wait_for(
                        ctx,
                        "the server to see the end of the held connection",
                        move || s.peers.borrow().len() == 1 && s.client_count() == 0,
                        me,
                        "closed",
                    );
                }
            })
            .on("closed", {
                let (o, srv) = (out.clone(), server.clone());
                move |ctx| {
                    o.borrow_mut().push("server saw the end".to_owned());
                    srv.shutdown(ctx);
                }
            }),
    )
    .unwrap();
    drop((ka, server));
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            "first conn from_cache=None",
            "shut down holding it: in_use=1 shut_down=true",
            "server saw the end",
        ]
    );
}

/// 13_close: a connection closed (and still held) while the next request is made is not
/// reused, even with max_open and max_per_host 1: the next request gets a new connection.
#[test]
fn t13_close() {
    let (_run, fds, mut k) = start("t13", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .keep_alive(Duration::from_secs(1))
        .max_open(1)
        .max_per_host(1)
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = server.port;
    let req = move |c: &'static str| Request::new("http", "localhost", port, "got_conn").context(c);
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("first")).unwrap();
                }
            })
            .on("got_conn", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    let mut r: Response = ctx.take_arg(0).unwrap();
                    o.borrow_mut().push(describe(&r));
                    if label(&r) == "first" {
                        let c = r.connection.as_mut().expect("connected");
                        c.start(ctx, |b| b.input_event("nothing")).unwrap();
                        c.close(ctx);
                        // The closed connection is still held (by `r`) here.
                        ka.allocate(ctx, req("second")).unwrap();
                    } else {
                        o.borrow_mut().push(format!(
                            "closed socket not reused: {}",
                            ka.stats().counters.not_reusable
                        ));
                        drop(r);
                        srv.shutdown(ctx);
                        ka.shutdown(ctx);
                    }
                }
            })
            .on("nothing", |_ctx| {}),
    )
    .unwrap();
    drop((ka, server));
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            "first conn from_cache=None",
            "second conn from_cache=None",
            "closed socket not reused: 1",
        ]
    );
}

/// 50_bisbee_timeout: a request whose lookup does not answer in time gets exactly one
/// response, Perl's ("connect", 110); the lookup's late answer produces nothing.
#[test]
fn t50_bisbee_timeout() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (_run, fds, mut k) = start("t50", 10);
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let started = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicBool::new(false));
    let (st, an) = (started.clone(), answered.clone());
    // A lookup that takes until the test lets it answer (bounded), then fails.
    let slow = ResolverKind::Custom(Arc::new(move |_host: &str| {
        st.store(true, Ordering::SeqCst);
        let _ = gate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv_timeout(Duration::from_secs(3));
        an.store(true, Ordering::SeqCst);
        Err("Name or service not known".to_owned())
    }));
    let ka = Keepalive::builder().resolver(slow).build(&mut k).unwrap();
    let out = log();
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(
                        ctx,
                        Request::new(
                            "http",
                            "seriously-hoping-this-never-resolves.fail",
                            80,
                            "got_resp",
                        )
                        .timeout(Duration::from_millis(1)),
                    )
                    .unwrap();
                }
            })
            .on("got_resp", {
                let o = out.clone();
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    let f = r.error().expect("no connection");
                    o.borrow_mut()
                        .push(format!("{} {:?} {}", f.function, f.errnum, f.errstr));
                    // Let the lookup answer now, and wait until it has (or until it is
                    // clear it was dropped before it ran).
                    let _ = release.send(());
                    let (st, an) = (started.clone(), answered.clone());
                    let t0 = std::time::Instant::now();
                    let me = ctx.session();
                    wait_for(
                        ctx,
                        "the late lookup answer",
                        move || {
                            an.load(Ordering::SeqCst)
                                || (!st.load(Ordering::SeqCst)
                                    && t0.elapsed() > Duration::from_millis(100))
                        },
                        me,
                        "answered",
                    );
                }
            })
            .on("answered", |ctx| {
                // A few more rounds for anything the late answer might cause.
                ctx.delay("settled", 0.02, ()).unwrap();
            })
            .on("settled", {
                let (o, ka) = (out.clone(), ka.clone());
                move |_ctx| {
                    let c = ka.stats().counters;
                    o.borrow_mut().push(format!(
                        "timeouts {} resolve failures {}",
                        c.timeouts, c.resolve_failures
                    ));
                }
            }),
    )
    .unwrap();
    drop(ka);
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            "connect Some(110) Connection timed out",
            "timeouts 1 resolve failures 0"
        ]
    );
}

/// 51_reiss_reuse: max_open 2, max_per_host 2, two servers; a socket just handed out is
/// never the one evicted to make room: all five requests get a connection.
#[test]
fn t51_reiss_reuse() {
    let (_run, fds, mut k) = start("t51", 10);
    let a = Rc::new(TestServer::spawn(&mut k));
    let b = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .max_open(2)
        .max_per_host(2)
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let (pa, pb) = (a.port, b.port);
    let req =
        move |c: &'static str, p: u16| Request::new("http", "localhost", p, "got_conn").context(c);
    k.create(
        Session::new(0u32)
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    for c in ["first/1", "first/2", "first/3"] {
                        ka.allocate(ctx, req(c, pa)).unwrap();
                    }
                }
            })
            .on("got_conn", {
                let (o, ka, a, b) = (out.clone(), ka.clone(), a.clone(), b.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    match &r.connection {
                        Ok(_) => o
                            .borrow_mut()
                            .push(format!("{} request established", label(&r))),
                        Err(f) => o.borrow_mut().push(format!("{} failed: {f}", label(&r))),
                    }
                    drop(r);
                    *ctx.heap() += 1;
                    match *ctx.heap() {
                        1 => {
                            ka.allocate(ctx, req("second-a", pa)).unwrap();
                            ka.allocate(ctx, req("second-b", pb)).unwrap();
                        }
                        5 => {
                            a.shutdown(ctx);
                            b.shutdown(ctx);
                            ka.shutdown(ctx);
                        }
                        _ => {}
                    }
                }
            }),
    )
    .unwrap();
    drop((ka, a, b));
    finish(k, fds);
    let mut got = out.borrow().clone();
    got.sort();
    assert_eq!(
        got,
        [
            "first/1 request established",
            "first/2 request established",
            "first/3 request established",
            "second-a request established",
            "second-b request established",
        ]
    );
}

/// The manager's session ends on its own when its last idle socket expires and no
/// connection is out: the postback the connections carry, kept while the pool holds
/// sockets, is let go then, and nothing else of the manager's keeps the kernel running.
#[test]
fn the_manager_ends_when_its_last_idle_socket_expires() {
    let (_run, fds, mut k) = start("manager_ends", 10);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ka = Keepalive::builder()
        .keep_alive(Duration::from_millis(50))
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let o = out.clone();
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    let req = Request::new("http", "localhost", port, "got_conn").context("one");
                    ka.allocate(ctx, req).unwrap();
                }
            })
            // The connection goes back to the pool when the response is dropped.
            .on("got_conn", move |ctx| {
                let r: Response = ctx.take_arg(0).unwrap();
                o.borrow_mut().push(describe(&r));
            }),
    )
    .unwrap();
    // The manager's state, read after the kernel has run to its end (the manager is
    // dropped before the check for leaked descriptors).
    let mut seen = None;
    let seen_at = &mut seen;
    finish_then(k, fds, move || {
        let stats = ka.stats();
        *seen_at = Some((
            stats.counters.expired,
            stats.total.idle,
            ka.session().is_none(),
        ));
        drop(ka);
        drop(listener);
    });
    assert_eq!(*out.borrow(), ["one conn from_cache=None"]);
    assert_eq!(seen, Some((1, 0, true)));
}
