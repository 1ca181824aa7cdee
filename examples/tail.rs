//! `tail -F` on the reactor: prints the lines appended to a file as they come, and keeps
//! following it when it is rotated or truncated (POE's `POE::Wheel::FollowTail`, as in its
//! synopsis).
//!
//! ```text
//! cargo run --example tail -- FILE [--interval SECONDS]
//! ```
//!
//! It starts at the end of FILE (or waits for FILE to appear), writes `following FILE` on
//! standard error, then prints each new line on standard output. When FILE is renamed
//! away and made again (log rotation), deleted and made again, or truncated, it says so on
//! standard error and reads the new file from its start. `--interval` is the time between
//! polls of the file (POE's `PollInterval`; 1 second without it). It runs until
//! interrupted; an error (FILE is a directory, or cannot be read) ends it with status 1.

use reactor::wheel::{FollowTail, WheelError, WheelHandle};
use reactor::{Ctx, HandlerError, Kernel, Session};
use std::path::PathBuf;

type R = Result<(), HandlerError>;

/// The command line: the file, and `--interval SECONDS` (1 without it).
struct Options {
    file: PathBuf,
    interval: f64,
}

fn options() -> Result<Options, String> {
    let usage = "usage: tail FILE [--interval SECONDS]";
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut interval = 1.0;
    while let Some(a) = args.next() {
        if a == "--interval" {
            interval = args
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|s| *s >= 0.0)
                .ok_or("--interval needs a number of seconds")?;
        } else if file.is_none() && !a.starts_with("--") {
            file = Some(PathBuf::from(a));
        } else {
            return Err(usage.to_owned());
        }
    }
    Ok(Options {
        file: file.ok_or(usage)?,
        interval,
    })
}

/// The session's heap: the tail (POE's `$_[HEAP]{tailor}`) and whether it failed.
#[derive(Default)]
struct Heap {
    tailor: Option<WheelHandle>,
    failed: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let Options { file, interval } = options()?;
    let mut kernel = Kernel::new()?;
    let shown = file.display().to_string();
    let failed = std::rc::Rc::new(std::cell::Cell::new(false));
    let f = failed.clone();
    kernel.create(
        Session::new(Heap::default())
            .on("_start", move |ctx: &mut Ctx<'_, Heap>| -> R {
                // Starts at the end (POE's default), or waits for the file to appear.
                let tailor = FollowTail::filename(&file)
                    .poll_interval(interval)
                    .input_event("got_log_line")
                    .reset_event("got_log_rollover")
                    .error_event("got_error")
                    .build(ctx)?;
                ctx.heap().tailor = Some(tailor);
                eprintln!("following {}", file.display());
                Ok(())
            })
            .on("got_log_line", |ctx: &mut Ctx<'_, Heap>| -> R {
                // ARG0 is the line without its newline (the default Line filter).
                println!("{}", String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?));
                Ok(())
            })
            .on("got_log_rollover", move |_: &mut Ctx<'_, Heap>| {
                eprintln!("{shown} was rotated or truncated: reading it from its start");
            })
            .on("got_error", |ctx: &mut Ctx<'_, Heap>| -> R {
                eprintln!("tail: {}", ctx.arg::<WheelError>(0)?);
                let heap = ctx.heap();
                heap.tailor = None;
                heap.failed = true;
                Ok(())
            })
            .on("_stop", move |ctx: &mut Ctx<'_, Heap>| {
                f.set(ctx.heap().failed);
            }),
    )?;
    kernel.run()?;
    if failed.get() {
        std::process::exit(1);
    }
    Ok(())
}
