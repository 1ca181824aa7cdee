//! `POE::Filter::Map`: transforms records with user code.

use super::{BoxedFilter, Filter, FilterError};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

type MapFn<A, B> = Rc<dyn Fn(A) -> Vec<B>>;

/// `POE::Filter::Map`: a record filter that transforms input records with its `Get` code
/// and output records with its `Put` code.
///
/// The buffer is a queue of `T`s. `get_one` transforms the next one and returns whatever
/// the code produced. Code made with [`Map::new`] produces exactly one record; code made
/// with [`Map::flat`] may produce any number, and producing none makes `get_one` return
/// nothing, which ends a [`Filter::get`] loop early with later records still buffered (as
/// in POE). `get_pending` returns the queued records untransformed. Cloning shares the
/// code.
///
/// ```
/// use reactor::filter::{Filter, Map};
///
/// let mut upper = Map::new(|s: String| s.to_uppercase(), |s: String| s.to_lowercase());
/// assert_eq!(upper.get(vec!["a".into(), "b".into()])?, vec!["A", "B"]);
/// assert_eq!(upper.put(vec!["C".into()])?, vec!["c"]);
/// # Ok::<(), reactor::filter::FilterError>(())
/// ```
pub struct Map<T, U> {
    buffer: VecDeque<T>,
    get: MapFn<T, U>,
    put: MapFn<U, T>,
}

impl<T: fmt::Debug, U> fmt::Debug for Map<T, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

fn one<A, B>(f: impl Fn(A) -> B + 'static) -> MapFn<A, B> {
    Rc::new(move |a| vec![f(a)])
}

fn many<A, B, I>(f: impl Fn(A) -> I + 'static) -> MapFn<A, B>
where
    I: IntoIterator<Item = B>,
{
    Rc::new(move |a| f(a).into_iter().collect())
}

impl<T, U> Map<T, U> {
    /// One-to-one code for each direction (`Get => sub, Put => sub`).
    pub fn new(get: impl Fn(T) -> U + 'static, put: impl Fn(U) -> T + 'static) -> Self {
        Map {
            buffer: VecDeque::new(),
            get: one(get),
            put: one(put),
        }
    }

    /// Code that may produce any number of records per record, as Perl's `map` can.
    pub fn flat<G, P>(get: impl Fn(T) -> G + 'static, put: impl Fn(U) -> P + 'static) -> Self
    where
        G: IntoIterator<Item = U>,
        P: IntoIterator<Item = T>,
    {
        Map {
            buffer: VecDeque::new(),
            get: many(get),
            put: many(put),
        }
    }

    /// Replaces the input code (`modify(Get => sub)`).
    pub fn modify_get(&mut self, get: impl Fn(T) -> U + 'static) {
        self.get = one(get);
    }

    /// Replaces the output code (`modify(Put => sub)`).
    pub fn modify_put(&mut self, put: impl Fn(U) -> T + 'static) {
        self.put = one(put);
    }

    /// Replaces the input code with code that may produce any number of records.
    pub fn modify_get_flat<G>(&mut self, get: impl Fn(T) -> G + 'static)
    where
        G: IntoIterator<Item = U>,
    {
        self.get = many(get);
    }

    /// Replaces the output code with code that may produce any number of records.
    pub fn modify_put_flat<P>(&mut self, put: impl Fn(U) -> P + 'static)
    where
        P: IntoIterator<Item = T>,
    {
        self.put = many(put);
    }
}

impl<T> Map<T, T> {
    /// The same code for both directions (`Code => sub`).
    pub fn code(code: impl Fn(T) -> T + 'static) -> Self {
        let code = one(code);
        Map {
            buffer: VecDeque::new(),
            get: code.clone(),
            put: code,
        }
    }

    /// Replaces both codes (`modify(Code => sub)`).
    pub fn modify_code(&mut self, code: impl Fn(T) -> T + 'static) {
        let code = one(code);
        self.get = code.clone();
        self.put = code;
    }
}

impl<T: Clone + 'static, U: 'static> Filter for Map<T, U> {
    type Raw = T;
    type Record = U;

    fn get_one_start(&mut self, records: Vec<T>) -> Result<(), FilterError> {
        self.buffer.extend(records);
        Ok(())
    }

    fn get_one(&mut self) -> Result<Vec<U>, FilterError> {
        Ok(match self.buffer.pop_front() {
            Some(record) => (self.get)(record),
            None => Vec::new(),
        })
    }

    fn put(&mut self, records: Vec<U>) -> Result<Vec<T>, FilterError> {
        Ok(records.into_iter().flat_map(|r| (self.put)(r)).collect())
    }

    fn get_pending(&self) -> Option<Vec<T>> {
        if self.buffer.is_empty() {
            None
        } else {
            Some(self.buffer.iter().cloned().collect())
        }
    }

    fn clone_empty(&self) -> Self {
        Map {
            buffer: VecDeque::new(),
            get: self.get.clone(),
            put: self.put.clone(),
        }
    }

    fn clone_boxed(&self) -> BoxedFilter<T, U> {
        Box::new(self.clone_empty())
    }

    fn filter_type(&self) -> &'static str {
        "Map"
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}
