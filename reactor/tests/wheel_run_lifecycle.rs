//! `Run` beyond upstream's tests: a program that cannot start is an `ErrorEvent` and a
//! `CloseEvent`, not a failure of the constructor; dropping a wheel whose child still
//! runs leaves no zombie (the kernel reaps it) and no descriptor; `Priority`, the shell
//! form and `kill` with a bad signal.

mod common;

use common::{assert_no_new_fds, open_fds};
use reactor::wheel::{Conduit, Run, WheelError};
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Mutex;

/// The descriptor checks need the process to themselves.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

type Log = Rc<RefCell<Vec<String>>>;

#[test]
fn a_program_that_cannot_start_is_an_error_event_then_a_close_event() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = common::timeout(10, "cannot start");
    let before = open_fds();
    let log: Log = Rc::default();
    let (l1, l2) = (Rc::clone(&log), Rc::clone(&log));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(None::<WheelHandle>)
            .on(
                "_start",
                |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let w = Run::program("/nonexistent/program")
                        .stdout_event("out")
                        .error_event("error")
                        .close_event("close")
                        .build(ctx)?;
                    assert_eq!(ctx.wheel_ref::<Run>(w.id()).and_then(Run::pid), None);
                    *ctx.heap() = Some(w);
                    Ok(())
                },
            )
            .on("out", |_: &mut Ctx<'_, Option<WheelHandle>>| {})
            .on(
                "error",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let e = ctx.arg::<WheelError>(0)?;
                    let handle = ctx.arg::<String>(2)?;
                    l1.borrow_mut()
                        .push(format!("{} {} {:?}", e.operation, e.errno, handle));
                    Ok(())
                },
            )
            .on("close", move |ctx: &mut Ctx<'_, Option<WheelHandle>>| {
                l2.borrow_mut().push("close".into());
                *ctx.heap() = None;
            }),
    )
    .unwrap();
    k.run().unwrap();
    drop(k);
    assert_eq!(*log.borrow(), ["exec 2 \"\"", "close"]);
    assert_no_new_fds(&before);
}

/// Whether process `pid` still exists (running or a zombie).
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_dropped_wheel_leaves_no_zombie_and_no_descriptor_on_any_conduit() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = common::timeout(20, "dropped wheels");
    let before = open_fds();
    let pids: Rc<RefCell<Vec<u32>>> = Rc::default();
    let p = Rc::clone(&pids);
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(0u32)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, u32>| -> Result<(), HandlerError> {
                    for c in [
                        Conduit::Pipe,
                        Conduit::Socketpair,
                        Conduit::Pty,
                        Conduit::PtyPipe,
                    ] {
                        // `cat` runs until its stdin ends: when the wheel is dropped.
                        let mut b = Run::program("cat").conduit(c).stdout_event("out");
                        if c != Conduit::Pty {
                            b = b.stderr_event("out");
                        }
                        let w = b.build(ctx)?;
                        let pid = ctx
                            .wheel_ref::<Run>(w.id())
                            .and_then(Run::pid)
                            .ok_or("no pid")?;
                        p.borrow_mut().push(pid);
                        drop(w);
                    }
                    ctx.delay("look", 0.02, ())?;
                    Ok(())
                },
            )
            .on("out", |_: &mut Ctx<'_, u32>| {})
            .on("look", {
                let p = Rc::clone(&pids);
                move |ctx: &mut Ctx<'_, u32>| -> Result<(), HandlerError> {
                    *ctx.heap() += 1;
                    // Bounded: 500 looks, 10 s.
                    if p.borrow().iter().any(|&pid| exists(pid)) && *ctx.heap() < 500 {
                        ctx.delay("look", 0.02, ())?;
                    }
                    Ok(())
                }
            }),
    )
    .unwrap();
    k.run().unwrap();
    drop(k);
    let left: Vec<u32> = pids
        .borrow()
        .iter()
        .copied()
        .filter(|&p| exists(p))
        .collect();
    assert!(
        left.is_empty(),
        "children left as zombies or running: {left:?}"
    );
    assert_eq!(pids.borrow().len(), 4);
    assert_no_new_fds(&before);
}

/// Runs `b` with `input` written to its stdin and returns its stdout lines.
fn output_of(b: reactor::wheel::RunBuilder, input: Option<&'static str>) -> Vec<String> {
    let lines: Log = Rc::default();
    let l = Rc::clone(&lines);
    let b = RefCell::new(Some(b));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(None::<WheelHandle>)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let b = b.borrow_mut().take().ok_or("built twice")?;
                    let w = b.stdout_event("out").close_event("close").build(ctx)?;
                    if let Some(text) = input {
                        ctx.wheel_mut::<Run>(w.id())
                            .ok_or("no wheel")?
                            .put_one(text)?;
                    }
                    *ctx.heap() = Some(w);
                    Ok(())
                },
            )
            .on(
                "out",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    l.borrow_mut()
                        .push(String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?);
                    Ok(())
                },
            )
            .on("close", |ctx: &mut Ctx<'_, Option<WheelHandle>>| {
                *ctx.heap() = None
            }),
    )
    .unwrap();
    k.run().unwrap();
    let v = lines.borrow().clone();
    v
}

#[test]
fn priority_is_a_niceness_delta() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = common::timeout(10, "priority");
    let mine = rustix::process::getpriority_process(None).unwrap();
    // The child waits for a line before it reports, so the parent has set its priority.
    let b = Run::program("sh")
        .program_args(["-c", "read x; nice"])
        .priority(5);
    assert_eq!(output_of(b, Some("go")), [(mine + 5).min(19).to_string()]);
}

#[test]
fn the_shell_form_joins_its_arguments_into_the_command_line() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = common::timeout(10, "shell");
    let b = Run::shell("echo").program_args(["two", "words"]);
    assert_eq!(output_of(b, None), ["two words"]);
    let b = Run::program("echo").program_args(["$HOME"]);
    assert_eq!(output_of(b, None), ["$HOME"], "no shell unless asked");
}

#[test]
fn kill_refuses_an_unknown_signal_and_a_child_that_never_started() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = common::timeout(10, "kill");
    let mut k = Kernel::new().unwrap();
    k.create(Session::new(()).on(
        "_start",
        |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
            let w = Run::program("true").build(ctx)?;
            let run = ctx.wheel_ref::<Run>(w.id()).ok_or("no wheel")?;
            assert_eq!(run.kill("NOSUCH").unwrap_err().raw_os_error(), Some(22));
            let w = Run::program("/nonexistent").build(ctx)?;
            let run = ctx.wheel_ref::<Run>(w.id()).ok_or("no wheel")?;
            assert_eq!(run.kill("TERM").unwrap_err().raw_os_error(), Some(3));
            Ok(())
        },
    ))
    .unwrap();
    k.run().unwrap();
}

#[test]
fn user_and_group_set_the_childs_ids_or_the_child_cannot_start() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = common::timeout(10, "user and group");
    let nobody = 65534;
    let root = rustix::process::geteuid().is_root();
    let log: Log = Rc::default();
    let (l1, l2) = (Rc::clone(&log), Rc::clone(&log));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(None::<WheelHandle>)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let w = Run::program("sh")
                        .program_args(["-c", "echo $(id -u) $(id -g)"])
                        .user(nobody)
                        .group(nobody)
                        .stdout_event("out")
                        .error_event("error")
                        .close_event("close")
                        .build(ctx)?;
                    *ctx.heap() = Some(w);
                    Ok(())
                },
            )
            .on(
                "out",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    l1.borrow_mut()
                        .push(String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?);
                    Ok(())
                },
            )
            .on(
                "error",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let e = ctx.arg::<WheelError>(0)?;
                    if !e.is_eof() {
                        l2.borrow_mut().push(format!("{} {}", e.operation, e.errno));
                    }
                    Ok(())
                },
            )
            .on("close", |ctx: &mut Ctx<'_, Option<WheelHandle>>| {
                *ctx.heap() = None
            }),
    )
    .unwrap();
    k.run().unwrap();
    if root {
        assert_eq!(*log.borrow(), ["65534 65534"]);
    } else {
        // Not permitted: the child cannot start (EPERM), which is an error event.
        assert_eq!(*log.borrow(), ["exec 1"]);
    }
}
