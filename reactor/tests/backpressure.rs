//! `ReadWriteBuilder::backpressure`: a peer that sends and never reads costs at most about
//! the high mark of output; its input waits in the socket until the output drains to the
//! low mark; and once it reads, every answer arrives, none lost.
//!
//! The peer is the test itself, on the other end of a socket pair, writing and reading
//! without blocking between timeslices; the kernel runs on a manual clock with a ticking
//! timer, so a timeslice never waits for the network.

mod common;

use mio::net::UnixStream;
use reactor::filter::Line;
use reactor::wheel::ReadWrite;
use reactor::{Ctx, HandlerError, Kernel, ManualClock, Session, WheelHandle};
use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Write};
use std::rc::Rc;

/// A peer that never reads: its end, the rest of a line it is sending, the server's wheel.
type Hog = (UnixStream, Vec<u8>, Rc<RefCell<Option<WheelHandle>>>);

const HIGH: usize = 64 * 1024;
const LOW: usize = 16 * 1024;
const LINE: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";

#[derive(Default)]
struct Seen {
    lines_in: Cell<usize>,
    most_out: Cell<usize>,
    held_back: Cell<bool>,
}

fn echo(
    kernel: &mut Kernel,
    end: UnixStream,
    seen: &Rc<Seen>,
    own_marks: bool,
) -> Rc<RefCell<Option<WheelHandle>>> {
    let wheel: Rc<RefCell<Option<WheelHandle>>> = Rc::default();
    let (w1, w2, s) = (Rc::clone(&wheel), Rc::clone(&wheel), Rc::clone(seen));
    let end = RefCell::new(Some(end));
    kernel
        .create(
            Session::new(())
                .on(
                    "_start",
                    move |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                        let end = end.borrow_mut().take().ok_or("twice")?;
                        let mut b = ReadWrite::builder(end)
                            .filter(Line::builder().literal("\n").build()?)
                            .input_event("line")
                            .error_event("error");
                        if own_marks {
                            b = b.backpressure(HIGH, LOW);
                        }
                        let w = b.build(ctx)?;
                        *w1.borrow_mut() = Some(w);
                        ctx.delay("tick", 0.001, ())?;
                        Ok(())
                    },
                )
                .on(
                    "tick",
                    |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                        ctx.delay("tick", 0.001, ())?;
                        Ok(())
                    },
                )
                .on(
                    "line",
                    move |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                        let line = ctx.take_arg::<Vec<u8>>(0)?;
                        let id = w2.borrow().as_ref().ok_or("no wheel")?.id();
                        let w = ctx.wheel_mut::<ReadWrite>(id).ok_or("gone")?;
                        w.put_one(line)?;
                        s.lines_in.set(s.lines_in.get() + 1);
                        s.most_out.set(s.most_out.get().max(w.driver_out_octets()));
                        s.held_back.set(s.held_back.get() || w.is_held_back());
                        Ok(())
                    },
                )
                .on("error", |_: &mut Ctx<'_, ()>| {}),
        )
        .expect("session");
    wheel
}

/// Writes whole lines to `peer` until it would block; returns how many.
fn send_until_full(peer: &mut UnixStream, pending: &mut Vec<u8>) -> usize {
    let mut lines = 0;
    for _ in 0..100_000 {
        if pending.is_empty() {
            pending.extend_from_slice(LINE);
            lines += 1;
        }
        match peer.write(pending) {
            Ok(n) => {
                pending.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return lines,
            Err(e) => panic!("peer write: {e}"),
        }
    }
    panic!("the socket never filled")
}

/// Reads what `peer` has, counting newlines.
fn read_available(peer: &mut UnixStream) -> usize {
    let mut got = Vec::new();
    common::read_available(peer, &mut got);
    got.iter().filter(|&&b| b == b'\n').count()
}

#[test]
fn a_peer_that_never_reads_costs_at_most_the_high_mark() {
    let _guard = common::timeout(10, "backpressure");
    let clock = ManualClock::new();
    clock.set_auto_advance(true);
    let mut k = Kernel::builder().clock(clock).build().unwrap();
    let (server_end, mut peer) = UnixStream::pair().unwrap();
    let seen = Rc::new(Seen::default());
    let wheel = echo(&mut k, server_end, &seen, true);

    // The peer sends without reading until the server holds its input back.
    let mut pending = Vec::new();
    let mut sent = 0;
    for _ in 0..100_000 {
        if seen.held_back.get() {
            break;
        }
        sent += send_until_full(&mut peer, &mut pending);
        assert!(k.run_one_timeslice().unwrap());
    }
    assert!(seen.held_back.get(), "input never held back");
    // Output stops near the high mark: at most one read's worth of answers past it.
    assert!(seen.most_out.get() >= HIGH);
    assert!(
        seen.most_out.get() <= HIGH + 65536 + LINE.len(),
        "output grew to {} octets",
        seen.most_out.get()
    );
    // While held back, the server reads nothing more, however long it runs.
    let lines_then = seen.lines_in.get();
    for _ in 0..200 {
        sent += send_until_full(&mut peer, &mut pending);
        assert!(k.run_one_timeslice().unwrap());
    }
    assert_eq!(
        seen.lines_in.get(),
        lines_then,
        "input read while held back"
    );
    assert!(seen.most_out.get() <= HIGH + 65536 + LINE.len());

    // The peer reads: every line comes back, and the server reads the rest.
    let mut got = 0;
    for _ in 0..1_000_000 {
        if pending.is_empty() {
            break;
        }
        match peer.write(&pending) {
            Ok(n) => {
                pending.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => read_back(&mut k, &mut peer, &mut got),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(pending.is_empty(), "the last line never left");
    let sent_total = sent;
    for _ in 0..1_000_000 {
        if got >= sent_total {
            break;
        }
        read_back(&mut k, &mut peer, &mut got);
    }
    assert_eq!(got, sent_total, "answers lost");
    assert_eq!(seen.lines_in.get(), sent_total);
    drop(wheel.borrow_mut().take());
}

fn read_back(k: &mut Kernel, peer: &mut UnixStream, got: &mut usize) {
    *got += read_available(peer);
    assert!(k.run_one_timeslice().unwrap());
}

/// `KernelBuilder::output_budget`: two peers that never read hold the kernel's budget, so
/// both are held back, while a third that reads its answers is still served.
#[test]
fn the_kernel_budget_holds_back_the_wheels_that_hold_output() {
    const BUDGET: usize = 128 * 1024;
    let _guard = common::timeout(10, "budget");
    let clock = ManualClock::new();
    clock.set_auto_advance(true);
    let mut k = Kernel::builder()
        .clock(clock)
        .output_budget(BUDGET)
        .build()
        .unwrap();
    let budget = k.output_budget().expect("a budget");
    let mut hogs = Vec::new();
    let mut seens = Vec::new();
    for _ in 0..2 {
        let (server_end, peer) = UnixStream::pair().unwrap();
        let seen = Rc::new(Seen::default());
        let w = echo(&mut k, server_end, &seen, false);
        hogs.push((peer, Vec::new(), w));
        seens.push(seen);
    }
    let (server_end, mut good) = UnixStream::pair().unwrap();
    let good_seen = Rc::new(Seen::default());
    let _good_wheel = echo(&mut k, server_end, &good_seen, false);

    // The hogs send without reading until both are held back.
    let held = |k: &Kernel, hogs: &[Hog]| {
        hogs.iter().all(|(_, _, w)| {
            let id = w.borrow().as_ref().expect("wheel").id();
            k.wheel_ref::<ReadWrite>(id)
                .is_some_and(ReadWrite::is_held_back)
        })
    };
    for _ in 0..100_000 {
        if held(&k, &hogs) {
            break;
        }
        for (peer, pending, _) in &mut hogs {
            send_until_full(peer, pending);
        }
        assert!(k.run_one_timeslice().unwrap());
    }
    assert!(held(&k, &hogs), "not held back");
    assert!(seens.iter().all(|s| s.lines_in.get() > 0));
    assert!(budget.over());
    // What they hold together: the budget, plus at most one read's answers each.
    assert!(
        budget.used() <= BUDGET + 2 * (65536 + LINE.len()),
        "{} bytes held",
        budget.used()
    );
    // The reader is served meanwhile: it holds nothing, so it is not held back.
    let mut answered = 0;
    for i in 0..20 {
        good.write_all(LINE).unwrap();
        for _ in 0..1000 {
            answered += read_available(&mut good);
            if answered > i {
                break;
            }
            assert!(k.run_one_timeslice().unwrap());
        }
    }
    assert_eq!(answered, 20, "the reading client was not served");
    // Dropping the hogs' wheels gives their share back.
    for (_, _, w) in &hogs {
        drop(w.borrow_mut().take());
    }
    assert!(k.run_one_timeslice().unwrap());
    assert_eq!(budget.used(), 0);
}
