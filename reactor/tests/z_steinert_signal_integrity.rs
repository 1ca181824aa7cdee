//! Ports poe-test-loops' `POE/Test/Loops/z_steinert_signal_integrity.pm` (Jonathan
//! Steinert's regression test): a signal posted to the kernel before `run()` reaches two
//! nested sessions, and each watcher receives the proper parameters ("MOO", 99).
//!
//! The kernel runs on a [`ManualClock`]: upstream's 2 s cap and its 250 ms wait "in case of
//! spurious signal" pass in virtual time, so the log can also assert when each event ran.

use reactor::{epoch_secs, Error, Kernel, ManualClock, Session, SessionId};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

fn manual_kernel() -> Kernel {
    Kernel::builder().clock(ManualClock::new()).build().unwrap()
}

/// Shared state of the steinert sessions.
#[derive(Default)]
struct Steinert {
    session_count: Cell<u32>,
    ids: RefCell<Vec<SessionId>>,
    log: RefCell<Vec<String>>,
}

/// Milliseconds of virtual time since the ManualClock's wall origin.
fn ms(k: &Kernel) -> i64 {
    ((epoch_secs(k.time()) - 1_000_000_000.0) * 1000.0).round() as i64
}

fn start_session(k: &mut Kernel, st: &Rc<Steinert>) -> reactor::Result<SessionId> {
    st.session_count.set(st.session_count.get() + 1);
    let (s1, s2, s3, s4) = (st.clone(), st.clone(), st.clone(), st.clone());
    k.create(
        Session::new(())
            .on("_start", move |ctx| -> Result<(), Error> {
                s1.ids.borrow_mut().push(ctx.session());
                if s1.session_count.get() < 2 {
                    start_session(ctx.kernel(), &s1)?;
                }
                ctx.sig("MOO", "got_signal", ())?;
                ctx.delay("timed_out", 2, ())
            })
            .on("got_signal", move |ctx| -> Result<(), Error> {
                let name = ctx.arg::<String>(0)?.clone();
                let n = *ctx.arg::<i32>(1)?;
                let line = format!(
                    "{} got {name} {n} nargs={} at {}",
                    ctx.session(),
                    ctx.args().len(),
                    ms(ctx)
                );
                s2.log.borrow_mut().push(line);
                // Wait just a little bit, in case of spurious signal.
                ctx.delay("timed_out", 0.250, ())
            })
            .on("timed_out", move |ctx| -> Result<(), Error> {
                let line = format!("{} timed_out at {}", ctx.session(), ms(ctx));
                s3.log.borrow_mut().push(line);
                ctx.sig_clear("MOO")
            })
            .on("_stop", move |ctx| {
                let line = format!("{} stop", ctx.session());
                s4.log.borrow_mut().push(line);
            })
            .on("_parent", |_ctx| ())
            .on("_child", |_ctx| ()),
    )
}

/// Upstream tests 1 and 2 (one `ok` per watcher: "signal parameters: ('MOO' eq 'MOO',
/// 99 == 99)"): a signal to the kernel, posted before `run()`, reaches both nested
/// sessions with its parameters intact. Both `ok`s are the two "got MOO 99" lines of the
/// log, which also pins what upstream only implies: exactly two deliveries, none
/// spurious. POE 1.370 log: 2 got MOO 99, 1 got MOO 99, 2 timed_out, 1 timed_out (both
/// 250 ms later), 2 stop, 1 stop.
#[test]
fn steinert_signal_integrity() {
    let mut k = manual_kernel();
    let st = Rc::new(Steinert::default());
    let first = start_session(&mut k, &st).unwrap();
    k.signal(reactor::KERNEL, "MOO", (99i32,)).unwrap();
    k.run().unwrap();
    assert_eq!(st.session_count.get(), 2);
    let ids = st.ids.borrow().clone();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], first);
    let second = ids[1];
    assert_eq!(k.session_count(), 0);
    assert_eq!(
        *st.log.borrow(),
        [
            format!("{second} got MOO 99 nargs=2 at 0"),
            format!("{first} got MOO 99 nargs=2 at 0"),
            format!("{second} timed_out at 250"),
            format!("{first} timed_out at 250"),
            format!("{second} stop"),
            format!("{first} stop"),
        ]
    );
}
