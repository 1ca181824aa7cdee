//! The kernel's one time-ordered queue (POE's `POE::Queue::Array`, rebuilt).
//!
//! Every deferred item (posts, yields, timers, signals) waits here, ordered by
//! [`Time`] and, among equal times, by insertion order: colliding priorities are FIFO, and
//! an item whose time is adjusted goes after the items already waiting at its new time.
//!
//! The structure is an indexed binary heap. Payloads live in a [`slab`], the heap array
//! holds only `(time, order, slot)` triples so that comparisons stay in cache, and each
//! slab entry knows its heap position, so removal and re-timing by id cost O(log n).
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
    payload: T,
}

/// Children per heap node. Four halves the depth of a binary heap and keeps the children
/// of a node within two cache lines.
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
    /// Heap position of each slab slot, apart from the payloads so that sifting touches
    /// only this compact array.
    pos: Vec<u32>,
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
        Queue {
            heap: Vec::new(),
            slab: Slab::new(),
            pos: Vec::new(),
            next_seq: 1,
            next_order: 0,
        }
    }

    /// Number of waiting items.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Queues `payload` at `time`; returns its id.
    pub fn enqueue(&mut self, time: Time, payload: T) -> ItemId {
        let seq = self.next_seq;
        self.next_seq += 1;
        let pos = self.heap.len() as u32;
        let slot = self.slab.insert(Entry { seq, payload }) as u32;
        if self.pos.len() <= slot as usize {
            self.pos.resize(slot as usize + 1, 0);
        }
        let order = self.next_order;
        self.next_order += 1;
        self.heap.push(Node { time, order, slot });
        self.sift_up(pos as usize);
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
        Some((
            n.time,
            ItemId {
                seq: e.seq,
                slot: n.slot,
            },
            &e.payload,
        ))
    }

    /// Removes and returns the next item.
    pub fn dequeue(&mut self) -> Option<(Time, ItemId, T)> {
        if self.heap.is_empty() {
            return None;
        }
        let node = self.remove_at(0);
        let e = self.slab.remove(node.slot as usize);
        Some((
            node.time,
            ItemId {
                seq: e.seq,
                slot: node.slot,
            },
            e.payload,
        ))
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
            Some(e) if e.seq == id.seq => Some(id.slot as usize),
            _ => None,
        }
    }

    /// The item `id`, with its time.
    pub fn get(&self, id: ItemId) -> Option<(Time, &T)> {
        let slot = self.slot_of(id)?;
        let e = &self.slab[slot];
        Some((self.heap[self.pos[slot] as usize].time, &e.payload))
    }

    /// Mutable access to the payload of item `id`.
    pub fn get_mut(&mut self, id: ItemId) -> Option<&mut T> {
        let slot = self.slot_of(id)?;
        Some(&mut self.slab[slot].payload)
    }

    /// Removes item `id` if `allow` accepts its payload.
    pub fn remove_if(
        &mut self,
        id: ItemId,
        allow: impl FnOnce(&T) -> bool,
    ) -> Result<(Time, T), QueueError> {
        let slot = self.slot_of(id).ok_or(QueueError::NotFound)?;
        if !allow(&self.slab[slot].payload) {
            return Err(QueueError::Refused);
        }
        let pos = self.pos[slot] as usize;
        let node = self.remove_at(pos);
        let e = self.slab.remove(slot);
        Ok((node.time, e.payload))
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
        let mut hits: Vec<(Time, u64, ItemId)> = Vec::new();
        for n in &self.heap {
            let e = &self.slab[n.slot as usize];
            if matches(&e.payload) {
                hits.push((
                    n.time,
                    n.order,
                    ItemId {
                        seq: e.seq,
                        slot: n.slot,
                    },
                ));
            }
        }
        hits.sort_unstable_by_key(|&(t, o, _)| (t, o));
        hits.into_iter()
            .map(|(_, _, id)| {
                let slot = id.slot as usize;
                let pos = self.pos[slot] as usize;
                let node = self.remove_at(pos);
                let e = self.slab.remove(slot);
                (node.time, id, e.payload)
            })
            .collect()
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
        let pos = self.pos[slot] as usize;
        let t = new_time(self.heap[pos].time);
        let order = self.next_order;
        self.next_order += 1;
        self.heap[pos].time = t;
        self.heap[pos].order = order;
        // The key only grew in `order`; it may move either way in `time`.
        self.sift_up(pos);
        let pos = self.pos[slot] as usize;
        self.sift_down(pos);
        Ok(t)
    }

    /// Iterates over every waiting item in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Time, ItemId, &T)> + '_ {
        self.heap.iter().map(move |n| {
            let e = &self.slab[n.slot as usize];
            (
                n.time,
                ItemId {
                    seq: e.seq,
                    slot: n.slot,
                },
                &e.payload,
            )
        })
    }

    fn remove_at(&mut self, pos: usize) -> Node {
        let last = self.heap.len() - 1;
        self.heap.swap(pos, last);
        let node = self.heap.pop().expect("remove_at on a non-empty heap");
        if pos < self.heap.len() {
            let moved = self.heap[pos].slot as usize;
            self.sift_up(pos);
            let p = self.pos[moved] as usize;
            self.sift_down(p);
        }
        node
    }

    #[inline]
    fn set_pos(&mut self, pos: usize) {
        let slot = self.heap[pos].slot as usize;
        self.pos[slot] = pos as u32;
    }

    fn sift_up(&mut self, mut pos: usize) {
        let node = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / ARITY;
            if node.before(&self.heap[parent]) {
                self.heap[pos] = self.heap[parent];
                self.set_pos(pos);
                pos = parent;
            } else {
                break;
            }
        }
        self.heap[pos] = node;
        self.set_pos(pos);
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
                self.set_pos(pos);
                pos = child;
            } else {
                break;
            }
        }
        self.heap[pos] = node;
        self.set_pos(pos);
    }
}
