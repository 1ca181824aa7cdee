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
    pub fn gather_due(&mut self, now: Time) {
        let len = self.heap.len();
        if len < self.bulk_min || self.heap[0].time > now {
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
