//! `POE::Filter::Stackable`: a run-time stack of filters.

use super::{BoxedFilter, Filter, FilterError};
use std::fmt;

/// `POE::Filter::Stackable`: filters applied in sequence, the first one closest to the raw
/// stream. Input goes up the stack (first to last), output down (last to first).
///
/// Every filter in a `Stackable<T>` has `Raw = Record = T` (for a wheel, `T = Vec<u8>`:
/// [`Line`](super::Line), [`Stream`](super::Stream), [`Block`](super::Block), byte
/// [`Map`](super::Map)s and [`Grep`](super::Grep)s), so the stack can change at run
/// time. To stack filters whose types differ, use [`Chain`](super::Chain).
///
/// - `get_one` strobes every filter in turn, handing each one's output to the next, until
///   the last yields a record or a whole pass moves no data (so a filter that makes
///   several records from one input loses none).
/// - `put` runs the filters last to first, stopping as soon as one returns nothing.
/// - `get_pending` returns the **last** filter's pending data (POE's quirk: what earlier
///   filters hold is not reported).
///
/// ```
/// use reactor::filter::{Filter, Line, Map, Stackable};
///
/// let mut stack = Stackable::new(vec![
///     Box::new(Line::with_literal("\n").unwrap()),
///     Box::new(Map::code(|l: Vec<u8>| l.to_ascii_uppercase())),
/// ]);
/// assert_eq!(stack.get(vec![b"ab\ncd".to_vec()])?, vec![b"AB".to_vec()]);
/// assert_eq!(stack.put(vec![b"x".to_vec()])?, vec![b"X\n".to_vec()]);
/// # Ok::<(), reactor::filter::FilterError>(())
/// ```
pub struct Stackable<T> {
    filters: Vec<BoxedFilter<T, T>>,
}

impl<T> Default for Stackable<T> {
    fn default() -> Self {
        Stackable {
            filters: Vec::new(),
        }
    }
}

impl<T> fmt::Debug for Stackable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stackable")
            .field(
                "filters",
                &self
                    .filters
                    .iter()
                    .map(|f| f.filter_type())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<T> Stackable<T> {
    /// A stack of `filters` (`Filters => [...]`), the first closest to the raw stream.
    pub fn new(filters: Vec<BoxedFilter<T, T>>) -> Self {
        Stackable { filters }
    }

    /// The filters, first (closest to the raw stream) to last.
    pub fn filters(&self) -> &[BoxedFilter<T, T>] {
        &self.filters
    }

    /// The filters, mutably (e.g. to `modify` a [`Map`](super::Map) in place).
    pub fn filters_mut(&mut self) -> &mut [BoxedFilter<T, T>] {
        &mut self.filters
    }

    /// Each filter's [`Filter::filter_type`], first to last.
    pub fn filter_types(&self) -> Vec<&'static str> {
        self.filters.iter().map(|f| f.filter_type()).collect()
    }

    /// Number of filters in the stack.
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Whether the stack holds no filter.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Adds a filter at the top (farthest from the raw stream).
    pub fn push(&mut self, filter: BoxedFilter<T, T>) {
        self.filters.push(filter);
    }

    /// Adds a filter at the bottom (closest to the raw stream).
    pub fn unshift(&mut self, filter: BoxedFilter<T, T>) {
        self.filters.insert(0, filter);
    }

    /// Removes the top filter. As in POE, its pending input is handed to the new top
    /// filter's `put` and the result discarded.
    pub fn pop(&mut self) -> Option<BoxedFilter<T, T>> {
        let filter = self.filters.pop()?;
        if let (Some(pending), Some(top)) = (filter.get_pending(), self.filters.last_mut()) {
            // POE ignores what put returns; a failure there changes nothing either.
            let _ = top.put(pending);
        }
        Some(filter)
    }

    /// Removes the bottom filter. As in POE, its pending input is handed to the new bottom
    /// filter's `put` and the result discarded.
    pub fn shift(&mut self) -> Option<BoxedFilter<T, T>> {
        if self.filters.is_empty() {
            return None;
        }
        let filter = self.filters.remove(0);
        if let (Some(pending), Some(bottom)) = (filter.get_pending(), self.filters.first_mut()) {
            let _ = bottom.put(pending);
        }
        Some(filter)
    }
}

impl<T: 'static> Filter for Stackable<T> {
    type Raw = T;
    type Record = T;

    fn get_one_start(&mut self, chunks: Vec<T>) -> Result<(), FilterError> {
        match self.filters.first_mut() {
            Some(first) => first.get_one_start(chunks),
            None => Err(FilterError::EmptyStack),
        }
    }

    fn get_one(&mut self) -> Result<Vec<T>, FilterError> {
        let mut records: Vec<T> = Vec::new();
        while records.is_empty() {
            let mut exchanged = false;
            for filter in &mut self.filters {
                if !records.is_empty() {
                    filter.get_one_start(std::mem::take(&mut records))?;
                    exchanged = true;
                }
                records = filter.get_one()?;
            }
            if !exchanged {
                break;
            }
        }
        Ok(records)
    }

    fn put(&mut self, records: Vec<T>) -> Result<Vec<T>, FilterError> {
        let mut data = records;
        for filter in self.filters.iter_mut().rev() {
            data = filter.put(data)?;
            if data.is_empty() {
                break;
            }
        }
        Ok(data)
    }

    fn get_pending(&self) -> Option<Vec<T>> {
        self.filters.last()?.get_pending()
    }

    fn clone_empty(&self) -> Self {
        Stackable {
            filters: self.filters.iter().map(|f| f.clone_boxed()).collect(),
        }
    }

    fn clone_boxed(&self) -> BoxedFilter<T, T> {
        Box::new(self.clone_empty())
    }

    fn filter_type(&self) -> &'static str {
        "Stackable"
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}
