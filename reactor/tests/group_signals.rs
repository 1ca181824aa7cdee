//! A group of kernels stopped by a signal: the process signals itself once every kernel is
//! ready, the group's own kernel catches it (so the process is not killed), and every
//! kernel of the group is told. Signals are process-wide, so this file has one test that
//! runs its scenarios one after the other.

mod common;

use reactor::group::Group;
use reactor::{Ctx, Kernel, Session};
use rustix::process::{getpid, kill_process, Signal};
use std::sync::{Arc, Mutex};

/// A session that keeps its kernel running until the kernel is stopped or the session is
/// told "release".
fn holder(k: &mut Kernel) -> Result<(), reactor::Error> {
    k.create(
        Session::new(())
            .on("_start", |ctx: &mut Ctx<'_, ()>| {
                ctx.alias_set("holder")?;
                let me = ctx.active_session();
                ctx.refcount_increment(me, "test").map(|_| ())
            })
            .on("release", |ctx: &mut Ctx<'_, ()>| {
                let me = ctx.active_session();
                ctx.refcount_decrement(me, "test").map(|_| ())
            }),
    )?;
    Ok(())
}

#[test]
fn a_signal_stops_every_kernel_of_the_group() {
    let _w = common::timeout(60, "group_signals");

    // 1. The default: SIGTERM stops every kernel.
    Group::new(3)
        .on_ready(|| kill_process(getpid(), Signal::TERM).unwrap())
        .run(|_, k| {
            holder(k)?;
            Ok(())
        })
        .unwrap();

    // 2. Each kernel is told which signal came and winds down as it chooses.
    let told = Arc::new(Mutex::new(Vec::new()));
    let t = Arc::clone(&told);
    Group::new(2)
        .on_signal(move |k, name| {
            t.lock().unwrap().push(name.to_owned());
            k.post("holder", "release", ()).unwrap();
        })
        .on_ready(|| kill_process(getpid(), Signal::INT).unwrap())
        .run(|_, k| {
            holder(k)?;
            Ok(())
        })
        .unwrap();
    assert_eq!(*told.lock().unwrap(), vec!["INT", "INT"]);
}
