//! Fetches URLs concurrently through the HTTP client and prints, for each, its status, body
//! size and time: the port of POE::Component::Client::HTTP's `pcchget.perl`.
//!
//! ```text
//! cargo run --example fetch -- [--timeout SECS] [--redirects N] [--verbose] URL...
//! ```
//!
//! Every URL is requested at once (the manager keeps at most 4 connections per host, the
//! rest wait). One line per URL, in the order the answers come:
//!
//! ```text
//! 200 OK 612 bytes 1.8 ms http://127.0.0.1:8080/
//! ```
//!
//! An error response (a refused connection, a timeout, a malformed response) prints its
//! status and the client's message (`X-PCCH-Errmsg`). `--verbose` prints the request and
//! the response heads as `pcchget.perl` does. The exit status is 0 when every URL got a
//! 2xx or 3xx answer.

use keepalive::reactor::{Ctx, HandlerError, Kernel, Session};
use keepalive::{HttpClient, RequestPacket, Submit};
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Options {
    timeout: Duration,
    redirects: u32,
    verbose: bool,
    urls: Vec<String>,
}

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};

const USAGE: &str = "\
Usage: fetch [--timeout SECS] [--redirects N] [--verbose] URL...

Fetches every URL at once through the HTTP client and prints, for each, its status, size
and time (POE's pcchget.perl).

Options:
  --timeout SECS   bound on each request (default 20)
  --redirects N    redirects followed (default 5)
  -v, --verbose    print the request and the response heads
  -h, --help       print this help";

fn options() -> Options {
    cli::parse(USAGE, |p| {
        let mut o = Options {
            timeout: Duration::from_secs(20),
            redirects: 5,
            verbose: false,
            urls: Vec::new(),
        };
        while let Some(arg) = p.next()? {
            match arg {
                Long("timeout") => {
                    let s: f64 = cli::value(p, "--timeout")?;
                    if !(s > 0.0 && s.is_finite()) {
                        return Err("--timeout needs a positive number of seconds".into());
                    }
                    o.timeout = Duration::from_secs_f64(s);
                }
                Long("redirects") => o.redirects = cli::value(p, "--redirects")?,
                Short('v') | Long("verbose") => o.verbose = true,
                Short('h') | Long("help") => cli::help(USAGE),
                cli::Value(u) => o.urls.push(cli::text(u)),
                _ => return Err(arg.unexpected()),
            }
        }
        if o.urls.is_empty() {
            return Err("missing URL".into());
        }
        Ok(o)
    })
}

struct Fetch {
    ua: HttpClient,
    left: usize,
    failed: usize,
    verbose: bool,
}

/// The head of a request or response, as `as_string` prints it.
fn head_lines<'a>(first: String, headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut s = first;
    s.push('\n');
    for (k, v) in headers {
        s.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v)));
    }
    s
}

fn response(ctx: &mut Ctx<'_, Fetch>) -> Result<(), HandlerError> {
    let packet: RequestPacket = ctx.take_arg(0)?;
    let r: http::Response<Vec<u8>> = ctx.take_arg(1)?;
    let started = *packet.tag::<Instant>().expect("tagged with its start");
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let uri = packet.request().uri();
    let status = r.status();
    let mut line = format!(
        "{} {} {} bytes {ms:.1} ms {uri}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        r.body().len()
    );
    let ok = (200..400).contains(&status.as_u16())
        && r.extensions().get::<keepalive::ClientError>().is_none();
    if let Some(msg) = r.headers().get("x-pcch-errmsg") {
        line.push_str(&format!(" ({})", String::from_utf8_lossy(msg.as_bytes())));
    }
    println!("{line}");
    let h = ctx.heap();
    if h.verbose {
        let req = packet.request();
        let bar = "*".repeat(78);
        let dash = "-".repeat(78);
        println!("{bar}\n*** my request:\n{dash}");
        print!(
            "{}",
            head_lines(
                format!("{} {}", req.method(), req.uri()),
                req.headers()
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_bytes()))
            )
        );
        println!("{bar}\n*** their response:\n{dash}");
        print!(
            "{}",
            head_lines(
                format!("{:?} {}", r.version(), status),
                r.headers().iter().map(|(k, v)| (k.as_str(), v.as_bytes()))
            )
        );
        println!("{bar}");
    }
    if !ok {
        h.failed += 1;
    }
    h.left -= 1;
    if h.left == 0 {
        let ua = h.ua.clone();
        ua.shutdown(ctx);
    }
    Ok(())
}

fn main() -> ExitCode {
    let o = options();
    let run = || -> Result<usize, Box<dyn std::error::Error>> {
        let mut kernel = Kernel::new()?;
        let ua = HttpClient::builder()
            .alias("ua")
            .timeout(o.timeout)
            .follow_redirects(o.redirects)
            .accept_encoding(true)
            .build(&mut kernel)?;
        let mut requests = Vec::new();
        for u in &o.urls {
            let req = http::Request::get(u.as_str())
                .body(Vec::new())
                .map_err(|e| format!("bad URL {u:?}: {e}"))?;
            requests.push(req);
        }
        let fetch = Fetch {
            ua: ua.clone(),
            left: requests.len(),
            failed: 0,
            verbose: o.verbose,
        };
        let failed = std::rc::Rc::new(std::cell::Cell::new(0));
        let f2 = failed.clone();
        kernel.create(
            Session::new(fetch)
                .on("_start", move |ctx: &mut Ctx<'_, Fetch>| {
                    for req in requests.clone() {
                        let s = Submit::new("response", req).tag(Instant::now());
                        if let Err(e) = ua.submit(ctx, s) {
                            eprintln!("fetch: {e}");
                        }
                    }
                })
                .on("response", response)
                .on("_stop", move |ctx: &mut Ctx<'_, Fetch>| {
                    f2.set(ctx.heap().failed)
                }),
        )?;
        kernel.run()?;
        Ok(failed.get())
    };
    match run() {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fetch: {e}");
            ExitCode::FAILURE
        }
    }
}
