//! `POE::Filter::Map`: transforms records with user code.

use super::coded::Coded;
use super::{BoxedFilter, Filter, FilterError};
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
    code: Coded<T, MapFn<T, U>, MapFn<U, T>>,
}

impl<T: fmt::Debug, U> fmt::Debug for Map<T, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("buffer", &self.code.buffer)
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
            code: Coded::new(one(get), one(put)),
        }
    }

    /// Code that may produce any number of records per record, as Perl's `map` can.
    pub fn flat<G, P>(get: impl Fn(T) -> G + 'static, put: impl Fn(U) -> P + 'static) -> Self
    where
        G: IntoIterator<Item = U>,
        P: IntoIterator<Item = T>,
    {
        Map {
            code: Coded::new(many(get), many(put)),
        }
    }

    /// Replaces the input code (`modify(Get => sub)`).
    pub fn modify_get(&mut self, get: impl Fn(T) -> U + 'static) {
        self.code.get = one(get);
    }

    /// Replaces the output code (`modify(Put => sub)`).
    pub fn modify_put(&mut self, put: impl Fn(U) -> T + 'static) {
        self.code.put = one(put);
    }

    /// Replaces the input code with code that may produce any number of records.
    pub fn modify_get_flat<G>(&mut self, get: impl Fn(T) -> G + 'static)
    where
        G: IntoIterator<Item = U>,
    {
        self.code.get = many(get);
    }

    /// Replaces the output code with code that may produce any number of records.
    pub fn modify_put_flat<P>(&mut self, put: impl Fn(U) -> P + 'static)
    where
        P: IntoIterator<Item = T>,
    {
        self.code.put = many(put);
    }
}

impl<T> Map<T, T> {
    /// The same code for both directions (`Code => sub`).
    pub fn code(code: impl Fn(T) -> T + 'static) -> Self {
        let code = one(code);
        Map {
            code: Coded::new(code.clone(), code),
        }
    }

    /// Replaces both codes (`modify(Code => sub)`).
    pub fn modify_code(&mut self, code: impl Fn(T) -> T + 'static) {
        let code = one(code);
        self.code.get = code.clone();
        self.code.put = code;
    }
}

impl<T: Clone + 'static, U: 'static> Filter for Map<T, U> {
    type Raw = T;
    type Record = U;

    fn get_one_start(&mut self, records: Vec<T>) -> Result<(), FilterError> {
        self.code.buffer.extend(records);
        Ok(())
    }

    fn get_one(&mut self) -> Result<Vec<U>, FilterError> {
        Ok(match self.code.buffer.pop_front() {
            Some(record) => (self.code.get)(record),
            None => Vec::new(),
        })
    }

    fn put(&mut self, records: Vec<U>) -> Result<Vec<T>, FilterError> {
        Ok(records
            .into_iter()
            .flat_map(|r| (self.code.put)(r))
            .collect())
    }

    fn get_pending(&self) -> Option<Vec<T>> {
        self.code.pending()
    }

    fn clone_empty(&self) -> Self {
        Map {
            code: self.code.clone_empty(),
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
