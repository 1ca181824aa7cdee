//! The sorted-`Vec` model the queue's randomized tests compare it with.

use super::Queue;

/// Entries `(time, order, seq, payload)` ordered by `(time, order)`, where `order` is a
/// counter bumped on every enqueue and every re-time (re-timed items go after those
/// already waiting at the new time).
#[derive(Default)]
pub(super) struct Model {
    pub(super) items: Vec<(i64, u64, u64, u32)>,
    pub(super) next_order: u64,
    pub(super) next_seq: u64,
}

impl Model {
    pub(super) fn insert(&mut self, time: i64, seq: u64, payload: u32) {
        let order = self.next_order;
        self.next_order += 1;
        let at = self.items.partition_point(|x| (x.0, x.1) < (time, order));
        self.items.insert(at, (time, order, seq, payload));
    }

    pub(super) fn find(&self, seq: u64) -> Option<usize> {
        self.items.iter().position(|x| x.2 == seq)
    }

    /// Asserts that `q` holds as many items as the model and shows the same head.
    pub(super) fn check(&self, q: &mut Queue<u32>, step: usize) {
        assert_eq!(q.len(), self.items.len(), "step {step}: len");
        assert_eq!(
            q.next_time(),
            self.items.first().map(|e| e.0),
            "step {step}: next_time"
        );
        let peek = q.peek().map(|(t, id, p)| (t, id.seq(), *p));
        assert_eq!(
            peek,
            self.items.first().map(|e| (e.0, e.2, e.3)),
            "step {step}: peek"
        );
    }
}
