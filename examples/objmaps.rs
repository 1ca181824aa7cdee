//! A port of POE's `examples/objmaps.perl`: sessions whose handlers are the methods of an
//! object (`object_states`), mapped to events of other names (`_start => 'poe_start'`).
//! `objsessions` is the same program with methods named after their events.
//!
//! Ten `Counter` objects, each wrapped in a session, count to five by posting `increment`
//! to themselves. On odd counts a `runtime_state` handler is added (the object's method of
//! that name), on even counts it is removed, and every count but the last yields a
//! `runtime_state` event: it arrives after the next `increment`, when the handler is back.
//! Each object reports its creation and its destruction (Perl's `DESTROY`, here `Drop`),
//! which happens when its session is gone. Output is byte-identical to the Perl
//! program's (`tests/examples_perl.rs`).
//!
//! Run: `cargo run --example objmaps`
//!
//! POE's object form `$kernel->state('runtime_state', $object, 'poe_runtime_state')` is
//! `ctx.object_state("runtime_state", object, Counter::poe_runtime_state)`.

#[path = "common/cli.rs"]
mod cli;
use reactor::{Ctx, HandlerError, Kernel, Session, SessionId};
use std::rc::{Rc, Weak};

/// The session's heap: `$heap->{'counter'}`.
type Heap = u32;

type R = Result<(), HandlerError>;

/// The object a session is made of.
struct Counter {
    name: String,
    /// The object itself, for handing to `state` (Perl passes `$object`).
    me: Weak<Counter>,
}

impl Counter {
    /// `Counter->new($name)`.
    fn new(name: &str) -> Rc<Counter> {
        println!("Session {name}'s object created.");
        Rc::new_cyclic(|me| Counter {
            name: name.to_owned(),
            me: me.clone(),
        })
    }

    /// `poe_start`, the `_start` handler: watch SIGINT, reset the counter, and post the
    /// first `increment`.
    fn poe_start(&self, ctx: &mut Ctx<'_, Heap>) -> R {
        ctx.sig("INT", "sigint", ())?;
        *ctx.heap() = 0;
        println!("Session {} started.", self.name);
        let me = ctx.session();
        ctx.post(me, "increment", ())?;
        Ok(())
    }

    /// `poe_stop`, the `_stop` handler.
    fn poe_stop(&self, ctx: &mut Ctx<'_, Heap>) -> R {
        println!("Session {} stopped after {} loops.", self.name, ctx.heap());
        Ok(())
    }

    /// `poe_sigint`, the `sigint` handler: ARG0 is the signal's name; the sender is who
    /// sent it.
    fn poe_sigint(&self, ctx: &mut Ctx<'_, Heap>) -> R {
        let signal = ctx.arg::<String>(0)?;
        let from: SessionId = ctx.sender();
        println!("{} caught SIG{signal} from {from}", self.name);
        Ok(())
    }

    /// `poe_increment`, the `increment` handler: count, toggle the run-time handler, and
    /// keep going until five.
    fn poe_increment(&self, ctx: &mut Ctx<'_, Heap>) -> R {
        *ctx.heap() += 1;
        let counter = *ctx.heap();
        if counter % 2 == 1 {
            // $kernel->state('runtime_state', $object, 'poe_runtime_state')
            let object = self.me.upgrade().ok_or("the object is gone")?;
            ctx.object_state("runtime_state", object, Counter::poe_runtime_state)?;
        } else {
            ctx.remove_state("runtime_state")?;
        }
        println!("Session {}, iteration {counter}.", self.name);
        if counter < 5 {
            let me = ctx.session();
            ctx.post(me, "increment", ())?;
            ctx.yield_("runtime_state", (counter,))?;
        }
        Ok(())
    }

    /// `poe_runtime_state`, the `runtime_state` handler: only present on odd counts.
    fn poe_runtime_state(&self, ctx: &mut Ctx<'_, Heap>) -> R {
        let iteration = ctx.arg::<u32>(0)?;
        println!(
            "Session {} received a runtime_state event during iteration {iteration}",
            self.name
        );
        Ok(())
    }
}

impl Drop for Counter {
    /// `DESTROY`.
    fn drop(&mut self) {
        println!("Session {}'s object destroyed.", self.name);
    }
}

const USAGE: &str = "\
Usage: objmaps

POE's objmaps.perl: sessions whose handlers are an object's methods, mapped to
events of other names.

Options:
  -h, --help  print this help";

fn main() -> Result<(), reactor::Error> {
    cli::no_args(USAGE);
    let mut kernel = Kernel::new()?;
    for name in [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ] {
        kernel.create(Session::new(0).object_states(
            Counter::new(name),
            &[
                ("_start", Counter::poe_start),
                ("_stop", Counter::poe_stop),
                ("increment", Counter::poe_increment),
                ("sigint", Counter::poe_sigint),
            ],
        ))?;
    }
    kernel.run()
}
