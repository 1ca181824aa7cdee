//! A port of POE's `examples/signals.perl`: real and fake signals, sent to one session
//! and to every session.
//!
//! Two sessions watch SIGINT and some made-up signals. Every second the first one sends
//! SIGFOO to itself (`signal($session, 'FOO')`); every half second the second one sends
//! SIGQUUX to the kernel (`signal($kernel, 'QUUX')`), which reaches every session watching
//! it. On SIGINT both report it, clear their timers, and, the signal being unhandled,
//! stop.
//!
//! ```text
//! cargo run --example signals
//! ```
//!
//! Runs until SIGINT (Ctrl-C). Which of the two alarms rings first when both are due
//! together depends on timing, in Perl as here; `tests/examples_perl.rs` compares what
//! does not.

#[path = "common/cli.rs"]
mod cli;
use reactor::{Ctx, HandlerError, Kernel, Session, KERNEL};

type R = Result<(), HandlerError>;

const USAGE: &str = "\
Usage: signals

POE's signals.perl: real and fake signals, to one session and to every session.
Runs until SIGINT.

Options:
  -h, --help  print this help";

fn main() -> Result<(), reactor::Error> {
    cli::no_args(USAGE);
    let mut kernel = Kernel::new()?;

    kernel.create(
        Session::new(())
            .on("_start", |ctx: &mut Ctx<'_, ()>| -> R {
                ctx.sig("INT", "signal handler", ())?;
                ctx.sig("FOO", "signal handler", ())?;
                ctx.sig("QUUX", "signal handler", ())?;
                println!("First session started... send SIGINT to stop.");
                ctx.delay("set an alarm", 1, ())?;
                Ok(())
            })
            .on("_stop", |_: &mut Ctx<'_, ()>| {
                println!("First session stopped.");
            })
            .on("set an alarm", |ctx: &mut Ctx<'_, ()>| -> R {
                println!("First session's alarm rang.  Sending SIGFOO to itself...");
                let me = ctx.session();
                ctx.signal(me, "FOO", ())?;
                ctx.delay("set an alarm", 1, ())?;
                Ok(())
            })
            .on("signal handler", |ctx: &mut Ctx<'_, ()>| -> R {
                let signal = ctx.arg::<String>(0)?.clone();
                println!("First session caught SIG{signal}");
                if signal == "INT" {
                    println!("First session stopping...");
                    ctx.alarm_clear("set an alarm")?; // $kernel->delay('set an alarm')
                }
                Ok(())
            }),
    )?;

    kernel.create(
        Session::new(())
            .on("_start", |ctx: &mut Ctx<'_, ()>| -> R {
                ctx.sig("INT", "signal handler", ())?;
                ctx.sig("BAZ", "signal handler", ())?;
                ctx.sig("QUUX", "signal handler", ())?;
                println!("Second session started... send SIGINT to stop.");
                ctx.delay("set an alarm", 0.5, ())?;
                Ok(())
            })
            .on("_stop", |_: &mut Ctx<'_, ()>| {
                println!("Second session stopped.");
            })
            .on("set an alarm", |ctx: &mut Ctx<'_, ()>| -> R {
                println!("Second session's alarm rang.  Sending SIGQUUX to kernel...");
                ctx.signal(KERNEL, "QUUX", ())?;
                ctx.delay("set an alarm", 0.5, ())?;
                Ok(())
            })
            .on("signal handler", |ctx: &mut Ctx<'_, ()>| -> R {
                let signal = ctx.arg::<String>(0)?.clone();
                println!("Second session caught SIG{signal}");
                if signal == "INT" {
                    println!("Second session stopping...");
                    ctx.alarm_clear("set an alarm")?;
                }
                Ok(())
            }),
    )?;

    kernel.run()
}
