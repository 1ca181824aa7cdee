//! The filter a [`ReadWrite`](super::ReadWrite) wheel holds: the common byte filters
//! ([`Line`], [`Stream`]) inside the wheel itself, any other boxed.
//!
//! An idle connection then pays no allocation for its filter, and the wheel calls the
//! inline filters directly (no dynamic call per record).

use crate::filter::{ByteFilter, Filter, FilterError, Line, Stream};
use std::any::Any;

/// A bytes-in, bytes-out filter as a wheel keeps it.
pub(crate) enum FilterSlot {
    Line(Line),
    Stream(Stream),
    Boxed(ByteFilter),
}

/// A byte filter seen through its trait.
type DynFilter = dyn Filter<Raw = Vec<u8>, Record = Vec<u8>>;

impl FilterSlot {
    /// `f` kept inline if it is a [`Line`] or a [`Stream`], boxed otherwise (a filter
    /// already boxed is kept in its box).
    pub(crate) fn new<F: Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static>(f: F) -> Self {
        let mut slot = Some(f);
        let any = &mut slot as &mut dyn Any;
        if let Some(line) = any.downcast_mut::<Option<Line>>().and_then(Option::take) {
            return FilterSlot::Line(line);
        }
        if let Some(stream) = any.downcast_mut::<Option<Stream>>().and_then(Option::take) {
            return FilterSlot::Stream(stream);
        }
        if let Some(boxed) = any
            .downcast_mut::<Option<ByteFilter>>()
            .and_then(Option::take)
        {
            return FilterSlot::Boxed(boxed);
        }
        match slot {
            Some(f) => FilterSlot::Boxed(Box::new(f)),
            None => unreachable!("the filter was taken only if it matched a variant"),
        }
    }

    /// The filter through its trait.
    pub(crate) fn as_dyn(&self) -> &DynFilter {
        match self {
            FilterSlot::Line(f) => f,
            FilterSlot::Stream(f) => f,
            FilterSlot::Boxed(f) => &**f,
        }
    }

    /// The filter through its trait, to change it.
    pub(crate) fn as_dyn_mut(&mut self) -> &mut DynFilter {
        match self {
            FilterSlot::Line(f) => f,
            FilterSlot::Stream(f) => f,
            FilterSlot::Boxed(f) => &mut **f,
        }
    }

    /// [`Filter::clone_empty`]: the same kind of filter, kept the same way.
    pub(crate) fn clone_empty(&self) -> Self {
        match self {
            FilterSlot::Line(f) => FilterSlot::Line(f.clone_empty()),
            FilterSlot::Stream(f) => FilterSlot::Stream(f.clone_empty()),
            FilterSlot::Boxed(f) => FilterSlot::Boxed(f.clone_boxed()),
        }
    }

    /// [`Filter::get_one_start_chunk`].
    #[inline]
    pub(crate) fn get_one_start_chunk(&mut self, chunk: Vec<u8>) -> Result<(), FilterError> {
        match self {
            FilterSlot::Line(f) => f.get_one_start_chunk(chunk),
            FilterSlot::Stream(f) => f.get_one_start_chunk(chunk),
            FilterSlot::Boxed(f) => f.get_one_start_chunk(chunk),
        }
    }

    /// [`Filter::get_one_with`]; a `Line` hands its record to `sink` directly (no
    /// dynamic call).
    #[inline]
    pub(crate) fn get_one_with(
        &mut self,
        mut sink: impl FnMut(Vec<u8>),
    ) -> Result<usize, FilterError> {
        match self {
            FilterSlot::Line(f) => f.get_one_into(sink),
            FilterSlot::Stream(f) => f.get_one_with(&mut sink),
            FilterSlot::Boxed(f) => f.get_one_with(&mut sink),
        }
    }

    /// The filter as a `Line`, if it is one: its records can be had one at a time
    /// ([`Line::next_line`]), with no sink to hand them to.
    #[inline]
    pub(crate) fn as_line(&mut self) -> Option<&mut Line> {
        match self {
            FilterSlot::Line(f) => Some(f),
            _ => None,
        }
    }

    /// [`Filter::put_one_with`]; a `Line` hands its chunk to `sink` directly.
    #[inline]
    pub(crate) fn put_one_with(
        &mut self,
        record: Vec<u8>,
        mut sink: impl FnMut(Vec<u8>),
    ) -> Result<(), FilterError> {
        match self {
            FilterSlot::Line(f) => {
                sink(f.terminated(record));
                Ok(())
            }
            FilterSlot::Stream(f) => f.put_one_with(record, &mut sink),
            FilterSlot::Boxed(f) => f.put_one_with(record, &mut sink),
        }
    }

    /// [`Filter::may_have_record`].
    #[inline]
    pub(crate) fn may_have_record(&self) -> bool {
        match self {
            FilterSlot::Line(f) => f.may_have_record(),
            FilterSlot::Stream(f) => f.may_have_record(),
            FilterSlot::Boxed(f) => f.may_have_record(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FilterSlot;
    use crate::filter::{ByteFilter, Grep, Line, Stream};

    #[test]
    fn line_and_stream_are_kept_inline_and_others_boxed() {
        assert!(matches!(FilterSlot::new(Line::new()), FilterSlot::Line(_)));
        assert!(matches!(
            FilterSlot::new(Stream::new()),
            FilterSlot::Stream(_)
        ));
        let grep = Grep::<Vec<u8>>::new(|_: &Vec<u8>| true);
        assert!(matches!(FilterSlot::new(grep), FilterSlot::Boxed(_)));
        let boxed: ByteFilter = Box::<Line>::default();
        let slot = FilterSlot::new(boxed);
        assert!(matches!(slot, FilterSlot::Boxed(_)));
        assert_eq!(slot.as_dyn().filter_type(), "Line", "not boxed twice");
    }

    #[test]
    fn an_inline_filter_is_small() {
        assert!(std::mem::size_of::<FilterSlot>() <= 56);
    }
}
