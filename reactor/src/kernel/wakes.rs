//! Wake-ups: a wheel asks to be called back after a delay, as POE's wheels do with a
//! `delay` on a state of their own (`POE::Wheel::FollowTail` polls a file this way).
//!
//! A wake-up is a timer in the kernel's one queue, so it runs in the event phase among
//! the other timers, in POE's order. It is addressed to the kernel rather than to the
//! wheel's owner: the owner's handler table and `alarm_remove_all` never see it, and it
//! takes no reference on the session (the wheel holds one while it has work, see
//! [`Wheel::holds_session`](crate::wheel::Wheel::holds_session)). A wheel has at most one
//! wake-up; asking again replaces it, and removing the wheel cancels it.
//!
//! Timers addressed to the kernel exist for this only: the run loop hands every one that
//! comes due to [`Kernel::wheel_wake_due`].

use super::session::KERNEL;
use super::{ItemKind, Kernel, Seconds, EV_NONE};
use crate::error::{Error, Result};
use crate::ids::WheelId;
use crate::queue::ItemId;
use crate::value::Args;
use rustc_hash::FxHashMap as HashMap;
use std::panic::Location;

/// What a wake-up calls: the wheel's own function, given the kernel and the wheel's id.
pub type WakeFn = fn(&mut Kernel, WheelId);

/// The pending wake-up of each wheel that has one: its queue item.
#[derive(Default)]
pub(crate) struct Wakes {
    items: HashMap<u64, ItemId>,
}

impl Kernel {
    /// Calls `f(kernel, id)` `secs` from now (POE: a wheel's `delay` on its own state), in
    /// the event phase, ordered among the timers as a `delay` made now would be. It
    /// replaces the wheel's earlier wake-up, if any, and is cancelled when the wheel is
    /// removed: `f` runs only while wheel `id` exists. Fails with
    /// [`Error::InvalidArgument`] if there is no such wheel.
    ///
    /// `f` runs outside any handler, as a wheel's I/O dispatch does: it reaches the wheel
    /// with [`wheel_mut`](Kernel::wheel_mut) and emits events with
    /// [`wheel_call`](Kernel::wheel_call). Afterwards, a wheel whose
    /// [`holds_session`](crate::wheel::Wheel::holds_session) now says `false` lets its
    /// session go.
    #[track_caller]
    pub fn wheel_wake(&mut self, id: WheelId, secs: impl Seconds, f: WakeFn) -> Result<()> {
        let caller = Location::caller();
        if self.wheel_owner(id).is_none() {
            return Err(Error::InvalidArgument("no such wheel"));
        }
        self.wheel_wake_clear(id);
        let t = self.timer_base().saturating_add(secs.nanos());
        let mut args = Args::new();
        args.push(id);
        args.push(f);
        let item = self.enqueue(ItemKind::Timer, KERNEL, KERNEL, EV_NONE, args, t, caller);
        self.wheel_wakes.items.insert(id.0, item);
        Ok(())
    }

    /// Cancels the pending wake-up of wheel `id`, if there is one.
    pub fn wheel_wake_clear(&mut self, id: WheelId) {
        if let Some(item) = self.wheel_wakes.items.remove(&id.0) {
            if let Some((_, it)) = self.queue.remove(item) {
                self.item_left(item, it);
            }
        }
    }

    /// Whether wheel `id` has a wake-up pending.
    pub fn wheel_wake_pending(&self, id: WheelId) -> bool {
        self.wheel_wakes.items.contains_key(&id.0)
    }

    /// A timer addressed to the kernel came due: the wake-up of the wheel it names.
    pub(crate) fn wheel_wake_due(&mut self, item: ItemId, args: Args) {
        let (Ok(&id), Ok(&f)) = (args.get::<WheelId>(0), args.get::<WakeFn>(1)) else {
            return;
        };
        if self.wheel_wakes.items.get(&id.0) != Some(&item) {
            return;
        }
        self.wheel_wakes.items.remove(&id.0);
        if self.wheel_owner(id).is_some() {
            f(self, id);
            self.wheel_settle(id);
        }
    }

    /// Forgets every wake-up (the queue has been emptied).
    pub(crate) fn wheel_wakes_forget(&mut self) {
        self.wheel_wakes.items.clear();
    }
}
