//! Where I/O and events meet, the order is POE's: each scenario runs as a Perl POE 1.370
//! program (`tests/perl/order_*.pl`, run live) and as its port here, and both must print the
//! same lines. Without Perl POE (`libpoe-perl`, installed by `.ci/run`) these tests fail,
//! they do not skip.
//!
//! - `select_yield`: an event yielded by a `select_read` handler runs in the same
//!   timeslice as the handler, before the next poll's I/O (POE reads the clock after I/O).
//! - `put_flushed`: a `ReadWrite` writes when the poll after the `put` reports the handle
//!   writable, and calls `FlushedEvent` there; the peer session in the same process reads
//!   the record only in the timeslice after that.
//! - `put_from_input`: output put by an input handler is written after the next poll,
//!   so events the handler yielded run before the peer sees the record.
//!
//! A last test pins what the opt-in `KernelBuilder::early_writes` changes.

mod common;

use mio::net::UnixStream;
use mio::unix::pipe::{Receiver, Sender};
use reactor::filter::Line;
use reactor::wheel::ReadWrite;
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle};
use std::cell::RefCell;
use std::io::Write;
use std::process::Command;
use std::rc::Rc;

type R = Result<(), HandlerError>;
type Log = Rc<RefCell<Vec<String>>>;

const PERL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/perl");

/// What the Perl program `name` prints, one entry a line.
fn perl_lines(name: &str) -> Vec<String> {
    let script = format!("{PERL_DIR}/{name}.pl");
    let out = Command::new("perl")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("running perl {script}: {e}"));
    assert!(
        out.status.success(),
        "perl {script} failed (is libpoe-perl installed? .ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn say(log: &Log, line: &str) {
    log.borrow_mut().push(line.to_owned());
}

/// Runs `build` on a fresh kernel under the watchdog and returns what it logged.
fn port_lines(build: fn(&mut Kernel, Log)) -> Vec<String> {
    port_lines_on(Kernel::new().expect("kernel"), build)
}

fn port_lines_on(mut kernel: Kernel, build: fn(&mut Kernel, Log)) -> Vec<String> {
    let _guard = common::timeout(10, "order_perl");
    let log: Log = Rc::default();
    build(&mut kernel, Rc::clone(&log));
    kernel.run().expect("run");
    let lines = log.borrow().clone();
    lines
}

fn compare(name: &str, build: fn(&mut Kernel, Log)) {
    let want = perl_lines(name);
    assert!(!want.is_empty(), "perl {name} printed nothing");
    let got = port_lines(build);
    assert_eq!(got, want, "{name}: ours (left) against POE 1.370 (right)");
}

// ----------------------------------------------------------------------- select + yield

#[derive(Default)]
struct Pipes {
    r1: Option<Receiver>,
    r2: Option<Receiver>,
    w2: Option<Sender>,
}

fn select_yield(kernel: &mut Kernel, log: Log) {
    let (r1, mut w1) = reactor::pipe::one_way().expect("pipe");
    let (r2, w2) = reactor::pipe::one_way().expect("pipe");
    w1.write_all(b"a").unwrap();
    let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log);
    kernel
        .create(
            Session::new(Pipes {
                r1: Some(r1),
                r2: Some(r2),
                w2: Some(w2),
            })
            .on("_start", |ctx: &mut Ctx<'_, Pipes>| -> R {
                let r1 = ctx.heap().r1.take().expect("r1");
                ctx.select_read(&r1, "rd", ())?;
                ctx.heap().r1 = Some(r1);
                ctx.yield_("tick", ())?;
                Ok(())
            })
            .on("tick", move |_: &mut Ctx<'_, Pipes>| say(&l1, "tick"))
            .on("rd", move |ctx: &mut Ctx<'_, Pipes>| -> R {
                say(&l2, "rd");
                let r1 = ctx.heap().r1.take().expect("r1");
                ctx.select_read_clear(&r1)?;
                ctx.heap().w2.as_mut().expect("w2").write_all(b"b")?;
                let r2 = ctx.heap().r2.take().expect("r2");
                ctx.select_read(&r2, "rd2", ())?;
                ctx.heap().r2 = Some(r2);
                ctx.yield_("after", ())?;
                Ok(())
            })
            .on("rd2", move |ctx: &mut Ctx<'_, Pipes>| -> R {
                say(&l3, "rd2");
                let r2 = ctx.heap().r2.take().expect("r2");
                ctx.select_read_clear(&r2)?;
                Ok(())
            })
            .on("after", move |_: &mut Ctx<'_, Pipes>| say(&l4, "after")),
        )
        .expect("session");
}

#[test]
fn select_handler_yield_runs_in_the_same_timeslice() {
    compare("order_select_yield", select_yield);
}

// ----------------------------------------------------------------------- put + flushed

/// Session S's handlers both put scenarios share: `after` logs and posts `note` to T;
/// `flushed` logs and drops the wheel.
fn with_after_and_flushed(s: Session<Wheel>, log: &Log) -> Session<Wheel> {
    let (l1, l2) = (log.clone(), log.clone());
    s.on("after", move |ctx: &mut Ctx<'_, Wheel>| -> R {
        say(&l1, "S after");
        ctx.post("T", "note", ())?;
        Ok(())
    })
    .on("flushed", move |ctx: &mut Ctx<'_, Wheel>| {
        say(&l2, "S flushed");
        *ctx.heap() = None;
    })
}

type Wheel = Option<WheelHandle>;

fn line_wheel(ctx: &mut Ctx<'_, Wheel>, s: UnixStream, flushed: bool) -> R {
    let mut b = ReadWrite::builder(s).filter(Line::new()).input_event("in");
    if flushed {
        b = b.flushed_event("flushed");
    }
    let w = b.build(ctx)?;
    *ctx.heap() = Some(w);
    Ok(())
}

fn put(ctx: &mut Ctx<'_, Wheel>, rec: &str) -> R {
    let id = ctx.heap().as_ref().expect("wheel").id();
    ctx.wheel_mut::<ReadWrite>(id)
        .expect("wheel")
        .put_one(rec.as_bytes().to_vec())?;
    Ok(())
}

/// Session T (alias "T") on `b`: prints what it reads and the `note` it is posted.
fn peer_t(kernel: &mut Kernel, b: UnixStream, log: &Log) {
    let (l1, l2) = (log.clone(), log.clone());
    let cell = RefCell::new(Some(b));
    kernel
        .create(
            Session::new(None::<WheelHandle>)
                .on("_start", move |ctx: &mut Ctx<'_, Wheel>| -> R {
                    ctx.alias_set("T")?;
                    line_wheel(ctx, cell.borrow_mut().take().expect("once"), false)
                })
                .on("in", move |ctx: &mut Ctx<'_, Wheel>| -> R {
                    let line = String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?;
                    say(&l1, &format!("T in {line}"));
                    *ctx.heap() = None;
                    ctx.alias_remove("T")?;
                    Ok(())
                })
                .on("note", move |_: &mut Ctx<'_, Wheel>| say(&l2, "T note")),
        )
        .expect("session T");
}

fn put_flushed(kernel: &mut Kernel, log: Log) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    peer_t(kernel, b, &log);
    let l1 = log.clone();
    let cell = RefCell::new(Some(a));
    kernel
        .create(with_after_and_flushed(
            Session::new(None::<WheelHandle>)
                .on("_start", move |ctx: &mut Ctx<'_, Wheel>| -> R {
                    line_wheel(ctx, cell.borrow_mut().take().expect("once"), true)?;
                    ctx.yield_("go", ())?;
                    Ok(())
                })
                .on("go", move |ctx: &mut Ctx<'_, Wheel>| -> R {
                    say(&l1, "S in go");
                    put(ctx, "x")?;
                    ctx.yield_("after", ())?;
                    Ok(())
                })
                .on("in", |_: &mut Ctx<'_, Wheel>| {}),
            &log,
        ))
        .expect("session S");
}

#[test]
fn put_is_written_and_flushed_after_the_next_poll() {
    compare("order_put_flushed", put_flushed);
}

// ----------------------------------------------------------------------- put from input

fn put_from_input(kernel: &mut Kernel, log: Log) {
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    b.write_all(b"go\n").unwrap();
    peer_t(kernel, b, &log);
    let l1 = log.clone();
    let cell = RefCell::new(Some(a));
    kernel
        .create(with_after_and_flushed(
            Session::new(None::<WheelHandle>)
                .on("_start", move |ctx: &mut Ctx<'_, Wheel>| -> R {
                    line_wheel(ctx, cell.borrow_mut().take().expect("once"), true)
                })
                .on("in", move |ctx: &mut Ctx<'_, Wheel>| -> R {
                    let line = String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?;
                    say(&l1, &format!("S in {line}"));
                    put(ctx, "x")?;
                    ctx.yield_("after", ())?;
                    Ok(())
                }),
            &log,
        ))
        .expect("session S");
}

#[test]
fn put_from_an_input_handler_is_written_after_the_next_poll() {
    compare("order_put_from_input", put_from_input);
}

/// The opt-in difference, as documented on `KernelBuilder::early_writes`: the answer leaves
/// in the I/O phase of the read, so `FlushedEvent` comes before the events the input
/// handler posted. (The peer here reads it in the next timeslice either way, after the
/// events already due.)
#[test]
fn early_writes_flush_in_the_io_phase_of_the_read() {
    let kernel = Kernel::builder()
        .early_writes(true)
        .build()
        .expect("kernel");
    assert_eq!(
        port_lines_on(kernel, put_from_input),
        ["S in go", "S flushed", "S after", "T in x", "T note"]
    );
}
