//! Port of poe-test-loops `z_merijn_sigchld_system.pm`: running a program and waiting
//! for it (Perl's `system`, here `std::process::Command::status`) works before, while and
//! after a session watches `CHLD`, and the kernel's reaping does not steal the status: each
//! returns success and no `CHLD` reaches the watcher.

use reactor::{Ctx, HandlerError, Kernel, Session};
use std::cell::Cell;
use std::rc::Rc;

#[test]
fn system_returns_properly_under_a_chld_watch() {
    let command = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("a 'true' to run");
    let caught = Rc::new(Cell::new(0));
    let c = Rc::clone(&caught);
    let statuses = Rc::new(std::cell::RefCell::new(Vec::new()));
    let s = Rc::clone(&statuses);
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                    let run = || std::process::Command::new(command).status();
                    s.borrow_mut().push(run()?.code());
                    ctx.sig("CHLD", "chld", ())?;
                    s.borrow_mut().push(run()?.code());
                    ctx.sig_clear("CHLD")?;
                    s.borrow_mut().push(run()?.code());
                    Ok(())
                },
            )
            .on("chld", move |_: &mut Ctx<'_, ()>| c.set(c.get() + 1)),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(*statuses.borrow(), [Some(0); 3], "system returns properly");
    assert_eq!(caught.get(), 0, "no child procs caught");
}
