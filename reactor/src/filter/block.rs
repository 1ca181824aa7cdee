//! `POE::Filter::Block`: fixed-size blocks, or blocks framed by a length prefix.

use super::buf::ByteBuf;
use super::{
    param_max, BoxedFilter, ConfigError, Filter, FilterError, DEFAULT_MAX_BUFFER,
    DEFAULT_MAX_LENGTH,
};
use std::fmt;
use std::rc::Rc;

/// What a [`LengthCodec`] found at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// A complete header of `consumed` octets announcing a block of `length` octets.
    Length {
        /// Header octets to remove from the buffer.
        consumed: usize,
        /// Size of the block that follows the header.
        length: usize,
    },
    /// Garbage to drop from the front of the buffer (no header yet). `get_one` returns
    /// nothing after dropping it, as POE's default decoder does.
    Skip(usize),
    /// The header is not complete yet.
    NeedMore,
}

/// Frames blocks for [`Block`] in length-prefixed mode: POE's
/// `LengthCodec => [\&encoder, \&decoder]`.
///
/// A pair of closures `(Fn(Vec<u8>) -> Vec<u8>, Fn(&[u8]) -> Decoded)` is a codec.
pub trait LengthCodec {
    /// Frames one outgoing block (usually by prepending a header).
    fn encode(&self, block: Vec<u8>) -> Vec<u8>;
    /// Looks for a header at the start of `buffer`.
    fn decode(&self, buffer: &[u8]) -> Decoded;
}

impl<E, D> LengthCodec for (E, D)
where
    E: Fn(Vec<u8>) -> Vec<u8>,
    D: Fn(&[u8]) -> Decoded,
{
    fn encode(&self, block: Vec<u8>) -> Vec<u8> {
        (self.0)(block)
    }

    fn decode(&self, buffer: &[u8]) -> Decoded {
        (self.1)(buffer)
    }
}

/// POE's default length codec: ASCII decimal length, then `"\0"`, then the block.
///
/// Decoding: `^(\d+)\0` is a header. Leading non-digits are garbage and are skipped with a
/// warning ("N strange bytes removed from stream"). Digits followed by anything but NUL
/// never parse (the filter stalls, as POE's does).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultLengthCodec;

impl LengthCodec for DefaultLengthCodec {
    fn encode(&self, block: Vec<u8>) -> Vec<u8> {
        let header = block.len().to_string();
        let mut framed = Vec::with_capacity(header.len() + 1 + block.len());
        framed.extend_from_slice(header.as_bytes());
        framed.push(0);
        framed.extend_from_slice(&block);
        framed
    }

    fn decode(&self, buffer: &[u8]) -> Decoded {
        let digits = buffer.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            let strange = buffer.iter().take_while(|b| !b.is_ascii_digit()).count();
            if strange == 0 {
                return Decoded::NeedMore;
            }
            log::warn!("{strange} strange bytes removed from stream");
            return Decoded::Skip(strange);
        }
        if buffer.get(digits) != Some(&0) {
            return Decoded::NeedMore;
        }
        // Saturate: a length too large for usize is certainly above MaxLength.
        let length = buffer.iter().take(digits).fold(0usize, |n, d| {
            n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
        });
        Decoded::Length {
            consumed: digits + 1,
            length,
        }
    }
}

#[derive(Clone)]
enum Mode {
    Fixed(usize),
    Prefixed {
        codec: Rc<dyn LengthCodec>,
        max_length: usize,
    },
}

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Fixed(n) => f.debug_tuple("Fixed").field(n).finish(),
            Mode::Prefixed { max_length, .. } => f
                .debug_struct("Prefixed")
                .field("max_length", max_length)
                .finish_non_exhaustive(),
        }
    }
}

/// `POE::Filter::Block`: records are blocks of bytes.
///
/// - Fixed size ([`Block::with_block_size`], `BlockSize => N`): `get_one` returns `N`
///   octets once that many are buffered; `put` returns the **concatenation** of all records
///   as one chunk, without padding or checking sizes.
/// - Length-prefixed ([`Block::new`]): `put` frames each record with the
///   [`LengthCodec`] (by default `"<decimal length>\0"`); `get_one` decodes a header, then
///   waits for that many octets. A header announcing more than `MaxLength` (default
///   64 MiB) fails with [`FilterError::BlockTooLarge`].
///
/// Either way a buffer longer than `MaxBuffer` (default 512 MiB) fails `get_one_start`
/// with [`FilterError::BufferTooLarge`].
///
/// ```
/// use reactor::filter::{Block, Filter};
///
/// let mut block = Block::new();
/// let raw = block.put(vec![b"a".to_vec(), b"bc".to_vec()])?;
/// assert_eq!(raw, vec![b"1\0a".to_vec(), b"2\0bc".to_vec()]);
/// assert_eq!(block.get(raw)?, vec![b"a".to_vec(), b"bc".to_vec()]);
/// # Ok::<(), reactor::filter::FilterError>(())
/// ```
#[derive(Debug)]
pub struct Block {
    buf: ByteBuf,
    mode: Mode,
    expected: Option<usize>,
    max_buffer: usize,
}

impl Default for Block {
    fn default() -> Self {
        Block::new()
    }
}

impl Block {
    /// A length-prefixed block filter with POE's default codec and limits.
    pub fn new() -> Self {
        Block {
            buf: ByteBuf::new(),
            mode: Mode::Prefixed {
                codec: Rc::new(DefaultLengthCodec),
                max_length: DEFAULT_MAX_LENGTH,
            },
            expected: None,
            max_buffer: DEFAULT_MAX_BUFFER,
        }
    }

    /// A fixed-size block filter (`BlockSize => size`).
    pub fn with_block_size(size: usize) -> Result<Self, ConfigError> {
        Block::builder().block_size(size).build()
    }

    /// A builder for the other options.
    pub fn builder() -> BlockBuilder {
        BlockBuilder::default()
    }

    /// The fixed block size, if any.
    pub fn block_size(&self) -> Option<usize> {
        match self.mode {
            Mode::Fixed(n) => Some(n),
            Mode::Prefixed { .. } => None,
        }
    }

    /// The `MaxLength` limit (length-prefixed mode only).
    pub fn max_length(&self) -> Option<usize> {
        match self.mode {
            Mode::Fixed(_) => None,
            Mode::Prefixed { max_length, .. } => Some(max_length),
        }
    }

    /// The `MaxBuffer` limit.
    pub fn max_buffer(&self) -> usize {
        self.max_buffer
    }
}

impl Filter for Block {
    type Raw = Vec<u8>;
    type Record = Vec<u8>;

    fn get_one_start(&mut self, chunks: Vec<Vec<u8>>) -> Result<(), FilterError> {
        self.buf.append(chunks);
        if self.buf.len() > self.max_buffer {
            return Err(FilterError::BufferTooLarge {
                length: self.buf.len(),
                max: self.max_buffer,
            });
        }
        Ok(())
    }

    fn get_one(&mut self) -> Result<Vec<Vec<u8>>, FilterError> {
        let (codec, max_length) = match &self.mode {
            Mode::Fixed(size) => {
                let size = *size;
                if self.buf.len() < size {
                    return Ok(Vec::new());
                }
                return Ok(vec![self.buf.take(size)]);
            }
            Mode::Prefixed { codec, max_length } => (codec, *max_length),
        };
        if self.expected.is_none() {
            let buffered = self.buf.len();
            match codec.decode(self.buf.as_slice()) {
                Decoded::Length { consumed, length } => {
                    if consumed > buffered || (consumed == 0 && length == 0) {
                        return Err(FilterError::InvalidDecode { consumed, buffered });
                    }
                    self.buf.consume(consumed);
                    // As in POE, the size is recorded before it is checked.
                    self.expected = Some(length);
                    if length > max_length {
                        return Err(FilterError::BlockTooLarge {
                            length,
                            max: max_length,
                        });
                    }
                }
                Decoded::Skip(n) => {
                    if n > buffered {
                        return Err(FilterError::InvalidDecode {
                            consumed: n,
                            buffered,
                        });
                    }
                    self.buf.consume(n);
                }
                Decoded::NeedMore => {}
            }
        }
        match self.expected {
            Some(length) if self.buf.len() >= length => {
                self.expected = None;
                Ok(vec![self.buf.take(length)])
            }
            _ => Ok(Vec::new()),
        }
    }

    fn put(&mut self, records: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, FilterError> {
        match &self.mode {
            // POE joins every record into one chunk, even when there are none.
            Mode::Fixed(_) => Ok(vec![records.concat()]),
            Mode::Prefixed { codec, .. } => {
                Ok(records.into_iter().map(|r| codec.encode(r)).collect())
            }
        }
    }

    fn get_pending(&self) -> Option<Vec<Vec<u8>>> {
        self.buf.pending()
    }

    /// Same mode, codec and limits, empty buffer, no block size pending (POE copies a
    /// decoded but unsatisfied block size into the clone).
    fn clone_empty(&self) -> Self {
        Block {
            buf: ByteBuf::new(),
            mode: self.mode.clone(),
            expected: None,
            max_buffer: self.max_buffer,
        }
    }

    fn clone_boxed(&self) -> BoxedFilter<Vec<u8>, Vec<u8>> {
        Box::new(self.clone_empty())
    }

    fn filter_type(&self) -> &'static str {
        "Block"
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

/// Options for [`Block`], named after POE's constructor parameters. Conflicts are
/// reported by [`BlockBuilder::build`].
#[derive(Default)]
pub struct BlockBuilder {
    block_size: Option<usize>,
    codec: Option<Rc<dyn LengthCodec>>,
    max_length: Option<usize>,
    max_buffer: Option<usize>,
}

impl fmt::Debug for BlockBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockBuilder")
            .field("block_size", &self.block_size)
            .field("codec", &self.codec.as_ref().map(|_| ".."))
            .field("max_length", &self.max_length)
            .field("max_buffer", &self.max_buffer)
            .finish()
    }
}

impl BlockBuilder {
    /// `BlockSize => N`: fixed-size blocks (N > 0; excludes `LengthCodec` and
    /// `MaxLength`).
    pub fn block_size(mut self, size: usize) -> Self {
        self.block_size = Some(size);
        self
    }

    /// `LengthCodec => [enc, dec]`: a custom length prefix.
    pub fn length_codec(mut self, codec: impl LengthCodec + 'static) -> Self {
        self.codec = Some(Rc::new(codec));
        self
    }

    super::limit_setters!(
        "`MaxLength => N`: largest block a header may announce (default 64 MiB, > 0).",
        "`MaxBuffer => N`: largest input buffer (default 512 MiB, > 0; in length-prefixed \
         mode at least `MaxLength` plus its decimal digits plus one)."
    );

    /// Validates the options in POE's order and builds the filter.
    pub fn build(self) -> Result<Block, ConfigError> {
        let max_buffer = param_max("MaxBuffer", self.max_buffer, DEFAULT_MAX_BUFFER)?;
        let mode = if let Some(size) = self.block_size {
            if size == 0 {
                return Err(ConfigError::ZeroBlockSize);
            }
            if self.codec.is_some() {
                return Err(ConfigError::BlockSizeWithLengthCodec);
            }
            if self.max_length.is_some() {
                return Err(ConfigError::BlockSizeWithMaxLength);
            }
            Mode::Fixed(size)
        } else {
            let codec = self
                .codec
                .unwrap_or_else(|| Rc::new(DefaultLengthCodec) as Rc<dyn LengthCodec>);
            let max_length = param_max("MaxLength", self.max_length, DEFAULT_MAX_LENGTH)?;
            let digits = max_length.to_string().len();
            if max_buffer < max_length.saturating_add(digits).saturating_add(1) {
                return Err(ConfigError::MaxBufferTooSmall {
                    max_buffer,
                    max_length,
                });
            }
            Mode::Prefixed { codec, max_length }
        };
        Ok(Block {
            buf: ByteBuf::new(),
            mode,
            expected: None,
            max_buffer,
        })
    }
}
