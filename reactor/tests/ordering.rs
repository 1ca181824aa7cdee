//! Queue ordering as POE has it (spec §1.2–1.3): posts and timers share one timeline,
//! equal times are FIFO, past timers jump ahead, and events posted during a batch run in
//! the next timeslice.

use reactor::{Ctx, Error, Kernel, ManualClock, Session};
use std::cell::RefCell;
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

fn rec(log: &Log) -> impl Fn(&mut Ctx<'_, ()>) + 'static {
    let l = Rc::clone(log);
    move |ctx: &mut Ctx<'_, ()>| l.borrow_mut().push(ctx.event().to_owned())
}

#[test]
fn batch_order_matches_poe() {
    // Verified against POE 1.370: h1, past_from_h1, h2, y_from_h1, zero_from_h1.
    let mut k = Kernel::builder().clock(ManualClock::new()).build().unwrap();
    let log: Log = Rc::default();
    let l = Rc::clone(&log);
    k.create(
        Session::new(())
            .on("_start", |ctx: &mut Ctx<'_, ()>| -> Result<(), Error> {
                ctx.yield_("h1", ())?;
                ctx.yield_("h2", ())
            })
            .on("h1", move |ctx: &mut Ctx<'_, ()>| -> Result<(), Error> {
                l.borrow_mut().push("h1".into());
                ctx.yield_("y_from_h1", ())?;
                ctx.delay("zero_from_h1", 0, ())?;
                ctx.delay("past_from_h1", -1, ())
            })
            .on("h2", rec(&log))
            .on("y_from_h1", rec(&log))
            .on("zero_from_h1", rec(&log))
            .on("past_from_h1", rec(&log)),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(
        *log.borrow(),
        vec!["h1", "past_from_h1", "h2", "y_from_h1", "zero_from_h1"]
    );
}

#[test]
fn delay_between_yields_runs_between_them() {
    let mut k = Kernel::builder().clock(ManualClock::new()).build().unwrap();
    let log: Log = Rc::default();
    k.create(
        Session::new(())
            .on("_start", |ctx: &mut Ctx<'_, ()>| -> Result<(), Error> {
                ctx.yield_("a", ())?;
                ctx.delay("b", 0, ())?;
                ctx.yield_("c", ())
            })
            .on("a", rec(&log))
            .on("b", rec(&log))
            .on("c", rec(&log)),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(*log.borrow(), vec!["a", "b", "c"]);
}

#[test]
fn virtual_time_runs_a_long_timer_instantly_and_exactly() {
    let clock = ManualClock::new();
    let mut k = Kernel::builder().clock(clock.clone()).build().unwrap();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let f = Rc::clone(&fired);
    k.create(
        Session::new(())
            .on("_start", |ctx: &mut Ctx<'_, ()>| ctx.delay("tick", 15, ()))
            .on("tick", move |ctx: &mut Ctx<'_, ()>| {
                f.borrow_mut().push(ctx.monotime())
            }),
    )
    .unwrap();
    let started = std::time::Instant::now();
    k.run().unwrap();
    assert_eq!(*fired.borrow(), vec![15_000_000_000]);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn post_event_queues_as_post_does() {
    // A post by resolved id takes its place in the same FIFO as posts by name, carries
    // its argument, and fails for a session that does not exist.
    let mut k = Kernel::builder().clock(ManualClock::new()).build().unwrap();
    let log: Log = Rc::default();
    let l = Rc::clone(&log);
    let ev = reactor::EventId::of("by_id");
    k.create(
        Session::new(())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, ()>| -> Result<(), Error> {
                    let me = ctx.session();
                    ctx.yield_("first", ())?;
                    ctx.kernel().post_event(me, ev, 42u32)?;
                    ctx.yield_("last", ())
                },
            )
            .on("first", rec(&log))
            .on("by_id", move |ctx: &mut Ctx<'_, ()>| {
                let n = *ctx.arg::<u32>(0).unwrap();
                l.borrow_mut().push(format!("{}:{n}", ctx.event()));
            })
            .on("last", rec(&log)),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(*log.borrow(), vec!["first", "by_id:42", "last"]);
    let gone = k
        .create(Session::new(()).on("_start", |_: &mut Ctx<'_, ()>| {}))
        .unwrap();
    k.run().unwrap();
    assert!(matches!(
        k.post_event(gone, ev, ()),
        Err(Error::NoSuchSession)
    ));
}
