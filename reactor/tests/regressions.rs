//! Small regression tests. Ports:
//! - poe-test-loops `lib/POE/Test/Loops/k_run_returns.pm`: `run()` with no sessions
//!   returns right away,
//! - POE `t/90_regression/meh-startstop-return.t`: `_start`/`_stop` return values reach the
//!   parent's `_child` as ARG2 (object states),
//! - POE `t/90_regression/rt14444-arg1.t`: `_default`'s ARG1 holds the original arguments,
//!   and survives being passed on by reference and by copy,
//! - POE `t/90_regression/averell-callback-ret.t`: a callback returns its handler's value.

use reactor::{Args, Callback, Ctx, HandlerError, Kernel, Session, SessionId, Value};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

/// A list shared between handlers and the test body.
type Shared<T> = Rc<RefCell<Vec<T>>>;

// ------------------------------------------------------------------ k_run_returns.pm

#[test]
fn run_returns_right_away_without_sessions() {
    // Upstream arms a 10 s SIGALRM around run(); here the kernel runs on its own thread and
    // the test waits at most 10 s for it to finish.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut k = Kernel::new().expect("kernel");
        let r = k.run().map_err(|e| e.to_string());
        let _ = tx.send(r);
    });
    let r = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("Kernel::run() never returned");
    assert_eq!(r, Ok(()), "Kernel::run() returned right away");
}

// ------------------------------------------------------------------ meh-startstop-return.t

struct Fubar;

impl Fubar {
    fn start(&self, _ctx: &mut Ctx<'_, ()>) -> Value {
        Value::new("_start".to_owned())
    }

    fn stop(&self, _ctx: &mut Ctx<'_, ()>) -> Value {
        Value::new("_stop".to_owned())
    }

    fn create_session(self: Rc<Self>, k: &mut Kernel) -> reactor::Result<SessionId> {
        k.create(Session::new(()).object_states(
            self,
            &[
                (
                    "_start",
                    Fubar::start as fn(&Fubar, &mut Ctx<'_, ()>) -> Value,
                ),
                ("_stop", Fubar::stop),
            ],
        ))
    }
}

#[test]
fn start_and_stop_return_values_reach_child() {
    let results: Shared<(String, Option<String>)> = Rc::default();
    let mut k = Kernel::new().unwrap();
    let r = results.clone();
    k.create(
        Session::new(())
            .on("_start", |ctx| -> Result<(), HandlerError> {
                Rc::new(Fubar).create_session(ctx)?;
                Ok(())
            })
            .on("_child", move |ctx| -> Result<(), HandlerError> {
                let op = ctx.arg::<String>(0)?.clone();
                let ret = ctx.arg::<Value>(2)?.get::<String>().cloned();
                r.borrow_mut().push((op, ret));
                Ok(())
            })
            .on("_stop", |_ctx| Value::none()),
    )
    .unwrap();

    k.run().expect("run ends without an exception");

    assert_eq!(
        *results.borrow(),
        vec![
            ("create".to_owned(), Some("_start".to_owned())),
            ("lose".to_owned(), Some("_stop".to_owned())),
        ]
    );
}

// ------------------------------------------------------------------ rt14444-arg1.t

const TEST_STATE: &str = "some_random_state";
const TEST_ARGS: [&str; 3] = ["some", "random", "args"];

fn strings(a: &Args) -> Vec<String> {
    (0..a.len())
        .map(|i| {
            a.get::<String>(i)
                .cloned()
                .unwrap_or_else(|e| e.to_string())
        })
        .collect()
}

#[test]
fn default_arg1_holds_original_args() {
    // (check name, args it saw)
    let checks: Shared<(&'static str, Vec<String>)> = Rc::default();
    let mut k = Kernel::new().unwrap();
    let (c_default, c_ref, c_copy) = (checks.clone(), checks.clone(), checks.clone());
    k.create(
        Session::new(())
            .on("_start", |ctx| -> Result<(), HandlerError> {
                let [a, b, c] = TEST_ARGS.map(str::to_owned);
                ctx.yield_(TEST_STATE, (a, b, c))?;
                Ok(())
            })
            .on("_default", move |ctx| -> Result<(), HandlerError> {
                let orig_state = ctx.arg::<String>(0)?.clone();
                let orig_args = ctx.arg::<Args>(1)?.clone();
                if orig_state == TEST_STATE {
                    c_default
                        .borrow_mut()
                        .push(("test args passed okay", strings(&orig_args)));
                }
                // By reference: the very Args value. By copy: a fresh list of new values.
                ctx.yield_("check_ref", (orig_args.clone(),))?;
                let mut copy = Args::new();
                for s in strings(&orig_args) {
                    copy.push(s);
                }
                ctx.yield_("check_copy", (copy,))?;
                Ok(())
            })
            .on("check_ref", move |ctx| -> Result<(), HandlerError> {
                let a = ctx.arg::<Args>(0)?;
                c_ref
                    .borrow_mut()
                    .push(("args preserved in pass by reference", strings(a)));
                Ok(())
            })
            .on("check_copy", move |ctx| -> Result<(), HandlerError> {
                let a = ctx.arg::<Args>(0)?;
                c_copy
                    .borrow_mut()
                    .push(("args preserved in pass by copy", strings(a)));
                Ok(())
            }),
    )
    .unwrap();

    k.run().expect("run ends without an exception");

    let want: Vec<String> = TEST_ARGS.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        *checks.borrow(),
        vec![
            ("test args passed okay", want.clone()),
            ("args preserved in pass by reference", want.clone()),
            ("args preserved in pass by copy", want),
        ]
    );
}

// ------------------------------------------------------------------ averell-callback-ret.t

#[test]
fn callback_returns_handler_value() {
    let got: Rc<RefCell<Vec<Option<i32>>>> = Rc::default();
    let mut k = Kernel::new().unwrap();
    let g = got.clone();
    k.create(
        Session::new(None::<Callback>)
            .on("_start", |ctx| -> Result<(), HandlerError> {
                let cb = ctx.callback("callback_event", ());
                *ctx.heap() = Some(cb);
                ctx.yield_("try_callback", ())?;
                Ok(())
            })
            .on("try_callback", move |ctx| -> Result<(), HandlerError> {
                let cb = ctx.heap().take().ok_or("callback missing")?;
                let retval = cb.call(ctx, ())?;
                g.borrow_mut().push(retval.get::<i32>().copied());
                Ok(())
            })
            .on("callback_event", |_ctx| Value::new(42i32))
            .on("_stop", |_ctx| {}),
    )
    .unwrap();

    k.run().expect("run ends without an exception");

    assert_eq!(
        *got.borrow(),
        vec![Some(42)],
        "Callback returns correct value"
    );
    assert_eq!(k.session_count(), 0);
}
