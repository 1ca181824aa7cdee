//! Two stacked filters of different types.

use super::{BoxedFilter, Filter, FilterError};

/// Two filters stacked: `lower` parses the raw stream, `upper` parses `lower`'s records.
/// A statically typed two-filter [`Stackable`](super::Stackable) for filters whose types
/// differ, e.g. a [`Line`](super::Line) under a [`RecordBlock`](super::RecordBlock).
/// Chains nest: `Chain::new(Chain::new(a, b), c)`.
///
/// `get_one` and `put` follow Stackable's algorithms. `get_pending` returns `lower`'s
/// pending data: the only part that has the raw type (Stackable returns the last
/// filter's).
///
/// ```
/// use reactor::filter::{Chain, Filter, Line, RecordBlock};
///
/// let mut pairs = Chain::new(Line::with_literal("\n").unwrap(), RecordBlock::new(2).unwrap());
/// let blocks = pairs.get(vec![b"a\nb\nc\n".to_vec()])?;
/// assert_eq!(blocks, vec![vec![b"a".to_vec(), b"b".to_vec()]]);
/// assert_eq!(pairs.put(blocks)?, vec![b"a\n".to_vec(), b"b\n".to_vec()]);
/// # Ok::<(), reactor::filter::FilterError>(())
/// ```
#[derive(Debug)]
pub struct Chain<A, B> {
    lower: A,
    upper: B,
}

impl<A, B> Chain<A, B> {
    /// `upper` stacked on `lower`.
    pub fn new(lower: A, upper: B) -> Self {
        Chain { lower, upper }
    }

    /// The filter closest to the raw stream.
    pub fn lower(&self) -> &A {
        &self.lower
    }

    /// The filter closest to the records.
    pub fn upper(&self) -> &B {
        &self.upper
    }

    /// The filter closest to the raw stream, mutably.
    pub fn lower_mut(&mut self) -> &mut A {
        &mut self.lower
    }

    /// The filter closest to the records, mutably.
    pub fn upper_mut(&mut self) -> &mut B {
        &mut self.upper
    }

    /// Splits the chain into `(lower, upper)`.
    pub fn into_parts(self) -> (A, B) {
        (self.lower, self.upper)
    }
}

impl<A, B> Filter for Chain<A, B>
where
    A: Filter + 'static,
    B: Filter<Raw = A::Record> + 'static,
{
    type Raw = A::Raw;
    type Record = B::Record;

    fn get_one_start(&mut self, chunks: Vec<A::Raw>) -> Result<(), FilterError> {
        self.lower.get_one_start(chunks)
    }

    fn get_one(&mut self) -> Result<Vec<B::Record>, FilterError> {
        loop {
            let middle = self.lower.get_one()?;
            let exchanged = !middle.is_empty();
            if exchanged {
                self.upper.get_one_start(middle)?;
            }
            let records = self.upper.get_one()?;
            if !records.is_empty() || !exchanged {
                return Ok(records);
            }
        }
    }

    fn put(&mut self, records: Vec<B::Record>) -> Result<Vec<A::Raw>, FilterError> {
        let middle = self.upper.put(records)?;
        if middle.is_empty() {
            return Ok(Vec::new());
        }
        self.lower.put(middle)
    }

    fn get_pending(&self) -> Option<Vec<A::Raw>> {
        self.lower.get_pending()
    }

    fn clone_empty(&self) -> Self {
        Chain {
            lower: self.lower.clone_empty(),
            upper: self.upper.clone_empty(),
        }
    }

    fn clone_boxed(&self) -> BoxedFilter<A::Raw, B::Record> {
        Box::new(self.clone_empty())
    }

    fn filter_type(&self) -> &'static str {
        "Chain"
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}
