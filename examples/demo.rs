//! The main demo: HTTP/1.1 GETs through the keep-alive connection manager.
//!
//! With no arguments it starts an embedded HTTP/1.1 keep-alive server (a `Server::TCP`
//! session on 127.0.0.1, port 0) in the same kernel, and fetches from it. With
//! `--url http://HOST:PORT/PATH` it fetches from a real server instead (`https://` works
//! too, with the system's web roots).
//!
//! ```text
//! cargo run --release --example demo -- [--url URL] [-n REQUESTS] [-c IN_FLIGHT] [--timeout SECS] [--response-timeout SECS] [--threads N]
//! ```
//!
//! Each of the `C` workers allocates a connection, sends one GET, reads the response to
//! its end, and frees the connection (dropping it) before asking for the next one, so
//! sockets are reused through the pool. A response with `Connection: close` closes the
//! socket instead. A GET that fails on a reused connection before any response byte (the
//! server closed it while it was idle) is retried once on a fresh connection
//! (`Request::fresh_connection`, so the retry cannot meet another stale socket), as Go's
//! and hyper's pools do. A response that has not ended `--response-timeout` seconds (30 by
//! default) after the request was sent is an error, so a server that never answers cannot
//! hang the demo; `--timeout` (30 s) bounds getting a connection (lookup, wait, connect
//! and TLS handshake). The last line printed is:
//!
//! ```text
//! requests=N errors=E new_connections=K reused=R rps=X p50_us=A p99_us=B
//! ```
//!
//! With `--threads N` (default 1) it runs N kernels on N threads, each with a keep-alive
//! manager of its own and its share of the requests and of the workers (`-n` and `-c` are
//! totals); the embedded server then runs in every kernel, each with a listener on the same
//! port (`SO_REUSEPORT`). The summary line adds the kernels' numbers up.

use keepalive::http::{get_request, Parse, ResponseParser};
use keepalive::reactor::component::ServerTcpBuilder;
use keepalive::reactor::filter::Stream as StreamFilter;
use keepalive::reactor::group::Group;
use keepalive::reactor::wheel::ReadWrite;
use keepalive::reactor::wheel::WheelError;
use keepalive::reactor::{AlarmId, Ctx, HandlerError, Kernel, Poster, Session, WheelId};
use keepalive::{Connection, Keepalive, PoolKey, Request, Response};
use std::collections::HashMap;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The embedded server closes a connection after this many requests, as nginx's
/// `keepalive_requests` does, so the pool also shows connection renewal.
const SERVER_MAX_REQUESTS: u32 = 100;
const BODY: &[u8] = b"Hello from the embedded keep-alive server.\n";

#[derive(Clone)]
struct Options {
    url: Option<String>,
    requests: u64,
    concurrency: usize,
    response_timeout: Duration,
    connect_timeout: Duration,
    threads: usize,
}

fn usage() -> String {
    "usage: demo [--url http://HOST:PORT/PATH] [-n REQUESTS] [-c IN_FLIGHT] [--timeout SECS] [--response-timeout SECS] [--threads N]"
        .to_owned()
}

/// A positive, finite number of seconds.
fn secs(s: &str) -> Option<Duration> {
    s.parse::<f64>()
        .ok()
        .filter(|&s| s > 0.0 && s.is_finite())
        .map(Duration::from_secs_f64)
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        url: None,
        requests: 10_000,
        concurrency: 8,
        response_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(30),
        threads: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--url" => o.url = Some(value("--url")?),
            "-n" => {
                o.requests = value("-n")?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("-n needs a positive number")?
            }
            "-c" => {
                o.concurrency = value("-c")?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("-c needs a positive number")?
            }
            "--response-timeout" => {
                o.response_timeout = secs(&value("--response-timeout")?)
                    .ok_or("--response-timeout needs a positive number of seconds")?
            }
            "--timeout" => {
                o.connect_timeout = secs(&value("--timeout")?)
                    .ok_or("--timeout needs a positive number of seconds")?
            }
            "--threads" => {
                o.threads = value("--threads")?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--threads needs a positive number")?
            }
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    Ok(o)
}

/// `scheme://host[:port][/path]`.
struct Url {
    scheme: String,
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Result<Url, String> {
    let bad = || format!("bad URL {url:?}: expected http://HOST:PORT/PATH");
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return Err(format!("unsupported scheme {scheme:?} (http or https)")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, tail) = v6.split_once(']').ok_or_else(bad)?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => default_port,
        };
        (h.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad())?),
            None => (authority.to_owned(), default_port),
        }
    };
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok(Url {
        scheme: scheme.to_owned(),
        host,
        port,
        path: path.to_owned(),
    })
}

// ---------------------------------------------------------------------------------------------
// The embedded server.

#[derive(Default)]
struct ServerConn {
    buf: Vec<u8>,
    served: u32,
}

/// Starts the HTTP/1.1 keep-alive server on `port` (0: any); returns its port. With
/// `reuse_port` other kernels' servers may listen on the same port.
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
// The client.

/// One request in flight.
struct Job {
    started: Instant,
    retried: bool,
}

/// One worker slot: at most one request at a time.
struct Slot {
    job: Option<Job>,
    conn: Option<Connection>,
    wheel: Option<WheelId>,
    reused: bool,
    parser: ResponseParser,
    /// The response timeout of the request on the wheel.
    timer: Option<AlarmId>,
}

struct Client {
    ka: Keepalive,
    /// The pool key and event name, built once for every request.
    key: Arc<PoolKey>,
    event: Rc<str>,
    request: Rc<Vec<u8>>,
    total: u64,
    issued: u64,
    done: u64,
    errors: u64,
    new_connections: u64,
    reused: u64,
    retries: u64,
    latencies: Vec<u32>,
    response_timeout: Duration,
    slots: Vec<Slot>,
    by_wheel: HashMap<WheelId, usize>,
    started: Instant,
    /// What every kernel's client adds its numbers to, and who shuts the servers down.
    run: Arc<RunState>,
}

/// The numbers of one run, added up over the kernels.
#[derive(Default)]
struct Totals {
    requests: u64,
    errors: u64,
    new_connections: u64,
    reused: u64,
    retries: u64,
    latencies: Vec<u32>,
    first_start: Option<Instant>,
    last_end: Option<Instant>,
}

/// What the kernels of a run share.
struct RunState {
    totals: Mutex<Totals>,
    /// Clients still fetching; the last one shuts the embedded servers down.
    clients_left: AtomicUsize,
    /// Every kernel's poster, when the servers are embedded.
    servers: Mutex<Vec<Poster>>,
    /// The embedded servers' port, once kernel 0 has bound it.
    port: Mutex<Option<u16>>,
}

type C<'a, 'b> = &'a mut Ctx<'b, Client>;

impl Client {
    fn request_for(&self, slot: usize) -> Request {
        Request::for_key(self.key.clone(), self.event.clone()).context(slot)
    }
}

/// Starts the next request in `slot`, if any are left.
fn next(ctx: C, slot: usize) {
    let h = ctx.heap();
    if h.issued >= h.total {
        return;
    }
    h.issued += 1;
    h.slots[slot].job = Some(Job {
        started: Instant::now(),
        retried: false,
    });
    allocate(ctx, slot);
}

fn allocate(ctx: C, slot: usize) {
    let ka = ctx.heap().ka.clone();
    let mut req = ctx.heap().request_for(slot);
    if ctx.heap().slots[slot]
        .job
        .as_ref()
        .is_some_and(|j| j.retried)
    {
        req = req.fresh_connection();
    }
    if let Err(e) = ka.allocate(ctx, req) {
        eprintln!("allocate: {e}");
        finish_job(ctx, slot, false);
    }
}

/// Records the end of the job in `slot` and starts the next one.
fn finish_job(ctx: C, slot: usize, ok: bool) {
    cancel_response_timeout(ctx, slot);
    let h = ctx.heap();
    let s = &mut h.slots[slot];
    if let Some(w) = s.wheel.take() {
        h.by_wheel.remove(&w);
    }
    s.conn = None;
    if let Some(job) = s.job.take() {
        if ok {
            let us = job.started.elapsed().as_micros().min(u32::MAX as u128) as u32;
            h.latencies.push(us);
        } else {
            h.errors += 1;
        }
        h.done += 1;
    }
    if h.done >= h.total {
        all_done(ctx);
    } else {
        next(ctx, slot);
    }
}

fn got_conn(ctx: C) -> Result<(), HandlerError> {
    let r: Response = ctx.take_arg(0)?;
    let slot = *r
        .context_ref::<usize>()
        .ok_or_else(|| HandlerError::new("response without a slot"))?;
    let from_cache = r.from_cache();
    let mut conn = match r.connection {
        Ok(c) => c,
        Err(f) => {
            eprintln!("request failed: {f}");
            finish_job(ctx, slot, false);
            return Ok(());
        }
    };
    let h = ctx.heap();
    let request = h.request.clone();
    if from_cache.is_some() {
        h.reused += 1;
    } else {
        h.new_connections += 1;
    }
    let id = conn.start(ctx, |b| {
        b.filter(StreamFilter::new())
            .input_event("got_input")
            .error_event("got_error")
    })?;
    if let Some(w) = ctx.wheel_mut::<ReadWrite>(id) {
        w.put_one(request.as_slice())?;
    }
    // Send now rather than at the next I/O phase (POE's `flush`).
    ReadWrite::flush(ctx, id);
    let limit = ctx.heap().response_timeout;
    let timer = ctx.delay_set("response_timeout", limit, (slot, id))?;
    let h = ctx.heap();
    let s = &mut h.slots[slot];
    s.conn = Some(conn);
    s.wheel = Some(id);
    s.reused = from_cache.is_some();
    s.timer = Some(timer);
    s.parser.reset();
    h.by_wheel.insert(id, slot);
    Ok(())
}

fn got_input(ctx: C) -> Result<(), HandlerError> {
    let chunk: Vec<u8> = ctx.take_arg(0)?;
    let id: WheelId = *ctx.arg(1)?;
    let Some(&slot) = ctx.heap().by_wheel.get(&id) else {
        return Ok(());
    };
    let parsed = ctx.heap().slots[slot].parser.feed(&chunk);
    match parsed {
        Ok(Parse::Incomplete) => Ok(()),
        Ok(Parse::Done(info)) => {
            if !info.keep_alive {
                if let Some(mut c) = ctx.heap().slots[slot].conn.take() {
                    c.close(ctx);
                }
            }
            let ok = (200..400).contains(&info.status);
            if !ok {
                eprintln!("HTTP status {}", info.status);
            }
            finish_job(ctx, slot, ok);
            Ok(())
        }
        Err(e) => {
            eprintln!("bad response: {e}");
            if let Some(mut c) = ctx.heap().slots[slot].conn.take() {
                c.close(ctx);
            }
            finish_job(ctx, slot, false);
            Ok(())
        }
    }
}

fn got_error(ctx: C) -> Result<(), HandlerError> {
    let e = ctx.arg::<WheelError>(0)?;
    let (op, errnum, errstr) = (e.operation, e.errno, e.message.clone());
    let id: WheelId = *ctx.arg(1)?;
    let Some(&slot) = ctx.heap().by_wheel.get(&id) else {
        return Ok(());
    };
    cancel_response_timeout(ctx, slot);
    let h = ctx.heap();
    h.by_wheel.remove(&id);
    let s = &mut h.slots[slot];
    s.wheel = None;
    let mut conn = s.conn.take();
    if let Some(c) = conn.as_mut() {
        c.close(ctx);
    }
    drop(conn);
    let h = ctx.heap();
    let s = &mut h.slots[slot];
    // A body delimited by the close ends here.
    if errnum == 0 && op == "read" {
        if let Ok(Parse::Done(info)) = s.parser.eof() {
            let ok = (200..400).contains(&info.status);
            finish_job(ctx, slot, ok);
            return Ok(());
        }
    }
    let untouched = !s.parser.started();
    let can_retry = s.reused && untouched && s.job.as_ref().is_some_and(|j| !j.retried);
    if can_retry {
        // The server closed the idle connection as we reused it: once more, on a new one.
        if let Some(j) = s.job.as_mut() {
            j.retried = true;
        }
        h.retries += 1;
        allocate(ctx, slot);
        return Ok(());
    }
    eprintln!("{op} error {errnum}: {errstr}");
    finish_job(ctx, slot, false);
    Ok(())
}

/// Stops the response timeout of the request in `slot`, if one runs.
fn cancel_response_timeout(ctx: C, slot: usize) {
    if let Some(t) = ctx.heap().slots[slot].timer.take() {
        let _ = ctx.alarm_remove(t);
    }
}

/// The response in `ARG0`'s slot, on the wheel `ARG1`, took too long.
fn response_timeout(ctx: C) -> Result<(), HandlerError> {
    let (slot, id) = (*ctx.arg::<usize>(0)?, *ctx.arg::<WheelId>(1)?);
    let s = &mut ctx.heap().slots[slot];
    if s.wheel != Some(id) {
        return Ok(());
    }
    s.timer = None;
    if let Some(mut c) = s.conn.take() {
        c.close(ctx);
    }
    eprintln!("response timeout");
    finish_job(ctx, slot, false);
    Ok(())
}

fn all_done(ctx: C) {
    let h = ctx.heap();
    if h.done > h.total {
        return;
    }
    h.done = h.total + 1;
    let end = Instant::now();
    if let Ok(mut t) = h.run.totals.lock() {
        t.requests += h.total;
        t.errors += h.errors;
        t.new_connections += h.new_connections;
        t.reused += h.reused;
        t.retries += h.retries;
        t.latencies.append(&mut h.latencies);
        t.first_start = Some(t.first_start.map_or(h.started, |s| s.min(h.started)));
        t.last_end = Some(t.last_end.map_or(end, |e| e.max(end)));
    }
    let ka = h.ka.clone();
    let run = Arc::clone(&h.run);
    ka.shutdown(ctx);
    // The last client done shuts every kernel's embedded server down: until then another
    // kernel's client may still be talking to this kernel's server.
    if run.clients_left.fetch_sub(1, Ordering::AcqRel) == 1 {
        if let Ok(servers) = run.servers.lock() {
            for p in servers.iter() {
                let _ = p.post("embedded_http", "shutdown", ());
            }
        }
    }
}

/// Kernel `index`'s part of the run: its embedded server (kernel 0 binds the port, the
/// others share it), its manager and its client with its share of the requests.
fn set_up(
    index: usize,
    kernel: &mut Kernel,
    o: &Options,
    run: &Arc<RunState>,
) -> Result<(), String> {
    let share = |total: u64| {
        let n = o.threads as u64;
        total / n + u64::from((index as u64) < total % n)
    };
    let requests = share(o.requests);
    let concurrency = (share(o.concurrency as u64) as usize).max(1);
    let url = match &o.url {
        Some(u) => parse_url(u)?,
        None => {
            let mut bound = run.port.lock().map_err(|_| "poisoned")?;
            let port = embedded_server(kernel, bound.unwrap_or(0), o.threads > 1)?;
            *bound = Some(port);
            run.servers
                .lock()
                .map_err(|_| "poisoned")?
                .push(kernel.poster().map_err(|e| e.to_string())?);
            Url {
                scheme: "http".into(),
                host: "127.0.0.1".into(),
                port,
                path: "/".into(),
            }
        }
    };
    if index == 0 {
        println!(
            "fetching {}://{}:{}{} requests={} in_flight={}{}{}",
            url.scheme,
            url.host,
            url.port,
            url.path,
            o.requests,
            o.concurrency,
            if o.url.is_none() {
                " (embedded server)"
            } else {
                ""
            },
            if o.threads > 1 {
                format!(" threads={}", o.threads)
            } else {
                String::new()
            }
        );
    }
    if requests == 0 {
        return Ok(());
    }
    let ka = Keepalive::builder()
        .max_per_host(concurrency)
        .max_open(concurrency.max(128))
        .timeout(o.connect_timeout)
        .build(kernel)
        .map_err(|e| e.to_string())?;
    let request = Rc::new(get_request(&url.host, url.port, &url.path));
    let workers = concurrency.min(requests as usize);
    let client = Client {
        ka,
        key: Arc::new(PoolKey::new(&url.scheme, &url.host, url.port)),
        event: Rc::from("got_conn"),
        request,
        total: requests,
        issued: 0,
        done: 0,
        errors: 0,
        new_connections: 0,
        reused: 0,
        retries: 0,
        latencies: Vec::with_capacity(requests as usize),
        response_timeout: o.response_timeout,
        slots: (0..workers)
            .map(|_| Slot {
                job: None,
                conn: None,
                wheel: None,
                reused: false,
                parser: ResponseParser::new(),
                timer: None,
            })
            .collect(),
        by_wheel: HashMap::new(),
        started: Instant::now(),
        run: Arc::clone(run),
    };
    kernel
        .create(
            Session::new(client)
                .on("_start", move |ctx| {
                    ctx.heap().started = Instant::now();
                    for slot in 0..ctx.heap().slots.len() {
                        next(ctx, slot);
                    }
                })
                .on("got_conn", got_conn)
                .on("got_input", got_input)
                .on("got_error", got_error)
                .on("response_timeout", response_timeout),
        )
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Runs the demo; returns how many requests failed.
fn run(o: Options) -> Result<u64, String> {
    let clients = o.threads.min(o.requests as usize);
    let run = Arc::new(RunState {
        totals: Mutex::new(Totals::default()),
        clients_left: AtomicUsize::new(clients),
        servers: Mutex::new(Vec::new()),
        port: Mutex::new(None),
    });
    if o.threads == 1 {
        let mut kernel = Kernel::new().map_err(|e| e.to_string())?;
        set_up(0, &mut kernel, &o, &run)?;
        kernel.run().map_err(|e| e.to_string())?;
    } else {
        let (opts, r) = (o.clone(), Arc::clone(&run));
        Group::new(o.threads)
            .catch_signals(false)
            .name("demo")
            .run(move |i, kernel| Ok(set_up(i, kernel, &opts, &r)?))
            .map_err(|e| e.to_string())?;
    }
    let mut t = std::mem::take(&mut *run.totals.lock().map_err(|_| "poisoned")?);
    // A client that never finished (it cannot, short of a bug) counts as failures.
    t.errors += o.requests - t.requests.min(o.requests);
    t.requests = o.requests;
    let elapsed = match (t.first_start, t.last_end) {
        (Some(s), Some(e)) => e - s,
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
    let rps = t.requests as f64 / elapsed.as_secs_f64().max(1e-9);
    if t.retries > 0 {
        eprintln!("retried on a new connection: {}", t.retries);
    }
    println!(
        "requests={} errors={} new_connections={} reused={} rps={:.0} p50_us={} p99_us={}",
        t.requests,
        t.errors,
        t.new_connections,
        t.reused,
        rps,
        pct(0.50),
        pct(0.99)
    );
    Ok(t.errors)
}

fn main() -> ExitCode {
    env_logger::init();
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(o) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
