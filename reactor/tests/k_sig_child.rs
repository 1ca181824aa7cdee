//! Port of poe-test-loops `k_sig_child.pm`: eight children, each watched by two sessions
//! with `sig_child` (the forking session and a "catcher" it posts each pid to) and by
//! the catcher's `sig(CHLD)`. Once all run, the children are sent `SIGINT`; every watch
//! of every child fires exactly once, the `CHLD` broadcast fires once per child, and the
//! sessions end by themselves.
//!
//! Upstream forks the Perl process and has each child report on a pipe before it
//! sleeps; here each child is `sleep 3600`, which is running (and dies of `SIGINT`) once
//! it has been started.

mod common;

use reactor::{Ctx, HandlerError, Kernel, Session};
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

const FORK_COUNT: usize = 8;

#[derive(Default)]
struct Catcher {
    children: HashSet<u32>,
    watched: usize,
    caught: usize,
    caught_sigchld: usize,
}

#[derive(Default)]
struct Forker {
    children: Vec<u32>,
    forked: usize,
    reaped: usize,
}

#[test]
fn every_watch_of_every_child_fires_once() {
    let _watchdog = common::timeout(30, "k_sig_child");
    let report: Rc<RefCell<Vec<(String, bool)>>> = Rc::default();
    let (r1, r2, r3) = (Rc::clone(&report), Rc::clone(&report), Rc::clone(&report));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(Catcher::default())
            .on("_start", |ctx: &mut Ctx<'_, Catcher>| {
                ctx.alias_set("catcher")
            })
            .on(
                "catch",
                |ctx: &mut Ctx<'_, Catcher>| -> Result<(), HandlerError> {
                    let pid = *ctx.arg::<u32>(0)?;
                    ctx.sig("CHLD", "got_sigchld", ())?;
                    ctx.sig_child(pid, "got_chld", ())?;
                    ctx.heap().children.insert(pid);
                    ctx.heap().watched += 1;
                    Ok(())
                },
            )
            .on(
                "got_chld",
                move |ctx: &mut Ctx<'_, Catcher>| -> Result<(), HandlerError> {
                    let pid = *ctx.arg::<u32>(1)?;
                    let known = ctx.heap().children.remove(&pid);
                    r1.borrow_mut()
                        .push((format!("caught SIGCHLD for watched pid {pid}"), known));
                    ctx.heap().caught += 1;
                    if ctx.heap().children.is_empty() {
                        // Upstream's watch of CHLD ends with the session; the catcher lets go
                        // once every child is in.
                        ctx.alias_remove("catcher")?;
                    }
                    Ok(())
                },
            )
            .on("got_sigchld", |ctx: &mut Ctx<'_, Catcher>| {
                ctx.heap().caught_sigchld += 1;
                if ctx.heap().caught_sigchld == FORK_COUNT {
                    let _ = ctx.sig_clear("CHLD");
                }
            })
            .on("_stop", move |ctx: &mut Ctx<'_, Catcher>| {
                let h = ctx.heap();
                let mut r = r2.borrow_mut();
                r.push((
                    format!("reaped {} of {} watched", h.caught, h.watched),
                    h.watched == h.caught,
                ));
                r.push((
                    format!("sig(CHLD) {} of {}", h.caught_sigchld, h.watched),
                    h.watched == h.caught_sigchld,
                ));
                r.push((
                    "all reaped children were watched".into(),
                    h.children.is_empty(),
                ));
            }),
    )
    .unwrap();
    k.create(
        Session::new(Forker::default())
            .on(
                "_start",
                |ctx: &mut Ctx<'_, Forker>| -> Result<(), HandlerError> {
                    for _ in 0..FORK_COUNT {
                        let child = std::process::Command::new("sleep").arg("3600").spawn()?;
                        let pid = child.id();
                        ctx.heap().forked += 1;
                        ctx.heap().children.push(pid);
                        ctx.sig_child(pid, "catch_sigchld", ())?;
                        ctx.post("catcher", "catch", (pid,))?;
                    }
                    ctx.yield_("forking_time_is_up", ())?;
                    Ok(())
                },
            )
            .on("catch_sigchld", |ctx: &mut Ctx<'_, Forker>| {
                ctx.heap().reaped += 1
            })
            .on(
                "forking_time_is_up",
                move |ctx: &mut Ctx<'_, Forker>| -> Result<(), HandlerError> {
                    let mut killed = 0;
                    for &pid in &ctx.heap().children {
                        let p = rustix::process::Pid::from_raw(pid as i32).ok_or("bad pid")?;
                        if rustix::process::kill_process(p, rustix::process::Signal::INT).is_ok() {
                            killed += 1;
                        }
                    }
                    r3.borrow_mut()
                        .push((format!("killed {killed} processes"), killed == FORK_COUNT));
                    Ok(())
                },
            )
            .on("_stop", {
                let r = Rc::clone(&report);
                move |ctx: &mut Ctx<'_, Forker>| {
                    let h = ctx.heap();
                    r.borrow_mut().push((
                        format!("reaped {} of {}", h.reaped, h.forked),
                        h.reaped == h.forked,
                    ));
                }
            }),
    )
    .unwrap();
    k.run().unwrap();
    let report = report.borrow();
    assert_eq!(report.len(), FORK_COUNT + 5, "{report:#?}");
    for (what, ok) in report.iter() {
        assert!(ok, "{what}");
    }
}
