//! A port of POE's `examples/queue.perl`: a simple job queue. A parent session keeps five
//! child sessions running at any moment; each child "works" for a random number of
//! seconds (0 to 9, a `delay`), posts a random result to its parent and stops, and the
//! parent's `_child` handler starts a replacement when it loses one.
//!
//! ```text
//! cargo run --example queue -- [--rand U1,U2,...] [--jobs N]
//! ```
//!
//! Like the Perl program it prints to standard error and runs forever. `--jobs N` makes
//! the parent start no more than N children in all, so the program ends once they are
//! done. `--rand` replaces the random generator with a list of fractions in [0, 1) used in
//! turn, over and over (`rand(N)` is `N * u`): with the same list given to the Perl
//! program's `rand`, both print the same lines (see `tests/examples_perl.rs`).

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};
use reactor::{Ctx, HandlerError, Kernel, Session, SessionId};
use std::cell::RefCell;
use std::rc::Rc;

/// The most children running at any moment (`$child_max`).
const CHILD_MAX: u32 = 5;

/// Perl's `rand`: a random fraction, or the next of a fixed list.
enum Rand {
    /// `rand::random`.
    Random,
    /// A list of fractions and the index of the next one.
    List(Vec<f64>, usize),
}

impl Rand {
    /// From the value of `--rand`, or random without one.
    fn new(list: Option<&str>) -> Result<Rand, String> {
        let Some(list) = list else {
            return Ok(Rand::Random);
        };
        let us = list
            .split(',')
            .map(|u| u.parse::<f64>().map_err(|e| format!("--rand {u}: {e}")))
            .collect::<Result<Vec<f64>, String>>()?;
        Ok(Rand::List(us, 0))
    }

    /// `rand($n)`: a number in [0, n).
    fn rand(&mut self, n: f64) -> f64 {
        let u = match self {
            Rand::Random => rand::random::<f64>(),
            Rand::List(us, i) => {
                let u = us[*i % us.len()];
                *i += 1;
                u
            }
        };
        u * n
    }

    /// `int rand $n`.
    fn int(&mut self, n: u32) -> u32 {
        self.rand(f64::from(n)) as u32
    }
}

/// The random source, shared by every session.
type Random = Rc<RefCell<Rand>>;

/// A child's heap.
struct Child {
    /// `$heap->{parent}`: who to report to.
    parent: SessionId,
    rand: Random,
}

/// The parent's heap.
struct Parent {
    /// `$heap->{child_count}`.
    child_count: u32,
    /// How many more children may be started (`--jobs`), `None` for no limit.
    jobs_left: Option<u64>,
    rand: Random,
}

/// `create_a_child`, called from the parent's handlers.
fn create_a_child(ctx: &mut Ctx<'_, Parent>) -> reactor::Result<()> {
    if let Some(left) = &mut ctx.heap().jobs_left {
        if *left == 0 {
            return Ok(());
        }
        *left -= 1;
    }
    let rand = Rc::clone(&ctx.heap().rand);
    let heap = Child {
        parent: SessionId::default(),
        rand,
    };
    ctx.create(
        Session::new(heap)
            .on("_start", child_start)
            .on("_stop", child_stop)
            .on("wake_up", child_awaken),
    )?;
    Ok(())
}

/// The child's `_start`: remember the parent (the sender of `_start`) and sleep a while.
fn child_start(ctx: &mut Ctx<'_, Child>) -> Result<(), HandlerError> {
    let parent = ctx.sender();
    ctx.heap().parent = parent;
    let delay = ctx.heap().rand.borrow_mut().int(10);
    eprintln!("Child {} will take {delay} seconds to run.", ctx.session());
    ctx.delay("wake_up", delay, ())?;
    Ok(())
}

/// The child's `wake_up`: the work is done; send the result to the parent.
fn child_awaken(ctx: &mut Ctx<'_, Child>) -> Result<(), HandlerError> {
    let result = ctx.heap().rand.borrow_mut().int(100);
    let me = ctx.session();
    eprintln!("Child {me} is done doing something.  Result={result}");
    let parent = ctx.heap().parent;
    ctx.post(parent, "result", (me, result))?;
    Ok(())
}

/// The child's `_stop`.
fn child_stop(ctx: &mut Ctx<'_, Child>) {
    eprintln!("Child {} is stopped.", ctx.session());
}

/// The parent's `_start`: start the first children.
fn parent_start(ctx: &mut Ctx<'_, Parent>) -> reactor::Result<()> {
    ctx.heap().child_count = 0;
    for _ in 0..CHILD_MAX {
        create_a_child(ctx)?;
    }
    Ok(())
}

/// The parent's `_child`: count children in and out, and replace the ones that leave.
fn parent_child(ctx: &mut Ctx<'_, Parent>) -> Result<(), HandlerError> {
    let what = ctx.arg::<String>(0)?.clone();
    let child = *ctx.arg::<SessionId>(1)?;
    let me = ctx.session();
    if what == "create" || what == "gain" {
        ctx.heap().child_count += 1;
        eprintln!(
            "Child {child} has appeared to parent {me} ({} active children now).",
            ctx.heap().child_count
        );
    } else if what == "lose" {
        ctx.heap().child_count -= 1;
        let count = ctx.heap().child_count;
        eprintln!("Child {child} has left parent {me} ({count} active children now).");
        if count < CHILD_MAX {
            create_a_child(ctx)?;
        }
    }
    Ok(())
}

/// The parent's `result`: ARG0 is the child, ARG1 its result.
fn parent_result(ctx: &mut Ctx<'_, Parent>) -> Result<(), HandlerError> {
    let child = ctx.arg::<SessionId>(0)?;
    let result = ctx.arg::<u32>(1)?;
    eprintln!("Parent received result from session {child}: {result}");
    Ok(())
}

/// The parent's `_stop`.
fn parent_stop(ctx: &mut Ctx<'_, Parent>) {
    eprintln!("Parent {} stopped.", ctx.session());
}

const USAGE: &str = "\
Usage: queue [--rand U1,U2,...] [--jobs N]

POE's queue.perl: a parent keeps five child jobs running; prints to standard error.

Options:
  --rand U1,U2,...  use these fractions in [0, 1), in turn, instead of random ones
  --jobs N          start N jobs in all, then end (default: run for ever)
  -h, --help        print this help";

/// `--rand` and `--jobs`.
fn options() -> (Rand, Option<u64>) {
    cli::parse(USAGE, |p| {
        let (mut rand, mut jobs) = (Rand::Random, None);
        while let Some(arg) = p.next()? {
            match arg {
                Long("rand") => rand = Rand::new(Some(&cli::text(p.value()?)))?,
                Long("jobs") => jobs = Some(cli::value(p, "--jobs")?),
                Short('h') | Long("help") => cli::help(USAGE),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok((rand, jobs))
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (rand, jobs_left) = options();
    let mut kernel = Kernel::new()?;
    kernel.create(
        Session::new(Parent {
            child_count: 0,
            jobs_left,
            rand: Rc::new(RefCell::new(rand)),
        })
        .on("_start", parent_start)
        .on("_stop", parent_stop)
        .on("_child", parent_child)
        .on("result", parent_result),
    )?;
    kernel.run()?;
    Ok(())
}
