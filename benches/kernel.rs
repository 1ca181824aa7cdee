//! Kernel benchmark: post+dispatch per event, and timers set / cancelled in random order /
//! fired, in ns per operation, side by side with POE 1.370 (Perl) in the same run.
//!
//! Run: `cargo bench --bench kernel` (needs `perl` and `libpoe-perl`).
//! Sizes: `EVENTS` (default 1,000,000), `TIMERS` (default 1,000,000) for our kernel;
//! `POE_EVENTS` (default 200,000) and `POE_TIMERS` (default `TIMERS`) for POE, whose costs
//! per operation grow with the number of pending timers, so compare at equal `TIMERS`.
//! `POE=0` leaves POE out; words after `--` pick operations by name
//! (`cargo bench --bench kernel -- timer_cancel`). `session_churn` (ours only; `SESSIONS`,
//! default 100,000) creates that many sessions under one parent, each ending after one
//! timer: ns per session, which stays flat as the number of siblings grows.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reactor::{AlarmId, Ctx, Kernel, ManualClock, Session};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// ns per event for `n` yields of a session to itself, dispatched by `run()`.
fn post_dispatch(n: usize) -> f64 {
    let mut k = Kernel::new().unwrap();
    let elapsed = Rc::new(Cell::new(Duration::ZERO));
    let e = Rc::clone(&elapsed);
    k.create(
        Session::new((0usize, Instant::now()))
            .on("_start", |ctx: &mut Ctx<'_, (usize, Instant)>| {
                ctx.heap().1 = Instant::now();
                ctx.yield_("tick", ())
            })
            .on("tick", move |ctx: &mut Ctx<'_, (usize, Instant)>| {
                let h = ctx.heap();
                h.0 += 1;
                if h.0 < n {
                    let _ = ctx.yield_("tick", ());
                } else {
                    e.set(h.1.elapsed());
                }
            }),
    )
    .unwrap();
    k.run().unwrap();
    elapsed.get().as_nanos() as f64 / n as f64
}

/// (set, cancel) ns per operation for `n` timers at random times, cancelled in random order.
fn timers_set_cancel(n: usize) -> (f64, f64) {
    let mut k = Kernel::builder().clock(ManualClock::new()).build().unwrap();
    let out = Rc::new(Cell::new((0.0, 0.0)));
    let o = Rc::clone(&out);
    k.create(
        Session::new(())
            .on("_start", move |ctx: &mut Ctx<'_, ()>| {
                let mut rng = StdRng::seed_from_u64(42);
                let delays: Vec<f64> = (0..n).map(|_| 1000.0 + rng.gen::<f64>() * 1000.0).collect();
                let mut ids: Vec<AlarmId> = Vec::with_capacity(n);
                let t0 = Instant::now();
                for &d in &delays {
                    ids.push(ctx.delay_set("never", d, ()).unwrap());
                }
                let set = t0.elapsed();
                ids.shuffle(&mut rng);
                let t0 = Instant::now();
                for id in ids {
                    ctx.alarm_remove(id).unwrap();
                }
                let cancel = t0.elapsed();
                o.set((
                    set.as_nanos() as f64 / n as f64,
                    cancel.as_nanos() as f64 / n as f64,
                ));
            })
            .on("never", |_: &mut Ctx<'_, ()>| -> () {
                panic!("cancelled timer fired")
            }),
    )
    .unwrap();
    k.run().unwrap();
    out.get()
}

/// ns per timer for `n` timers already due at random past times, dispatched by `run()`.
fn timers_fire(n: usize) -> f64 {
    let mut k = Kernel::new().unwrap();
    let fired = Rc::new(Cell::new(0usize));
    let start = Rc::new(Cell::new(Instant::now()));
    let (f, s) = (Rc::clone(&fired), Rc::clone(&start));
    k.create(
        Session::new(())
            .on("_start", move |ctx: &mut Ctx<'_, ()>| {
                let mut rng = StdRng::seed_from_u64(7);
                let past = SystemTime::now() - Duration::from_secs(2000);
                for _ in 0..n {
                    let when = past + Duration::from_secs_f64(rng.gen::<f64>() * 1000.0);
                    ctx.alarm_add("ring", when, ()).unwrap();
                }
                s.set(Instant::now());
            })
            .on("ring", move |_: &mut Ctx<'_, ()>| f.set(f.get() + 1)),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(fired.get(), n);
    start.get().elapsed().as_nanos() as f64 / n as f64
}

/// ns per session for `n` sessions created under one parent that each end after one
/// timer: what a server's connections cost to come and go while many others stay.
fn session_churn(n: usize) -> f64 {
    let mut k = Kernel::new().unwrap();
    let start = Instant::now();
    k.create(Session::new(()).on("_start", move |ctx: &mut Ctx<'_, ()>| {
        for _ in 0..n {
            ctx.create(
                Session::new(())
                    .on("_start", |ctx: &mut Ctx<'_, ()>| {
                        let _ = ctx.delay("bye", 0.001, ());
                    })
                    .on("bye", |_: &mut Ctx<'_, ()>| {}),
            )
            .unwrap();
        }
    }))
    .unwrap();
    k.run().unwrap();
    start.elapsed().as_nanos() as f64 / n as f64
}

fn best<T: PartialOrd + Copy>(runs: usize, mut f: impl FnMut() -> T) -> T {
    let mut b = f();
    for _ in 1..runs {
        let v = f();
        if v < b {
            b = v;
        }
    }
    b
}

fn poe(events: usize, timers: usize) -> Option<BTreeMap<String, f64>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/perl/kernel_bench.pl");
    let out = Command::new("perl")
        .arg(script)
        .arg(events.to_string())
        .arg(timers.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "POE benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.to_owned(), it.next()?.parse().ok()?))
            })
            .collect(),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run tiny then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let events = if quick {
        1000
    } else {
        env_usize("EVENTS", 1_000_000)
    };
    let timers = if quick {
        1000
    } else {
        env_usize("TIMERS", 1_000_000)
    };
    let poe_events = if quick {
        100
    } else {
        env_usize("POE_EVENTS", 200_000)
    };
    let poe_timers = if quick {
        100
    } else {
        env_usize("POE_TIMERS", timers)
    };
    let runs = if quick { 1 } else { env_usize("RUNS", 5) };
    let picks: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let picked = |name: &str| picks.is_empty() || picks.iter().any(|p| name.contains(p.as_str()));

    let pd = if picked("post_dispatch") {
        best(runs, || post_dispatch(events))
    } else {
        f64::NAN
    };
    let (set, cancel) = if picked("timer_set") || picked("timer_cancel") {
        // The best of each column, not of the pair.
        (0..runs)
            .map(|_| timers_set_cancel(timers))
            .fold((f64::INFINITY, f64::INFINITY), |(s, c), (s2, c2)| {
                (s.min(s2), c.min(c2))
            })
    } else {
        (f64::NAN, f64::NAN)
    };
    let churn = if picked("session_churn") {
        best(runs, || {
            session_churn(env_usize("SESSIONS", 100_000).min(if quick { 1000 } else { usize::MAX }))
        })
    } else {
        f64::NAN
    };
    let fire = if picked("timer_fire") {
        best(runs, || timers_fire(timers))
    } else {
        f64::NAN
    };
    let p = if std::env::var("POE").is_ok_and(|v| v == "0") {
        BTreeMap::new()
    } else {
        poe(poe_events, poe_timers).unwrap_or_default()
    };

    println!("kernel benchmark: our kernel at {events} events / {timers} timers; POE 1.370 at {poe_events} events / {poe_timers} timers");
    println!("| operation | reactor ns/op | POE ns/op | POE / reactor |");
    println!("|---|---:|---:|---:|");
    for (name, ours) in [
        ("post_dispatch", pd),
        ("timer_set", set),
        ("timer_cancel", cancel),
        ("timer_fire", fire),
        ("session_churn", churn),
    ] {
        if !picked(name) {
            continue;
        }
        match p.get(name) {
            Some(&theirs) => println!(
                "| {name} | {ours:.1} | {theirs:.1} | {:.0}x |",
                theirs / ours
            ),
            None => println!("| {name} | {ours:.1} | n/a | n/a |"),
        }
    }
}
