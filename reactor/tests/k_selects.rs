//! Ports poe-test-loops' `lib/POE/Test/Loops/k_selects.pm`: five master/slave pairs chat
//! ping/pong over socket pairs with `select_read`/`select_write`, pausing and resuming
//! both directions; a session churns `select_read`/`select_write` add/remove on one
//! handle (the `_internal_select` regression); then `run()` is called a second time after
//! the first returned.
//!
//! POE's `POE::Pipe::TwoWay` is a socketpair whose ends are each read and written through
//! one handle; here each end is a `UnixStream` (non-blocking, as POE makes watched
//! handles). `POE::Pipe::OneWay` is `std::io::pipe()`. POE's `select_read(FH)` without
//! an event is `select_read_clear`, `select(FH)` is both clears, and `delay(NAME)` without
//! a time is `alarm_clear`.
//!
//! The kernels run on a [`ManualClock`], so the slaves' 0.5-second "resume" delays cost
//! no real time. Each kernel runs on its own thread under a watchdog, so a kernel that
//! stops dispatching I/O fails the test instead of hanging it.

use reactor::{Ctx, HandlerError, Kernel, ManualClock, Mode, Session};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

type R = Result<(), HandlerError>;
type Shared<T> = Rc<RefCell<T>>;

const PAIR_COUNT: usize = 5;
const CHAT_COUNT: u32 = 5;

fn manual_kernel() -> Kernel {
    Kernel::builder()
        .clock(ManualClock::new())
        .catch_exceptions(false)
        .build()
        .expect("kernel")
}

/// Runs `f` on its own thread and fails if it has not finished within 10 seconds.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let v = f();
        let _ = tx.send(());
        v
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the kernel hung (10 s watchdog)"),
    }
}

fn stream_pair() -> (Rc<UnixStream>, Rc<UnixStream>) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (Rc::new(a), Rc::new(b))
}

/// `sysread($handle, $buffer, 4)`, returning the bytes only when exactly 4 were read.
fn read4(s: &UnixStream) -> Option<[u8; 4]> {
    let mut buf = [0u8; 4];
    match (&*s).read(&mut buf) {
        Ok(4) => Some(buf),
        _ => None,
    }
}

/// `die $! unless syswrite(...) == length($message)`.
fn write_msg(s: &UnixStream, msg: &str) -> R {
    let n = (&*s).write(msg.as_bytes())?;
    if n != msg.len() {
        return Err(format!("short write of {msg}: {n}").into());
    }
    Ok(())
}

#[derive(Debug, PartialEq)]
enum Stopped {
    Master { index: usize, test_count: u32 },
    Slave { test_count: u32, resume_count: u32 },
}

// ------------------------------------------------------------------ master

#[derive(Default)]
struct Master {
    index: usize,
    stream: Option<Rc<UnixStream>>,
    test_count: u32,
    queue: VecDeque<&'static str>,
}

fn master_start(ctx: &mut Ctx<'_, Master>, log: &Shared<Vec<Stopped>>) -> R {
    let index = *ctx.arg::<usize>(0)?;
    ctx.heap().index = index;
    let (master, slave) = stream_pair();

    // Listen on the uplink_read side.
    ctx.select_read(&*master, "input", ())?;

    // Give the other side to a newly spawned session.
    let l = Rc::clone(log);
    ctx.create(
        Session::new(Slave::default())
            .on("_start", slave_start)
            .on("_stop", move |ctx| {
                let h = ctx.heap();
                l.borrow_mut().push(Stopped::Slave {
                    test_count: h.test_count,
                    resume_count: h.resume_count,
                });
            })
            .on("input", slave_got_input)
            .on("resume", slave_resume_read)
            .on("output", slave_put_output)
            .args((Rc::clone(&slave), slave)),
    )?;

    // Save some values for later.
    ctx.heap().stream = Some(Rc::clone(&master));
    ctx.heap().test_count = 0;
    ctx.heap().queue.clear();

    // Start the write thing.
    ctx.select_write(&*master, "output", ())?;
    Ok(())
}

fn master_got_input(ctx: &mut Ctx<'_, Master>) -> R {
    let s = ctx.heap().stream.clone().expect("stream");
    assert_eq!(*ctx.arg::<RawFd>(0)?, s.as_raw_fd(), "ARG0 is the handle");
    assert_eq!(*ctx.arg::<Mode>(1)?, Mode::Read);
    let Some(buffer) = read4(&s) else {
        ctx.select_read_clear(&*s)?;
        ctx.select_write_clear(&*s)?;
        return Ok(());
    };
    match &buffer {
        // The other session requested a quit. Shut down gracefully.
        b"quit" => {
            ctx.select_read_clear(&*s)?;
            ctx.select_write_clear(&*s)?;
        }
        // The other session sent a ping. Count it, and send a pong.
        b"ping" => {
            ctx.heap().test_count += 1;
            ctx.heap().queue.push_back("pong");
            ctx.select_resume_write(&*s)?;
        }
        _ => {}
    }
    Ok(())
}

fn master_put_output(ctx: &mut Ctx<'_, Master>) -> R {
    let s = ctx.heap().stream.clone().expect("stream");
    assert_eq!(*ctx.arg::<RawFd>(0)?, s.as_raw_fd(), "ARG0 is the handle");
    assert_eq!(*ctx.arg::<Mode>(1)?, Mode::Write);
    // If there is a message queued, write it; otherwise pause the write select.
    match ctx.heap().queue.pop_front() {
        Some(message) => write_msg(&s, message)?,
        None => {
            ctx.select_pause_write(&*s)?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ slave

#[derive(Default)]
struct Slave {
    read: Option<Rc<UnixStream>>,
    write: Option<Rc<UnixStream>>,
    test_count: u32,
    resume_count: u32,
    queue: VecDeque<&'static str>,
}

fn slave_start(ctx: &mut Ctx<'_, Slave>) -> R {
    let read = Rc::clone(ctx.arg::<Rc<UnixStream>>(0)?);
    let write = Rc::clone(ctx.arg::<Rc<UnixStream>>(1)?);

    // Select on our read handle.
    ctx.select_read(&*read, "input", ())?;

    // Remember some things.
    ctx.heap().read = Some(read);
    ctx.heap().write = Some(Rc::clone(&write));

    // Say hello to the master session.
    ctx.heap().queue.push_back("ping");
    ctx.select_write(&*write, "output", ())?;
    Ok(())
}

/// Resume reading after a brief delay.
fn slave_resume_read(ctx: &mut Ctx<'_, Slave>) -> R {
    let read = ctx.heap().read.clone().expect("read");
    ctx.select_resume_read(&*read)?;
    ctx.alarm_clear("error_resuming")?; // POE: delay(error_resuming => undef)
    ctx.heap().resume_count += 1;
    Ok(())
}

fn slave_got_input(ctx: &mut Ctx<'_, Slave>) -> R {
    let handle = ctx.heap().read.clone().expect("read");
    let write = ctx.heap().write.clone().expect("write");
    assert_eq!(
        *ctx.arg::<RawFd>(0)?,
        handle.as_raw_fd(),
        "ARG0 is the handle"
    );
    let Some(buffer) = read4(&handle) else {
        ctx.select_read_clear(&*handle)?;
        ctx.select_write_clear(&*write)?;
        return Ok(());
    };

    // The other session sent a pong.
    if &buffer == b"pong" {
        ctx.heap().test_count += 1;

        // Send another ping if we're not done.
        if ctx.heap().test_count < CHAT_COUNT {
            ctx.heap().queue.push_back("ping");
            ctx.select_resume_write(&*write)?;

            // Pause reading. Gets resumed after a delay.
            ctx.select_pause_read(&*handle)?;
            ctx.delay("resume", 0.5, ())?;
        }
        // Otherwise we're done. Send a quit, and quit ourselves.
        else {
            ctx.heap().queue.push_back("quit");
            ctx.select_read_clear(&*handle)?;
            ctx.select_resume_write(&*write)?;
        }
    }
    Ok(())
}

fn slave_put_output(ctx: &mut Ctx<'_, Slave>) -> R {
    let handle = ctx.heap().write.clone().expect("write");
    assert_eq!(
        *ctx.arg::<RawFd>(0)?,
        handle.as_raw_fd(),
        "ARG0 is the handle"
    );
    // If there is a message queued, write it.
    match ctx.heap().queue.pop_front() {
        Some(message) => {
            write_msg(&handle, message)?;
            // Kludge. We requested quit, so go ahead and quit.
            if message == "quit" {
                ctx.select_write_clear(&*handle)?;
            }
        }
        // Otherwise pause the write select.
        None => {
            ctx.select_pause_write(&*handle)?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ the test

#[test]
fn select_chat_pairs_churn_and_second_run() {
    let (stops, churn_stopped, count) = bounded(|| {
        let mut k = manual_kernel();
        let log: Shared<Vec<Stopped>> = Rc::default();

        // Spawn a group of master sessions.
        for index in 0..PAIR_COUNT {
            let (l1, l2) = (Rc::clone(&log), Rc::clone(&log));
            k.create(
                Session::new(Master::default())
                    .on("_start", move |ctx| master_start(ctx, &l1))
                    .on("_stop", move |ctx| {
                        let h = ctx.heap();
                        l2.borrow_mut().push(Stopped::Master {
                            index: h.index,
                            test_count: h.test_count,
                        });
                    })
                    .on("_child", |_ctx| {})
                    .on("input", master_got_input)
                    .on("output", master_put_output)
                    .args((index,)),
            )
            .unwrap();
        }

        // A quick and dirty session to test a bug found in _internal_select.
        let churn: Shared<bool> = Rc::default();
        let c = Rc::clone(&churn);
        k.create(
            Session::new(())
                .on("_start", |ctx| -> R {
                    let (r, _w) = std::io::pipe()?;
                    ctx.select_read(&r, "input", ())?;
                    ctx.select_write(&r, "output", ())?;
                    ctx.select_write_clear(&r)?;
                    ctx.select_write(&r, "output", ())?;
                    // select($r): every mode off.
                    ctx.select_read_clear(&r)?;
                    ctx.select_write_clear(&r)?;
                    Ok(())
                })
                .on("_stop", move |_ctx| *c.borrow_mut() = true),
        )
        .unwrap();

        // Now run them until they're done.
        k.run().expect("first run");
        let stops: Vec<Stopped> = std::mem::take(&mut *log.borrow_mut());
        let churn_stopped = *churn.borrow();

        // Try a re-entrant version.
        let count: Shared<Option<u32>> = Rc::default();
        let c = Rc::clone(&count);
        k.create(
            Session::new(0u32)
                .on("_start", |ctx| -> R {
                    *ctx.heap() = 0;
                    ctx.yield_("increment", ())?;
                    Ok(())
                })
                .on("increment", |ctx| -> R {
                    if *ctx.heap() < 10 {
                        ctx.yield_("increment", ())?;
                        *ctx.heap() += 1;
                    }
                    Ok(())
                })
                .on("_stop", move |ctx| *c.borrow_mut() = Some(*ctx.heap())),
        )
        .unwrap();

        // Verify that the main loop can run yet again.
        k.run().expect("second event loop run exited normally");
        let count = *count.borrow();
        (stops, churn_stopped, count)
    });

    // master: expected number of messages; slave: expected number of messages.
    let masters: Vec<_> = stops
        .iter()
        .filter(|s| matches!(s, Stopped::Master { .. }))
        .collect();
    let slaves: Vec<_> = stops
        .iter()
        .filter(|s| matches!(s, Stopped::Slave { .. }))
        .collect();
    assert_eq!(masters.len(), PAIR_COUNT, "every master stopped: {stops:?}");
    assert_eq!(slaves.len(), PAIR_COUNT, "every slave stopped: {stops:?}");
    let mut indexes = Vec::new();
    for s in &stops {
        match *s {
            Stopped::Master { index, test_count } => {
                assert_eq!(
                    test_count, CHAT_COUNT,
                    "master {index}: expected number of messages"
                );
                indexes.push(index);
            }
            Stopped::Slave {
                test_count,
                resume_count,
            } => {
                assert_eq!(test_count, CHAT_COUNT, "slave: expected number of messages");
                // Not asserted upstream: each of the first CHAT_COUNT - 1 pongs paused
                // reading until the "resume" delay.
                assert_eq!(
                    resume_count,
                    CHAT_COUNT - 1,
                    "slave: resumed after each pause"
                );
            }
        }
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..PAIR_COUNT).collect::<Vec<_>>());
    assert!(churn_stopped, "the select churn session stopped");
    assert_eq!(count, Some(10), "re-entered event loop ran");
}

// ------------------------------------------------------------------ pause semantics

/// Not upstream: on the virtual clock the slaves' resume delay comes due before the pong
/// arrives, so the chat above never has data waiting on a paused watcher. This checks that
/// directly: data that arrives while a read watcher is paused is held (for several
/// timeslices) and delivered once it is resumed; a paused write watcher does not fire on a
/// writable socket until it is resumed.
#[test]
fn paused_watchers_hold_until_resumed() {
    let trace = bounded(|| {
        let mut k = manual_kernel();
        let trace: Shared<Vec<String>> = Rc::default();
        let (t1, t2, t3) = (Rc::clone(&trace), Rc::clone(&trace), Rc::clone(&trace));
        struct H {
            a: Rc<UnixStream>,
            b: Rc<UnixStream>,
            ticks: u32,
        }
        let (a, b) = stream_pair();
        k.create(
            Session::new(H { a, b, ticks: 0 })
                .on("_start", |ctx| -> R {
                    let (a, b) = (Rc::clone(&ctx.heap().a), Rc::clone(&ctx.heap().b));
                    ctx.select_read(&*a, "input", ())?;
                    assert!(ctx.select_pause_read(&*a)?);
                    ctx.select_write(&*b, "output", ())?;
                    assert!(ctx.select_pause_write(&*b)?);
                    write_msg(&b, "data")?;
                    ctx.yield_("tick", ())?;
                    Ok(())
                })
                .on("tick", move |ctx| -> R {
                    ctx.heap().ticks += 1;
                    let n = ctx.heap().ticks;
                    t1.borrow_mut().push(format!("tick {n}"));
                    let (a, b) = (Rc::clone(&ctx.heap().a), Rc::clone(&ctx.heap().b));
                    match n {
                        5 => {
                            assert!(ctx.select_resume_read(&*a)?);
                            ctx.yield_("tick", ())?;
                        }
                        10 => {
                            assert!(ctx.select_resume_write(&*b)?);
                        }
                        _ => ctx.yield_("tick", ())?,
                    }
                    Ok(())
                })
                .on("input", move |ctx| -> R {
                    let a = Rc::clone(&ctx.heap().a);
                    let got = read4(&a);
                    t2.borrow_mut().push(format!(
                        "input {}",
                        got.map_or("-".into(), |b| String::from_utf8_lossy(&b).into_owned())
                    ));
                    ctx.select_read_clear(&*a)?;
                    Ok(())
                })
                .on("output", move |ctx| -> R {
                    t3.borrow_mut().push("output".into());
                    let b = Rc::clone(&ctx.heap().b);
                    ctx.select_write_clear(&*b)?;
                    Ok(())
                }),
        )
        .unwrap();
        k.run().unwrap();
        let v = trace.borrow().clone();
        v
    });
    let want: Vec<String> = [
        "tick 1",
        "tick 2",
        "tick 3",
        "tick 4",
        "tick 5",
        "input data",
        "tick 6",
        "tick 7",
        "tick 8",
        "tick 9",
        "tick 10",
        "output",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(trace, want);
}
