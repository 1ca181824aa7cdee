//! `POE::Filter::Stream`: no framing at all.

use super::buf::ByteBuf;
use super::{BoxedFilter, Filter, FilterError};

/// `POE::Filter::Stream`: `get_one` returns everything buffered as one record; `put`
/// passes records through unchanged.
///
/// ```
/// use reactor::filter::{Filter, Stream};
///
/// let mut stream = Stream::new();
/// let chunks = vec![b"ab".to_vec(), b"c".to_vec()];
/// assert_eq!(stream.get(chunks.clone())?, vec![b"abc".to_vec()]);
/// assert_eq!(stream.put(chunks.clone())?, chunks);
/// # Ok::<(), reactor::filter::FilterError>(())
/// ```
#[derive(Debug, Default)]
pub struct Stream {
    buf: ByteBuf,
}

impl Stream {
    /// An empty stream filter.
    pub fn new() -> Self {
        Stream::default()
    }
}

impl Filter for Stream {
    type Raw = Vec<u8>;
    type Record = Vec<u8>;

    fn get_one_start(&mut self, chunks: Vec<Vec<u8>>) -> Result<(), FilterError> {
        self.buf.append(chunks);
        Ok(())
    }

    fn get_one(&mut self) -> Result<Vec<Vec<u8>>, FilterError> {
        if self.buf.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![self.buf.take_all()])
    }

    fn put(&mut self, records: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, FilterError> {
        Ok(records)
    }

    fn get_one_start_chunk(&mut self, chunk: Vec<u8>) -> Result<(), FilterError> {
        self.buf.append_one(chunk);
        Ok(())
    }

    fn get_one_with(&mut self, sink: &mut dyn FnMut(Vec<u8>)) -> Result<usize, FilterError> {
        if self.buf.is_empty() {
            return Ok(0);
        }
        sink(self.buf.take_all());
        Ok(1)
    }

    fn put_one_with(
        &mut self,
        record: Vec<u8>,
        sink: &mut dyn FnMut(Vec<u8>),
    ) -> Result<(), FilterError> {
        sink(record);
        Ok(())
    }

    fn get_pending(&self) -> Option<Vec<Vec<u8>>> {
        self.buf.pending()
    }

    fn may_have_record(&self) -> bool {
        !self.buf.is_empty()
    }

    fn clone_empty(&self) -> Self {
        Stream::new()
    }

    fn clone_boxed(&self) -> BoxedFilter<Vec<u8>, Vec<u8>> {
        Box::new(Stream::new())
    }

    fn filter_type(&self) -> &'static str {
        "Stream"
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}
