//! `sig_child`: a watched child's exit reaches its watcher with the pid and wait status;
//! a watch on a process that is not our child does not keep the program alive
//! (t/90_regression/rt23181-sigchld-rc.t). One test: SIGCHLD handling is process-wide.

mod common;

use reactor::{Ctx, Error, HandlerError, Kernel, Session};
use std::cell::RefCell;
use std::rc::Rc;

#[test]
fn sig_child_reports_exits_and_ignores_strangers() {
    // A watch that wrongly held its session would keep run() going forever.
    let _watchdog = common::timeout(10, "sig_child");
    // A child that exits with status 3.
    let child = std::process::Command::new("sh")
        .args(["-c", "exit 3"])
        .spawn()
        .unwrap();
    let pid = child.id();
    let got: Rc<RefCell<Vec<(String, u32, i32)>>> = Rc::default();
    let g = Rc::clone(&got);
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, ()>| -> Result<(), Error> {
                    ctx.sig_child(pid, "exited", ())
                },
            )
            .on(
                "exited",
                move |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                    g.borrow_mut().push((
                        ctx.arg::<String>(0)?.clone(),
                        *ctx.arg::<u32>(1)?,
                        *ctx.arg::<i32>(2)?,
                    ));
                    Ok(())
                },
            ),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(*got.borrow(), [("CHLD".to_owned(), pid, 3 << 8)]);
    std::mem::forget(child); // reaped by the kernel

    // PID 1 is never our child: the watch cannot fire and must not hold the session.
    let stopped = Rc::new(RefCell::new(false));
    let st = Rc::clone(&stopped);
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(())
            .on("_start", |ctx: &mut Ctx<'_, ()>| {
                ctx.sig_child(1, "never", ())
            })
            .on("never", |_: &mut Ctx<'_, ()>| -> () {
                panic!("pid 1 is not our child")
            })
            .on("_stop", move |_: &mut Ctx<'_, ()>| *st.borrow_mut() = true),
    )
    .unwrap();
    k.run().unwrap();
    assert!(*stopped.borrow());
}
