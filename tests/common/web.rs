//! Helpers for the HTTP client's tests: a scripted server on a thread (127.0.0.1, port 0)
//! and a driver that sends requests through an `HttpClient` in a kernel and collects the
//! responses.
#![allow(dead_code)]

use keepalive::reactor::{Ctx, Kernel, Session};
use keepalive::{HttpClient, HttpClientBuilder, RequestPacket, Submit};
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// One request as the server read it.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// The request line.
    pub line: String,
    /// Header lines, as sent.
    pub headers: Vec<(String, String)>,
    /// The body (Content-Length framed).
    pub body: Vec<u8>,
    /// Which connection (0-based, in accept order) it came on.
    pub conn: usize,
}

impl Seen {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One connection's end of the scripted server.
pub struct Peer {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
    pub conn: usize,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Peer {
    /// Reads one request (head and Content-Length body); `None` at end of stream.
    pub fn request(&mut self) -> Option<Seen> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let mut seen = Seen {
            line: line.trim_end().to_owned(),
            conn: self.conn,
            ..Seen::default()
        };
        loop {
            let mut h = String::new();
            if self.reader.read_line(&mut h).ok()? == 0 {
                return None;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                seen.headers
                    .push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let len: usize = seen
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).ok()?;
        seen.body = body;
        self.seen.lock().unwrap().push(seen.clone());
        Some(seen)
    }

    /// Writes bytes (errors ignored: the client may have gone).
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }
}

/// A server thread that runs `handler` for each connection it accepts, in order.
pub struct Server {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    accepted: Arc<Mutex<usize>>,
    /// Connections whose handler returned (and whose socket is closed).
    finished: Arc<(Mutex<usize>, Condvar)>,
}

impl Server {
    /// Starts it. Each connection runs on its own thread.
    pub fn start(handler: impl Fn(&mut Peer) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(Mutex::new(0));
        let handler = Arc::new(handler);
        let finished = Arc::new((Mutex::new(0), Condvar::new()));
        let (s2, a2, f2) = (seen.clone(), accepted.clone(), finished.clone());
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                *a2.lock().unwrap() += 1;
                let h = handler.clone();
                let seen = s2.clone();
                let fin = f2.clone();
                std::thread::spawn(move || {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    let mut peer = Peer {
                        reader: BufReader::new(stream.try_clone().unwrap()),
                        stream,
                        conn: n,
                        seen,
                    };
                    h(&mut peer);
                    drop(peer);
                    let (m, c) = &*fin;
                    *m.lock().unwrap() += 1;
                    c.notify_all();
                });
            }
        });
        Server {
            port,
            seen,
            accepted,
            finished,
        }
    }

    /// Waits (at most 10 s) until every connection accepted so far has ended on the
    /// server's side: its handler returned and its socket is closed. Servers that answer
    /// until the end of the stream end only when the client closed the connection.
    pub fn wait_all_closed(&self) {
        let want = self.connections();
        let (m, c) = &*self.finished;
        let (n, timeout) = c
            .wait_timeout_while(m.lock().unwrap(), Duration::from_secs(10), |n| *n < want)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "{} of {want} connections still open",
            want - *n
        );
    }

    /// A server that answers every request on every connection with `response` (bytes
    /// made for the request by the closure).
    pub fn answering(response: impl Fn(&Seen) -> Vec<u8> + Send + Sync + 'static) -> Server {
        Server::start(move |p| {
            while let Some(req) = p.request() {
                let r = response(&req);
                p.send(&r);
            }
        })
    }

    /// `http://127.0.0.1:PORT` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests read so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        *self.accepted.lock().unwrap()
    }
}

/// A `200 OK` with a Content-Length body.
pub fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A GET request.
pub fn get(url: &str) -> http::Request<Vec<u8>> {
    http::Request::get(url).body(Vec::new()).unwrap()
}

/// What a run collected: every response event, in order.
#[derive(Default)]
pub struct Got {
    pub responses: Vec<(RequestPacket, http::Response<Vec<u8>>)>,
    /// Streaming events: chunk (`None` at the end).
    pub chunks: Vec<Option<Vec<u8>>>,
    pub progress: Vec<keepalive::Progress>,
    /// The client's counts at the end.
    pub stats: keepalive::ClientStats,
    /// The manager's counts at the end.
    pub pool: keepalive::Counters,
}

/// Sends `submits` one after another (each after the previous response) through a client
/// built from `builder`, then shuts the client down; returns what came back.
pub fn run_serial(builder: HttpClientBuilder, submits: Vec<Submit>) -> Got {
    run(builder, submits, true)
}

/// Sends all of `submits` at once.
pub fn run_parallel(builder: HttpClientBuilder, submits: Vec<Submit>) -> Got {
    run(builder, submits, false)
}

struct Driver {
    ua: HttpClient,
    queue: Vec<Submit>,
    expected: usize,
    got: Rc<RefCell<Got>>,
    serial: bool,
}

fn next(ctx: &mut Ctx<'_, Driver>) {
    if ctx.heap().queue.is_empty() {
        return;
    }
    let s = ctx.heap().queue.remove(0);
    let ua = ctx.heap().ua.clone();
    ua.submit(ctx, s).expect("submit");
}

fn run(builder: HttpClientBuilder, submits: Vec<Submit>, serial: bool) -> Got {
    let mut kernel = Kernel::new().unwrap();
    let ua = builder.build(&mut kernel).unwrap();
    let got = Rc::new(RefCell::new(Got::default()));
    let expected = submits.len();
    kernel
        .create(
            Session::new(Driver {
                ua,
                queue: submits,
                expected,
                got: got.clone(),
                serial,
            })
            .on("_start", |ctx: &mut Ctx<'_, Driver>| {
                if ctx.heap().serial {
                    next(ctx);
                } else {
                    while !ctx.heap().queue.is_empty() {
                        next(ctx);
                    }
                }
            })
            .on("response", |ctx: &mut Ctx<'_, Driver>| {
                let packet: RequestPacket = ctx.take_arg(0).unwrap();
                let response: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
                let streaming_chunk = ctx.args().opt::<Option<Vec<u8>>>(2).cloned();
                let got = ctx.heap().got.clone();
                let mut g = got.borrow_mut();
                if let Some(chunk) = streaming_chunk {
                    let last = chunk.is_none();
                    g.chunks.push(chunk);
                    if !last {
                        return;
                    }
                }
                g.responses.push((packet, response));
                let done = g.responses.len();
                drop(g);
                if done == ctx.heap().expected {
                    let ua = ctx.heap().ua.clone();
                    {
                        let mut g = got.borrow_mut();
                        g.stats = ua.stats();
                        g.pool = ua.manager().stats().counters;
                    }
                    ua.shutdown(ctx);
                } else if ctx.heap().serial {
                    next(ctx);
                }
            })
            .on("progress", |ctx: &mut Ctx<'_, Driver>| {
                let p: keepalive::Progress = *ctx.arg(1).unwrap();
                ctx.heap().got.borrow_mut().progress.push(p);
            }),
        )
        .unwrap();
    kernel.run().unwrap();
    Rc::try_unwrap(got)
        .ok()
        .expect("the driver is gone")
        .into_inner()
}

/// The client error in a response, if it is an error response.
pub fn client_error(r: &http::Response<Vec<u8>>) -> Option<&keepalive::ClientError> {
    r.extensions().get::<keepalive::ClientError>()
}

/// The `X-PCCH-Errmsg` header.
pub fn errmsg(r: &http::Response<Vec<u8>>) -> String {
    r.headers()
        .get("x-pcch-errmsg")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}
