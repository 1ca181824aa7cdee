//! Port of poe-test-loops `z_rt39872_sigchld_stop.pm`: two children, each running a
//! kernel of its own that waits for `SIGUSR1` while a reference count holds its session.
//! The parent watches both with `sig_child` and holds its own session with reference
//! counts; it signals T1, sees T1 exit as expected, then signals T2, sees it exit too,
//! and its kernel ends by itself ("sane exit").
//!
//! Upstream forks the POE process and continues the kernel in the child; a Rust program
//! cannot run on after `fork` without `unsafe`, so each child is this program started
//! again through `child_main`, running a fresh kernel. Upstream waits three seconds for
//! the children to settle; here each child says "ready" once it watches `SIGUSR1`, and the
//! parent signals T1 when both have.

mod common;

use reactor::wheel::{child_main, Run};
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A child: a kernel whose session lives until `SIGUSR1`.
fn worker(_: &[String]) -> i32 {
    let mut k = Kernel::new().expect("kernel");
    k.create(
        Session::new(())
            .on(
                "_start",
                |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                    ctx.sig("USR1", "sig_USR1", ())?;
                    let me = ctx.session();
                    ctx.refcount_increment(me, "USR1")?;
                    println!("ready");
                    use std::io::Write;
                    std::io::stdout().flush()?;
                    Ok(())
                },
            )
            .on(
                "sig_USR1",
                |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                    ctx.sig_clear("USR1")?;
                    let me = ctx.session();
                    ctx.refcount_decrement(me, "USR1")?;
                    Ok(())
                },
            ),
    )
    .expect("session");
    match k.run() {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

#[derive(Default)]
struct Child {
    wheel: Option<WheelHandle>,
    closing: bool,
}

#[derive(Default)]
struct Heap {
    children: HashMap<&'static str, Child>,
    pid_to_name: HashMap<u32, &'static str>,
    ready: usize,
}

type C<'a> = Ctx<'a, Heap>;

fn main() {
    child_main(&[("worker", worker)]);
    let _watchdog = common::timeout(20, "z_rt39872_sigchld_stop");
    let checks: Rc<RefCell<Vec<(String, bool)>>> = Rc::default();
    let (c1, c2) = (Rc::clone(&checks), Rc::clone(&checks));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(Heap::default())
            .on("_start", |ctx: &mut C<'_>| ctx.yield_("work", ()))
            .on("work", |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                let me = ctx.session();
                for name in ["T1", "T2"] {
                    let w = Run::code("worker").stdout_event("ready").build(ctx)?;
                    let pid = ctx
                        .wheel_ref::<Run>(w.id())
                        .and_then(Run::pid)
                        .ok_or("no pid")?;
                    ctx.sig_child(pid, "sig_CHLD", ())?;
                    let h = ctx.heap();
                    h.children.insert(
                        name,
                        Child {
                            wheel: Some(w),
                            closing: false,
                        },
                    );
                    h.pid_to_name.insert(pid, name);
                }
                for name in ["T1", "T2"] {
                    ctx.refcount_increment(me, name)?;
                }
                Ok(())
            })
            .on("ready", |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                ctx.heap().ready += 1;
                if ctx.heap().ready == 2 {
                    ctx.yield_("parent", ())?;
                }
                Ok(())
            })
            .on("parent", |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                let t1 = ctx.heap().children.get_mut("T1").ok_or("no T1")?;
                t1.closing = true;
                let id = t1.wheel.as_ref().ok_or("no wheel")?.id();
                ctx.wheel_ref::<Run>(id).ok_or("no wheel")?.kill("USR1")?;
                Ok(())
            })
            .on("done", move |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                let left: Vec<u32> = ctx.heap().pid_to_name.keys().copied().collect();
                c1.borrow_mut()
                    .push((format!("one child left ({left:?})"), left.len() == 1));
                let t2 = ctx.heap().children.get("T2").ok_or("no T2")?;
                let id = t2.wheel.as_ref().ok_or("no wheel")?.id();
                ctx.wheel_ref::<Run>(id).ok_or("no wheel")?.kill("USR1")?;
                let me = ctx.session();
                ctx.refcount_decrement(me, "T2")?;
                Ok(())
            })
            .on(
                "sig_CHLD",
                move |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                    let pid = *ctx.arg::<u32>(1)?;
                    let Some(&name) = ctx.heap().pid_to_name.get(&pid) else {
                        return Ok(());
                    };
                    let child = ctx.heap().children.remove(name).ok_or("no child")?;
                    if name != "T1" {
                        c2.borrow_mut()
                            .push(("T2 exited unasked-for closing".into(), !child.closing));
                        return Ok(());
                    }
                    c2.borrow_mut()
                        .push(("T1 exited while closing".into(), child.closing));
                    let me = ctx.session();
                    ctx.refcount_decrement(me, name)?;
                    ctx.heap().pid_to_name.remove(&pid);
                    ctx.yield_("done", ())?;
                    Ok(())
                },
            ),
    )
    .unwrap();
    k.run().unwrap();
    let checks = checks.borrow();
    assert_eq!(checks.len(), 3, "{checks:?}");
    for (what, ok) in checks.iter() {
        assert!(ok, "{what}");
    }
    println!("z_rt39872_sigchld_stop: ok (sane exit)");
}
