//! `tail -F` on the reactor: prints the lines appended to a file as they come, and keeps
//! following it when it is rotated or truncated (POE's `POE::Wheel::FollowTail`, as in its
//! synopsis).
//!
//! ```text
//! cargo run --example tail -- FILE [--interval SECONDS] [--notify]
//! ```
//!
//! It starts at the end of FILE (or waits for FILE to appear), writes `following FILE` on
//! standard error, then prints each new line on standard output. When FILE is renamed
//! away and made again (log rotation), deleted and made again, or truncated, it says so on
//! standard error and reads the new file from its start. `--interval` is the time between
//! polls of the file (POE's `PollInterval`; 1 second without it). `--notify` reads what
//! changed as soon as inotify reports it (`TailWatch::Inotify`, Linux), and polls only as
//! a fallback (every 10 seconds without `--interval`); where inotify cannot watch FILE it
//! polls as without `--notify`. It runs until interrupted; an error (FILE is a directory,
//! or cannot be read) ends it with status 1.

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};
use reactor::wheel::{FollowTail, TailWatch, WheelError, WheelHandle};
use reactor::{Ctx, HandlerError, Kernel, Session};
use std::path::PathBuf;

type R = Result<(), HandlerError>;

/// The command line: the file, `--interval SECONDS` (the wheel's default without it: 1, or
/// 10 with `--notify`), and `--notify`.
struct Options {
    file: PathBuf,
    interval: Option<f64>,
    notify: bool,
}

const USAGE: &str = "\
Usage: tail FILE [--interval SECONDS] [--notify]

Follows FILE as `tail -F` does, printing each new line; runs until interrupted.

Options:
  --interval SECONDS  time between polls of FILE (default 1, or 10 with --notify)
  --notify            read what is appended as soon as inotify reports it (Linux)
  -h, --help          print this help";

fn options() -> Options {
    cli::parse(USAGE, |p| {
        let mut file = None;
        let mut interval = None;
        let mut notify = false;
        while let Some(arg) = p.next()? {
            match arg {
                Long("interval") => {
                    let seconds: f64 = cli::value(p, "--interval")?;
                    if seconds.is_nan() || seconds < 0.0 {
                        return Err("--interval needs a number of seconds".into());
                    }
                    interval = Some(seconds);
                }
                Long("notify") => notify = true,
                Short('h') | Long("help") => cli::help(USAGE),
                cli::Value(path) if file.is_none() => file = Some(PathBuf::from(path)),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(Options {
            file: file.ok_or("missing FILE")?,
            interval,
            notify,
        })
    })
}

/// The session's heap: the tail (POE's `$_[HEAP]{tailor}`) and whether it failed.
#[derive(Default)]
struct Heap {
    tailor: Option<WheelHandle>,
    failed: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Options {
        file,
        interval,
        notify,
    } = options();
    let mut kernel = Kernel::new()?;
    let shown = file.display().to_string();
    let failed = std::rc::Rc::new(std::cell::Cell::new(false));
    let f = failed.clone();
    kernel.create(
        Session::new(Heap::default())
            .on("_start", move |ctx: &mut Ctx<'_, Heap>| -> R {
                // Starts at the end (POE's default), or waits for the file to appear.
                let mut builder = FollowTail::filename(&file);
                if let Some(secs) = interval {
                    builder = builder.poll_interval(secs);
                }
                if notify {
                    builder = builder.watch(TailWatch::Inotify);
                }
                let tailor = builder
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
