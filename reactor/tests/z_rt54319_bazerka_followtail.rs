//! Port of poe-test-loops `z_rt54319_bazerka_followtail.pm` (rt.cpan.org #54319): a
//! FollowTail that polls a log half as often as it is written must still deliver every
//! line within three write periods of its writing.
//!
//! One session appends "N TIME" lines to a temporary file every `TIME_BETWEEN_WRITES`;
//! another follows the file by name with a `PollInterval` of twice that, and checks each
//! line's age when it arrives. As upstream: six lines, six checks, a long timeout that
//! drops the tail if lines stop coming.
//!
//! Differences: upstream writes every 0.5 s; here every 0.2 s, so the test takes about
//! 1.5 s (the ratios, and so what is tested, are upstream's). Upstream's `File::Temp` is a
//! unique file under the temporary directory, removed at the end. Line ages are measured
//! on the kernel's clock ([`Kernel::time`](reactor::Kernel::time)), as upstream's
//! `Time::HiRes::time`.

mod common;
use common::timeout;
use reactor::wheel::FollowTail;
use reactor::{epoch_secs, Ctx, HandlerError, Kernel, Session, WheelHandle};
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

const TESTS: u32 = 6;
const TIME_BETWEEN_WRITES: f64 = 0.2;

type R = Result<(), HandlerError>;

#[test]
fn every_line_arrives_within_three_write_periods() {
    let _guard = timeout(20, "z_rt54319_bazerka_followtail");
    let fds = common::open_fds();
    let path = std::env::temp_dir().join(format!(
        "reactor-rt54319-{}-followtail.log",
        std::process::id()
    ));
    let write_fh = std::fs::File::create(&path).expect("create the log");
    // (line number, elapsed seconds) for each line read.
    let seen: Rc<RefCell<Vec<(u32, f64)>>> = Rc::default();
    {
        let mut k = Kernel::new().unwrap();

        // Write to the log 2x as fast as it's polled.
        k.create(
            Session::new((write_fh, 0u32))
                .on("_start", |ctx: &mut Ctx<'_, (std::fs::File, u32)>| {
                    ctx.yield_("on_tick", ())
                })
                .on("on_tick", |ctx: &mut Ctx<'_, (std::fs::File, u32)>| -> R {
                    let now = epoch_secs(ctx.time());
                    let (fh, write_count) = ctx.heap();
                    *write_count += 1;
                    let n = *write_count;
                    writeln!(fh, "{n} {now}")?;
                    if n < TESTS {
                        ctx.delay("on_tick", TIME_BETWEEN_WRITES, ())?;
                    }
                    Ok(())
                }),
        )
        .unwrap();

        // Read from the log at one check every two write periods.
        let poll_interval = TIME_BETWEEN_WRITES * 2.0;
        let per_test_timeout = TIME_BETWEEN_WRITES * 3.0;
        let (p, s) = (path.clone(), seen.clone());
        k.create(
            Session::new(None::<WheelHandle>)
                .on(
                    "_start",
                    move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                        let tailor = FollowTail::filename(&p)
                            .input_event("got_log_line")
                            .poll_interval(poll_interval)
                            .build(ctx)?;
                        *ctx.heap() = Some(tailor);
                        // A long timeout to begin with.
                        ctx.delay("timeout", poll_interval * f64::from(TESTS), ())?;
                        Ok(())
                    },
                )
                .on(
                    "got_log_line",
                    move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                        let line = String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?;
                        let mut fields = line.split_whitespace();
                        let write: u32 = fields.next().ok_or("no number")?.parse()?;
                        let time: f64 = fields.next().ok_or("no time")?.parse()?;
                        let elapsed = epoch_secs(ctx.time()) - time;
                        s.borrow_mut().push((write, elapsed));
                        if write < TESTS {
                            return Ok(());
                        }
                        // Stop the timeout when we're done.
                        ctx.alarm_clear("timeout")?;
                        *ctx.heap() = None;
                        Ok(())
                    },
                )
                .on("timeout", |ctx: &mut Ctx<'_, Option<WheelHandle>>| {
                    *ctx.heap() = None;
                }),
        )
        .unwrap();

        k.run().unwrap();
        let seen = seen.borrow();
        for &(write, elapsed) in seen.iter() {
            assert!(
                elapsed <= per_test_timeout,
                "line {write}: response time <= {per_test_timeout} sec ({elapsed:.2})"
            );
        }
        // Upstream plans six tests: one per line.
        let numbers: Vec<u32> = seen.iter().map(|&(n, _)| n).collect();
        assert_eq!(numbers, (1..=TESTS).collect::<Vec<_>>());
    }
    let _ = std::fs::remove_file(&path);
    common::assert_no_new_fds(&fds);
}
