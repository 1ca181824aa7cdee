//! Taking many due items out of the heap at once.
//!
//! Dequeuing one item from a large heap sifts the last node down the whole height of the
//! heap, and the lower levels are rarely in cache: with a million timers due, each one
//! costs several cache misses. When a large share of the heap is due, the due nodes are
//! instead moved out in one pass over the heap array (in memory order), the rest is made
//! a heap again (bottom up, also in memory order), and the due nodes are sorted into the
//! queue's batch, where taking the next one costs nothing more than a `pop`.
//!
//! Items queued while the batch drains go into the heap, and [`Queue::dequeue`] takes the
//! smaller of the two heads, so the order of items is exactly what it would have been
//! without the batch.

use super::{Node, Queue, ARITY};
use crate::clock::Time;

/// Heaps with fewer nodes than this are left alone: they fit in cache, and popping them
/// costs little more than sorting.
pub(super) const BULK_MIN: usize = 4096;

/// The batch is made when at least one node in this many is due. It costs a pass over the
/// heap and rebuilding what is left, a few ns a node in memory order, against a few
/// hundred ns for each due item popped from a heap of a million.
const BULK_SHARE: usize = 16;

/// How far ahead a batch is read: the batch knows which slots come next, and each item's
/// entry (and what the kernel keeps beside it) is at a random slot, a cache miss apiece
/// with many items. Each time the batch is a multiple of this many nodes long, the entries
/// of the group that comes after the next one are read, all at once, so their misses
/// overlap instead of each stalling the item it belongs to.
const AHEAD: usize = 8;

impl<T> Queue<T> {
    /// A queue that makes batches of heaps from `min` nodes up ([`BULK_MIN`] otherwise).
    #[cfg(test)]
    pub(crate) fn with_bulk_min(min: usize) -> Self {
        Queue {
            bulk_min: min.max(1),
            ..Self::new()
        }
    }

    /// Prepares to dequeue what is due at `now`: if at least one heap node in
    /// [`BULK_SHARE`] is due (and the heap is not small), moves every due node into the
    /// sorted batch. Changes no order and no item: only how the next ones are found.
    /// Returns whether a batch waits (this one or what an earlier one left).
    #[inline]
    pub fn gather_due(&mut self, now: Time) -> bool {
        self.settle();
        if self.heap.len() >= self.bulk_min {
            self.gather(now);
        }
        !self.batch.is_empty()
    }

    fn gather(&mut self, now: Time) {
        let len = self.heap.len();
        if self.heap[0].time > now {
            return;
        }
        if !self.due_reaches(now, (len / BULK_SHARE).max(1)) {
            return;
        }
        // Stale nodes go with the rest: their liveness is looked up when they come to the
        // head, not here, where it would cost a lookup at a random slot for each node.
        let mut kept = 0;
        for i in 0..len {
            let n = self.heap[i];
            if n.time <= now {
                self.batch.push(n);
            } else {
                self.heap[kept] = n;
                kept += 1;
            }
        }
        self.heap.truncate(kept);
        self.heapify();
        // Sorted together with whatever an earlier batch left (one broken off by a
        // handler's exception).
        self.batch.sort_unstable_by(last_first);
        self.purge_head();
    }

    /// The slots whose entries are to be read ahead now (see [`AHEAD`]), if any: the kernel
    /// reads what it keeps at these slots too.
    #[inline]
    pub(crate) fn slots_ahead(&self) -> Option<impl Iterator<Item = usize> + '_> {
        let len = self.batch.len();
        if len < 2 * AHEAD || !len.is_multiple_of(AHEAD) {
            return None;
        }
        Some(
            self.batch[len - 2 * AHEAD..len - AHEAD]
                .iter()
                .map(|n| n.slot as usize),
        )
    }

    /// Reads the slab entries and orders of [`Queue::slots_ahead`].
    #[inline]
    pub(super) fn touch_ahead(&self) {
        if let Some(slots) = self.slots_ahead() {
            let mut sum = 0u64;
            for s in slots {
                sum ^= u64::from(self.orders[s]) ^ self.slab.get(s).map_or(0, |e| e.seq.get());
            }
            std::hint::black_box(sum);
        }
    }

    /// Whether at least `want` heap nodes are due at `now`. The due nodes are the top of the
    /// heap (a node's parent is due before it), so a walk down from the root that turns
    /// back at each node not yet due counts them in O(`want`) steps.
    pub(super) fn due_reaches(&self, now: Time, want: usize) -> bool {
        let len = self.heap.len();
        let mut count = 0;
        let mut i = 0;
        loop {
            if self.heap[i].time <= now {
                count += 1;
                if count >= want {
                    return true;
                }
                let child = ARITY * i + 1;
                if child < len {
                    i = child;
                    continue;
                }
            }
            // The next sibling, or the next sibling of the nearest ancestor that has one.
            loop {
                if i == 0 {
                    return false;
                }
                if (i - 1) % ARITY != ARITY - 1 && i + 1 < len {
                    i += 1;
                    break;
                }
                i = (i - 1) / ARITY;
            }
        }
    }
}

/// Sorting order of the batch: the next node last.
fn last_first(a: &Node, b: &Node) -> std::cmp::Ordering {
    (b.time, b.order).cmp(&(a.time, a.order))
}
