//! A port of POE's `examples/forkbomb.perl`: a session whose job is to create more of
//! itself, until 200 sessions have been made; then they all politely stop. It exercises
//! parent/child bookkeeping (`_child` create/gain/lose, `_parent`), signal watchers and
//! session garbage collection.
//!
//! ```text
//! cargo run --example forkbomb -- [--rand U1,U2,...]
//! ```
//!
//! Each session, on every `fork` event, flips a coin (`rand() < 0.5`) to decide whether to
//! start a child, then keeps forking while fewer than 100 sessions exist (or, past that,
//! with a 5% chance). A session that decides to die yields `_stop` to itself, which runs
//! its `_stop` handler as an ordinary event (POE allows it; the session does not stop),
//! exactly as the Perl program does.
//!
//! The coin flips come from a random generator; `--rand` replaces it with a list of
//! fractions in [0, 1) used in turn, over and over, so the run is repeatable. With the
//! same list given to the Perl program's `rand` (see `tests/examples_perl.rs`) the output
//! is byte-identical.

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};
use reactor::{Ctx, HandlerError, Kernel, Session, SessionId, States, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Sessions stop forking once this many have been created (`$max_sessions`).
const MAX_SESSIONS: u32 = 200;
/// Below this many, sessions always keep forking (`$half_sessions`).
const HALF_SESSIONS: u32 = MAX_SESSIONS / 2;

const USAGE: &str = "\
Usage: forkbomb [--rand U1,U2,...]

POE's forkbomb.perl: sessions that create sessions, up to a limit.

Options:
  --rand U1,U2,...  use these fractions in [0, 1), in turn, instead of random ones
  -h, --help        print this help";

/// Perl's `rand()`: a random fraction, or the next of a fixed list.
enum Rand {
    /// `rand::random`.
    Random,
    /// A list of fractions and the index of the next one.
    List(Vec<f64>, usize),
}

impl Rand {
    /// From `--rand U1,U2,...`, or random without it.
    fn from_args() -> Rand {
        cli::parse(USAGE, |p| {
            let mut rand = Rand::Random;
            while let Some(arg) = p.next()? {
                match arg {
                    Long("rand") => rand = Rand::from_list(&cli::text(p.value()?))?,
                    Short('h') | Long("help") => cli::help(USAGE),
                    _ => return Err(arg.unexpected()),
                }
            }
            Ok(rand)
        })
    }

    /// From a list of fractions: `0.5,0.25,...`.
    fn from_list(list: &str) -> Result<Rand, String> {
        let us = list
            .split(',')
            .map(|u| u.parse::<f64>().map_err(|e| format!("--rand {u}: {e}")))
            .collect::<Result<Vec<f64>, String>>()?;
        if us.is_empty() {
            return Err("--rand needs at least one fraction".into());
        }
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
}

/// What the Perl program keeps in file-scoped variables: the session counter and the
/// random source, and the handlers every forkbomber is created from.
struct World {
    /// `$count`: how many sessions have been created.
    count: Cell<u32>,
    rand: RefCell<Rand>,
    states: States<Heap>,
}

/// A forkbomber's heap.
struct Heap {
    /// `$heap->{'id'}`: its number in order of creation, from 1.
    id: u32,
    world: Rc<World>,
}

type R = Result<Value, HandlerError>;

/// `_start`: take the next number, watch INT and ZOMBIE, and start forking.
fn start(ctx: &mut Ctx<'_, Heap>) -> R {
    let world = Rc::clone(&ctx.heap().world);
    world.count.set(world.count.get() + 1);
    let id = world.count.get();
    ctx.heap().id = id;
    println!("{id:4} has started.");
    ctx.sig("INT", "signal_handler", ())?;
    ctx.sig("ZOMBIE", "signal_handler", ())?;
    ctx.yield_("fork", ())?;
    Ok(Value::new(format!("i am {id}")))
}

/// `_stop`: also run as an ordinary event when a session "decides to die".
fn stop(ctx: &mut Ctx<'_, Heap>) {
    println!("{:4} has stopped.", ctx.heap().id);
}

/// A session's number, asked with `call(.., 'fetch_id')`; 0 for what answers nothing (the
/// kernel), as Perl's `printf '%d'` shows `undef`.
fn id_of(ctx: &mut Ctx<'_, Heap>, session: SessionId) -> u32 {
    ctx.call(session, "fetch_id", ())
        .ok()
        .and_then(|v| v.get::<u32>().copied())
        .unwrap_or(0)
}

/// `_child`: ARG0 is "create", "gain" or "lose", ARG1 the child, ARG2 its `_start` value.
fn child(ctx: &mut Ctx<'_, Heap>) -> Result<(), HandlerError> {
    let direction = ctx.arg::<String>(0)?.clone();
    let child = *ctx.arg::<SessionId>(1)?;
    let english = match direction.as_str() {
        "lose" => "is losing",
        "gain" => "is gaining",
        "create" => "has created",
        _ => "",
    };
    let returned = match ctx.args().opt::<Value>(2).and_then(|v| v.get::<String>()) {
        Some(r) if direction == "create" => format!(" (child returned: {r})"),
        Some(_) => String::new(),
        None if direction == "create" => " (child returned: )".to_owned(),
        None => String::new(),
    };
    let child_id = id_of(ctx, child);
    println!("{:4} {english} child {child_id}{returned}", ctx.heap().id);
    Ok(())
}

/// `_parent`: ARG0 is the old parent, ARG1 the new one.
fn parent(ctx: &mut Ctx<'_, Heap>) -> Result<(), HandlerError> {
    let old = *ctx.arg::<SessionId>(0)?;
    let new = *ctx.arg::<SessionId>(1)?;
    let (old_id, new_id) = (id_of(ctx, old), id_of(ctx, new));
    println!(
        "{:4} parent is changing from {old_id} to {new_id}",
        ctx.heap().id
    );
    Ok(())
}

/// `signal_handler`: report the signal and leave it unhandled.
fn signal_handler(ctx: &mut Ctx<'_, Heap>) -> Result<(), HandlerError> {
    let signal = ctx.arg::<String>(0)?.clone();
    println!("{:4} has received SIG{signal}", ctx.heap().id);
    Ok(())
}

/// `fork`: maybe start a child, then fork again or decide to die.
fn fork(ctx: &mut Ctx<'_, Heap>) -> Result<(), HandlerError> {
    let id = ctx.heap().id;
    let world = Rc::clone(&ctx.heap().world);
    if world.count.get() < MAX_SESSIONS {
        if world.rand.borrow_mut().rand(1.0) < 0.5 {
            println!("{id:4} is starting a new child...");
            create_new_forkbomber(ctx, &world)?;
        } else {
            println!("{id:4} is just spinning its wheels this time...");
        }
        // Perl's `||` draws the second number only when the first test fails.
        if world.count.get() < HALF_SESSIONS || world.rand.borrow_mut().rand(1.0) < 0.05 {
            ctx.yield_("fork", ())?;
        } else {
            println!("{id:4} has decided to die.  Bye!");
            if id != 1 {
                ctx.yield_("_stop", ())?;
            }
        }
    } else {
        println!("{id:4} notes that the session limit is met.  Bye!");
        if id != 1 {
            ctx.yield_("_stop", ())?;
        }
    }
    Ok(())
}

/// `fetch_id`.
fn fetch_id(ctx: &mut Ctx<'_, Heap>) -> Value {
    Value::new(ctx.heap().id)
}

/// `create_new_forkbomber`: a session with every handler above.
fn create_new_forkbomber(kernel: &mut Kernel, world: &Rc<World>) -> reactor::Result<SessionId> {
    let heap = Heap {
        id: 0,
        world: Rc::clone(world),
    };
    kernel.create(Session::from_states(heap, &world.states))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let world = Rc::new(World {
        count: Cell::new(0),
        rand: RefCell::new(Rand::from_args()),
        states: States::new()
            .on("_start", start)
            .on("_stop", stop)
            .on("_child", child)
            .on("_parent", parent)
            .on("signal_handler", signal_handler)
            .on("fork", fork)
            .on("fetch_id", fetch_id),
    });
    let mut kernel = Kernel::new()?;
    create_new_forkbomber(&mut kernel, &world)?;
    kernel.run()?;
    Ok(())
}
