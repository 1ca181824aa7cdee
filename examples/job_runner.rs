//! A worker pool in POE's usual manner: run N shell commands with at most K at once, each
//! through a `POE::Wheel::Run`, streaming every child's output lines as they come.
//!
//! ```text
//! cargo run --example job_runner -- [--max K] [COMMAND ...]
//! ```
//!
//! With no commands it runs six small demonstration jobs, two at a time. Each output line
//! is prefixed with its job's number; a job is done once its output has ended (the wheel's
//! `CloseEvent`) and its exit status is in (`sig_child`), and only then does the next job
//! start:
//!
//! ```text
//! [1] started (pid 4242): echo one; sleep 0.2; echo two
//! [1] one
//! [1] two
//! [1] exited with status 0
//! ...
//! 6 jobs: 4 succeeded, 2 failed
//! ```
//!
//! Standard error lines are prefixed with `!`. A job that cannot be started at all (the
//! shell is missing) counts as failed. The program exits with status 1 if any job failed.
//!
//! In POE this is the loop of `Program => $cmd, StdoutEvent => ..., CloseEvent => ...`,
//! `$kernel->sig_child($wheel->PID, "sig_child")`, and a `next_job` event that starts jobs
//! while fewer than K run.

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};
use reactor::wheel::{Run, WheelError};
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle, WheelId};
use std::collections::{HashMap, VecDeque};

const USAGE: &str = "\
Usage: job_runner [--max K] [COMMAND ...]

Runs shell commands with at most K at once, streaming their output lines; with no
commands, six demonstration jobs. Exits with status 1 if any job failed.

Options:
  --max K     jobs running at once (default 2)
  -h, --help  print this help";

/// The jobs run when none are given: output, a pause, more output, a failure.
const DEMO: [&str; 6] = [
    "echo one; sleep 0.2; echo two",
    "echo alpha; echo beta >&2",
    "for i in 1 2 3; do echo tick $i; sleep 0.05; done",
    "echo about to fail; exit 3",
    "echo stopping myself; kill -TERM $$",
    "echo last",
];

/// One running job.
struct Job {
    number: usize,
    wheel: Option<WheelHandle>,
    pid: Option<u32>,
    status: Option<i32>,
    closed: bool,
}

#[derive(Default)]
struct Pool {
    max: usize,
    queue: VecDeque<(usize, String)>,
    running: HashMap<WheelId, Job>,
    by_pid: HashMap<u32, WheelId>,
    succeeded: usize,
    failed: usize,
}

type C<'a> = Ctx<'a, Pool>;

/// Starts jobs while fewer than `max` run.
fn next_job(ctx: &mut C<'_>) -> Result<(), HandlerError> {
    while ctx.heap().running.len() < ctx.heap().max {
        let Some((number, command)) = ctx.heap().queue.pop_front() else {
            break;
        };
        let wheel = Run::shell(command.clone())
            .no_stdin(true)
            .stdout_event("job_stdout")
            .stderr_event("job_stderr")
            .error_event("job_error")
            .close_event("job_close")
            .build(ctx)?;
        let id = wheel.id();
        let pid = ctx.wheel_ref::<Run>(id).and_then(Run::pid);
        match pid {
            Some(pid) => {
                println!("[{number}] started (pid {pid}): {command}");
                ctx.sig_child(pid, "job_exited", ())?;
                ctx.heap().by_pid.insert(pid, id);
            }
            None => println!("[{number}] could not start: {command}"),
        }
        let job = Job {
            number,
            wheel: Some(wheel),
            pid,
            status: None,
            closed: false,
        };
        ctx.heap().running.insert(id, job);
    }
    Ok(())
}

/// A job is over once its output has ended and its exit status is in (or it never
/// started): report it and start the next.
fn maybe_done(ctx: &mut C<'_>, id: WheelId) -> Result<(), HandlerError> {
    let Some(job) = ctx.heap().running.get(&id) else {
        return Ok(());
    };
    if !job.closed || (job.pid.is_some() && job.status.is_none()) {
        return Ok(());
    }
    let Some(mut job) = ctx.heap().running.remove(&id) else {
        return Ok(());
    };
    job.wheel = None;
    let ok = match job.status {
        Some(status) => {
            let code = (status >> 8) & 0xff;
            let signal = status & 0x7f;
            if signal != 0 {
                println!("[{}] killed by signal {signal}", job.number);
            } else {
                println!("[{}] exited with status {code}", job.number);
            }
            status == 0
        }
        None => false,
    };
    if ok {
        ctx.heap().succeeded += 1;
    } else {
        ctx.heap().failed += 1;
    }
    next_job(ctx)
}

fn line(ctx: &C<'_>) -> Result<(String, WheelId), HandlerError> {
    let text = String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?).into_owned();
    Ok((text, *ctx.arg::<WheelId>(1)?))
}

fn number(ctx: &mut C<'_>, id: WheelId) -> usize {
    ctx.heap().running.get(&id).map_or(0, |j| j.number)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (max, mut commands) = cli::parse(USAGE, |p| {
        let mut max = 2;
        let mut commands = Vec::new();
        while let Some(arg) = p.next()? {
            match arg {
                Long("max") => match cli::value(p, "--max")? {
                    0 => return Err("--max must be at least 1".into()),
                    n => max = n,
                },
                Short('h') | Long("help") => cli::help(USAGE),
                cli::Value(command) => commands.push(cli::text(command)),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok((max, commands))
    });
    if commands.is_empty() {
        commands = DEMO.iter().map(|s| s.to_string()).collect();
    }
    let pool = Pool {
        max,
        queue: commands
            .into_iter()
            .enumerate()
            .map(|(i, c)| (i + 1, c))
            .collect(),
        ..Pool::default()
    };
    let total = pool.queue.len();
    let mut kernel = Kernel::new()?;
    let outcome = std::rc::Rc::new(std::cell::Cell::new((0, 0)));
    let out = std::rc::Rc::clone(&outcome);
    kernel.create(
        Session::new(pool)
            .on("_start", next_job)
            .on(
                "job_stdout",
                |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                    let (text, id) = line(ctx)?;
                    println!("[{}] {text}", number(ctx, id));
                    Ok(())
                },
            )
            .on(
                "job_stderr",
                |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                    let (text, id) = line(ctx)?;
                    println!("[{}] ! {text}", number(ctx, id));
                    Ok(())
                },
            )
            .on("job_error", |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                let e = ctx.arg::<WheelError>(0)?.clone();
                let id = *ctx.arg::<WheelId>(1)?;
                if !e.is_eof() {
                    println!("[{}] error: {e}", number(ctx, id));
                }
                Ok(())
            })
            .on("job_close", |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                let id = *ctx.arg::<WheelId>(0)?;
                if let Some(job) = ctx.heap().running.get_mut(&id) {
                    job.closed = true;
                }
                maybe_done(ctx, id)
            })
            .on(
                "job_exited",
                |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                    let (pid, status) = (*ctx.arg::<u32>(1)?, *ctx.arg::<i32>(2)?);
                    let Some(id) = ctx.heap().by_pid.remove(&pid) else {
                        return Ok(());
                    };
                    if let Some(job) = ctx.heap().running.get_mut(&id) {
                        job.status = Some(status);
                    }
                    maybe_done(ctx, id)
                },
            )
            .on("_stop", move |ctx: &mut C<'_>| {
                out.set((ctx.heap().succeeded, ctx.heap().failed));
            }),
    )?;
    kernel.run()?;
    let (succeeded, failed) = outcome.get();
    println!("{total} jobs: {succeeded} succeeded, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
