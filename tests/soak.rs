//! The soak: longer runs than CI affords, run by hand and recorded in
//! `docs/benchmarks.md`:
//!
//! ```text
//! cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! - 100,000 GETs through the keep-alive manager (the demo, 64 in flight) against an
//!   nginx that closes every connection after 5 requests: no error, every request once;
//! - 10,000 idle connections on `echo_server`: memory per connection, and a new client is
//!   still answered.

mod common;

use common::example_server::idle_connections_cost_at_most;
use common::nginx::{Nginx, NginxConfig};
use std::process::Command;
use std::time::Instant;

#[test]
#[ignore = "a soak: minutes of load, run by hand (see the file's doc)"]
fn soak_100k_gets_against_a_stingy_nginx() {
    let _t = common::timeout(600, "soak_100k_gets");
    let nginx = Nginx::start(NginxConfig {
        keepalive_requests: 5,
        workers: 2,
        ..NginxConfig::default()
    })
    .expect("nginx starts");
    let started = Instant::now();
    let out = Command::new(common::example("demo"))
        .args([
            "--url",
            &format!("http://127.0.0.1:{}/", nginx.port()),
            "-n",
            "100000",
            "-c",
            "64",
        ])
        .output()
        .expect("demo runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().last().expect("a summary line").to_owned();
    eprintln!("{line} ({:.1} s)", started.elapsed().as_secs_f64());
    assert!(
        out.status.success(),
        "{line}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(line.starts_with("requests=100000 errors=0 "), "{line}");
}

#[test]
#[ignore = "a soak: 10,000 connections, run by hand (see the file's doc)"]
fn soak_10k_idle_connections() {
    let _t = common::timeout(600, "soak_10k_idle");
    idle_connections_cost_at_most(10_000, 1024);
}
