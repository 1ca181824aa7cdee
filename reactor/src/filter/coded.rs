//! What the record filters that run code share ([`Grep`](super::Grep), [`Map`](super::Map)):
//! the records waiting to be parsed, and the input and output code, which a filter's
//! clones share.

use std::collections::VecDeque;

/// A record filter's queue of records and its input (`get`) and output (`put`) code, each
/// a shared closure (`Rc<dyn Fn ..>`) that clones of the filter share.
pub(crate) struct Coded<T, G, P> {
    pub(crate) buffer: VecDeque<T>,
    pub(crate) get: G,
    pub(crate) put: P,
}

impl<T, G: Clone, P: Clone> Coded<T, G, P> {
    pub(crate) fn new(get: G, put: P) -> Self {
        Coded {
            buffer: VecDeque::new(),
            get,
            put,
        }
    }

    /// The same code with an empty queue (POE's `clone`).
    pub(crate) fn clone_empty(&self) -> Self {
        Self::new(self.get.clone(), self.put.clone())
    }
}

impl<T: Clone, G, P> Coded<T, G, P> {
    /// The queued records, untouched (POE's `get_pending`).
    pub(crate) fn pending(&self) -> Option<Vec<T>> {
        if self.buffer.is_empty() {
            None
        } else {
            Some(self.buffer.iter().cloned().collect())
        }
    }
}
