//! The HTTP/1.1 client codec: requests written from [`http::Request`]s, responses read
//! into [`http::Response`] parts, with heads parsed by [`httparse`].
//!
//! It is pure code, fed with the bytes a [`ReadWrite`](reactor::wheel::ReadWrite) wheel
//! delivers. [`ResponseParser::step`] reads one response: its head (every interim `1xx`
//! response before it, `100 Continue` and `103 Early Hints` among them, is skipped), then
//! its body however it is framed (`Content-Length`, chunked with trailers, or the end of
//! the connection; none after `HEAD`, `204` and `304`), and says whether the connection
//! may carry another request. [`HttpClient`](crate::HttpClient) is built on it;
//! [`ResponseParser::feed`] is the short form for code that only counts a body.
//!
//! ```
//! use keepalive::http::{ResponseParser, Step};
//!
//! let mut p = ResponseParser::new(false);
//! let mut input: &[u8] = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
//!     HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
//! let Step::Head(head) = p.step(&mut input)? else { unreachable!() };
//! assert_eq!(head.status, 200);
//! let Step::Data(body) = p.step(&mut input)? else { unreachable!() };
//! assert_eq!(body, b"hello");
//! let Step::End(end) = p.step(&mut input)? else { unreachable!() };
//! assert!(end.keep_alive);
//! # Ok::<(), keepalive::http::HttpError>(())
//! ```

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};
use std::fmt;
use std::io::Write;
use std::mem::MaybeUninit;
use std::time::Duration;

/// A `GET` request for `path` on `host`:`port`, HTTP/1.1 with keep-alive.
pub fn get_request(host: &str, port: u16, path: &str) -> Vec<u8> {
    let path = if path.is_empty() { "/" } else { path };
    format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: keepalive-demo\r\n\r\n")
        .into_bytes()
}

/// Writes `request` as HTTP/1.x bytes into `out`: the request line with `target` (the
/// path and query, or the absolute URI for a proxy), the headers as they are, a blank
/// line and the body. The version is the request's (HTTP/1.0 or HTTP/1.1; anything else
/// is written as HTTP/1.1).
pub fn encode_request<B: AsRef<[u8]>>(request: &http::Request<B>, target: &str, out: &mut Vec<u8>) {
    let body = request.body().as_ref();
    let version = match request.version() {
        Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let method = request.method().as_str();
    out.reserve(method.len() + target.len() + 16 + request.headers().len() * 32 + body.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.push(b' ');
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in request.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Why a response could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The status line is not `HTTP/1.x NNN ...`.
    BadStatusLine,
    /// A header line is malformed (httparse refused it, or its name or value is not one
    /// the `http` crate accepts).
    BadHeader,
    /// `Content-Length` is not a number, or several disagree.
    BadContentLength,
    /// A chunk-size line is not hexadecimal, or a chunk does not end with CRLF.
    BadChunk,
    /// The head (or the trailers) is larger than the limit (64 KiB).
    HeadTooLarge,
    /// The connection ended before the response was complete.
    Truncated,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpError::BadStatusLine => "malformed status line",
            HttpError::BadHeader => "malformed header",
            HttpError::BadContentLength => "malformed Content-Length",
            HttpError::BadChunk => "malformed chunk",
            HttpError::HeadTooLarge => "response head too large",
            HttpError::Truncated => "connection closed before the response ended",
        })
    }
}

impl std::error::Error for HttpError {}

/// The head of a final response.
#[derive(Clone, Debug)]
pub struct Head {
    /// The status code.
    pub status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The reason phrase as sent when it is not the standard one for the status (empty
    /// otherwise: no allocation for the usual case).
    pub reason: String,
    /// The headers as sent.
    pub headers: HeaderMap,
    /// The body's length when the head gives it (`Content-Length` without chunking).
    pub content_length: Option<u64>,
    /// The server's `Keep-Alive: timeout=N` hint.
    pub keep_alive_timeout: Option<Duration>,
    /// Interim (`1xx`) responses skipped before this one.
    pub interim: u32,
}

/// The end of a response.
#[derive(Clone, Debug, Default)]
pub struct End {
    /// Whether the connection may carry another request: HTTP/1.1 without
    /// `Connection: close` (HTTP/1.0 only with `Connection: keep-alive`), a body whose
    /// end was known, and nothing unexpected. The caller must also check that no bytes
    /// followed the response.
    pub keep_alive: bool,
    /// The trailers of a chunked body, if any were sent.
    pub trailers: Option<HeaderMap>,
}

/// One step of reading a response.
#[derive(Debug)]
pub enum Step<'a> {
    /// The input is used up: feed more.
    NeedMore,
    /// The final response's head.
    Head(Box<Head>),
    /// Some of the body (after de-chunking), borrowed from the input.
    Data(&'a [u8]),
    /// The response is complete; what remains of the input came after it.
    End(End),
}

/// [`Step`] with the head as it is (see [`ResponseParser::advance`]).
#[derive(Debug)]
pub(crate) enum Advance<'a> {
    /// The input is used up: feed more.
    NeedMore,
    /// The final response's head.
    Head(Head),
    /// Some of the body (after de-chunking), borrowed from the input.
    Data(&'a [u8]),
    /// The response is complete; what remains of the input came after it.
    End(End),
}

/// The result of [`ResponseParser::feed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parse {
    /// More bytes are needed.
    Incomplete,
    /// The response is complete.
    Done(ResponseInfo),
}

/// A complete response, as [`ResponseParser::feed`] counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseInfo {
    /// The status code.
    pub status: u16,
    /// Body bytes (after de-chunking).
    pub body_len: u64,
    /// Whether the connection may carry another request (see [`End::keep_alive`]); false
    /// when bytes followed the response.
    pub keep_alive: bool,
    /// Bytes of the last chunk fed that came after the response.
    pub extra: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    /// The head was handed out; the body starts (or the response ends) next.
    Body(Framing),
    Fixed(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    Close,
}

/// The largest head, chunk-size line or trailer section accepted.
pub const MAX_HEAD: usize = 64 * 1024;

/// Reads one HTTP/1.x response at a time from a byte stream. Reuse it for the next
/// response on the same connection with [`reset`](ResponseParser::reset).
#[derive(Clone, Debug)]
pub struct ResponseParser {
    state: State,
    /// Head, chunk-size or trailer bytes carried between feeds.
    buf: Vec<u8>,
    head_request: bool,
    http09: bool,
    keep_alive: bool,
    seen: bool,
    interim: u32,
    /// Counted by [`feed`](ResponseParser::feed).
    status: u16,
    body_len: u64,
    /// Which coding headers the final head has (see [`ResponseParser::codings`]).
    codings: Codings,
}

/// Which coding headers a response head has: a client that undoes codings looks them up
/// in the map only when they are there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Codings {
    /// A `Transfer-Encoding` header.
    pub(crate) transfer: bool,
    /// A `Content-Encoding` header.
    pub(crate) content: bool,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new(false)
    }
}

impl ResponseParser {
    /// A parser for the response to a request; `head_request` is true for `HEAD` (no
    /// body whatever the headers say).
    pub fn new(head_request: bool) -> Self {
        ResponseParser {
            state: State::Head,
            buf: Vec::new(),
            head_request,
            http09: false,
            keep_alive: true,
            seen: false,
            interim: 0,
            status: 0,
            body_len: 0,
            codings: Codings::default(),
        }
    }

    /// A parser for the response to a `HEAD`.
    pub fn for_head() -> Self {
        Self::new(true)
    }

    /// Whether a response that does not start with `HTTP/` is taken as an HTTP/0.9 one
    /// (status 200, `Content-Type: text/html`, the bytes as the body until the connection
    /// ends), as POE's client does. Off by default: such a response is
    /// [`HttpError::BadStatusLine`].
    pub fn allow_http09(mut self, on: bool) -> Self {
        self.http09 = on;
        self
    }

    /// Ready for the next response on the same connection (to a request that is a `HEAD`
    /// if `head_request`).
    pub fn reset(&mut self, head_request: bool) {
        self.state = State::Head;
        self.buf.clear();
        self.head_request = head_request;
        self.keep_alive = true;
        self.seen = false;
        self.interim = 0;
        self.status = 0;
        self.body_len = 0;
        self.codings = Codings::default();
    }

    /// Which coding headers the final head has (none before it is read).
    pub(crate) fn codings(&self) -> Codings {
        self.codings
    }

    /// Whether any byte of the response has arrived.
    pub fn started(&self) -> bool {
        self.seen
    }

    /// Whether the final head has been read.
    pub fn has_head(&self) -> bool {
        self.state != State::Head
    }

    /// Whether the response is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads from the front of `input` (which it advances) up to the next thing to report.
    pub fn step<'a>(&mut self, input: &mut &'a [u8]) -> Result<Step<'a>, HttpError> {
        Ok(match self.advance(input, None)? {
            Advance::NeedMore => Step::NeedMore,
            Advance::Head(head) => Step::Head(Box::new(head)),
            Advance::Data(data) => Step::Data(data),
            Advance::End(end) => Step::End(end),
        })
    }

    /// [`ResponseParser::step`] with the head handed over as it is, without a box of its
    /// own: for a caller that takes the head apart at once. With `cache`, a head with the
    /// same names as the last one read through it is built from that one's map (see
    /// [`HeadCache`]).
    pub(crate) fn advance<'a>(
        &mut self,
        input: &mut &'a [u8],
        mut cache: Option<&mut HeadCache>,
    ) -> Result<Advance<'a>, HttpError> {
        if !input.is_empty() {
            self.seen = true;
        }
        loop {
            match self.state {
                State::Done => return Ok(Advance::NeedMore),
                State::Head => match self.take_head(input, cache.as_deref_mut())? {
                    Some(head) => return Ok(Advance::Head(head)),
                    None if self.state == State::Head => return Ok(Advance::NeedMore),
                    None => {}
                },
                State::Body(f) => {
                    self.state = match f {
                        Framing::None | Framing::Length(0) => State::Done,
                        Framing::Length(n) => State::Fixed(n),
                        Framing::Chunked => State::ChunkSize,
                        Framing::Close => State::UntilClose,
                    };
                    if self.state == State::Done {
                        return Ok(Advance::End(self.end(None)));
                    }
                }
                State::Fixed(left) => {
                    if input.is_empty() {
                        return Ok(Advance::NeedMore);
                    }
                    let n = left.min(input.len() as u64) as usize;
                    let (data, rest) = input.split_at(n);
                    *input = rest;
                    self.state = if left == n as u64 {
                        State::Body(Framing::None)
                    } else {
                        State::Fixed(left - n as u64)
                    };
                    return Ok(Advance::Data(data));
                }
                State::UntilClose => {
                    if input.is_empty() {
                        return Ok(Advance::NeedMore);
                    }
                    let data = std::mem::take(input);
                    return Ok(Advance::Data(data));
                }
                State::ChunkSize => {
                    let Some(line) = self.take_line(input)? else {
                        return Ok(Advance::NeedMore);
                    };
                    let size = chunk_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkData(left) => {
                    if input.is_empty() {
                        return Ok(Advance::NeedMore);
                    }
                    let n = left.min(input.len() as u64) as usize;
                    let (data, rest) = input.split_at(n);
                    *input = rest;
                    self.state = if left == n as u64 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left - n as u64)
                    };
                    return Ok(Advance::Data(data));
                }
                State::ChunkEnd => {
                    let Some(line) = self.take_line(input)? else {
                        return Ok(Advance::NeedMore);
                    };
                    if !line.is_empty() {
                        return Err(HttpError::BadChunk);
                    }
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    let Some(trailers) = self.take_trailers(input)? else {
                        return Ok(Advance::NeedMore);
                    };
                    self.state = State::Done;
                    return Ok(Advance::End(self.end(trailers)));
                }
            }
        }
    }

    /// The connection ended: a body delimited by the close is complete now; anything else
    /// unfinished is [`HttpError::Truncated`].
    pub fn eof(&mut self) -> Result<End, HttpError> {
        match self.state {
            State::UntilClose | State::Body(Framing::Close) => {
                self.state = State::Done;
                self.keep_alive = false;
                Ok(self.end(None))
            }
            State::Body(Framing::None | Framing::Length(0)) => {
                self.state = State::Done;
                Ok(self.end(None))
            }
            // The last chunk came, the blank line after it did not: the body is whole.
            State::Trailers if self.buf.is_empty() => {
                self.state = State::Done;
                self.keep_alive = false;
                Ok(self.end(None))
            }
            _ => Err(HttpError::Truncated),
        }
    }

    /// The short form: feeds bytes and counts the body; `Done` once the response is
    /// complete (bytes after it count as `extra` and make the connection unfit).
    pub fn feed(&mut self, mut data: &[u8]) -> Result<Parse, HttpError> {
        loop {
            match self.step(&mut data)? {
                Step::NeedMore => return Ok(Parse::Incomplete),
                Step::Head(h) => self.status = h.status.as_u16(),
                Step::Data(d) => self.body_len += d.len() as u64,
                Step::End(end) => {
                    return Ok(Parse::Done(ResponseInfo {
                        status: self.status,
                        body_len: self.body_len,
                        keep_alive: end.keep_alive && data.is_empty(),
                        extra: data.len(),
                    }))
                }
            }
        }
    }

    fn end(&self, trailers: Option<HeaderMap>) -> End {
        End {
            keep_alive: self.keep_alive,
            trailers,
        }
    }

    /// Collects one CRLF-terminated line across feeds.
    fn take_line(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
        match memchr::memchr(b'\n', input) {
            Some(i) => {
                let mut line = std::mem::take(&mut self.buf);
                line.extend_from_slice(&input[..i]);
                *input = &input[i + 1..];
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Ok(Some(line))
            }
            None => {
                self.buf.extend_from_slice(input);
                *input = &[];
                if self.buf.len() > MAX_HEAD {
                    return Err(HttpError::BadChunk);
                }
                Ok(None)
            }
        }
    }

    /// Collects the trailer section (ended by an empty line) and parses it.
    fn take_trailers(&mut self, input: &mut &[u8]) -> Result<Option<Option<HeaderMap>>, HttpError> {
        loop {
            let Some(i) = memchr::memchr(b'\n', input) else {
                self.buf.extend_from_slice(input);
                *input = &[];
                if self.buf.len() > MAX_HEAD {
                    return Err(HttpError::HeadTooLarge);
                }
                return Ok(None);
            };
            let line_start = memchr::memrchr(b'\n', &self.buf).map_or(0, |j| j + 1);
            self.buf.extend_from_slice(&input[..=i]);
            *input = &input[i + 1..];
            let line = &self.buf[line_start..];
            if line == b"\r\n" || line == b"\n" {
                break;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(HttpError::HeadTooLarge);
            }
        }
        let block = std::mem::take(&mut self.buf);
        if block.len() <= 2 {
            return Ok(Some(None));
        }
        let mut raw = [httparse::EMPTY_HEADER; 32];
        let mut big;
        let headers: &mut [httparse::Header<'_>] = match httparse::parse_headers(&block, &mut raw) {
            Err(httparse::Error::TooManyHeaders) => {
                big = vec![httparse::EMPTY_HEADER; 1024];
                &mut big
            }
            _ => &mut raw,
        };
        match httparse::parse_headers(&block, headers) {
            Ok(httparse::Status::Complete((_, parsed))) => Ok(Some(Some(header_map(parsed)?))),
            _ => Err(HttpError::BadHeader),
        }
    }

    /// Reads heads until a final one; `None` if more bytes are needed (or an interim one
    /// was skipped and the input is used up).
    fn take_head(
        &mut self,
        input: &mut &[u8],
        mut cache: Option<&mut HeadCache>,
    ) -> Result<Option<Head>, HttpError> {
        loop {
            if input.is_empty() {
                return Ok(None);
            }
            let carried = self.buf.len();
            if self.interim == 0 && !self.starts_like_http(input) {
                if !self.http09 {
                    return Err(HttpError::BadStatusLine);
                }
                let mut headers = HeaderMap::new();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html"),
                );
                // The carried bytes are body too.
                self.state = State::Body(Framing::Close);
                self.keep_alive = false;
                self.codings = Codings::default();
                return Ok(Some(Head {
                    status: StatusCode::OK,
                    version: Version::HTTP_09,
                    reason: "OK".to_owned(),
                    headers,
                    content_length: None,
                    keep_alive_timeout: None,
                    interim: 0,
                }));
            }
            let parsed = if carried == 0 {
                parse_head(input, self.head_request, cache.as_deref_mut())?
            } else {
                self.buf.extend_from_slice(input);
                parse_head(&self.buf, self.head_request, cache.as_deref_mut())?
            };
            let Some((used, head, framing, keep_alive, codings)) = parsed else {
                if carried == 0 {
                    self.buf.extend_from_slice(input);
                }
                *input = &[];
                if self.buf.len() > MAX_HEAD {
                    return Err(HttpError::HeadTooLarge);
                }
                return Ok(None);
            };
            self.buf.clear();
            *input = &input[used - carried..];
            if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS {
                // 100 Continue, 102 Processing, 103 Early Hints: the final response follows.
                self.interim += 1;
                continue;
            }
            let mut head = head;
            head.interim = self.interim;
            self.keep_alive = keep_alive;
            self.codings = codings;
            self.state = State::Body(framing);
            return Ok(Some(head));
        }
    }
}

impl ResponseParser {
    /// Whether the head so far (carried bytes, then `input`) can still start with `HTTP/`.
    fn starts_like_http(&self, input: &[u8]) -> bool {
        const PREFIX: &[u8] = b"HTTP/";
        let carried = &self.buf[..self.buf.len().min(PREFIX.len())];
        let more = &input[..input.len().min(PREFIX.len() - carried.len())];
        carried
            .iter()
            .chain(more)
            .zip(PREFIX)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

/// The bytes of a head of at most `N` bytes, kept in the allocation that the shared copy
/// ([`shared_copy`]) makes for its count of owners.
struct InlineHead<const N: usize> {
    len: usize,
    bytes: [u8; N],
}

impl<const N: usize> AsRef<[u8]> for InlineHead<N> {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The head's bytes as one shared copy, which the map's values are slices of: a head of
/// up to 1,024 bytes (nearly every one) in one allocation, its bytes beside its count of
/// owners (`Bytes::copy_from_slice` takes two: the bytes, then the count at the first
/// slice).
fn shared_copy(head: &[u8]) -> bytes::Bytes {
    fn inline<const N: usize>(head: &[u8]) -> bytes::Bytes {
        let mut h = InlineHead {
            len: head.len(),
            bytes: [0; N],
        };
        h.bytes[..head.len()].copy_from_slice(head);
        bytes::Bytes::from_owner(h)
    }
    match head.len() {
        0..=256 => inline::<256>(head),
        257..=1024 => inline::<1024>(head),
        _ => bytes::Bytes::copy_from_slice(head),
    }
}

/// What a head's headers say of its framing and of the connection, noted header by header
/// ([`Framer::note`]) as the map is built.
#[derive(Clone, Copy, Debug, Default)]
struct Framer {
    close: bool,
    keep: bool,
    chunked: bool,
    length: Option<u64>,
    bad_length: bool,
    ka_hint: Option<Duration>,
    codings: Codings,
}

impl Framer {
    /// Notes the header `name` (sent as `raw_len` bytes) with the value `value`.
    #[inline(always)]
    fn note(&mut self, name: &HeaderName, raw_len: usize, value: &[u8]) {
        if name == header::CONNECTION {
            for t in value.split(|&b| b == b',') {
                let t = trim(t);
                self.close |= t.eq_ignore_ascii_case(b"close");
                self.keep |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name == header::CONTENT_LENGTH {
            if !self.bad_length {
                for t in value.split(|&b| b == b',') {
                    let t = trim(t);
                    if t.is_empty() || t.len() > 19 || !t.iter().all(u8::is_ascii_digit) {
                        self.bad_length = true;
                        break;
                    }
                    let n = t.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                    if self.length.is_some_and(|l| l != n) {
                        self.bad_length = true;
                        break;
                    }
                    self.length = Some(n);
                }
            }
        } else if name == header::TRANSFER_ENCODING {
            self.codings.transfer = true;
            // Only the last coding counts: chunked must come last to frame the body.
            self.chunked = value
                .split(|&b| b == b',')
                .map(trim)
                .rfind(|t| !t.is_empty())
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        } else if name == header::CONTENT_ENCODING {
            self.codings.content = true;
        } else if raw_len == 10 && name.as_str() == "keep-alive" {
            self.ka_hint = std::str::from_utf8(value).ok().and_then(keep_alive_timeout);
        }
    }
}

/// A header's value: the bytes of `shared` (the copy of the head `buf`'s first `used`
/// bytes, made at the first call) where httparse found it.
#[inline]
fn value_of(
    buf: &[u8],
    used: usize,
    shared: &mut Option<bytes::Bytes>,
    value: &[u8],
) -> Result<HeaderValue, HttpError> {
    // httparse's values lie in `buf`: a value whose bytes are within the head's first
    // `used` bytes is those bytes of the copy (no comparison needed).
    let start = (value.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    match start.checked_add(value.len()) {
        Some(end) if end <= used => {
            let shared = shared.get_or_insert_with(|| shared_copy(&buf[..used]));
            HeaderValue::from_maybe_shared(shared.slice(start..end))
        }
        _ => HeaderValue::from_bytes(value),
    }
    .map_err(|_| HttpError::BadHeader)
}

/// The map of httparse's `list` of headers, read from the head `buf` (of `used` bytes),
/// its framing noted in `frame`: the map and the framing headers in one pass over the
/// list, the framing read from the names the map gets (no second comparison of each
/// name). A bad `Content-Length` is reported after the whole map was built (by the
/// caller), as a bad header comes first.
fn new_map(
    buf: &[u8],
    used: usize,
    list: &[httparse::Header<'_>],
    frame: &mut Framer,
) -> Result<HeaderMap, HttpError> {
    let mut shared = None;
    let mut headers = HeaderMap::with_capacity(list.len());
    for h in list {
        if h.name.is_empty() {
            continue;
        }
        let raw_name = h.name.as_bytes();
        let name = match common_name(raw_name) {
            Some(n) => n,
            None => HeaderName::from_bytes(raw_name).map_err(|_| HttpError::BadHeader)?,
        };
        let value = value_of(buf, used, &mut shared, h.value)?;
        frame.note(&name, raw_name.len(), h.value);
        headers.append(name, value);
    }
    Ok(headers)
}

/// Whether `a` and `b` are the same bytes: for a head's short names and values, compared
/// in place a word at a time (the last word overlapping the one before) instead of by a
/// call to `memcmp`.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        let word = |s: &[u8], i: usize| u64::from_ne_bytes(s[i..i + 8].try_into().unwrap());
        let mut i = 0;
        while i + 8 < n {
            if word(a, i) != word(b, i) {
                return false;
            }
            i += 8;
        }
        word(a, n - 8) == word(b, n - 8)
    } else if n >= 4 {
        let word = |s: &[u8], i: usize| u32::from_ne_bytes(s[i..i + 4].try_into().unwrap());
        word(a, 0) == word(b, 0) && word(a, n - 4) == word(b, n - 4)
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

/// The names (as sent) and the map of the last head read with it (one without a name
/// twice), from which a head with the same names in the same order, as a server's
/// responses mostly have, gets its map by a copy: only the values that differ from the
/// last head's are checked and copied ([`HeadCache::copy_map`]), the names not at all.
/// The map is the same as the one built header by header: the same names and values, in
/// the same order.
///
/// A head with other names replaces the kept one only if the head before it had other
/// names too (or nothing is kept): a client whose responses alternate between two kinds
/// of heads (two servers, or an interim `100 Continue` before each final head) keeps
/// copying the one it has instead of paying for a copy of the map kept at every head; a
/// client that moved to another server keeps the new server's head from its second
/// response on.
#[derive(Debug, Default)]
pub(crate) struct HeadCache {
    /// The names as sent, one after another.
    raw: Vec<u8>,
    /// Where each name ends in `raw`.
    ends: Vec<usize>,
    /// The last head's map (its values updated to the latest head's), with one header
    /// more at the end ([`HeadCache::SPARE`]).
    map: HeaderMap,
    /// What the map's headers say of the framing.
    frame: Framer,
    /// The last head read had other names than the kept one's.
    missed: bool,
}

impl HeadCache {
    /// Heads of more headers than this are not kept.
    const MAX_HEADERS: usize = 32;
    /// A header no response has, at the end of the kept map: a copy of the map
    /// (`HeaderMap::clone`, whose list of entries has no room to spare) takes it out
    /// again, which leaves room for one more header, as the client adds (`X-PCCH-Peer`),
    /// without moving the list elsewhere. Heads with it are not kept.
    const SPARE: HeaderName = header::MAX_FORWARDS;

    /// Whether `list` has the names of the kept head, in the same order, as sent.
    #[inline]
    fn same_names(&self, list: &[httparse::Header<'_>]) -> bool {
        if list.len() != self.ends.len() || list.is_empty() {
            return false;
        }
        let mut start = 0;
        for (h, &end) in list.iter().zip(&self.ends) {
            if !same_bytes(h.name.as_bytes(), &self.raw[start..end]) {
                return false;
            }
            start = end;
        }
        true
    }

    /// The map of `list` (which [`same_names`](Self::same_names) accepted), from the head
    /// `buf` of `used` bytes: a copy of the kept map, with the values that differ replaced
    /// (in the kept map too), the framing in `frame` (the kept one when no value differs).
    fn copy_map(
        &mut self,
        buf: &[u8],
        used: usize,
        list: &[httparse::Header<'_>],
        frame: &mut Framer,
    ) -> Result<HeaderMap, HttpError> {
        self.missed = false;
        let mut headers = self.map.clone();
        headers.remove(Self::SPARE);
        let mut shared = None;
        let mut changed = false;
        for ((h, value), kept) in list
            .iter()
            .zip(headers.values_mut())
            .zip(self.map.values_mut())
        {
            if !same_bytes(h.value, value.as_bytes()) {
                let v = match value_of(buf, used, &mut shared, h.value) {
                    Ok(v) => v,
                    Err(e) => {
                        // The kept map now has some of this head's values: not kept.
                        self.ends.clear();
                        return Err(e);
                    }
                };
                kept.clone_from(&v);
                *value = v;
                changed = true;
            }
        }
        if changed {
            let mut f = Framer::default();
            let mut start = 0;
            for ((h, name), &end) in list.iter().zip(headers.keys()).zip(&self.ends) {
                f.note(name, end - start, h.value);
                start = end;
            }
            self.frame = f;
        }
        *frame = self.frame;
        Ok(headers)
    }

    /// Keeps `list`'s names, its map `headers` and its framing `frame` for the next head,
    /// or nothing (the next head's map is built anew) if a name comes twice or there are
    /// many; called for a head whose names are not the kept ones, it keeps them only if
    /// the head before had other names too, or nothing is kept.
    fn keep(&mut self, list: &[httparse::Header<'_>], headers: &HeaderMap, frame: &Framer) {
        if !self.ends.is_empty() && !self.missed {
            self.missed = true;
            return;
        }
        self.missed = false;
        self.raw.clear();
        self.ends.clear();
        if list.len() > Self::MAX_HEADERS
            || headers.len() != list.len()
            || headers.keys_len() != list.len()
            || headers.contains_key(Self::SPARE)
        {
            return;
        }
        for h in list {
            self.raw.extend_from_slice(h.name.as_bytes());
            self.ends.push(self.raw.len());
        }
        self.map.clone_from(headers);
        self.map.append(Self::SPARE, HeaderValue::from_static(""));
        self.frame = *frame;
    }
}

/// A head parsed: the bytes it took, the head, how its body is framed, whether the
/// connection may be kept, which coding headers it has.
type ParsedHead = (usize, Head, Framing, bool, Codings);

/// Parses one head from the start of `buf`: `(length, head, framing, keep-alive,
/// codings)`, or `None` if it is not complete yet.
fn parse_head(
    buf: &[u8],
    head_request: bool,
    cache: Option<&mut HeadCache>,
) -> Result<Option<ParsedHead>, HttpError> {
    // httparse fills the list it is given from the start and hands back the part it
    // filled: the list need not be set to empty headers first (64 of them, per head).
    let mut raw = [MaybeUninit::<httparse::Header<'_>>::uninit(); 64];
    let mut big;
    let config = httparse::ParserConfig::default();
    let mut resp = httparse::Response::new(&mut []);
    let status = match config.parse_response_with_uninit_headers(&mut resp, buf, &mut raw) {
        Err(httparse::Error::TooManyHeaders) => {
            big = vec![MaybeUninit::uninit(); 1024];
            resp = httparse::Response::new(&mut []);
            config.parse_response_with_uninit_headers(&mut resp, buf, &mut big)
        }
        other => other,
    };
    let used = match status {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD {
                return Err(HttpError::HeadTooLarge);
            }
            return Ok(None);
        }
        Err(
            httparse::Error::Status
            | httparse::Error::Version
            | httparse::Error::NewLine
            | httparse::Error::Token,
        ) if !has_status_line(buf) => return Err(HttpError::BadStatusLine),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(_) => return Err(HttpError::BadHeader),
    };
    let code = resp.code.ok_or(HttpError::BadStatusLine)?;
    let status = StatusCode::from_u16(code).map_err(|_| HttpError::BadStatusLine)?;
    let version = if resp.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let reason = match resp.reason {
        Some(r) if Some(r) != status.canonical_reason() => r.to_owned(),
        _ => String::new(),
    };
    // The map and the framing in one pass over httparse's list (a copy of the last
    // head's map if `cache` has its names); a bad `Content-Length` is reported after the
    // whole map was built, as a bad header comes first.
    let mut frame = Framer::default();
    let headers = match cache {
        Some(cache) if cache.same_names(resp.headers) => {
            cache.copy_map(buf, used, resp.headers, &mut frame)?
        }
        cache => {
            let headers = new_map(buf, used, resp.headers, &mut frame)?;
            if let Some(cache) = cache {
                cache.keep(resp.headers, &headers, &frame);
            }
            headers
        }
    };
    let Framer {
        close,
        keep,
        chunked,
        length,
        bad_length,
        ka_hint,
        codings,
    } = frame;
    if bad_length {
        return Err(HttpError::BadContentLength);
    }
    let mut keep_alive = if version == Version::HTTP_10 {
        keep && !close
    } else {
        !close
    };
    let no_body = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        if status == StatusCode::SWITCHING_PROTOCOLS {
            keep_alive = false;
        }
        Framing::None
    } else if codings.transfer {
        if length.is_some() {
            // Both: Transfer-Encoding wins and the connection is not trusted again.
            keep_alive = false;
        }
        if chunked {
            Framing::Chunked
        } else {
            keep_alive = false;
            Framing::Close
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        keep_alive = false;
        Framing::Close
    };
    let content_length = match framing {
        Framing::Length(n) => Some(n),
        Framing::None => Some(0),
        _ => None,
    };
    let keep_alive_timeout = ka_hint;
    let head = Head {
        status,
        version,
        reason,
        headers,
        content_length: if no_body && !head_request {
            Some(0)
        } else {
            content_length.filter(|_| !head_request).or(length)
        },
        keep_alive_timeout,
        interim: 0,
    };
    Ok(Some((used, head, framing, keep_alive, codings)))
}

/// `timeout=N` in a `Keep-Alive` header.
fn keep_alive_timeout(v: &str) -> Option<Duration> {
    v.split(',').find_map(|p| {
        let (k, n) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("timeout") {
            return None;
        }
        n.trim().parse::<u64>().ok().map(Duration::from_secs)
    })
}

/// Whether `buf` starts like a status line (`HTTP/`), so that a parse error is in the
/// head rather than a stream that is not HTTP at all.
fn has_status_line(buf: &[u8]) -> bool {
    buf.len() >= 12 && buf.starts_with(b"HTTP/1.") && buf[8] == b' '
}

/// The names servers send most, written as they send them (capitalised or lower case):
/// found by a comparison or two instead of `HeaderName::from_bytes`'s lower-cased copy and
/// search. Any other spelling goes the long way, to the same `HeaderName`.
#[inline]
fn common_name(name: &[u8]) -> Option<HeaderName> {
    let n = match name.len() {
        4 if name == b"Date" || name == b"date" => header::DATE,
        6 if name == b"Server" || name == b"server" => header::SERVER,
        10 if name == b"Connection" || name == b"connection" => header::CONNECTION,
        12 if name == b"Content-Type" || name == b"content-type" => header::CONTENT_TYPE,
        14 if name == b"Content-Length" || name == b"content-length" => header::CONTENT_LENGTH,
        17 if name == b"Transfer-Encoding" || name == b"transfer-encoding" => {
            header::TRANSFER_ENCODING
        }
        _ => return None,
    };
    Some(n)
}

fn header_map(parsed: &[httparse::Header<'_>]) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::with_capacity(parsed.len());
    for h in parsed {
        if h.name.is_empty() {
            continue;
        }
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| HttpError::BadHeader)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| HttpError::BadHeader)?;
        map.append(name, value);
    }
    Ok(map)
}

fn chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let hex = trim(line.split(|&b| b == b';').next().unwrap_or(&[]));
    if hex.is_empty() || hex.len() > 15 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(HttpError::BadChunk);
    }
    let hex = std::str::from_utf8(hex).map_err(|_| HttpError::BadChunk)?;
    u64::from_str_radix(hex, 16).map_err(|_| HttpError::BadChunk)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Content codings.

/// Decodes a body sent with `Content-Encoding: gzip` or `deflate` (zlib-wrapped, or raw
/// deflate as some servers send it), as it arrives.
///
/// gzip is read member by member: the header, the deflate data, then the trailer, whose
/// checksum and length are checked when they are there. A stream whose data is whole but
/// whose trailer is cut short (or followed by stray bytes, as some servers send) is
/// accepted, as browsers do.
pub struct ContentDecoder {
    inner: Decoder,
}

enum Decoder {
    Gzip(Gzip),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    Raw(flate2::write::DeflateDecoder<Vec<u8>>),
    /// `deflate` before its first bytes say which form it is.
    Deflate,
}

/// A gzip reader: where it is in the current member.
struct Gzip {
    state: GzState,
    /// Header or trailer bytes carried between calls.
    buf: Vec<u8>,
    crc: flate2::Crc,
}

enum GzState {
    Header,
    Data(Box<flate2::write::DeflateDecoder<Vec<u8>>>),
    Trailer,
    /// A member ended: another one may follow.
    Between,
    /// Bytes after a member that do not start another one: ignored.
    Done,
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_owned())
}

impl Gzip {
    fn new() -> Gzip {
        Gzip {
            state: GzState::Header,
            buf: Vec::new(),
            crc: flate2::Crc::new(),
        }
    }

    /// The length of a complete gzip header at the start of `b`, `None` if more bytes are
    /// needed.
    fn header_len(b: &[u8]) -> std::io::Result<Option<usize>> {
        if b.len() < 10 {
            if b.first().is_some_and(|&x| x != 0x1f) || b.get(1).is_some_and(|&x| x != 0x8b) {
                return Err(bad("not a gzip stream"));
            }
            return Ok(None);
        }
        if b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 {
            return Err(bad("not a gzip stream"));
        }
        let flags = b[3];
        let mut at = 10;
        if flags & 4 != 0 {
            let Some(x) = b.get(at..at + 2) else {
                return Ok(None);
            };
            at += 2 + usize::from(u16::from_le_bytes([x[0], x[1]]));
        }
        for bit in [8u8, 16] {
            if flags & bit != 0 {
                match b.get(at..).and_then(|r| memchr::memchr(0, r)) {
                    Some(z) => at += z + 1,
                    None => return Ok(None),
                }
            }
        }
        if flags & 2 != 0 {
            at += 2;
        }
        Ok((b.len() >= at).then_some(at))
    }

    fn decode(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        while !data.is_empty() {
            match &mut self.state {
                GzState::Header => {
                    let carried = self.buf.len();
                    self.buf.extend_from_slice(data);
                    match Self::header_len(&self.buf)? {
                        Some(n) => {
                            data = &data[n - carried..];
                            self.buf.clear();
                            self.crc.reset();
                            self.state = GzState::Data(Box::new(
                                flate2::write::DeflateDecoder::new(Vec::new()),
                            ));
                        }
                        None => return Ok(()),
                    }
                }
                GzState::Data(d) => {
                    let n = d.write(data)?;
                    let produced = std::mem::take(d.get_mut());
                    self.crc.update(&produced);
                    out.extend_from_slice(&produced);
                    if n == 0 {
                        // The deflate stream ended: the trailer follows.
                        d.try_finish()?;
                        let rest = std::mem::take(d.get_mut());
                        self.crc.update(&rest);
                        out.extend_from_slice(&rest);
                        self.state = GzState::Trailer;
                    } else {
                        data = &data[n..];
                    }
                }
                GzState::Trailer => {
                    let need = 8 - self.buf.len();
                    let take = need.min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.buf.len() == 8 {
                        let crc = u32::from_le_bytes([
                            self.buf[0],
                            self.buf[1],
                            self.buf[2],
                            self.buf[3],
                        ]);
                        let len = u32::from_le_bytes([
                            self.buf[4],
                            self.buf[5],
                            self.buf[6],
                            self.buf[7],
                        ]);
                        if crc != self.crc.sum() || len != self.crc.amount() {
                            // Stray bytes where the trailer should be (a CRLF after the data,
                            // say) are forgiven; a real trailer that disagrees is not.
                            if self.buf.starts_with(b"\r\n") {
                                self.state = GzState::Done;
                                continue;
                            }
                            return Err(bad("corrupt gzip stream: checksum mismatch"));
                        }
                        self.buf.clear();
                        self.state = GzState::Between;
                    }
                }
                GzState::Between => {
                    self.state = if data[0] == 0x1f {
                        GzState::Header
                    } else {
                        GzState::Done
                    };
                }
                GzState::Done => return Ok(()),
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        if let GzState::Data(d) = &mut self.state {
            d.try_finish()?;
            let rest = std::mem::take(d.get_mut());
            out.extend_from_slice(&rest);
        }
        Ok(())
    }
}

impl fmt::Debug for ContentDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentDecoder").finish_non_exhaustive()
    }
}

impl ContentDecoder {
    /// A decoder for the coding named (`gzip`, `x-gzip` or `deflate`), or `None` for any
    /// other.
    pub fn for_coding(coding: &str) -> Option<ContentDecoder> {
        let c = coding.trim();
        let inner = if c.eq_ignore_ascii_case("gzip") || c.eq_ignore_ascii_case("x-gzip") {
            Decoder::Gzip(Gzip::new())
        } else if c.eq_ignore_ascii_case("deflate") {
            Decoder::Deflate
        } else {
            return None;
        };
        Some(ContentDecoder { inner })
    }

    /// Decodes the next bytes of the body, appending what they decode to into `out`.
    pub fn decode(&mut self, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if let Decoder::Deflate = self.inner {
            // A zlib stream starts with CMF 0x?8 and a header whose check bits hold.
            let zlib = data.len() >= 2
                && data[0] & 0x0f == 8
                && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0;
            self.inner = if zlib {
                Decoder::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
            } else {
                Decoder::Raw(flate2::write::DeflateDecoder::new(Vec::new()))
            };
        }
        let produced = match &mut self.inner {
            Decoder::Gzip(g) => return g.decode(data, out),
            Decoder::Zlib(d) => {
                d.write_all(data)?;
                std::mem::take(d.get_mut())
            }
            Decoder::Raw(d) => {
                d.write_all(data)?;
                std::mem::take(d.get_mut())
            }
            Decoder::Deflate => Vec::new(),
        };
        out.extend_from_slice(&produced);
        Ok(())
    }

    /// The body ended: the rest of the decoded bytes.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let rest = match &mut self.inner {
            Decoder::Gzip(g) => return g.finish(out),
            Decoder::Zlib(d) => {
                d.try_finish()?;
                std::mem::take(d.get_mut())
            }
            Decoder::Raw(d) => {
                d.try_finish()?;
                std::mem::take(d.get_mut())
            }
            Decoder::Deflate => Vec::new(),
        };
        out.extend_from_slice(&rest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn whole(p: &mut ResponseParser, data: &[u8]) -> ResponseInfo {
        match p.feed(data).unwrap() {
            Parse::Done(i) => i,
            Parse::Incomplete => panic!("incomplete"),
        }
    }

    #[test]
    fn same_bytes_is_slice_equality() {
        let text = b"Content-Length: 12345678901234567890 keep-alive";
        for i in 0..text.len() {
            for j in i..=text.len() {
                let a = &text[i..j];
                let copy = a.to_vec();
                assert!(same_bytes(a, &copy));
                for k in 0..a.len() {
                    let mut b = a.to_vec();
                    b[k] ^= 0x20;
                    assert!(!same_bytes(a, &b));
                }
                if j < text.len() {
                    assert!(!same_bytes(a, &text[i..=j]));
                }
            }
        }
    }

    /// The headers of a map in order, as text.
    fn listed(map: &HeaderMap) -> Vec<(String, Vec<u8>)> {
        map.iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_head_with_the_last_heads_names_gets_the_map_built_anew() {
        let heads: [&[u8]; 9] = [
            b"HTTP/1.1 200 OK\r\nServer: a\r\nDate: 1\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n",
            // The same names: values that differ, a framing that differs.
            b"HTTP/1.1 200 OK\r\nServer: a\r\nDate: 2\r\nContent-Length: 7\r\nConnection: close\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nServer: a\r\nDate: 2\r\nContent-Length: 7\r\nConnection: close\r\n\r\n",
            // The same names in another case, then in another order.
            b"HTTP/1.1 200 OK\r\nserver: a\r\nDate: 2\r\nContent-Length: 7\r\nConnection: close\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nDate: 2\r\nserver: a\r\nContent-Length: 7\r\nConnection: close\r\n\r\n",
            // A name twice: not kept, built anew each time.
            b"HTTP/1.1 200 OK\r\nSet-Cookie: x\r\nSet-Cookie: y\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nSet-Cookie: x\r\nSet-Cookie: y\r\nTransfer-Encoding: chunked\r\n\r\n",
            // The header kept at the end of the cache's map, sent: not kept.
            b"HTTP/1.1 200 OK\r\nMax-Forwards: 1\r\nKeep-Alive: timeout=5\r\nContent-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nMax-Forwards: 1\r\nKeep-Alive: timeout=5\r\nContent-Encoding: gzip\r\n\r\n",
        ];
        let mut cache = HeadCache::default();
        for _ in 0..2 {
            for h in heads {
                let (n, fresh, framing, keep, codings) =
                    parse_head(h, false, None).unwrap().unwrap();
                let (m, copied, framing2, keep2, codings2) =
                    parse_head(h, false, Some(&mut cache)).unwrap().unwrap();
                assert_eq!((n, framing, keep, codings), (m, framing2, keep2, codings2));
                assert_eq!(fresh.status, copied.status);
                assert_eq!(fresh.reason, copied.reason);
                assert_eq!(fresh.content_length, copied.content_length);
                assert_eq!(fresh.keep_alive_timeout, copied.keep_alive_timeout);
                assert_eq!(listed(&fresh.headers), listed(&copied.headers));
                // A header added keeps the same order.
                let (mut a, mut b) = (fresh.headers, copied.headers);
                a.insert("x-pcch-peer", HeaderValue::from_static("p"));
                b.insert("x-pcch-peer", HeaderValue::from_static("p"));
                assert_eq!(listed(&a), listed(&b));
            }
        }
        // A bad length and a bad value among the same names are reported as before.
        let bad: [(&[u8], HttpError); 2] = [
            (
                b"HTTP/1.1 200 OK\r\nServer: a\r\nDate: 1\r\nContent-Length: x\r\nConnection: close\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nServer: a\r\nDate: \x7f\r\nContent-Length: 1\r\nConnection: close\r\n\r\n",
                HttpError::BadHeader,
            ),
        ];
        for (h, e) in bad {
            parse_head(heads[0], false, Some(&mut cache))
                .unwrap()
                .unwrap();
            assert_eq!(parse_head(h, false, None).unwrap_err(), e);
            assert_eq!(parse_head(h, false, Some(&mut cache)).unwrap_err(), e);
            // And the next head is read as before.
            for next in [heads[1], heads[0]] {
                let (n, fresh, framing, keep, _) = parse_head(next, false, None).unwrap().unwrap();
                let (m, copied, framing2, keep2, _) =
                    parse_head(next, false, Some(&mut cache)).unwrap().unwrap();
                assert_eq!((n, framing, keep), (m, framing2, keep2));
                assert_eq!(fresh.content_length, copied.content_length);
                assert_eq!(listed(&fresh.headers), listed(&copied.headers));
            }
        }
    }

    #[test]
    fn a_head_with_other_names_is_kept_from_the_second_in_a_row() {
        let a: &[u8] = b"HTTP/1.1 200 OK\r\nServer: a\r\nContent-Length: 0\r\n\r\n";
        let b: &[u8] = b"HTTP/1.1 200 OK\r\nDate: 1\r\nServer: b\r\nContent-Length: 0\r\n\r\n";
        let mut cache = HeadCache::default();
        let kept = |c: &HeadCache| c.raw.clone();
        parse_head(a, false, Some(&mut cache)).unwrap().unwrap();
        assert_eq!(kept(&cache), b"ServerContent-Length");
        // Alternating heads: `a` stays kept.
        for _ in 0..3 {
            let (_, h, ..) = parse_head(b, false, Some(&mut cache)).unwrap().unwrap();
            assert_eq!(h.headers["server"], "b");
            assert_eq!(kept(&cache), b"ServerContent-Length");
            let (_, h, ..) = parse_head(a, false, Some(&mut cache)).unwrap().unwrap();
            assert_eq!(h.headers["server"], "a");
        }
        // `b` twice in a row: kept from the second on.
        parse_head(b, false, Some(&mut cache)).unwrap().unwrap();
        assert_eq!(kept(&cache), b"ServerContent-Length");
        parse_head(b, false, Some(&mut cache)).unwrap().unwrap();
        assert_eq!(kept(&cache), b"DateServerContent-Length");
        let (_, h, ..) = parse_head(b, false, Some(&mut cache)).unwrap().unwrap();
        assert_eq!(listed(&h.headers).len(), 3);
    }

    /// Reads a whole response: (head, body, end, bytes left over).
    fn read_all(p: &mut ResponseParser, mut input: &[u8]) -> (Box<Head>, Vec<u8>, End, usize) {
        let mut head = None;
        let mut body = Vec::new();
        loop {
            match p.step(&mut input).unwrap() {
                Step::NeedMore => panic!("incomplete"),
                Step::Head(h) => head = Some(h),
                Step::Data(d) => body.extend_from_slice(d),
                Step::End(e) => return (head.unwrap(), body, e, input.len()),
            }
        }
    }

    #[test]
    fn content_length() {
        let mut p = ResponseParser::new(false);
        let i = whole(&mut p, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!(
            i,
            ResponseInfo {
                status: 200,
                body_len: 3,
                keep_alive: true,
                extra: 0
            }
        );
    }

    #[test]
    fn interim_responses_are_skipped() {
        let mut p = ResponseParser::new(false);
        let (h, body, end, _) = read_all(
            &mut p,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n\
              HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        );
        assert_eq!((h.status.as_u16(), h.interim), (201, 2));
        assert_eq!(body, b"ok");
        assert!(end.keep_alive);
        // Split inside the interim head.
        let mut p = ResponseParser::new(false);
        assert!(matches!(
            p.step(&mut &b"HTTP/1.1 103 Early"[..]).unwrap(),
            Step::NeedMore
        ));
        let mut rest: &[u8] = b" Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(p.step(&mut rest).unwrap(), Step::Head(h) if h.status == 200));
        assert!(matches!(p.step(&mut rest).unwrap(), Step::End(_)));
    }

    #[test]
    fn connection_close_and_http10() {
        let mut p = ResponseParser::new(false);
        let i = whole(
            &mut p,
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(!i.keep_alive);
        p.reset(false);
        let i = whole(&mut p, b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx");
        assert!(!i.keep_alive);
        p.reset(false);
        let i = whole(
            &mut p,
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 1\r\n\r\nx",
        );
        assert!(i.keep_alive);
        p.reset(false);
        let (h, ..) = read_all(
            &mut p,
            b"HTTP/1.1 200 OK\r\nKeep-Alive: max=3, timeout=7\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(h.keep_alive_timeout, Some(Duration::from_secs(7)));
    }

    #[test]
    fn chunked_with_trailer() {
        let mut p = ResponseParser::new(false);
        let (_, body, end, left) = read_all(
            &mut p,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\n",
        );
        assert_eq!(body, b"hello!");
        assert!(end.keep_alive);
        assert_eq!(left, 0);
        assert_eq!(end.trailers.unwrap()["x-t"], "1");
    }

    #[test]
    fn until_close() {
        let mut p = ResponseParser::new(false);
        assert_eq!(
            p.feed(b"HTTP/1.1 200 OK\r\n\r\nabc").unwrap(),
            Parse::Incomplete
        );
        let end = p.eof().unwrap();
        assert!(!end.keep_alive);
        assert_eq!(p.body_len, 3);
    }

    #[test]
    fn no_body_statuses_and_extra_bytes() {
        let mut p = ResponseParser::new(false);
        let i = whole(
            &mut p,
            b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
        );
        assert_eq!((i.status, i.body_len), (204, 0));
        p.reset(false);
        let i = whole(
            &mut p,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        );
        assert_eq!((i.status, i.body_len, i.keep_alive), (304, 0, true));
        p.reset(false);
        let i = whole(
            &mut p,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA",
        );
        assert_eq!((i.extra, i.keep_alive), (5, false));
        let mut h = ResponseParser::for_head();
        let (head, body, ..) = read_all(&mut h, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        assert!(body.is_empty());
        assert_eq!(head.content_length, Some(100));
    }

    #[test]
    fn transfer_encoding_beats_content_length() {
        let mut p = ResponseParser::new(false);
        let (_, body, end, _) = read_all(
            &mut p,
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        );
        assert_eq!(body, b"ok");
        assert!(!end.keep_alive);
    }

    #[test]
    fn errors() {
        assert_eq!(
            ResponseParser::new(false).feed(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(HttpError::BadStatusLine)
        );
        assert_eq!(
            ResponseParser::new(false).feed(b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n"),
            Err(HttpError::BadHeader)
        );
        assert_eq!(
            ResponseParser::new(false)
                .feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(HttpError::BadChunk)
        );
        assert_eq!(
            ResponseParser::new(false).feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n"),
            Err(HttpError::BadContentLength)
        );
        assert_eq!(
            ResponseParser::new(false).feed(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Err(HttpError::BadContentLength)
        );
        let mut p = ResponseParser::new(false);
        p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
            .unwrap();
        assert_eq!(p.eof().unwrap_err(), HttpError::Truncated);
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.extend(vec![b'a'; MAX_HEAD + 10]);
        assert_eq!(
            ResponseParser::new(false).feed(&long),
            Err(HttpError::HeadTooLarge)
        );
        assert!(!ResponseParser::new(false).started());
    }

    #[test]
    fn http09_when_allowed() {
        let mut p = ResponseParser::new(false).allow_http09(true);
        let mut input: &[u8] = b"<html>hi";
        let Step::Head(h) = p.step(&mut input).unwrap() else {
            panic!()
        };
        assert_eq!((h.status.as_u16(), h.version), (200, Version::HTTP_09));
        assert!(matches!(
            p.step(&mut input).unwrap(),
            Step::Data(b"<html>hi")
        ));
        assert!(!p.eof().unwrap().keep_alive);
        let mut p = ResponseParser::new(false);
        assert_eq!(p.feed(b"<ht").unwrap_err(), HttpError::BadStatusLine);
        let mut p = ResponseParser::new(false);
        assert_eq!(p.feed(b"HT").unwrap(), Parse::Incomplete);
        assert_eq!(p.feed(b"TP/1.1 200 OK\r\n\r\n").unwrap(), Parse::Incomplete);
    }

    #[test]
    fn request_bytes() {
        assert_eq!(
            get_request("h", 8080, ""),
            b"GET / HTTP/1.1\r\nHost: h:8080\r\nUser-Agent: keepalive-demo\r\n\r\n"
        );
        let req = http::Request::post("http://h/x?y=1")
            .header("host", "h")
            .body(b"abc".to_vec())
            .unwrap();
        let mut out = Vec::new();
        encode_request(&req, "/x?y=1", &mut out);
        assert_eq!(out, b"POST /x?y=1 HTTP/1.1\r\nhost: h\r\n\r\nabc");
    }

    #[test]
    fn gzip_and_deflate() {
        use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
        use flate2::Compression;
        let text = b"hello hello hello hello".repeat(100);
        let mut g = GzEncoder::new(Vec::new(), Compression::default());
        g.write_all(&text).unwrap();
        let gz = g.finish().unwrap();
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&text).unwrap();
        let zl = z.finish().unwrap();
        let mut r = DeflateEncoder::new(Vec::new(), Compression::default());
        r.write_all(&text).unwrap();
        let raw = r.finish().unwrap();
        for (coding, data) in [("gzip", gz), ("deflate", zl), ("deflate", raw)] {
            let mut d = ContentDecoder::for_coding(coding).unwrap();
            let mut out = Vec::new();
            for piece in data.chunks(7) {
                d.decode(piece, &mut out).unwrap();
            }
            d.finish(&mut out).unwrap();
            assert_eq!(out, text, "{coding}");
        }
        assert!(ContentDecoder::for_coding("br").is_none());
        // Two members, fed a byte at a time; then a trailer that lies.
        let mut g = GzEncoder::new(Vec::new(), Compression::default());
        g.write_all(b"one ").unwrap();
        let mut two = g.finish().unwrap();
        let mut g = GzEncoder::new(Vec::new(), Compression::default());
        g.write_all(b"two").unwrap();
        two.extend(g.finish().unwrap());
        let mut d = ContentDecoder::for_coding("gzip").unwrap();
        let mut out = Vec::new();
        for b in &two {
            d.decode(std::slice::from_ref(b), &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        assert_eq!(out, b"one two");
        let mut lying = two.clone();
        let at = lying.len() - 5;
        lying[at] ^= 0xff;
        let mut d = ContentDecoder::for_coding("gzip").unwrap();
        assert!(d.decode(&lying, &mut Vec::new()).is_err());
        let mut d = ContentDecoder::for_coding("gzip").unwrap();
        let mut out = Vec::new();
        assert!(d.decode(b"not gzip at all", &mut out).is_err());
    }

    /// Bytes that look like a response head, to reach the parser's deeper states.
    fn responseish() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
            Just(b"HTTP/1.0 101 x\r\n".to_vec()),
            Just(b"HTTP/1.1 103 Early Hints\r\n".to_vec()),
            Just(b"Content-Length: 5\r\n".to_vec()),
            Just(b"Content-Length: 99999999999999999999\r\n".to_vec()),
            Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
            Just(b"Connection: close\r\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"ffffffffffffffffff\r\n".to_vec()),
            Just(b"0\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..12),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        /// Whatever the bytes and however they are cut, the parser answers (more, done or
        /// an error) and never panics; once it has answered done or an error, that stands.
        #[test]
        fn garbage_never_panics(
            input in prop_oneof![proptest::collection::vec(any::<u8>(), 0..800), responseish()],
            cuts in proptest::collection::vec(0usize..900, 0..6),
            head in any::<bool>(),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
            cuts.push(input.len());
            cuts.sort_unstable();
            let mut p = ResponseParser::new(head);
            let mut last = 0;
            for c in cuts {
                match p.feed(&input[last..c]) {
                    Ok(Parse::Incomplete) => last = c,
                    Ok(Parse::Done(_)) | Err(_) => break,
                }
            }
            let _ = p.eof();
        }

        /// Split anywhere, in any number of pieces, the answer is the same.
        #[test]
        fn any_split_gives_the_same_answer(cuts in proptest::collection::vec(0usize..300, 0..6), chunked in any::<bool>()) {
            let msg: &[u8] = if chunked {
                b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 9\r\n\r\nwikipedia"
            };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (msg.len() + 1)).collect();
            cuts.sort_unstable();
            let mut p = ResponseParser::new(false);
            let mut last = 0;
            let mut result = Parse::Incomplete;
            for c in cuts.into_iter().chain([msg.len()]) {
                if c < last || (c == last && last > 0) { continue; }
                prop_assert_eq!(result, Parse::Incomplete);
                result = p.feed(&msg[last..c]).unwrap();
                last = c;
            }
            prop_assert_eq!(result, Parse::Done(ResponseInfo { status: 200, body_len: 9, keep_alive: true, extra: 0 }));
        }
    }
}
