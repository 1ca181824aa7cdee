//! A port of POE's `examples/names.perl`: aliases (which POE first called "names") and a
//! session that serves others through one.
//!
//! A lock daemon registers the alias `lockd` and grants one lock at a time: a client
//! posts `lock` or `unlock` to `lockd` with the lock's name and the events to answer
//! with on success and on failure. Five clients cycle, once a second, through acquiring
//! the lock, doing something, releasing it and doing something else, retrying when the
//! lock is taken. Both kinds of session are objects (`object_states`) that print when
//! they are created and destroyed (Perl's `DESTROY`, here `Drop`), showing themselves the
//! way Perl prints a blessed hash: `LockClient=HASH(0x...)`, the address of the object.
//!
//! ```text
//! cargo run --example names
//! ```
//!
//! It runs until interrupted: on SIGINT the daemon reports the signal but does not handle
//! it (its handler returns a value, which POE ignores), so every session stops. The
//! output matches the Perl program's but for the addresses and for the order in which
//! sessions stop after SIGINT, which in Perl follows a hash's order
//! (`tests/examples_perl.rs`). The Perl client's `timer_loop` method, never registered as
//! a handler, is left out.

#[path = "common/cli.rs"]
mod cli;
use reactor::{Ctx, HandlerError, Kernel, Session, SessionId};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::SystemTime;

type R = Result<(), HandlerError>;

/// The lock daemon. Its heap holds the locks: name → (owner, when taken).
struct LockDaemon;

/// The daemon's heap.
type Locks = HashMap<String, (SessionId, SystemTime)>;

impl LockDaemon {
    /// `LockDaemon->new`: announces itself and wraps itself in a session; the caller keeps
    /// no reference.
    fn create(kernel: &mut Kernel) -> reactor::Result<()> {
        let this = Rc::new(LockDaemon);
        println!("> {} created", this.show());
        kernel.create(Session::new(Locks::new()).object_states(
            this,
            &[
                ("_start", LockDaemon::_start),
                ("_stop", LockDaemon::_stop),
                ("lock", LockDaemon::lock),
                ("unlock", LockDaemon::unlock),
                ("sighandler", LockDaemon::sighandler),
            ],
        ))?;
        Ok(())
    }

    /// How Perl prints the object.
    fn show(&self) -> String {
        format!("LockDaemon=HASH({:p})", self)
    }

    /// `_start`: take the alias and watch INT, IDLE and ZOMBIE.
    fn _start(&self, ctx: &mut Ctx<'_, Locks>) -> R {
        ctx.alias_set("lockd")?;
        ctx.sig("INT", "sighandler", ())?;
        ctx.sig("IDLE", "sighandler", ())?;
        ctx.sig("ZOMBIE", "sighandler", ())?;
        println!("+ lockd started.");
        Ok(())
    }

    /// `sighandler`: only acknowledges the signal. (The Perl handler returns 1, which POE
    /// 1.370 does not read as "handled"; nor is it here.)
    fn sighandler(&self, ctx: &mut Ctx<'_, Locks>) -> R {
        println!("@ lockd caught and handled SIG{}", ctx.arg::<String>(0)?);
        Ok(())
    }

    /// `_stop`: give up the alias.
    fn _stop(&self, ctx: &mut Ctx<'_, Locks>) -> R {
        // The alias is gone already when the session stops; the Perl program ignores the
        // failure too.
        let _ = ctx.alias_remove("lockd");
        println!("- lockd stopped.");
        Ok(())
    }

    /// `lock`: ARG0 the lock's name, ARG1 the event to answer with on success, ARG2 on
    /// failure. The same owner may take its lock again (which refreshes it).
    fn lock(&self, ctx: &mut Ctx<'_, Locks>) -> R {
        let sender = ctx.sender();
        let lock_name = ctx.arg::<String>(0)?.clone();
        let success = ctx.arg::<String>(1)?.clone();
        let failure = ctx.arg::<String>(2)?.clone();
        let now = SystemTime::now();
        let answer = match ctx.heap().get_mut(&lock_name) {
            Some((owner, time)) if *owner == sender => {
                *time = now;
                success
            }
            Some(_) => failure,
            None => {
                ctx.heap().insert(lock_name, (sender, now));
                success
            }
        };
        ctx.post(sender, &answer, ())?;
        Ok(())
    }

    /// `unlock`: as `lock`; only the owner may release a lock.
    fn unlock(&self, ctx: &mut Ctx<'_, Locks>) -> R {
        let sender = ctx.sender();
        let lock_name = ctx.arg::<String>(0)?.clone();
        let success = ctx.arg::<String>(1)?.clone();
        let failure = ctx.arg::<String>(2)?.clone();
        let answer = match ctx.heap().get(&lock_name) {
            Some((owner, _)) if *owner == sender => {
                ctx.heap().remove(&lock_name);
                success
            }
            _ => failure,
        };
        ctx.post(sender, &answer, ())?;
        Ok(())
    }
}

impl Drop for LockDaemon {
    /// `DESTROY`: after its session has stopped and let go of the object.
    fn drop(&mut self) {
        println!("< {} destroyed", self.show());
    }
}

/// A client that needs the lock for some of its work.
struct LockClient {
    name: String,
}

impl LockClient {
    /// `LockClient->new($name)`: announces itself and wraps itself in a session.
    fn create(kernel: &mut Kernel, name: &str) -> reactor::Result<()> {
        let this = Rc::new(LockClient {
            name: name.to_owned(),
        });
        println!("> {} created", this.show());
        kernel.create(Session::new(()).object_states(
            this,
            &[
                ("_start", LockClient::_start),
                ("_stop", LockClient::_stop),
                ("acquire_lock", LockClient::acquire_lock),
                ("retry_acquire", LockClient::retry_acquire),
                ("release_lock", LockClient::release_lock),
                ("retry_release", LockClient::retry_release),
                (
                    "perform_locked_operation",
                    LockClient::perform_locked_operation,
                ),
                (
                    "perform_unlocked_operation",
                    LockClient::perform_unlocked_operation,
                ),
            ],
        ))?;
        Ok(())
    }

    /// How Perl prints the object.
    fn show(&self) -> String {
        format!("LockClient=HASH({:p})", self)
    }

    /// `_start`: begin with work that needs no lock.
    fn _start(&self, ctx: &mut Ctx<'_, ()>) -> R {
        println!("+ client {} started", self.name);
        let me = ctx.session();
        ctx.post(me, "perform_unlocked_operation", ())?;
        Ok(())
    }

    /// `_stop`.
    fn _stop(&self, _ctx: &mut Ctx<'_, ()>) -> R {
        println!("+ client {} stopped", self.name);
        Ok(())
    }

    /// `acquire_lock`: ask `lockd`, and try again in ten seconds should no answer come.
    fn acquire_lock(&self, ctx: &mut Ctx<'_, ()>) -> R {
        println!("??? client {} attempting to acquire lock...", self.name);
        ctx.delay("acquire_lock", 10, ())?;
        ctx.post(
            "lockd",
            "lock",
            (
                "lock name".to_owned(),
                "perform_locked_operation".to_owned(),
                "retry_acquire".to_owned(),
            ),
        )?;
        Ok(())
    }

    /// `retry_acquire`: the lock is taken; try again in a second.
    fn retry_acquire(&self, ctx: &mut Ctx<'_, ()>) -> R {
        println!("--- client {} acquire failed... retrying...", self.name);
        ctx.delay("acquire_lock", 1, ())?;
        Ok(())
    }

    /// `release_lock`: ask `lockd`, and try again in ten seconds should no answer come.
    fn release_lock(&self, ctx: &mut Ctx<'_, ()>) -> R {
        println!("??? client {} attempting to release lock...", self.name);
        ctx.delay("release_lock", 10, ())?;
        ctx.post(
            "lockd",
            "unlock",
            (
                "lock name".to_owned(),
                "perform_unlocked_operation".to_owned(),
                "retry_release".to_owned(),
            ),
        )?;
        Ok(())
    }

    /// `retry_release`: the release failed; try again in a second.
    fn retry_release(&self, ctx: &mut Ctx<'_, ()>) -> R {
        println!("--- client {} release failed... retrying...", self.name);
        ctx.delay("release_lock", 1, ())?;
        Ok(())
    }

    /// `perform_locked_operation`: holding the lock; release it in a second.
    fn perform_locked_operation(&self, ctx: &mut Ctx<'_, ()>) -> R {
        ctx.alarm_clear("acquire_lock")?; // $kernel->delay('acquire_lock')
        println!("+++ client {} acquired lock... processing...", self.name);
        ctx.delay("release_lock", 1, ())?;
        Ok(())
    }

    /// `perform_unlocked_operation`: not holding the lock; want it again in a second.
    fn perform_unlocked_operation(&self, ctx: &mut Ctx<'_, ()>) -> R {
        ctx.alarm_clear("release_lock")?; // $kernel->delay('release_lock')
        println!("+++ client {} released lock... processing...", self.name);
        ctx.delay("acquire_lock", 1, ())?;
        Ok(())
    }
}

impl Drop for LockClient {
    /// `DESTROY`.
    fn drop(&mut self) {
        println!("< {} destroyed", self.show());
    }
}

const USAGE: &str = "\
Usage: names

POE's names.perl: a lock daemon known by an alias, and five clients of it.
Runs until interrupted.

Options:
  -h, --help  print this help";

fn main() -> Result<(), reactor::Error> {
    cli::no_args(USAGE);
    let mut kernel = Kernel::new()?;
    LockDaemon::create(&mut kernel)?;
    for n in 1..=5 {
        LockClient::create(&mut kernel, &n.to_string())?;
    }
    kernel.run()
}
