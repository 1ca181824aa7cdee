//! Ports poe-test-loops' `POE/Test/Loops/z_kogman_sig_order.pm` (Yuval Kogman's test of
//! signal propagation through the session ancestry): seven scenarios, each upstream
//! `is_deeply` of the event log becoming one `#[test]` with the same name and log.
//!
//! Session identities in the logs are the `SessionId`s returned by `create` (POE compares
//! the session objects). None of these scenarios has sibling sessions, so every order
//! asserted here is fixed by POE's rules (deepest first, `_child` after a child's
//! `_stop`), not by hash order. The kernels run on a [`ManualClock`]: the pending
//! `delay("bar" => ...)` timers fire (or are cancelled by a stop) without waiting.

use reactor::{Ctx, Error, Kernel, ManualClock, Session, SessionId};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

fn manual_kernel() -> Kernel {
    Kernel::builder().clock(ManualClock::new()).build().unwrap()
}

type Start = Box<dyn Fn(&mut Ctx<'_, ()>) -> Result<(), Error>>;

/// A kogman session: `_child`, `_stop`, `_default` and `foo` log themselves; `_start`
/// logs `enter_start`, runs `body`, logs `leave_start`. `_default` logs `ARG0` (the event
/// name) unless `default_logs_state`, as in the first upstream scenario, which logs STATE.
fn kogman(log: &Log, default_logs_state: bool, body: Start) -> Session<()> {
    let (l1, l2, l3, l4, l5) = (
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
    );
    Session::new(())
        .on("_start", move |ctx| -> Result<(), Error> {
            push(&l1, format!("enter_start {}", ctx.session()));
            body(ctx)?;
            push(&l1, format!("leave_start {}", ctx.session()));
            Ok(())
        })
        .on("_child", move |ctx| {
            push(&l2, format!("child {}", ctx.session()))
        })
        .on("_stop", move |ctx| {
            push(&l3, format!("stop {}", ctx.session()))
        })
        .on("_default", move |ctx| -> Result<(), Error> {
            let what = if default_logs_state {
                ctx.event().to_owned()
            } else {
                ctx.arg::<String>(0)?.clone()
            };
            push(&l4, format!("default {what} {}", ctx.session()));
            Ok(())
        })
        .on("foo", move |ctx| {
            push(&l5, format!("foo {}", ctx.session()))
        })
}

fn lines(items: &[(&str, SessionId)]) -> Vec<String> {
    items.iter().map(|(w, s)| format!("{w} {s}")).collect()
}

/// Upstream test 1, "simple signal on one session": a benign signal to oneself is delivered
/// once, after `_start` returns, and stops nobody.
#[test]
fn kogman_simple_signal_on_one_session() {
    let mut k = manual_kernel();
    let log: Log = Rc::default();
    let session = k
        .create(kogman(
            &log,
            true,
            Box::new(|ctx| {
                ctx.sig("foo", "foo", ())?;
                let me = ctx.session();
                ctx.signal(me, "foo", ())
            }),
        ))
        .unwrap();
    k.run().unwrap();
    assert_eq!(
        *log.borrow(),
        lines(&[
            ("enter_start", session),
            ("leave_start", session),
            ("foo", session),
            ("stop", session),
        ]),
        "simple signal on one session"
    );
}

/// Upstream test 2, "signal on parent, oblivious child": the child does not watch `foo`;
/// its timer fires into `_default` afterwards.
#[test]
fn kogman_signal_on_parent_oblivious_child() {
    let mut k = manual_kernel();
    let log: Log = Rc::default();
    let child = Rc::new(Cell::new(SessionId::default()));
    let (lg, c) = (log.clone(), child.clone());
    let session = k
        .create(kogman(
            &log,
            false,
            Box::new(move |ctx| {
                let id = ctx.create(kogman(
                    &lg,
                    false,
                    Box::new(|ctx| ctx.delay("bar", 0.1, ())),
                ))?;
                c.set(id);
                ctx.sig("foo", "foo", ())?;
                let me = ctx.session();
                ctx.signal(me, "foo", ())
            }),
        ))
        .unwrap();
    k.run().unwrap();
    let child = child.get();
    assert_eq!(
        *log.borrow(),
        lines(&[
            ("enter_start", session),
            ("enter_start", child),
            ("leave_start", child),
            ("child", session),
            ("leave_start", session),
            ("foo", session),
            ("default bar", child),
            ("stop", child),
            ("child", session),
            ("stop", session),
        ]),
        "signal on parent, oblivious child"
    );
}

/// Upstream test 3, "signal on child, then parent": both watch `foo`; the child (deeper)
/// gets it first.
#[test]
fn kogman_signal_on_child_then_parent() {
    let mut k = manual_kernel();
    let log: Log = Rc::default();
    let child = Rc::new(Cell::new(SessionId::default()));
    let (lg, c) = (log.clone(), child.clone());
    let session = k
        .create(kogman(
            &log,
            false,
            Box::new(move |ctx| {
                let id = ctx.create(kogman(
                    &lg,
                    false,
                    Box::new(|ctx| {
                        ctx.delay("bar", 0.1, ())?;
                        ctx.sig("foo", "foo", ())
                    }),
                ))?;
                c.set(id);
                ctx.sig("foo", "foo", ())?;
                let me = ctx.session();
                ctx.signal(me, "foo", ())
            }),
        ))
        .unwrap();
    k.run().unwrap();
    let child = child.get();
    assert_eq!(
        *log.borrow(),
        lines(&[
            ("enter_start", session),
            ("enter_start", child),
            ("leave_start", child),
            ("child", session),
            ("leave_start", session),
            ("foo", child),
            ("foo", session),
            ("default bar", child),
            ("stop", child),
            ("child", session),
            ("stop", session),
        ]),
        "signal on child, then parent"
    );
}

/// Upstream test 4, "TERM signal on child, then parent": both watch TERM with an event that
/// has no handler (so `_default` gets it), nobody calls `sig_handled`: both are stopped,
/// and the child's pending timer never fires.
#[test]
fn kogman_term_on_child_then_parent() {
    let mut k = manual_kernel();
    let log: Log = Rc::default();
    let child = Rc::new(Cell::new(SessionId::default()));
    let (lg, c) = (log.clone(), child.clone());
    let session = k
        .create(kogman(
            &log,
            false,
            Box::new(move |ctx| {
                let id = ctx.create(kogman(
                    &lg,
                    false,
                    Box::new(|ctx| {
                        ctx.delay("bar", 1, ())?;
                        ctx.sig("TERM", "TERM", ())
                    }),
                ))?;
                c.set(id);
                ctx.sig("TERM", "TERM", ())?;
                let me = ctx.session();
                ctx.signal(me, "TERM", ())
            }),
        ))
        .unwrap();
    k.run().unwrap();
    let child = child.get();
    assert_eq!(
        *log.borrow(),
        lines(&[
            ("enter_start", session),
            ("enter_start", child),
            ("leave_start", child),
            ("child", session),
            ("leave_start", session),
            ("default TERM", child),
            ("default TERM", session),
            ("stop", child),
            ("child", session),
            ("stop", session),
        ]),
        "TERM signal on child, then parent"
    );
}

/// Upstream test 5, "TERM signal with no handlers on child, then parent": an unwatched
/// terminal signal still stops the whole subtree.
#[test]
fn kogman_term_no_handlers_on_child_then_parent() {
    let mut k = manual_kernel();
    let log: Log = Rc::default();
    let child = Rc::new(Cell::new(SessionId::default()));
    let (lg, c) = (log.clone(), child.clone());
    let session = k
        .create(kogman(
            &log,
            false,
            Box::new(move |ctx| {
                let id = ctx.create(kogman(&lg, false, Box::new(|ctx| ctx.delay("bar", 1, ()))))?;
                c.set(id);
                let me = ctx.session();
                ctx.signal(me, "TERM", ())
            }),
        ))
        .unwrap();
    k.run().unwrap();
    let child = child.get();
    assert_eq!(
        *log.borrow(),
        lines(&[
            ("enter_start", session),
            ("enter_start", child),
            ("leave_start", child),
            ("child", session),
            ("leave_start", session),
            ("stop", child),
            ("child", session),
            ("stop", session),
        ]),
        "TERM signal with no handlers on child, then parent"
    );
}

/// The three-level tree of upstream tests 6 and 7; `child_watches_term` decides whether
/// the middle session watches TERM.
fn kogman_three_levels(child_watches_term: bool) -> (Vec<String>, [SessionId; 3]) {
    let mut k = manual_kernel();
    let log: Log = Rc::default();
    let child = Rc::new(Cell::new(SessionId::default()));
    let grandchild = Rc::new(Cell::new(SessionId::default()));
    let (lg, c, g) = (log.clone(), child.clone(), grandchild.clone());
    let session = k
        .create(kogman(
            &log,
            false,
            Box::new(move |ctx| {
                let (lg2, g2) = (lg.clone(), g.clone());
                let id = ctx.create(kogman(
                    &lg,
                    false,
                    Box::new(move |ctx| {
                        let gid = ctx.create(kogman(
                            &lg2,
                            false,
                            Box::new(|ctx| ctx.delay("bar", 1, ())),
                        ))?;
                        g2.set(gid);
                        if child_watches_term {
                            ctx.sig("TERM", "TERM", ())?;
                        }
                        ctx.delay("bar", 1, ())
                    }),
                ))?;
                c.set(id);
                let me = ctx.session();
                ctx.signal(me, "TERM", ())
            }),
        ))
        .unwrap();
    k.run().unwrap();
    let got = log.borrow().clone();
    (got, [session, child.get(), grandchild.get()])
}

/// Upstream test 6, "TERM signal on granchild, then child (with handler), then parent": the
/// middle session handles TERM in `_default` but does not call `sig_handled`.
#[test]
fn kogman_term_three_levels_child_with_handler() {
    let (got, [session, child, grandchild]) = kogman_three_levels(true);
    assert_eq!(
        got,
        lines(&[
            ("enter_start", session),
            ("enter_start", child),
            ("enter_start", grandchild),
            ("leave_start", grandchild),
            ("child", child),
            ("leave_start", child),
            ("child", session),
            ("leave_start", session),
            ("default TERM", child),
            ("stop", grandchild),
            ("child", child),
            ("stop", child),
            ("child", session),
            ("stop", session),
        ]),
        "TERM signal on granchild, then child (with handler), then parent"
    );
}

/// Upstream test 7, "TERM signal with no handlers on granchild, then child, then parent".
#[test]
fn kogman_term_three_levels_no_handlers() {
    let (got, [session, child, grandchild]) = kogman_three_levels(false);
    assert_eq!(
        got,
        lines(&[
            ("enter_start", session),
            ("enter_start", child),
            ("enter_start", grandchild),
            ("leave_start", grandchild),
            ("child", child),
            ("leave_start", child),
            ("child", session),
            ("leave_start", session),
            ("stop", grandchild),
            ("child", child),
            ("stop", child),
            ("child", session),
            ("stop", session),
        ]),
        "TERM signal with no handlers on granchild, then child, then parent"
    );
}
