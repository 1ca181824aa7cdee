//! A POE::NFA machine run under the real POE and as its port, printing the same lines:
//! `tests/perl/nfa_machine.pl` (run live) against the port below.
//!
//! The program covers: a machine spawned by a plain session (`_child create` and `lose`,
//! no state before the first transition, which is made at once); a transition through
//! the queue (an event yielded before `goto_state` is handled in the old state, one
//! yielded after it, and one posted by another session, in the new state); the old
//! state's `leave`; the entry event's arguments and sender; events the state has no
//! handler for going to its `_default` (`EVENT` is `_default`, `ARG0` the event);
//! `call_state` and `return_state` with a return event and arguments, and without a
//! return event (the return arguments are dropped); the runstate kept across states; the
//! `immediate` option; an event no handler takes, which the machine catches as a `DIE`
//! signal; `stop` (an event yielded after it is never handled).
//!
//! Without Perl's POE (`libpoe-perl`) the test says so and passes without comparing.

use reactor::nfa::{Nfa, NfaCtx, NfaOptions};
use reactor::{Args, Ctx, DieInfo, HandlerError, Kernel, Session};
use std::cell::RefCell;
use std::process::Command;
use std::rc::Rc;

type R = Result<(), HandlerError>;
type Log = Rc<RefCell<Vec<String>>>;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/perl/nfa_machine.pl");

/// What the Perl program prints, one entry a line; `None` if Perl's POE is not installed.
fn perl_lines() -> Option<Vec<String>> {
    let has_poe = Command::new("perl")
        .args(["-MPOE", "-MPOE::NFA", "-e", "1"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_poe {
        return None;
    }
    let out = Command::new("perl")
        .arg(SCRIPT)
        .output()
        .unwrap_or_else(|e| panic!("running perl {SCRIPT}: {e}"));
    assert!(
        out.status.success(),
        "perl {SCRIPT} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    Some(text.lines().map(str::to_owned).collect())
}

/// The machine's runstate: POE's `{ count => 0 }`, and where it prints.
struct Rs {
    count: u32,
    log: Log,
}

type M<'a> = NfaCtx<'a, Rs>;

fn say(m: &mut M<'_>, line: impl Into<String>) {
    m.runstate().log.borrow_mut().push(line.into());
}

fn from(m: &M<'_>) -> &'static str {
    if m.sender() == m.machine().id() {
        "from-self"
    } else {
        "from-other"
    }
}

fn strings(args: &Args) -> Vec<String> {
    args.iter()
        .map(|a| {
            if let Some(s) = a.downcast_ref::<&str>() {
                (*s).to_owned()
            } else if let Some(n) = a.downcast_ref::<u32>() {
                n.to_string()
            } else {
                "?".to_owned()
            }
        })
        .collect()
}

/// The `_default` handlers print the redirected event's name and how many arguments it
/// had.
fn default_line(m: &M<'_>, prefix: &str) -> Result<String, HandlerError> {
    let event = m.arg::<String>(0)?;
    let n = m.arg::<Args>(1)?.len();
    Ok(format!("{prefix} {} {event} {n}", m.event()))
}

fn machine(log: &Log) -> Nfa<Rs> {
    Nfa::new(Rs {
        count: 0,
        log: Rc::clone(log),
    })
    // ------------------------------------------------------------------------------- a
    .on("a", "start", |m: &mut M<'_>| -> R {
        let line = format!(
            "a start {} {} {}",
            m.current_state(),
            from(m),
            m.args().len()
        );
        say(m, line);
        m.runstate().count += 1;
        m.yield_("x", ())?;
        m.goto_state("b", "enter", ("one", "two"))?;
        m.yield_("y", ())?;
        let line = format!("a still {}", m.machine().current_state().unwrap());
        say(m, line);
        Ok(())
    })
    .on("a", "x", |m: &mut M<'_>| say(m, "a x"))
    .on("a", "y", |m: &mut M<'_>| say(m, "a y"))
    .on("a", "leave", |m: &mut M<'_>| {
        let line = format!("leave {} {}", m.current_state(), m.event());
        say(m, line);
    })
    .on("a", "_default", |m: &mut M<'_>| -> R {
        let line = format!("a default {}", m.arg::<String>(0)?);
        say(m, line);
        Ok(())
    })
    // ------------------------------------------------------------------------------- b
    .on("b", "enter", |m: &mut M<'_>| -> R {
        m.runstate().count += 1;
        let line = format!(
            "b enter {} count {}",
            strings(m.args()).join(" "),
            m.runstate().count
        );
        say(m, line);
        m.yield_("only_in_a", ())?;
        m.yield_("z", (3u32,))?;
        Ok(())
    })
    .on("b", "y", |m: &mut M<'_>| say(m, "b y"))
    .on("b", "obs", |m: &mut M<'_>| {
        let line = format!("b obs {}", from(m));
        say(m, line);
    })
    .on("b", "z", |m: &mut M<'_>| -> R {
        let line = format!("b z {}", m.arg::<u32>(0)?);
        say(m, line);
        m.call_state("back", "c", "enter", (5u32,))?;
        m.yield_("before_c", ())?;
        let line = format!("b after call_state {}", m.current_state());
        say(m, line);
        Ok(())
    })
    .on("b", "back", |m: &mut M<'_>| -> R {
        let line = format!(
            "b back {} count {}",
            strings(m.args()).join(" "),
            m.runstate().count
        );
        say(m, line);
        m.call_state(None, "c", "again", ())?;
        Ok(())
    })
    .on("b", "after_return", |m: &mut M<'_>| -> R {
        let line = format!("b after_return {}", m.current_state());
        say(m, line);
        let old = m.set_options(NfaOptions {
            immediate: true,
            ..m.options()
        });
        m.goto_state("d", "enter", ())?;
        let line = format!("b now {}", m.machine().current_state().unwrap());
        say(m, line);
        m.set_options(old);
        Ok(())
    })
    .on("b", "leave", |m: &mut M<'_>| {
        let line = format!("leave {}", m.current_state());
        say(m, line);
    })
    .on("b", "_default", |m: &mut M<'_>| -> R {
        let line = default_line(m, "b default")?;
        say(m, line);
        Ok(())
    })
    // ------------------------------------------------------------------------------- c
    .on("c", "enter", |m: &mut M<'_>| -> R {
        m.runstate().count += 1;
        let n = *m.arg::<u32>(0)?;
        let line = format!("c enter {n} count {}", m.runstate().count);
        say(m, line);
        m.return_state(("r1", "r2"))?;
        m.yield_("in_c", ())?;
        Ok(())
    })
    .on("c", "before_c", |m: &mut M<'_>| say(m, "c before_c"))
    .on("c", "in_c", |m: &mut M<'_>| say(m, "c in_c"))
    .on("c", "again", |m: &mut M<'_>| -> R {
        let line = format!("c again {}", m.args().len());
        say(m, line);
        m.return_state(("dropped",))?;
        m.yield_("after_return", ())?;
        Ok(())
    })
    // ------------------------------------------------------------------------------- d
    .on("d", "enter", |m: &mut M<'_>| -> R {
        let line = format!("d enter {}", m.current_state());
        say(m, line);
        m.sig("DIE", "oops", ())?;
        m.yield_("nohandler", (1u32,))?;
        m.yield_("fine", ())?;
        Ok(())
    })
    .on("d", "oops", |m: &mut M<'_>| -> R {
        let line = format!(
            "d oops {} {}",
            m.arg::<String>(0)?,
            m.arg::<DieInfo>(1)?.event
        );
        say(m, line);
        m.sig_handled();
        Ok(())
    })
    .on("d", "fine", |m: &mut M<'_>| -> R {
        let line = format!("d fine count {}", m.runstate().count);
        say(m, line);
        m.stop()?;
        m.yield_("never", ())?;
        Ok(())
    })
    .on("d", "never", |m: &mut M<'_>| say(m, "d never"))
}

/// The observer: a plain session that spawns the machine and sets it going.
fn observer(log: &Log) -> Session<Log> {
    Session::new(Rc::clone(log))
        .on("_start", |ctx: &mut Ctx<'_, Log>| -> R {
            let log = Rc::clone(ctx.heap());
            let m = machine(&log).spawn(ctx)?;
            let state = m.current_state().unwrap_or("(undef)");
            log.borrow_mut().push(format!("spawned {state}"));
            m.goto_state(ctx, "a", "start", ())?;
            let state = m.current_state().unwrap_or("(undef)");
            log.borrow_mut().push(format!("observer sees {state}"));
            ctx.post(m.id(), "obs", ())?;
            Ok(())
        })
        .on("_child", |ctx: &mut Ctx<'_, Log>| -> R {
            let line = format!("observer _child {}", ctx.arg::<String>(0)?);
            ctx.heap().borrow_mut().push(line);
            Ok(())
        })
        .on("_stop", |ctx: &mut Ctx<'_, Log>| {
            ctx.heap().borrow_mut().push("observer _stop".to_owned());
        })
}

fn port_lines() -> Vec<String> {
    let mut kernel = Kernel::new().expect("kernel");
    let log: Log = Rc::default();
    kernel.create(observer(&log)).expect("observer");
    kernel.run().expect("run");
    log.borrow_mut().push("done".to_owned());
    let lines = log.borrow().clone();
    lines
}

#[test]
fn a_machine_prints_what_it_prints_under_poe() {
    let got = port_lines();
    let Some(want) = perl_lines() else {
        eprintln!("skipped: Perl's POE is not installed (libpoe-perl); nothing to compare with");
        return;
    };
    assert!(!want.is_empty(), "perl {SCRIPT} printed nothing");
    assert_eq!(got, want, "ours (left) against POE 1.370 (right)");
}
