//! A token ring on the kernel.
//!
//! A master session creates `N` member sessions (default 100), each known by an alias. A
//! token travels the ring for `H` hops (default 10,000): each hop `call`s the next member
//! synchronously and then `post`s the token to it. When the token is home the last member
//! sends the soft signal `done` to the kernel; the master tells every member to drop its
//! alias, the kernel collects them all and `run()` returns. One summary line is printed.
//!
//! ```text
//! cargo run --release --example token_ring -- [--sessions N] [--hops H]
//! ```

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};
use reactor::{Ctx, Error, HandlerError, Kernel, Session, Value, KERNEL};
use std::time::Instant;

struct Member {
    alias: String,
    next: String,
    seen: u64,
}

const USAGE: &str = "\
Usage: token_ring [--sessions N] [--hops H]

A token travels a ring of sessions; one summary line is printed.

Options:
  --sessions N  members of the ring (default 100)
  --hops H      hops the token makes (default 10000)
  -h, --help    print this help";

/// `--sessions` and `--hops`, each a positive number.
fn options() -> (u64, u64) {
    cli::parse(USAGE, |p| {
        let (mut sessions, mut hops) = (100, 10_000);
        while let Some(arg) = p.next()? {
            match arg {
                Long("sessions") => sessions = positive(p, "--sessions")?,
                Long("hops") => hops = positive(p, "--hops")?,
                Short('h') | Long("help") => cli::help(USAGE),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok((sessions, hops))
    })
}

fn positive(p: &mut cli::Parser, option: &str) -> Result<u64, cli::Error> {
    match cli::value(p, option)? {
        0 => Err(format!("{option} needs a positive number").into()),
        n => Ok(n),
    }
}

fn member(alias: String, next: String) -> Session<Member> {
    Session::new(Member {
        alias,
        next,
        seen: 0,
    })
    .on("_start", |ctx: &mut Ctx<'_, Member>| {
        let alias = ctx.heap().alias.clone();
        ctx.alias_set(&alias)
    })
    .on(
        "token",
        |ctx: &mut Ctx<'_, Member>| -> Result<(), HandlerError> {
            let left = *ctx.arg::<u64>(0)?;
            ctx.heap().seen += 1;
            let next = ctx.heap().next.clone();
            // A synchronous look at the neighbour, then the asynchronous hand-off.
            ctx.call(next.as_str(), "seen", ())?;
            if left > 0 {
                ctx.post(next.as_str(), "token", (left - 1,))?;
            } else {
                ctx.signal(KERNEL, "done", ())?;
            }
            Ok(())
        },
    )
    .on("seen", |ctx: &mut Ctx<'_, Member>| {
        Value::new(ctx.heap().seen)
    })
    .on("shutdown", |ctx: &mut Ctx<'_, Member>| {
        let alias = ctx.heap().alias.clone();
        ctx.alias_remove(&alias)
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sessions, hops) = options();
    let mut kernel = Kernel::new()?;
    let started = Instant::now();
    kernel.create(
        Session::new(())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, ()>| -> Result<(), Error> {
                    ctx.alias_set("master")?;
                    ctx.sig("done", "done", ())?;
                    for i in 0..sessions {
                        ctx.create(member(
                            format!("member{i}"),
                            format!("member{}", (i + 1) % sessions),
                        ))?;
                    }
                    ctx.post("member0", "token", (hops - 1,))
                },
            )
            .on("done", move |ctx: &mut Ctx<'_, ()>| -> Result<(), Error> {
                for i in 0..sessions {
                    ctx.post(format!("member{i}").as_str(), "shutdown", ())?;
                }
                ctx.alias_remove("master")
            }),
    )?;
    kernel.run()?;
    let elapsed = started.elapsed().as_secs_f64();
    let events = hops * 2;
    println!(
        "sessions={sessions} hops={hops} events={events} elapsed_ms={:.1} events_per_sec={:.0}",
        elapsed * 1e3,
        events as f64 / elapsed
    );
    Ok(())
}
