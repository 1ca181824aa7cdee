//! Timers: POE's delay and alarm family.

use super::session::SessionId;
use super::{EventName, ItemKind, Kernel};
use crate::clock::{duration_to_time, secs_to_time, Time};
use crate::error::{Error, Result};
use crate::queue::{ItemId, QueueError};
use crate::value::{Args, IntoArgs};
use std::panic::Location;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// An alarm's id (POE's alarm id): returned by `alarm_set` and `delay_set`.
pub type AlarmId = ItemId;

/// A number of seconds, as POE takes them: `f64`, integers or a [`Duration`]. Negative
/// values are allowed for delays and adjustments.
pub trait Seconds {
    /// The signed length in nanoseconds.
    fn nanos(self) -> Time;
}

impl Seconds for f64 {
    fn nanos(self) -> Time {
        secs_to_time(self)
    }
}
impl Seconds for i32 {
    fn nanos(self) -> Time {
        i64::from(self) * 1_000_000_000
    }
}
impl Seconds for i64 {
    fn nanos(self) -> Time {
        self.saturating_mul(1_000_000_000)
    }
}
impl Seconds for u32 {
    fn nanos(self) -> Time {
        i64::from(self) * 1_000_000_000
    }
}
impl Seconds for u64 {
    fn nanos(self) -> Time {
        i64::try_from(self)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000_000)
    }
}
impl Seconds for Duration {
    fn nanos(self) -> Time {
        duration_to_time(self)
    }
}

/// A wall-clock time, as POE takes them: a [`SystemTime`] or epoch seconds (`f64`).
pub trait Epoch {
    /// As a [`SystemTime`].
    fn system_time(self) -> SystemTime;
}

impl Epoch for SystemTime {
    fn system_time(self) -> SystemTime {
        self
    }
}

impl Epoch for f64 {
    fn system_time(self) -> SystemTime {
        let d = Duration::try_from_secs_f64(self.abs()).unwrap_or(Duration::MAX);
        if self >= 0.0 {
            UNIX_EPOCH.checked_add(d).unwrap_or(UNIX_EPOCH)
        } else {
            UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
        }
    }
}

/// Epoch seconds of a wall-clock time (POE's representation of alarm times).
pub fn epoch_secs(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// An alarm taken out of the queue: its name, due time and arguments.
///
/// The due time is the point on the kernel's monotonic timeline ([`Kernel::monotime`])
/// the alarm was set for; [`Kernel::wall_at`] gives it as wall-clock time, as POE's
/// `alarm_remove` does. It is not converted here because most removals (a timeout that
/// did not expire) never look at it, and the conversion was about a fifth of a cancel's
/// work (see docs/benchmarks.md, "Fifth pass").
#[derive(Debug, Clone)]
pub struct RemovedAlarm {
    /// The event name the alarm would have fired.
    pub name: EventName,
    /// When it was due, on the kernel's timeline: `kernel.wall_at(due)` is the wall-clock
    /// time.
    pub due: Time,
    /// Its arguments.
    pub args: Args,
}

impl Kernel {
    fn timer_name(&mut self, name: &str) -> Result<super::EventId> {
        if name.is_empty() {
            return Err(Error::InvalidArgument("undefined event name"));
        }
        Ok(self.intern(name))
    }

    fn clear_named(&mut self, me: SessionId, ev: super::EventId) {
        let Some(key) = self.key_of(me) else { return };
        if self.sessions[key].timers == 0 {
            return;
        }
        let gone = self
            .queue
            .remove_matching(|it| it.is_timer_of(key as u32) && it.event() == ev);
        for (_, id, it) in gone {
            self.item_left(id, it);
        }
    }

    /// Queues a timer of the active session. The arguments come boxed, as the queue keeps
    /// them: two words in registers, where an `Args` is passed through memory and read
    /// back wider than it was written (a failed store forward on every timer set).
    fn add_timer(
        &mut self,
        ev: super::EventId,
        t: Time,
        args: Box<[crate::value::Arg]>,
        caller: &'static Location<'static>,
    ) -> Result<AlarmId> {
        let me = self.require_active_session()?;
        if !self.sender_alive() {
            return Err(Error::NoActiveSession);
        }
        Ok(self.enqueue_boxed(ItemKind::Timer, me, me, ev, args, t, caller))
    }

    /// Sets the alarm `name` to fire at `when`, clearing every other alarm of that name in
    /// the active session (POE's `alarm(NAME, EPOCH, ARGS)`).
    #[track_caller]
    pub fn alarm(&mut self, name: &str, when: impl Epoch, args: impl IntoArgs) -> Result<()> {
        let caller = Location::caller();
        let me = self.require_active_session()?;
        let ev = self.timer_name(name)?;
        self.clear_named(me, ev);
        let t = self.time_of(when.system_time());
        self.add_timer(ev, t, args.into_args().into_boxed(), caller)
            .map(drop)
    }

    /// Clears every alarm named `name` in the active session (POE's `alarm(NAME)` and
    /// `delay(NAME)` without a time).
    pub fn alarm_clear(&mut self, name: &str) -> Result<()> {
        let me = self.require_active_session()?;
        let ev = self.timer_name(name)?;
        self.clear_named(me, ev);
        Ok(())
    }

    /// Adds an alarm without clearing others of the same name (POE's `alarm_add`).
    #[track_caller]
    pub fn alarm_add(&mut self, name: &str, when: impl Epoch, args: impl IntoArgs) -> Result<()> {
        self.alarm_set(name, when, args).map(drop)
    }

    /// Adds an alarm and returns its id (POE's `alarm_set`).
    #[track_caller]
    pub fn alarm_set(
        &mut self,
        name: &str,
        when: impl Epoch,
        args: impl IntoArgs,
    ) -> Result<AlarmId> {
        let caller = Location::caller();
        self.require_active_session()?;
        let ev = self.timer_name(name)?;
        let t = self.time_of(when.system_time());
        self.add_timer(ev, t, args.into_args().into_boxed(), caller)
    }

    /// Sets `name` to fire `secs` from now, clearing other alarms of that name (POE's
    /// `delay(NAME, SECONDS, ARGS)`).
    #[track_caller]
    pub fn delay(&mut self, name: &str, secs: impl Seconds, args: impl IntoArgs) -> Result<()> {
        let caller = Location::caller();
        let me = self.require_active_session()?;
        let ev = self.timer_name(name)?;
        self.clear_named(me, ev);
        let t = self.timer_base().saturating_add(secs.nanos());
        self.add_timer(ev, t, args.into_args().into_boxed(), caller)
            .map(drop)
    }

    /// Adds a delayed event without clearing others of that name (POE's `delay_add`).
    #[track_caller]
    pub fn delay_add(&mut self, name: &str, secs: impl Seconds, args: impl IntoArgs) -> Result<()> {
        self.delay_set(name, secs, args).map(drop)
    }

    /// Adds a delayed event and returns its id (POE's `delay_set`).
    #[track_caller]
    pub fn delay_set(
        &mut self,
        name: &str,
        secs: impl Seconds,
        args: impl IntoArgs,
    ) -> Result<AlarmId> {
        let caller = Location::caller();
        self.require_active_session()?;
        let ev = self.timer_name(name)?;
        let t = self.timer_base().saturating_add(secs.nanos());
        self.add_timer(ev, t, args.into_args().into_boxed(), caller)
    }

    /// Removes one alarm of the active session and returns what it was (POE's
    /// `alarm_remove`). Fails with [`Error::NoSuchAlarm`] (ESRCH) or [`Error::NotOwner`]
    /// (EPERM).
    #[inline]
    pub fn alarm_remove(&mut self, id: AlarmId) -> Result<RemovedAlarm> {
        let me = self.active_key()?;
        let (t, it) = self
            .queue
            .remove_if(id, |it| it.is_timer_of(me))
            .map_err(|e| self.timer_refusal(id, e))?;
        // Timers are set by their session for itself: `me` is both keys, and the release
        // is `item_left`'s, done here on the one session record.
        debug_assert!(it.dest_key == me && self.extras[id.slot()].sender_key == me);
        self.timer_items -= 1;
        let r = &mut self.sessions[me as usize];
        r.timers -= 1;
        r.events_to -= 1;
        if r.events_to == 0 {
            self.ref_dec_key(me as usize);
        }
        let args = self.take_args(id, it);
        Ok(RemovedAlarm {
            name: self.names.shared(it.event()),
            due: t,
            args: Args::from_boxed(args),
        })
    }

    /// Removes every alarm of the active session (POE's `alarm_remove_all`).
    pub fn alarm_remove_all(&mut self) -> Result<Vec<RemovedAlarm>> {
        let me = self.active_key()?;
        let gone = self.queue.remove_matching(|it| it.is_timer_of(me));
        let mut out = Vec::with_capacity(gone.len());
        for (t, id, it) in gone {
            let args = self.item_left(id, it);
            out.push(RemovedAlarm {
                name: self.names.shared(it.event()),
                due: t,
                args: Args::from_boxed(args),
            });
        }
        Ok(out)
    }

    /// Moves an alarm by `delta` seconds (may be negative); returns its new due time (POE's
    /// `alarm_adjust`).
    pub fn alarm_adjust(&mut self, id: AlarmId, delta: impl Seconds) -> Result<SystemTime> {
        let me = self.active_key()?;
        let d = delta.nanos();
        let t = self
            .queue
            .retime_if(id, |it| it.is_timer_of(me), |t| t.saturating_add(d))
            .map_err(|e| self.timer_refusal(id, e))?;
        Ok(self.wall_at(t))
    }

    /// Re-times an alarm to fire `secs` from now; returns its new due time (POE's
    /// `delay_adjust`).
    pub fn delay_adjust(&mut self, id: AlarmId, secs: impl Seconds) -> Result<SystemTime> {
        let me = self.active_key()?;
        let t = self.timer_base().saturating_add(secs.nanos());
        let t = self
            .queue
            .retime_if(id, |it| it.is_timer_of(me), |_| t)
            .map_err(|e| self.timer_refusal(id, e))?;
        Ok(self.wall_at(t))
    }

    fn timer_refusal(&self, id: AlarmId, e: QueueError) -> Error {
        match e {
            QueueError::NotFound => Error::NoSuchAlarm,
            QueueError::Refused => match self.queue.get(id) {
                Some((_, it)) if it.kind() == ItemKind::Timer => Error::NotOwner,
                _ => Error::NoSuchAlarm,
            },
        }
    }
}
