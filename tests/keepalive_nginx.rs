//! The manager against a real server: nginx on a free loopback port with its own config
//! (started by the test, see `common::nginx`). HTTP/1.1 GETs go through pooled
//! connections; nginx's `keepalive_requests` and `keepalive_timeout` force the connection
//! renewals the pool must handle without a single failed request, and no descriptor leaks.

mod common;

use common::ka::serial;
use common::nginx::{Nginx, NginxConfig};
use keepalive::http::{get_request, Parse, ResponseParser};
use keepalive::reactor::filter::Stream as StreamFilter;
use keepalive::reactor::wheel::ReadWrite;
use keepalive::reactor::wheel::WheelError;
use keepalive::reactor::{Ctx, HandlerError, Kernel, Session, WheelId};
use keepalive::{Connection, Keepalive, Origin, PoolKey, Request, Response};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

#[derive(Default, Debug, Clone)]
struct Tally {
    ok: u64,
    errors: u64,
    new_connections: u64,
    reused: u64,
    closed_by_server: u64,
    bodies: Vec<u64>,
}

struct Fetcher {
    ka: Keepalive,
    key: Arc<PoolKey>,
    request: Vec<u8>,
    left: u64,
    /// Requests allocated and not finished.
    outstanding: u64,
    in_flight: Vec<Option<(Connection, WheelId, ResponseParser)>>,
    tally: Rc<RefCell<Tally>>,
}

type C<'a, 'b> = &'a mut Ctx<'b, Fetcher>;

/// Ends the request of `slot` and starts the next one, if any.
fn done(ctx: C, slot: usize) {
    ctx.heap().outstanding -= 1;
    next(ctx, slot);
}

fn next(ctx: C, slot: usize) {
    if ctx.heap().left == 0 {
        if ctx.heap().outstanding == 0 {
            let ka = ctx.heap().ka.clone();
            ka.shutdown(ctx);
        }
        return;
    }
    ctx.heap().left -= 1;
    ctx.heap().outstanding += 1;
    let ka = ctx.heap().ka.clone();
    let req = Request::for_key(ctx.heap().key.clone(), Rc::from("got_conn")).context(slot);
    ka.allocate(ctx, req).expect("allocate");
}

fn got_conn(ctx: C) -> Result<(), HandlerError> {
    let r: Response = ctx.take_arg(0)?;
    let slot = *r.context_ref::<usize>().unwrap();
    let reused = r.from_cache().is_some();
    let mut conn = match r.connection {
        Ok(c) => c,
        Err(f) => {
            eprintln!("request failed: {f}");
            ctx.heap().tally.borrow_mut().errors += 1;
            done(ctx, slot);
            return Ok(());
        }
    };
    {
        let mut t = ctx.heap().tally.borrow_mut();
        if reused {
            t.reused += 1;
        } else {
            t.new_connections += 1;
        }
    }
    let id = conn.start(ctx, |b| {
        b.filter(StreamFilter::new())
            .input_event("got_input")
            .error_event("got_error")
    })?;
    let bytes = ctx.heap().request.clone();
    ctx.wheel_mut::<ReadWrite>(id).unwrap().put_one(bytes)?;
    ctx.heap().in_flight[slot] = Some((conn, id, ResponseParser::new(false)));
    Ok(())
}

fn slot_of(ctx: C, id: WheelId) -> Option<usize> {
    ctx.heap()
        .in_flight
        .iter()
        .position(|s| s.as_ref().is_some_and(|(_, w, _)| *w == id))
}

fn got_input(ctx: C) -> Result<(), HandlerError> {
    let chunk: Vec<u8> = ctx.take_arg(0)?;
    let id: WheelId = *ctx.arg(1)?;
    let Some(slot) = slot_of(ctx, id) else {
        return Ok(());
    };
    let parsed = {
        let (_, _, parser) = ctx.heap().in_flight[slot].as_mut().unwrap();
        parser.feed(&chunk)
    };
    match parsed {
        Ok(Parse::Incomplete) => return Ok(()),
        Ok(Parse::Done(info)) => {
            let (mut conn, _, _) = ctx.heap().in_flight[slot].take().unwrap();
            if !info.keep_alive {
                ctx.heap().tally.borrow_mut().closed_by_server += 1;
                conn.close(ctx);
            }
            drop(conn);
            let mut t = ctx.heap().tally.borrow_mut();
            if info.status == 200 {
                t.ok += 1;
                t.bodies.push(info.body_len);
            } else {
                t.errors += 1;
            }
        }
        Err(e) => {
            eprintln!("bad response: {e}");
            ctx.heap().in_flight[slot] = None;
            ctx.heap().tally.borrow_mut().errors += 1;
        }
    }
    done(ctx, slot);
    Ok(())
}

fn got_error(ctx: C) -> Result<(), HandlerError> {
    let id: WheelId = *ctx.arg(3)?;
    let Some(slot) = slot_of(ctx, id) else {
        return Ok(());
    };
    eprintln!(
        "{} error {}: {}",
        ctx.arg::<WheelError>(0)?.operation,
        ctx.arg::<WheelError>(0)?.errno,
        ctx.arg::<WheelError>(0)?.message
    );
    ctx.heap().in_flight[slot] = None;
    ctx.heap().tally.borrow_mut().errors += 1;
    done(ctx, slot);
    Ok(())
}

/// `n` GETs of `path` with `c` in flight through one manager; returns the tally.
fn fetch(port: u16, path: &str, n: u64, c: usize) -> Tally {
    let mut k = Kernel::new().unwrap();
    let ka = Keepalive::builder()
        .max_per_host(c)
        .timeout(Duration::from_secs(10))
        .build(&mut k)
        .unwrap();
    let tally = Rc::new(RefCell::new(Tally::default()));
    let fetcher = Fetcher {
        ka,
        key: Arc::new(PoolKey::new("http", "127.0.0.1", port)),
        request: get_request("127.0.0.1", port, path),
        left: n,
        outstanding: 0,
        in_flight: (0..c).map(|_| None).collect(),
        tally: tally.clone(),
    };
    k.create(
        Session::new(fetcher)
            .on("_start", move |ctx| {
                for slot in 0..c {
                    next(ctx, slot);
                }
            })
            .on("got_conn", got_conn)
            .on("got_input", got_input)
            .on("got_error", got_error),
    )
    .unwrap();
    k.run().expect("kernel ran clean");
    drop(k);
    let t = tally.borrow().clone();
    t
}

/// nginx closing every connection after its fifth request.
fn nginx_closing_after_5() -> Nginx {
    Nginx::start(NginxConfig {
        keepalive_requests: 5,
        keepalive_timeout: "1s".into(),
        ..NginxConfig::default()
    })
    .expect("nginx starts")
}

/// 10,000 GETs one after the other against `keepalive_requests 5`: no errors, and exactly
/// the 2,000 new connections that limit forces (every connection carries five requests,
/// the fifth answered with `Connection: close`).
#[test]
fn ten_thousand_gets_with_keepalive_requests_5() {
    let _s = serial();
    let _t = common::timeout(60, "ten_thousand_gets");
    let nginx = nginx_closing_after_5();
    let fds = common::open_fds();
    let t = fetch(nginx.port(), "/", 10_000, 1);
    common::assert_no_new_fds(&fds);
    assert_eq!(t.errors, 0, "{t:?}");
    assert_eq!(t.ok, 10_000);
    assert_eq!(
        t.new_connections,
        2_000,
        "{:?}",
        (t.new_connections, t.reused)
    );
    assert_eq!(t.reused, 8_000);
    assert_eq!(t.closed_by_server, 2_000);
    assert!(t.bodies.iter().all(|&b| b == 6), "every body is hello\\n");
}

/// The same with 8 requests in flight: still no errors, and no more connections than the
/// limit forces, plus at most one per worker still open at the end.
#[test]
fn concurrent_gets_with_keepalive_requests_5() {
    let _s = serial();
    let _t = common::timeout(60, "concurrent_gets");
    let nginx = nginx_closing_after_5();
    let fds = common::open_fds();
    let t = fetch(nginx.port(), "/", 4_000, 8);
    common::assert_no_new_fds(&fds);
    assert_eq!((t.errors, t.ok), (0, 4_000), "{:?}", (t.errors, t.ok));
    let open_at_end = t.new_connections - t.closed_by_server;
    assert!(open_at_end <= 8, "{open_at_end}");
    assert_eq!(
        t.closed_by_server * 5 + (4_000 - t.closed_by_server * 5),
        4_000
    );
    assert!(
        (800..=808).contains(&t.new_connections),
        "{}",
        t.new_connections
    );
    assert_eq!(t.reused, 4_000 - t.new_connections);
}

/// Large bodies arrive in many reads; connections are still reused.
#[test]
fn large_bodies_on_reused_connections() {
    let _s = serial();
    let _t = common::timeout(60, "large_bodies");
    let nginx = Nginx::start(NginxConfig::default()).expect("nginx starts");
    let fds = common::open_fds();
    let t = fetch(nginx.port(), "/big", 40, 2);
    common::assert_no_new_fds(&fds);
    assert_eq!((t.errors, t.ok), (0, 40), "{t:?}");
    assert_eq!(t.new_connections, 2, "{t:?}");
    assert!(t.bodies.iter().all(|&b| b == common::nginx::BIG_LEN as u64));
}

/// `Connection: close` on every response (`/close`): nothing is ever reused, nothing fails.
#[test]
fn connection_close_is_honoured() {
    let _s = serial();
    let _t = common::timeout(60, "connection_close");
    let nginx = Nginx::start(NginxConfig::default()).expect("nginx starts");
    let fds = common::open_fds();
    let t = fetch(nginx.port(), "/close", 200, 4);
    common::assert_no_new_fds(&fds);
    assert_eq!((t.errors, t.ok), (0, 200), "{t:?}");
    assert_eq!((t.new_connections, t.reused), (200, 0), "{t:?}");
}

/// nginx closes an idle pooled connection after `keepalive_timeout`: the pool drops it
/// when it sees the close, and the next request gets a new connection, never the dead one.
#[test]
fn server_idle_timeout_is_never_handed_out() {
    let _s = serial();
    let _t = common::timeout(60, "idle_timeout");
    let nginx = Nginx::start(NginxConfig {
        keepalive_timeout: "200ms".into(),
        ..NginxConfig::default()
    })
    .expect("nginx starts");
    let fds = common::open_fds();
    let port = nginx.port();
    // One GET, pooled; then wait (bounded) until the manager has dropped the socket nginx
    // closed; then one more GET.
    let mut k = Kernel::new().unwrap();
    let ka = Keepalive::new(&mut k).unwrap();
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let (l, l2, ka2) = (log.clone(), log.clone(), ka.clone());
    k.create(
        Session::new((None::<Connection>, ResponseParser::new(false), 0u32))
            .on("_start", {
                let ka = ka.clone();
                move |ctx| {
                    ka.allocate(ctx, Request::new("http", "127.0.0.1", port, "got_conn"))
                        .unwrap();
                }
            })
            .on("got_conn", move |ctx| -> Result<(), HandlerError> {
                let r: Response = ctx.take_arg(0)?;
                l.borrow_mut().push(format!(
                    "conn from_cache={:?}",
                    r.from_cache().map(Origin::as_str)
                ));
                let mut c = r.connection.expect("connected");
                let id = c.start(ctx, |b| {
                    b.filter(StreamFilter::new()).input_event("got_input")
                })?;
                ctx.wheel_mut::<ReadWrite>(id)
                    .unwrap()
                    .put_one(get_request("127.0.0.1", port, "/"))?;
                ctx.heap().0 = Some(c);
                ctx.heap().1.reset(false);
                Ok(())
            })
            .on("got_input", {
                let ka = ka.clone();
                let l = log.clone();
                move |ctx| -> Result<(), HandlerError> {
                    let chunk: Vec<u8> = ctx.take_arg(0)?;
                    if let Ok(Parse::Done(i)) = ctx.heap().1.feed(&chunk) {
                        l.borrow_mut().push(format!("status {}", i.status));
                        ctx.heap().0 = None;
                        ctx.heap().2 += 1;
                        if ctx.heap().2 == 1 {
                            ctx.delay("wait_close", 0.05, ())?;
                        } else {
                            ka.shutdown(ctx);
                        }
                    }
                    Ok(())
                }
            })
            .on("wait_close", move |ctx| -> Result<(), HandlerError> {
                let s = ka2.stats();
                if s.total.idle > 0 {
                    ctx.delay("wait_close", 0.05, ())?;
                    return Ok(());
                }
                // Dropped as stale (the close made it readable), not expired or evicted.
                l2.borrow_mut()
                    .push(format!("discarded: {}", s.counters.stale_discards));
                ka2.allocate(ctx, Request::new("http", "127.0.0.1", port, "got_conn"))
                    .unwrap();
                Ok(())
            }),
    )
    .unwrap();
    drop(ka);
    k.run().expect("kernel ran clean");
    drop(k);
    common::assert_no_new_fds(&fds);
    let got = log.borrow().clone();
    assert_eq!(
        got,
        [
            "conn from_cache=None",
            "status 200",
            "discarded: 1",
            "conn from_cache=None",
            "status 200"
        ]
    );
}
