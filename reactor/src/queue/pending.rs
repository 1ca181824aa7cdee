//! New nodes waiting beside a large heap until the head is next needed.
//!
//! Pushing a node into a heap of a million reads its parent far back in the array, and most
//! timers are set to be cancelled (timeouts that do not expire). So once the heap is large,
//! a new node is only appended to `pending`; the nodes there go into the heap when the head
//! is next needed ([`Queue::settle`]: at the next dequeue, or when the kernel asks when the
//! next item is due), those cancelled meanwhile are dropped on the way, and many at once go
//! in by rebuilding the heap bottom up instead of one push each. Pending nodes go stale like
//! any other, and count as stale ones for [`Queue`]'s rebuilds.

use super::{Node, Queue};
use crate::clock::Time;

/// New nodes go straight into heaps smaller than this: they are in cache, and a push costs
/// less than keeping the node aside.
pub(super) const PENDING_MIN: usize = 4096;

impl<T> Queue<T> {
    /// A queue that keeps new nodes aside once its heap has `min` nodes.
    #[cfg(test)]
    pub(crate) fn with_pending_min(min: usize) -> Self {
        Queue {
            pending_min: min,
            ..Self::new()
        }
    }

    /// Adds a node: into the heap while it is small, otherwise to the pending nodes.
    #[inline]
    pub(super) fn add_node(&mut self, node: Node) {
        if self.heap.len() < self.pending_min {
            self.push_node(node);
        } else {
            self.pending.push(node);
        }
    }

    /// Puts the pending nodes into the heap, so that the head is known in O(1). Changes no
    /// order and no item.
    #[inline]
    pub fn settle(&mut self) {
        if !self.pending.is_empty() {
            self.settle_pending();
        }
    }

    fn settle_pending(&mut self) {
        let orders = &self.orders;
        self.pending.retain(|n| n.live_in(orders));
        if self.pending.len() > self.heap.len() / 8 {
            // Many: one bottom-up rebuild, in memory order, instead of a push each.
            self.heap.append(&mut self.pending);
            self.heapify();
            self.purge_heap();
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            for n in pending.drain(..) {
                self.push_node(n);
            }
            self.pending = pending;
        }
    }

    /// The earlier of `head` and the first live pending node's time.
    #[cold]
    pub(super) fn next_time_pending(&self, head: Option<Time>) -> Option<Time> {
        self.pending
            .iter()
            .filter(|n| n.live_in(&self.orders))
            .map(|n| n.time)
            .chain(head)
            .min()
    }
}
