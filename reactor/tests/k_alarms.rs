//! Ports poe-test-loops' `lib/POE/Test/Loops/k_alarms.pm` (name-based alarms and delays,
//! queue ordering of 600+ alarms, the id-based alarm API: `alarm_remove`, `delay_set`,
//! `alarm_remove_all`, `alarm_adjust` and the resulting dispatch order) and POE's
//! `t/90_regression/leolo-alarm-adjust.t` (`alarm_adjust`/`delay_adjust` shorten timers).
//!
//! Every kernel runs on a [`ManualClock`], so times are exact and nothing sleeps.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reactor::{epoch_secs, AlarmId, Ctx, HandlerError, Kernel, ManualClock, Session};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

type R = Result<(), HandlerError>;
type Shared<T> = Rc<RefCell<T>>;

/// Upstream's `WAIT`.
const WAIT: f64 = 0.5;

fn manual_kernel() -> (Kernel, ManualClock) {
    let clock = ManualClock::new();
    let k = Kernel::builder()
        .clock(clock.clone())
        .catch_exceptions(false)
        .build()
        .expect("kernel");
    (k, clock)
}

fn wait() -> Duration {
    Duration::from_secs_f64(WAIT)
}

// ------------------------------------------------------------------ paths one to ten

#[derive(Default)]
struct PathHeap {
    test: HashMap<&'static str, u32>,
    start_time: f64,
}

/// `test_path_one` and friends: +1 for the expected id, +1000 for any other.
fn single(path: &'static str, want: f64) -> impl Fn(&mut Ctx<'_, PathHeap>) -> R {
    move |ctx| {
        let id = *ctx.arg::<f64>(0)?;
        let add = if id == want { 1 } else { 1000 };
        *ctx.heap().test.entry(path).or_default() += add;
        Ok(())
    }
}

/// `test_path_three` and friends: +1 for `first` seen first, +10 for `second` seen after
/// it, +1000 for anything else.
fn pair(path: &'static str, first: f64, second: f64) -> impl Fn(&mut Ctx<'_, PathHeap>) -> R {
    move |ctx| {
        let id = *ctx.arg::<f64>(0)?;
        let count = ctx.heap().test.get(path).copied().unwrap_or(0);
        let add = if id == first && count == 0 {
            1
        } else if id == second && count == 1 {
            10
        } else {
            1000
        };
        *ctx.heap().test.entry(path).or_default() += add;
        Ok(())
    }
}

/// `test_path_five` and `test_path_ten`: any ring counts.
fn counter(path: &'static str) -> impl Fn(&mut Ctx<'_, PathHeap>) -> R {
    move |ctx| {
        *ctx.heap().test.entry(path).or_default() += 1;
        Ok(())
    }
}

fn paths_start(ctx: &mut Ctx<'_, PathHeap>) -> R {
    let t = |ctx: &mut Ctx<'_, PathHeap>| ctx.time() + wait();

    // Path #1: single alarm; make sure it rings.
    ctx.heap().test.insert("path_one", 0);
    let at = t(ctx);
    ctx.alarm("path_one", at, (1.1f64,))?;

    // Path #2: two alarms; make sure only the second one rings.
    ctx.heap().test.insert("path_two", 0);
    let at = t(ctx);
    ctx.alarm("path_two", at, (2.1f64,))?;
    let at = t(ctx);
    ctx.alarm("path_two", at, (2.2f64,))?;

    // Path #3: two alarms; make sure they both ring in order.
    ctx.heap().test.insert("path_three", 0);
    let at = t(ctx);
    ctx.alarm_add("path_three", at, (3.1f64,))?;
    let at = t(ctx);
    ctx.alarm_add("path_three", at, (3.2f64,))?;

    // Path #4: interleaved alarm and alarm_add; only the last two should ring, in order.
    ctx.heap().test.insert("path_four", 0);
    let at = t(ctx);
    ctx.alarm("path_four", at, (4.1f64,))?;
    let at = t(ctx);
    ctx.alarm_add("path_four", at, (4.2f64,))?;
    let at = t(ctx);
    ctx.alarm("path_four", at, (4.3f64,))?;
    let at = t(ctx);
    ctx.alarm_add("path_four", at, (4.4f64,))?;

    // Path #5: an alarm that is squelched; nothing should ring.
    ctx.heap().test.insert("path_five", 1);
    let at = t(ctx);
    ctx.alarm("path_five", at, (5.1f64,))?;
    ctx.alarm_clear("path_five")?; // POE: alarm('path_five')

    // Path #6: single delay; make sure it rings.
    ctx.heap().test.insert("path_six", 0);
    ctx.delay("path_six", WAIT, (6.1f64,))?;

    // Path #7: two delays; make sure only the second one rings.
    ctx.heap().test.insert("path_seven", 0);
    ctx.delay("path_seven", WAIT, (7.1f64,))?;
    ctx.delay("path_seven", WAIT, (7.2f64,))?;

    // Path #8: two delays; make sure they both ring in order.
    ctx.heap().test.insert("path_eight", 0);
    ctx.delay_add("path_eight", WAIT, (8.1f64,))?;
    ctx.delay_add("path_eight", WAIT, (8.2f64,))?;

    // Path #9: interleaved delay and delay_add; only the last two should ring, in order.
    // (Upstream really calls alarm/alarm_add with WAIT as an *epoch*, i.e. in the past.)
    ctx.heap().test.insert("path_nine", 0);
    ctx.alarm("path_nine", WAIT, (9.1f64,))?;
    ctx.alarm_add("path_nine", WAIT, (9.2f64,))?;
    ctx.alarm("path_nine", WAIT, (9.3f64,))?;
    ctx.alarm_add("path_nine", WAIT, (9.4f64,))?;

    // Path #10: a delay that is squelched; nothing should ring.
    ctx.heap().test.insert("path_ten", 1);
    ctx.delay("path_ten", WAIT, (10.1f64,))?;
    ctx.alarm_clear("path_ten")?; // POE: alarm('path_ten')

    // (Path #11 is `alarms_are_enqueued_in_time_order` below.)

    let now = epoch_secs(ctx.time());
    ctx.heap().start_time = now;
    Ok(())
}

#[test]
fn name_based_alarms_and_delays_ring_as_set() {
    let (mut k, _clock) = manual_kernel();
    let done: Shared<Option<(HashMap<&'static str, u32>, f64)>> = Rc::default();
    let d = Rc::clone(&done);
    k.create(
        Session::new(PathHeap::default())
            .on("_start", paths_start)
            .on("_stop", move |ctx| {
                let elapsed = epoch_secs(ctx.time()) - ctx.heap().start_time;
                let test = ctx.heap().test.clone();
                *d.borrow_mut() = Some((test, elapsed));
            })
            .on("path_one", single("path_one", 1.1))
            .on("path_two", single("path_two", 2.2))
            .on("path_three", pair("path_three", 3.1, 3.2))
            .on("path_four", pair("path_four", 4.3, 4.4))
            .on("path_five", counter("path_five"))
            .on("path_six", single("path_six", 6.1))
            .on("path_seven", single("path_seven", 7.2))
            .on("path_eight", pair("path_eight", 8.1, 8.2))
            .on("path_nine", pair("path_nine", 9.3, 9.4))
            .on("path_ten", counter("path_ten")),
    )
    .unwrap();
    k.run().unwrap();

    let (test, elapsed) = done.borrow_mut().take().expect("_stop ran");
    assert_eq!(test["path_one"], 1, "single alarm rang ok");
    assert_eq!(test["path_two"], 1, "second alarm superseded first");
    assert_eq!(test["path_three"], 11, "two alarms rang in proper order");
    assert_eq!(test["path_four"], 11, "mixed alarm APIs rang properly");
    assert_eq!(test["path_five"], 1, "stopped alarm should not ring");
    assert_eq!(test["path_six"], 1, "single delay rang ok");
    assert_eq!(test["path_seven"], 1, "second delay superseded first");
    assert_eq!(test["path_eight"], 11, "two delays rang in proper order");
    assert_eq!(test["path_nine"], 11, "mixed delay APIs rang properly");
    assert_eq!(test["path_ten"], 1, "stopped delay should not ring");
    // "tests ran reasonably fast" (<= 15 s); on the virtual clock the timers also must not
    // have rung before WAIT.
    assert!(elapsed <= 15.0, "tests ran reasonably fast ({elapsed})");
    assert!(elapsed >= WAIT, "timers waited WAIT ({elapsed})");
}

// ------------------------------------------------------------------ path eleven

/// Path #11. Upstream reads the queue with a private `queue_peek_alarms` (the session's
/// alarm names in queue order) and then clears the test alarms one by one; here
/// `alarm_remove_all`, which returns the removed alarms in queue order, does both. The
/// test runs in its own session so that `alarm_remove_all` sees only path #11's alarms.
#[test]
fn alarms_are_enqueued_in_time_order() {
    let (mut k, _clock) = manual_kernel();
    let got: Shared<Option<Vec<String>>> = Rc::default();
    let g = Rc::clone(&got);
    k.create(Session::new(()).on("_start", move |ctx| -> R {
        // To test duplicates on a small queue.
        let id_25_3 = ctx.alarm_set("path_eleven_025_3", 25.0, ())?;
        let _id_25_2 = ctx.alarm_set("path_eleven_025_2", 25.0, ())?;
        let id_25_1 = ctx.alarm_set("path_eleven_025_1", 25.0, ())?;

        // To test micro-updates on a small queue.
        ctx.alarm_adjust(id_25_1, -0.01)?; // negative
        ctx.alarm_adjust(id_25_3, 0.01)?; // positive

        // Fill the alarm queue to engage the "big queue" binary insert.
        let mut rng = StdRng::seed_from_u64(0x6b5f_616c);
        for count in 0..600 {
            // Event doesn't like setting alarms for 0 time.
            let time = rng.gen_range(1..300u32);
            ctx.alarm(&format!("path_eleven_fill_{count}"), f64::from(time), ())?;
        }

        // Now to really test the insertion code.
        for (name, at) in [
            ("path_eleven_100", 100.0),
            ("path_eleven_200", 200.0),
            ("path_eleven_300", 300.0),
            ("path_eleven_050", 50.0),
            ("path_eleven_150", 150.0),
            ("path_eleven_250", 250.0),
            ("path_eleven_350", 350.0),
            ("path_eleven_075", 75.0),
            ("path_eleven_175", 175.0),
            ("path_eleven_275", 275.0),
            ("path_eleven_325", 325.0),
            ("path_eleven_225", 225.0),
            ("path_eleven_125", 125.0),
        ] {
            ctx.alarm(name, at, ())?;
        }

        // To test duplicates.
        let id_206 = ctx.alarm_set("path_eleven_206", 205.0, ())?;
        let _id_205 = ctx.alarm_set("path_eleven_205", 205.0, ())?;
        let id_204 = ctx.alarm_set("path_eleven_204", 205.0, ())?;

        // To test micro-updates on a big queue.
        ctx.alarm_adjust(id_204, -0.01)?; // negative
        ctx.alarm_adjust(id_206, 0.01)?; // positive

        // Now clear the filler states.
        for count in 0..600 {
            ctx.alarm_clear(&format!("path_eleven_fill_{count}"))?;
        }

        // Now acquire the test alarms (grep /^path_eleven_[0-9_]+$/), clearing them.
        let names: Vec<String> = ctx
            .alarm_remove_all()?
            .into_iter()
            .map(|a| String::from(a.name))
            .filter(|n| {
                n.strip_prefix("path_eleven_").is_some_and(|rest| {
                    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '_')
                })
            })
            .collect();
        *g.borrow_mut() = Some(names);
        Ok(())
    }))
    .unwrap();
    k.run().unwrap();

    let want = [
        "path_eleven_025_1",
        "path_eleven_025_2",
        "path_eleven_025_3",
        "path_eleven_050",
        "path_eleven_075",
        "path_eleven_100",
        "path_eleven_125",
        "path_eleven_150",
        "path_eleven_175",
        "path_eleven_200",
        "path_eleven_204",
        "path_eleven_205",
        "path_eleven_206",
        "path_eleven_225",
        "path_eleven_250",
        "path_eleven_275",
        "path_eleven_300",
        "path_eleven_325",
        "path_eleven_350",
    ];
    assert_eq!(
        got.borrow_mut().take().expect("_start ran"),
        want,
        "alarms rang in order"
    );
}

// ------------------------------------------------------------------ id-based API

#[derive(Default)]
struct IdHeap {
    test_13: Option<AlarmId>,
    tests: Vec<i32>,
}

#[derive(Default)]
struct IdLog {
    /// Failed expectations recorded inside handlers (upstream's `fail(...)`).
    failures: Vec<String>,
    /// Values of the checks made inside handlers, in order.
    checks: Vec<(&'static str, f64)>,
    /// ARG0 of test_13.
    test_13_arg: Option<i32>,
    /// The heap's `tests` at `_stop`.
    tests: Option<Vec<i32>>,
}

fn id_start(ctx: &mut Ctx<'_, IdHeap>, log: &Shared<IdLog>) -> R {
    let id = ctx.alarm_set("test_13", 1.0, (13i32,))?;
    ctx.heap().test_13 = Some(id);

    let test_14 = ctx.alarm_set("test_14", 1.0, (14i32,))?;
    let removed = ctx.alarm_remove(test_14)?;
    assert_eq!(removed.name, "test_14", "alarm 14 remove: name is correct");
    assert_eq!(
        epoch_secs(ctx.wall_at(removed.due)),
        1.0,
        "alarm 14 remove: time is correct"
    );
    assert_eq!(removed.args.len(), 1, "alarm 14 remove: data is correct");
    assert_eq!(
        *removed.args.get::<i32>(0)?,
        14,
        "alarm 14 remove: data is correct"
    );

    // Have time stand still so we can test against it.
    let now = ctx.time();
    let test_15 = ctx.delay_set("test_15", WAIT, (15i32,))?;
    let removed = ctx.alarm_remove(test_15)?;
    assert_eq!(removed.name, "test_15", "alarm 15 remove: name is correct");
    let (t, n) = (epoch_secs(ctx.wall_at(removed.due)), epoch_secs(now));
    assert!(
        t <= n + 3.0 && t >= n,
        "alarm 15 remove: time is correct ({t} vs {n})"
    );
    // On the virtual clock it is exactly now + WAIT.
    assert_eq!(
        ctx.wall_at(removed.due),
        now + wait(),
        "alarm 15 remove: exact time"
    );
    assert_eq!(removed.args.len(), 1, "alarm 15 remove: data is correct");
    assert_eq!(
        *removed.args.get::<i32>(0)?,
        15,
        "alarm 15 remove: data is correct"
    );
    log.borrow_mut().checks.push(("start", 0.0));
    Ok(())
}

fn id_test_13(ctx: &mut Ctx<'_, IdHeap>, log: &Shared<IdLog>) -> R {
    log.borrow_mut().test_13_arg = Some(*ctx.arg::<i32>(0)?);
    let check = |what: &'static str, t: SystemTime| {
        log.borrow_mut().checks.push((what, epoch_secs(t)));
    };

    // Set a couple alarms, then clear them all.
    ctx.delay("test_16", WAIT, ())?;
    ctx.delay("test_17", WAIT, ())?;
    ctx.alarm_remove_all()?;

    // Test alarm adjusting on little queues.
    let alarm_id = ctx.alarm_set("test_18", 50.0, (18i32,))?;

    // One alarm.
    check(
        "alarm 18: adjusted backward",
        ctx.alarm_adjust(alarm_id, -1)?,
    );
    check("alarm 18: adjusted forward", ctx.alarm_adjust(alarm_id, 1)?);

    // Two alarms.
    let alarm_id = ctx.alarm_set("test_19", 52.0, (19i32,))?;
    check(
        "alarm 19: adjusted backward",
        ctx.alarm_adjust(alarm_id, -4)?,
    );
    check("alarm 19: adjusted forward", ctx.alarm_adjust(alarm_id, 4)?);

    // Three alarms.
    let alarm_id = ctx.alarm_set("test_20", 49.0, (20i32,))?;
    check(
        "alarm 20: adjusted forward once",
        ctx.alarm_adjust(alarm_id, 2)?,
    );
    check(
        "alarm 20: adjusted forward twice",
        ctx.alarm_adjust(alarm_id, 2)?,
    );
    check(
        "alarm 20: adjusted backward",
        ctx.alarm_adjust(alarm_id, -2)?,
    );

    // Test alarm adjusting on big queues.
    let mut alarm_filler = Vec::new();
    for i in 1..=100 {
        alarm_filler.push(ctx.alarm_set("filler", f64::from(i), ())?);
    }

    // Moving inside the alarm range.
    let alarm_id = ctx.alarm_set("test_21", 50.0, (21i32,))?;
    check(
        "alarm 21: adjusted backward",
        ctx.alarm_adjust(alarm_id, -10)?,
    );
    check(
        "alarm 21: adjusted forward",
        ctx.alarm_adjust(alarm_id, 20)?,
    );

    // Moving outside (to the beginning) of the alarm range.
    check(
        "alarm 21: adjusted first",
        ctx.alarm_adjust(alarm_id, -100)?,
    );

    // Moving outside (to the end) of the alarm range.
    let alarm_id = ctx.alarm_set("test_22", 50.0, (22i32,))?;
    check("alarm 22: adjusted last", ctx.alarm_adjust(alarm_id, 100)?);

    // Remove the filler events.
    for id in alarm_filler {
        ctx.alarm_remove(id)?;
    }
    Ok(())
}

#[test]
fn id_based_alarm_api() {
    let (mut k, _clock) = manual_kernel();
    let log: Shared<IdLog> = Rc::default();
    let (l1, l2, l3, l4) = (
        Rc::clone(&log),
        Rc::clone(&log),
        Rc::clone(&log),
        Rc::clone(&log),
    );
    let mut session = Session::new(IdHeap::default())
        .on("_start", move |ctx| id_start(ctx, &l1))
        // This one is dispatched.
        .on("test_13", move |ctx| id_test_13(ctx, &l2))
        // These should be dispatched in a certain order.
        .on("_default", |ctx| -> R {
            let name = ctx.arg::<String>(0)?.clone();
            // Save the test's argument on the heap (if ARG0 =~ /test_\d+/).
            if name
                .strip_prefix("test_")
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
            {
                let first = *ctx.arg::<reactor::Args>(1)?.get::<i32>(0)?;
                ctx.heap().tests.push(first);
            }
            // Handle the signal.
            ctx.sig_handled();
            Ok(())
        })
        .on("_stop", move |ctx| {
            l3.borrow_mut().tests = Some(ctx.heap().tests.clone());
        });
    // These have been removed. They should not be dispatched.
    for name in ["test_14", "test_15", "test_16", "test_17"] {
        let l = Rc::clone(&l4);
        session = session.on(name, move |_ctx| {
            l.borrow_mut()
                .failures
                .push(format!("alarm {name} should have been removed"));
        });
    }
    k.create(session).unwrap();
    k.run().unwrap();

    let log = log.borrow();
    assert_eq!(log.failures, Vec::<String>::new());
    assert_eq!(log.test_13_arg, Some(13), "alarm 13: received proper data");
    let want: Vec<(&str, f64)> = vec![
        ("start", 0.0),
        ("alarm 18: adjusted backward", 49.0),
        ("alarm 18: adjusted forward", 50.0),
        ("alarm 19: adjusted backward", 48.0),
        ("alarm 19: adjusted forward", 52.0),
        ("alarm 20: adjusted forward once", 51.0),
        ("alarm 20: adjusted forward twice", 53.0),
        ("alarm 20: adjusted backward", 51.0),
        ("alarm 21: adjusted backward", 40.0),
        ("alarm 21: adjusted forward", 60.0),
        ("alarm 21: adjusted first", -40.0),
        ("alarm 22: adjusted last", 150.0),
    ];
    assert_eq!(log.checks, want);
    let tests = log.tests.clone().expect("_stop ran");
    assert_eq!(tests.len(), 5, "the right number of alarms were dispatched");
    assert_eq!(
        tests,
        [21, 18, 20, 19, 22],
        "alarms 21, 18, 20, 19, 22 were dispatched in that order"
    );
}

// ------------------------------------------------------------------ leolo-alarm-adjust.t

struct LeoloHeap {
    started: SystemTime,
    alarm: Option<AlarmId>,
    delay: Option<AlarmId>,
}

/// POE's `t/90_regression/leolo-alarm-adjust.t`: a 10-second alarm and a 10-second delay,
/// shortened with `alarm_adjust(-9)` and `delay_adjust(1)`, both ring after about a
/// second. Events go through a POE::Test::Sequence-style generic session: `_start`, then
/// everything (including `_stop`) through `_default`.
#[test]
fn leolo_alarm_adjust_shortens_both_timers() {
    let (mut k, _clock) = manual_kernel();
    let seq: Shared<Vec<String>> = Rc::default();
    let took: Shared<Vec<(String, f64)>> = Rc::default();
    let (s1, s2, t2) = (Rc::clone(&seq), Rc::clone(&seq), Rc::clone(&took));
    k.create(
        Session::new(LeoloHeap {
            started: SystemTime::UNIX_EPOCH,
            alarm: None,
            delay: None,
        })
        .on("_start", move |ctx| -> R {
            s1.borrow_mut().push("_start".into());
            let now = ctx.time();
            ctx.heap().started = now;
            let a = ctx.alarm_set("the_alarm", now + Duration::from_secs(10), ())?;
            ctx.heap().alarm = Some(a);
            let d = ctx.delay_set("the_delay", 10, ())?;
            ctx.heap().delay = Some(d);
            ctx.yield_("adjust_them", ())?;
            Ok(())
        })
        .on("_default", move |ctx| -> R {
            let ev = ctx.arg::<String>(0)?.clone();
            s2.borrow_mut().push(ev.clone());
            match ev.as_str() {
                "adjust_them" => {
                    let (d, a) = (ctx.heap().delay.unwrap(), ctx.heap().alarm.unwrap());
                    ctx.delay_adjust(d, 1)?; // 1 second from now
                    ctx.alarm_adjust(a, -9)?; // 10-9 seconds
                }
                "the_alarm" | "the_delay" => {
                    let started = ctx.heap().started;
                    let secs = ctx.time().duration_since(started)?.as_secs_f64();
                    t2.borrow_mut().push((ev, secs));
                }
                _ => {}
            }
            Ok(())
        }),
    )
    .unwrap();
    k.run().unwrap();

    assert_eq!(
        *seq.borrow(),
        ["_start", "adjust_them", "the_alarm", "the_delay", "_stop"]
    );
    let took = took.borrow();
    assert_eq!(took.len(), 2);
    for (ev, secs) in took.iter() {
        assert!(*secs < 2.0, "short {ev} ({secs})");
        // Not before the adjusted time either (virtual clock: exact).
        assert!(*secs >= 1.0, "{ev} waited its second ({secs})");
    }
}
