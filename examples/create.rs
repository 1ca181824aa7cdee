//! A port of POE's `examples/create.perl`: `sessions.perl` written with
//! `POE::Session->create`, half of the children built from `inline_states` and half from
//! `object_states`.
//!
//! A main session creates ten children. "one" to "five" map their events to plain
//! functions; "six" to "ten" map them to methods of a `Counter` object whose methods do
//! what the functions do. Each child counts to five with `post`, calling `display_one`
//! and `display_two` with `call` and printing what they return; the main session's
//! `_child` reports each creation (with the child's `_start` return value) and each loss.
//! Its output is byte-identical to the Perl program's (`tests/examples_perl.rs`).
//!
//! Run: `cargo run --example create`
//!
//! The Perl program hands each child its name through a global set just before
//! `create` (its "stupid scope trick"); here the name is the child's heap from the start.

#[path = "common/cli.rs"]
mod cli;
use reactor::{Ctx, HandlerError, Kernel, Session, SessionId, Value};
use std::rc::Rc;

type R = Result<Value, HandlerError>;

/// A child's heap: its name (`$heap->{'name'}`).
type ChildHeap = String;

/// `_start`: watch SIGINT (with a handler that does not exist, as in the Perl program),
/// say hello, and return a greeting the parent's `_child` prints.
fn child_start(ctx: &mut Ctx<'_, ChildHeap>) -> R {
    ctx.sig("INT", "sigint", ())?;
    let name = ctx.heap().clone();
    println!("Session {name} started.");
    Ok(Value::new(format!("i am {name}")))
}

/// `_stop`.
fn child_stop(ctx: &mut Ctx<'_, ChildHeap>) {
    println!("Session {} stopped.", ctx.heap());
}

/// `increment`: count, show two `call` results, and post the next step until five.
fn child_increment(ctx: &mut Ctx<'_, ChildHeap>) -> Result<(), HandlerError> {
    let name = ctx.arg::<String>(0)?.clone();
    let count = *ctx.arg::<u32>(1)? + 1;
    println!("Session {name}, iteration {count}...");
    let me = ctx.session();
    let ret = ctx.call(me, "display_one", (name.clone(), count))?;
    println!(
        "\t(display one returns: {})",
        ret.get::<u32>().copied().unwrap_or_default()
    );
    let ret = ctx.call(me, "display_two", (name.clone(), count))?;
    println!(
        "\t(display two returns: {})",
        ret.get::<u32>().copied().unwrap_or_default()
    );
    if count < 5 {
        ctx.post(me, "increment", (name, count))?;
    }
    Ok(())
}

/// `display_one`: called, not posted; returns twice the count.
fn child_display_one(ctx: &mut Ctx<'_, ChildHeap>) -> R {
    let (name, count) = (ctx.arg::<String>(0)?, *ctx.arg::<u32>(1)?);
    println!("\t(display one, {name}, iteration {count})");
    Ok(Value::new(count * 2))
}

/// `display_two`: called, not posted; returns three times the count.
fn child_display_two(ctx: &mut Ctx<'_, ChildHeap>) -> R {
    let (name, count) = (ctx.arg::<String>(0)?, *ctx.arg::<u32>(1)?);
    println!("\t(display two, {name}, iteration {count})");
    Ok(Value::new(count * 3))
}

/// `fetch_name`: the parent calls it to learn the child's name.
fn child_fetch_name(ctx: &mut Ctx<'_, ChildHeap>) -> Value {
    Value::new(ctx.heap().clone())
}

/// The object behind the `object_states` children (Perl's `package Counter`, a blessed
/// empty array whose methods `goto` the plain functions).
struct Counter;

impl Counter {
    fn start(&self, ctx: &mut Ctx<'_, ChildHeap>) -> R {
        child_start(ctx)
    }
    fn stop(&self, ctx: &mut Ctx<'_, ChildHeap>) -> R {
        child_stop(ctx);
        Ok(Value::none())
    }
    fn increment(&self, ctx: &mut Ctx<'_, ChildHeap>) -> R {
        child_increment(ctx).map(|()| Value::none())
    }
    fn display_one(&self, ctx: &mut Ctx<'_, ChildHeap>) -> R {
        child_display_one(ctx)
    }
    fn display_two(&self, ctx: &mut Ctx<'_, ChildHeap>) -> R {
        child_display_two(ctx)
    }
    fn fetch_name(&self, ctx: &mut Ctx<'_, ChildHeap>) -> R {
        Ok(child_fetch_name(ctx))
    }
}

fn main_start(ctx: &mut Ctx<'_, ()>) -> Result<(), reactor::Error> {
    for name in ["one", "two", "three", "four", "five"] {
        let session = ctx.create(
            Session::new(name.to_owned())
                .on("_start", child_start)
                .on("_stop", child_stop)
                .on("increment", child_increment)
                .on("display_one", child_display_one)
                .on("display_two", child_display_two)
                .on("fetch_name", child_fetch_name),
        )?;
        // The bootstrap event that keeps the new session alive.
        ctx.post(session, "increment", (name.to_owned(), 0u32))?;
    }
    for name in ["six", "seven", "eight", "nine", "ten"] {
        let session = ctx.create(Session::new(name.to_owned()).object_states(
            Rc::new(Counter),
            &[
                ("_start", Counter::start),
                ("_stop", Counter::stop),
                ("increment", Counter::increment),
                ("display_one", Counter::display_one),
                ("display_two", Counter::display_two),
                ("fetch_name", Counter::fetch_name),
            ],
        ))?;
        ctx.post(session, "increment", (name.to_owned(), 0u32))?;
    }
    Ok(())
}

fn main_stop(_ctx: &mut Ctx<'_, ()>) {
    println!("*** Main session stopped.");
}

/// `_child`: ARG0 is "create", "gain" or "lose", ARG1 the child, ARG2 (on create) what
/// its `_start` returned.
fn main_child(ctx: &mut Ctx<'_, ()>) -> Result<(), HandlerError> {
    let direction = ctx.arg::<String>(0)?.clone();
    let child = *ctx.arg::<SessionId>(1)?;
    let ret = match ctx.args().opt::<Value>(2).and_then(|v| v.get::<String>()) {
        Some(r) if direction == "create" => format!(" (child returns: {r})"),
        _ => String::new(),
    };
    let name = ctx
        .call(child, "fetch_name", ())?
        .take::<String>()
        .unwrap_or_default();
    println!("*** Main session {direction}s child {name}{ret}");
    Ok(())
}

const USAGE: &str = "\
Usage: create

POE's create.perl: ten sessions made with POE::Session->create count to five.

Options:
  -h, --help  print this help";

fn main() -> Result<(), reactor::Error> {
    cli::no_args(USAGE);
    let mut kernel = Kernel::new()?;
    kernel.create(
        Session::new(())
            .on("_start", main_start)
            .on("_stop", main_stop)
            .on("_child", main_child),
    )?;
    kernel.run()
}
