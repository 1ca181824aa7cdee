//! The upstream POE::Component::Client::Keepalive test suite (t/01..13, 50, 51), ported
//! with the same scenarios and assertions, against a real `Server::TCP` test server on
//! 127.0.0.1 in the same kernel. Tests that waited seconds in Perl wait for the event they
//! were waiting for instead (a flush, a close), or use millisecond settings.

mod common;

use common::test_server::TestServer;
use keepalive::pool::{ECONNREFUSED, ETIMEDOUT};
use keepalive::reactor::{Kernel, ReadWrite, Session};
use keepalive::{Connection, Keepalive, Request, ResolverKind, Response};
use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Tests run one at a time so each can check that it leaks no file descriptor.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `af_order => [AF_INET]` as the upstream tests configure it: `localhost` is 127.0.0.1.
pub fn v4_resolver() -> ResolverKind {
    ResolverKind::Custom(Arc::new(|host: &str| match host {
        "localhost" => Ok(vec![IpAddr::from([127, 0, 0, 1])]),
        _ => Err("Name or service not known".to_owned()),
    }))
}

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn ctx_of(r: &Response) -> &'static str {
    r.context_ref::<&'static str>().copied().unwrap_or("?")
}

/// One line per response: context, whether a connection came, and from_cache.
fn describe(r: &Response) -> String {
    match &r.connection {
        Ok(_) => format!("{} conn from_cache={:?}", ctx_of(r), r.from_cache()),
        Err(f) => format!(
            "{} error {} {:?} {}",
            ctx_of(r),
            f.function,
            f.errnum,
            f.errstr
        ),
    }
}

/// Runs the kernel to the end, then checks no descriptor leaked.
fn finish(mut k: Kernel, fds_before: usize) {
    k.run().expect("kernel ran clean");
    drop(k);
    assert_eq!(common::open_fds(), fds_before, "file descriptors leaked");
}

// ---------------------------------------------------------------------------------------------

/// 01_socket_reuse: a new connection, freed, then reused at once.
#[test]
fn t01_socket_reuse() {
    let _s = serial();
    let _t = common::timeout(10, "t01");
    let fds = common::open_fds();
    let mut k = Kernel::new().unwrap();
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
                let which = ctx_of(&r);
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
    let _s = serial();
    let _t = common::timeout(10, "t02");
    let fds = common::open_fds();
    let mut k = Kernel::new().unwrap();
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
    let _s = serial();
    let _t = common::timeout(10, "t03");
    let fds = common::open_fds();
    let mut k = Kernel::new().unwrap();
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
                match ctx_of(&r) {
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
    let _s = serial();
    let _t = common::timeout(10, "t04");
    let fds = common::open_fds();
    let mut k = Kernel::new().unwrap();
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
                let which = ctx_of(&r);
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
    let _s = serial();
    let _t = common::timeout(10, "t05");
    let fds = common::open_fds();
    let mut k = Kernel::new().unwrap();
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
    let _s = serial();
    let _t = common::timeout(10, "t06");
    let fds = common::open_fds();
    let mut k = Kernel::new().unwrap();
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
    let _s = serial();
    let _t = common::timeout(10, "t07");
    let fds = common::open_fds();
    let mut k = Kernel::new().unwrap();
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
    let _s = serial();
    let _t = common::timeout(10, "t08");
    let fds = common::open_fds();
    let mut k = Kernel::new().unwrap();
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
                let which = ctx_of(&r);
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
    let _s = serial();
    let _t = common::timeout(10, "t09");
    let fds = common::open_fds();
    let mut k = Kernel::new().unwrap();
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
    let _s = serial();
    let _t = common::timeout(10, "t10");
    let fds = common::open_fds();
    let mut k = Kernel::new().unwrap();
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
