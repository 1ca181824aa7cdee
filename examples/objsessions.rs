//! A port of POE's `examples/objsessions.perl`: sessions whose handlers are the methods of
//! an object (`object_states`).
//!
//! Ten `Counter` objects, each wrapped in a session, count to five by posting `increment`
//! to themselves. On odd counts a `runtime_state` handler is added (the object's method of
//! that name), on even counts it is removed, and every count but the last yields a
//! `runtime_state` event: it arrives after the next `increment`, when the handler is back.
//! Each object reports its creation and its destruction (Perl's `DESTROY`, here `Drop`),
//! which happens when its session is gone. Output is byte-identical to the Perl
//! program's (`tests/examples_perl.rs`).
//!
//! Run: `cargo run --example objsessions`
//!
//! POE's object form `$kernel->state('runtime_state', $object)` is
//! `ctx.object_state("runtime_state", object, Counter::runtime_state)`.

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

    /// `_start`: watch SIGINT, reset the counter, and post the first `increment`.
    fn _start(&self, ctx: &mut Ctx<'_, Heap>) -> R {
        ctx.sig("INT", "sigint", ())?;
        *ctx.heap() = 0;
        println!("Session {} started.", self.name);
        let me = ctx.session();
        ctx.post(me, "increment", ())?;
        Ok(())
    }

    /// `_stop`.
    fn _stop(&self, ctx: &mut Ctx<'_, Heap>) -> R {
        println!("Session {} stopped after {} loops.", self.name, ctx.heap());
        Ok(())
    }

    /// `sigint`: ARG0 is the signal's name; the sender is who sent it.
    fn sigint(&self, ctx: &mut Ctx<'_, Heap>) -> R {
        let signal = ctx.arg::<String>(0)?;
        let from: SessionId = ctx.sender();
        println!("{} caught SIG{signal} from {from}", self.name);
        Ok(())
    }

    /// `increment`: count, toggle the run-time handler, and keep going until five.
    fn increment(&self, ctx: &mut Ctx<'_, Heap>) -> R {
        *ctx.heap() += 1;
        let counter = *ctx.heap();
        if counter % 2 == 1 {
            // $kernel->state('runtime_state', $object)
            let object = self.me.upgrade().ok_or("the object is gone")?;
            ctx.object_state("runtime_state", object, Counter::runtime_state)?;
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

    /// `runtime_state`: only present on odd counts.
    fn runtime_state(&self, ctx: &mut Ctx<'_, Heap>) -> R {
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
Usage: objsessions

POE's objsessions.perl: sessions whose handlers are an object's methods.

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
                ("_start", Counter::_start),
                ("_stop", Counter::_stop),
                ("increment", Counter::increment),
                ("sigint", Counter::sigint),
            ],
        ))?;
    }
    kernel.run()
}
