//! The kernel's one time-ordered queue (POE's `POE::Queue::Array`, rebuilt).
//!
//! Every deferred item (posts, yields, timers, signals) waits here, ordered by
//! [`Time`] and, among equal times, by insertion order: colliding priorities are FIFO, and
//! an item whose time is adjusted goes after the items already waiting at its new time.
//!
//! The structure is a 4-ary min-heap of small `(time, order, slot)` nodes over a [`slab`]
//! of payloads. Removal and re-timing are lazy, as in Go's runtime timers: removing an item
//! takes its payload out of the slab at once, and its heap node, now stale, is dropped when
//! it reaches the top, or when stale nodes outnumber live ones and the heap is rebuilt. A
//! re-timed item gets a new node and its old one goes stale. So sifting never writes
//! anywhere but the heap array, cancel touches one slab entry, and every operation is
//! O(log n) amortized. The head of the heap is always live.
//!
//! [`ItemId`]s carry a sequence number (from 1, shared by every kind of item, as in POE)
//! and the slab slot; an id whose item is gone never matches again.

use crate::clock::Time;
use slab::Slab;
use std::fmt;

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

#[derive(Clone, Copy)]
struct Node {
    time: Time,
    order: u64,
    slot: u32,
}

impl Node {
    #[inline]
    fn before(&self, other: &Node) -> bool {
        (self.time, self.order) < (other.time, other.order)
    }
}

struct Entry<T> {
    seq: u64,
    /// The order of the live node; a node with another order is stale.
    order: u64,
    time: Time,
    /// Heap nodes that name this slot, live or stale; the slot is freed at zero.
    nodes: u32,
    /// `None` once the item has been removed.
    payload: Option<T>,
}

/// Children per heap node: half the depth of a binary heap, and a node's children share
/// two cache lines.
const ARITY: usize = 4;

/// Why an item could not be removed or adjusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// No such item is waiting (POE: `ESRCH`).
    NotFound,
    /// The item exists but the caller's filter refused it (POE: `EPERM`).
    Refused,
}

/// A priority queue of `T` ordered by time, FIFO among equal times.
pub struct Queue<T> {
    heap: Vec<Node>,
    slab: Slab<Entry<T>>,
    live: usize,
    next_seq: u64,
    next_order: u64,
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
        Queue { heap: Vec::new(), slab: Slab::new(), live: 0, next_seq: 1, next_order: 0 }
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
    pub fn enqueue(&mut self, time: Time, payload: T) -> ItemId {
        let seq = self.next_seq;
        self.next_seq += 1;
        let order = self.next_order;
        self.next_order += 1;
        let slot = self.slab.insert(Entry { seq, order, time, nodes: 1, payload: Some(payload) }) as u32;
        self.live += 1;
        self.push_node(Node { time, order, slot });
        ItemId { seq, slot }
    }

    /// Time of the next item.
    #[inline]
    pub fn next_time(&self) -> Option<Time> {
        self.heap.first().map(|n| n.time)
    }

    /// The next item, without removing it.
    pub fn peek(&self) -> Option<(Time, ItemId, &T)> {
        let n = self.heap.first()?;
        let e = &self.slab[n.slot as usize];
        Some((n.time, ItemId { seq: e.seq, slot: n.slot }, e.payload.as_ref()?))
    }

    /// Removes and returns the next item.
    pub fn dequeue(&mut self) -> Option<(Time, ItemId, T)> {
        let n = *self.heap.first()?;
        self.pop_node();
        let e = &mut self.slab[n.slot as usize];
        let id = ItemId { seq: e.seq, slot: n.slot };
        let payload = e.payload.take().expect("the head of the heap is live");
        self.live -= 1;
        self.release_node(n.slot as usize);
        self.purge_head();
        Some((n.time, id, payload))
    }

    /// Removes and returns the next item if it is due at or before `now`.
    #[inline]
    pub fn dequeue_due(&mut self, now: Time) -> Option<(Time, ItemId, T)> {
        match self.heap.first() {
            Some(n) if n.time <= now => self.dequeue(),
            _ => None,
        }
    }

    fn slot_of(&self, id: ItemId) -> Option<usize> {
        match self.slab.get(id.slot as usize) {
            Some(e) if e.seq == id.seq && e.payload.is_some() => Some(id.slot as usize),
            _ => None,
        }
    }

    /// The item `id`, with its time.
    pub fn get(&self, id: ItemId) -> Option<(Time, &T)> {
        let e = &self.slab[self.slot_of(id)?];
        Some((e.time, e.payload.as_ref()?))
    }

    /// Mutable access to the payload of item `id`.
    pub fn get_mut(&mut self, id: ItemId) -> Option<&mut T> {
        let slot = self.slot_of(id)?;
        self.slab[slot].payload.as_mut()
    }

    /// Removes item `id` if `allow` accepts its payload.
    pub fn remove_if(&mut self, id: ItemId, allow: impl FnOnce(&T) -> bool) -> Result<(Time, T), QueueError> {
        let slot = self.slot_of(id).ok_or(QueueError::NotFound)?;
        let e = &mut self.slab[slot];
        if !allow(e.payload.as_ref().ok_or(QueueError::NotFound)?) {
            return Err(QueueError::Refused);
        }
        let out = (e.time, e.payload.take().ok_or(QueueError::NotFound)?);
        self.live -= 1;
        self.after_removal(slot);
        Ok(out)
    }

    /// Removes item `id`.
    pub fn remove(&mut self, id: ItemId) -> Option<(Time, T)> {
        self.remove_if(id, |_| true).ok()
    }

    /// Removes every item whose payload matches, returned in queue order. O(n).
    pub fn remove_matching(&mut self, mut matches: impl FnMut(&T) -> bool) -> Vec<(Time, ItemId, T)> {
        let mut hits: Vec<(Time, u64, usize)> = Vec::new();
        for (slot, e) in self.slab.iter() {
            if let Some(p) = &e.payload {
                if matches(p) {
                    hits.push((e.time, e.order, slot));
                }
            }
        }
        if hits.is_empty() {
            return Vec::new();
        }
        hits.sort_unstable_by_key(|&(t, o, _)| (t, o));
        let out: Vec<_> = hits
            .into_iter()
            .filter_map(|(t, _, slot)| {
                let e = &mut self.slab[slot];
                Some((t, ItemId { seq: e.seq, slot: slot as u32 }, e.payload.take()?))
            })
            .collect();
        self.live -= out.len();
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
        let order = self.next_order;
        let e = &mut self.slab[slot];
        if !allow(e.payload.as_ref().ok_or(QueueError::NotFound)?) {
            return Err(QueueError::Refused);
        }
        self.next_order += 1;
        let t = new_time(e.time);
        e.time = t;
        e.order = order;
        e.nodes += 1;
        self.push_node(Node { time: t, order, slot: slot as u32 });
        self.rebuild_if_stale();
        self.purge_head();
        Ok(t)
    }

    /// Iterates over every waiting item in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Time, ItemId, &T)> + '_ {
        self.slab.iter().filter_map(|(slot, e)| Some((e.time, ItemId { seq: e.seq, slot: slot as u32 }, e.payload.as_ref()?)))
    }

    #[inline]
    fn is_live(&self, n: &Node) -> bool {
        let e = &self.slab[n.slot as usize];
        e.order == n.order && e.payload.is_some()
    }

    fn release_node(&mut self, slot: usize) {
        let e = &mut self.slab[slot];
        e.nodes -= 1;
        if e.nodes == 0 && e.payload.is_none() {
            self.slab.remove(slot);
        }
    }

    /// Drops stale nodes from the top so that the head is live.
    fn purge_head(&mut self) {
        while let Some(n) = self.heap.first().copied() {
            if self.is_live(&n) {
                return;
            }
            self.pop_node();
            self.release_node(n.slot as usize);
        }
    }

    /// Keeps the head live, and rebuilds the heap when stale nodes outnumber live ones.
    fn after_removal(&mut self, slot: usize) {
        let stale = self.heap.len() - self.live;
        if stale > 64 && stale > 2 * self.live {
            self.rebuild();
        } else if self.heap.first().is_some_and(|n| n.slot as usize == slot) {
            self.purge_head();
        }
    }

    fn rebuild_if_stale(&mut self) {
        let stale = self.heap.len() - self.live;
        if stale > 64 && stale > 2 * self.live {
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        let mut heap = std::mem::take(&mut self.heap);
        let mut dead = Vec::new();
        heap.retain(|n| {
            let live = self.is_live(n);
            if !live {
                dead.push(n.slot as usize);
            }
            live
        });
        for slot in dead {
            self.release_node(slot);
        }
        self.heap = heap;
        if self.heap.len() > 1 {
            for i in (0..=(self.heap.len() - 2) / ARITY).rev() {
                self.sift_down(i);
            }
        }
    }

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
