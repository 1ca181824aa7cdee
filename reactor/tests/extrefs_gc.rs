//! Port of POE `t/20_resources/00_base/extrefs_gc.pm` (Yuval Kogman's case): dropping an
//! extra reference count to zero during `_start` must not collect the session before
//! `_start` returns, and releasing another session's last extra reference from `_stop`
//! reaps that session before the kernel goes idle.

use reactor::{Kernel, Session};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

#[test]
fn extref_released_in_start_and_stop() {
    let trace: Rc<RefCell<Vec<String>>> = Rc::default();
    let sigidle = Rc::new(Cell::new(0u32));
    let mut k = Kernel::new().unwrap();

    // The bystander is kept alive solely by its extra reference count. It must be stopped
    // when the "refcount" session releases it, i.e. before SIGIDLE.
    let t = trace.clone();
    let idle = sigidle.clone();
    let bystander = k
        .create(
            Session::new(())
                .on("_start", |ctx| {
                    let me = ctx.session();
                    ctx.refcount_increment(me, "just hold me").unwrap();
                })
                .on("_stop", move |_ctx| {
                    t.borrow_mut()
                        .push(format!("bystander _stop (sigidle={})", idle.get()));
                }),
        )
        .unwrap();

    // Watches SIGIDLE; its alias keeps it alive until then.
    let t_idle = trace.clone();
    let t_stop = trace.clone();
    let idle = sigidle.clone();
    k.create(
        Session::new(())
            .on("_start", |ctx| {
                ctx.sig("IDLE", "got_sigidle", ()).unwrap();
                ctx.alias_set("stayin_alive").unwrap();
            })
            .on("got_sigidle", move |_ctx| {
                idle.set(idle.get() + 1);
                t_idle.borrow_mut().push("got sigidle".into());
            })
            .on("_stop", move |_ctx| {
                t_stop.borrow_mut().push("sigidle session _stop".into())
            }),
    )
    .unwrap();

    // Tries to collect itself early by taking and dropping an extra reference in _start.
    // If it were collected, do_something would never run.
    let t_do = trace.clone();
    let t_stop = trace.clone();
    let refcount = k
        .create(
            Session::new(())
                .on("_start", |ctx| {
                    let me = ctx.session();
                    assert_eq!(ctx.refcount_increment(me, "just hold me").unwrap(), 1);
                    assert_eq!(ctx.refcount_decrement(me, "just hold me").unwrap(), 0);
                    ctx.yield_("do_something", ()).unwrap();
                })
                .on("do_something", move |_ctx| {
                    t_do.borrow_mut().push("refcount do_something".into())
                })
                .on("_stop", move |ctx| {
                    t_stop.borrow_mut().push("refcount _stop".into());
                    ctx.refcount_decrement(bystander, "just hold me").unwrap();
                }),
        )
        .unwrap();
    assert!(
        k.id_to_session(refcount.get()).is_ok(),
        "alive after _start"
    );

    k.run().expect("run ends without an exception");

    assert_eq!(
        *trace.borrow(),
        vec![
            "refcount do_something",
            "refcount _stop",
            "bystander _stop (sigidle=0)",
            "got sigidle",
            "sigidle session _stop",
        ]
    );
    assert_eq!(sigidle.get(), 1);
    assert_eq!(k.session_count(), 0);
}
