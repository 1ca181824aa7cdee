//! Port of poe-test-loops `z_rt39872_sigchld.pm`: two `Run` wheels (W1, W2) run a Perl
//! child that introduces itself ("I am W1") and exits on "bye". Each child is watched with
//! `sig_child`. On W1's introduction the parent sends "bye"; W1's exit arrives while it is
//! closing; a quarter second later the parent drops both wheels, finds one child left and
//! kills it with `SIGINT`; W2's exit still reaches its `sig_child` watch although its wheel
//! is gone; the kernel then ends by itself ("sane exit"). Any error other than end of
//! file fails the test, as upstream's `die`.

mod common;

use reactor::wheel::{Run, WheelError};
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle, WheelId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

const PROG: &str = r#"
    $|++;
    my $N = shift;
    print "I am $N\n";
    while(<STDIN>) {
        chomp;
        exit 0 if /^bye/;
        print "Unknown command '$_'\n";
    }
"#;

#[derive(Default)]
struct Heap {
    wheels: HashMap<&'static str, WheelHandle>,
    id_to_name: HashMap<WheelId, &'static str>,
    pid_to_name: HashMap<u32, &'static str>,
    closing: HashMap<&'static str, bool>,
}

type C<'a> = Ctx<'a, Heap>;

#[test]
fn sigchld_reaches_watchers_of_dropped_wheels() {
    let _watchdog = common::timeout(20, "z_rt39872_sigchld");
    let checks: Rc<RefCell<Vec<(String, bool)>>> = Rc::default();
    let (c1, c2, c3) = (Rc::clone(&checks), Rc::clone(&checks), Rc::clone(&checks));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(Heap::default())
            .on("_start", |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                ctx.alias_set("worker")?;
                for name in ["W1", "W2"] {
                    let w = Run::program("perl")
                        .program_args(["-e", PROG, name])
                        .stdout_event("stdout")
                        .stderr_event("stderr")
                        .error_event("error")
                        .build(ctx)?;
                    let pid = ctx
                        .wheel_ref::<Run>(w.id())
                        .and_then(Run::pid)
                        .ok_or("no pid")?;
                    let h = ctx.heap();
                    h.id_to_name.insert(w.id(), name);
                    h.pid_to_name.insert(pid, name);
                    h.wheels.insert(name, w);
                    ctx.sig_child(pid, "sig_CHLD", ())?;
                }
                Ok(())
            })
            .on("done", move |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                ctx.heap().wheels.clear();
                let left: Vec<u32> = ctx.heap().pid_to_name.keys().copied().collect();
                c1.borrow_mut()
                    .push(("one wheel left".into(), left.len() == 1));
                for pid in left {
                    let pid = rustix::process::Pid::from_raw(pid as i32).ok_or("bad pid")?;
                    rustix::process::kill_process(pid, rustix::process::Signal::INT)?;
                }
                Ok(())
            })
            .on(
                "stdout",
                move |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                    let input = String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?;
                    let id = *ctx.arg::<WheelId>(1)?;
                    let name = *ctx.heap().id_to_name.get(&id).ok_or("unknown wheel")?;
                    c2.borrow_mut()
                        .push(("intro output".into(), input == format!("I am {name}")));
                    if name != "W1" {
                        return Ok(());
                    }
                    ctx.heap().closing.insert(name, true);
                    ctx.wheel_mut::<Run>(id).ok_or("no wheel")?.put_one("bye")?;
                    Ok(())
                },
            )
            .on("stderr", |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                eprintln!(
                    "STDERR: {}",
                    String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?)
                );
                Ok(())
            })
            .on("error", |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                let e = ctx.arg::<WheelError>(0)?;
                if !e.is_eof() {
                    return Err(format!("error: {e}").into());
                }
                Ok(())
            })
            .on(
                "sig_CHLD",
                move |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                    let pid = *ctx.arg::<u32>(1)?;
                    let name = ctx.heap().pid_to_name.remove(&pid).ok_or("unknown pid")?;
                    let closing = ctx.heap().closing.remove(name).unwrap_or(false);
                    if name != "W1" {
                        c3.borrow_mut().push((format!("{name} killed"), !closing));
                        return Ok(());
                    }
                    c3.borrow_mut().push((format!("{name} closing"), closing));
                    if let Some(w) = ctx.heap().wheels.remove(name) {
                        ctx.heap().id_to_name.remove(&w.id());
                    }
                    ctx.delay("done", 0.25, ())?;
                    Ok(())
                },
            ),
    )
    .unwrap();
    k.run().unwrap();
    let checks = checks.borrow();
    assert_eq!(checks.len(), 5, "{checks:?}");
    for (what, ok) in checks.iter() {
        assert!(ok, "{what}: {checks:?}");
    }
}
