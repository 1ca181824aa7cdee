//! OS signals through the loop: the process signals itself and the kernel delivers the
//! signal to its watchers as an ordinary event, exactly once.
//!
//! Ports the USR1/PIPE-to-self part of poe-test-loops' `POE/Test/Loops/k_signals.pm`
//! (the fork/CHLD and nested-session parts are not ported here), plus HUP scenarios
//! checked against POE 1.370.
//!
//! Signals are process-wide and cargo runs the tests of one file on several threads, so
//! this file has a single `#[test]` that runs the scenarios one after the other, each on
//! its own kernel with the system clock. The timers below are upstream's: a cap in case a
//! signal never arrives, and a short wait after the last one "in case of spurious
//! signal"; nothing sleeps.
//!
//! POE (Perl) dispatches two different OS signals in the order they were sent; signal
//! order between different signal numbers is not asserted here, only counts.

use reactor::{Error, Kernel, Session, KERNEL};
use rustix::process::{getpid, kill_process, Signal};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

fn kill_self(sig: Signal) -> std::io::Result<()> {
    kill_process(getpid(), sig)?;
    Ok(())
}

/// How long each signal may take to arrive before the scenario gives up.
const CAP: f64 = 2.0;

#[derive(Default)]
struct K {
    usr1: u32,
    pipe: u32,
}

/// k_signals.pm, "See how SIGPIPE gets handled": one session watches USR1 and PIPE, sends
/// itself both, and must catch each exactly once; the watchers get ARG0 = the signal name
/// and SENDER = the kernel.
fn usr1_and_pipe_to_self() {
    let mut k = Kernel::new().unwrap();
    let log: Log = Rc::default();
    let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log.clone());
    fn reduce_wait(ctx: &mut reactor::Ctx<'_, K>) -> Result<(), Error> {
        let h = ctx.heap();
        if h.usr1 > 0 && h.pipe > 0 {
            ctx.delay("signal_wait_timeout", 0.100, ())?;
        }
        Ok(())
    }
    k.create(
        Session::new(K::default())
            .on("_start", |ctx| -> Result<(), Error> {
                ctx.sig("USR1", "got_usr1", ())?;
                ctx.sig("PIPE", "got_pipe", ())?;
                ctx.yield_("send_signals", ())
            })
            .on("send_signals", move |ctx| -> Result<(), Error> {
                kill_self(Signal::USR1)?;
                push(&l1, "sent self SIGUSR1");
                kill_self(Signal::PIPE)?;
                push(&l1, "sent self SIGPIPE");
                ctx.delay("signal_wait_timeout", CAP, ())
            })
            .on("got_usr1", move |ctx| -> Result<(), Error> {
                let line = format!(
                    "got_usr1 {} nargs={} from_kernel={}",
                    ctx.arg::<String>(0)?,
                    ctx.args().len(),
                    ctx.sender() == KERNEL
                );
                push(&l2, line);
                ctx.heap().usr1 += 1;
                reduce_wait(ctx)
            })
            .on("got_pipe", move |ctx| -> Result<(), Error> {
                let line = format!(
                    "got_pipe {} nargs={} from_kernel={}",
                    ctx.arg::<String>(0)?,
                    ctx.args().len(),
                    ctx.sender() == KERNEL
                );
                push(&l3, line);
                ctx.heap().pipe += 1;
                reduce_wait(ctx)
            })
            .on("signal_wait_timeout", |ctx| -> Result<(), Error> {
                ctx.sig_clear("USR1")?;
                ctx.sig_clear("PIPE")
            })
            .on("_stop", move |ctx| {
                let (u, p) = (ctx.heap().usr1, ctx.heap().pipe);
                push(&l4, format!("stop usr1={u} pipe={p}"));
            }),
    )
    .unwrap();
    k.run().unwrap();
    let got = log.borrow().clone();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[..2], ["sent self SIGUSR1", "sent self SIGPIPE"]);
    let mut caught = got[2..4].to_vec();
    caught.sort();
    assert_eq!(
        caught,
        [
            "got_pipe PIPE nargs=1 from_kernel=true",
            "got_usr1 USR1 nargs=1 from_kernel=true"
        ],
        "{got:?}"
    );
    assert_eq!(
        got[4], "stop usr1=1 pipe=1",
        "caught SIGUSR1 and SIGPIPE once"
    );
}

/// One session watches USR1, another HUP (and handles it, HUP being terminal), a third
/// watches nothing. An OS signal goes to every session: each watcher gets its own signal
/// exactly once, nobody gets the other's, and the handled HUP stops no one (the third
/// session's later timer still fires).
fn usr1_and_hup_to_separate_watchers() {
    let mut k = Kernel::new().unwrap();
    let log: Log = Rc::default();

    let watcher = |name: &'static str, sig: &'static str, handle: bool| {
        let (l1, l2) = (log.clone(), log.clone());
        Session::new(0u32)
            .on("_start", move |ctx| -> Result<(), Error> {
                ctx.sig(sig, "got", (name.to_owned(),))?;
                ctx.delay("timeout", CAP, ())
            })
            .on("got", move |ctx| -> Result<(), Error> {
                let line = format!(
                    "{} got {} nargs={}",
                    ctx.arg::<String>(1)?,
                    ctx.arg::<String>(0)?,
                    ctx.args().len()
                );
                push(&l1, line);
                if handle {
                    ctx.sig_handled();
                }
                *ctx.heap() += 1;
                // Wait a little in case of a spurious second delivery.
                ctx.delay("timeout", 0.100, ())
            })
            .on("timeout", move |ctx| -> Result<(), Error> {
                let n = *ctx.heap();
                push(&l2, format!("{name} timeout count={n}"));
                ctx.sig_clear(sig)
            })
    };
    k.create(watcher("A", "USR1", false)).unwrap();
    k.create(watcher("B", "HUP", true)).unwrap();
    let (l1, l2) = (log.clone(), log.clone());
    k.create(
        Session::new(())
            .on("_start", |ctx| -> Result<(), Error> {
                ctx.yield_("send", ())?;
                ctx.delay("alive", 0.300, ())
            })
            .on("send", move |_ctx| -> Result<(), Error> {
                kill_self(Signal::USR1)?;
                kill_self(Signal::HUP)?;
                push(&l1, "C sent");
                Ok(())
            })
            .on("alive", move |_ctx| push(&l2, "C alive")),
    )
    .unwrap();
    k.run().unwrap();
    let mut got = log.borrow().clone();
    got.sort();
    assert_eq!(
        got,
        [
            "A got USR1 nargs=2",
            "A timeout count=1",
            "B got HUP nargs=2",
            "B timeout count=1",
            "C alive",
            "C sent",
        ]
    );
}

/// An OS HUP that its watcher does not handle is terminal: it stops every session, also
/// one that never watched it, and their pending timers never fire. POE 1.370 (`kill HUP
/// => $$` with a watcher that does not call sig_handled): A got HUP, B stop, A stop.
fn unhandled_hup_stops_everyone() {
    let mut k = Kernel::new().unwrap();
    let log: Log = Rc::default();
    let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log.clone());
    let a = k
        .create(
            Session::new(())
                .on("_start", |ctx| -> Result<(), Error> {
                    ctx.sig("HUP", "got", ())?;
                    ctx.yield_("send", ())?;
                    ctx.delay("timeout", CAP, ())
                })
                .on("send", |_ctx| -> Result<(), Error> {
                    kill_self(Signal::HUP)?;
                    Ok(())
                })
                .on("got", move |ctx| -> Result<(), Error> {
                    push(&l1, format!("A got {}", ctx.arg::<String>(0)?));
                    Ok(())
                })
                .on("timeout", move |_ctx| push(&l2, "A timeout"))
                .on("_stop", move |_ctx| push(&l3, "A stop")),
        )
        .unwrap();
    let (l5, l6) = (l4.clone(), l4.clone());
    let b = k
        .create(
            Session::new(())
                .on("_start", |ctx| ctx.delay("timeout", CAP, ()))
                .on("timeout", move |_ctx| push(&l5, "B timeout"))
                .on("_stop", move |_ctx| push(&l6, "B stop")),
        )
        .unwrap();
    assert_ne!(a, b);
    let started = Instant::now();
    k.run().unwrap();
    let got = log.borrow().clone();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], "A got HUP");
    let mut stops = got[1..].to_vec();
    stops.sort();
    assert_eq!(stops, ["A stop", "B stop"], "{got:?}");
    assert!(
        started.elapsed() < Duration::from_secs_f64(CAP),
        "the sessions were stopped by HUP, not by running out of timers"
    );
    assert_eq!(k.session_count(), 0);
}

#[test]
fn os_signals_reach_watchers_exactly_once() {
    usr1_and_pipe_to_self();
    usr1_and_hup_to_separate_watchers();
    unhandled_hup_stops_everyone();
}
