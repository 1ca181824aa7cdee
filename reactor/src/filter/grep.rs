//! `POE::Filter::Grep`: keeps the records a predicate accepts.

use super::coded::Coded;
use super::{BoxedFilter, Filter, FilterError};
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
    code: Coded<T, Predicate<T>, Predicate<T>>,
}

impl<T: fmt::Debug> fmt::Debug for Grep<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grep")
            .field("buffer", &self.code.buffer)
            .finish_non_exhaustive()
    }
}

impl<T> Grep<T> {
    /// One predicate for both directions (`Code => sub`).
    pub fn new(code: impl Fn(&T) -> bool + 'static) -> Self {
        let code: Predicate<T> = Rc::new(code);
        Grep {
            code: Coded::new(code.clone(), code),
        }
    }

    /// Separate predicates for input and output (`Get => sub, Put => sub`).
    pub fn with_get_put(
        get: impl Fn(&T) -> bool + 'static,
        put: impl Fn(&T) -> bool + 'static,
    ) -> Self {
        Grep {
            code: Coded::new(Rc::new(get), Rc::new(put)),
        }
    }

    /// Replaces the input predicate (`modify(Get => sub)`).
    pub fn modify_get(&mut self, get: impl Fn(&T) -> bool + 'static) {
        self.code.get = Rc::new(get);
    }

    /// Replaces the output predicate (`modify(Put => sub)`).
    pub fn modify_put(&mut self, put: impl Fn(&T) -> bool + 'static) {
        self.code.put = Rc::new(put);
    }

    /// Replaces both predicates (`modify(Code => sub)`).
    pub fn modify_code(&mut self, code: impl Fn(&T) -> bool + 'static) {
        let code: Predicate<T> = Rc::new(code);
        self.code.get = code.clone();
        self.code.put = code;
    }
}

impl<T: Clone + 'static> Filter for Grep<T> {
    type Raw = T;
    type Record = T;

    fn get_one_start(&mut self, records: Vec<T>) -> Result<(), FilterError> {
        self.code.buffer.extend(records);
        Ok(())
    }

    fn get_one(&mut self) -> Result<Vec<T>, FilterError> {
        while let Some(record) = self.code.buffer.pop_front() {
            if (self.code.get)(&record) {
                return Ok(vec![record]);
            }
        }
        Ok(Vec::new())
    }

    fn put(&mut self, records: Vec<T>) -> Result<Vec<T>, FilterError> {
        Ok(records.into_iter().filter(|r| (self.code.put)(r)).collect())
    }

    fn get_pending(&self) -> Option<Vec<T>> {
        self.code.pending()
    }

    fn clone_empty(&self) -> Self {
        Grep {
            code: self.code.clone_empty(),
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
