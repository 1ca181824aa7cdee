//! The Rust peer of `examples/demo.rs` in `benches/http/run.sh`: N GETs of one URL with C in
//! flight through hyper-util's pooled client (`client::legacy::Client`, HTTP/1.1
//! keep-alive) on tokio's current_thread runtime, which is what a Rust user would pick
//! instead of our client for this job.
//!
//! ```text
//! http-bench --url http://127.0.0.1:8080/ [-n 200000] [-c 8]
//! ```
//!
//! Prints the demo's summary line: `requests=N errors=E new_connections=K reused=R rps=X
//! p50_us=A p99_us=B` (new_connections and reused are not observable through hyper's pool:
//! they are printed as 0 and N).

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

fn main() {
    let mut url = None;
    let (mut n, mut c) = (200_000u64, 8usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--url" => url = args.next(),
            "-n" => n = args.next().and_then(|v| v.parse().ok()).expect("-n N"),
            "-c" => c = args.next().and_then(|v| v.parse().ok()).expect("-c C"),
            _ => panic!("usage: http-bench --url URL [-n N] [-c C]"),
        }
    }
    let url: hyper::Uri = url.expect("--url URL").parse().expect("a URL");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(c)
            .build_http();
        let issued = Rc::new(RefCell::new(0u64));
        let results = Rc::new(RefCell::new((0u64, Vec::with_capacity(n as usize))));
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..c {
            let (client, url, issued, results) =
                (client.clone(), url.clone(), issued.clone(), results.clone());
            workers.push(tokio::task::spawn_local(async move {
                loop {
                    {
                        let mut i = issued.borrow_mut();
                        if *i >= n {
                            return;
                        }
                        *i += 1;
                    }
                    let t = Instant::now();
                    let ok = match client.get(url.clone()).await {
                        Ok(res) => {
                            let status = res.status();
                            match res.into_body().collect().await {
                                Ok(_) => status.is_success(),
                                Err(_) => false,
                            }
                        }
                        Err(_) => false,
                    };
                    let mut r = results.borrow_mut();
                    if ok {
                        r.1.push(t.elapsed().as_micros() as u32);
                    } else {
                        r.0 += 1;
                    }
                }
            }));
        }
        for w in workers {
            let _ = w.await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let (errors, mut lat) = std::mem::take(&mut *results.borrow_mut());
        lat.sort_unstable();
        let pct = |p: f64| {
            if lat.is_empty() {
                0
            } else {
                lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1]
            }
        };
        println!(
            "requests={n} errors={errors} new_connections=0 reused={n} rps={:.0} p50_us={} p99_us={}",
            n as f64 / elapsed,
            pct(0.5),
            pct(0.99)
        );
    });
}
