//! The chunks of output a wheel holds until the handle takes them: a FIFO of byte
//! vectors that costs no allocation of its own while it holds at most one chunk, which is
//! what a request/response connection holds almost always (an idle connection holds
//! none), and grows into a ring only when output backs up.

use std::collections::VecDeque;

/// A FIFO of non-empty chunks: the first inline, the others in a ring made on demand.
#[derive(Default)]
pub(crate) struct OutQueue {
    /// The first chunk; empty when the queue is.
    head: Vec<u8>,
    /// The chunks after the first, once there have been two at a time. Boxed so that the
    /// many wheels that never need it pay one word for it, not a `VecDeque`'s four.
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<Vec<u8>>>>,
}

impl OutQueue {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_empty()
    }

    /// How many chunks wait.
    pub(crate) fn len(&self) -> usize {
        if self.head.is_empty() {
            0
        } else {
            1 + self.rest.as_ref().map_or(0, |r| r.len())
        }
    }

    /// Queues a chunk; empty chunks are not queued.
    #[inline(always)]
    pub(crate) fn push_back(&mut self, chunk: Vec<u8>) {
        if chunk.is_empty() {
            return;
        }
        if self.head.is_empty() {
            // The old head's capacity goes with it: an idle wheel keeps nothing here.
            self.head = chunk;
        } else {
            self.push_rest(chunk);
        }
    }

    /// [`OutQueue::push_back`] behind a first chunk, out of line.
    #[inline(never)]
    fn push_rest(&mut self, chunk: Vec<u8>) {
        self.rest.get_or_insert_with(Box::default).push_back(chunk);
    }

    /// The one chunk waiting, if exactly one does.
    #[inline]
    pub(crate) fn single(&self) -> Option<&Vec<u8>> {
        (!self.head.is_empty() && self.rest.as_ref().is_none_or(|r| r.is_empty()))
            .then_some(&self.head)
    }

    /// Takes out the one chunk that [`OutQueue::single`] found.
    #[inline]
    pub(crate) fn take_single(&mut self) -> Vec<u8> {
        debug_assert!(self.rest.as_ref().is_none_or(|r| r.is_empty()));
        std::mem::take(&mut self.head)
    }

    /// The first chunk, if any.
    #[inline]
    pub(crate) fn front(&self) -> Option<&Vec<u8>> {
        (!self.head.is_empty()).then_some(&self.head)
    }

    /// The first chunk, to drop what has been written of it.
    #[inline]
    pub(crate) fn front_mut(&mut self) -> Option<&mut Vec<u8>> {
        (!self.head.is_empty()).then_some(&mut self.head)
    }

    /// Takes the first chunk out.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<Vec<u8>> {
        if self.head.is_empty() {
            return None;
        }
        let next = self
            .rest
            .as_mut()
            .and_then(|r| r.pop_front())
            .unwrap_or_default();
        Some(std::mem::replace(&mut self.head, next))
    }

    /// The chunks in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.front()
            .into_iter()
            .chain(self.rest.iter().flat_map(|r| r.iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::OutQueue;

    #[test]
    fn chunks_leave_in_the_order_they_came_and_empty_ones_never_wait() {
        let mut q = OutQueue::default();
        assert!(q.is_empty() && q.front().is_none() && q.pop_front().is_none());
        q.push_back(Vec::new());
        assert!(q.is_empty());
        for c in [b"a".to_vec(), b"bc".to_vec(), b"def".to_vec()] {
            q.push_back(c);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(
            q.iter().cloned().collect::<Vec<_>>(),
            [b"a".to_vec(), b"bc".to_vec(), b"def".to_vec()]
        );
        q.front_mut().unwrap().push(b'z');
        q.front_mut().unwrap().drain(..1);
        assert_eq!(q.pop_front().unwrap(), b"z");
        assert_eq!(q.pop_front().unwrap(), b"bc");
        q.push_back(b"g".to_vec());
        assert_eq!(q.pop_front().unwrap(), b"def");
        assert_eq!(q.pop_front().unwrap(), b"g");
        assert!(q.is_empty());
        assert_eq!(q.len(), 0);
    }
}
