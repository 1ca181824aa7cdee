//! Port of poe-test-loops `lib/POE/Test/Loops/ses_nfa.pm`: sessions as state machines
//! (POE::NFA).
//!
//! - A push button that toggles a light: a machine whose `initial` state is inline, whose
//!   `off` state is package states and whose `on` state is object states; an operator
//!   session pushes the button ten times and checks after each push that the light went
//!   on or off as expected (entry events delivered in the new state, with the pusher
//!   passed on as the entry argument).
//! - A machine that stops itself (`stop`) in its first entry event.
//! - A Fibonacci server: a request arrives in `listen`, which `call_state`s into
//!   `calculate`; `calculate` computes with yields and `return_state`s the answer, which
//!   comes back to `listen` as the return event. Its client checks ten answers.
//! - A machine that adds a handler at run time with `state` (the way a wheel does; it
//!   answers in every state), sets and resets an option, uses a callback (handled in the
//!   state it is called in) and a postback (handled after the transition posted before
//!   it), and checks `current_state` and `runstate` against the handler's own
//!   `STATE` and `RUNSTATE`.
//!
//! All 39 upstream assertions are kept, recorded by the handlers and checked after `run`
//! (an assertion failing inside a handler would become a `DIE` signal, not a test
//! failure). What differs: `$_[OBJECT]`. Upstream checks that an inline handler gets no
//! object (a closure here has no object parameter, so the check holds by construction and
//! is recorded as such), that a package state gets the package name (checked), and that an
//! object state gets a `Switch` (its type is `&Switch`; the test checks it is the object
//! the machine was built with). The pre-1.004 branch of upstream (inline states instead
//! of object and package states, 28 assertions) is for old POEs and left out.

use reactor::nfa::{Nfa, NfaCtx, NfaOptions};
use reactor::{Ctx, HandlerError, Kernel, Session, SessionId};
use std::cell::RefCell;
use std::rc::Rc;

type R = Result<(), HandlerError>;

/// The checks the handlers made: (name, passed), in order.
type Checks = Rc<RefCell<Vec<(String, bool)>>>;

fn check(checks: &Checks, passed: bool, name: impl Into<String>) {
    checks.borrow_mut().push((name.into(), passed));
}

// ---------------------------------------------------------------------------------------
// The switch: a plain NFA that simulates a push button toggling a light.

/// The object of the `on` state's object states.
struct Switch {
    checks: Checks,
}

/// The switch's runstate: the checks, which the package functions need too.
struct SwitchState {
    checks: Checks,
}

type Sw<'a> = NfaCtx<'a, SwitchState>;

mod switch_package {
    use super::*;

    pub fn off_enter(package: &'static str, m: &mut Sw<'_>) -> R {
        let checks = Rc::clone(&m.runstate().checks);
        check(&checks, package == "Switch", "$_[OBJECT] is a package");
        let pusher = *m.arg::<SessionId>(0)?;
        m.post(pusher, "visibility", (0u32,))?;
        Ok(())
    }

    pub fn off_pushed(_package: &'static str, m: &mut Sw<'_>) -> R {
        let sender = m.sender();
        m.goto_state("on", "enter", (sender,))?;
        Ok(())
    }

    pub fn default(_package: &'static str, _m: &mut Sw<'_>) -> R {
        Ok(())
    }
}

impl Switch {
    fn enter(&self, m: &mut Sw<'_>) -> R {
        let is_ours = Rc::ptr_eq(&self.checks, &m.runstate().checks);
        check(&self.checks, is_ours, "$_[OBJECT] isa 'Switch'");
        let pusher = *m.arg::<SessionId>(0)?;
        m.post(pusher, "visibility", (1u32,))?;
        Ok(())
    }

    fn pushed(&self, m: &mut Sw<'_>) -> R {
        let sender = m.sender();
        m.goto_state("off", "enter", (sender,))?;
        Ok(())
    }

    fn default(&self, _m: &mut Sw<'_>) -> R {
        Ok(())
    }
}

fn spawn_switch(kernel: &mut Kernel, checks: &Checks) {
    let c = Rc::clone(checks);
    let switch = Rc::new(Switch {
        checks: Rc::clone(checks),
    });
    let machine = Nfa::new(SwitchState {
        checks: Rc::clone(checks),
    })
    // The initial state, and its start event: make the switch visible by name, and start
    // in the 'off' state.
    .on("initial", "start", move |m: &mut Sw<'_>| -> R {
        // An inline handler is a closure: it has no OBJECT.
        check(&c, true, "no object");
        m.alias_set("switch")?;
        m.goto_state("off", None, ())?;
        Ok(())
    })
    .on("initial", "_default", |_: &mut Sw<'_>| {})
    .package_states(
        "off",
        "Switch",
        &[
            ("enter", switch_package::off_enter),
            ("pushed", switch_package::off_pushed),
            ("_default", switch_package::default),
        ],
    )
    // The light is on. When this state is entered, post a visibility event at whatever
    // had caused the light to go on. When it's pushed, have the light go off.
    .object_states(
        "on",
        switch,
        &[
            ("enter", Switch::enter),
            ("pushed", Switch::pushed),
            ("_default", Switch::default),
        ],
    )
    .spawn(kernel)
    .expect("spawn the switch");
    machine
        .goto_state(kernel, "initial", "start", ())
        .expect("enter the initial state");
}

// ---------------------------------------------------------------------------------------
// A machine that uses stop() (POE::NFA once lagged behind the kernel's session freeing).

fn spawn_stopper(kernel: &mut Kernel) {
    Nfa::new(())
        .on("initial", "start", |m: &mut NfaCtx<'_, ()>| m.stop())
        .spawn(kernel)
        .expect("spawn the stopper")
        .goto_state(kernel, "initial", "start", ())
        .expect("enter the initial state");
}

// ---------------------------------------------------------------------------------------
// The operator: a plain session that pushes the light's button over and over, watching it
// go on and off.

fn operator(checks: &Checks) -> Session<u32> {
    let c = Rc::clone(checks);
    Session::new(0u32)
        .on("_start", |ctx: &mut Ctx<'_, u32>| -> R {
            ctx.alias_set("operator")?;
            ctx.yield_("push", ())?;
            *ctx.heap() = 0;
            Ok(())
        })
        .on("push", |ctx: &mut Ctx<'_, u32>| -> R {
            *ctx.heap() += 1;
            ctx.post("switch", "pushed", ())?;
            Ok(())
        })
        .on("visibility", move |ctx: &mut Ctx<'_, u32>| -> R {
            let visible = *ctx.arg::<u32>(0)?;
            let pushes = *ctx.heap();
            check(
                &c,
                pushes & 1 == visible,
                "light state matches expected state",
            );
            if pushes < 10 {
                ctx.yield_("push", ())?;
            }
            Ok(())
        })
        .on("_stop", |_: &mut Ctx<'_, u32>| {})
}

// ---------------------------------------------------------------------------------------
// The Fibonacci server: post it a request with the F number you want, and it calculates
// and returns it.

#[derive(Default)]
struct FibState {
    client: Option<SessionId>,
    f: Vec<u64>,
    n: u64,
    target: u64,
}

type Fib<'a> = NfaCtx<'a, FibState>;

fn spawn_fib_server(kernel: &mut Kernel) {
    Nfa::new(FibState::default())
        // Set up an alias so that clients can find us.
        .on("initial", "start", |m: &mut Fib<'_>| -> R {
            m.alias_set("server")?;
            m.goto_state("listen", None, ())?;
            Ok(())
        })
        .on("initial", "_default", |_: &mut Fib<'_>| {})
        // Listen for a request, which says which Fibonacci number to return.
        .on("listen", "request", |m: &mut Fib<'_>| -> R {
            let sender = m.sender();
            m.runstate().client = Some(sender);
            let n = *m.arg::<u64>(0)?;
            // return event, new state, new state's entry event, F-number to return
            m.call_state("answer", "calculate", "start", (n,))?;
            Ok(())
        })
        .on("listen", "answer", |m: &mut Fib<'_>| -> R {
            let client = m.runstate().client.take().ok_or("no client")?;
            let f = *m.arg::<u64>(0)?;
            m.post(client, "fib", (f,))?;
            Ok(())
        })
        .on("listen", "_default", |_: &mut Fib<'_>| {})
        .on("calculate", "start", |m: &mut Fib<'_>| -> R {
            let n = *m.arg::<u64>(0)?;
            // Upstream goes on after these returns; so does the port.
            if n == 0 {
                m.return_state((0u64,))?;
            }
            if n == 1 {
                m.return_state((1u64,))?;
            }
            let rs = m.runstate();
            rs.f = vec![0, 1];
            rs.n = 1;
            rs.target = n;
            m.yield_("next", ())?;
            Ok(())
        })
        .on("calculate", "next", |m: &mut Fib<'_>| -> R {
            let rs = m.runstate();
            rs.n += 1;
            let next = rs.f[0] + rs.f[1];
            rs.f.push(next);
            rs.f.remove(0);
            if rs.n == rs.target {
                let f = rs.f[1];
                m.return_state((f,))?;
            } else {
                m.yield_("next", ())?;
            }
            Ok(())
        })
        .on("calculate", "_default", |_: &mut Fib<'_>| {})
        .spawn(kernel)
        .expect("spawn the Fibonacci server")
        .goto_state(kernel, "initial", "start", ())
        .expect("enter the initial state");
}

/// The Fibonacci client: asks for F numbers and checks the answers.
fn fib_client(checks: &Checks) -> Session<Vec<(u64, u64)>> {
    let c = Rc::clone(checks);
    let tests = vec![
        (0, 0),
        (1, 1),
        (2, 1),
        (3, 2),
        (4, 3),
        (5, 5),
        (17, 1597),
        (23, 28657),
        (29, 514229),
        (43, 433494437),
    ];
    Session::new(tests)
        .on("_start", |ctx: &mut Ctx<'_, Vec<(u64, u64)>>| -> R {
            // An alias keeps the client alive until everything is done.
            ctx.alias_set("client")?;
            ctx.yield_("next_test", ())?;
            Ok(())
        })
        .on("next_test", |ctx: &mut Ctx<'_, Vec<(u64, u64)>>| -> R {
            let n = ctx.heap()[0].0;
            ctx.post("server", "request", (n,))?;
            Ok(())
        })
        .on("fib", move |ctx: &mut Ctx<'_, Vec<(u64, u64)>>| -> R {
            let got = *ctx.arg::<u64>(0)?;
            let (n, want) = ctx.heap().remove(0);
            check(
                &c,
                got == want,
                format!("fib({n}) returned {got} (wanted {want})"),
            );
            if !ctx.heap().is_empty() {
                ctx.yield_("next_test", ())?;
            }
            Ok(())
        })
        .on("_stop", |_: &mut Ctx<'_, Vec<(u64, u64)>>| {})
}

// ---------------------------------------------------------------------------------------
// Dynamic states: a handler added with `state`, as attaching a wheel does; options;
// callbacks and postbacks.

#[derive(Clone, Debug, Default, PartialEq)]
struct Dynamic {
    sent: bool,
}

type Dy<'a> = NfaCtx<'a, Dynamic>;

fn spawn_dynamic(kernel: &mut Kernel, checks: &Checks) {
    let (c1, c2, c3, c4, c5, c6) = (
        Rc::clone(checks),
        Rc::clone(checks),
        Rc::clone(checks),
        Rc::clone(checks),
        Rc::clone(checks),
        Rc::clone(checks),
    );
    Nfa::new(Dynamic::default())
        .on("initial", "start", move |m: &mut Dy<'_>| -> R {
            m.alias_set("dynamicstates")?;
            m.goto_state("listen", "send", ())?;
            m.state("test_wheel_event", |m: &mut Dy<'_>| {
                m.yield_("happened", ())
            })?;

            // Options.
            let orig = m.set_options(NfaOptions {
                default: true,
                ..m.options()
            });
            let rv = m.options();
            check(&c1, rv.default, "set default option successfully");
            let rv = m.set_options(orig);
            check(&c1, rv.default, "reset default option successfully");
            let rv = m.options();
            check(
                &c1,
                rv.default == orig.default,
                "reset default option successfully",
            );

            // Callbacks and postbacks.
            let cb = m.callback("callback", ());
            cb.call(m, ())?;
            m.postback("postback", ()).post(());
            Ok(())
        })
        .on("initial", "_default", |_: &mut Dy<'_>| {})
        .on("initial", "callback", move |_: &mut Dy<'_>| {
            check(&c2, true, "POE::NFA::callback");
        })
        .on("initial", "postback", move |_: &mut Dy<'_>| {
            check(&c3, false, "POE::NFA::postback");
        })
        .on("listen", "send", |m: &mut Dy<'_>| -> R {
            m.runstate().sent = true;
            m.yield_("test_wheel_event", ())?;
            Ok(())
        })
        .on("listen", "happened", move |m: &mut Dy<'_>| {
            check(&c4, true, "wheel event happened");
            let by_machine = m.machine().current_state().map(str::to_owned);
            let state = m.current_state().to_owned();
            check(
                &c4,
                by_machine.as_deref() == Some(state.as_str()),
                "current_state returns the same as $_[STATE]",
            );
            let machine = m.machine().clone();
            let by_machine = machine.runstate(m).map(|r| (r.clone(), r as *const _));
            let own = m.runstate();
            let own = (own.clone(), own as *const _);
            check(
                &c4,
                by_machine == Some(own),
                "runstate returns the same as $_[RUNSTATE]",
            );
        })
        .on("listen", "callback", move |_: &mut Dy<'_>| {
            check(&c5, false, "POE::NFA::callback");
        })
        .on("listen", "postback", move |_: &mut Dy<'_>| {
            check(&c6, true, "POE::NFA::postback");
        })
        .spawn(kernel)
        .expect("spawn the dynamic machine")
        .goto_state(kernel, "initial", "start", ())
        .expect("enter the initial state");
}

// ---------------------------------------------------------------------------------------

#[test]
fn ses_nfa() {
    let mut kernel = Kernel::new().expect("kernel");
    let checks: Checks = Rc::default();
    spawn_switch(&mut kernel, &checks);
    spawn_stopper(&mut kernel);
    kernel.create(operator(&checks)).expect("operator");
    spawn_fib_server(&mut kernel);
    kernel.create(fib_client(&checks)).expect("client");
    spawn_dynamic(&mut kernel, &checks);

    kernel.run().expect("run");

    let checks = checks.borrow();
    let failed: Vec<&String> = checks.iter().filter(|c| !c.1).map(|c| &c.0).collect();
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert_eq!(checks.len(), 39, "upstream plans 39 tests: {checks:?}");
    let count = |name: &str| checks.iter().filter(|c| c.0 == name).count();
    assert_eq!(count("no object"), 1);
    assert_eq!(count("$_[OBJECT] is a package"), 5);
    assert_eq!(count("$_[OBJECT] isa 'Switch'"), 5);
    assert_eq!(count("light state matches expected state"), 10);
    assert_eq!(
        checks.iter().filter(|c| c.0.starts_with("fib(")).count(),
        10
    );
    assert_eq!(kernel.session_count(), 0);
}
