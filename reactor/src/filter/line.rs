//! `POE::Filter::Line`: records are lines, split at a newline that is configurable,
//! detected, or any of CR, LF, CRLF and LFCR.

use super::buf::ByteBuf;
use super::{
    param_max, BoxedFilter, ConfigError, Filter, FilterError, DEFAULT_MAX_BUFFER,
    DEFAULT_MAX_LENGTH,
};
use std::fmt;
use std::ops::Range;
use std::rc::Rc;

const CR: u8 = 0x0D;
const LF: u8 = 0x0A;

/// The other half of a two-character network newline.
fn complement(c: u8) -> u8 {
    if c == CR {
        LF
    } else {
        CR
    }
}

/// Finds line terminators for [`LineBuilder::input_regexp`]: POE's compiled
/// `InputRegexp => qr/.../`.
///
/// `find` returns the range of the leftmost terminator in `haystack`, as Perl's
/// `s/^(.*?)$regexp//s` would remove it: the line is everything before the range. The
/// range must be non-empty and inside `haystack`, or parsing fails with
/// [`FilterError::InvalidMatch`].
///
/// Closures `Fn(&[u8]) -> Option<Range<usize>>` are matchers, so any engine plugs in
/// (`|h: &[u8]| re.find(h).map(|m| m.range())` with `regex::bytes::Regex`); the `regex`
/// feature adds `LineBuilder::input_regexp_pattern`, which compiles a pattern string.
pub trait LineMatcher {
    /// The range of the first terminator in `haystack`, if any.
    fn find(&self, haystack: &[u8]) -> Option<Range<usize>>;
}

impl<F> LineMatcher for F
where
    F: Fn(&[u8]) -> Option<Range<usize>>,
{
    fn find(&self, haystack: &[u8]) -> Option<Range<usize>> {
        self(haystack)
    }
}

/// How input lines end.
#[derive(Clone)]
enum Input {
    /// POE's default `(\x0D\x0A?|\x0A\x0D?)`: CR, CRLF, LF or LFCR.
    Default,
    /// One literal terminator (`Literal`, `InputLiteral`, or an autodetected newline).
    Literal(Vec<u8>),
    /// A user-supplied matcher (`InputRegexp`).
    Matcher(Rc<dyn LineMatcher>),
    /// Autodetection, waiting for the first newline.
    AutoFirst,
    /// Autodetection: the first newline was a lone CR or LF at the very end of the buffer;
    /// the next byte decides whether it was half of a two-character newline.
    AutoSecond(u8),
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Default => f.write_str("Default"),
            Input::Literal(l) => f.debug_tuple("Literal").field(l).finish(),
            Input::Matcher(_) => f.write_str("Matcher(..)"),
            Input::AutoFirst => f.write_str("AutoFirst"),
            Input::AutoSecond(c) => f.debug_tuple("AutoSecond").field(c).finish(),
        }
    }
}

/// POE's default output newline.
const CRLF: &[u8] = b"\r\n";

/// A limit as a filter keeps it: in 32 bits, larger ones taken as 4 GiB.
fn limit32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `POE::Filter::Line`: splits input into lines and appends a newline to output lines.
///
/// - [`Line::new`]: any of CR, CRLF, LF or LFCR ends an input line; output lines end with
///   CRLF. A CRLF split between two reads yields an extra empty line, as in POE.
/// - `Literal`: one literal newline in both directions ([`LineBuilder::literal`]).
/// - `InputLiteral`, `InputRegexp`, `OutputLiteral`: each direction separately.
/// - Autodetection ([`LineBuilder::autodetect`], POE's `InputLiteral => undef`): the
///   first newline seen (CR, CRLF, LF or LFCR) becomes the only input newline. A lone CR
///   or LF at the very end of the buffer is returned as a newline at once, and the next
///   byte read completes it if it is the complementary character.
///
/// Lines are returned without their terminator; a trailing partial line stays buffered
/// (it is never flushed at end of input). `put` appends the output newline to each record
/// and translates nothing else.
///
/// Limits: a complete line longer than `MaxLength` (default 64 MiB) fails `get_one` with
/// [`FilterError::LineTooLong`]; a buffer longer than `MaxBuffer` (default 512 MiB)
/// fails `get_one_start` with [`FilterError::BufferTooLarge`].
///
/// A filter in POE's default newline mode is 48 bytes with no allocation of its own
/// while its buffer is empty, small enough to live inside a `ReadWrite` wheel.
#[derive(Debug)]
pub struct Line {
    /// The input, and where the next terminator search may start
    /// ([`ByteBuf::scan_from`]: bytes before it are known not to begin a terminator;
    /// reset whenever a line is consumed).
    buf: ByteBuf,
    /// `MaxLength` and `MaxBuffer`, in 32 bits (limits past 4 GiB are taken as 4 GiB):
    /// a connection's filter is small.
    max_length: u32,
    max_buffer: u32,
    /// The newlines when they are not POE's default (any of CR, LF, CRLF, LFCR in, CRLF
    /// out): most filters are in the default mode and keep one word here.
    newlines: Option<Box<Newlines>>,
}

/// A [`Line`]'s newlines other than POE's default.
#[derive(Debug, Clone)]
struct Newlines {
    input: Input,
    /// The output newline; `None`: CRLF, POE's default.
    output: Option<Box<[u8]>>,
}

/// A search offset as [`ByteBuf::scan_from`] keeps it: offsets past 4 GiB are taken as
/// `u32::MAX`, which only makes the next search start earlier.
fn offset32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Default for Line {
    fn default() -> Self {
        Line::new()
    }
}

impl Line {
    /// A line filter in POE's default mode: CR, CRLF, LF or LFCR in, CRLF out.
    pub fn new() -> Self {
        Line {
            buf: ByteBuf::new(),
            max_length: limit32(DEFAULT_MAX_LENGTH),
            max_buffer: limit32(DEFAULT_MAX_BUFFER),
            newlines: None,
        }
    }

    /// A line filter with one literal newline both ways (`Literal => STR`).
    pub fn with_literal(literal: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        Line::builder().literal(literal).build()
    }

    /// A builder for the other options.
    pub fn builder() -> LineBuilder {
        LineBuilder::default()
    }

    /// The newline appended to output records.
    pub fn output_literal(&self) -> &[u8] {
        self.newlines
            .as_ref()
            .and_then(|n| n.output.as_deref())
            .unwrap_or(CRLF)
    }

    /// The input newline, when it is a literal (given or autodetected).
    pub fn input_literal(&self) -> Option<&[u8]> {
        match self.newlines.as_deref() {
            Some(Newlines {
                input: Input::Literal(l),
                ..
            }) => Some(l),
            _ => None,
        }
    }

    /// The `MaxLength` limit.
    pub fn max_length(&self) -> usize {
        self.max_length as usize
    }

    /// The `MaxBuffer` limit.
    pub fn max_buffer(&self) -> usize {
        self.max_buffer as usize
    }

    /// `MaxBuffer`: the buffer may not grow past it (the chunks stay appended, as in POE).
    fn check_buffer(&self) -> Result<(), FilterError> {
        if self.buf.len() > self.max_buffer as usize {
            return Err(FilterError::BufferTooLarge {
                length: self.buf.len(),
                max: self.max_buffer as usize,
            });
        }
        Ok(())
    }

    /// [`Filter::get_one_with`] with the sink's type known: a wheel that holds the filter
    /// itself hands its record over with a direct call.
    #[inline]
    pub(crate) fn get_one_into(
        &mut self,
        mut sink: impl FnMut(Vec<u8>),
    ) -> Result<usize, FilterError> {
        Ok(match self.next_line()? {
            Some(line) => {
                sink(line);
                1
            }
            None => 0,
        })
    }

    /// `get_one_start` with `bytes` then one `get_one`, for bytes just read while nothing
    /// is buffered, in POE's default newline mode or with a literal newline: the bytes
    /// are searched where they lie, the first line is copied out into a buffer that
    /// `alloc` gives (it is called with the line's length), and only what follows the
    /// line is buffered. The outcome is the same as going through the buffer (`MaxLength`
    /// refuses the line and keeps what follows it).
    ///
    /// `None` when the filter cannot take this way (bytes buffered, another newline mode,
    /// or more bytes than `MaxBuffer`): nothing was done, and the bytes go the usual way.
    #[inline]
    pub(crate) fn first_line_of(
        &mut self,
        bytes: &[u8],
        alloc: impl FnOnce(usize) -> Vec<u8>,
    ) -> Option<Result<Option<Vec<u8>>, FilterError>> {
        if !self.buf.is_empty() || bytes.len() > self.max_buffer as usize {
            return None;
        }
        let found = match self.newlines.as_deref() {
            None => search::cr_or_lf(bytes).map(|i| (i, default_term_len(bytes, i))),
            Some(Newlines {
                input: Input::Literal(lit),
                ..
            }) => match match lit[..] {
                // A one-byte newline ("\n"): one search, here.
                [byte] => search::byte(byte, bytes),
                _ => find_literal(bytes, lit, 0),
            } {
                Some(i) => Some((i, lit.len())),
                None => {
                    // As `next_line` waits: a split literal may end in the last bytes.
                    self.buf.append_one(bytes.to_vec());
                    self.buf.scan_from = offset32(literal_wait(bytes.len(), lit));
                    return Some(Ok(None));
                }
            },
            Some(_) => return None,
        };
        let Some((end, term)) = found else {
            self.buf.append_one(bytes.to_vec());
            self.buf.scan_from = offset32(bytes.len());
            return Some(Ok(None));
        };
        let (line, after) = bytes.split_at_checked(end).unwrap_or((bytes, &[]));
        if after.len() > term {
            // More after the line: kept for the next parse.
            self.buf
                .append_one(after.get(term..).unwrap_or(&[]).to_vec());
            self.buf.scan_from = 0;
        }
        if line.len() > self.max_length as usize {
            return Some(Err(FilterError::LineTooLong {
                length: line.len(),
                max: self.max_length as usize,
            }));
        }
        let mut record = alloc(line.len());
        record.extend_from_slice(line);
        Some(Ok(Some(record)))
    }

    /// The next line, terminator removed; `None` when no whole line is buffered.
    pub(crate) fn next_line(&mut self) -> Result<Option<Vec<u8>>, FilterError> {
        if self.buf.is_empty() {
            // The usual second look, after the one line a read brought.
            return Ok(None);
        }
        loop {
            let hay = self.buf.as_slice();
            let scan_from = self.buf.scan_from as usize;
            let Some(newlines) = self.newlines.as_deref_mut() else {
                // POE's default: CR, CRLF, LF or LFCR.
                return match find_newline(hay, scan_from) {
                    None => {
                        self.buf.scan_from = offset32(hay.len());
                        Ok(None)
                    }
                    Some(i) => self.emit(i, default_term_len(hay, i)),
                };
            };
            let step = match &newlines.input {
                Input::Default => match find_newline(hay, scan_from) {
                    None => Step::Wait(hay.len()),
                    Some(i) => Step::Emit {
                        end: i,
                        term: default_term_len(hay, i),
                    },
                },
                Input::Literal(lit) => match find_literal(hay, lit, scan_from) {
                    None => Step::Wait(literal_wait(hay.len(), lit)),
                    Some(i) => Step::Emit {
                        end: i,
                        term: lit.len(),
                    },
                },
                Input::Matcher(m) => match m.find(hay) {
                    None => Step::Wait(0),
                    Some(r) => {
                        if r.start >= r.end || r.end > hay.len() {
                            return Err(FilterError::InvalidMatch {
                                start: r.start,
                                end: r.end,
                                buffered: hay.len(),
                            });
                        }
                        Step::Emit {
                            end: r.start,
                            term: r.end - r.start,
                        }
                    }
                },
                Input::AutoFirst => match find_newline(hay, scan_from) {
                    None => Step::Wait(hay.len()),
                    Some(i) => {
                        let c = hay.get(i).copied().unwrap_or(CR);
                        let comp = complement(c);
                        let two = hay.get(i + 1) == Some(&comp);
                        let term = if two { 2 } else { 1 };
                        // Complete if two characters long or more data follows; a lone
                        // character at the very end is "suspicious".
                        newlines.input = if two {
                            Input::Literal(vec![c, comp])
                        } else if hay.len() > i + term {
                            Input::Literal(vec![c])
                        } else {
                            Input::AutoSecond(c)
                        };
                        Step::Emit { end: i, term }
                    }
                },
                Input::AutoSecond(c) => {
                    let c = *c;
                    let Some(&first) = hay.first() else {
                        return Ok(None);
                    };
                    if first == complement(c) {
                        self.buf.consume(1);
                        newlines.input = Input::Literal(vec![c, first]);
                    } else {
                        newlines.input = Input::Literal(vec![c]);
                    }
                    self.buf.scan_from = 0;
                    Step::Again
                }
            };
            match step {
                Step::Emit { end, term } => return self.emit(end, term),
                Step::Wait(from) => {
                    self.buf.scan_from = offset32(from);
                    return Ok(None);
                }
                Step::Again => continue,
            }
        }
    }

    /// `line` with the output newline after it: what `put_one_with` gives its sink.
    #[inline]
    pub(crate) fn terminated(&self, mut line: Vec<u8>) -> Vec<u8> {
        match self.newlines.as_deref().and_then(|n| n.output.as_deref()) {
            // POE's CRLF: two bytes of known length, no copy loop.
            None => line.extend_from_slice(CRLF),
            Some(newline) => push_newline(&mut line, newline),
        }
        line
    }

    /// Takes the line ending at `end` and drops the `term_len` terminator bytes after it.
    #[inline]
    fn emit(&mut self, end: usize, term_len: usize) -> Result<Option<Vec<u8>>, FilterError> {
        let line = self.buf.take_skip(end, term_len);
        self.buf.scan_from = 0;
        if line.len() > self.max_length as usize {
            return Err(FilterError::LineTooLong {
                length: line.len(),
                max: self.max_length as usize,
            });
        }
        Ok(Some(line))
    }
}

/// Appends a literal output newline: one byte (a literal `"\n"`) is pushed, with no
/// call to copy it.
#[inline]
fn push_newline(line: &mut Vec<u8>, newline: &[u8]) {
    match newline {
        [byte] => line.push(*byte),
        _ => line.extend_from_slice(newline),
    }
}

/// The length of the default-mode terminator that begins at `i` (a CR or LF): 2 when the
/// complementary character follows it (CRLF, LFCR), else 1.
#[inline]
fn default_term_len(hay: &[u8], i: usize) -> usize {
    let c = hay.get(i).copied().unwrap_or(CR);
    if hay.get(i + 1) == Some(&complement(c)) {
        2
    } else {
        1
    }
}

/// Where the next search for literal newline `lit` starts in `len` buffered bytes that
/// hold none: its first bytes may be the last ones buffered.
#[inline]
fn literal_wait(len: usize, lit: &[u8]) -> usize {
    len.saturating_sub(lit.len().saturating_sub(1))
}

/// Offset of the first CR or LF at or after `from`.
fn find_newline(hay: &[u8], from: usize) -> Option<usize> {
    search::cr_or_lf(hay.get(from..)?).map(|i| i + from)
}

/// The searches for the usual newlines, with memchr's AVX2 searchers built once where the
/// CPU has AVX2: `memchr::memchr2` and `memchr::memchr` pick their routine through a
/// function pointer and broadcast the needles again at every call, which for a line of
/// a few dozen bytes is a good part of the search.
mod search {
    use super::{CR, LF};

    #[cfg(target_arch = "x86_64")]
    use memchr::arch::x86_64::avx2::memchr::{One, Two};
    #[cfg(target_arch = "x86_64")]
    use std::sync::OnceLock;

    /// Offset of the first CR or LF in `hay`.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub(super) fn cr_or_lf(hay: &[u8]) -> Option<usize> {
        static SEARCHER: OnceLock<Option<Two>> = OnceLock::new();
        match SEARCHER.get_or_init(|| Two::new(CR, LF)) {
            Some(two) => two.find(hay),
            None => memchr::memchr2(CR, LF, hay),
        }
    }

    /// Offset of the first `byte` in `hay`: an LF (a `"\n"` literal newline) with a
    /// searcher built once.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub(super) fn byte(byte: u8, hay: &[u8]) -> Option<usize> {
        static SEARCHER: OnceLock<Option<One>> = OnceLock::new();
        match SEARCHER.get_or_init(|| One::new(LF)) {
            Some(one) if byte == LF => one.find(hay),
            _ => memchr::memchr(byte, hay),
        }
    }

    /// Offset of the first CR or LF in `hay`.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    pub(super) fn cr_or_lf(hay: &[u8]) -> Option<usize> {
        memchr::memchr2(CR, LF, hay)
    }

    /// Offset of the first `byte` in `hay`.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    pub(super) fn byte(byte: u8, hay: &[u8]) -> Option<usize> {
        memchr::memchr(byte, hay)
    }
}

/// Offset of the first `needle` in `hay` at or after `from` (`needle` is non-empty).
fn find_literal(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    if rest.is_empty() {
        // A one-byte newline ("\n"): one search.
        return search::byte(first, hay.get(from..)?).map(|i| i + from);
    }
    let mut at = from;
    loop {
        let i = at + memchr::memchr(first, hay.get(at..)?)?;
        let after = i + 1;
        match hay.get(after..after + rest.len()) {
            Some(tail) if tail == rest => return Some(i),
            Some(_) => at = i + 1,
            None => return None,
        }
    }
}

/// What `get_one` decided after looking at the buffer.
enum Step {
    /// A line ends at `end`, followed by a terminator of `term` bytes.
    Emit { end: usize, term: usize },
    /// No terminator yet; later searches may start at this offset.
    Wait(usize),
    /// Autodetection moved on; look again.
    Again,
}

impl Filter for Line {
    type Raw = Vec<u8>;
    type Record = Vec<u8>;

    fn get_one_start(&mut self, chunks: Vec<Vec<u8>>) -> Result<(), FilterError> {
        self.buf.append(chunks);
        self.check_buffer()
    }

    fn get_one(&mut self) -> Result<Vec<Vec<u8>>, FilterError> {
        Ok(self.next_line()?.into_iter().collect())
    }

    fn get_one_start_chunk(&mut self, chunk: Vec<u8>) -> Result<(), FilterError> {
        self.buf.append_one(chunk);
        self.check_buffer()
    }

    fn get_one_with(&mut self, sink: &mut dyn FnMut(Vec<u8>)) -> Result<usize, FilterError> {
        self.get_one_into(sink)
    }

    fn put_one_with(
        &mut self,
        line: Vec<u8>,
        sink: &mut dyn FnMut(Vec<u8>),
    ) -> Result<(), FilterError> {
        sink(self.terminated(line));
        Ok(())
    }

    fn put(&mut self, records: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, FilterError> {
        Ok(records.into_iter().map(|l| self.terminated(l)).collect())
    }

    fn get_pending(&self) -> Option<Vec<Vec<u8>>> {
        self.buf.pending()
    }

    fn may_have_record(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Same newline settings and limits, empty buffer. As in POE, the autodetection state
    /// (including a newline already detected) is copied too.
    fn clone_empty(&self) -> Self {
        Line {
            buf: ByteBuf::new(),
            max_length: self.max_length,
            max_buffer: self.max_buffer,
            newlines: self.newlines.clone(),
        }
    }

    fn clone_boxed(&self) -> BoxedFilter<Vec<u8>, Vec<u8>> {
        Box::new(self.clone_empty())
    }

    fn filter_type(&self) -> &'static str {
        "Line"
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

/// An `InputRegexp`, compiled or not.
enum Regexp {
    Matcher(Rc<dyn LineMatcher>),
    #[cfg(feature = "regex")]
    Pattern(String),
}

impl fmt::Debug for Regexp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Regexp::Matcher(_) => f.write_str("Matcher(..)"),
            #[cfg(feature = "regex")]
            Regexp::Pattern(p) => f.debug_tuple("Pattern").field(p).finish(),
        }
    }
}

/// Options for [`Line`], named after POE's constructor parameters. Conflicts are reported
/// by [`LineBuilder::build`].
#[derive(Default)]
pub struct LineBuilder {
    literal: Option<Vec<u8>>,
    input_literal: Option<Vec<u8>>,
    input_regexp: Option<Regexp>,
    output_literal: Option<Vec<u8>>,
    max_length: Option<usize>,
    max_buffer: Option<usize>,
}

impl fmt::Debug for LineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineBuilder")
            .field("literal", &self.literal)
            .field("input_literal", &self.input_literal)
            .field("input_regexp", &self.input_regexp)
            .field("output_literal", &self.output_literal)
            .field("max_length", &self.max_length)
            .field("max_buffer", &self.max_buffer)
            .finish()
    }
}

impl LineBuilder {
    /// `Literal => STR`: the newline for both directions. Must be non-empty and cannot be
    /// combined with any other newline option.
    pub fn literal(mut self, literal: impl Into<Vec<u8>>) -> Self {
        self.literal = Some(literal.into());
        self
    }

    /// `InputLiteral => STR`: the input newline. An empty literal means autodetection,
    /// as POE's `InputLiteral => ""` or `undef`.
    pub fn input_literal(mut self, literal: impl Into<Vec<u8>>) -> Self {
        self.input_literal = Some(literal.into());
        self
    }

    /// Autodetect the input newline (POE's `InputLiteral => undef`).
    pub fn autodetect(self) -> Self {
        self.input_literal(Vec::new())
    }

    /// `InputRegexp => qr/.../`: input lines end where `matcher` finds a terminator.
    /// Replaces an earlier `input_regexp_pattern`.
    pub fn input_regexp(mut self, matcher: impl LineMatcher + 'static) -> Self {
        self.input_regexp = Some(Regexp::Matcher(Rc::new(matcher)));
        self
    }

    /// `InputRegexp => STR`: a pattern string, compiled as `(?s-u)PATTERN` with
    /// `regex::bytes::Regex` (leftmost-first, as Perl matches). An invalid pattern makes
    /// [`build`] fail with [`ConfigError::RegexpUnsupported`].
    ///
    /// Needs the crate feature `regex`.
    ///
    /// [`build`]: LineBuilder::build
    #[cfg(feature = "regex")]
    #[cfg_attr(docsrs, doc(cfg(feature = "regex")))]
    pub fn input_regexp_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.input_regexp = Some(Regexp::Pattern(pattern.into()));
        self
    }

    /// `OutputLiteral => STR`: the newline appended by `put` (default CRLF).
    pub fn output_literal(mut self, literal: impl Into<Vec<u8>>) -> Self {
        self.output_literal = Some(literal.into());
        self
    }

    super::limit_setters!(
        "`MaxLength => N`: longest line accepted (default 64 MiB; must be > 0).",
        "`MaxBuffer => N`: largest input buffer accepted (default 512 MiB; must be > 0 and \
         at least `MaxLength`)."
    );

    /// Validates the options in POE's order and builds the filter.
    pub fn build(self) -> Result<Line, ConfigError> {
        let regexp_given = self.input_regexp.is_some();
        let input = if let Some(literal) = self.literal {
            if literal.is_empty() {
                return Err(ConfigError::EmptyLiteral);
            }
            if self.input_literal.is_some() || regexp_given || self.output_literal.is_some() {
                return Err(ConfigError::LiteralWithOther);
            }
            let output = literal.clone();
            (Input::Literal(literal), Some(output))
        } else {
            let input = if let Some(input_literal) = self.input_literal {
                if regexp_given {
                    return Err(ConfigError::InputLiteralAndRegexp);
                }
                if input_literal.is_empty() {
                    Input::AutoFirst
                } else {
                    Input::Literal(input_literal)
                }
            } else if let Some(regexp) = self.input_regexp {
                match regexp {
                    Regexp::Matcher(matcher) => Input::Matcher(matcher),
                    #[cfg(feature = "regex")]
                    Regexp::Pattern(pattern) => {
                        match regex::bytes::Regex::new(&format!("(?s-u){pattern}")) {
                            Ok(re) => Input::Matcher(Rc::new(move |h: &[u8]| {
                                re.find(h).map(|m| m.range())
                            })),
                            Err(_) => return Err(ConfigError::RegexpUnsupported { pattern }),
                        }
                    }
                }
            } else {
                Input::Default
            };
            (input, self.output_literal)
        };
        let max_buffer = param_max("MaxBuffer", self.max_buffer, DEFAULT_MAX_BUFFER)?;
        let max_length = param_max("MaxLength", self.max_length, DEFAULT_MAX_LENGTH)?;
        if max_buffer < max_length {
            return Err(ConfigError::MaxBufferTooSmall {
                max_buffer,
                max_length,
            });
        }
        let newlines = match input {
            (Input::Default, None) => None,
            (input, output) => Some(Box::new(Newlines {
                input,
                output: output.map(Vec::into_boxed_slice),
            })),
        };
        Ok(Line {
            buf: ByteBuf::new(),
            max_length: limit32(max_length),
            max_buffer: limit32(max_buffer),
            newlines,
        })
    }
}

#[cfg(test)]
mod size_tests {
    /// A connection's filter lives inside its `ReadWrite` wheel: in POE's default
    /// newline mode it is a buffer, two limits and one word.
    #[test]
    fn a_line_filter_stays_small() {
        assert_eq!(std::mem::size_of::<super::Line>(), 48);
    }
}

#[cfg(test)]
mod first_line_tests {
    use super::{Line, LineBuilder};
    use crate::filter::Filter;

    /// What a filter gives for `reads`, each read parsed until no record is left: records
    /// (or failures, as text), then what stays buffered. `shortcut`: reads taken by
    /// [`Line::first_line_of`] where it can, as a wheel does.
    fn run(mut f: Line, reads: &[&[u8]], shortcut: bool) -> (Vec<String>, Option<Vec<u8>>) {
        let mut out = Vec::new();
        let note =
            |out: &mut Vec<String>, r: Result<Option<Vec<u8>>, crate::filter::FilterError>| match r
            {
                Ok(Some(rec)) => {
                    out.push(String::from_utf8_lossy(&rec).into_owned());
                    true
                }
                Ok(None) => false,
                Err(e) => {
                    out.push(format!("{e:?}"));
                    true
                }
            };
        for read in reads {
            let first = if shortcut {
                f.first_line_of(read, |len| Vec::with_capacity(len + 8))
            } else {
                None
            };
            let go_on = match first {
                Some(r) => note(&mut out, r),
                None => {
                    if let Err(e) = f.get_one_start_chunk(read.to_vec()) {
                        out.push(format!("{e:?}"));
                        continue;
                    }
                    true
                }
            };
            if go_on {
                while note(&mut out, f.next_line()) {}
            }
        }
        let pending = f.get_pending().map(|p| p.concat());
        (out, pending)
    }

    /// A named way to build a filter.
    type Make = (&'static str, fn() -> Line);

    fn filters() -> Vec<Make> {
        vec![
            ("default", Line::new),
            ("lf", || Line::with_literal("\n").unwrap()),
            ("crlf", || Line::with_literal("\r\n").unwrap()),
            ("ab", || Line::with_literal("ab").unwrap()),
            ("max_length 1", || {
                LineBuilder::default().max_length(1).build().unwrap()
            }),
            ("lf, max_length 1", || {
                LineBuilder::default()
                    .literal("\n")
                    .max_length(1)
                    .build()
                    .unwrap()
            }),
            ("max_buffer 3", || {
                LineBuilder::default()
                    .max_length(2)
                    .max_buffer(3)
                    .build()
                    .unwrap()
            }),
            ("autodetect", || {
                Line::builder().autodetect().build().unwrap()
            }),
        ]
    }

    /// Every string of up to 6 bytes over `a`, `b`, CR and LF, cut into one, two or three
    /// reads at every place: the bytes taken where they lie give the records, failures
    /// and buffered rest that the buffer gives (a CR at a read's end, several lines in
    /// one read, a line split over reads, lines too long, a buffer too large).
    #[test]
    fn taking_a_read_where_it_lies_parses_as_the_buffer_does() {
        const ALPHABET: &[u8] = b"ab\r\n";
        let mut inputs = vec![Vec::new()];
        let mut all = Vec::new();
        for _ in 0..6 {
            let mut next = Vec::new();
            for s in &inputs {
                for &c in ALPHABET {
                    let mut t: Vec<u8> = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            all.extend(next.iter().cloned());
            inputs = next;
        }
        let mut shortcuts = 0;
        for (name, make) in filters() {
            for s in &all {
                for i in 1..=s.len() {
                    for j in i..=s.len() {
                        let (a, rest) = s.split_at(i);
                        let (b, c) = rest.split_at(j - i);
                        let reads: Vec<&[u8]> =
                            [a, b, c].into_iter().filter(|r| !r.is_empty()).collect();
                        let want = run(make(), &reads, false);
                        let got = run(make(), &reads, true);
                        assert_eq!(got, want, "{name}: {reads:?}");
                        if make().first_line_of(a, Vec::with_capacity).is_some() {
                            shortcuts += 1;
                        }
                    }
                }
            }
        }
        assert!(shortcuts > 0);
    }

    #[test]
    fn the_first_line_is_copied_out_and_the_rest_kept() {
        let mut f = Line::new();
        let got = f.first_line_of(b"one\r\ntwo\rthree", |len| Vec::with_capacity(len + 8));
        let line = got.unwrap().unwrap().unwrap();
        assert_eq!(line, b"one");
        assert!(
            line.capacity() >= 3 + 8,
            "the line keeps room for its newline"
        );
        assert_eq!(f.get_pending(), Some(vec![b"two\rthree".to_vec()]));
        // Bytes buffered: the usual way.
        assert!(f.first_line_of(b"\n", Vec::with_capacity).is_none());
        assert_eq!(f.next_line().unwrap().unwrap(), b"two");
        assert_eq!(f.next_line().unwrap(), None);
        // A lone CR at the end of a read ends the line at once.
        let mut f = Line::new();
        let got = f.first_line_of(b"x\r", Vec::with_capacity).unwrap();
        assert_eq!(got.unwrap().unwrap(), b"x");
        assert!(!f.may_have_record());
        let got = f.first_line_of(b"\n", Vec::with_capacity).unwrap();
        assert_eq!(got.unwrap().unwrap(), b"");
        // Autodetection and matchers go the usual way.
        let mut f = Line::builder().autodetect().build().unwrap();
        assert!(f.first_line_of(b"x\n", Vec::with_capacity).is_none());
    }
}
