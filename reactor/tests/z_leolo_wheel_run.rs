//! Port of poe-test-loops `z_leolo_wheel_run.pm`: over each conduit (pty, pty-pipe,
//! socketpair, inet), a child writes "hello", pauses, writes an 11 KiB line and "done";
//! the session must see the "done" line, the close event and the child's exit, each
//! exactly once, and nothing on stderr.
//!
//! Upstream's child is Perl code run in the forked child; here it is an entry of this
//! program run through `child_main`, and its pause is 200 ms rather than 1 s. Upstream's
//! 600-second safety alarm is kept, and removed as upstream removes it.

mod common;

use reactor::wheel::{child_main, Conduit, Run};
use reactor::{AlarmId, Ctx, HandlerError, Kernel, Session, WheelHandle};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;

fn talker(_: &[String]) -> i32 {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "hello");
    let _ = out.flush();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let _ = writeln!(out, "{}", "hello world".repeat(1024));
    let _ = writeln!(out, "done");
    let _ = out.flush();
    0
}

#[derive(Default)]
struct Heap {
    conduit: &'static str,
    seen: BTreeMap<&'static str, u32>,
    wheel: Option<WheelHandle>,
    tid: Option<AlarmId>,
}

type C<'a> = Ctx<'a, Heap>;

fn seen(ctx: &mut C<'_>, what: &'static str) -> Result<(), HandlerError> {
    *ctx.heap().seen.entry(what).or_default() += 1;
    if ctx.heap().seen.len() == 3 {
        ctx.heap().wheel = None;
        if let Some(t) = ctx.heap().tid.take() {
            ctx.alarm_remove(t)?;
        }
    }
    Ok(())
}

fn spawn(k: &mut Kernel, conduit: &'static str, report: Rc<RefCell<Vec<String>>>) {
    k.create(
        Session::new(Heap {
            conduit,
            ..Heap::default()
        })
        .on("_start", |ctx: &mut C<'_>| -> Result<(), HandlerError> {
            let c: Conduit = ctx.heap().conduit.parse()?;
            let mut b = Run::code("talker")
                .conduit(c)
                .stdout_event("stdout")
                .close_event("closeE");
            if c != Conduit::Pty {
                b = b.stderr_event("stderr");
            }
            let w = b.build(ctx)?;
            let pid = ctx
                .wheel_ref::<Run>(w.id())
                .and_then(Run::pid)
                .ok_or("no pid")?;
            ctx.sig_child(pid, "CHLD", ())?;
            ctx.heap().wheel = Some(w);
            let tid = ctx.delay_set("timeout", 600.0, ())?;
            ctx.heap().tid = Some(tid);
            Ok(())
        })
        .on("_stop", move |ctx: &mut C<'_>| {
            let h = ctx.heap();
            for need in ["done", "close", "CHLD"] {
                let n = h.seen.get(need).copied().unwrap_or(0);
                if n != 1 {
                    report
                        .borrow_mut()
                        .push(format!("{}: {need} seen {n} times", h.conduit));
                }
            }
            if let Some(n) = h.seen.get("error") {
                report
                    .borrow_mut()
                    .push(format!("{}: {n} lines on stderr", h.conduit));
            }
            report.borrow_mut().push(format!("{}: stopped", h.conduit));
        })
        .on("timeout", |ctx: &mut C<'_>| {
            ctx.heap().wheel = None;
            ctx.heap().tid = None;
        })
        .on("closeE", |ctx: &mut C<'_>| seen(ctx, "close"))
        .on("CHLD", |ctx: &mut C<'_>| seen(ctx, "CHLD"))
        .on("stdout", |ctx: &mut C<'_>| -> Result<(), HandlerError> {
            if ctx.arg::<Vec<u8>>(0)? == b"done" {
                seen(ctx, "done")?;
            }
            Ok(())
        })
        .on("stderr", |ctx: &mut C<'_>| -> Result<(), HandlerError> {
            eprintln!("ERROR: {}", String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?));
            seen(ctx, "error")?;
            if let Some(t) = ctx.heap().tid.take() {
                ctx.alarm_remove(t)?;
            }
            Ok(())
        }),
    )
    .unwrap();
}

fn main() {
    child_main(&[("talker", talker)]);
    let _watchdog = common::timeout(20, "z_leolo_wheel_run");
    let report: Rc<RefCell<Vec<String>>> = Rc::default();
    let mut k = Kernel::new().unwrap();
    for c in ["pty", "pty-pipe", "socketpair", "inet"] {
        spawn(&mut k, c, Rc::clone(&report));
    }
    k.run().unwrap();
    let report = report.borrow();
    let problems: Vec<&String> = report.iter().filter(|l| !l.ends_with("stopped")).collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(report.len(), 4, "every session stopped: {report:?}");
    println!("z_leolo_wheel_run: ok");
}
