//! Queued items: what the queue orders and what waits beside it, and how items enter
//! and leave the queue.

use super::session::SessionId;
use super::{EventId, Kernel, NO_KEY};
use crate::clock::Time;
use crate::queue::ItemId;
use crate::value::Args;
use std::panic::Location;
/// What a queued item is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ItemKind {
    Post = 0,
    Timer = 1,
    Signal = 2,
    Gc = 3,
}

/// What the queue orders and what cancelling and dispatching decide on, in 8 bytes, so a
/// queue entry (with its sequence number and time) is 24: the destination's slab key and,
/// packed in one word, the event, the item's kind and whether it has arguments. The rest
/// of an item, needed only to dispatch it, waits in [`ItemExtra`] beside the queue: with a
/// million timers a cancel touches one small entry, not the arguments, the caller and the
/// sender it never looks at.
#[derive(Clone, Copy)]
pub(crate) struct Item {
    /// Slab key of the destination ([`NO_KEY`] for the kernel). Items to or from a session
    /// are removed when it is freed, so this (and the sender's key in [`ItemExtra`]) names
    /// the same session for as long as the item waits, and ids need not be stored.
    pub(crate) dest_key: u32,
    /// The event id (low [`EVENT_BITS`] bits), the kind (two bits) and `has_args` (top bit).
    bits: u32,
}

/// Bits of [`Item::bits`] that hold the event id: a kernel names at most 2^29 events.
pub(crate) const EVENT_BITS: u32 = 29;

impl Item {
    #[inline]
    pub(crate) fn new(kind: ItemKind, has_args: bool, dest_key: u32, event: EventId) -> Item {
        debug_assert!(event.0 < 1 << EVENT_BITS);
        Item {
            dest_key,
            bits: event.0 | (kind as u32) << EVENT_BITS | u32::from(has_args) << 31,
        }
    }
    #[inline]
    pub(crate) fn event(self) -> EventId {
        EventId(self.bits & ((1 << EVENT_BITS) - 1))
    }
    #[inline]
    pub(crate) fn kind(self) -> ItemKind {
        match (self.bits >> EVENT_BITS) & 3 {
            0 => ItemKind::Post,
            1 => ItemKind::Timer,
            2 => ItemKind::Signal,
            _ => ItemKind::Gc,
        }
    }
    /// Whether the item's [`ItemExtra`] holds arguments to take (or drop) when it leaves.
    #[inline]
    pub(crate) fn has_args(self) -> bool {
        self.bits >> 31 != 0
    }
    /// A timer of the session with slab key `key`.
    #[inline]
    pub(crate) fn is_timer_of(self, key: u32) -> bool {
        self.kind() == ItemKind::Timer && self.dest_key == key
    }
}

/// The part of a queued item that only its dispatch reads, kept in [`Kernel::extras`] at
/// the item's queue slot, 16 bytes. Its arguments, if it has any, wait in
/// [`Kernel::item_args`] at the same slot: an item without arguments (most timers) never
/// touches that array, which grows only as far as the slots of items that had some.
/// Arguments are taken out whenever their item leaves the queue ([`Kernel::item_left`],
/// [`Kernel::take_args`]), so they are dropped then, never later when the slot is reused.
pub(crate) struct ItemExtra {
    pub(crate) caller: &'static Location<'static>,
    pub(crate) caller_state: EventId,
    /// Slab key of the sender ([`NO_KEY`] for the kernel); a timer's is its destination's.
    pub(crate) sender_key: u32,
}

impl ItemExtra {
    fn vacant() -> Self {
        ItemExtra {
            caller: Location::caller(),
            caller_state: EventId(0),
            sender_key: NO_KEY,
        }
    }
}

impl Kernel {
    // ----------------------------------------------------------------- the queue

    /// The priority of a new post: "now", FIFO after every earlier post. During a batch
    /// "now" is the batch's snapshot (the kernel reads the clock once per timeslice, as
    /// libev and libuv do); the post then runs in the next timeslice.
    #[inline]
    pub(crate) fn now_fifo(&mut self) -> Time {
        let mut p = match self.batch_now {
            Some(b) => b + 1,
            None => self.clock.now(),
        };
        if p <= self.last_fifo {
            p = self.last_fifo + 1;
        }
        self.last_fifo = p;
        p
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn enqueue(
        &mut self,
        kind: ItemKind,
        dest: SessionId,
        sender: SessionId,
        event: EventId,
        args: Args,
        time: Time,
        caller: &'static Location<'static>,
    ) -> ItemId {
        self.enqueue_boxed(kind, dest, sender, event, args.into_boxed(), time, caller)
    }

    /// [`Kernel::enqueue`] with the arguments already boxed as the queue keeps them.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn enqueue_boxed(
        &mut self,
        kind: ItemKind,
        dest: SessionId,
        sender: SessionId,
        event: EventId,
        args: Box<[crate::value::Arg]>,
        time: Time,
        caller: &'static Location<'static>,
    ) -> ItemId {
        self.flush_postbacks();
        let dest_key = self.key_or_none(dest);
        self.enqueue_to_key(kind, dest, dest_key, sender, event, args, time, caller)
    }

    /// [`Kernel::enqueue_boxed`] with the destination's key already looked up
    /// ([`NO_KEY`] for none); postbacks already flushed.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn enqueue_to_key(
        &mut self,
        kind: ItemKind,
        dest: SessionId,
        dest_key: u32,
        sender: SessionId,
        event: EventId,
        args: Box<[crate::value::Arg]>,
        time: Time,
        caller: &'static Location<'static>,
    ) -> ItemId {
        // Yields and timers: a session sending to itself.
        let sender_key = if sender == dest {
            dest_key
        } else {
            self.key_or_none(sender)
        };
        self.ev_ref_inc(dest_key, sender_key);
        if kind == ItemKind::Timer {
            self.timer_items += 1;
            if dest_key != NO_KEY {
                self.sessions[dest_key as usize].timers += 1;
            }
        }
        let caller_state = self.active.event;
        self.queue_item(
            time,
            kind,
            dest_key,
            sender_key,
            event,
            args,
            caller_state,
            caller,
        )
    }

    /// Queues an item whose reference counts are already taken.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn queue_item(
        &mut self,
        time: Time,
        kind: ItemKind,
        dest_key: u32,
        sender_key: u32,
        event: EventId,
        args: Box<[crate::value::Arg]>,
        caller_state: EventId,
        caller: &'static Location<'static>,
    ) -> ItemId {
        let has_args = !args.is_empty();
        let id = self
            .queue
            .enqueue(time, Item::new(kind, has_args, dest_key, event));
        let slot = id.slot();
        let x = ItemExtra {
            caller,
            caller_state,
            sender_key,
        };
        if let Some(e) = self.extras.get_mut(slot) {
            *e = x;
        } else {
            self.push_extra(slot, x);
        }
        if has_args {
            self.put_args(slot, args);
        }
        id
    }

    #[inline]
    fn put_args(&mut self, slot: usize, args: Box<[crate::value::Arg]>) {
        if let Some(a) = self.item_args.get_mut(slot) {
            *a = args;
        } else {
            self.item_args.resize_with(slot, Box::default);
            self.item_args.push(args);
        }
    }

    /// The first item at a new queue slot: the queue's slab grows one slot at a time, so
    /// this is a push.
    #[inline]
    fn push_extra(&mut self, slot: usize, x: ItemExtra) {
        if slot > self.extras.len() {
            self.extras.resize_with(slot, ItemExtra::vacant);
        }
        self.extras.push(x);
    }

    /// The arguments of item `id`, which has just left the queue (empty if it had none).
    /// Every way out of the queue calls this (most through [`Kernel::item_left`]), so
    /// arguments are dropped when their item goes.
    #[inline]
    pub(crate) fn take_args(&mut self, id: ItemId, it: Item) -> Box<[crate::value::Arg]> {
        if it.has_args() {
            std::mem::take(&mut self.item_args[id.slot()])
        } else {
            Box::default()
        }
    }

    /// Arguments `args` in a list from the pool ([`Args`](crate::Args)).
    #[inline]
    pub(crate) fn pooled_args<const N: usize>(&mut self, args: [crate::value::Arg; N]) -> Args {
        let mut v = self.arg_list();
        v.extend(args);
        Args::from(v)
    }

    /// [`Kernel::pooled_args`] for a wheel's record and id: two plain pushes (an array's
    /// by-value iterator costs more than the two arguments).
    #[inline]
    pub(crate) fn pooled_args2(&mut self, a: crate::value::Arg, b: crate::value::Arg) -> Args {
        let mut v = self.arg_list();
        v.push(a);
        v.push(b);
        Args::from(v)
    }

    /// An empty argument list from the pool, or a new one of the pooled capacity.
    #[inline]
    fn arg_list(&mut self) -> Vec<crate::value::Arg> {
        self.arg_lists
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(crate::value::POOLED_CAPACITY))
    }

    /// A byte record as an event argument, in a box a handler emptied before if there is
    /// one: a record that is delivered, taken and sent on costs no allocation.
    #[inline]
    pub fn record_arg(&mut self, record: Vec<u8>) -> crate::value::Arg {
        match self.record_boxes.pop() {
            Some(mut b) => match std::rc::Rc::get_mut(&mut b) {
                Some(slot) => {
                    *slot = record;
                    b
                }
                None => std::rc::Rc::new(record),
            },
            None => std::rc::Rc::new(record),
        }
    }

    /// A wheel's record and its id as an input event's arguments (`ARG0`, `ARG1`), in the
    /// box the last record came in if its handler gave it back: the two are written in
    /// place, nothing is built, and the handler reads them with no type test at run
    /// time (see [`Args`]).
    #[inline(always)]
    pub(crate) fn wheel_input_args(&mut self, record: Vec<u8>, id: crate::WheelId) -> Args {
        Args::wheel_input(self.input_args.take(), record, id)
    }

    /// A wheel id as an event argument. The kernel keeps the box of the last one and
    /// writes the next id into it when no handler holds it any more: the events wheels
    /// hand their sessions allocate nothing for their id, and an idle wheel holds no box.
    #[inline]
    pub fn wheel_id_arg(&mut self, id: crate::WheelId) -> crate::value::Arg {
        if let Some(slot) = self.id_box.as_mut().and_then(std::rc::Rc::get_mut) {
            *slot = id;
        } else {
            self.id_box = Some(std::rc::Rc::new(id));
        }
        match &self.id_box {
            Some(b) => std::rc::Rc::clone(b) as crate::value::Arg,
            None => std::rc::Rc::new(id),
        }
    }

    /// Reads the extras of the items the queue's batch will give next
    /// ([`Queue::slots_ahead`](crate::queue::Queue::slots_ahead)), so that their cache
    /// misses overlap.
    #[inline]
    pub(crate) fn touch_extras_ahead(&self) {
        if let Some(slots) = self.queue.slots_ahead() {
            let mut sum = 0u32;
            for s in slots {
                sum ^= self.extras.get(s).map_or(0, |x| x.sender_key);
            }
            std::hint::black_box(sum);
        }
    }

    /// Item `id` has left the queue: releases what it held (its sessions' counts) and
    /// returns its arguments.
    #[inline]
    pub(crate) fn item_left(&mut self, id: ItemId, it: Item) -> Box<[crate::value::Arg]> {
        let sender_key = self.extras[id.slot()].sender_key;
        let args = self.take_args(id, it);
        if it.kind() == ItemKind::Timer {
            self.timer_items -= 1;
            if it.dest_key != NO_KEY {
                self.sessions[it.dest_key as usize].timers -= 1;
            }
        }
        self.ev_ref_dec(it.dest_key, sender_key);
        args
    }
}

#[cfg(test)]
mod tests {
    use super::{EventId, Item, ItemKind, EVENT_BITS};

    /// Queued items stay small: with a million timers their size decides what setting and
    /// cancelling one costs (see docs/benchmarks.md).
    #[test]
    fn a_queued_item_fits_in_8_bytes() {
        assert_eq!(std::mem::size_of::<Item>(), 8);
    }

    /// What waits beside the queue for an item without arguments: 16 bytes.
    #[test]
    fn an_item_extra_is_16_bytes() {
        assert_eq!(std::mem::size_of::<super::ItemExtra>(), 16);
    }

    #[test]
    fn items_pack_and_unpack() {
        for kind in [
            ItemKind::Post,
            ItemKind::Timer,
            ItemKind::Signal,
            ItemKind::Gc,
        ] {
            for has_args in [false, true] {
                for ev in [0, 1, 12345, (1 << EVENT_BITS) - 1] {
                    let it = Item::new(kind, has_args, 7, EventId(ev));
                    assert_eq!(it.kind(), kind);
                    assert_eq!(it.has_args(), has_args);
                    assert_eq!(it.event(), EventId(ev));
                    assert_eq!(it.dest_key, 7);
                    assert_eq!(it.is_timer_of(7), kind == ItemKind::Timer);
                    assert!(!it.is_timer_of(8));
                }
            }
        }
    }
}
