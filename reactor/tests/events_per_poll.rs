//! `KernelBuilder::events_per_poll`: how many ready handles one poll takes in. Three pipes
//! are readable before the kernel runs; each read handler stops watching its pipe and
//! yields `after`. When all three fit in one poll, their handlers all run before the
//! yielded events, as under POE's select loop; with room for one, each poll's handler is
//! followed by its own `after` before the next poll takes the next handle.

use mio::unix::pipe::Receiver;
use reactor::{Ctx, HandlerError, Kernel, Session};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

fn run(events_per_poll: usize) -> Vec<String> {
    let log: Log = Rc::default();
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..3 {
        let (r, mut w) = reactor::pipe::one_way().expect("pipe");
        w.write_all(b"x").expect("write");
        readers.push(Some(r));
        writers.push(w);
    }
    let mut kernel = Kernel::builder()
        .events_per_poll(events_per_poll)
        .build()
        .expect("kernel");
    let mut session = Session::new(readers).on(
        "_start",
        |ctx: &mut Ctx<'_, Vec<Option<Receiver>>>| -> Result<(), HandlerError> {
            for i in 0..3 {
                let r = ctx.heap()[i].take().ok_or("no reader")?;
                ctx.select_read(&r, format!("rd{i}").as_str(), ())?;
                ctx.heap()[i] = Some(r);
            }
            Ok(())
        },
    );
    for i in 0..3 {
        let l = Rc::clone(&log);
        session = session.on(
            format!("rd{i}").as_str(),
            move |ctx: &mut Ctx<'_, Vec<Option<Receiver>>>| -> Result<(), HandlerError> {
                l.borrow_mut().push(format!("rd{i}"));
                let mut r = ctx.heap()[i].take().ok_or("read twice")?;
                let mut byte = [0u8; 1];
                r.read_exact(&mut byte)?;
                ctx.select_read_clear(&r)?;
                ctx.yield_("after", i)?;
                Ok(())
            },
        );
    }
    let l = Rc::clone(&log);
    session = session.on(
        "after",
        move |ctx: &mut Ctx<'_, Vec<Option<Receiver>>>| -> Result<(), HandlerError> {
            let i = *ctx.arg::<usize>(0)?;
            l.borrow_mut().push(format!("after{i}"));
            Ok(())
        },
    );
    kernel.create(session).expect("session");
    kernel.run().expect("run");
    drop(writers);
    let out = log.borrow().clone();
    out
}

/// Runs with room for `events_per_poll` events and checks each line's kind against
/// `want`: which of the ready handles one poll serves first is the poller's choice, not the
/// program's, so only the kinds are compared.
fn run_expecting(events_per_poll: usize, want: [&str; 6]) -> Vec<String> {
    let lines = run(events_per_poll);
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| if l.starts_with("rd") { "rd" } else { "after" })
        .collect();
    assert_eq!(kinds, want, "{lines:?}");
    lines
}

const ONE_POLL: [&str; 6] = ["rd", "rd", "rd", "after", "after", "after"];
const ONE_BY_ONE: [&str; 6] = ["rd", "after", "rd", "after", "rd", "after"];

#[test]
fn all_ready_handles_in_one_poll_run_before_the_events_they_yield() {
    run_expecting(64, ONE_POLL);
}

#[test]
fn with_room_for_one_event_each_poll_serves_one_handle() {
    let lines = run_expecting(1, ONE_BY_ONE);
    // Each `after` follows its own handle's read.
    for pair in lines.chunks(2) {
        assert_eq!(pair[0][2..], pair[1][5..], "{lines:?}");
    }
}

#[test]
fn zero_is_taken_as_one() {
    run_expecting(0, ONE_BY_ONE);
}
