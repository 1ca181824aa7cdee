//! Happy Eyeballs v2 (RFC 8305) in the manager, on loopback: the resolver answers an
//! address whose connect never completes (a listener with a full backlog) before a good
//! one. The connect to the good one starts after the connection attempt delay and wins;
//! the hanging attempt is closed.

mod common;

use common::web::{get, ok, Server};
use keepalive::reactor::{Ctx, Kernel, Session};
use keepalive::{HttpClient, Keepalive, ResolverKind};
use socket2::{Domain, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A listener on 127.0.0.2:`port` with a backlog of 0, and the connection that fills it:
/// further connects to it hang (their SYNs are dropped).
fn black_hole(port: u16) -> Option<(Socket, std::net::TcpStream)> {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), port);
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    l.bind(&addr.into()).ok()?;
    l.listen(0).ok()?;
    let filler = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    Some((l, filler))
}

fn fetch_through(delay: Option<Duration>, port: u16) -> (u16, Duration, keepalive::Counters) {
    fetch_via(delay, port, Ipv4Addr::new(127, 0, 0, 2))
}

/// Fetches `http://dual.test:PORT/`, the name resolving to `first`, then 127.0.0.1.
fn fetch_via(
    delay: Option<Duration>,
    port: u16,
    first: Ipv4Addr,
) -> (u16, Duration, keepalive::Counters) {
    let mut kernel = Kernel::new().unwrap();
    let resolver = ResolverKind::Custom(Arc::new(move |_: &str| {
        Ok(vec![IpAddr::V4(first), IpAddr::V4(Ipv4Addr::LOCALHOST)])
    }));
    let cm = Keepalive::builder()
        .resolver(resolver)
        .connection_attempt_delay(delay)
        .build(&mut kernel)
        .unwrap();
    let ua = HttpClient::builder()
        .connection_manager(cm.clone())
        .timeout(Duration::from_millis(1500))
        .build(&mut kernel)
        .unwrap();
    let out = std::rc::Rc::new(std::cell::Cell::new((0u16, Duration::ZERO)));
    let o2 = out.clone();
    let url = format!("http://dual.test:{port}/");
    let (ua2, cm2) = (ua.clone(), cm.clone());
    kernel
        .create(
            Session::new(Instant::now())
                .on("_start", move |ctx: &mut Ctx<'_, Instant>| {
                    *ctx.heap() = Instant::now();
                    ua.request(ctx, "response", get(&url)).unwrap();
                })
                .on("response", move |ctx: &mut Ctx<'_, Instant>| {
                    let r: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
                    o2.set((r.status().as_u16(), ctx.heap().elapsed()));
                    ua2.shutdown(ctx);
                    cm2.shutdown(ctx);
                }),
        )
        .unwrap();
    kernel.run().unwrap();
    let (code, took) = out.get();
    (code, took, cm.stats().counters)
}

#[test]
fn the_second_address_wins_after_the_attempt_delay() {
    let _w = common::timeout(30, "the_second_address_wins_after_the_attempt_delay");
    let _s = common::ka::serial();
    // The good server on 127.0.0.1 and the black hole on 127.0.0.2, on one port.
    let (server, hole) = (0..20)
        .find_map(|_| {
            let server = Server::answering(|_| ok("good"));
            black_hole(server.port).map(|h| (server, h))
        })
        .expect("a port free on both addresses");
    let fds = common::open_fds();
    let (code, took, counters) = fetch_through(Some(Duration::from_millis(100)), server.port);
    assert_eq!(code, 200);
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert_eq!(counters.connected, 1);
    server.wait_all_closed();
    common::assert_no_new_fds(&fds);

    // Without racing, the request waits for the black hole until it times out.
    let (code, took, _) = fetch_through(None, server.port);
    assert_eq!(code, 408);
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    drop(hole);
}

/// A first address that refuses: the next one is tried at once, not after the delay.
#[test]
fn a_refused_attempt_starts_the_next_at_once() {
    let _w = common::timeout(30, "a_refused_attempt_starts_the_next_at_once");
    let _s = common::ka::serial();
    let server = Server::answering(|_| ok("good"));
    let (code, took, _) = fetch_via(
        Some(Duration::from_secs(5)),
        server.port,
        Ipv4Addr::new(127, 0, 0, 3),
    );
    assert_eq!(code, 200);
    assert!(took < Duration::from_secs(2), "{took:?}");
}
