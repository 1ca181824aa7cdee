//! The probe scenarios of the Perl module's bugs (keepalive-tests.md §C, B1-B16), turned
//! into tests of the fixed behaviour, plus https end to end. Real sockets on 127.0.0.1
//! only; fake host names go through custom resolvers (slow ones block in the resolver's
//! worker thread until the test lets them answer).

mod common;

use common::ka::{describe, finish, finish_then, label, serial, start, v4_resolver, wait_for};
use common::test_server::TestServer;
use keepalive::reactor::component::ServerTcp;
use keepalive::reactor::errno::{EADDRNOTAVAIL, ECANCELED, ETIMEDOUT};
use keepalive::reactor::wheel::ReadWrite;
use keepalive::reactor::wheel::WheelError;
use keepalive::reactor::{Kernel, Session, SessionId};
use keepalive::CallError;
use keepalive::{Connection, Keepalive, Origin, Request, RequestId, ResolverKind, Response};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The refcount tag a pending request holds on its requester.
const TAG: &str = "poco-client-keepalive";

/// A resolver whose `slow.test` (127.0.0.1) answers only when let through, one lookup per
/// [`SlowDns::release`]; `localhost` answers at once, other names are unknown.
struct SlowDns {
    release: mpsc::Sender<()>,
    started: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
}

impl SlowDns {
    fn new() -> (ResolverKind, SlowDns) {
        let (tx, rx) = mpsc::channel::<()>();
        let rx = Mutex::new(rx);
        let started = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicUsize::new(0));
        let (st, an) = (started.clone(), answered.clone());
        let kind = ResolverKind::Custom(Arc::new(move |host: &str| match host {
            "localhost" => Ok(vec![IpAddr::from([127, 0, 0, 1])]),
            "slow.test" => {
                st.fetch_add(1, Ordering::SeqCst);
                // Bounded, so a failing test cannot leave the worker stuck.
                let _ = rx
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .recv_timeout(Duration::from_secs(3));
                an.fetch_add(1, Ordering::SeqCst);
                Ok(vec![IpAddr::from([127, 0, 0, 1])])
            }
            _ => Err("Name or service not known".to_owned()),
        }));
        (
            kind,
            SlowDns {
                release: tx,
                started,
                answered,
            },
        )
    }

    /// Lets one `slow.test` lookup answer (now, or as soon as it runs).
    fn release(&self) {
        let _ = self.release.send(());
    }

    /// A condition for [`wait_for`]: every lookup that ran has answered, or (none ran)
    /// 100 ms have passed since `since` (a lookup cancelled before it ran never runs).
    fn settled(&self, since: Instant) -> impl Fn() -> bool + 'static {
        let (st, an) = (self.started.clone(), self.answered.clone());
        move || {
            let s = st.load(Ordering::SeqCst);
            let a = an.load(Ordering::SeqCst);
            if s == 0 {
                since.elapsed() > Duration::from_millis(100)
            } else {
                a == s
            }
        }
    }
}

/// A listener whose connects never complete: backlog 0, filled, never accepted. Linux
/// drops further SYNs, so a non-blocking connect to it stays in progress.
struct Blackhole {
    port: u16,
    _listener: socket2::Socket,
    _fillers: Vec<TcpStream>,
}

fn blackhole() -> Blackhole {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(50)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    assert!(fillers.len() < 8, "the backlog never filled");
    Blackhole {
        port: addr.port(),
        _listener: listener,
        _fillers: fillers,
    }
}

/// A port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A server (127.0.0.1, port 0) that records how each client connection ended on its side:
/// `"read 0"` is the client's FIN.
struct EndServer {
    port: u16,
    listener: SessionId,
    clients: Rc<RefCell<Vec<SessionId>>>,
    ends: Rc<RefCell<Vec<String>>>,
}

impl EndServer {
    fn spawn(kernel: &mut Kernel) -> EndServer {
        let clients = Rc::new(RefCell::new(Vec::new()));
        let ends = Rc::new(RefCell::new(Vec::new()));
        let (c1, c2, e1) = (clients.clone(), clients.clone(), ends.clone());
        let h = ServerTcp::builder()
            .address("127.0.0.1")
            .port(0)
            .client_connected(move |ctx| c1.borrow_mut().push(ctx.session()))
            .client_disconnected(move |ctx| {
                let me = ctx.session();
                c2.borrow_mut().retain(|s| *s != me);
            })
            .client_input(|_ctx| {})
            .client_error(move |ctx| {
                let op = ctx
                    .arg::<WheelError>(0)
                    .map(|e| e.operation.to_owned())
                    .unwrap_or_default();
                let errnum = ctx.arg::<WheelError>(0).map(|e| e.errno).unwrap_or(-1);
                e1.borrow_mut().push(format!("{op} {errnum}"));
            })
            .build(kernel)
            .expect("server starts");
        EndServer {
            port: h.local_addr().expect("bound").port(),
            listener: h.session(),
            clients,
            ends,
        }
    }

    fn client_count(&self) -> usize {
        self.clients.borrow().len()
    }

    fn shutdown(&self, kernel: &mut Kernel) {
        let _ = kernel.post(self.listener, "shutdown", ());
        let list = self.clients.borrow().clone();
        for s in list {
            let _ = kernel.post(s, "shutdown", ());
        }
    }
}

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, line: impl Into<String>) {
    log.borrow_mut().push(line.into());
}

/// The numbers a test cares about, in one line.
fn gauges(ka: &Keepalive) -> String {
    let g = ka.stats().total;
    format!(
        "in_use {} idle {} connecting {} queued {} resolving {}",
        g.in_use, g.idle, g.connecting, g.queued, g.resolving
    )
}

// ---------------------------------------------------------------------------------------------
// C-A (B1): deallocate while an idle socket of the key is pooled.

/// A request waiting for its lookup is deallocated while a socket of its key sits idle in
/// the pool: no crash, no response, the idle socket stays pooled and is reused after.
#[test]
fn ca_deallocate_with_idle_socket_pooled() {
    let _s = serial();
    let _t = common::timeout(10, "ca");
    let fds = common::open_fds();
    let (kind, dns) = SlowDns::new();
    let dns = Rc::new(dns);
    dns.release(); // the first lookup answers at once
    let mut k = Kernel::new().unwrap();
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .max_per_host(2)
        .resolver(kind)
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = server.port;
    let req = move |c: &'static str| Request::new("http", "slow.test", port, "resp").context(c);
    k.create(
        Session::new(None::<RequestId>)
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("conn1")).unwrap();
                }
            })
            .on("resp", {
                let (o, ka, dns) = (out.clone(), ka.clone(), dns.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, describe(&r));
                    match label(&r) {
                        "conn1" => {
                            let id = ka.allocate(ctx, req("r2")).unwrap();
                            *ctx.heap() = Some(id);
                            drop(r); // conn1 goes back to the pool
                            let ka2 = ka.clone();
                            let me = ctx.session();
                            wait_for(
                                ctx,
                                "conn1 to be pooled",
                                move || ka2.stats().total.idle == 1,
                                me,
                                "pooled",
                            );
                        }
                        "r3" => {
                            drop(r);
                            dns.release();
                            let me = ctx.session();
                            wait_for(ctx, "the lookup", dns.settled(Instant::now()), me, "end");
                        }
                        _ => {}
                    }
                }
            })
            .on("pooled", {
                let (o, ka) = (out.clone(), ka.clone());
                move |ctx| {
                    push(&o, gauges(&ka));
                    let id = ctx.heap().take().unwrap();
                    let res = ka.deallocate(ctx, id).map_err(|e| e.to_string());
                    push(&o, format!("deallocate: {res:?}"));
                    push(
                        &o,
                        format!(
                            "{}, deallocated {}",
                            gauges(&ka),
                            ka.stats().counters.deallocated
                        ),
                    );
                    // The pool is intact: the idle socket is handed out.
                    ka.allocate(ctx, req("r3")).unwrap();
                }
            })
            .on("end", {
                let (ka, srv) = (ka.clone(), server.clone());
                move |ctx| {
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
            "conn1 conn from_cache=None",
            "in_use 0 idle 1 connecting 0 queued 0 resolving 1",
            "deallocate: Ok(())",
            "in_use 0 idle 1 connecting 0 queued 0 resolving 0, deallocated 1",
            "r3 conn from_cache=Some(\"immediate\")",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// C-B (B2, B3): deallocate during a lookup, during a connect, in the queue.

/// A request deallocated while its lookup runs, and one deallocated while its connect is in
/// flight: no response ever (not even past their timeout, nor when the lookup answers), the
/// requester is not kept alive by them, the refcount is released once, no crash.
#[test]
fn cb_deallocate_resolving_and_connecting() {
    let _s = serial();
    let _t = common::timeout(10, "cb");
    let fds = common::open_fds();
    let (kind, dns) = SlowDns::new();
    let dns = Rc::new(dns);
    let bh = blackhole();
    let mut k = Kernel::new().unwrap();
    let ka = Keepalive::builder()
        .timeout(Duration::from_millis(150))
        .resolver(kind)
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = bh.port;
    // The requester: its pending requests are all that could keep it alive.
    k.create(
        Session::new(Vec::<RequestId>::new())
            .on("_start", {
                let (ka, dns) = (ka.clone(), dns.clone());
                move |ctx| {
                    for (addr, c) in [("slow.test", "resolving"), ("127.0.0.1", "connecting")] {
                        let id = ka
                            .allocate(ctx, Request::new("http", addr, port, "resp").context(c))
                            .unwrap();
                        ctx.heap().push(id);
                    }
                    let st = dns.started.clone();
                    let me = ctx.session();
                    wait_for(
                        ctx,
                        "the lookup to run",
                        move || st.load(Ordering::SeqCst) == 1,
                        me,
                        "cancel",
                    );
                }
            })
            .on("cancel", {
                let (o, ka) = (out.clone(), ka.clone());
                move |ctx| {
                    push(&o, gauges(&ka));
                    for id in std::mem::take(ctx.heap()) {
                        ka.deallocate(ctx, id).unwrap();
                    }
                    let me = ctx.session();
                    let n = ctx.kernel().refcount_increment(me, TAG).unwrap();
                    ctx.kernel().refcount_decrement(me, TAG).unwrap();
                    push(
                        &o,
                        format!(
                            "deallocated {}: {}, own refcount probe {n}",
                            ka.stats().counters.deallocated,
                            gauges(&ka)
                        ),
                    );
                }
            })
            .on("resp", {
                let o = out.clone();
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, format!("unexpected: {}", describe(&r)));
                }
            })
            .on("_stop", {
                let o = out.clone();
                move |_ctx| push(&o, "requester stopped")
            }),
    )
    .unwrap();
    // The watcher: lets the lookup answer once the requester is gone, then waits past the
    // requests' timeout.
    k.create(
        Session::new(())
            .on("_start", {
                let o = out.clone();
                move |ctx| {
                    let o = o.clone();
                    let me = ctx.session();
                    wait_for(
                        ctx,
                        "the requester to stop",
                        move || o.borrow().iter().any(|l| l == "requester stopped"),
                        me,
                        "release",
                    );
                }
            })
            .on("release", {
                let (o, dns) = (out.clone(), dns.clone());
                move |ctx| {
                    push(&o, "lookup released");
                    dns.release();
                    let me = ctx.session();
                    wait_for(ctx, "the lookup", dns.settled(Instant::now()), me, "past");
                }
            })
            .on("past", |ctx| {
                // Past the 150 ms the requests had: a live timer would have fired by now.
                ctx.delay("end", 0.25, ()).unwrap();
            })
            .on("end", {
                let (o, ka) = (out.clone(), ka.clone());
                move |ctx| {
                    push(&o, format!("end: {}", gauges(&ka)));
                    ka.shutdown(ctx);
                }
            }),
    )
    .unwrap();
    drop(ka);
    finish_then(k, fds, move || drop(bh));
    assert_eq!(
        *out.borrow(),
        [
            "in_use 0 idle 0 connecting 1 queued 0 resolving 1",
            "deallocated 2: in_use 0 idle 0 connecting 0 queued 0 resolving 0, own refcount probe 1",
            "requester stopped",
            "lookup released",
            "end: in_use 0 idle 0 connecting 0 queued 0 resolving 0",
        ]
    );
}

/// A request deallocated while it waits in the queue gets nothing; the socket it waited for
/// goes to the pool when freed.
#[test]
fn cb_deallocate_queued() {
    let (_run, fds, mut k) = start("cb_queued", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder().max_per_host(1).build(&mut k).unwrap();
    let out = log();
    let port = server.port;
    let req = move |c: &'static str| Request::new("http", "127.0.0.1", port, "resp").context(c);
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("held")).unwrap();
                }
            })
            .on("resp", {
                let (o, ka) = (out.clone(), ka.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, describe(&r));
                    if label(&r) != "held" {
                        return;
                    }
                    let id = ka.allocate(ctx, req("queued")).unwrap();
                    push(&o, gauges(&ka));
                    ka.deallocate(ctx, id).unwrap();
                    push(&o, gauges(&ka));
                    drop(r);
                    let ka2 = ka.clone();
                    let me = ctx.session();
                    wait_for(
                        ctx,
                        "the socket to be pooled",
                        move || ka2.stats().total.idle == 1,
                        me,
                        "pooled",
                    );
                }
            })
            .on("pooled", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    push(&o, gauges(&ka));
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
            "held conn from_cache=None",
            "in_use 1 idle 0 connecting 0 queued 1 resolving 0",
            "in_use 1 idle 0 connecting 0 queued 0 resolving 0",
            "in_use 0 idle 1 connecting 0 queued 0 resolving 0",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// C-C, C-C2 (B4, B5): no head-of-line stall.

/// max_per_host 1: r2 waits for r1's socket, but r3 (another key) is served at once, while
/// r1 is still held; r2 gets r1's socket when it is freed.
#[test]
fn cc_head_of_line() {
    let (_run, fds, mut k) = start("cc", 10);
    let a = Rc::new(TestServer::spawn(&mut k));
    let b = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder().max_per_host(1).build(&mut k).unwrap();
    let out = log();
    let (pa, pb) = (a.port, b.port);
    let req =
        move |c: &'static str, p: u16| Request::new("http", "127.0.0.1", p, "resp").context(c);
    k.create(
        Session::new(None::<Connection>)
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("r1", pa)).unwrap();
                }
            })
            .on("resp", {
                let (o, ka, a, b) = (out.clone(), ka.clone(), a.clone(), b.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, describe(&r));
                    match label(&r) {
                        "r1" => {
                            *ctx.heap() = Some(r.connection.unwrap());
                            ka.allocate(ctx, req("r2", pa)).unwrap();
                            ka.allocate(ctx, req("r3", pb)).unwrap();
                        }
                        "r3" => {
                            let held = ctx.heap().is_some();
                            push(&o, format!("r1 still held: {held}"));
                            // Now r1 goes back, to r2.
                            *ctx.heap() = None;
                        }
                        _ => {
                            drop(r);
                            a.shutdown(ctx);
                            b.shutdown(ctx);
                            ka.shutdown(ctx);
                        }
                    }
                }
            }),
    )
    .unwrap();
    drop((ka, a, b));
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            "r1 conn from_cache=None",
            "r3 conn from_cache=None",
            "r1 still held: true",
            "r2 conn from_cache=Some(\"deferred\")",
        ]
    );
}

/// A queued request that timed out leaves nothing behind: a request for another key made
/// after it is served at once, and the held socket is still reused.
#[test]
fn cc2_timed_out_queued_request_stalls_nothing() {
    let (_run, fds, mut k) = start("cc2", 10);
    let a = Rc::new(TestServer::spawn(&mut k));
    let b = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder().max_per_host(1).build(&mut k).unwrap();
    let out = log();
    let (pa, pb) = (a.port, b.port);
    let req =
        move |c: &'static str, p: u16| Request::new("http", "127.0.0.1", p, "resp").context(c);
    k.create(
        Session::new(None::<Connection>)
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("r1", pa)).unwrap();
                }
            })
            .on("resp", {
                let (o, ka, a, b) = (out.clone(), ka.clone(), a.clone(), b.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, format!("{} {:?}", describe(&r), r.stage));
                    match label(&r) {
                        "r1" => {
                            *ctx.heap() = Some(r.connection.unwrap());
                            ka.allocate(ctx, req("r2", pa).timeout(Duration::from_millis(30)))
                                .unwrap();
                        }
                        "r2" => {
                            push(&o, gauges(&ka));
                            ka.allocate(ctx, req("r3", pb)).unwrap();
                        }
                        "r3" => {
                            drop(r);
                            // r1 freed: the next request for its key takes it at once.
                            *ctx.heap() = None;
                            ka.allocate(ctx, req("r4", pa)).unwrap();
                        }
                        _ => {
                            drop(r);
                            a.shutdown(ctx);
                            b.shutdown(ctx);
                            ka.shutdown(ctx);
                        }
                    }
                }
            }),
    )
    .unwrap();
    drop((ka, a, b));
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            "r1 conn from_cache=None Connecting",
            "r2 error connect Some(110) Connection timed out Queued",
            "in_use 1 idle 0 connecting 0 queued 0 resolving 0",
            "r3 conn from_cache=None Connecting",
            "r4 conn from_cache=Some(\"immediate\") Allocating",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// C-D, C-D2 (B7, B8): shutdown with requests in every stage.

/// Shutdown with a connection in use, a queued request, a connect in flight (to a
/// blackhole) and a lookup pending: each pending request gets exactly one "shutdown" error
/// at once, nothing comes later (not even past their timeout), and the connection in use,
/// freed later, is closed (the server reads its end).
#[test]
fn cd_shutdown_answers_every_pending_request() {
    let _s = serial();
    let _t = common::timeout(10, "cd");
    let fds = common::open_fds();
    let (kind, dns) = SlowDns::new();
    let dns = Rc::new(dns);
    let bh = blackhole();
    let mut k = Kernel::new().unwrap();
    let server = Rc::new(EndServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .max_per_host(1)
        .timeout(Duration::from_millis(300))
        .resolver(kind)
        .build(&mut k)
        .unwrap();
    let out = log();
    let (port, bport) = (server.port, bh.port);
    k.create(
        Session::new(None::<Connection>)
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    for (c, addr, p) in [
                        ("inuse", "127.0.0.1", port),
                        ("queued", "127.0.0.1", port),
                        ("connecting", "127.0.0.1", bport),
                        ("dns-pending", "slow.test", port),
                    ] {
                        ka.allocate(ctx, Request::new("http", addr, p, "resp").context(c))
                            .unwrap();
                    }
                }
            })
            .on("resp", {
                let (o, ka) = (out.clone(), ka.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    if label(&r) != "inuse" {
                        push(&o, format!("{} {:?}", describe(&r), r.stage));
                        return;
                    }
                    push(&o, describe(&r));
                    push(&o, gauges(&ka));
                    *ctx.heap() = Some(r.connection.unwrap());
                    ka.shutdown(ctx);
                    push(&o, "shutdown");
                    push(&o, gauges(&ka));
                    ctx.delay("later", 0.45, ()).unwrap();
                }
            })
            .on("later", {
                let (o, srv) = (out.clone(), server.clone());
                move |ctx| {
                    push(&o, "later");
                    *ctx.heap() = None;
                    let s = srv.clone();
                    let me = ctx.session();
                    wait_for(
                        ctx,
                        "the server to read the end",
                        move || s.client_count() == 0 && !s.ends.borrow().is_empty(),
                        me,
                        "ended",
                    );
                }
            })
            .on("ended", {
                let (o, srv, dns) = (out.clone(), server.clone(), dns.clone());
                move |ctx| {
                    push(&o, format!("server: {:?}", srv.ends.borrow()));
                    dns.release();
                    let me = ctx.session();
                    wait_for(ctx, "the lookup", dns.settled(Instant::now()), me, "end");
                }
            })
            .on("end", {
                let srv = server.clone();
                move |ctx| srv.shutdown(ctx)
            }),
    )
    .unwrap();
    drop((ka, server));
    finish_then(k, fds, move || drop(bh));
    let got = out.borrow().clone();
    assert_eq!(got.len(), 9, "{got:#?}");
    assert_eq!(
        got[..4],
        [
            "inuse conn from_cache=None",
            "in_use 1 idle 0 connecting 1 queued 1 resolving 1",
            "shutdown",
            "in_use 1 idle 0 connecting 0 queued 0 resolving 0",
        ]
    );
    let mut answers = got[4..7].to_vec();
    answers.sort();
    let shut = format!("shutdown Some({ECANCELED}) connection manager shut down");
    assert_eq!(
        answers,
        [
            format!("connecting error {shut} Connecting"),
            format!("dns-pending error {shut} Resolving"),
            format!("queued error {shut} Queued"),
        ]
    );
    assert_eq!(got[7..], ["later", "server: [\"read 0\"]"]);
}

/// max_open 1: freeing (closed) the held socket starts the queued request's connect, and
/// shutdown follows at once: the queued request gets the "shutdown" error, never a
/// connection.
#[test]
fn cd2_shutdown_right_after_a_free_starts_a_connect() {
    let (_run, fds, mut k) = start("cd2", 10);
    let a = Rc::new(TestServer::spawn(&mut k));
    let b = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder().max_open(1).build(&mut k).unwrap();
    let out = log();
    let (pa, pb) = (a.port, b.port);
    let req =
        move |c: &'static str, p: u16| Request::new("http", "127.0.0.1", p, "resp").context(c);
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("a", pa)).unwrap();
                }
            })
            .on("resp", {
                let (o, ka, a, b) = (out.clone(), ka.clone(), a.clone(), b.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, describe(&r));
                    if label(&r) == "a" {
                        ka.allocate(ctx, req("second", pb)).unwrap();
                        let mut c = r.connection.unwrap();
                        c.close(ctx);
                        drop(c);
                        ka.shutdown(ctx);
                        push(&o, format!("shutdown: {}", gauges(&ka)));
                    } else {
                        a.shutdown(ctx);
                        b.shutdown(ctx);
                    }
                }
            }),
    )
    .unwrap();
    drop((ka, a, b));
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            "a conn from_cache=None".to_owned(),
            "shutdown: in_use 0 idle 0 connecting 0 queued 0 resolving 0".to_owned(),
            format!("second error shutdown Some({ECANCELED}) connection manager shut down"),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// C-E: response fields.

/// A context that cannot be cloned: it must come back as it went in.
struct Ticket {
    label: &'static str,
    payload: Vec<u8>,
}

fn ticket(label: &'static str) -> Ticket {
    Ticket {
        label,
        payload: label.bytes().rev().collect(),
    }
}

/// Every response (new, deferred, immediate, and errors: timeout, refused, resolve) echoes
/// scheme, addr, port and the `for_*` origin, its request's id, and the context intact.
#[test]
fn ce_response_fields() {
    let (_run, fds, mut k) = start("ce", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let closed = closed_port();
    let ka = Keepalive::builder()
        .max_per_host(1)
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = server.port;
    let req = move |c: &'static str, addr: &str, p: u16| {
        Request::new("http", addr, p, "resp")
            .for_origin("https", "example.com", 443)
            .context(ticket(c))
    };
    #[derive(Default)]
    struct Heap {
        ids: HashMap<&'static str, RequestId>,
        held: Option<Connection>,
        errors: usize,
    }
    let ask = move |ctx: &mut Kernel,
                    ka: &Keepalive,
                    h: &mut HashMap<&'static str, RequestId>,
                    c: &'static str,
                    addr: &str,
                    p: u16| {
        let r = match c {
            "timeout" => req(c, addr, p).timeout(Duration::from_nanos(1)),
            _ => req(c, addr, p),
        };
        let id = ka.allocate(ctx, r).unwrap();
        h.insert(c, id);
    };
    k.create(
        Session::new(Heap::default())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    let mut ids = std::mem::take(&mut ctx.heap().ids);
                    ask(ctx, &ka, &mut ids, "new", "127.0.0.1", port);
                    ctx.heap().ids = ids;
                }
            })
            .on("resp", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    let mut r: Response = ctx.take_arg(0).unwrap();
                    let context = std::mem::replace(&mut r.context, Box::new(()));
                    let t = context
                        .downcast::<Ticket>()
                        .expect("the context is a Ticket");
                    let expected: Vec<u8> = t.label.bytes().rev().collect();
                    assert_eq!(t.payload, expected, "context payload");
                    let same_id = ctx.heap().ids.get(t.label) == Some(&r.request);
                    let k = &r.key;
                    let result = match &r.connection {
                        Ok(_) => format!("from_cache={:?}", r.from_cache().map(Origin::as_str)),
                        Err(f) => format!("{} {:?} {}", f.function, f.errnum, f.errstr),
                    };
                    push(
                        &o,
                        format!(
                            "{} {} {} {} for {} {} {} id:{} {}",
                            t.label,
                            r.scheme(),
                            r.addr(),
                            r.port(),
                            k.for_scheme,
                            k.for_addr,
                            k.for_port,
                            same_id,
                            result
                        ),
                    );
                    let mut ids = std::mem::take(&mut ctx.heap().ids);
                    match t.label {
                        "new" => {
                            ctx.heap().held = r.connection.ok();
                            ask(ctx, &ka, &mut ids, "deferred", "127.0.0.1", port);
                            ctx.heap().held = None;
                        }
                        "deferred" => {
                            drop(r);
                            ask(ctx, &ka, &mut ids, "immediate", "127.0.0.1", port);
                        }
                        "immediate" => {
                            // Held, so the next request for the key waits, and times out.
                            ctx.heap().held = r.connection.ok();
                            ask(ctx, &ka, &mut ids, "timeout", "127.0.0.1", port);
                        }
                        "timeout" => {
                            ctx.heap().held = None;
                            ask(ctx, &ka, &mut ids, "refused", "127.0.0.1", closed);
                            ask(ctx, &ka, &mut ids, "resolve", "no-such-host.invalid", port);
                        }
                        _ => {
                            ctx.heap().errors += 1;
                            if ctx.heap().errors == 2 {
                                srv.shutdown(ctx);
                                ka.shutdown(ctx);
                            }
                        }
                    }
                    ctx.heap().ids = ids;
                }
            }),
    )
    .unwrap();
    drop((ka, server));
    finish(k, fds);
    let origin = "for https example.com 443 id:true";
    let mut want = vec![
        format!("new http 127.0.0.1 {port} {origin} from_cache=None"),
        format!("deferred http 127.0.0.1 {port} {origin} from_cache=Some(\"deferred\")"),
        format!("immediate http 127.0.0.1 {port} {origin} from_cache=Some(\"immediate\")"),
        format!("timeout http 127.0.0.1 {port} {origin} connect Some(110) Connection timed out"),
    ];
    let got = out.borrow().clone();
    assert_eq!(got.len(), 6, "{got:#?}");
    assert_eq!(got[..4], want[..]);
    want = vec![
        format!("refused http 127.0.0.1 {closed} {origin} connect Some(111) Connection refused"),
        format!("resolve http no-such-host.invalid {port} {origin} resolve None Name or service not known"),
    ];
    let mut rest = got[4..].to_vec();
    rest.sort();
    assert_eq!(rest, want);
}

// ---------------------------------------------------------------------------------------------
// C-F, C-L (B8): shutdown closes sockets.

/// Shutdown closes an idle pooled socket at once: the server reads its end.
#[test]
fn cf_shutdown_closes_idle_sockets() {
    let (_run, fds, mut k) = start("cf", 10);
    let server = Rc::new(EndServer::spawn(&mut k));
    let ka = Keepalive::builder().build(&mut k).unwrap();
    let out = log();
    let port = server.port;
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(
                        ctx,
                        Request::new("http", "127.0.0.1", port, "resp").context("a"),
                    )
                    .unwrap();
                }
            })
            .on("resp", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, describe(&r));
                    drop(r);
                    let (ka, srv) = (ka.clone(), srv.clone());
                    let me = ctx.session();
                    wait_for(
                        ctx,
                        "the socket pooled and accepted",
                        move || ka.stats().total.idle == 1 && srv.client_count() == 1,
                        me,
                        "pooled",
                    );
                }
            })
            .on("pooled", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    ka.shutdown(ctx);
                    push(&o, format!("shutdown: {}", gauges(&ka)));
                    let s = srv.clone();
                    let me = ctx.session();
                    wait_for(
                        ctx,
                        "the server to read the end",
                        move || s.client_count() == 0,
                        me,
                        "ended",
                    );
                }
            })
            .on("ended", {
                let (o, srv) = (out.clone(), server.clone());
                move |ctx| {
                    push(&o, format!("server: {:?}", srv.ends.borrow()));
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
            "a conn from_cache=None",
            "shutdown: in_use 0 idle 0 connecting 0 queued 0 resolving 0",
            "server: [\"read 0\"]",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// C-G: bind_address.

/// bind_address 127.0.0.2: the server sees the connection come from 127.0.0.2.
#[test]
fn cg_bind_address() {
    let (_run, fds, mut k) = start("cg", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .bind_address(IpAddr::from([127, 0, 0, 2]))
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = server.port;
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(
                        ctx,
                        Request::new("http", "127.0.0.1", port, "resp").context("bound"),
                    )
                    .unwrap();
                }
            })
            .on("resp", {
                let (o, srv) = (out.clone(), server.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, describe(&r));
                    let s = srv.clone();
                    let me = ctx.session();
                    wait_for(
                        ctx,
                        "the server to accept",
                        move || !s.peers.borrow().is_empty(),
                        me,
                        "accepted",
                    );
                }
            })
            .on("accepted", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    push(&o, format!("peers {:?}", srv.peers.borrow()));
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
        ["bound conn from_cache=None", "peers [127.0.0.2]"]
    );
}

/// A bind_address not on this machine (TEST-NET-1, never routed: the bind fails locally)
/// is Perl's ("bind", 99, "Cannot assign requested address"); nothing is left counted.
#[test]
fn cg_bind_address_not_local() {
    let (_run, fds, mut k) = start("cg2", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .bind_address(IpAddr::from([192, 0, 2, 1]))
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = server.port;
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(
                        ctx,
                        Request::new("http", "127.0.0.1", port, "resp").context("unbound"),
                    )
                    .unwrap();
                }
            })
            .on("resp", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, describe(&r));
                    push(&o, gauges(&ka));
                    srv.shutdown(ctx);
                    ka.shutdown(ctx);
                }
            }),
    )
    .unwrap();
    drop((ka, server.clone()));
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            format!("unbound error bind Some({EADDRNOTAVAIL}) Cannot assign requested address"),
            "in_use 0 idle 0 connecting 0 queued 0 resolving 0".to_owned(),
        ]
    );
    assert!(server.peers.borrow().is_empty());
}

// ---------------------------------------------------------------------------------------------
// C-I (B6): a timed-out queued request, then shutdown.

/// A request times out in the queue, then the manager is shut down: the requester's
/// refcount is released exactly once per request (a refcount of the requester's own under
/// the same tag survives), and the run ends cleanly.
#[test]
fn ci_timeout_then_shutdown_releases_once() {
    let (_run, fds, mut k) = start("ci", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder().max_per_host(1).build(&mut k).unwrap();
    let out = log();
    let port = server.port;
    let req = move |c: &'static str| Request::new("http", "127.0.0.1", port, "resp").context(c);
    k.create(
        Session::new(None::<Connection>)
            .on("_start", {
                let (o, ka) = (out.clone(), ka.clone());
                move |ctx| {
                    let me = ctx.session();
                    let n = ctx.kernel().refcount_increment(me, TAG).unwrap();
                    push(&o, format!("own refcount {n}"));
                    ka.allocate(ctx, req("held")).unwrap();
                }
            })
            .on("resp", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, describe(&r));
                    if label(&r) == "held" {
                        *ctx.heap() = r.connection.ok();
                        ka.allocate(ctx, req("r2").timeout(Duration::from_millis(30)))
                            .unwrap();
                        return;
                    }
                    let me = ctx.session();
                    ka.shutdown(ctx);
                    // Ours is the only count left under the tag: probing it gives 2.
                    let n = ctx.kernel().refcount_increment(me, TAG).unwrap();
                    ctx.kernel().refcount_decrement(me, TAG).unwrap();
                    push(&o, format!("after shutdown, probe {n}"));
                    *ctx.heap() = None;
                    let n = ctx.kernel().refcount_decrement(me, TAG).unwrap();
                    push(&o, format!("own refcount released: {n}"));
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
            "own refcount 1",
            "held conn from_cache=None",
            "r2 error connect Some(110) Connection timed out",
            "after shutdown, probe 2",
            "own refcount released: 0",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// C-J: max_open FIFO across keys.

/// max_open 1: with A held, r2:B, r3:C, r4:B are served in that order, each a new
/// connection that evicts the previous (idle) one.
#[test]
fn cj_max_open_fifo_across_keys() {
    let (_run, fds, mut k) = start("cj", 10);
    let servers: Vec<Rc<TestServer>> = (0..3).map(|_| Rc::new(TestServer::spawn(&mut k))).collect();
    let ka = Keepalive::builder().max_open(1).build(&mut k).unwrap();
    let out = log();
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    let (pa, pb, pc) = (ports[0], ports[1], ports[2]);
    let req =
        move |c: &'static str, p: u16| Request::new("http", "127.0.0.1", p, "resp").context(c);
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("A", pa)).unwrap();
                }
            })
            .on("resp", {
                let (o, ka, servers) = (out.clone(), ka.clone(), servers.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    let ev = ka.stats().counters.evictions;
                    push(&o, format!("{} evictions {ev}", describe(&r)));
                    match label(&r) {
                        "A" => {
                            ka.allocate(ctx, req("r2:B", pb)).unwrap();
                            ka.allocate(ctx, req("r3:C", pc)).unwrap();
                            ka.allocate(ctx, req("r4:B", pb)).unwrap();
                        }
                        "r4:B" => {
                            drop(r);
                            for s in &servers {
                                s.shutdown(ctx);
                            }
                            ka.shutdown(ctx);
                        }
                        _ => {}
                    }
                    // Each connection is freed clean (pooled) when the handler returns.
                }
            }),
    )
    .unwrap();
    drop((ka, servers));
    finish(k, fds);
    assert_eq!(
        *out.borrow(),
        [
            "A conn from_cache=None evictions 0",
            "r2:B conn from_cache=None evictions 1",
            "r3:C conn from_cache=None evictions 2",
            "r4:B conn from_cache=None evictions 3",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// C-K, B14: idle sockets the server closed.

/// The server closes an idle pooled socket: the pool drops it (counted as a stale
/// discard), and the next request gets a new connection.
#[test]
fn ck_server_closes_idle_socket() {
    let (_run, fds, mut k) = start("ck", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder().build(&mut k).unwrap();
    let out = log();
    let port = server.port;
    let req = move |c: &'static str| Request::new("http", "127.0.0.1", port, "resp").context(c);
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("first")).unwrap();
                }
            })
            .on("resp", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, describe(&r));
                    let first = label(&r) == "first";
                    drop(r);
                    if first {
                        let (ka, srv) = (ka.clone(), srv.clone());
                        let me = ctx.session();
                        wait_for(
                            ctx,
                            "the socket pooled and accepted",
                            move || ka.stats().total.idle == 1 && srv.client_count() == 1,
                            me,
                            "pooled",
                        );
                    } else {
                        srv.shutdown(ctx);
                        ka.shutdown(ctx);
                    }
                }
            })
            .on("pooled", {
                let (ka, srv) = (ka.clone(), server.clone());
                move |ctx| {
                    srv.shutdown_clients(ctx);
                    let ka = ka.clone();
                    let me = ctx.session();
                    wait_for(
                        ctx,
                        "the pool to drop the socket",
                        move || ka.stats().total.idle == 0,
                        me,
                        "dropped",
                    );
                }
            })
            .on("dropped", {
                let (o, ka) = (out.clone(), ka.clone());
                move |ctx| {
                    let c = ka.stats().counters;
                    push(
                        &o,
                        format!(
                            "stale discards {}, {}, reuse hits {}",
                            c.stale_discards,
                            gauges(&ka),
                            c.reuse_hits()
                        ),
                    );
                    ka.allocate(ctx, req("second")).unwrap();
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
            "stale discards 1, in_use 0 idle 0 connecting 0 queued 0 resolving 0, reuse hits 0",
            "second conn from_cache=None",
        ]
    );
}

/// An idle socket the server closed after it was pooled, asked for before the pool could
/// notice, is not handed out: the check at hand-out refuses it and a new connection is made.
#[test]
fn b14_stale_idle_socket_refused_at_hand_out() {
    let (_run, fds, mut k) = start("b14", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder().build(&mut k).unwrap();
    let out = log();
    let port = server.port;
    let req = move |c: &'static str| Request::new("http", "127.0.0.1", port, "resp").context(c);
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("first")).unwrap();
                }
            })
            .on("resp", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, describe(&r));
                    if label(&r) == "first" {
                        drop(r);
                        let (ka, srv) = (ka.clone(), srv.clone());
                        let me = ctx.session();
                        wait_for(
                            ctx,
                            "the socket pooled and accepted",
                            move || ka.stats().total.idle == 1 && srv.client_count() == 1,
                            me,
                            "pooled",
                        );
                    } else {
                        push(
                            &o,
                            format!("stale discards {}", ka.stats().counters.stale_discards),
                        );
                        drop(r);
                        srv.shutdown(ctx);
                        ka.shutdown(ctx);
                    }
                }
            })
            .on("pooled", {
                let (ka, srv) = (ka.clone(), server.clone());
                move |ctx| {
                    // The server closes; the request comes in the same handler, before the
                    // manager's watch on the idle socket can run.
                    srv.shutdown_clients(ctx);
                    ka.allocate(ctx, req("second")).unwrap();
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
            "second conn from_cache=None",
            "stale discards 1",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Connect timeout, deallocate of answered requests, a burst.

/// A connect that never completes (blackhole listener) ends at `connect_timeout` with
/// Perl's ("connect", 110), in the Connecting stage, and releases its slot.
#[test]
fn connect_timeout_to_a_blackhole() {
    let _s = serial();
    let _t = common::timeout(10, "connect_timeout");
    let fds = common::open_fds();
    let bh = blackhole();
    let mut k = Kernel::new().unwrap();
    let ka = Keepalive::builder()
        .connect_timeout(Duration::from_millis(50))
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = bh.port;
    let t0 = Rc::new(Cell::new(Instant::now()));
    k.create(
        Session::new(())
            .on("_start", {
                let (ka, t0) = (ka.clone(), t0.clone());
                move |ctx| {
                    t0.set(Instant::now());
                    ka.allocate(
                        ctx,
                        Request::new("http", "127.0.0.1", port, "resp").context("bh"),
                    )
                    .unwrap();
                }
            })
            .on("resp", {
                let (o, ka) = (out.clone(), ka.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    let waited = t0.get().elapsed();
                    push(&o, format!("{} {:?}", describe(&r), r.stage));
                    push(
                        &o,
                        format!("waited 50 ms: {}", waited >= Duration::from_millis(50)),
                    );
                    push(
                        &o,
                        format!("{}, timeouts {}", gauges(&ka), ka.stats().counters.timeouts),
                    );
                    ka.shutdown(ctx);
                }
            }),
    )
    .unwrap();
    drop(ka);
    finish_then(k, fds, move || drop(bh));
    assert_eq!(
        *out.borrow(),
        [
            format!("bh error connect Some({ETIMEDOUT}) Connection timed out Connecting"),
            "waited 50 ms: true".to_owned(),
            "in_use 0 idle 0 connecting 0 queued 0 resolving 0, timeouts 1".to_owned(),
        ]
    );
}

/// Deallocating a request that was answered (a new connection, or an immediate hit) is
/// Perl's "deallocate() requires a request ID".
#[test]
fn deallocate_of_an_answered_request_is_an_error() {
    let (_run, fds, mut k) = start("dealloc_answered", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder().build(&mut k).unwrap();
    let out = log();
    let port = server.port;
    let req = move |c: &'static str| Request::new("http", "127.0.0.1", port, "resp").context(c);
    k.create(
        Session::new(HashMap::<&'static str, RequestId>::new())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    let id = ka.allocate(ctx, req("first")).unwrap();
                    ctx.heap().insert("first", id);
                }
            })
            .on("resp", {
                let (o, ka, srv) = (out.clone(), ka.clone(), server.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    let which = label(&r);
                    let same = ctx.heap().get(which) == Some(&r.request);
                    let e = ka.deallocate(ctx, r.request).unwrap_err();
                    let typed = matches!(
                        e,
                        keepalive::Error::Call(CallError::UnknownRequest(id)) if id == r.request
                    );
                    push(
                        &o,
                        format!("{} same id {same}: {e} ({typed})", describe(&r)),
                    );
                    drop(r);
                    if which == "first" {
                        let id = ka.allocate(ctx, req("second")).unwrap();
                        ctx.heap().insert("second", id);
                    } else {
                        srv.shutdown(ctx);
                        ka.shutdown(ctx);
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
            "first conn from_cache=None same id true: deallocate() requires a request ID (true)",
            "second conn from_cache=Some(\"immediate\") same id true: deallocate() requires a request ID (true)",
        ]
    );
}

/// 200 requests over three keys with max_per_host 2, a tenth of them deallocated at once,
/// connections freed (or closed) at random moments: every other request gets exactly one
/// response, a connection, with the id `allocate` returned.
#[test]
fn burst_every_request_answered_once() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    const N: u32 = 200;
    let (_run, fds, mut k) = start("burst", 10);
    let a = Rc::new(TestServer::spawn(&mut k));
    let b = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .max_per_host(2)
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    struct Burst {
        rng: StdRng,
        ids: HashMap<u32, RequestId>,
        cancelled: HashSet<u32>,
        held: Vec<Connection>,
        answers: HashMap<u32, usize>,
        total: usize,
    }
    let result: Rc<RefCell<Option<Burst>>> = Rc::new(RefCell::new(None));
    let summary = log();
    let keys = [
        ("127.0.0.1", a.port),
        ("localhost", a.port),
        ("127.0.0.1", b.port),
    ];
    k.create(
        Session::new(Burst {
            rng: StdRng::seed_from_u64(0x6b61),
            ids: HashMap::new(),
            cancelled: HashSet::new(),
            held: Vec::new(),
            answers: HashMap::new(),
            total: 0,
        })
        .on("_start", {
            let ka = ka.clone();
            move |ctx| {
                for i in 0..N {
                    let (addr, port) = keys[i as usize % keys.len()];
                    let id = ka
                        .allocate(ctx, Request::new("http", addr, port, "resp").context(i))
                        .unwrap();
                    ctx.heap().ids.insert(i, id);
                    if ctx.heap().rng.gen_bool(0.1) {
                        ka.deallocate(ctx, id).unwrap();
                        ctx.heap().cancelled.insert(i);
                    }
                }
            }
        })
        .on("resp", {
            move |ctx| {
                let r: Response = ctx.take_arg(0).unwrap();
                let i = *r.context_ref::<u32>().expect("u32 context");
                assert_eq!(
                    ctx.heap().ids.get(&i),
                    Some(&r.request),
                    "request id of {i}"
                );
                assert!(!ctx.heap().cancelled.contains(&i), "{i} was deallocated");
                *ctx.heap().answers.entry(i).or_insert(0) += 1;
                ctx.heap().total += 1;
                let mut c = r.connection.unwrap_or_else(|f| panic!("request {i}: {f}"));
                if ctx.heap().rng.gen_bool(0.2) {
                    c.close(ctx);
                }
                ctx.heap().held.push(c);
                // Free a random number of the held connections now, the rest later.
                let h = ctx.heap();
                let n = h.rng.gen_range(0..=h.held.len());
                for _ in 0..n {
                    let j = h.rng.gen_range(0..h.held.len());
                    h.held.swap_remove(j);
                }
                let expected = N as usize - ctx.heap().cancelled.len();
                if ctx.heap().total == expected {
                    ctx.heap().held.clear();
                    ctx.yield_("done", ()).unwrap();
                } else if !ctx.heap().held.is_empty() {
                    ctx.yield_("release_one", ()).unwrap();
                }
            }
        })
        .on("release_one", |ctx| {
            let h = ctx.heap();
            if !h.held.is_empty() {
                let j = h.rng.gen_range(0..h.held.len());
                h.held.swap_remove(j);
            }
        })
        .on("done", {
            let (ka, a, b, s, result) = (
                ka.clone(),
                a.clone(),
                b.clone(),
                summary.clone(),
                result.clone(),
            );
            move |ctx| {
                let st = ka.stats();
                push(
                    &s,
                    format!(
                        "requests {} deallocated {} connects {} reuse {}",
                        st.counters.requests,
                        st.counters.deallocated,
                        st.counters.connected,
                        st.counters.reuse_hits()
                    ),
                );
                a.shutdown(ctx);
                b.shutdown(ctx);
                ka.shutdown(ctx);
                let h = ctx.heap();
                *result.borrow_mut() = Some(Burst {
                    rng: StdRng::seed_from_u64(0),
                    ids: std::mem::take(&mut h.ids),
                    cancelled: std::mem::take(&mut h.cancelled),
                    held: Vec::new(),
                    answers: std::mem::take(&mut h.answers),
                    total: h.total,
                });
            }
        }),
    )
    .unwrap();
    drop((ka, a, b));
    finish(k, fds);
    let r = result.borrow_mut().take().expect("the burst finished");
    assert!(!r.cancelled.is_empty());
    for i in 0..N {
        let n = r.answers.get(&i).copied().unwrap_or(0);
        let want = usize::from(!r.cancelled.contains(&i));
        assert_eq!(n, want, "responses to request {i}");
    }
    assert_eq!(r.total, N as usize - r.cancelled.len());
    assert_eq!(r.ids.len(), N as usize);
    let s = summary.borrow();
    let line = &s[0];
    assert!(
        line.starts_with(&format!("requests {N} deallocated {} ", r.cancelled.len())),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------------
// https.

/// A TLS server on 127.0.0.1 (port 0) in a plain thread, with a fresh self-signed
/// certificate for `localhost`: it serves `conns` connections one after the other, echoes
/// each line it reads, and reports what happened.
struct TlsServer {
    port: u16,
    cert: rustls::pki_types::CertificateDer<'static>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl TlsServer {
    fn start(conns: usize) -> TlsServer {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        use std::io::{Read, Write};
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = ck.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = std::thread::spawn(move || {
            let mut events = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(4);
            for _ in 0..conns {
                let sock = loop {
                    match listener.accept() {
                        Ok((s, _)) => break Some(s),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            if Instant::now() > deadline {
                                break None;
                            }
                            // This server thread polls its non-blocking listener.
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                };
                let Some(mut sock) = sock else {
                    events.push("no client came".to_owned());
                    break;
                };
                sock.set_nonblocking(false).unwrap();
                sock.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
                sock.set_write_timeout(Some(Duration::from_secs(4)))
                    .unwrap();
                let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut failed = None;
                while conn.is_handshaking() {
                    if let Err(e) = conn.complete_io(&mut sock) {
                        failed = Some(e);
                        break;
                    }
                }
                if failed.is_some() {
                    events.push("handshake failed".to_owned());
                    continue;
                }
                events.push("handshake done".to_owned());
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let mut line = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    match tls.read(&mut buf) {
                        Ok(0) => {
                            events.push("eof".to_owned());
                            break;
                        }
                        Ok(n) => {
                            for &byte in &buf[..n] {
                                line.push(byte);
                                if byte == b'\n' {
                                    let text = String::from_utf8_lossy(&line).trim().to_owned();
                                    events.push(format!("echo {text}"));
                                    tls.write_all(&line).unwrap();
                                    tls.flush().unwrap();
                                    line.clear();
                                }
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                            events.push("eof".to_owned());
                            break;
                        }
                        Err(e) => {
                            events.push(format!("read error: {e}"));
                            break;
                        }
                    }
                }
            }
            events
        });
        TlsServer {
            port,
            cert,
            thread: Some(thread),
        }
    }

    fn join(&mut self) -> Vec<String> {
        self.thread
            .take()
            .map(|t| t.join().expect("the TLS server thread"))
            .unwrap_or_default()
    }
}

/// https end to end: a verified handshake, a line echoed, the connection freed and reused
/// (from the pool at once) for another line.
#[test]
fn https_round_trip_and_reuse() {
    let _s = serial();
    let _t = common::timeout(10, "https");
    let fds = common::open_fds();
    let mut tls = TlsServer::start(1);
    let mut k = Kernel::new().unwrap();
    let ka = Keepalive::builder()
        .tls_config(keepalive::tls::client_config_with_roots([tls.cert.clone()]).unwrap())
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let port = tls.port;
    let req = move |c: &'static str| Request::new("https", "localhost", port, "resp").context(c);
    k.create(
        Session::new(None::<Connection>)
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("first")).unwrap();
                }
            })
            .on("resp", {
                let o = out.clone();
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    push(&o, describe(&r));
                    let line = label(&r);
                    let mut c = r.connection.expect("connected");
                    let id = c
                        .start(ctx, |b| b.input_event("input").error_event("error"))
                        .unwrap();
                    ctx.wheel_mut::<ReadWrite>(id)
                        .unwrap()
                        .put_one(format!("hello {line}"))
                        .unwrap();
                    *ctx.heap() = Some(c);
                }
            })
            .on("input", {
                let o = out.clone();
                move |ctx| {
                    let line: Vec<u8> = ctx.take_arg(0).unwrap();
                    push(&o, format!("read {}", String::from_utf8_lossy(&line)));
                    ctx.yield_("next", ()).unwrap();
                }
            })
            .on("next", {
                let (o, ka) = (out.clone(), ka.clone());
                move |ctx| {
                    *ctx.heap() = None;
                    if o.borrow().len() < 4 {
                        ka.allocate(ctx, req("second")).unwrap();
                    } else {
                        ka.shutdown(ctx);
                    }
                }
            })
            .on("error", {
                let o = out.clone();
                move |ctx| {
                    let op = ctx
                        .arg::<WheelError>(0)
                        .map(|e| e.operation.to_owned())
                        .unwrap_or_default();
                    let errnum = ctx.arg::<WheelError>(0).map(|e| e.errno).unwrap_or(-1);
                    push(&o, format!("unexpected wheel error {op} {errnum}"));
                    *ctx.heap() = None;
                }
            }),
    )
    .unwrap();
    drop(ka);
    let server_events = Rc::new(RefCell::new(Vec::new()));
    let se = server_events.clone();
    finish_then(k, fds, move || *se.borrow_mut() = tls.join());
    assert_eq!(
        *out.borrow(),
        [
            "first conn from_cache=None",
            "read hello first",
            "second conn from_cache=Some(\"immediate\")",
            "read hello second",
        ]
    );
    assert_eq!(
        *server_events.borrow(),
        [
            "handshake done",
            "echo hello first",
            "echo hello second",
            "eof"
        ]
    );
}

/// A handshake that fails (the default roots do not trust a self-signed certificate) is an
/// "sslify" error that leaves no slot taken: with max_per_host 1 the next request for the
/// key is served (and fails the same way), and a plain request still works.
#[test]
fn https_failed_handshake_releases_its_slot() {
    let _s = serial();
    let _t = common::timeout(10, "https_fail");
    let fds = common::open_fds();
    let mut tls = TlsServer::start(2);
    let mut k = Kernel::new().unwrap();
    let plain = Rc::new(TestServer::spawn(&mut k));
    let ka = Keepalive::builder()
        .max_per_host(1)
        .resolver(v4_resolver())
        .build(&mut k)
        .unwrap();
    let out = log();
    let (port, pport) = (tls.port, plain.port);
    let req = move |c: &'static str| Request::new("https", "localhost", port, "resp").context(c);
    k.create(
        Session::new(())
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, req("first")).unwrap();
                }
            })
            .on("resp", {
                let (o, ka, plain) = (out.clone(), ka.clone(), plain.clone());
                move |ctx| {
                    let r: Response = ctx.take_arg(0).unwrap();
                    let line = match &r.connection {
                        Ok(_) => describe(&r),
                        Err(f) => format!("{} error {}", label(&r), f.function),
                    };
                    push(&o, format!("{line}: {}", gauges(&ka)));
                    match label(&r) {
                        "first" => {
                            ka.allocate(ctx, req("again")).unwrap();
                        }
                        "again" => {
                            ka.allocate(
                                ctx,
                                Request::new("http", "127.0.0.1", pport, "resp").context("plain"),
                            )
                            .unwrap();
                        }
                        _ => {
                            drop(r);
                            plain.shutdown(ctx);
                            ka.shutdown(ctx);
                        }
                    }
                }
            }),
    )
    .unwrap();
    drop((ka, plain));
    let server_events = Rc::new(RefCell::new(Vec::new()));
    let se = server_events.clone();
    finish_then(k, fds, move || *se.borrow_mut() = tls.join());
    assert_eq!(
        *out.borrow(),
        [
            "first error sslify: in_use 0 idle 0 connecting 0 queued 0 resolving 0",
            "again error sslify: in_use 0 idle 0 connecting 0 queued 0 resolving 0",
            "plain conn from_cache=None: in_use 1 idle 0 connecting 0 queued 0 resolving 0",
        ]
    );
    assert_eq!(
        *server_events.borrow(),
        ["handshake failed", "handshake failed"]
    );
}

/// DNS never blocks the loop: while a lookup waits in its worker thread, the kernel keeps
/// dispatching the session's events; the answer arrives after them, and two requests for
/// the same host share one lookup.
#[test]
fn lookups_run_beside_the_loop_and_are_shared() {
    let (_run, fds, mut k) = start("lookups_run_beside_the_loop", 10);
    let server = Rc::new(TestServer::spawn(&mut k));
    let (kind, slow) = SlowDns::new();
    let ka = Keepalive::builder()
        .resolver(kind)
        .resolver_threads(4)
        .build(&mut k)
        .unwrap();
    let slow = Rc::new(slow);
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let port = server.port;
    let (l, l2, ka2, srv, sl) = (
        log.clone(),
        log.clone(),
        ka.clone(),
        server.clone(),
        slow.clone(),
    );
    k.create(
        Session::new(0u32)
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    for c in ["one", "two"] {
                        ka.allocate(
                            ctx,
                            Request::new("http", "slow.test", port, "got_conn").context(c),
                        )
                        .unwrap();
                    }
                    ctx.yield_("tick", ()).unwrap();
                }
            })
            .on("tick", move |ctx| {
                *ctx.heap() += 1;
                l.borrow_mut().push(format!("tick {}", ctx.heap()));
                if *ctx.heap() < 5 {
                    ctx.yield_("tick", ()).unwrap();
                } else {
                    // The loop ran five times with the lookup pending; now let it answer.
                    sl.release();
                }
            })
            .on("got_conn", move |ctx| {
                let r: Response = ctx.take_arg(0).unwrap();
                let c = *r.context_ref::<&str>().unwrap();
                l2.borrow_mut()
                    .push(format!("{c} connected: {}", r.connection.is_ok()));
                if l2.borrow().len() == 7 {
                    srv.shutdown(ctx);
                    ka2.shutdown(ctx);
                }
            }),
    )
    .unwrap();
    drop((ka, server));
    finish(k, fds);
    let got = log.borrow().clone();
    assert_eq!(
        got[..5],
        ["tick 1", "tick 2", "tick 3", "tick 4", "tick 5"],
        "{got:?}"
    );
    let mut rest = got[5..].to_vec();
    rest.sort();
    assert_eq!(rest, ["one connected: true", "two connected: true"]);
    assert_eq!(
        slow.started.load(Ordering::SeqCst),
        1,
        "one lookup for both requests"
    );
}
