//! A port of POE's `examples/sessions.perl`, the first test program written for POE.
//!
//! A main session creates ten child sessions. Each counts to five with `post` and `yield`,
//! uses `call` return values, and adds and removes a handler at run time with `state`;
//! the main session's `_child` reports creates (with each `_start`'s return value) and
//! losses. Its output is byte-identical to the Perl program's (see
//! `tests/fixtures/sessions.perl.out` and `tests/sessions_example.rs`).
//!
//! Run: `cargo run --example sessions`

#[path = "common/cli.rs"]
mod cli;
use reactor::{Ctx, HandlerError, Kernel, Session, SessionId, Value};

type R = Result<Value, HandlerError>;

/// The child's heap: its name, as `$heap->{'name'}`.
type ChildHeap = String;

fn child_start(ctx: &mut Ctx<'_, ChildHeap>) -> R {
    ctx.sig("INT", "sigint", ())?;
    let sid = ctx.session();
    let name = ctx.heap().clone();
    println!("Session {name} (SID {sid}) started.");
    Ok(Value::new(format!("i am {name} (SID {sid})")))
}

fn child_stop(ctx: &mut Ctx<'_, ChildHeap>) {
    let sid = ctx.session();
    println!("Session {} (SID {sid}) stopped.", ctx.heap());
}

fn child_increment(ctx: &mut Ctx<'_, ChildHeap>) -> Result<(), HandlerError> {
    let name = ctx.arg::<String>(0)?.clone();
    let count = *ctx.arg::<u32>(1)? + 1;
    if count % 2 == 1 {
        ctx.state("runtime_state", child_runtime_state)?;
    } else {
        ctx.remove_state("runtime_state")?;
    }
    let me = ctx.session();
    println!("Session {name} (SID {me}), iteration {count}...");
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
        ctx.post(me, "increment", (name.clone(), count))?;
        ctx.yield_("runtime_state", (name, count))?;
    }
    Ok(())
}

fn child_runtime_state(ctx: &mut Ctx<'_, ChildHeap>) -> Result<(), HandlerError> {
    let name = ctx.arg::<String>(0)?;
    let iteration = ctx.arg::<u32>(1)?;
    println!("Session {name} received a runtime_state event during iteration {iteration}");
    Ok(())
}

fn child_display_one(ctx: &mut Ctx<'_, ChildHeap>) -> R {
    let (name, count) = (ctx.arg::<String>(0)?, *ctx.arg::<u32>(1)?);
    println!("\t(display one, {name}, iteration {count})");
    Ok(Value::new(count * 2))
}

fn child_display_two(ctx: &mut Ctx<'_, ChildHeap>) -> R {
    let (name, count) = (ctx.arg::<String>(0)?, *ctx.arg::<u32>(1)?);
    println!("\t(display two, {name}, iteration {count})");
    Ok(Value::new(count * 3))
}

fn child_fetch_name(ctx: &mut Ctx<'_, ChildHeap>) -> Value {
    Value::new(ctx.heap().clone())
}

fn main_start(ctx: &mut Ctx<'_, ()>) -> Result<(), reactor::Error> {
    for name in [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ] {
        let child = ctx.create(
            Session::new(name.to_owned())
                .on("_start", child_start)
                .on("_stop", child_stop)
                .on("increment", child_increment)
                .on("display_one", child_display_one)
                .on("display_two", child_display_two)
                .on("fetch_name", child_fetch_name),
        )?;
        ctx.post(child, "increment", (name.to_owned(), 0u32))?;
    }
    Ok(())
}

fn main_stop(_ctx: &mut Ctx<'_, ()>) {
    println!("*** Main session stopped.");
}

fn main_child(ctx: &mut Ctx<'_, ()>) -> Result<(), HandlerError> {
    let direction = ctx.arg::<String>(0)?.clone();
    let child = *ctx.arg::<SessionId>(1)?;
    let ret = match ctx.args().opt::<Value>(2).and_then(|v| v.get::<String>()) {
        Some(r) if direction == "create" => format!(" (child returns: {r})"),
        _ => String::new(),
    };
    let sid = ctx.session();
    let name = ctx
        .call(child, "fetch_name", ())?
        .take::<String>()
        .unwrap_or_default();
    println!("*** Main session (SID {sid}) {direction}s child {name}{ret}");
    Ok(())
}

const USAGE: &str = "\
Usage: sessions

POE's sessions.perl: ten sessions count to five with post, yield and call.

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
