//! `Wheel::due`: the wheel table dispatches a wheel in a pass only when the wheel says the
//! dispatch would do something, and keeps listing it while `pending` says it has work.

use mio::{Registry, Token};
use reactor::wheel::{Wheel, WheelHandle, WheelId};
use reactor::{Ctx, EventId, HandlerError, Kernel, Mode, Session};
use std::cell::RefCell;
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

/// The `Wheel` methods of a test wheel with no handle and one piece of read work, not
/// `done` yet: it holds its session and has work until then.
macro_rules! one_piece_of_read_work {
    () => {
        fn register(&mut self, _: &Registry, _: [Token; 2]) -> std::io::Result<()> {
            Ok(())
        }

        fn deregister(&mut self, _: &Registry) {}

        fn note_ready(&mut self, _: usize, _: bool, _: bool) {}

        fn holds_session(&self) -> bool {
            !self.done
        }

        fn pending(&self) -> (bool, bool) {
            (!self.done, false)
        }
    };
}

/// A wheel with one piece of read work that it holds back for `hold` polls: `pending`
/// says yes all along, `due` only once `arm` (called after each poll) has counted the
/// hold down.
struct Held {
    hold: u32,
    done: bool,
    log: Log,
}

impl Wheel for Held {
    one_piece_of_read_work!();

    fn due(&self, mode: Mode) -> bool {
        mode == Mode::Read && !self.done && self.hold == 0
    }

    fn arm(&mut self) {
        self.log
            .borrow_mut()
            .push(format!("arm (hold {})", self.hold));
        self.hold = self.hold.saturating_sub(1);
    }

    fn dispatch(kernel: &mut Kernel, id: WheelId, mode: Mode) {
        let Some(owner) = kernel.wheel_owner(id) else {
            return;
        };
        if let Some(w) = kernel.wheel_mut::<Held>(id) {
            assert_eq!(mode, Mode::Read, "no write pass: due said no");
            assert_eq!(w.hold, 0, "dispatched before it was due");
            w.done = true;
        }
        let args = reactor::args![id];
        kernel.wheel_call(owner, EventId::of("held_done"), args);
    }
}

#[test]
fn a_wheel_is_dispatched_only_when_due_and_stays_listed_while_pending() {
    let log: Log = Rc::default();
    let (l1, l2) = (Rc::clone(&log), Rc::clone(&log));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(None::<WheelHandle>)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let w = ctx.wheel_insert(Held {
                        hold: 2,
                        done: false,
                        log: Rc::clone(&l1),
                    })?;
                    *ctx.heap() = Some(w);
                    Ok(())
                },
            )
            .on(
                "held_done",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    l2.borrow_mut().push("held_done".to_owned());
                    *ctx.heap() = None;
                    Ok(())
                },
            ),
    )
    .unwrap();
    k.run().unwrap();
    // Listed after each poll while pending, dispatched once, at the poll where it was due.
    assert_eq!(*log.borrow(), ["arm (hold 2)", "arm (hold 1)", "held_done"]);
}

/// `ReadWrite`'s write in the table's write pass (`Wheel::write_visit`): a write that fails
/// still raises the error event, with the failure of that write, and the wheel writes no
/// more; the records written before the failure reached the peer.
#[test]
fn a_write_failure_in_the_write_pass_reaches_the_error_event() {
    use reactor::wheel::{ReadWrite, WheelError};
    use std::io::Read;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let socket = std::cell::Cell::new(Some(mio::net::UnixStream::from_std(ours)));
    let peer = RefCell::new(Some(theirs));
    let errors: Rc<RefCell<Vec<(String, i32)>>> = Rc::default();
    let e2 = Rc::clone(&errors);
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(None::<WheelHandle>)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let w = ReadWrite::builder(socket.take().ok_or("started twice")?)
                        .error_event("failed")
                        .build(ctx)?;
                    let id = w.id();
                    *ctx.heap() = Some(w);
                    ctx.wheel_mut::<ReadWrite>(id)
                        .ok_or("no wheel")?
                        .put_one(b"first".to_vec())?;
                    ctx.yield_("second", id)?;
                    Ok(())
                },
            )
            .on(
                "second",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    // The first record was written in the write pass after the poll.
                    let mut theirs = peer.borrow_mut().take().ok_or("second twice")?;
                    let mut got = [0u8; 7];
                    theirs.read_exact(&mut got)?;
                    assert_eq!(&got, b"first\r\n");
                    drop(theirs);
                    let id = *ctx.arg::<WheelId>(0)?;
                    ctx.wheel_mut::<ReadWrite>(id)
                        .ok_or("no wheel")?
                        .put_one(b"second".to_vec())?;
                    Ok(())
                },
            )
            .on(
                "failed",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let e = ctx.arg::<WheelError>(0)?;
                    e2.borrow_mut().push((e.operation.to_string(), e.errno));
                    *ctx.heap() = None;
                    Ok(())
                },
            ),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(
        *errors.borrow(),
        vec![("write".to_string(), 32)],
        "one EPIPE from the write pass"
    );
}

/// A wheel with one piece of read work, due at once, that counts its arms.
struct Probe {
    name: &'static str,
    arms: u32,
    done: bool,
    log: Log,
}

impl Wheel for Probe {
    one_piece_of_read_work!();

    fn arm(&mut self) {
        self.arms += 1;
        self.log.borrow_mut().push(format!("arm {}", self.name));
    }

    fn dispatch(kernel: &mut Kernel, id: WheelId, _: Mode) {
        let Some(owner) = kernel.wheel_owner(id) else {
            return;
        };
        let Some(w) = kernel.wheel_mut::<Probe>(id) else {
            return;
        };
        w.done = true;
        let (name, arms) = (w.name, w.arms);
        w.log
            .borrow_mut()
            .push(format!("dispatch {name} (armed {arms}x)"));
        kernel.wheel_call(owner, EventId::of("probed"), reactor::args![name, id]);
    }
}

/// Each listed wheel is armed once per poll, before any handler of that poll's read pass
/// reaches it through the kernel: here wheel A's handler reaches B, listed after A, before
/// B's own visit.
#[test]
fn a_wheel_is_armed_once_per_poll_before_a_handler_reaches_it() {
    type Heap = Vec<WheelHandle>;
    let log: Log = Rc::default();
    let (l1, l2) = (Rc::clone(&log), Rc::clone(&log));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(Heap::new())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    for name in ["A", "B"] {
                        let w = ctx.wheel_insert(Probe {
                            name,
                            arms: 0,
                            done: false,
                            log: Rc::clone(&l1),
                        })?;
                        ctx.heap().push(w);
                    }
                    Ok(())
                },
            )
            .on(
                "probed",
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    if *ctx.arg::<&str>(0)? == "A" {
                        let b = ctx.heap()[1].id();
                        let arms = ctx.wheel_mut::<Probe>(b).ok_or("no B")?.arms;
                        l2.borrow_mut()
                            .push(format!("A's handler reached B (armed {arms}x)"));
                    } else {
                        ctx.heap().clear();
                    }
                    Ok(())
                },
            ),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "arm A",
            "dispatch A (armed 1x)",
            "arm B",
            "A's handler reached B (armed 1x)",
            "dispatch B (armed 1x)",
        ]
    );
}

/// A socket pair, both ends non-blocking, whose far end has sent a line: the near end,
/// for a wheel, and the far end.
fn pinged_pair() -> (mio::net::UnixStream, std::os::unix::net::UnixStream) {
    use std::io::Write;
    let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    theirs.set_nonblocking(true).unwrap();
    theirs.write_all(b"ping\n").unwrap();
    (mio::net::UnixStream::from_std(ours), theirs)
}

/// `ReadWrite::flush` of wheel `id`, then "pong" put to it, then `check` yielded.
fn flush_then_put_pong<H: 'static>(ctx: &mut Ctx<'_, H>, id: WheelId) -> Result<(), HandlerError> {
    use reactor::wheel::ReadWrite;
    ReadWrite::flush(ctx, id);
    ctx.wheel_mut::<ReadWrite>(id)
        .ok_or("no wheel")?
        .put_one(b"pong".to_vec())?;
    ctx.yield_("check", ())?;
    Ok(())
}

/// `ReadWrite::flush` in an input handler with nothing buffered arms the wheel: a record
/// put after it in the same handler goes out in that poll's write pass, before the
/// events the handler yielded run.
#[test]
fn a_put_after_an_empty_flush_goes_out_in_the_same_write_pass() {
    use reactor::wheel::ReadWrite;
    use std::io::Read;
    let (ours, theirs) = pinged_pair();
    let socket = std::cell::Cell::new(Some(ours));
    let seen: Rc<RefCell<Vec<u8>>> = Rc::default();
    let seen2 = Rc::clone(&seen);
    let peer = RefCell::new(theirs);
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(None::<WheelHandle>)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let w = ReadWrite::builder(socket.take().ok_or("started twice")?)
                        .input_event("input")
                        .build(ctx)?;
                    *ctx.heap() = Some(w);
                    Ok(())
                },
            )
            .on(
                "input",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let id = *ctx.arg::<WheelId>(1)?;
                    flush_then_put_pong(ctx, id)
                },
            )
            .on(
                "check",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                    let mut buf = [0u8; 16];
                    let n = peer.borrow_mut().read(&mut buf).unwrap_or(0);
                    seen2.borrow_mut().extend_from_slice(&buf[..n]);
                    *ctx.heap() = None;
                    Ok(())
                },
            ),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(&*seen.borrow(), b"pong\r\n");
}

/// The same from another wheel's handler, after this wheel's own read dispatch left it
/// nothing to write in this pass (so the write pass was to pass it by): a `flush` arms it
/// again, and what is put after it goes out in the same write pass, as from its own
/// handler.
#[test]
fn a_put_after_a_flush_from_another_wheels_handler_goes_out_in_the_same_write_pass() {
    use reactor::wheel::ReadWrite;
    use std::io::Read;
    // Both handles are readable when their wheels are made: the poll reports them in the
    // order they were registered, so B's read dispatch comes first.
    let ((b_ours, b_peer), (a_ours, _a_peer)) = (pinged_pair(), pinged_pair());
    let sockets = RefCell::new(Some((b_ours, a_ours)));
    let b_seen = Rc::new(std::cell::Cell::new(false));
    let (b_seen2, b_seen3) = (Rc::clone(&b_seen), Rc::clone(&b_seen));
    let seen: Rc<RefCell<Vec<u8>>> = Rc::default();
    let seen2 = Rc::clone(&seen);
    let b_peer = RefCell::new(b_peer);
    type Heap = Vec<WheelHandle>;
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(Heap::new())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    let (b, a) = sockets.borrow_mut().take().ok_or("started twice")?;
                    let b = ReadWrite::builder(b).input_event("b_input").build(ctx)?;
                    let a = ReadWrite::builder(a).input_event("a_input").build(ctx)?;
                    ctx.heap().extend([b, a]);
                    Ok(())
                },
            )
            .on(
                "b_input",
                move |_: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    b_seen2.set(true);
                    Ok(())
                },
            )
            .on(
                "a_input",
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    if !b_seen3.get() {
                        return Err("B's read dispatch was to come first".into());
                    }
                    let b = ctx.heap()[0].id();
                    flush_then_put_pong(ctx, b)
                },
            )
            .on(
                "check",
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    let mut buf = [0u8; 16];
                    let n = b_peer.borrow_mut().read(&mut buf).unwrap_or(0);
                    seen2.borrow_mut().extend_from_slice(&buf[..n]);
                    ctx.heap().clear();
                    Ok(())
                },
            ),
    )
    .unwrap();
    k.run().unwrap();
    assert!(b_seen.get());
    assert_eq!(&*seen.borrow(), b"pong\r\n");
}
