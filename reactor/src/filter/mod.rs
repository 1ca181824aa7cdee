//! Filters: POE's `POE::Filter::*`, pure translation between raw chunks and records.
//!
//! A filter turns a stream of raw *chunks* (usually bytes read from a socket) into
//! *records* (lines, blocks, ...) and records back into chunks. Filters know nothing about
//! sockets, sessions or the kernel; a wheel feeds them what its driver read and hands them
//! what the program wants to write.
//!
//! ```
//! use reactor::filter::{Filter, Line};
//!
//! let mut line = Line::new(); // CR, LF, CRLF or LFCR in; CRLF out
//! assert_eq!(line.get(vec![b"hello\r\nwor".to_vec()])?, vec![b"hello".to_vec()]);
//! assert_eq!(line.get(vec![b"ld\n".to_vec()])?, vec![b"world".to_vec()]);
//! assert_eq!(line.put(vec![b"bye".to_vec()])?, vec![b"bye\r\n".to_vec()]);
//! # Ok::<(), reactor::filter::FilterError>(())
//! ```
//!
//! ## Design
//!
//! One trait, [`Filter`], mirrors POE's interface method for method. Its two associated
//! types name the two sides: [`Filter::Raw`] is what `get_one_start` takes and `put`
//! returns, [`Filter::Record`] is what `get_one` returns and `put` takes. The byte filters
//! ([`Line`], [`Stream`], [`Block`]) have `Raw = Record = Vec<u8>`; [`Grep`] and [`Map`]
//! work on any record type; [`RecordBlock`] groups `T`s into `Vec<T>`s.
//!
//! The trait is dyn-compatible, so a wheel can hold any byte filter as a [`ByteFilter`]
//! (`Box<dyn Filter<Raw = Vec<u8>, Record = Vec<u8>>>`) and swap it at run time: the
//! buffered input of the old filter comes out of [`Filter::get_pending`] and goes into the
//! new one's [`Filter::get_one_start`]. POE's `clone()` is [`Filter::clone_empty`] (typed)
//! and [`Filter::clone_boxed`] (through a trait object). Boxed filters are filters too.
//! A [`ReadWrite`](crate::wheel::ReadWrite) wheel keeps the two common ones, [`Line`] and
//! [`Stream`], inside itself rather than boxed (no allocation of their own, no dynamic
//! call per record) and boxes any other; its `input_filter` and `output_filter` show
//! either kind through the trait.
//!
//! Stacking comes in two forms. [`Stackable`] is POE's `POE::Filter::Stackable`: a
//! run-time list of same-typed filters (`Raw = Record = T`) with `push`, `pop`, `shift` and
//! `unshift`. [`Chain`] stacks two filters of *different* types (e.g. [`Line`] under a
//! [`RecordBlock`]) with the same strobing algorithm; chains nest.
//!
//! Failures are typed: [`ConfigError`] from constructors and builders (POE's `croak`s),
//! [`FilterError`] from `get_one_start`/`get_one`/`put` (POE's `die`s, which a wheel turns
//! into a `DIE` signal). No filter panics on any input.
//!
//! `get_one` returns a `Vec` of records, as POE's arrayref: empty means "need more data",
//! and most filters return at most one record per call ([`Map`] may return several, or
//! none before its buffer is empty, which ends a [`Filter::get`] loop early, as in POE).
//!
//! ## Deviations from POE
//!
//! - Options that Perl validates at run time but Rust's types rule out (odd argument lists,
//!   non-code `Code`, negative or non-numeric sizes, Line's stray `Regexp` parameter) have
//!   no counterpart; zero sizes are still [`ConfigError`]s.
//! - [`LineBuilder::input_regexp`] takes a compiled [`LineMatcher`] (any
//!   `Fn(&[u8]) -> Option<Range<usize>>`), POE's `InputRegexp => qr/.../`; a pattern
//!   *string* (`LineBuilder::input_regexp_pattern`) is compiled with the `regex` crate,
//!   and an invalid one fails with [`ConfigError::RegexpUnsupported`].
//!   A matcher that reports an empty or out-of-range match fails with
//!   [`FilterError::InvalidMatch`] (POE loops forever on an empty match).
//! - [`Block`]'s length codec is a [`LengthCodec`] that returns the framed block and
//!   inspects (rather than edits) the buffer. `clone_empty` forgets a block size already
//!   decoded (POE's `clone` copies it into the empty clone, which then frames garbage).
//! - [`Stackable::get_pending`] returns `None` rather than `[]` when the last filter holds
//!   nothing, and does not push each filter's pending data through the next filter's `put`
//!   (POE does and throws the result away; only side effects of `put` could tell).
//! - An empty [`Stackable`] fails `get_one_start` with [`FilterError::EmptyStack`] (POE
//!   dies calling a method on `undef`).

mod block;
mod buf;
mod chain;
mod coded;
mod grep;
mod line;
mod map;
mod record_block;
mod stackable;
mod stream;

pub use block::{Block, BlockBuilder, Decoded, DefaultLengthCodec, LengthCodec};
pub use chain::Chain;
pub use grep::Grep;
pub use line::{Line, LineBuilder, LineMatcher};
pub use map::Map;
pub use record_block::RecordBlock;
pub use stackable::Stackable;
pub use stream::Stream;

use std::fmt;

/// Default `MaxLength` of [`Line`] and [`Block`]: 64 MiB.
pub const DEFAULT_MAX_LENGTH: usize = 64 * 1024 * 1024;

/// Default `MaxBuffer` of [`Line`] and [`Block`]: 512 MiB.
pub const DEFAULT_MAX_BUFFER: usize = 512 * 1024 * 1024;

/// A filter behind a trait object, as a wheel holds it.
pub type BoxedFilter<R, S> = Box<dyn Filter<Raw = R, Record = S>>;

/// A boxed bytes-in, bytes-out filter ([`Line`], [`Stream`], [`Block`], byte [`Map`]s and
/// [`Grep`]s, [`Stackable`]s of those): what a `ReadWrite` wheel holds when the filter is
/// neither a [`Line`] nor a [`Stream`] (those it keeps inline).
pub type ByteFilter = BoxedFilter<Vec<u8>, Vec<u8>>;

/// POE's filter interface (`POE::Filter`).
///
/// The contract, checked for every filter by the conformance tests (POE's
/// `TestFilter::test_filter_standard`):
/// - [`get_one_start`](Filter::get_one_start) only buffers; it parses nothing (it may
///   fail a size limit);
/// - [`get_one`](Filter::get_one) returns the next record(s), or nothing when more input
///   is needed; callers loop until it returns an empty `Vec`;
/// - [`get`](Filter::get) is `get_one_start` plus that loop;
/// - [`put`](Filter::put) serializes records into raw chunks;
/// - [`get_pending`](Filter::get_pending) shows the unparsed input in raw form (`None`
///   when there is none) without consuming it;
/// - [`clone_empty`](Filter::clone_empty) makes a filter with the same configuration and
///   empty buffers;
/// - the calls wheels make, [`get_one_start_chunk`](Filter::get_one_start_chunk),
///   [`get_one_with`](Filter::get_one_with) and [`put_one_with`](Filter::put_one_with),
///   give the same records and bytes as `get_one_start`, `get_one` and `put` (their
///   provided versions are built on those; filters override them only to skip lists).
pub trait Filter {
    /// The raw side: what [`get_one_start`](Filter::get_one_start) takes and
    /// [`put`](Filter::put) returns (bytes for stream filters).
    type Raw;
    /// The cooked side: what [`get_one`](Filter::get_one) returns and
    /// [`put`](Filter::put) takes.
    type Record;

    /// Appends raw chunks to the input buffer without parsing them (POE's
    /// `get_one_start(\@chunks)`).
    ///
    /// Fails with [`FilterError::BufferTooLarge`] when the buffer now exceeds a `MaxBuffer`
    /// limit; as in POE the chunks have been appended all the same.
    fn get_one_start(&mut self, chunks: Vec<Self::Raw>) -> Result<(), FilterError>;

    /// Parses the next record out of the buffer (POE's `get_one()`).
    ///
    /// An empty `Vec` means no complete record is buffered. Filters return at most one
    /// record per call except [`Map`], whose `Get` code may produce any number.
    fn get_one(&mut self) -> Result<Vec<Self::Record>, FilterError>;

    /// Buffers `chunks` and returns every record [`get_one`](Filter::get_one) yields until
    /// it first returns nothing (POE's `get(\@chunks)`).
    fn get(&mut self, chunks: Vec<Self::Raw>) -> Result<Vec<Self::Record>, FilterError> {
        self.get_one_start(chunks)?;
        let mut records = Vec::new();
        loop {
            let next = self.get_one()?;
            if next.is_empty() {
                return Ok(records);
            }
            records.extend(next);
        }
    }

    /// Serializes records into raw chunks (POE's `put(\@records)`).
    fn put(&mut self, records: Vec<Self::Record>) -> Result<Vec<Self::Raw>, FilterError>;

    /// Buffers one raw chunk: [`get_one_start`](Filter::get_one_start) of a one-chunk list,
    /// without building the list. Wheels call it after every read; filters that can take
    /// the chunk over directly do so.
    fn get_one_start_chunk(&mut self, chunk: Self::Raw) -> Result<(), FilterError> {
        self.get_one_start(vec![chunk])
    }

    /// [`get_one`](Filter::get_one), handing each record to `sink` instead of returning
    /// them in a new `Vec`; returns how many it handed over (0: more input is needed).
    /// Wheels call it, so parsing a record allocates no list.
    fn get_one_with(&mut self, sink: &mut dyn FnMut(Self::Record)) -> Result<usize, FilterError> {
        let records = self.get_one()?;
        let n = records.len();
        records.into_iter().for_each(sink);
        Ok(n)
    }

    /// [`put`](Filter::put) of one record, handing each raw chunk to `sink` instead of
    /// returning them in a new `Vec`. Wheels call it for `put_one`.
    fn put_one_with(
        &mut self,
        record: Self::Record,
        sink: &mut dyn FnMut(Self::Raw),
    ) -> Result<(), FilterError> {
        for chunk in self.put(vec![record])? {
            sink(chunk);
        }
        Ok(())
    }

    /// The buffered, unparsed input in raw form, or `None` when there is none (POE's
    /// `get_pending()`). The buffer is left as it is.
    fn get_pending(&self) -> Option<Vec<Self::Raw>>;

    /// Whether [`get_one`](Filter::get_one) might give a record without more input: `false`
    /// promises it would give none (the buffer is empty). Wheels use it to skip a parse
    /// that would find nothing; the provided answer, `true`, is always safe.
    fn may_have_record(&self) -> bool {
        true
    }

    /// A filter with the same configuration and empty buffers (POE's `clone()`).
    fn clone_empty(&self) -> Self
    where
        Self: Sized;

    /// [`clone_empty`](Filter::clone_empty), boxed: POE's `clone()` through a trait object.
    fn clone_boxed(&self) -> BoxedFilter<Self::Raw, Self::Record>;

    /// A short name of the filter's type (`"Line"`, `"Map"`, ...): POE's `ref($filter)`,
    /// as `Stackable::filter_types` reports it.
    fn filter_type(&self) -> &'static str {
        std::any::type_name::<Self>()
    }

    /// The filter as [`Any`](std::any::Any), so that code holding it as a trait object
    /// (a wheel's [`input_filter_mut`](crate::wheel::ReadWrite::input_filter_mut)) can
    /// reach its own methods, such as [`Grep::modify_get`]: see
    /// [`downcast_mut`](trait.Filter.html#method.downcast_mut). Every filter of this crate
    /// answers; the provided answer, `None`, suits a filter that offers nothing more.
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }
}

impl<'a, R: 'static, S: 'static> dyn Filter<Raw = R, Record = S> + 'a {
    /// The filter as its concrete type `F`, if it is one (POE code calls a filter's own
    /// methods on what `input_filter` returns).
    pub fn downcast_mut<F: 'static>(&mut self) -> Option<&mut F> {
        self.as_any_mut()?.downcast_mut::<F>()
    }
}

impl<R, S> Filter for BoxedFilter<R, S> {
    type Raw = R;
    type Record = S;

    fn get_one_start(&mut self, chunks: Vec<R>) -> Result<(), FilterError> {
        (**self).get_one_start(chunks)
    }

    fn get_one(&mut self) -> Result<Vec<S>, FilterError> {
        (**self).get_one()
    }

    fn get(&mut self, chunks: Vec<R>) -> Result<Vec<S>, FilterError> {
        (**self).get(chunks)
    }

    fn put(&mut self, records: Vec<S>) -> Result<Vec<R>, FilterError> {
        (**self).put(records)
    }

    fn get_one_start_chunk(&mut self, chunk: R) -> Result<(), FilterError> {
        (**self).get_one_start_chunk(chunk)
    }

    fn get_one_with(&mut self, sink: &mut dyn FnMut(S)) -> Result<usize, FilterError> {
        (**self).get_one_with(sink)
    }

    fn put_one_with(&mut self, record: S, sink: &mut dyn FnMut(R)) -> Result<(), FilterError> {
        (**self).put_one_with(record, sink)
    }

    fn get_pending(&self) -> Option<Vec<R>> {
        (**self).get_pending()
    }

    fn may_have_record(&self) -> bool {
        (**self).may_have_record()
    }

    fn clone_empty(&self) -> Self {
        (**self).clone_boxed()
    }

    fn clone_boxed(&self) -> BoxedFilter<R, S> {
        (**self).clone_boxed()
    }

    fn filter_type(&self) -> &'static str {
        (**self).filter_type()
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        (**self).as_any_mut()
    }
}

/// A filter failed while parsing or serializing: POE's `die` inside a filter.
#[derive(Debug)]
#[non_exhaustive]
pub enum FilterError {
    /// A complete line is longer than `MaxLength` ("Next line exceeds maximum line
    /// length"). The line has been consumed; parsing can go on with the next one.
    LineTooLong {
        /// Length of the offending line, in octets, terminator excluded.
        length: usize,
        /// The `MaxLength` limit.
        max: usize,
    },
    /// The input buffer grew past `MaxBuffer` ("Framing buffer exceeds the limit"). The
    /// data stays buffered, so every later `get_one_start` fails too, as in POE.
    BufferTooLarge {
        /// Octets buffered.
        length: usize,
        /// The `MaxBuffer` limit.
        max: usize,
    },
    /// A block header announces more than `MaxLength` octets ("Expected size of next block
    /// exceeds the limit"). As in POE, the announced size stays in effect.
    BlockTooLarge {
        /// The announced size.
        length: usize,
        /// The `MaxLength` limit.
        max: usize,
    },
    /// `get_one_start` on a [`Stackable`] that holds no filter.
    EmptyStack,
    /// A [`LineMatcher`] reported an empty match or a range outside the buffer.
    InvalidMatch {
        /// Reported start of the terminator.
        start: usize,
        /// Reported end of the terminator.
        end: usize,
        /// Octets buffered when it was reported.
        buffered: usize,
    },
    /// A [`LengthCodec`] consumed more than the buffer holds, or announced an empty block
    /// without consuming anything (which would yield empty blocks forever).
    InvalidDecode {
        /// Octets the codec said to consume.
        consumed: usize,
        /// Octets buffered when it said so.
        buffered: usize,
    },
    /// Any other failure, e.g. from a user-written filter.
    Custom(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::LineTooLong { length, max } => write!(
                f,
                "Next line exceeds maximum line length ({length} > {max} octets)"
            ),
            FilterError::BufferTooLarge { length, max } => write!(
                f,
                "Framing buffer exceeds the limit ({length} > {max} octets)"
            ),
            FilterError::BlockTooLarge { length, max } => write!(
                f,
                "Expected size of next block exceeds the limit ({length} > {max} octets)"
            ),
            FilterError::EmptyStack => write!(f, "filter stack is empty"),
            FilterError::InvalidMatch {
                start,
                end,
                buffered,
            } => write!(
                f,
                "line matcher returned an empty or out-of-range terminator {start}..{end} \
                 in a buffer of {buffered} octets"
            ),
            FilterError::InvalidDecode { consumed, buffered } => write!(
                f,
                "length decoder consumed {consumed} octets of a buffer of {buffered} \
                 without making progress"
            ),
            FilterError::Custom(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FilterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FilterError::Custom(e) => Some(&**e),
            _ => None,
        }
    }
}

/// A filter was configured wrongly: POE's `croak` from a filter constructor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// [`Line`]: `Literal` is empty ("A defined Literal must have a nonzero length").
    EmptyLiteral,
    /// [`Line`]: `Literal` combined with `InputLiteral`, `InputRegexp` or `OutputLiteral`
    /// ("cannot have Literal with any other parameter").
    LiteralWithOther,
    /// [`Line`]: both `InputLiteral` and `InputRegexp` ("cannot have both InputLiteral and
    /// InputRegexp").
    InputLiteralAndRegexp,
    /// [`Line`]: an `InputRegexp` pattern string that does not compile.
    RegexpUnsupported {
        /// The pattern that was given.
        pattern: String,
    },
    /// A size limit is zero ("MaxLength must greater then 0").
    ZeroLimit {
        /// The parameter: `"MaxLength"` or `"MaxBuffer"`.
        name: &'static str,
    },
    /// `MaxBuffer` cannot hold a `MaxLength` record ("MaxBuffer is not large enough for
    /// MaxLength blocks").
    MaxBufferTooSmall {
        /// The `MaxBuffer` given or defaulted.
        max_buffer: usize,
        /// The `MaxLength` given or defaulted.
        max_length: usize,
    },
    /// [`Block`] or [`RecordBlock`]: `BlockSize` is zero.
    ZeroBlockSize,
    /// [`Block`]: `BlockSize` with `LengthCodec` ("Can't use both LengthCodec and
    /// BlockSize at the same time").
    BlockSizeWithLengthCodec,
    /// [`Block`]: `BlockSize` with `MaxLength` ("Can't use both MaxLength and BlockSize at
    /// the same time").
    BlockSizeWithMaxLength,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::EmptyLiteral => write!(f, "A defined Literal must have a nonzero length"),
            ConfigError::LiteralWithOther => {
                write!(
                    f,
                    "Line filter cannot have Literal with any other parameter"
                )
            }
            ConfigError::InputLiteralAndRegexp => {
                write!(
                    f,
                    "Line filter cannot have both InputLiteral and InputRegexp"
                )
            }
            ConfigError::RegexpUnsupported { pattern } => {
                write!(f, "InputRegexp pattern does not compile: {pattern:?}")
            }
            ConfigError::ZeroLimit { name } => write!(f, "{name} must be greater than 0"),
            ConfigError::MaxBufferTooSmall {
                max_buffer,
                max_length,
            } => write!(
                f,
                "MaxBuffer is not large enough for MaxLength blocks \
                 (MaxBuffer {max_buffer}, MaxLength {max_length})"
            ),
            ConfigError::ZeroBlockSize => write!(f, "BlockSize must be greater than 0"),
            ConfigError::BlockSizeWithLengthCodec => {
                write!(
                    f,
                    "Can't use both LengthCodec and BlockSize at the same time"
                )
            }
            ConfigError::BlockSizeWithMaxLength => {
                write!(f, "Can't use both MaxLength and BlockSize at the same time")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The `MaxLength` and `MaxBuffer` setters of a byte filter's builder (one that has
/// `max_length` and `max_buffer` fields), with their documentation.
macro_rules! limit_setters {
    ($length_doc:literal, $buffer_doc:literal) => {
        #[doc = $length_doc]
        pub fn max_length(mut self, n: usize) -> Self {
            self.max_length = Some(n);
            self
        }

        #[doc = $buffer_doc]
        pub fn max_buffer(mut self, n: usize) -> Self {
            self.max_buffer = Some(n);
            self
        }
    };
}
use limit_setters;

/// Validates an optional size limit: POE's `__param_max` (digits, greater than zero).
fn param_max(
    name: &'static str,
    value: Option<usize>,
    default: usize,
) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Err(ConfigError::ZeroLimit { name }),
        Some(n) => Ok(n),
    }
}
