//! The main demo: HTTP/1.1 GETs through the keep-alive connection manager.
//!
//! With no arguments it starts an embedded HTTP/1.1 keep-alive server (a `Server::TCP`
//! session on 127.0.0.1, port 0) in the same kernel, and fetches from it. With
//! `--url http://HOST:PORT/PATH` it fetches from a real server instead (`https://` works
//! too, with the system's web roots).
//!
//! ```text
//! cargo run --release --example demo -- [--url URL] [-n REQUESTS] [-c IN_FLIGHT] [--threads N] [--timeout SECS] [--response-timeout SECS]
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
//! handshake).
//!
//! With `--threads N` (default 1) the run is spread over N kernels on N threads
//! ([`Group`]), one core each: every kernel has its own keep-alive manager, HTTP client and
//! share of the requests and of the in-flight workers, and, without `--url`, its own
//! embedded server, all N listening on the same port (`reuse_port`), so the system spreads
//! the connections over them. Nothing is shared on the hot path; the kernels start
//! together, and the last one done stops every server. The summary adds their numbers up.
//! The last line printed is:
//!
//! ```text
//! requests=N errors=E new_connections=K reused=R rps=X p50_us=A p99_us=B
//! ```

use keepalive::reactor::component::ServerTcpBuilder;
use keepalive::reactor::filter::Stream as StreamFilter;
use keepalive::reactor::group::Group;
use keepalive::reactor::{Ctx, HandlerError, Kernel, Poster, Session};
use keepalive::{ClientError, HttpClient, Keepalive, RequestPacket, Submit};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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
    threads: usize,
}

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};

const USAGE: &str = "\
Usage: demo [--url URL] [-n REQUESTS] [-c IN_FLIGHT] [--threads N] [--timeout SECS] [--response-timeout SECS] [--keep-going]

HTTP/1.1 GETs through the keep-alive manager and the HTTP client, from an embedded server
or from --url; the last line printed is the summary. On long runs a progress line goes to
standard error every second; repeated errors are counted, not repeated; when the first
requests all fail the same way, the run stops there.

Options:
  --url URL                 fetch from URL (http or https) instead of the embedded server
  -n REQUESTS               how many GETs (default 10000)
  -c IN_FLIGHT              how many at once (default 8; with --threads, shared among the
                            kernels, at least one each)
  --threads N               N kernels on N threads, each with its own manager, client and
                            embedded server, sharing the requests (default 1)
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
            threads: 1,
        };
        while let Some(arg) = p.next()? {
            match arg {
                Long("url") => o.url = Some(cli::text(p.value()?)),
                Short('n') => o.requests = count(p, "-n")?,
                Short('c') => o.concurrency = count(p, "-c")?,
                Long("timeout") => o.connect_timeout = secs(p, "--timeout")?,
                Long("response-timeout") => o.response_timeout = secs(p, "--response-timeout")?,
                Long("keep-going") => o.keep_going = true,
                Long("threads") => o.threads = count(p, "--threads")?,
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

/// Starts the HTTP/1.1 keep-alive server on `port` (0: any), sharing it with the other
/// kernels' servers when `reuse_port`; returns the port.
fn embedded_server(kernel: &mut Kernel, port: u16, reuse_port: bool) -> Result<u16, String> {
    let handle = ServerTcpBuilder::<ServerConn>::new()
        .address("127.0.0.1")
        .port(port)
        .reuse_port(reuse_port)
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
// What the kernels of a run share.

/// What every kernel of a run reads or adds to. Only the progress counters are touched
/// per request (one relaxed add each); the rest once per kernel, or on errors.
#[derive(Default)]
struct Shared {
    /// The embedded servers' port, once the first kernel has bound it.
    port: Mutex<Option<u16>>,
    /// Each kernel's client session, to be told to go once every kernel is set up.
    clients: Mutex<Vec<(Poster, keepalive::reactor::SessionId)>>,
    /// Each kernel's poster, to stop its embedded server when every client is done.
    servers: Mutex<Vec<Poster>>,
    /// Clients not done yet; the one that takes it to 0 stops the servers.
    clients_left: AtomicUsize,
    /// When the clients were told to go.
    started: OnceLock<Instant>,
    /// Requests answered (or failed) so far, and errors, for the progress line.
    done: AtomicU64,
    errors: AtomicU64,
    /// Errors by message, over every kernel: the first of each is printed at once.
    errors_by: Mutex<BTreeMap<String, u64>>,
    /// The kernels' numbers, added up as each one finishes.
    totals: Mutex<Totals>,
}

/// The numbers of the summary line.
#[derive(Default)]
struct Totals {
    requests: u64,
    errors: u64,
    new_connections: u64,
    reused: u64,
    retries: u64,
    latencies: Vec<u32>,
    finished: Option<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `total` split over `parts`: part `i`'s share.
fn share(total: u64, parts: usize, i: usize) -> u64 {
    let parts = parts as u64;
    total / parts + u64::from((i as u64) < total % parts)
}

// ---------------------------------------------------------------------------------------------
// The client: one per kernel.

struct Client {
    ua: HttpClient,
    ka: Keepalive,
    /// The request, built once; each worker sends a copy.
    request: http::Request<Vec<u8>>,
    event: Rc<str>,
    /// This kernel's share of the requests (fewer after an early stop), and of the
    /// workers.
    total: u64,
    workers: usize,
    issued: u64,
    done: u64,
    errors: u64,
    latencies: Vec<u32>,
    /// This kernel prints the progress line.
    reports_progress: bool,
    shared: Arc<Shared>,
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
    h.shared.errors.fetch_add(1, Ordering::Relaxed);
    let kinds = {
        let mut by = lock(&h.shared.errors_by);
        let n = by.entry(msg.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            eprintln!("{msg}");
        }
        by.len()
    };
    if !h.keep_going
        && h.latencies.is_empty()
        && kinds == 1
        && h.errors >= EARLY_STOP
        && h.issued < h.total
    {
        eprintln!(
            "stopping early: the first {} requests all failed the same way ({msg})",
            h.errors
        );
        lock(&h.shared.totals).requests -= h.total - h.issued;
        h.total = h.issued;
    }
}

type C<'a, 'b> = &'a mut Ctx<'b, Client>;

/// Every kernel is set up: the workers start.
fn go(ctx: C) {
    let h = ctx.heap();
    let workers = h.workers;
    if h.reports_progress {
        let _ = ctx.delay("progress", 1.0, ());
    }
    if ctx.heap().total == 0 {
        all_done(ctx);
        return;
    }
    for _ in 0..workers {
        next(ctx);
    }
}

/// Sends the next request, if any are left (a worker whose request cannot even be
/// submitted counts the error and moves on to the next).
fn next(ctx: C) {
    loop {
        let h = ctx.heap();
        if h.issued >= h.total {
            return;
        }
        h.issued += 1;
        let submit = Submit::with_event(h.event.clone(), h.request.clone()).tag(Instant::now());
        let ua = h.ua.clone();
        let Err(e) = ua.submit(ctx, submit) else {
            return;
        };
        let h = ctx.heap();
        finished_one(h);
        note_error(h, format!("request: {e}"));
        if h.done >= h.total {
            all_done(ctx);
            return;
        }
    }
}

fn finished_one(h: &mut Client) {
    h.done += 1;
    h.shared.done.fetch_add(1, Ordering::Relaxed);
}

fn got_response(ctx: C) -> Result<(), HandlerError> {
    let packet: RequestPacket = ctx.take_arg(0)?;
    let response: http::Response<Vec<u8>> = ctx.take_arg(1)?;
    let h = ctx.heap();
    finished_one(h);
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
            if let Some(started) = packet.tag::<Instant>() {
                let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
                h.latencies.push(us);
            }
        }
    }
    if h.done >= h.total {
        all_done(ctx);
    } else {
        next(ctx);
    }
    Ok(())
}

/// Once a second on long runs, while the first kernel works: how far the run is (every
/// kernel's requests).
fn progress(ctx: C) {
    if ctx.heap().done >= ctx.heap().total {
        return;
    }
    let s = &ctx.heap().shared;
    let done = s.done.load(Ordering::Relaxed);
    let errors = s.errors.load(Ordering::Relaxed);
    let elapsed = s.started.get().map_or(1e-9, |t| t.elapsed().as_secs_f64());
    let total = lock(&s.totals).requests;
    let rps = done as f64 / elapsed.max(1e-9);
    eprintln!("progress: {done}/{total} done, {errors} errors, {rps:.0} requests/s");
    let _ = ctx.delay("progress", 1.0, ());
}

/// This kernel's requests are all done: its numbers go into the totals, its client and
/// manager shut down, and the last kernel done stops every embedded server.
fn all_done(ctx: C) {
    let h = ctx.heap();
    let counters = h.ka.stats().counters;
    let retries = h.ua.stats().retries;
    {
        let mut t = lock(&h.shared.totals);
        t.errors += h.errors;
        t.new_connections += counters.connected;
        t.reused += counters.immediate + counters.deferred;
        t.retries += retries;
        t.latencies.append(&mut h.latencies);
        t.finished = Some(Instant::now());
    }
    let (ua, ka, shared) = (h.ua.clone(), h.ka.clone(), Arc::clone(&h.shared));
    ua.shutdown(ctx);
    ka.shutdown(ctx);
    let _ = ctx.alarm_clear("progress");
    if shared.clients_left.fetch_sub(1, Ordering::AcqRel) == 1 {
        for server in lock(&shared.servers).drain(..) {
            let _ = server.post("embedded_http", "shutdown", ());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Setting up a kernel, and running them.

/// Sets up kernel `index` of `o.threads`: its embedded server (unless `url`), its manager,
/// client and client session, which waits to be told to go.
fn set_up(
    index: usize,
    kernel: &mut Kernel,
    o: &Options,
    shared: &Arc<Shared>,
) -> Result<(), String> {
    let url = match &o.url {
        Some(u) => u.clone(),
        None => {
            let mut bound = lock(&shared.port);
            let port = embedded_server(kernel, bound.unwrap_or(0), o.threads > 1)?;
            *bound = Some(port);
            lock(&shared.servers).push(kernel.poster().map_err(|e| e.to_string())?);
            format!("http://127.0.0.1:{port}/")
        }
    };
    if index == 0 {
        println!(
            "fetching {url} requests={} in_flight={}{}{}",
            o.requests,
            o.concurrency,
            if o.threads > 1 {
                format!(" threads={}", o.threads)
            } else {
                String::new()
            },
            if o.url.is_none() {
                " (embedded server)"
            } else {
                ""
            }
        );
    }
    let total = share(o.requests, o.threads, index);
    // Every kernel with requests gets at least one worker.
    let workers = (share(o.concurrency as u64, o.threads, index) as usize).max(1);
    let workers = workers.min(total as usize);
    let ka = Keepalive::builder()
        .max_per_host(workers.max(1))
        .max_open(workers.max(128))
        .timeout(o.connect_timeout)
        .build(kernel)
        .map_err(|e| e.to_string())?;
    let ua = HttpClient::builder()
        .alias("demo_ua")
        .agent("keepalive-demo")
        .connection_manager(ka.clone())
        .timeout(o.response_timeout)
        .build(kernel)
        .map_err(|e| e.to_string())?;
    let request = http::Request::get(url.as_str())
        .body(Vec::new())
        .map_err(|e| format!("bad URL '{url}': {e}"))?;
    lock(&shared.totals).requests += total;
    shared.clients_left.fetch_add(1, Ordering::AcqRel);
    let client = Client {
        ua,
        ka,
        request,
        event: Rc::from("got_response"),
        total,
        workers,
        issued: 0,
        done: 0,
        errors: 0,
        latencies: Vec::with_capacity(total as usize),
        reports_progress: index == 0,
        shared: Arc::clone(shared),
        keep_going: o.keep_going,
    };
    let session = kernel
        .create(
            Session::new(client)
                .on("_start", |_: C| {})
                .on("go", go)
                .on("got_response", got_response)
                .on("progress", progress),
        )
        .map_err(|e| e.to_string())?;
    // Holds the session (and the kernel) until the go arrives.
    let poster = kernel.poster_holding(session).map_err(|e| e.to_string())?;
    lock(&shared.clients).push((poster, session));
    Ok(())
}

/// Every kernel is set up: the clock starts and every client goes.
fn start(shared: &Shared) {
    let _ = shared.started.set(Instant::now());
    for (poster, session) in lock(&shared.clients).drain(..) {
        let _ = poster.post(session, "go", ());
    }
}

/// Runs the demo; returns the totals.
fn run(mut o: Options) -> Result<Totals, String> {
    if let Some(u) = &o.url {
        o.url = Some(check_url(u)?);
    }
    let shared = Arc::new(Shared::default());
    if o.threads == 1 {
        let mut kernel = Kernel::new().map_err(|e| e.to_string())?;
        set_up(0, &mut kernel, &o, &shared)?;
        start(&shared);
        kernel.run().map_err(|e| e.to_string())?;
    } else {
        let (o, s) = (Arc::new(o), Arc::clone(&shared));
        let ready = Arc::clone(&shared);
        Group::new(o.threads)
            .name("demo")
            .catch_signals(false)
            .on_ready(move || start(&ready))
            .run(move |index, kernel| Ok(set_up(index, kernel, &o, &s)?))
            .map_err(|e| e.to_string())?;
    }
    // Every kernel has ended: nothing else holds the totals.
    let mut t = std::mem::take(&mut *lock(&shared.totals));
    for (msg, n) in lock(&shared.errors_by).iter() {
        if *n > 1 {
            eprintln!("{n} x {msg}");
        }
    }
    if t.retries > 0 {
        eprintln!("retried on a new connection: {}", t.retries);
    }
    let elapsed = match (shared.started.get(), t.finished) {
        (Some(s), Some(f)) => f.duration_since(*s),
        _ => Duration::ZERO,
    };
    let lat = &mut t.latencies;
    lat.sort_unstable();
    let pct = |p: f64| -> u32 {
        if lat.is_empty() {
            0
        } else {
            lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1]
        }
    };
    println!(
        "requests={} errors={} new_connections={} reused={} rps={:.0} p50_us={} p99_us={}",
        t.requests,
        t.errors,
        t.new_connections,
        t.reused,
        t.requests as f64 / elapsed.as_secs_f64().max(1e-9),
        pct(0.50),
        pct(0.99)
    );
    Ok(t)
}

fn main() -> ExitCode {
    let o = options();
    match run(o) {
        Ok(t) if t.errors == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
