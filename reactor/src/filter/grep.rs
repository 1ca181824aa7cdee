//! `POE::Filter::Grep`: keeps the records a predicate accepts.

use super::{BoxedFilter, Filter, FilterError};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

type Predicate<T> = Rc<dyn Fn(&T) -> bool>;

/// `POE::Filter::Grep`: a record filter that passes on only the records its `Get`
/// predicate accepts (input) and its `Put` predicate accepts (output).
///
/// The buffer is a queue of records: `get_one` drops records until one passes and returns
/// it. `get_pending` returns the queued records, untested. Cloning shares the predicates.
///
/// ```
/// use reactor::filter::{Filter, Grep};
///
/// let mut odd = Grep::new(|n: &i32| n % 2 == 1);
/// assert_eq!(odd.get(vec![1, 1, 2, 3, 5])?, vec![1, 1, 3, 5]);
/// assert_eq!(odd.put(vec![2, 7])?, vec![7]);
/// # Ok::<(), reactor::filter::FilterError>(())
/// ```
pub struct Grep<T> {
    buffer: VecDeque<T>,
    get: Predicate<T>,
    put: Predicate<T>,
}

impl<T: fmt::Debug> fmt::Debug for Grep<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grep")
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

impl<T> Grep<T> {
    /// One predicate for both directions (`Code => sub`).
    pub fn new(code: impl Fn(&T) -> bool + 'static) -> Self {
        let code: Predicate<T> = Rc::new(code);
        Grep {
            buffer: VecDeque::new(),
            get: code.clone(),
            put: code,
        }
    }

    /// Separate predicates for input and output (`Get => sub, Put => sub`).
    pub fn with_get_put(
        get: impl Fn(&T) -> bool + 'static,
        put: impl Fn(&T) -> bool + 'static,
    ) -> Self {
        Grep {
            buffer: VecDeque::new(),
            get: Rc::new(get),
            put: Rc::new(put),
        }
    }

    /// Replaces the input predicate (`modify(Get => sub)`).
    pub fn modify_get(&mut self, get: impl Fn(&T) -> bool + 'static) {
        self.get = Rc::new(get);
    }

    /// Replaces the output predicate (`modify(Put => sub)`).
    pub fn modify_put(&mut self, put: impl Fn(&T) -> bool + 'static) {
        self.put = Rc::new(put);
    }

    /// Replaces both predicates (`modify(Code => sub)`).
    pub fn modify_code(&mut self, code: impl Fn(&T) -> bool + 'static) {
        let code: Predicate<T> = Rc::new(code);
        self.get = code.clone();
        self.put = code;
    }
}

impl<T: Clone + 'static> Filter for Grep<T> {
    type Raw = T;
    type Record = T;

    fn get_one_start(&mut self, records: Vec<T>) -> Result<(), FilterError> {
        self.buffer.extend(records);
        Ok(())
    }

    fn get_one(&mut self) -> Result<Vec<T>, FilterError> {
        while let Some(record) = self.buffer.pop_front() {
            if (self.get)(&record) {
                return Ok(vec![record]);
            }
        }
        Ok(Vec::new())
    }

    fn put(&mut self, records: Vec<T>) -> Result<Vec<T>, FilterError> {
        Ok(records.into_iter().filter(|r| (self.put)(r)).collect())
    }

    fn get_pending(&self) -> Option<Vec<T>> {
        if self.buffer.is_empty() {
            None
        } else {
            Some(self.buffer.iter().cloned().collect())
        }
    }

    fn clone_empty(&self) -> Self {
        Grep {
            buffer: VecDeque::new(),
            get: self.get.clone(),
            put: self.put.clone(),
        }
    }

    fn clone_boxed(&self) -> BoxedFilter<T, T> {
        Box::new(self.clone_empty())
    }

    fn filter_type(&self) -> &'static str {
        "Grep"
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}
