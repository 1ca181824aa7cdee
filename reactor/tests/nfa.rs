//! State machines (`reactor::nfa`) beyond the upstream test: the typed errors where
//! POE::NFA croaks or dies, what a machine is never given, handlers added at run time, the
//! `immediate` option, calls into a machine, and the kernel API from a machine's handlers
//! (timers, and the wheel-driven login dialogue of POE::NFA's synopsis).

mod common;

use reactor::nfa::{Machine, Nfa, NfaCtx, NfaError, NfaOptions};
use reactor::wheel::{ReadWrite, WheelError};
use reactor::{
    Ctx, DieInfo, Error, HandlerError, Kernel, ManualClock, Session, Value, WheelHandle, WheelId,
};
use std::cell::RefCell;
use std::rc::Rc;

type R = Result<(), HandlerError>;
type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, line: impl Into<String>) {
    log.borrow_mut().push(line.into());
}

/// A machine whose runstate is the log, with states `a` (`start`, `go`) and `b` (`enter`).
fn two_states() -> Nfa<Log> {
    Nfa::new(Log::default())
        .on("a", "start", |m: &mut NfaCtx<'_, Log>| {
            let log = Rc::clone(m.runstate());
            push(&log, "a start");
        })
        .on("a", "go", |m: &mut NfaCtx<'_, Log>| -> R {
            m.goto_state("b", "enter", ())?;
            Ok(())
        })
        .on("b", "enter", |m: &mut NfaCtx<'_, Log>| {
            let log = Rc::clone(m.runstate());
            push(&log, "b enter");
        })
}

// ----------------------------------------------------------------------- spawn errors

#[test]
fn a_machine_needs_a_state_and_may_not_use_the_machine_s_own_events() {
    let mut k = Kernel::new().unwrap();
    assert!(matches!(
        Nfa::new(()).spawn(&mut k),
        Err(NfaError::NoStates)
    ));
    let e = Nfa::new(())
        .on("a", "poe_nfa_goto_state", |_: &mut NfaCtx<'_, ()>| {})
        .spawn(&mut k)
        .unwrap_err();
    assert!(matches!(&e, NfaError::ReservedEvent(ev) if ev == "poe_nfa_goto_state"));
    assert_eq!(k.session_count(), 0);
    // A state with no handlers at all is a state.
    let m = Nfa::new(()).state("idle").spawn(&mut k).unwrap();
    m.goto_state(&mut k, "idle", None, ()).unwrap();
    assert_eq!(m.current_state(), Some("idle"));
}

// ----------------------------------------------------------------- transition errors

#[test]
fn goto_state_checks_the_state_and_the_entry_event_at_once() {
    let mut k = Kernel::new().unwrap();
    let m = two_states().spawn(&mut k).unwrap();
    let queued = k.event_count();
    let e = m.goto_state(&mut k, "nowhere", None, ()).unwrap_err();
    assert!(matches!(&e, NfaError::NoSuchState { state, .. } if state == "nowhere"));
    assert_eq!(
        e.to_string(),
        format!(
            "machine {} tried to enter nonexistent state 'nowhere'",
            m.id()
        )
    );
    // The entry event must be one the new state names itself (`_default` does not count).
    let e = m.goto_state(&mut k, "a", "enter", ()).unwrap_err();
    assert!(matches!(&e, NfaError::NoSuchEntryEvent { state, event, .. }
        if state == "a" && event == "enter"));
    assert_eq!(m.current_state(), None);
    assert_eq!(
        k.event_count(),
        queued,
        "nothing is queued for a refused transition"
    );
    let e = m
        .call_state(&mut k, "back", "b", "nothing", ())
        .unwrap_err();
    assert!(matches!(e, NfaError::NoSuchEntryEvent { .. }));

    m.goto_state(&mut k, "a", "start", ()).unwrap();
    assert_eq!(m.current_state(), Some("a"));
    k.run().unwrap();
    // A machine that has stopped can no longer be driven.
    assert!(matches!(
        m.goto_state(&mut k, "b", None, ()),
        Err(NfaError::Kernel(Error::NoSuchSession))
    ));
    assert!(m.runstate(&mut k).is_none());
}

/// A handler that propagates a refused transition with `?` fails, as POE's machine dies
/// (one event later there): the failure is a `DIE` signal, here caught.
#[test]
fn a_refused_transition_propagated_from_a_handler_is_a_die() {
    let mut k = Kernel::new().unwrap();
    let log: Log = Rc::default();
    let m = Nfa::new(Rc::clone(&log))
        .on("a", "start", |m: &mut NfaCtx<'_, Log>| -> R {
            m.sig("DIE", "oops", ())?;
            m.goto_state("nowhere", None, ())?;
            push(m.runstate(), "not reached");
            Ok(())
        })
        .on("a", "oops", |m: &mut NfaCtx<'_, Log>| -> R {
            let info = m.arg::<DieInfo>(1)?;
            let line = format!("{}: {}", info.event, info.error_str);
            push(m.runstate(), line);
            m.sig_handled();
            m.sig_clear("DIE")?;
            Ok(())
        })
        .spawn(&mut k)
        .unwrap();
    let first = m.goto_state(&mut k, "a", "start", ()).unwrap_err();
    assert!(matches!(first, NfaError::Kernel(Error::Died(_))));
    k.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [format!(
            "poe_nfa_goto_state: machine {} tried to enter nonexistent state 'nowhere'",
            m.id()
        )]
    );
}

#[test]
fn return_state_with_nothing_to_return_to_fails_when_dispatched() {
    let mut k = Kernel::new().unwrap();
    let m = Nfa::new(())
        .on("a", "start", |m: &mut NfaCtx<'_, ()>| m.return_state(()))
        .spawn(&mut k)
        .unwrap();
    // The request is queued without complaint: the stack is only known when it arrives.
    m.goto_state(&mut k, "a", "start", ()).unwrap();
    match k.run() {
        Err(Error::Exception(e)) => assert_eq!(
            e.message(),
            format!(
                "machine {} tried to pop a state from an empty stack",
                m.id()
            )
        ),
        other => panic!("expected the machine's failure, got {other:?}"),
    }
}

#[test]
fn a_return_event_the_state_lacks_fails_when_dispatched() {
    let mut k = Kernel::new().unwrap();
    let m = Nfa::new(())
        .on("a", "start", |m: &mut NfaCtx<'_, ()>| {
            m.call_state("missing", "b", "enter", ())
        })
        .on("b", "enter", |m: &mut NfaCtx<'_, ()>| m.return_state(()))
        .spawn(&mut k)
        .unwrap();
    m.goto_state(&mut k, "a", "start", ()).unwrap();
    match k.run() {
        Err(Error::Exception(e)) => assert_eq!(
            e.message(),
            format!(
                "machine {} tried to invoke nonexistent enter event 'missing' in state 'a'",
                m.id()
            )
        ),
        other => panic!("expected the machine's failure, got {other:?}"),
    }
}

/// POE::NFA dies when an event has no handler and the state no `_default`; the failure
/// says where the event came from.
#[test]
fn an_event_nothing_handles_is_a_failure() {
    let mut k = Kernel::new().unwrap();
    let m = two_states().spawn(&mut k).unwrap();
    m.goto_state(&mut k, "a", "start", ()).unwrap();
    let line = line!() + 1;
    k.post(m.id(), "nothing", (1u32,)).unwrap();
    match k.run() {
        Err(Error::Exception(e)) => {
            assert_eq!(
                e.message(),
                format!(
                    "a 'nothing' event was sent from {} at {line} to machine {id}, but machine \
                     {id} has neither a handler for it nor one for _default in its current \
                     state, 'a'",
                    file!(),
                    id = m.id()
                )
            );
        }
        other => panic!("expected the machine's failure, got {other:?}"),
    }
    // The failure of a call carries the typed error.
    let mut k = Kernel::new().unwrap();
    let m = two_states().spawn(&mut k).unwrap();
    m.goto_state(&mut k, "b", None, ()).unwrap();
    match k.call(m.id(), "nothing", ()) {
        Err(Error::Died(e)) => {
            let nfa = e.source().and_then(|s| s.downcast_ref::<NfaError>());
            assert!(
                matches!(nfa, Some(NfaError::Unhandled { event, state: Some(s), .. })
                if event == "nothing" && s == "b")
            );
        }
        other => panic!("expected the machine's failure, got {other:?}"),
    }
}

// --------------------------------------------------------------- what a machine gets

#[test]
fn start_and_stop_never_reach_a_machine() {
    let mut k = Kernel::new().unwrap();
    let log: Log = Rc::default();
    let m = Nfa::new(Rc::clone(&log))
        .on("a", "_start", |m: &mut NfaCtx<'_, Log>| {
            push(m.runstate(), "_start")
        })
        .on("a", "_stop", |m: &mut NfaCtx<'_, Log>| {
            push(m.runstate(), "_stop")
        })
        .on("a", "_default", |m: &mut NfaCtx<'_, Log>| -> R {
            let line = format!("_default {}", m.arg::<String>(0)?);
            push(m.runstate(), line);
            Ok(())
        })
        .on("a", "enter", |m: &mut NfaCtx<'_, Log>| {
            push(m.runstate(), "enter")
        })
        .spawn(&mut k)
        .unwrap();
    m.goto_state(&mut k, "a", "enter", ()).unwrap();
    k.run().unwrap();
    assert_eq!(*log.borrow(), ["enter"]);
}

#[test]
fn entry_and_leave_events_come_from_the_machine_itself() {
    let mut k = Kernel::new().unwrap();
    let log: Log = Rc::default();
    let describe = |m: &mut NfaCtx<'_, Log>| {
        let line = format!(
            "{} in {} from {} after '{}'",
            m.event(),
            m.current_state(),
            if m.sender() == m.machine().id() {
                "itself"
            } else {
                "elsewhere"
            },
            m.caller_state()
        );
        push(m.runstate(), line);
    };
    let m = Nfa::new(Rc::clone(&log))
        .on("a", "start", describe)
        .on("a", "go", move |m: &mut NfaCtx<'_, Log>| -> R {
            describe(m);
            m.goto_state("b", "enter", ())?;
            Ok(())
        })
        .on("a", "leave", describe)
        .on("b", "enter", describe)
        .spawn(&mut k)
        .unwrap();
    m.goto_state(&mut k, "a", "start", ()).unwrap();
    k.post(m.id(), "go", ()).unwrap();
    k.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "start in a from itself after ''",
            "go in a from elsewhere after ''",
            "leave in a from itself after ''",
            "enter in b from itself after ''",
        ]
    );
}

#[test]
fn the_runstate_lives_as_long_as_the_machine() {
    let mut k = Kernel::new().unwrap();
    let m = Nfa::new(vec![0u32])
        .on("a", "step", |m: &mut NfaCtx<'_, Vec<u32>>| -> R {
            m.alias_set("stays")?;
            m.runstate().push(1);
            m.goto_state("b", "step", ())?;
            Ok(())
        })
        .on("b", "step", |m: &mut NfaCtx<'_, Vec<u32>>| {
            m.runstate().push(2)
        })
        .spawn(&mut k)
        .unwrap();
    m.goto_state(&mut k, "a", "step", ()).unwrap();
    assert_eq!(m.runstate(&mut k).cloned(), Some(vec![0, 1]));
    k.run_one_timeslice().unwrap();
    assert_eq!(m.runstate(&mut k).cloned(), Some(vec![0, 1, 2]));
    k.run().unwrap();
    assert_eq!(m.runstate(&mut k), None);
}

/// `call` into a machine returns the current state's handler's value.
#[test]
fn a_call_into_a_machine_returns_the_current_state_s_value() {
    let mut k = Kernel::new().unwrap();
    let m = Nfa::new(())
        .on("a", "enter", |m: &mut NfaCtx<'_, ()>| m.alias_set("stays"))
        .on("a", "which", |_: &mut NfaCtx<'_, ()>| Value::new("a"))
        .on("b", "which", |_: &mut NfaCtx<'_, ()>| Value::new("b"))
        .spawn(&mut k)
        .unwrap();
    let which = |k: &mut Kernel| *k.call(m.id(), "which", ()).unwrap().get::<&str>().unwrap();
    m.goto_state(&mut k, "a", "enter", ()).unwrap();
    assert_eq!(which(&mut k), "a");
    m.goto_state(&mut k, "b", None, ()).unwrap();
    assert_eq!(which(&mut k), "a", "the transition waits in the queue");
    k.run_one_timeslice().unwrap();
    assert_eq!(which(&mut k), "b");
    let cb = m.callback(&mut k, "which", ());
    assert_eq!(*cb.call(&mut k, ()).unwrap().get::<&str>().unwrap(), "b");
}

// ---------------------------------------------------------------- run-time handlers

#[test]
fn handlers_added_at_run_time_come_after_the_state_s_own_and_before_its_default() {
    let mut k = Kernel::new().unwrap();
    let log: Log = Rc::default();
    let m = Nfa::new(Rc::clone(&log))
        .on("a", "start", |m: &mut NfaCtx<'_, Log>| -> R {
            m.state("ev", |m: &mut NfaCtx<'_, Log>| {
                let line = format!("added {}", m.current_state());
                push(m.runstate(), line);
            })?;
            m.state("only_added", |m: &mut NfaCtx<'_, Log>| {
                let line = format!("only_added {}", m.current_state());
                push(m.runstate(), line);
            })?;
            for ev in ["ev", "only_added"] {
                m.yield_(ev, ())?;
            }
            m.goto_state("b", None, ())?;
            for ev in ["ev", "only_added"] {
                m.yield_(ev, ())?;
            }
            m.yield_("remove", ())?;
            for ev in ["ev", "only_added"] {
                m.yield_(ev, ())?;
            }
            Ok(())
        })
        .on("a", "ev", |m: &mut NfaCtx<'_, Log>| {
            push(m.runstate(), "a's own")
        })
        .on("b", "remove", |m: &mut NfaCtx<'_, Log>| -> R {
            m.remove_state("ev")?;
            m.remove_state("only_added")?;
            Ok(())
        })
        .on("b", "_default", |m: &mut NfaCtx<'_, Log>| -> R {
            let line = format!("b default {}", m.arg::<String>(0)?);
            push(m.runstate(), line);
            Ok(())
        })
        .spawn(&mut k)
        .unwrap();
    m.goto_state(&mut k, "a", "start", ()).unwrap();
    k.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "a's own",
            "only_added a",
            "added b",
            "only_added b",
            "b default ev",
            "b default only_added",
        ]
    );
    let mut k = Kernel::new().unwrap();
    let m = two_states()
        .on("a", "bad", |m: &mut NfaCtx<'_, Log>| -> R {
            let e = m.state("poe_nfa_stop", |_: &mut NfaCtx<'_, Log>| {});
            assert!(matches!(e, Err(NfaError::ReservedEvent(_))));
            let e = m.state("", |_: &mut NfaCtx<'_, Log>| {});
            assert!(matches!(
                e,
                Err(NfaError::Kernel(Error::InvalidArgument(_)))
            ));
            push(m.runstate(), "checked");
            Ok(())
        })
        .spawn(&mut k)
        .unwrap();
    m.goto_state(&mut k, "a", "bad", ()).unwrap();
    assert_eq!(m.runstate(&mut k).unwrap().borrow().as_slice(), ["checked"]);
}

// ------------------------------------------------------------------------ immediate

#[test]
fn immediate_transitions_happen_before_the_call_returns() {
    let mut k = Kernel::new().unwrap();
    let log: Log = Rc::default();
    let state = |m: &mut NfaCtx<'_, Log>| m.current_state().to_owned();
    let m = Nfa::new(Rc::clone(&log))
        .on("a", "start", move |m: &mut NfaCtx<'_, Log>| -> R {
            m.call_state("back", "b", "enter", (7u32,))?;
            let line = format!("after call_state: {}", state(m));
            push(m.runstate(), line);
            Ok(())
        })
        .on("a", "back", move |m: &mut NfaCtx<'_, Log>| -> R {
            let line = format!("back in {} with {}", state(m), m.arg::<u32>(0)?);
            push(m.runstate(), line);
            Ok(())
        })
        .on("b", "enter", move |m: &mut NfaCtx<'_, Log>| -> R {
            let n = *m.arg::<u32>(0)?;
            m.return_state((n + 1,))?;
            let line = format!("after return_state: {}", state(m));
            push(m.runstate(), line);
            Ok(())
        })
        .options(NfaOptions {
            immediate: true,
            ..NfaOptions::default()
        })
        .spawn(&mut k)
        .unwrap();
    m.goto_state(&mut k, "a", "start", ()).unwrap();
    assert_eq!(k.event_count(), 1, "only the garbage check is queued");
    assert_eq!(
        *log.borrow(),
        [
            "back in a with 8",
            "after return_state: a",
            "after call_state: a"
        ]
    );
    k.run().unwrap();
}

// --------------------------------------------------------------------- the kernel API

/// Timers and aliases from a machine's handlers: a delay set in one state fires in the
/// state the machine is in by then.
#[test]
fn timers_fire_in_the_state_the_machine_is_in_then() {
    let clock = ManualClock::new();
    let mut k = Kernel::builder().clock(clock.clone()).build().unwrap();
    let log: Log = Rc::default();
    let m = Nfa::new(Rc::clone(&log))
        .on("a", "start", |m: &mut NfaCtx<'_, Log>| -> R {
            m.alias_set("machine")?;
            m.delay("ring", 5, ("bell",))?;
            m.goto_state("b", None, ())?;
            Ok(())
        })
        .on("a", "ring", |m: &mut NfaCtx<'_, Log>| {
            push(m.runstate(), "a ring")
        })
        .on("b", "ring", |m: &mut NfaCtx<'_, Log>| -> R {
            let line = format!("b ring {}", m.arg::<&str>(0)?);
            push(m.runstate(), line);
            m.alias_remove("machine")?;
            Ok(())
        })
        .spawn(&mut k)
        .unwrap();
    m.goto_state(&mut k, "a", "start", ()).unwrap();
    assert_eq!(k.resolve("machine").unwrap(), m.id());
    k.run().unwrap();
    assert_eq!(*log.borrow(), ["b ring bell"]);
    assert!(k.resolve("machine").is_err());
}

/// POE::NFA's synopsis, with a socket for the terminal: one wheel's input event means
/// something else in each state (login, password, command). The user is a plain session
/// on the other end of the socket that answers the prompts.
#[test]
fn one_wheel_event_handled_by_each_state_in_turn() {
    let _guard = common::timeout(10, "nfa login dialogue");
    let (ours, theirs) = reactor::pipe::two_way().unwrap();
    let mut k = Kernel::new().unwrap();

    #[derive(Default)]
    struct Term {
        io: Option<WheelHandle>,
        socket: Option<mio::net::UnixStream>,
        login: Vec<u8>,
        bye: bool,
    }
    type T<'a> = NfaCtx<'a, Term>;
    fn put(m: &mut T<'_>, line: &[u8]) -> R {
        let id = m.runstate().io.as_ref().ok_or("no wheel")?.id();
        m.wheel_mut::<ReadWrite>(id)
            .ok_or("wheel is gone")?
            .put_one(line)?;
        Ok(())
    }
    fn input(m: &T<'_>) -> Result<Vec<u8>, HandlerError> {
        Ok(m.arg::<Vec<u8>>(0)?.clone())
    }

    let machine: Machine<Term> = Nfa::new(Term {
        socket: Some(ours),
        ..Term::default()
    })
    .on("initial", "setup", |m: &mut T<'_>| -> R {
        let socket = m.runstate().socket.take().ok_or("no socket")?;
        let io = ReadWrite::builder(socket)
            .input_event("on_input")
            .flushed_event("flushed")
            .build(m)?;
        m.runstate().io = Some(io);
        // The wheel's flushed event means the same in every state.
        m.state("flushed", |m: &mut T<'_>| -> R {
            if m.runstate().bye {
                m.stop()?;
            }
            Ok(())
        })?;
        m.goto_state("login", "on_entry", ())?;
        Ok(())
    })
    .on("login", "on_entry", |m: &mut T<'_>| put(m, b"Login: "))
    .on("login", "on_input", |m: &mut T<'_>| -> R {
        m.runstate().login = input(m)?;
        m.goto_state("password", "on_entry", ())?;
        Ok(())
    })
    .on("password", "on_entry", |m: &mut T<'_>| {
        put(m, b"Password: ")
    })
    .on("password", "on_input", |m: &mut T<'_>| -> R {
        let next = if input(m)? == m.runstate().login {
            "cmd"
        } else {
            "login"
        };
        m.goto_state(next, "on_entry", ())?;
        Ok(())
    })
    .on("cmd", "on_entry", |m: &mut T<'_>| put(m, b"Cmd: "))
    .on("cmd", "on_input", |m: &mut T<'_>| -> R {
        let cmd = input(m)?;
        let mut echo = b"  <<".to_vec();
        echo.extend_from_slice(&cmd);
        echo.extend_from_slice(b">>");
        put(m, &echo)?;
        if cmd == b"quit" {
            put(m, b"Bye!")?;
            m.runstate().bye = true;
        } else {
            m.goto_state("cmd", "on_entry", ())?;
        }
        Ok(())
    })
    .spawn(&mut k)
    .unwrap();
    machine.goto_state(&mut k, "initial", "setup", ()).unwrap();

    // The user: answers "Login: " twice (the first password is wrong), then two commands.
    struct User {
        io: Option<WheelHandle>,
        answers: Vec<&'static str>,
        seen: Log,
    }
    let seen: Log = Rc::default();
    let socket = RefCell::new(Some(theirs));
    k.create(
        Session::new(User {
            io: None,
            answers: vec!["alice", "wrong", "alice", "alice", "hello", "quit"],
            seen: Rc::clone(&seen),
        })
        .on("_start", move |ctx: &mut Ctx<'_, User>| -> R {
            let s = socket.borrow_mut().take().ok_or("no socket")?;
            let io = ReadWrite::builder(s)
                .input_event("line")
                .error_event("gone")
                .build(ctx)?;
            ctx.heap().io = Some(io);
            Ok(())
        })
        .on("line", |ctx: &mut Ctx<'_, User>| -> R {
            let line = String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?;
            let id = *ctx.arg::<WheelId>(1)?;
            push(&ctx.heap().seen, line.clone());
            if line.ends_with(": ") {
                let answer = ctx.heap().answers.remove(0);
                push(&ctx.heap().seen, answer);
                ctx.wheel_mut::<ReadWrite>(id)
                    .ok_or("wheel is gone")?
                    .put_one(answer)?;
            }
            Ok(())
        })
        .on("gone", |ctx: &mut Ctx<'_, User>| -> R {
            let e = ctx.arg::<WheelError>(0)?;
            if !e.is_eof() {
                return Err(format!("{e:?}").into());
            }
            push(&ctx.heap().seen, "EOF");
            ctx.heap().io = None;
            Ok(())
        }),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(
        *seen.borrow(),
        [
            "Login: ",
            "alice",
            "Password: ",
            "wrong",
            "Login: ",
            "alice",
            "Password: ",
            "alice",
            "Cmd: ",
            "hello",
            "  <<hello>>",
            "Cmd: ",
            "quit",
            "  <<quit>>",
            "Bye!",
            "EOF",
        ]
    );
    assert_eq!(machine.current_state(), Some("cmd"));
}
