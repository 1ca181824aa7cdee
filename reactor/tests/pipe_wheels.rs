//! `POE::Pipe::OneWay`/`TwoWay` ends under `ReadWrite` wheels, and a wheel's filters
//! reached through `input_filter`/`output_filter`.
//!
//! - Two sessions talk over two one-way pipes, each wheel built on the read end of one and
//!   the write end of the other (POE's `InputHandle`/`OutputHandle`), and over a two-way
//!   conduit, one duplex handle a side (POE's `Handle`).
//! - After end-of-file, the input filter still holds the unterminated tail, which POE
//!   programs fetch with `$wheel->input_filter->get_pending`.
//! - A `Grep` input filter is changed in place through `input_filter_mut`, as POE's
//!   `$wheel->input_filter->modify(...)` does.

mod common;

use reactor::filter::{Grep, Line, Stackable};
use reactor::pipe;
use reactor::wheel::WheelError;
use reactor::wheel::{ReadWrite, RwEvent};
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle};
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

type R = Result<(), HandlerError>;
type Log = Rc<RefCell<Vec<String>>>;

/// The descriptor check needs the process to itself: the tests of this file run one at a
/// time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn text<H: 'static>(ctx: &Ctx<'_, H>) -> Result<String, HandlerError> {
    Ok(String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?)
}

fn put<H: 'static>(ctx: &mut Ctx<'_, H>, w: &WheelHandle, line: &str) -> R {
    ctx.wheel_mut::<ReadWrite>(w.id())
        .ok_or("wheel gone")?
        .put_one(line.as_bytes().to_vec())?;
    Ok(())
}

/// A session that builds its wheel from `make` at `_start`, says `hello` if it `leads`,
/// and answers each line it reads with that line plus one more "!", until a line is 3
/// long; then it drops the wheel (its side closes) and the other side sees end-of-file.
fn talker(
    kernel: &mut Kernel,
    name: &'static str,
    leads: bool,
    make: impl FnOnce() -> reactor::wheel::ReadWriteBuilder + 'static,
    log: &Log,
) {
    let make = RefCell::new(Some(make));
    let (l1, l2) = (Rc::clone(log), Rc::clone(log));
    kernel
        .create(
            Session::new(None::<WheelHandle>)
                .on(
                    "_start",
                    move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                        let b = make.borrow_mut().take().ok_or("started twice")?();
                        let w = b
                            .filter(Line::new())
                            .input_event("line")
                            .error_event("error")
                            .build(ctx)?;
                        if leads {
                            put(ctx, &w, "!")?;
                        }
                        *ctx.heap() = Some(w);
                        Ok(())
                    },
                )
                .on("line", move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                    let line = text(ctx)?;
                    l1.borrow_mut().push(format!("{name} got {line}"));
                    if line.len() >= 3 {
                        *ctx.heap() = None;
                        return Ok(());
                    }
                    let w = ctx.heap().take().ok_or("no wheel")?;
                    put(ctx, &w, &format!("{line}!"))?;
                    *ctx.heap() = Some(w);
                    Ok(())
                })
                .on(
                    "error",
                    move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                        let (op, errno) = (
                            ctx.arg::<WheelError>(0)?.operation.to_owned(),
                            ctx.arg::<WheelError>(0)?.errno,
                        );
                        l2.borrow_mut().push(format!("{name} {op} error {errno}"));
                        *ctx.heap() = None;
                        Ok(())
                    },
                ),
        )
        .expect("session");
}

#[test]
fn two_one_way_pipes_carry_a_conversation() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _guard = common::timeout(10, "two_one_way_pipes_carry_a_conversation");
    let fds = common::open_fds();
    {
        let (a_rx, b_tx) = pipe::one_way().unwrap();
        let (b_rx, a_tx) = pipe::one_way().unwrap();
        let log: Log = Rc::default();
        let mut k = Kernel::new().unwrap();
        talker(
            &mut k,
            "a",
            true,
            move || ReadWrite::split(a_rx, a_tx),
            &log,
        );
        talker(
            &mut k,
            "b",
            false,
            move || ReadWrite::split(b_rx, b_tx),
            &log,
        );
        k.run().unwrap();
        assert_eq!(
            *log.borrow(),
            ["b got !", "a got !!", "b got !!!", "a read error 0"]
        );
    }
    common::assert_no_new_fds(&fds);
}

#[test]
fn a_two_way_conduit_carries_a_conversation() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _guard = common::timeout(10, "a_two_way_conduit_carries_a_conversation");
    for inet in [false, true] {
        let log: Log = Rc::default();
        let mut k = Kernel::new().unwrap();
        if inet {
            let (a, b) = pipe::two_way_inet().unwrap();
            talker(&mut k, "a", true, move || ReadWrite::builder(a), &log);
            talker(&mut k, "b", false, move || ReadWrite::builder(b), &log);
        } else {
            let (a, b) = pipe::two_way().unwrap();
            talker(&mut k, "a", true, move || ReadWrite::builder(a), &log);
            talker(&mut k, "b", false, move || ReadWrite::builder(b), &log);
        }
        k.run().unwrap();
        assert_eq!(
            *log.borrow(),
            ["b got !", "a got !!", "b got !!!", "a read error 0"],
            "inet: {inet}"
        );
    }
}

#[test]
fn the_input_filter_keeps_the_unterminated_tail_after_eof() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _guard = common::timeout(10, "the_input_filter_keeps_the_unterminated_tail_after_eof");
    let (rx, mut tx) = pipe::one_way().unwrap();
    let (_unused_rx, out) = pipe::one_way().unwrap();
    tx.write_all(b"whole\npartial").unwrap();
    drop(tx);
    let log: Log = Rc::default();
    let (l1, l2) = (Rc::clone(&log), Rc::clone(&log));
    let ends = RefCell::new(Some((rx, out)));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(None::<WheelHandle>)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                    let (rx, out) = ends.borrow_mut().take().ok_or("twice")?;
                    let w = ReadWrite::split(rx, out)
                        .input_event("line")
                        .error_event("error")
                        .build(ctx)?;
                    *ctx.heap() = Some(w);
                    Ok(())
                },
            )
            .on("line", move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                let line = text(ctx)?;
                l1.borrow_mut().push(format!("line {line}"));
                Ok(())
            })
            .on(
                "error",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                    let w = ctx.heap().take().ok_or("no wheel")?;
                    let wheel = ctx.wheel_mut::<ReadWrite>(w.id()).ok_or("gone")?;
                    let filter = wheel.input_filter();
                    let pending = filter.get_pending().unwrap_or_default().concat();
                    let same = wheel.output_filter().filter_type();
                    l2.borrow_mut().push(format!(
                        "eof, pending {:?}, filters {} {}",
                        String::from_utf8_lossy(&pending),
                        filter.filter_type(),
                        same
                    ));
                    Ok(())
                },
            ),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(
        *log.borrow(),
        ["line whole", "eof, pending \"partial\", filters Line Line"]
    );
}

#[test]
fn a_grep_input_filter_is_modified_in_place() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _guard = common::timeout(10, "a_grep_input_filter_is_modified_in_place");
    let (rx, mut tx) = pipe::one_way().unwrap();
    let (_unused_rx, out) = pipe::one_way().unwrap();
    // Two batches: the filter changes between them, on the "switch" line.
    tx.write_all(b"a1\nb1\nswitch\n").unwrap();
    let tx = RefCell::new(Some(tx));
    let log: Log = Rc::default();
    let l = Rc::clone(&log);
    let ends = RefCell::new(Some((rx, out)));
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(None::<WheelHandle>)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                    let (rx, out) = ends.borrow_mut().take().ok_or("twice")?;
                    // Lines, then a Grep that keeps the lines not starting with "b".
                    let stack = Stackable::new(vec![
                        Box::new(Line::new()),
                        Box::new(Grep::new(|l: &Vec<u8>| !l.starts_with(b"b"))),
                    ]);
                    let w = ReadWrite::split(rx, out)
                        .filter(stack)
                        .input_event("line")
                        .event(RwEvent::Error, "error")
                        .build(ctx)?;
                    *ctx.heap() = Some(w);
                    Ok(())
                },
            )
            .on("line", move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                let line = text(ctx)?;
                l.borrow_mut().push(line.clone());
                if line == "switch" {
                    let id = ctx.heap().as_ref().ok_or("no wheel")?.id();
                    let wheel = ctx.wheel_mut::<ReadWrite>(id).ok_or("gone")?;
                    let stack = wheel
                        .input_filter_mut()
                        .downcast_mut::<Stackable<Vec<u8>>>()
                        .ok_or("not a Stackable")?;
                    let grep = stack.filters_mut()[1]
                        .downcast_mut::<Grep<Vec<u8>>>()
                        .ok_or("no Grep")?;
                    grep.modify_get(|l: &Vec<u8>| !l.starts_with(b"a"));
                    if let Some(mut tx) = tx.borrow_mut().take() {
                        tx.write_all(b"a2\nb2\n")?;
                    }
                }
                Ok(())
            })
            .on("error", |ctx: &mut Ctx<'_, Option<WheelHandle>>| {
                *ctx.heap() = None;
            }),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(*log.borrow(), ["a1", "switch", "b2"]);
}
