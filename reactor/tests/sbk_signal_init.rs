//! Ports poe-test-loops' `POE/Test/Loops/sbk_signal_init.pm` (Stuart Kendrick's
//! rt.cpan.org ticket 19529): initialising the kernel must not take over signal handlers
//! the program installed before it.
//!
//! Upstream sets `$SIG{ALRM}` in a `BEGIN` block, then `use POE` (which builds the
//! kernel), then `alarm(1)` and a 5 s `select` that the signal interrupts, and checks that
//! its own handler ran. Here the program's handler is installed with `signal-hook` before
//! the first [`Kernel`] of the process is built; the process then sends itself SIGALRM
//! (what `alarm` does when it expires, minus the second of waiting) and waits for the
//! handler on a pipe the handler writes to, at most the same 5 s: the wait ends when the
//! handler runs, not after a fixed time.
//!
//! Signals are process-wide, so this file has a single `#[test]`, and nothing else in this
//! binary touches SIGALRM. If building the kernel had installed SIGALRM's default action
//! (termination), the test binary would die of the signal and the test fail.

use reactor::{Ctx, Error, Kernel, Session};
use rustix::process::{getpid, kill_process, Signal};
use signal_hook::consts::SIGALRM;
use std::cell::RefCell;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Upstream's `select(undef, undef, undef, 5)`.
const WAIT: Duration = Duration::from_secs(5);

/// Sends SIGALRM to the process and waits until the program's handler has written its
/// byte to `wake` (or `WAIT` has passed). Returns whether the byte came.
fn alarm_and_wait(wake: &mut UnixStream) -> bool {
    kill_process(getpid(), Signal::ALARM).expect("kill(getpid(), SIGALRM)");
    let mut b = [0u8; 1];
    wake.read_exact(&mut b).is_ok()
}

#[test]
fn kernel_keeps_the_programs_signal_handlers() {
    // Upstream's BEGIN { $SIG{ALRM} = \&dispatch_normal_signal }: the handler sets
    // $signal_dispatched; the pipe only ends the wait.
    let signal_dispatched = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGALRM, Arc::clone(&signal_dispatched)).unwrap();
    let (mut wake, writer) = UnixStream::pair().unwrap();
    wake.set_read_timeout(Some(WAIT)).unwrap();
    signal_hook::low_level::pipe::register(SIGALRM, writer).unwrap();

    // `use POE`.
    let mut k = Kernel::new().unwrap();

    // Upstream test 1, "normal SIGALRM dispatched".
    let woke = alarm_and_wait(&mut wake);
    assert!(
        signal_dispatched.swap(false, Ordering::SeqCst),
        "normal SIGALRM dispatched (woke: {woke})"
    );

    // Not upstream: the same while the kernel runs a session that watches another OS
    // signal (so the kernel's own signal handling is set up): a SIGALRM no session
    // watches still reaches the program's handler, and reaches no session.
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let (l1, l2) = (Rc::clone(&log), Rc::clone(&log));
    let flag = Arc::clone(&signal_dispatched);
    k.create(
        Session::new(wake)
            .on(
                "_start",
                |ctx: &mut Ctx<'_, UnixStream>| -> Result<(), Error> {
                    ctx.sig("USR2", "usr2", ())?;
                    ctx.yield_("raise", ())
                },
            )
            .on(
                "raise",
                move |ctx: &mut Ctx<'_, UnixStream>| -> Result<(), Error> {
                    let woke = alarm_and_wait(ctx.heap());
                    let dispatched = flag.swap(false, Ordering::SeqCst);
                    l1.borrow_mut()
                        .push(format!("raise woke={woke} dispatched={dispatched}"));
                    // Let a wrongly queued ALRM event, if any, be dispatched before the end.
                    ctx.yield_("done", ())
                },
            )
            .on("done", |ctx: &mut Ctx<'_, UnixStream>| {
                ctx.sig_clear("USR2")
            })
            .on("_stop", |_: &mut Ctx<'_, UnixStream>| ())
            .on(
                "_default",
                move |ctx: &mut Ctx<'_, UnixStream>| -> Result<(), Error> {
                    let event = ctx.arg::<String>(0)?;
                    l2.borrow_mut().push(format!("unexpected {event}"));
                    Ok(())
                },
            ),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(*log.borrow(), ["raise woke=true dispatched=true"]);
}
