//! After a connection is refused, connects to the same address back off (the demo fired
//! 24,713 refused connects in a half-second server outage): a requester that asks again as
//! soon as it is refused makes a handful of connects in half a second, not thousands.
//! Without the backoff (`refused_backoff(None)`, Perl's behaviour) it makes hundreds.

mod common;

use keepalive::reactor::{Ctx, Session};
use keepalive::{Keepalive, Request, Response};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// Asks for `127.0.0.1:port` again on every refusal, for half a second; returns the
/// connects that failed and the requests answered.
fn hammer(backoff: Option<(Duration, Duration)>) -> (u64, u64) {
    let (_running, fds, mut k) = common::ka::start("hammer", 10);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ka = Keepalive::builder()
        .refused_backoff(backoff)
        .build(&mut k)
        .unwrap();
    let answered = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    let (ka1, ka2, a, s1, s2) = (
        ka.clone(),
        ka.clone(),
        Rc::clone(&answered),
        Rc::clone(&stop),
        Rc::clone(&stop),
    );
    k.create(
        Session::new(())
            .on("_start", move |ctx: &mut Ctx<'_, ()>| {
                ka1.allocate(ctx, Request::new("http", "127.0.0.1", port, "got"))
                    .unwrap();
                ctx.delay("stop", 0.5, ()).unwrap();
            })
            .on("stop", move |_: &mut Ctx<'_, ()>| s1.set(true))
            .on("got", move |ctx: &mut Ctx<'_, ()>| {
                let r: Response = ctx.take_arg(0).unwrap();
                assert!(r.connection.is_err(), "nothing listens there");
                a.set(a.get() + 1);
                if !s2.get() {
                    ka2.allocate(ctx, Request::new("http", "127.0.0.1", port, "got"))
                        .unwrap();
                }
            }),
    )
    .unwrap();
    k.run().unwrap();
    let failures = ka.stats().counters.connect_failures;
    drop(ka);
    common::ka::finish(k, fds);
    (failures, answered.get())
}

#[test]
fn refused_connects_back_off() {
    let (failures, answered) = hammer(Some((Duration::from_millis(50), Duration::from_secs(2))));
    assert_eq!(
        failures, answered,
        "every request was answered by its refusal"
    );
    // 50 + 100 + 200 ms of pauses fit in the half second, the next one (400 ms) ends it.
    assert!(
        (3..=6).contains(&failures),
        "{failures} refused connects in half a second"
    );
}

#[test]
fn without_the_backoff_refusals_come_back_at_once() {
    let (failures, _) = hammer(None);
    assert!(
        failures > 100,
        "only {failures} refused connects in half a second"
    );
}
