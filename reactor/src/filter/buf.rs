//! The framing buffer shared by the byte filters.

/// A byte buffer consumed from the front in O(1): a `Vec` plus the offset of its first
/// live byte. The dead prefix is reclaimed when it is at least half of the storage and more
/// data is appended, so appends and consumption are amortized O(1) per byte.
///
/// The offset is kept in 32 bits (a prefix that would pass 4 GiB is reclaimed at once),
/// and the other 32 bits of the word hold [`ByteBuf::scan_from`] for the filter that owns
/// the buffer: a connection's filter is small.
#[derive(Debug, Default, Clone)]
pub(crate) struct ByteBuf {
    data: Vec<u8>,
    start: u32,
    /// Where the owning filter's next terminator search may start (live bytes before it
    /// are known not to begin one); 0 when unknown. Offsets past 4 GiB are kept as
    /// `u32::MAX`, which only makes a search start earlier.
    pub(crate) scan_from: u32,
}

impl ByteBuf {
    /// An empty buffer.
    pub(crate) fn new() -> Self {
        ByteBuf::default()
    }

    /// Live bytes.
    pub(crate) fn len(&self) -> usize {
        self.data.len().saturating_sub(self.start as usize)
    }

    /// Whether no live byte is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        self.data.get(self.start as usize..).unwrap_or(&[])
    }

    /// A copy of the live bytes as one chunk, or `None` when there are none: a byte
    /// filter's `get_pending`.
    pub(crate) fn pending(&self) -> Option<Vec<Vec<u8>>> {
        if self.is_empty() {
            None
        } else {
            Some(vec![self.as_slice().to_vec()])
        }
    }

    /// Appends chunks, reusing the first chunk's allocation when the buffer is empty.
    pub(crate) fn append(&mut self, chunks: Vec<Vec<u8>>) {
        for chunk in chunks {
            self.append_one(chunk);
        }
    }

    /// Appends one chunk; an empty buffer takes the chunk over instead of copying it.
    pub(crate) fn append_one(&mut self, chunk: Vec<u8>) {
        if chunk.is_empty() {
            return;
        }
        if self.is_empty() {
            self.data = chunk;
            self.start = 0;
            return;
        }
        if self.start > 0 && self.start as usize >= self.data.len() / 2 {
            self.data.drain(..self.start as usize);
            self.start = 0;
        }
        self.data.extend_from_slice(&chunk);
    }

    /// The first `n` bytes, with `skip` more consumed after them. When that is all the
    /// buffer holds (one whole line and its terminator, as usual), the buffer itself is
    /// handed over, spare capacity included, instead of being copied.
    pub(crate) fn take_skip(&mut self, n: usize, skip: usize) -> Vec<u8> {
        if self.start == 0 && n.saturating_add(skip) == self.data.len() {
            let mut data = std::mem::take(&mut self.data);
            data.truncate(n);
            return data;
        }
        let out = self.take(n);
        self.consume(skip);
        out
    }

    /// Drops the first `n` live bytes (all of them if fewer are buffered).
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.len());
        let start = self.start as usize + n;
        if start >= self.data.len() {
            self.data.clear();
            self.start = 0;
        } else if let Ok(start) = u32::try_from(start) {
            self.start = start;
        } else {
            self.data.drain(..start);
            self.start = 0;
        }
    }

    /// Removes and returns the first `n` live bytes (all of them if fewer are buffered).
    pub(crate) fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.len());
        if n == self.len() {
            return self.take_all();
        }
        let out = self.as_slice().get(..n).unwrap_or(&[]).to_vec();
        self.consume(n);
        out
    }

    /// Removes and returns every live byte.
    pub(crate) fn take_all(&mut self) -> Vec<u8> {
        let mut data = std::mem::take(&mut self.data);
        if self.start > 0 {
            data.drain(..(self.start as usize).min(data.len()));
        }
        self.start = 0;
        data
    }
}

#[cfg(test)]
mod tests {
    use super::ByteBuf;

    #[test]
    fn append_consume_take() {
        let mut b = ByteBuf::new();
        b.append(vec![b"hello".to_vec(), Vec::new(), b" world".to_vec()]);
        assert_eq!(b.as_slice(), b"hello world");
        assert_eq!(b.take(6), b"hello ");
        b.consume(2);
        assert_eq!(b.as_slice(), b"rld");
        b.append(vec![b"!!".to_vec()]);
        assert_eq!(b.as_slice(), b"rld!!");
        assert_eq!(b.take(100), b"rld!!");
        assert!(b.is_empty());
        b.consume(5);
        assert_eq!(b.len(), 0);
        b.append(vec![b"xyz".to_vec()]);
        b.consume(1);
        assert_eq!(b.take_all(), b"yz");
        assert!(b.is_empty());
    }

    #[test]
    fn take_skip_hands_over_a_whole_buffer_and_copies_otherwise() {
        let mut b = ByteBuf::new();
        let mut chunk = Vec::with_capacity(16);
        chunk.extend_from_slice(b"line\r\n");
        let ptr = chunk.as_ptr();
        b.append_one(chunk);
        let line = b.take_skip(4, 2);
        assert_eq!(line, b"line");
        assert_eq!(line.as_ptr(), ptr, "the buffer itself was handed over");
        assert!(line.capacity() >= 16);
        assert!(b.is_empty());

        b.append_one(b"one\ntwo\n".to_vec());
        assert_eq!(b.take_skip(3, 1), b"one");
        assert_eq!(b.as_slice(), b"two\n");
        // Not at the start of the allocation any more: copied, and the rest consumed.
        assert_eq!(b.take_skip(3, 1), b"two");
        assert!(b.is_empty());
        b.append_one(Vec::new());
        assert!(b.is_empty());
    }
}
