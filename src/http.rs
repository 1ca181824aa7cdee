//! A small HTTP/1.1 client codec: building a `GET` request and finding where a response
//! ends (`Content-Length`, chunked, or the end of the connection), and whether the
//! connection may be kept alive afterwards.
//!
//! It is pure code, fed with the bytes a [`ReadWrite`](reactor::wheel::ReadWrite) wheel delivers,
//! and made for keep-alive clients on top of the [`Keepalive`](crate::Keepalive) manager:
//! the demo and the tests use it. Bodies are counted, not kept.
//!
//! ```
//! use keepalive::http::{Parse, ResponseParser};
//!
//! let mut p = ResponseParser::new();
//! assert_eq!(p.feed(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), Parse::Incomplete);
//! match p.feed(b"ngth: 5\r\n\r\nhello").unwrap() {
//!     Parse::Done(r) => {
//!         assert_eq!((r.status, r.body_len, r.keep_alive, r.extra), (200, 5, true, 0));
//!     }
//!     Parse::Incomplete => unreachable!(),
//! }
//! ```

use std::fmt;

/// A `GET` request for `path` on `host`:`port`, HTTP/1.1 with keep-alive.
pub fn get_request(host: &str, port: u16, path: &str) -> Vec<u8> {
    let path = if path.is_empty() { "/" } else { path };
    format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: keepalive-demo\r\n\r\n")
        .into_bytes()
}

/// Why a response could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The status line is not `HTTP/1.x NNN ...`.
    BadStatusLine,
    /// A header line has no colon, or a number does not parse.
    BadHeader,
    /// A chunk-size line is not hexadecimal.
    BadChunk,
    /// The head is larger than the limit (64 KiB).
    HeadTooLarge,
    /// The connection ended before the response was complete.
    Truncated,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpError::BadStatusLine => "malformed status line",
            HttpError::BadHeader => "malformed header",
            HttpError::BadChunk => "malformed chunk size",
            HttpError::HeadTooLarge => "response head too large",
            HttpError::Truncated => "connection closed before the response ended",
        })
    }
}

impl std::error::Error for HttpError {}

/// A complete response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseInfo {
    /// The status code.
    pub status: u16,
    /// Body bytes (after de-chunking).
    pub body_len: u64,
    /// Whether the connection may carry another request (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`, and a body whose
    /// end was known).
    pub keep_alive: bool,
    /// Bytes of the last chunk fed that came after the response (a server that sends more
    /// than asked for). A keep-alive client should not reuse such a connection.
    pub extra: usize,
}

/// The result of feeding bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parse {
    /// More bytes are needed.
    Incomplete,
    /// The response is complete.
    Done(ResponseInfo),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Fixed(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    UntilClose,
    Done,
}

const MAX_HEAD: usize = 64 * 1024;

/// Finds the end of one HTTP/1.1 response in a byte stream. Reuse it for the next response
/// with [`reset`](ResponseParser::reset).
#[derive(Clone, Debug)]
pub struct ResponseParser {
    state: State,
    /// Head bytes (or a partial chunk-size/trailer line) carried between feeds.
    line: Vec<u8>,
    status: u16,
    keep_alive: bool,
    body_len: u64,
    seen: bool,
    head_request: bool,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseParser {
    /// A parser for the response to a `GET`.
    pub fn new() -> Self {
        ResponseParser {
            state: State::Head,
            line: Vec::new(),
            status: 0,
            keep_alive: true,
            body_len: 0,
            seen: false,
            head_request: false,
        }
    }

    /// A parser for the response to a `HEAD` (no body whatever the headers say).
    pub fn for_head() -> Self {
        ResponseParser {
            head_request: true,
            ..Self::new()
        }
    }

    /// Ready for the next response on the same connection.
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.line.clear();
        self.status = 0;
        self.keep_alive = true;
        self.body_len = 0;
        self.seen = false;
    }

    /// Whether any byte of the response has arrived.
    pub fn started(&self) -> bool {
        self.seen
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<Parse, HttpError> {
        if !data.is_empty() {
            self.seen = true;
        }
        loop {
            match self.state {
                State::Done => {
                    return Ok(Parse::Done(self.info(data.len())));
                }
                State::Head => {
                    let Some(used) = self.take_head(data)? else {
                        return Ok(Parse::Incomplete);
                    };
                    data = &data[used..];
                }
                State::Fixed(left) => {
                    let n = left.min(data.len() as u64);
                    self.body_len += n;
                    data = &data[n as usize..];
                    if left == n {
                        self.state = State::Done;
                    } else {
                        self.state = State::Fixed(left - n);
                        return Ok(Parse::Incomplete);
                    }
                }
                State::UntilClose => {
                    self.body_len += data.len() as u64;
                    return Ok(Parse::Incomplete);
                }
                State::ChunkSize | State::ChunkDataEnd | State::Trailers => {
                    let Some((line, used)) = self.take_line(data)? else {
                        return Ok(Parse::Incomplete);
                    };
                    data = &data[used..];
                    self.chunk_line(&line)?;
                }
                State::ChunkData(left) => {
                    let n = left.min(data.len() as u64);
                    self.body_len += n;
                    data = &data[n as usize..];
                    if left == n {
                        self.state = State::ChunkDataEnd;
                    } else {
                        self.state = State::ChunkData(left - n);
                        return Ok(Parse::Incomplete);
                    }
                }
            }
        }
    }

    /// The connection ended: a body delimited by the close is complete now; anything else
    /// unfinished is [`HttpError::Truncated`].
    pub fn eof(&mut self) -> Result<Parse, HttpError> {
        match self.state {
            State::UntilClose => {
                self.state = State::Done;
                Ok(Parse::Done(self.info(0)))
            }
            State::Done => Ok(Parse::Done(self.info(0))),
            _ => Err(HttpError::Truncated),
        }
    }

    fn info(&self, extra: usize) -> ResponseInfo {
        ResponseInfo {
            status: self.status,
            body_len: self.body_len,
            keep_alive: self.keep_alive && extra == 0,
            extra,
        }
    }

    /// Collects one CRLF-terminated line across feeds: `(line, bytes used)`.
    fn take_line(&mut self, data: &[u8]) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
        match data.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&data[..i]);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Ok(Some((line, i + 1)))
            }
            None => {
                self.line.extend_from_slice(data);
                if self.line.len() > MAX_HEAD {
                    return Err(HttpError::HeadTooLarge);
                }
                Ok(None)
            }
        }
    }

    fn chunk_line(&mut self, line: &[u8]) -> Result<(), HttpError> {
        match self.state {
            State::ChunkSize => {
                let hex = line.split(|&b| b == b';').next().unwrap_or(&[]);
                let hex = std::str::from_utf8(hex).map_err(|_| HttpError::BadChunk)?;
                let size = u64::from_str_radix(hex.trim(), 16).map_err(|_| HttpError::BadChunk)?;
                self.state = if size == 0 {
                    State::Trailers
                } else {
                    State::ChunkData(size)
                };
            }
            State::ChunkDataEnd => {
                if !line.is_empty() {
                    return Err(HttpError::BadChunk);
                }
                self.state = State::ChunkSize;
            }
            State::Trailers if line.is_empty() => self.state = State::Done,
            _ => {}
        }
        Ok(())
    }

    /// Reads the head; returns the bytes of `data` it used once the head is complete.
    fn take_head(&mut self, data: &[u8]) -> Result<Option<usize>, HttpError> {
        if self.line.is_empty() {
            // The usual case: the whole head arrives in one read.
            if let Some(used) = self.parse_head(data)? {
                return Ok(Some(used));
            }
            self.line.extend_from_slice(data);
        } else {
            let carried = self.line.len();
            self.line.extend_from_slice(data);
            let buf = std::mem::take(&mut self.line);
            if let Some(used) = self.parse_head(&buf)? {
                return Ok(Some(used - carried));
            }
            self.line = buf;
        }
        if self.line.len() > MAX_HEAD {
            return Err(HttpError::HeadTooLarge);
        }
        Ok(None)
    }

    /// Parses a head from the start of `buf` in one pass. `None` (and no change) if the
    /// blank line that ends it is not there yet; otherwise the head's length.
    fn parse_head(&mut self, buf: &[u8]) -> Result<Option<usize>, HttpError> {
        let mut pos = 0;
        let mut first = true;
        let mut http10 = false;
        let mut status = 0u16;
        let mut length = None;
        let mut chunked = false;
        let mut conn_close = false;
        let mut conn_keep = false;
        loop {
            let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
                if buf.len() > MAX_HEAD {
                    return Err(HttpError::HeadTooLarge);
                }
                return Ok(None);
            };
            let mut line = &buf[pos..pos + nl];
            pos += nl + 1;
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if first {
                first = false;
                (http10, status) = status_line(line)?;
                continue;
            }
            if line.is_empty() {
                break;
            }
            let colon = memchr::memchr(b':', line).ok_or(HttpError::BadHeader)?;
            let name = &line[..colon];
            let value = trim(&line[colon + 1..]);
            match name.len() {
                14 if name.eq_ignore_ascii_case(b"content-length") => {
                    let n = std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or(HttpError::BadHeader)?;
                    length = Some(n);
                }
                17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                    chunked = value
                        .split(|&b| b == b',')
                        .any(|t| trim(t).eq_ignore_ascii_case(b"chunked"));
                }
                10 if name.eq_ignore_ascii_case(b"connection") => {
                    for t in value.split(|&b| b == b',') {
                        let t = trim(t);
                        conn_close |= t.eq_ignore_ascii_case(b"close");
                        conn_keep |= t.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
                _ => {}
            }
        }
        self.status = status;
        self.keep_alive = if http10 {
            conn_keep && !conn_close
        } else {
            !conn_close
        };
        let no_body = self.head_request || status < 200 || status == 204 || status == 304;
        self.state = if no_body {
            State::Done
        } else if chunked {
            State::ChunkSize
        } else if let Some(n) = length {
            if n == 0 {
                State::Done
            } else {
                State::Fixed(n)
            }
        } else {
            self.keep_alive = false;
            State::UntilClose
        };
        Ok(Some(pos))
    }
}

/// `HTTP/1.x NNN reason`: (is HTTP/1.0, status).
fn status_line(line: &[u8]) -> Result<(bool, u16), HttpError> {
    let http10 = match line.get(..9) {
        Some(b"HTTP/1.1 ") => false,
        Some(b"HTTP/1.0 ") => true,
        _ => return Err(HttpError::BadStatusLine),
    };
    match line.get(9..12) {
        Some(&[a, b, c]) if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            if code < 100 || matches!(line.get(12), Some(d) if *d != b' ') {
                return Err(HttpError::BadStatusLine);
            }
            Ok((http10, code))
        }
        _ => Err(HttpError::BadStatusLine),
    }
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
    fn content_length() {
        let mut p = ResponseParser::new();
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
    fn connection_close_and_http10() {
        let mut p = ResponseParser::new();
        let i = whole(
            &mut p,
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(!i.keep_alive);
        p.reset();
        let i = whole(&mut p, b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx");
        assert!(!i.keep_alive);
        p.reset();
        let i = whole(
            &mut p,
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx",
        );
        assert!(i.keep_alive);
    }

    #[test]
    fn chunked_with_trailer() {
        let mut p = ResponseParser::new();
        let i = whole(
            &mut p,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\n",
        );
        assert_eq!((i.body_len, i.keep_alive), (6, true));
    }

    #[test]
    fn until_close() {
        let mut p = ResponseParser::new();
        assert_eq!(
            p.feed(b"HTTP/1.1 200 OK\r\n\r\nabc").unwrap(),
            Parse::Incomplete
        );
        match p.eof().unwrap() {
            Parse::Done(i) => assert_eq!((i.body_len, i.keep_alive), (3, false)),
            Parse::Incomplete => panic!(),
        }
    }

    #[test]
    fn no_body_statuses_and_extra_bytes() {
        let mut p = ResponseParser::new();
        let i = whole(
            &mut p,
            b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
        );
        assert_eq!((i.status, i.body_len), (204, 0));
        p.reset();
        let i = whole(
            &mut p,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA",
        );
        assert_eq!((i.extra, i.keep_alive), (5, false));
        let mut h = ResponseParser::for_head();
        let i = whole(&mut h, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        assert_eq!(i.body_len, 0);
    }

    #[test]
    fn errors() {
        assert_eq!(
            ResponseParser::new().feed(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(HttpError::BadStatusLine)
        );
        assert_eq!(
            ResponseParser::new().feed(b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n"),
            Err(HttpError::BadHeader)
        );
        assert_eq!(
            ResponseParser::new()
                .feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(HttpError::BadChunk)
        );
        let mut p = ResponseParser::new();
        p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
            .unwrap();
        assert_eq!(p.eof(), Err(HttpError::Truncated));
        assert_eq!(
            ResponseParser::new().feed(&vec![b'a'; MAX_HEAD + 10]),
            Err(HttpError::HeadTooLarge)
        );
        assert!(!ResponseParser::new().started());
    }

    #[test]
    fn request_bytes() {
        assert_eq!(
            get_request("h", 8080, ""),
            b"GET / HTTP/1.1\r\nHost: h:8080\r\nUser-Agent: keepalive-demo\r\n\r\n"
        );
    }

    /// Bytes that look like a response head, to reach the parser's deeper states.
    fn responseish() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
            Just(b"HTTP/1.0 101 x\r\n".to_vec()),
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
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
            cuts.push(input.len());
            cuts.sort_unstable();
            let mut p = ResponseParser::new();
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
        fn any_split_gives_the_same_answer(cuts in proptest::collection::vec(0usize..200, 0..6), chunked in any::<bool>()) {
            let msg: &[u8] = if chunked {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 9\r\n\r\nwikipedia"
            };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (msg.len() + 1)).collect();
            cuts.sort_unstable();
            let mut p = ResponseParser::new();
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
