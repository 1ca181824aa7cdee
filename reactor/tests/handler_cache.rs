//! The kernel keeps the handler it found last for the next event of the same name to the
//! same handler table; these check that what runs is always the handler the session has
//! at that moment, and that a session's handlers go when it does.

use reactor::{Ctx, Error, Kernel, Session};
use std::cell::RefCell;
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

#[test]
fn a_handler_replaced_between_two_events_of_the_same_name_is_the_one_that_runs() {
    let log: Log = Rc::default();
    let l = Rc::clone(&log);
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(())
            .on("_start", |ctx: &mut Ctx<'_, ()>| ctx.yield_("ping", ()))
            .on("ping", move |ctx: &mut Ctx<'_, ()>| -> Result<(), Error> {
                l.borrow_mut().push("old".to_owned());
                let l2 = Rc::clone(&l);
                ctx.state("ping", move |ctx: &mut Ctx<'_, ()>| -> Result<(), Error> {
                    l2.borrow_mut().push("new".to_owned());
                    ctx.remove_state("ping")?;
                    ctx.yield_("ping", ())
                })?;
                ctx.yield_("ping", ())
            })
            .on("_default", {
                let l = Rc::clone(&log);
                move |ctx: &mut Ctx<'_, ()>| {
                    let event = ctx.arg::<String>(0).cloned().unwrap_or_default();
                    if !event.starts_with('_') {
                        l.borrow_mut().push(format!("default {event}"));
                    }
                }
            }),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(*log.borrow(), ["old", "new", "default ping"]);
}

#[test]
fn a_session_that_ends_lets_go_of_its_handlers_while_the_kernel_lives() {
    let guard = Rc::new(());
    let g = Rc::clone(&guard);
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(())
            .on("_start", |ctx: &mut Ctx<'_, ()>| ctx.yield_("last", ()))
            .on("last", move |_: &mut Ctx<'_, ()>| {
                let _held = &g;
            }),
    )
    .unwrap();
    k.run().unwrap();
    // The handler ran last and the session is gone: nothing keeps the closure.
    assert_eq!(Rc::strong_count(&guard), 1);
    drop(k);
}
