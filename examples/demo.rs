//! The main demo: HTTP/1.1 GETs through the keep-alive connection manager.
//!
//! With no arguments it starts an embedded HTTP/1.1 keep-alive server (a `Server::TCP`
//! session on 127.0.0.1, port 0) in the same kernel, and fetches from it. With
//! `--url http://HOST:PORT/PATH` it fetches from a real server instead (`https://` works
//! too, with the system's web roots).
//!
//! ```text
//! cargo run --release --example demo -- [--url URL] [-n REQUESTS] [-c IN_FLIGHT] [--timeout SECS] [--response-timeout SECS]
//! ```
//!
//! The requests go through the HTTP client ([`HttpClient`], POE::Component::Client::HTTP)
//! on a keep-alive manager shared with the demo: `C` requests are in flight, each one sent
//! as the previous one of its worker is answered, so sockets are reused through the pool.
//! A response with `Connection: close` closes the socket instead. A GET that fails on a
//! reused connection before any response byte (the server closed it while it was idle) is
//! retried once on a fresh connection by the client, as Go's and hyper's clients do. A
//! request that has not been answered `--response-timeout` seconds (30 by default) after
//! it was sent is an error, so a server that never answers cannot hang the demo;
//! `--timeout` (30 s) bounds getting a connection (lookup, wait, connect and TLS
//! handshake). The last line printed is:
//!
//! ```text
//! requests=N errors=E new_connections=K reused=R rps=X p50_us=A p99_us=B
//! ```

use keepalive::reactor::component::ServerTcpBuilder;
use keepalive::reactor::filter::Stream as StreamFilter;
use keepalive::reactor::{Ctx, HandlerError, Kernel, Session};
use keepalive::{ClientError, HttpClient, Keepalive, RequestPacket, Submit};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The embedded server closes a connection after this many requests, as nginx's
/// `keepalive_requests` does, so the pool also shows connection renewal.
const SERVER_MAX_REQUESTS: u32 = 100;
const BODY: &[u8] = b"Hello from the embedded keep-alive server.\n";

struct Options {
    url: Option<String>,
    requests: u64,
    concurrency: usize,
    response_timeout: Duration,
    connect_timeout: Duration,
    keep_going: bool,
}

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};

const USAGE: &str = "\
Usage: demo [--url URL] [-n REQUESTS] [-c IN_FLIGHT] [--timeout SECS] [--response-timeout SECS] [--keep-going]

HTTP/1.1 GETs through the keep-alive manager and the HTTP client, from an embedded server
or from --url; the last line printed is the summary. On long runs a progress line goes to
standard error every second; repeated errors are counted, not repeated; when the first
requests all fail the same way, the run stops there.

Options:
  --url URL                 fetch from URL (http or https) instead of the embedded server
  -n REQUESTS               how many GETs (default 10000)
  -c IN_FLIGHT              how many at once (default 8)
  --timeout SECS            bound on getting a connection (default 30)
  --response-timeout SECS   bound on each request (default 30)
  --keep-going              make every request even when the first ones all fail
  -h, --help                print this help";

/// A positive, finite number of seconds.
fn secs(p: &mut cli::Parser, option: &str) -> Result<Duration, cli::Error> {
    let s: f64 = cli::value(p, option)?;
    if s > 0.0 && s.is_finite() {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!("{option} needs a positive number of seconds").into())
    }
}

/// A positive count.
fn count<T: std::str::FromStr + PartialOrd + Default>(
    p: &mut cli::Parser,
    option: &str,
) -> Result<T, cli::Error> {
    let raw = p.value()?;
    match raw.to_string_lossy().parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(format!("{option} needs a positive number").into()),
    }
}

fn options() -> Options {
    cli::parse(USAGE, |p| {
        let mut o = Options {
            url: None,
            requests: 10_000,
            concurrency: 8,
            response_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            keep_going: false,
        };
        while let Some(arg) = p.next()? {
            match arg {
                Long("url") => o.url = Some(cli::text(p.value()?)),
                Short('n') => o.requests = count(p, "-n")?,
                Short('c') => o.concurrency = count(p, "-c")?,
                Long("timeout") => o.connect_timeout = secs(p, "--timeout")?,
                Long("response-timeout") => o.response_timeout = secs(p, "--response-timeout")?,
                Long("keep-going") => o.keep_going = true,
                Short('h') | Long("help") => cli::help(USAGE),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(o)
    })
}

/// Checks a URL given on the command line: http or https, with a host.
fn check_url(u: &str) -> Result<String, String> {
    let parsed = url::Url::parse(u).map_err(|e| format!("bad URL '{u}': {e}"))?;
    match parsed.scheme() {
        "http" | "https" => {}
        s => return Err(format!("unsupported scheme '{s}' (http or https)")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("bad URL '{u}': expected http://HOST:PORT/PATH"));
    }
    Ok(parsed.into())
}

// ---------------------------------------------------------------------------------------------
// The embedded server.

#[derive(Default)]
struct ServerConn {
    buf: Vec<u8>,
    served: u32,
}

/// Starts the HTTP/1.1 keep-alive server; returns its port.
fn embedded_server(kernel: &mut Kernel) -> Result<u16, String> {
    let handle = ServerTcpBuilder::<ServerConn>::new()
        .address("127.0.0.1")
        .port(0)
        .alias("embedded_http")
        .client_filter(StreamFilter::new)
        .client_error(|_ctx| {})
        .client_input(|ctx| -> Result<(), HandlerError> {
            let chunk: Vec<u8> = ctx.take_arg(0)?;
            let heap = ctx.heap();
            heap.data.buf.extend_from_slice(&chunk);
            let mut out = Vec::new();
            let mut close = false;
            while let Some(end) = find(&heap.data.buf, b"\r\n\r\n") {
                let head: Vec<u8> = heap.data.buf.drain(..end + 4).collect();
                heap.data.served += 1;
                let asked_close = contains_ignore_case(&head, b"connection: close");
                close = asked_close || heap.data.served >= SERVER_MAX_REQUESTS;
                out.extend_from_slice(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n",
                        BODY.len(),
                        if close { "Connection: close\r\n" } else { "" }
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(BODY);
                if close {
                    break;
                }
            }
            if !out.is_empty() {
                if let Some(w) = ctx.client() {
                    w.put_one(out)?;
                }
            }
            if close {
                ctx.yield_("shutdown", ())?;
            }
            Ok(())
        })
        .build(kernel)
        .map_err(|e| format!("embedded server: {e}"))?;
    handle
        .local_addr()
        .map(|a| a.port())
        .ok_or_else(|| "embedded server did not bind".to_owned())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

// ---------------------------------------------------------------------------------------------
// The client.

struct Client {
    ua: HttpClient,
    ka: Keepalive,
    /// The request, built once; each worker sends a copy.
    request: http::Request<Vec<u8>>,
    event: Rc<str>,
    total: u64,
    issued: u64,
    done: u64,
    errors: u64,
    latencies: Vec<u32>,
    started: Instant,
    embedded: bool,
    /// Errors by message: the first of each is printed at once, the repeats counted.
    errors_by: std::collections::BTreeMap<String, u64>,
    /// `--keep-going`: no early stop.
    keep_going: bool,
}

/// When this many requests have failed, all the same way, and none has succeeded, the run
/// stops: a host that does not resolve or a port that refuses will not get better.
const EARLY_STOP: u64 = 20;

/// Counts an error: prints the first of its kind at once and counts the repeats; stops
/// issuing requests when every one so far failed the same way.
fn note_error(h: &mut Client, msg: String) {
    h.errors += 1;
    let n = h.errors_by.entry(msg.clone()).or_insert(0);
    *n += 1;
    if *n == 1 {
        eprintln!("{msg}");
    }
    if !h.keep_going
        && h.latencies.is_empty()
        && h.errors_by.len() == 1
        && h.errors >= EARLY_STOP
        && h.issued < h.total
    {
        eprintln!(
            "stopping early: the first {} requests all failed the same way ({msg})",
            h.errors
        );
        h.total = h.issued;
    }
}

type C<'a, 'b> = &'a mut Ctx<'b, Client>;

/// Sends the next request, if any are left.
fn next(ctx: C) {
    let h = ctx.heap();
    if h.issued >= h.total {
        return;
    }
    h.issued += 1;
    let submit = Submit::with_event(h.event.clone(), h.request.clone()).tag(Instant::now());
    let ua = h.ua.clone();
    if let Err(e) = ua.submit(ctx, submit) {
        let h = ctx.heap();
        h.done += 1;
        note_error(h, format!("request: {e}"));
    }
}

fn got_response(ctx: C) -> Result<(), HandlerError> {
    let packet: RequestPacket = ctx.take_arg(0)?;
    let response: http::Response<Vec<u8>> = ctx.take_arg(1)?;
    let h = ctx.heap();
    h.done += 1;
    match response.extensions().get::<ClientError>() {
        Some(ClientError::Timeout) => note_error(h, "response timeout".to_owned()),
        Some(e) => {
            let msg = response
                .headers()
                .get("x-pcch-errmsg")
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| e.to_string(), str::to_owned);
            note_error(h, format!("request failed: {msg}"));
        }
        None if !(200..400).contains(&response.status().as_u16()) => {
            note_error(h, format!("HTTP status {}", response.status().as_u16()));
        }
        None => {
            let started = packet.tag::<Instant>().copied().unwrap_or(h.started);
            let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
            h.latencies.push(us);
        }
    }
    if h.done >= h.total {
        all_done(ctx);
    } else {
        next(ctx);
    }
    Ok(())
}

/// Once a second on long runs: how far the run is.
fn progress(ctx: C) {
    let h = ctx.heap();
    if h.done >= h.total {
        return;
    }
    let rps = h.done as f64 / h.started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "progress: {}/{} done, {} errors, {rps:.0} requests/s",
        h.done, h.total, h.errors
    );
    let _ = ctx.delay("progress", 1.0, ());
}

fn all_done(ctx: C) {
    let _ = ctx.alarm_clear("progress");
    let h = ctx.heap();
    for (msg, n) in &h.errors_by {
        if *n > 1 {
            eprintln!("{n} x {msg}");
        }
    }
    let elapsed = h.started.elapsed();
    let mut lat = std::mem::take(&mut h.latencies);
    lat.sort_unstable();
    let pct = |p: f64| -> u32 {
        if lat.is_empty() {
            0
        } else {
            lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1]
        }
    };
    let rps = h.total as f64 / elapsed.as_secs_f64().max(1e-9);
    let retries = h.ua.stats().retries;
    if retries > 0 {
        eprintln!("retried on a new connection: {retries}");
    }
    let c = h.ka.stats().counters;
    println!(
        "requests={} errors={} new_connections={} reused={} rps={:.0} p50_us={} p99_us={}",
        h.total,
        h.errors,
        c.connected,
        c.immediate + c.deferred,
        rps,
        pct(0.50),
        pct(0.99)
    );
    let (ua, ka) = (h.ua.clone(), h.ka.clone());
    let embedded = h.embedded;
    ua.shutdown(ctx);
    ka.shutdown(ctx);
    if embedded {
        let _ = ctx.post("embedded_http", "shutdown", ());
    }
}

fn run(o: Options) -> Result<u64, String> {
    let mut kernel = Kernel::new().map_err(|e| e.to_string())?;
    let (url, embedded) = match &o.url {
        Some(u) => (check_url(u)?, false),
        None => {
            let port = embedded_server(&mut kernel)?;
            (format!("http://127.0.0.1:{port}/"), true)
        }
    };
    println!(
        "fetching {url} requests={} in_flight={}{}",
        o.requests,
        o.concurrency,
        if embedded { " (embedded server)" } else { "" }
    );
    let ka = Keepalive::builder()
        .max_per_host(o.concurrency)
        .max_open(o.concurrency.max(128))
        .timeout(o.connect_timeout)
        .build(&mut kernel)
        .map_err(|e| e.to_string())?;
    let ua = HttpClient::builder()
        .alias("demo_ua")
        .agent("keepalive-demo")
        .connection_manager(ka.clone())
        .timeout(o.response_timeout)
        .build(&mut kernel)
        .map_err(|e| e.to_string())?;
    let request = http::Request::get(url.as_str())
        .body(Vec::new())
        .map_err(|e| format!("bad URL '{url}': {e}"))?;
    let workers = o.concurrency.min(o.requests as usize);
    let client = Client {
        ua,
        ka,
        request,
        event: Rc::from("got_response"),
        total: o.requests,
        issued: 0,
        done: 0,
        errors: 0,
        latencies: Vec::with_capacity(o.requests as usize),
        started: Instant::now(),
        embedded,
        errors_by: Default::default(),
        keep_going: o.keep_going,
    };
    let errors = Rc::new(std::cell::Cell::new(0u64));
    let errs = errors.clone();
    kernel
        .create(
            Session::new(client)
                .on("_start", move |ctx| {
                    ctx.heap().started = Instant::now();
                    let _ = ctx.delay("progress", 1.0, ());
                    for _ in 0..workers {
                        next(ctx);
                    }
                })
                .on("got_response", got_response)
                .on("progress", progress)
                .on("_stop", move |ctx| errs.set(ctx.heap().errors)),
        )
        .map_err(|e| e.to_string())?;
    kernel.run().map_err(|e| e.to_string())?;
    Ok(errors.get())
}

fn main() -> ExitCode {
    let o = options();
    match run(o) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
