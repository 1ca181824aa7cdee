//! Port of POE `t/20_resources/00_base/caller_state.pm`: `CALLER_STATE` as seen after a
//! `post`, a `yield`, a `call` to the same session, a postback fired inside that call, and
//! a callback.

use reactor::{Callback, Kernel, Postback, Session};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Default)]
struct Heap {
    postback: Option<Postback>,
    callback: Option<Callback>,
}

#[test]
fn caller_state_follows_post_yield_call_postback_callback() {
    // (event, CALLER_STATE it saw)
    let seen: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
    let mut k = Kernel::new().unwrap();

    let record = {
        let seen = seen.clone();
        move |ctx: &reactor::Ctx<'_, Heap>| {
            seen.borrow_mut()
                .push((ctx.event().to_owned(), ctx.caller_state().to_owned()))
        }
    };
    let (r1, r2, r3, r4, r5) = (
        record.clone(),
        record.clone(),
        record.clone(),
        record.clone(),
        record,
    );

    k.create(
        Session::new(Heap::default())
            .on("_start", |ctx| {
                let me = ctx.session();
                ctx.post(me, "check_1", ()).unwrap();
                let pb = ctx.postback("check_4", ());
                let cb = ctx.callback("check_5", ());
                ctx.heap().postback = Some(pb);
                ctx.heap().callback = Some(cb);
            })
            .on("check_1", move |ctx| {
                r1(ctx);
                if ctx.caller_state() != "_start" {
                    // As upstream: give up and let the session end.
                    ctx.heap().postback = None;
                    ctx.heap().callback = None;
                    return;
                }
                ctx.yield_("check_2", ()).unwrap();
            })
            .on("check_2", move |ctx| {
                r2(ctx);
                if ctx.caller_state() != "check_1" {
                    ctx.heap().postback = None;
                    ctx.heap().callback = None;
                    return;
                }
                // check_3 fires the postback; since check_3 is a call() from check_2, the
                // posted check_4 must look as if check_2 sent it.
                let me = ctx.session();
                ctx.call(me, "check_3", ()).unwrap();
            })
            .on("check_3", move |ctx| {
                r3(ctx);
                if ctx.caller_state() != "check_2" {
                    return;
                }
                let pb = ctx.heap().postback.take().expect("postback still held");
                pb.post(());
            })
            .on("check_4", move |ctx| {
                r4(ctx);
                let cb = ctx.heap().callback.take().expect("callback still held");
                cb.call(ctx, ()).unwrap();
            })
            .on("check_5", move |ctx| r5(ctx))
            .on("_stop", |_ctx| {}),
    )
    .unwrap();

    k.run().expect("run ends without an exception");

    let seen = seen.borrow();
    let got: Vec<(&str, &str)> = seen.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("check_1", "_start"),
            ("check_2", "check_1"),
            ("check_3", "check_2"),
            ("check_4", "check_2"),
            ("check_5", "check_4"),
        ]
    );
    assert_eq!(k.session_count(), 0);
}
