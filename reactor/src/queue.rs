//! The kernel's one time-ordered queue (POE's `POE::Queue::Array`, rebuilt).
//!
//! Every deferred item (posts, yields, timers, signals) waits here, ordered by
//! [`Time`] and, among equal times, by insertion order: colliding priorities are FIFO, and
//! an item whose time is adjusted goes after the items already waiting at its new time.
//!
//! The structure is a 4-ary min-heap of small `(time, order, slot)` nodes over a [`slab`]
//! of payloads. Removal and re-timing are lazy, as in Go's runtime timers: removing an item
//! frees its slab entry at once, and its heap node, now stale, is dropped when it reaches
//! the top, or when stale nodes outnumber live ones four to one and the heap is rebuilt. A
//! re-timed item gets a new node and its old one goes stale. A node is live while
//! `orders[slot]` (a compact array beside the slab) still holds the node's order; orders are
//! never reused, so a slot taken by a newer item cannot revive an old node. So sifting never
//! writes anywhere but the heap array, a cancel touches one slab entry and one word, and
//! every operation is O(log n) amortized. The head of the heap is always live.
//!
//! Once the heap is large, new nodes wait unsorted beside it until the head is next looked
//! at (`pending.rs`): a timer set and cancelled before then (a timeout that did not
//! expire) never goes through the heap at all.
//!
//! When a timeslice finds a large share of the heap due at once, [`Queue::gather_due`]
//! moves every due node out into a sorted batch beside the heap (`due.rs`): the next item
//! is then the smaller of the heap's top and the batch's next node, so items queued while
//! the batch drains, even at times already past, still come out in `(time, order)` order,
//! and a batched item that is removed or re-timed goes stale there as in the heap.
//!
//! [`ItemId`]s carry a sequence number (from 1, shared by every kind of item, as in POE)
//! and the slab slot; an id whose item is gone never matches again.

use crate::clock::Time;
use slab::Slab;
use std::fmt;
use std::num::NonZeroU64;

/// Identifies one queued item (an alarm id, in POE's words).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId {
    seq: u64,
    slot: u32,
}

impl ItemId {
    /// The item's sequence number: 1 for the first item ever queued, then 2, 3, ...
    pub fn seq(self) -> u64 {
        self.seq
    }

    /// The queue slot the item occupies while it waits (reused once it is gone).
    #[inline]
    pub(crate) fn slot(self) -> usize {
        self.slot as usize
    }
}

impl fmt::Debug for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemId({})", self.seq)
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.seq)
    }
}

/// A heap node, 16 bytes: four siblings share one cache line.
#[derive(Clone, Copy)]
struct Node {
    time: Time,
    order: u32,
    slot: u32,
}

impl Node {
    /// `(time, order)` as one number, for sorting.
    #[inline]
    fn key(&self) -> u128 {
        u128::from((self.time as u64) ^ (1 << 63)) << 32 | u128::from(self.order)
    }

    #[inline]
    fn before(&self, other: &Node) -> bool {
        (self.time, self.order) < (other.time, other.order)
    }

    /// Whether the node is its slot's live one (`orders`: [`Queue`]'s), not one left stale
    /// by a removal or a re-time.
    #[inline]
    fn live_in(&self, orders: &[u32]) -> bool {
        orders[self.slot as usize] == self.order
    }
}

/// A waiting item. The sequence number is never zero, which gives the slab's entry a niche:
/// with an 8-byte payload, a slab entry is 24 bytes.
struct Entry<T> {
    seq: NonZeroU64,
    time: Time,
    payload: T,
}

/// `orders[slot]` for a vacant slot.
const VACANT: u32 = u32::MAX;

/// Children per heap node: half the depth of a binary heap, and a node's children share
/// one or two cache lines.
const ARITY: usize = 4;

/// The heap is rebuilt when its stale nodes outnumber live ones by this much. A rebuild
/// visits every node and looks up each one's slot, a cache miss apiece with many items;
/// removals pay (R + 1) / R node visits each: 1.25 at 4 to 1, against 1.5 at 2 to 1, which
/// takes about 7 ns off each of a million cancels in a row. The price is memory: up to four
/// stale 16-byte nodes per live item until the next rebuild.
const STALE_RATIO: usize = 4;

/// Why an item could not be removed or adjusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueError {
    /// No such item is waiting (POE: `ESRCH`).
    NotFound,
    /// The item exists but the caller's filter refused it (POE: `EPERM`).
    Refused,
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QueueError::NotFound => "no such item is waiting",
            QueueError::Refused => "the item belongs to someone else",
        })
    }
}

impl std::error::Error for QueueError {}

/// A priority queue of `T` ordered by time, FIFO among equal times.
pub struct Queue<T> {
    heap: Vec<Node>,
    /// Due nodes taken out of the heap by [`Queue::gather_due`], sorted from last to first:
    /// the next one is at the end. Its head, like the heap's, is always live.
    batch: Vec<Node>,
    /// Nodes not yet in the heap, in no order ([`Queue::settle`]).
    pending: Vec<Node>,
    slab: Slab<Entry<T>>,
    /// The order of each slot's live node, [`VACANT`] when the slot is free.
    orders: Vec<u32>,
    live: usize,
    next_seq: NonZeroU64,
    next_order: u32,
    /// When `next_order` reaches this, the live nodes are numbered again from 0
    /// ([`Queue::renumber`]): `u32::MAX` but in tests.
    order_limit: u32,
    /// [`Queue::gather_due`] leaves heaps smaller than this alone: [`BULK_MIN`] but in
    /// tests.
    bulk_min: usize,
    /// New nodes go straight into heaps smaller than this: [`pending::PENDING_MIN`] but
    /// in tests.
    pending_min: usize,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue").field("len", &self.len()).finish()
    }
}

impl<T> Queue<T> {
    /// An empty queue whose first id will be 1.
    pub fn new() -> Self {
        Queue {
            heap: Vec::new(),
            batch: Vec::new(),
            pending: Vec::new(),
            slab: Slab::new(),
            orders: Vec::new(),
            live: 0,
            next_seq: NonZeroU64::MIN,
            next_order: 0,
            order_limit: VACANT,
            bulk_min: due::BULK_MIN,
            pending_min: pending::PENDING_MIN,
        }
    }

    /// A queue that numbers its nodes again whenever `limit` orders have been used: the
    /// wrap of 32-bit orders, made frequent.
    #[cfg(test)]
    pub(crate) fn with_order_limit(limit: u32) -> Self {
        Queue {
            order_limit: limit,
            ..Self::new()
        }
    }

    /// The order for a new node: insertion order among equal times.
    #[inline]
    fn take_order(&mut self) -> u32 {
        if self.next_order >= self.order_limit {
            self.renumber();
        }
        let order = self.next_order;
        self.next_order += 1;
        order
    }

    /// Orders are 32 bits, to keep nodes at 16 bytes: once four billion are used, the
    /// live nodes are sorted and numbered again from 0 in that order, which keeps every
    /// relative order (and so FIFO among equal times). Stale nodes go at the same time.
    #[cold]
    #[inline(never)]
    fn renumber(&mut self) {
        let orders = &self.orders;
        self.heap.append(&mut self.batch);
        self.heap.append(&mut self.pending);
        self.heap.retain(|n| n.live_in(orders));
        self.heap.sort_unstable_by_key(Node::key);
        // A sorted array is a heap.
        for (i, n) in self.heap.iter_mut().enumerate() {
            n.order = i as u32;
            self.orders[n.slot as usize] = n.order;
        }
        self.next_order = self.heap.len() as u32;
    }

    /// Number of waiting items.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Queues `payload` at `time`; returns its id.
    #[inline]
    pub fn enqueue(&mut self, time: Time, payload: T) -> ItemId {
        let seq = self.next_seq;
        self.next_seq = seq.saturating_add(1);
        let order = self.take_order();
        let slot = self.slab.insert(Entry { seq, time, payload }) as u32;
        if (slot as usize) < self.orders.len() {
            self.orders[slot as usize] = order;
        } else {
            // The slab grows one slot at a time, so this is a push.
            self.orders.resize(slot as usize, VACANT);
            self.orders.push(order);
        }
        self.live += 1;
        self.add_node(Node { time, order, slot });
        ItemId {
            seq: seq.get(),
            slot,
        }
    }

    /// The next node: the heap's top or the batch's next, whichever comes first. Both are
    /// live.
    #[inline]
    fn head(&self) -> Option<&Node> {
        match (self.heap.first(), self.batch.last()) {
            (Some(h), Some(b)) => Some(if b.before(h) { b } else { h }),
            (h, None) => h,
            (None, b) => b,
        }
    }

    /// Time of the next item: O(1) after [`Queue::settle`], otherwise a look at every
    /// pending node.
    #[inline]
    pub fn next_time(&self) -> Option<Time> {
        let t = self.head().map(|n| n.time);
        if self.pending.is_empty() {
            t
        } else {
            self.next_time_pending(t)
        }
    }

    /// The next item, without removing it.
    #[cfg(test)]
    pub fn peek(&mut self) -> Option<(Time, ItemId, &T)> {
        self.settle();
        let n = self.head()?;
        let e = &self.slab[n.slot as usize];
        Some((
            n.time,
            ItemId {
                seq: e.seq.get(),
                slot: n.slot,
            },
            &e.payload,
        ))
    }

    /// Removes and returns the next item.
    #[cfg(test)]
    pub fn dequeue(&mut self) -> Option<(Time, ItemId, T)> {
        self.settle();
        self.take_next()
    }

    /// Removes and returns the next item if it is due at or before `now`.
    #[inline]
    pub fn dequeue_due(&mut self, now: Time) -> Option<(Time, ItemId, T)> {
        self.settle();
        if !self.batch.is_empty() {
            return match self.head() {
                Some(n) if n.time <= now => self.take_next(),
                _ => None,
            };
        }
        match self.heap.first() {
            Some(n) if n.time <= now => Some(self.take_top()),
            _ => None,
        }
    }

    /// Removes the next item, from the heap's top or the batch, with no pending nodes. Out
    /// of line: [`Queue::dequeue_due`] takes the heap's top itself while no batch waits.
    #[inline(never)]
    fn take_next(&mut self) -> Option<(Time, ItemId, T)> {
        match (self.heap.first(), self.batch.last()) {
            (Some(h), Some(b)) if h.before(b) => Some(self.take_top()),
            (_, Some(_)) => Some(self.take_batched()),
            (Some(_), None) => Some(self.take_top()),
            (None, None) => None,
        }
    }

    /// Removes the heap's top item.
    #[inline]
    fn take_top(&mut self) -> (Time, ItemId, T) {
        let n = self.heap[0];
        self.pop_node();
        let item = self.take_item(n);
        self.purge_heap();
        item
    }

    /// Removes the batch's next item.
    fn take_batched(&mut self) -> (Time, ItemId, T) {
        let n = self.batch.pop().expect("take_batched on an empty batch");
        self.touch_ahead();
        let item = self.take_item(n);
        self.purge_batch();
        item
    }

    /// Frees the slot of live node `n`, just taken out of the heap or the batch, and
    /// returns its item.
    #[inline]
    fn take_item(&mut self, n: Node) -> (Time, ItemId, T) {
        let e = self.free(n.slot as usize);
        (
            n.time,
            ItemId {
                seq: e.seq.get(),
                slot: n.slot,
            },
            e.payload,
        )
    }

    #[inline]
    fn slot_of(&self, id: ItemId) -> Option<usize> {
        match self.slab.get(id.slot as usize) {
            Some(e) if e.seq.get() == id.seq => Some(id.slot as usize),
            _ => None,
        }
    }

    /// Frees a slot; its heap nodes go stale.
    #[inline]
    fn free(&mut self, slot: usize) -> Entry<T> {
        self.orders[slot] = VACANT;
        self.live -= 1;
        self.slab.remove(slot)
    }

    /// The item `id`, with its time.
    pub fn get(&self, id: ItemId) -> Option<(Time, &T)> {
        let e = &self.slab[self.slot_of(id)?];
        Some((e.time, &e.payload))
    }

    /// Removes item `id` if `allow` accepts its payload.
    #[inline]
    pub fn remove_if(
        &mut self,
        id: ItemId,
        allow: impl FnOnce(&T) -> bool,
    ) -> Result<(Time, T), QueueError> {
        let slot = self.slot_of(id).ok_or(QueueError::NotFound)?;
        if !allow(&self.slab[slot].payload) {
            return Err(QueueError::Refused);
        }
        let e = self.free(slot);
        self.after_removal(slot);
        Ok((e.time, e.payload))
    }

    /// Removes item `id`.
    pub fn remove(&mut self, id: ItemId) -> Option<(Time, T)> {
        self.remove_if(id, |_| true).ok()
    }

    /// Removes every item whose payload matches, returned in queue order. O(n).
    pub fn remove_matching(
        &mut self,
        mut matches: impl FnMut(&T) -> bool,
    ) -> Vec<(Time, ItemId, T)> {
        self.remove_matching_ids(|_, payload| matches(payload))
    }

    /// [`remove_matching`](Self::remove_matching), with the test given each item's id too.
    pub fn remove_matching_ids(
        &mut self,
        mut matches: impl FnMut(ItemId, &T) -> bool,
    ) -> Vec<(Time, ItemId, T)> {
        let mut hits: Vec<(Time, u32, usize)> = Vec::new();
        for (slot, e) in self.slab.iter() {
            let id = ItemId {
                seq: e.seq.get(),
                slot: slot as u32,
            };
            if matches(id, &e.payload) {
                hits.push((e.time, self.orders[slot], slot));
            }
        }
        if hits.is_empty() {
            return Vec::new();
        }
        hits.sort_unstable_by_key(|&(t, o, _)| (t, o));
        let out: Vec<_> = hits
            .into_iter()
            .map(|(t, _, slot)| {
                let e = self.free(slot);
                (
                    t,
                    ItemId {
                        seq: e.seq.get(),
                        slot: slot as u32,
                    },
                    e.payload,
                )
            })
            .collect();
        self.rebuild_if_stale();
        self.purge_head();
        out
    }

    /// Gives item `id` a new time computed from its old one, if `allow` accepts its payload.
    /// The item goes after every item already waiting at the new time. Returns the new time.
    pub fn retime_if(
        &mut self,
        id: ItemId,
        allow: impl FnOnce(&T) -> bool,
        new_time: impl FnOnce(Time) -> Time,
    ) -> Result<Time, QueueError> {
        let slot = self.slot_of(id).ok_or(QueueError::NotFound)?;
        if !allow(&self.slab[slot].payload) {
            return Err(QueueError::Refused);
        }
        let order = self.take_order();
        let e = &mut self.slab[slot];
        let t = new_time(e.time);
        e.time = t;
        self.orders[slot] = order;
        self.add_node(Node {
            time: t,
            order,
            slot: slot as u32,
        });
        self.rebuild_if_stale();
        self.purge_head();
        Ok(t)
    }

    /// Iterates over every waiting item in no particular order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (Time, ItemId, &T)> + '_ {
        self.slab.iter().map(|(slot, e)| {
            (
                e.time,
                ItemId {
                    seq: e.seq.get(),
                    slot: slot as u32,
                },
                &e.payload,
            )
        })
    }

    #[inline]
    fn is_live(&self, n: &Node) -> bool {
        n.live_in(&self.orders)
    }

    /// Drops stale nodes from the heap's top and the batch's end so that both heads are
    /// live.
    fn purge_head(&mut self) {
        self.purge_heap();
        self.purge_batch();
    }

    /// Drops stale nodes from the heap's top.
    #[inline]
    fn purge_heap(&mut self) {
        while let Some(n) = self.heap.first().copied() {
            if self.is_live(&n) {
                break;
            }
            self.pop_node();
        }
    }

    /// Drops stale nodes from the batch's end.
    #[inline]
    fn purge_batch(&mut self) {
        while let Some(n) = self.batch.last() {
            if self.is_live(n) {
                break;
            }
            self.batch.pop();
        }
    }

    /// Keeps the heads live, and rebuilds the heap when stale nodes outnumber live ones.
    #[inline]
    fn after_removal(&mut self, slot: usize) {
        if self.too_stale() {
            self.rebuild();
        } else if self.heap.first().is_some_and(|n| n.slot as usize == slot)
            || self.batch.last().is_some_and(|n| n.slot as usize == slot)
        {
            self.purge_head();
        }
    }

    fn rebuild_if_stale(&mut self) {
        if self.too_stale() {
            self.rebuild();
        }
    }

    #[inline]
    fn too_stale(&self) -> bool {
        let stale = self.heap.len() + self.batch.len() + self.pending.len() - self.live;
        stale > 64 && stale > STALE_RATIO * self.live
    }

    #[cold]
    #[inline(never)]
    fn rebuild(&mut self) {
        let orders = &self.orders;
        self.heap.retain(|n| n.live_in(orders));
        self.batch.retain(|n| n.live_in(orders));
        self.pending.retain(|n| n.live_in(orders));
        self.heapify();
    }

    /// Makes the heap array a heap again, bottom up: O(n).
    fn heapify(&mut self) {
        if self.heap.len() > 1 {
            for i in (0..=(self.heap.len() - 2) / ARITY).rev() {
                self.sift_down(i);
            }
        }
    }

    /// Inlined: out of line, the node is passed through memory, written by the caller as
    /// three narrow stores and read back here as one 16-byte load, which cannot be
    /// forwarded from the store buffer and waits for the stores to retire (about a tenth
    /// of a post's time went there).
    #[inline]
    fn push_node(&mut self, node: Node) {
        self.heap.push(node);
        let mut pos = self.heap.len() - 1;
        while pos > 0 {
            let parent = (pos - 1) / ARITY;
            if node.before(&self.heap[parent]) {
                self.heap[pos] = self.heap[parent];
                pos = parent;
            } else {
                break;
            }
        }
        self.heap[pos] = node;
    }

    fn pop_node(&mut self) {
        let last = self.heap.pop().expect("pop_node on a non-empty heap");
        if !self.heap.is_empty() {
            self.heap[0] = last;
            self.sift_down(0);
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let len = self.heap.len();
        let node = self.heap[pos];
        loop {
            let first = ARITY * pos + 1;
            if first >= len {
                break;
            }
            let end = (first + ARITY).min(len);
            let mut child = first;
            for c in first + 1..end {
                if self.heap[c].before(&self.heap[child]) {
                    child = c;
                }
            }
            if self.heap[child].before(&node) {
                self.heap[pos] = self.heap[child];
                pos = child;
            } else {
                break;
            }
        }
        self.heap[pos] = node;
    }
}

mod due;
mod pending;

/// The model the randomized tests compare the queue with.
#[cfg(test)]
mod model_tests;

/// POE's `t/10_units/06_queues/01_array.t`, and a comparison against a model.
#[cfg(test)]
mod array_tests;

/// Batches of due items against a model: interleaved enqueues, past times, removals.
#[cfg(test)]
mod due_tests;

/// Nodes kept aside from a large heap: settling, cancels before and after.
#[cfg(test)]
mod pending_tests;
