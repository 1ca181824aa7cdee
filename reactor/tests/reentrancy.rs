//! Re-entrant dispatch: the hard spots of mapping POE's `call` onto Rust ownership.
//!
//! Each case is one that a take-the-heap-out design gets wrong: a call to the running
//! session, A calling B calling back into A, creating and stopping sessions inside a call,
//! and `stop()` from an I/O callback.

use reactor::{Ctx, Error, HandlerError, Kernel, ManualClock, Session, SessionId, Value, KERNEL};
use std::cell::RefCell;
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

fn kernel() -> Kernel {
    Kernel::builder().clock(ManualClock::new()).build().unwrap()
}

#[test]
fn call_to_self_sees_and_changes_the_same_heap() {
    let mut k = kernel();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = Rc::clone(&seen);
    k.create(
        Session::new(10u32)
            .on("_start", |ctx: &mut Ctx<'_, u32>| -> Result<(), Error> {
                *ctx.heap() += 1;
                let me = ctx.session();
                let v = ctx.call(me, "double", ())?;
                assert_eq!(v.get::<u32>(), Some(&22));
                // The callee's change is visible after the call returns.
                assert_eq!(*ctx.heap(), 22);
                Ok(())
            })
            .on("double", move |ctx: &mut Ctx<'_, u32>| {
                // SENDER is the session itself; STATE is the called event.
                assert_eq!(ctx.sender(), ctx.session());
                s.borrow_mut()
                    .push((ctx.event().to_owned(), ctx.caller_state().to_owned()));
                *ctx.heap() *= 2;
                Value::new(*ctx.heap())
            }),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(
        *seen.borrow(),
        vec![("double".to_owned(), "_start".to_owned())]
    );
}

#[test]
fn a_calls_b_calls_a() {
    let mut k = kernel();
    let log: Log = Rc::default();
    let l = Rc::clone(&log);
    let b = k
        .create(
            Session::new(())
                .on("_start", |ctx: &mut Ctx<'_, ()>| ctx.alias_set("b"))
                .on(
                    "ping",
                    move |ctx: &mut Ctx<'_, ()>| -> Result<Value, Error> {
                        l.borrow_mut().push("b ping".into());
                        let a = ctx.sender();
                        let v = ctx.call(a, "pong", (1u32,))?;
                        l.borrow_mut()
                            .push(format!("b got {}", v.get::<u32>().unwrap()));
                        ctx.alias_remove("b")?;
                        Ok(Value::new(*v.get::<u32>().unwrap() + 1))
                    },
                ),
        )
        .unwrap();
    let l = Rc::clone(&log);
    let l2 = Rc::clone(&log);
    k.create(
        Session::new(100u32)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, u32>| -> Result<(), Error> {
                    *ctx.heap() += 1;
                    let v = ctx.call(b, "ping", ())?;
                    // A's heap was changed by the nested pong while A's own handler ran.
                    l.borrow_mut().push(format!(
                        "a got {} heap {}",
                        v.get::<u32>().unwrap(),
                        ctx.heap()
                    ));
                    Ok(())
                },
            )
            .on("pong", move |ctx: &mut Ctx<'_, u32>| {
                *ctx.heap() += *ctx.arg::<u32>(0).unwrap();
                l2.borrow_mut().push(format!("a pong heap {}", ctx.heap()));
                Value::new(*ctx.heap())
            }),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(
        *log.borrow(),
        vec![
            "b ping",
            "a pong heap 102",
            "b got 102",
            "a got 103 heap 102"
        ]
    );
}

#[test]
fn session_created_inside_a_call_is_a_child_of_the_callee() {
    let mut k = kernel();
    let log: Log = Rc::default();
    let l = Rc::clone(&log);
    let l2 = Rc::clone(&log);
    let server = k
        .create(
            Session::new(())
                .on("_start", |ctx: &mut Ctx<'_, ()>| ctx.alias_set("server"))
                .on(
                    "spawn",
                    move |ctx: &mut Ctx<'_, ()>| -> Result<Value, Error> {
                        let l = Rc::clone(&l);
                        let child = ctx.create(Session::new(()).on(
                            "_start",
                            move |ctx: &mut Ctx<'_, ()>| {
                                l.borrow_mut()
                                    .push(format!("child start sender={}", ctx.sender()));
                                Value::new(7u32)
                            },
                        ))?;
                        ctx.alias_remove("server")?;
                        Ok(Value::new(child))
                    },
                )
                .on("_child", move |ctx: &mut Ctx<'_, ()>| {
                    let what = ctx.arg::<String>(0).unwrap().clone();
                    let ret = ctx
                        .arg::<Value>(2)
                        .ok()
                        .and_then(|v| v.get::<u32>().copied());
                    l2.borrow_mut()
                        .push(format!("server _child {what} {ret:?}"));
                }),
        )
        .unwrap();
    k.create(Session::new(()).on(
        "_start",
        move |ctx: &mut Ctx<'_, ()>| -> Result<(), Error> {
            let child = ctx.call(server, "spawn", ())?.take::<SessionId>().unwrap();
            assert_eq!(ctx.parent_of(child)?, server);
            Ok(())
        },
    ))
    .unwrap();
    k.run().unwrap();
    assert_eq!(
        *log.borrow(),
        vec![
            format!("child start sender={server}"),
            "server _child create Some(7)".to_owned(),
            "server _child lose None".to_owned(),
        ]
    );
}

#[test]
fn session_stopped_inside_a_call_keeps_its_heap_until_the_handler_returns() {
    let mut k = kernel();
    let log: Log = Rc::default();
    let l = Rc::clone(&log);
    let l2 = Rc::clone(&log);
    k.create(
        Session::new(String::from("alive"))
            .on("_start", |ctx: &mut Ctx<'_, String>| ctx.yield_("go", ()))
            .on(
                "go",
                move |ctx: &mut Ctx<'_, String>| -> Result<(), Error> {
                    // Stops every session, this one included, while this handler runs.
                    ctx.stop();
                    ctx.heap().push_str(" after stop");
                    l.borrow_mut().push(ctx.heap().clone());
                    // Nothing can be sent from a stopped session.
                    assert!(matches!(ctx.yield_("never", ()), Ok(())));
                    let me = ctx.session();
                    assert!(matches!(
                        ctx.post(me, "never", ()),
                        Err(Error::NoSuchSession)
                    ));
                    Ok(())
                },
            )
            .on("_stop", move |ctx: &mut Ctx<'_, String>| {
                l2.borrow_mut().push(format!("_stop with {}", ctx.heap()));
            })
            .on("never", |_ctx: &mut Ctx<'_, String>| -> () {
                panic!("dispatched after stop")
            }),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(*log.borrow(), vec!["_stop with alive", "alive after stop"]);
    assert_eq!(k.session_count(), 0);
}

#[test]
fn call_to_self_failure_comes_back_to_the_caller_without_die() {
    let mut k = kernel();
    let log: Log = Rc::default();
    let l = Rc::clone(&log);
    let l2 = Rc::clone(&log);
    k.create(
        Session::new(())
            .on("_start", move |ctx: &mut Ctx<'_, ()>| {
                ctx.sig("DIE", "die", ()).unwrap();
                let me = ctx.session();
                match ctx.call(me, "fail", ()) {
                    Err(Error::Died(e)) => l.borrow_mut().push(format!("caller got: {e}")),
                    other => l.borrow_mut().push(format!("unexpected {other:?}")),
                }
            })
            .on("fail", |_ctx: &mut Ctx<'_, ()>| {
                Err::<(), _>(HandlerError::new("boom"))
            })
            .on("die", move |_ctx: &mut Ctx<'_, ()>| {
                l2.borrow_mut().push("DIE".into())
            }),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(*log.borrow(), vec!["caller got: boom"]);
}

#[test]
fn call_to_another_session_failure_raises_die_there() {
    let mut k = kernel();
    let log: Log = Rc::default();
    let l = Rc::clone(&log);
    let l2 = Rc::clone(&log);
    let b = k
        .create(
            Session::new(())
                .on("_start", |ctx: &mut Ctx<'_, ()>| {
                    ctx.alias_set("b").unwrap();
                    ctx.sig("DIE", "die", ()).unwrap();
                })
                .on("fail", |_ctx: &mut Ctx<'_, ()>| -> Value {
                    panic!("kaboom")
                })
                .on("die", move |ctx: &mut Ctx<'_, ()>| {
                    let info = ctx.arg::<reactor::DieInfo>(1).unwrap();
                    l2.borrow_mut()
                        .push(format!("b DIE {} in {}", info.error_str, info.event));
                    ctx.sig_handled();
                    ctx.alias_remove("b").unwrap();
                }),
        )
        .unwrap();
    k.create(Session::new(()).on("_start", move |ctx: &mut Ctx<'_, ()>| {
        let r = ctx.call(b, "fail", ());
        l.borrow_mut().push(format!("a: {}", r.unwrap_err()));
    }))
    .unwrap();
    k.run().unwrap();
    assert_eq!(
        *log.borrow(),
        vec!["a: handler died: kaboom", "b DIE kaboom in fail"]
    );
}

#[test]
fn posts_to_the_kernel_and_to_dead_sessions() {
    let mut k = kernel();
    assert!(k.post(KERNEL, "anything", ()).is_ok());
    assert_eq!(
        k.post(SessionId::from_raw(99), "x", ())
            .unwrap_err()
            .errno(),
        3
    );
    assert_eq!(k.call("nobody", "x", ()).unwrap_err().errno(), 3);
    assert!(matches!(k.yield_("x", ()), Err(Error::NoActiveSession)));
    assert!(matches!(
        k.create(Session::new(()).on("x", |_c: &mut Ctx<'_, ()>| ())),
        Err(Error::NoStartState)
    ));
    k.run().unwrap();
}
