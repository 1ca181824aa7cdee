//! Blocking work off the kernel's thread: a `WorkerPool` runs CPU-bound jobs on a bounded
//! pool of threads while the kernel stays free to do everything else, and each job's result
//! comes back as an event, as with POE::Component::Pool::Thread.
//!
//! ```text
//! cargo run --example blocking_work -- [--jobs N] [--threads T] [--size S]
//! ```
//!
//! It hands `N` jobs (default 8) to a pool of `T` threads (default 2). Job `i` counts the
//! primes below `S * (i + 1)` (default `S` 200,000) the slow way, as a stand-in for a
//! compression job or a database driver that blocks. Meanwhile a timer ticks every 10 ms
//! in the kernel, to show that the kernel is not blocked. Each result is printed as it
//! arrives (in the order the jobs finish), then, once all are in:
//!
//! ```text
//! job 3: 59318 primes below 800000
//! ...
//! 8 jobs on 2 threads, 41 ticks meanwhile
//! ```
//!
//! In POE the jobs would go to POE::Component::Pool::Thread (an `EntryPoint` run on a
//! thread, a `CallBack` event for its value), or to `POE::Wheel::Run` children.

use reactor::component::{JobError, JobId, WorkerPool};
use reactor::{Ctx, HandlerError, Kernel, Session};
use std::collections::HashMap;

struct Options {
    jobs: u64,
    threads: usize,
    size: u64,
}

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};

const USAGE: &str = "\
Usage: blocking_work [--jobs N] [--threads T] [--size S]

Counts primes below S (by trial division, on purpose) in N jobs on a pool of T threads,
while the kernel keeps ticking.

Options:
  --jobs N      how many jobs (default 8)
  --threads T   threads in the pool (default 2)
  --size S      count primes below S in each job (default 200000)
  -h, --help    print this help";

/// A positive count.
fn positive(p: &mut cli::Parser, option: &str) -> Result<u64, cli::Error> {
    let n: u64 = cli::value(p, option)?;
    if n == 0 {
        return Err(format!("{option} needs a positive number").into());
    }
    Ok(n)
}

fn options() -> Options {
    cli::parse(USAGE, |p| {
        let mut o = Options {
            jobs: 8,
            threads: 2,
            size: 200_000,
        };
        while let Some(arg) = p.next()? {
            match arg {
                Long("jobs") => o.jobs = positive(p, "--jobs")?,
                Long("threads") => o.threads = positive(p, "--threads")? as usize,
                Long("size") => o.size = positive(p, "--size")?,
                Short('h') | Long("help") => cli::help(USAGE),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(o)
    })
}

/// The blocking part: trial division, on purpose.
fn count_primes_below(n: u64) -> u64 {
    (2..n)
        .filter(|&k| (2..).take_while(|d| d * d <= k).all(|d| k % d != 0))
        .count() as u64
}

struct Heap {
    pool: WorkerPool,
    /// Job ids to their job number, for the report.
    jobs: HashMap<JobId, u64>,
    ticks: u64,
    threads: usize,
    total: u64,
    size: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = options();
    let mut kernel = Kernel::new()?;
    let pool = WorkerPool::builder()
        .threads(o.threads)
        .build(&mut kernel)?;
    kernel.create(
        Session::new(Heap {
            pool,
            jobs: HashMap::new(),
            ticks: 0,
            threads: o.threads,
            total: o.jobs,
            size: o.size,
        })
        .on(
            "_start",
            |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                let (pool, total, size) = {
                    let h = ctx.heap();
                    (h.pool.clone(), h.total, h.size)
                };
                for i in 0..total {
                    let below = size * (i + 1);
                    // The closure runs on one of the pool's threads.
                    let id =
                        pool.run(ctx, "counted", move || (below, count_primes_below(below)))?;
                    ctx.heap().jobs.insert(id, i);
                }
                ctx.delay("tick", 0.01, ())?;
                Ok(())
            },
        )
        .on(
            "tick",
            |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                // The kernel's own work goes on while the jobs run.
                ctx.heap().ticks += 1;
                if !ctx.heap().jobs.is_empty() {
                    ctx.delay("tick", 0.01, ())?;
                }
                Ok(())
            },
        )
        .on(
            "counted",
            |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                let id: JobId = *ctx.arg(0)?;
                let n = ctx.heap().jobs.remove(&id).unwrap_or_default();
                match ctx.arg::<Result<(u64, u64), JobError>>(1)? {
                    Ok((below, primes)) => println!("job {n}: {primes} primes below {below}"),
                    Err(e) => println!("job {n}: {e}"),
                }
                let h = ctx.heap();
                if h.jobs.is_empty() {
                    println!(
                        "{} jobs on {} threads, {} ticks meanwhile",
                        h.total, h.threads, h.ticks
                    );
                    // No more ticks: nothing is left to keep the program running.
                    ctx.alarm_remove_all()?;
                }
                Ok(())
            },
        ),
    )?;
    kernel.run()?;
    Ok(())
}
