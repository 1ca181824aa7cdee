//! The run loop: POE's timeslice.

use super::session::KERNEL;
use super::{ItemKind, Kernel, EV_IDLE, NO_KEY};
use crate::clock::Time;
use crate::error::{Error, Result};
use crate::value::Args;
use std::panic::Location;
use std::time::Duration;

/// POE never sleeps longer than an hour at a time.
const MAX_WAIT: Time = 3_600_000_000_000;

impl Kernel {
    /// Runs until no session is left (POE's `run`). Returns the unhandled exception, if
    /// one ended the run; the kernel can be run again afterwards.
    pub fn run(&mut self) -> Result<()> {
        while self.session_count() > 0 {
            self.timeslice()?;
        }
        self.finalize()
    }

    /// Runs one timeslice (POE's `run_one_timeslice`): returns `Ok(false)`, after
    /// finalizing, once no session is left.
    pub fn run_one_timeslice(&mut self) -> Result<bool> {
        if self.session_count() == 0 {
            self.finalize()?;
            return Ok(false);
        }
        self.timeslice()?;
        if self.session_count() == 0 {
            self.finalize()?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Runs timeslices while `cond` holds and sessions remain (POE's `run_while`).
    pub fn run_while(&mut self, mut cond: impl FnMut(&Kernel) -> bool) -> Result<()> {
        while cond(self) && self.run_one_timeslice()? {}
        Ok(())
    }

    fn finalize(&mut self) -> Result<()> {
        // Whatever is left (a ZOMBIE queued as the last session went) has no one to go to.
        let left = self.queue.remove_matching(|_| true);
        for (_, id, it) in left {
            self.item_left(id, it);
        }
        self.wheel_wakes_forget();
        match self.exception.take() {
            Some(e) => Err(Error::Exception(e)),
            None => Ok(()),
        }
    }

    fn is_idle(&self) -> bool {
        self.queue.is_empty()
            && self.io.watched_fds() == 0
            && self.wheels.holding() == 0
            && self.extref_sessions == 0
            && self.signals.child_watches() == 0
            && self.session_count() > 0
    }

    fn timeslice(&mut self) -> Result<()> {
        self.flush_postbacks();
        // What was let go outside any handler (a wheel's handle dropped by the program
        // between timeslices, say) is released now, not after the next handler, which may
        // be long in coming.
        self.drain_releases();
        self.drain_posts();
        // 1. Nothing can make new events: tell everyone.
        if self.is_idle() {
            let t = self.now_fifo();
            self.enqueue(
                ItemKind::Signal,
                KERNEL,
                KERNEL,
                EV_IDLE,
                Args::new(),
                t,
                Location::caller(),
            );
        }
        // 2. How long may we wait?
        let quiet = self.timer_items == 0 && !self.io.has_registrations() && self.wheels.len() == 0;
        let mut now = if quiet && !self.queue.is_empty() {
            // Only posts and signals wait, all due by construction, and nothing can become
            // ready: no need to ask the clock what time it is.
            self.last_fifo.max(self.batch_prev)
        } else {
            self.clock.now()
        };
        self.queue.settle();
        let mut wait = match self.queue.next_time() {
            Some(t) => (t.saturating_sub(now)).clamp(0, MAX_WAIT),
            None => MAX_WAIT,
        };
        if self.wheels.has_active() {
            wait = 0;
        }
        if wait > 0 {
            if let Some(t) = self.queue.next_time() {
                if self.clock.skip_to(t) {
                    wait = 0;
                    now = self.clock.now();
                }
            }
        }
        // 3 and 4. Poll, dispatch I/O, sweep. With nothing registered and no reason to
        // wait there is nothing to ask the poller.
        if wait > 0 || self.io.has_registrations() || self.wheels.len() > 0 {
            let fifo_before = self.last_fifo;
            self.poll_io(Some(Duration::from_nanos(wait as u64)))?;
            self.gc_sweep();
            // POE reads the clock after I/O: what the I/O handlers posted, and the timers
            // that came due meanwhile, run in this timeslice. A post is due when made, even
            // where a manual clock has not moved past it.
            now = self.clock.now();
            if self.last_fifo != fifo_before {
                now = now.max(self.last_fifo);
            }
        }
        // 5. Every item due by one snapshot of now, then sweep.
        self.dispatch_due(now);
        self.gc_sweep();
        if self.exception.is_some() && self.session_count() > 0 {
            self.stop();
        }
        Ok(())
    }

    fn dispatch_due(&mut self, now: Time) {
        self.batch_prev = now;
        self.batch_now = Some(now);
        let batched = self.queue.gather_due(now);
        while let Some((_, id, it)) = self.queue.dequeue_due(now) {
            if batched {
                self.touch_extras_ahead();
            }
            // Read the rest of the item before anything can reuse its slot.
            let x = &self.extras[id.slot()];
            let (caller_state, caller, sender_key) = (x.caller_state, x.caller, x.sender_key);
            let args = self.item_left(id, it);
            match it.kind() {
                ItemKind::Gc => {}
                ItemKind::Signal => {
                    let dest = self.session_of_key(it.dest_key);
                    self.dispatch_signal(dest, it.event(), Args::from_boxed(args))
                }
                ItemKind::Post | ItemKind::Timer => {
                    // Items to a session leave the queue when it is freed, so the key the
                    // item carries still names it.
                    let key = it.dest_key as usize;
                    if it.dest_key == NO_KEY {
                        // A timer to the kernel is a wheel's wake-up (wakes.rs).
                        if it.kind() == ItemKind::Timer {
                            self.wheel_wake_due(id, Args::from_boxed(args));
                        }
                    } else {
                        let (dest, sender) = (
                            self.session_of_key(it.dest_key),
                            self.session_of_key(sender_key),
                        );
                        self.dispatch_queued(
                            key,
                            dest,
                            sender,
                            it.event(),
                            args,
                            caller_state,
                            caller,
                        );
                    }
                }
            }
            if self.exception.is_some() {
                self.batch_now = None;
                self.stop();
                return;
            }
        }
        self.batch_now = None;
    }
}
