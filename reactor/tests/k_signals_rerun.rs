//! Ports poe-test-loops' `POE/Test/Loops/k_signals_rerun.pm` (Yuval Kogman's test case):
//! an exception from a `_stop` handler ends `run()` with that error, and `run()` can be
//! called again on the same kernel afterwards, eight times over, with child processes
//! reaped through a `CHLD` watcher each time.
//!
//! Upstream starts each child with `POE::Wheel::Run` (`$^X -wle "exit $exit"`, with stdin
//! and stdout events it ignores). The port has no `Wheel::Run`; the nearest equivalent
//! here starts `sh -c "exit $exit"` with `std::process::Command` in the same place and
//! keeps everything else as upstream has it: the `sig(CHLD)` watcher set before the
//! spawn, the `running_processes` external reference held until the child is reaped, the
//! watcher cleared in its own handler, and `_stop` dying with "bad exit\n" for a non-zero
//! exit status when asked to.
//!
//! POE's kernel is a process-wide singleton, so every upstream iteration re-runs the same
//! kernel; here one [`Kernel`] is likewise reused for all eight runs. `CHLD` is
//! process-wide too: this file has a single `#[test]`.

mod common;

use reactor::{Ctx, Error, HandlerError, Kernel, Session};
use std::cell::RefCell;
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::rc::Rc;

type R = Result<(), HandlerError>;

struct ChildHeap {
    /// Upstream's `heap => { program => [...] }`: the status the child exits with.
    exit: i32,
    die_on_bad_exit: bool,
    /// Upstream's `pid_to_wheel` (there is no wheel: the pids alone).
    pids: HashSet<u32>,
    /// The wait status the `CHLD` watcher received.
    program_exit: Option<i32>,
    /// Every wait status seen, for the test's own check after `run()`.
    seen: Rc<RefCell<Vec<i32>>>,
}

fn child_session(
    exit: i32,
    die_on_bad_exit: bool,
    seen: Rc<RefCell<Vec<i32>>>,
) -> Session<ChildHeap> {
    Session::new(ChildHeap {
        exit,
        die_on_bad_exit,
        pids: HashSet::new(),
        program_exit: None,
        seen,
    })
    // Upstream's wheel events and `_parent`, which do nothing.
    .on("stdout", |_: &mut Ctx<'_, ChildHeap>| ())
    .on("stdin", |_: &mut Ctx<'_, ChildHeap>| ())
    .on("_parent", |_: &mut Ctx<'_, ChildHeap>| ())
    .on("_start", |ctx: &mut Ctx<'_, ChildHeap>| -> R {
        ctx.sig("CHLD", "sigchld_handler", ())?;
        let exit = ctx.heap().exit;
        let child = Command::new("sh")
            .args(["-c", &format!("exit {exit}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        // Dropping the handle neither waits nor kills: the kernel reaps the child.
        ctx.heap().pids.insert(child.id());
        let me = ctx.session();
        ctx.refcount_increment(me, "running_processes")?;
        Ok(())
    })
    .on("sigchld_handler", |ctx: &mut Ctx<'_, ChildHeap>| -> R {
        let pid = *ctx.arg::<u32>(1)?;
        let child_error = *ctx.arg::<i32>(2)?;
        if !ctx.heap().pids.contains(&pid) {
            return Ok(());
        }
        let me = ctx.session();
        ctx.refcount_decrement(me, "running_processes")?;
        ctx.heap().pids.remove(&pid);
        ctx.sig_clear("CHLD")?;
        ctx.heap().program_exit = Some(child_error);
        ctx.heap().seen.borrow_mut().push(child_error);
        Ok(())
    })
    .on("_stop", |ctx: &mut Ctx<'_, ChildHeap>| -> R {
        let h = ctx.heap();
        if !h.pids.is_empty() {
            return Err("AAAAAAAHHH Running process leak!".into());
        }
        if h.die_on_bad_exit && (h.program_exit.unwrap_or(0) >> 8) != 0 {
            return Err("bad exit\n".into());
        }
        Ok(())
    })
}

/// Upstream tests 1 to 9, in upstream's order: for each `(die_on_bad_exit, exit)` in
/// `(0, 0) (0, 1) (0, 0) (0, 0) (1, 0) (1, 1) (1, 0) (1, 0)`, one `ok(!$@)` "no error when
/// process exited OK", except `(1, 1)`, which has two: `ok($@)` "died with bad exit code"
/// and `is($@, "bad exit\n")` "error is correct". Beyond upstream, each run must also have
/// reaped its child with the right exit status and, as under POE 1.370, leave no session
/// behind, failed run or not.
#[test]
fn run_again_after_an_exception_in_stop() {
    let _watchdog = common::timeout(20, "k_signals_rerun");
    let mut k = Kernel::new().unwrap();
    let mut test = 0;
    for die_on_bad_exit in [false, true] {
        for exit in [0, 1, 0, 0] {
            let seen: Rc<RefCell<Vec<i32>>> = Rc::default();
            let s = Rc::clone(&seen);
            k.create(
                Session::new(())
                    .on("_start", move |ctx: &mut Ctx<'_, ()>| -> R {
                        ctx.create(child_session(exit, die_on_bad_exit, Rc::clone(&s)))?;
                        Ok(())
                    })
                    .on("_stop", |_: &mut Ctx<'_, ()>| ())
                    .on("_child", |_: &mut Ctx<'_, ()>| ())
                    .on("_parent", |_: &mut Ctx<'_, ()>| ()),
            )
            .unwrap();

            let r = k.run();
            let tag = format!("({}-{exit})", u8::from(die_on_bad_exit));

            if die_on_bad_exit && exit != 0 {
                test += 1; // ok($@, "... died with bad exit code")
                assert!(r.is_err(), "test {test}: {tag} died with bad exit code");
                test += 1; // is($@, "bad exit\n", "... error is correct")
                match &r {
                    Err(Error::Exception(e)) => {
                        assert_eq!(
                            e.message(),
                            "bad exit\n",
                            "test {test}: {tag} error is correct"
                        )
                    }
                    other => panic!("test {test}: {tag} error is correct: got {other:?}"),
                }
            } else {
                test += 1; // ok(!$@, "... no error when process exited OK")
                assert!(
                    r.is_ok(),
                    "test {test}: {tag} no error when process exited OK: {r:?}"
                );
            }

            // Not upstream: the child was reaped once, with its exit status.
            assert_eq!(
                *seen.borrow(),
                [exit << 8],
                "{tag} exit status seen by CHLD"
            );
            // Not upstream: POE 1.370 has no session left after any of the runs.
            assert_eq!(k.session_count(), 0, "{tag} sessions left after run()");
        }
    }
    assert_eq!(test, 9, "upstream plans 9 tests");
}
