//! A port of POE's `examples/packagesessions.perl`: sessions whose handlers are the plain
//! functions of a package (`package_states`), which receive the package name as `OBJECT`.
//!
//! Ten sessions made from package `Counter` count to five by posting `increment` to
//! themselves. On odd counts `increment` adds a `runtime_state` handler (the package's
//! function of that name), on even counts it removes it, and every count but the last
//! yields a `runtime_state` event, which arrives after the next `increment`, when the
//! handler is back. Output is byte-identical to the Perl program's
//! (`tests/examples_perl.rs`).
//!
//! Run: `cargo run --example packagesessions`
//!
//! The Perl program hands each session its name through the global `$Counter::name`,
//! read in `_start`; here the name is in the heap from the start. POE's package form of
//! `$kernel->state('runtime_state', $package)` is a closure calling the package function.

#[path = "common/cli.rs"]
mod cli;
use reactor::{Ctx, HandlerError, Kernel, Session, SessionId};

type R = Result<(), HandlerError>;

/// The session's heap: `$heap->{'name'}` and `$heap->{'counter'}`.
struct Heap {
    name: String,
    counter: u32,
}

/// The functions of package `Counter`; each gets the package name (`$_[OBJECT]`).
mod counter {
    use super::*;

    /// `_start`: watch SIGINT, reset the counter, and post the first `increment`.
    pub fn _start(_package: &'static str, ctx: &mut Ctx<'_, Heap>) -> R {
        ctx.sig("INT", "sigint", ())?;
        ctx.heap().counter = 0;
        println!("Session {} started.", ctx.heap().name);
        let me = ctx.session();
        ctx.post(me, "increment", ())?;
        Ok(())
    }

    /// `_stop`.
    pub fn _stop(_package: &'static str, ctx: &mut Ctx<'_, Heap>) -> R {
        let heap = ctx.heap();
        println!(
            "Session {} stopped after {} loops.",
            heap.name, heap.counter
        );
        Ok(())
    }

    /// `sigint`: ARG0 is the signal's name; the sender is who sent it.
    pub fn sigint(_package: &'static str, ctx: &mut Ctx<'_, Heap>) -> R {
        let signal = ctx.arg::<String>(0)?.clone();
        let from: SessionId = ctx.sender();
        println!("{} caught SIG{signal} from {from}", ctx.heap().name);
        Ok(())
    }

    /// `increment`: count, toggle the run-time handler, and keep going until five.
    pub fn increment(package: &'static str, ctx: &mut Ctx<'_, Heap>) -> R {
        ctx.heap().counter += 1;
        let counter = ctx.heap().counter;
        if counter % 2 == 1 {
            // $kernel->state('runtime_state', $package)
            ctx.state("runtime_state", move |ctx: &mut Ctx<'_, Heap>| {
                runtime_state(package, ctx)
            })?;
        } else {
            ctx.remove_state("runtime_state")?;
        }
        println!("Session {}, iteration {counter}.", ctx.heap().name);
        if counter < 5 {
            let me = ctx.session();
            ctx.post(me, "increment", ())?;
            ctx.yield_("runtime_state", (counter,))?;
        }
        Ok(())
    }

    /// `runtime_state`: only present on odd counts.
    pub fn runtime_state(_package: &'static str, ctx: &mut Ctx<'_, Heap>) -> R {
        let iteration = *ctx.arg::<u32>(0)?;
        println!(
            "Session {} received a runtime_state event during iteration {iteration}",
            ctx.heap().name
        );
        Ok(())
    }
}

const USAGE: &str = "\
Usage: packagesessions

POE's packagesessions.perl: sessions whose handlers are a package's functions.

Options:
  -h, --help  print this help";

fn main() -> Result<(), reactor::Error> {
    cli::no_args(USAGE);
    let mut kernel = Kernel::new()?;
    for name in [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ] {
        let heap = Heap {
            name: name.to_owned(),
            counter: 0,
        };
        kernel.create(Session::new(heap).package_states(
            "Counter",
            &[
                ("_start", counter::_start),
                ("_stop", counter::_stop),
                ("increment", counter::increment),
                ("sigint", counter::sigint),
            ],
        ))?;
    }
    kernel.run()
}
