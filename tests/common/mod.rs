//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod ka;
pub mod nginx;
pub mod test_server;

use std::path::PathBuf;
use std::process::Command;

/// The path of example `name`, built (or found up to date) first: `cargo test --test X`
/// does not build examples.
pub fn example(name: &str) -> PathBuf {
    let mut p = std::env::current_exe().expect("test binary path");
    p.pop();
    p.pop();
    let release = p.ends_with("release");
    p.push("examples");
    p.push(name);
    {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building example {name} failed");
    }
    p
}

/// Ends the test binary if a test runs longer than `secs` (a kernel blocked in its poller
/// cannot be stopped from inside). Dropping the guard disarms it.
pub struct Timeout(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

/// Arms a [`Timeout`] of `secs` seconds for the test named `what`.
pub fn timeout(secs: u64, what: &'static str) -> Timeout {
    use std::sync::{Arc, Condvar, Mutex};
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    let d = Arc::clone(&done);
    std::thread::spawn(move || {
        let (m, cv) = &*d;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = cv
            .wait_timeout_while(g, std::time::Duration::from_secs(secs), |done| !*done)
            .unwrap_or_else(|e| e.into_inner());
        if !*g {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{what}: timed out after {secs} s");
            std::process::exit(124);
        }
    });
    Timeout(done)
}

impl Drop for Timeout {
    fn drop(&mut self) {
        let (m, cv) = &*self.0;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}
