//! Helpers shared by the wheel and component tests. Not every test file uses every one.
#![allow(dead_code)]

use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

/// Ends the test binary if a test runs longer than `secs` (a kernel blocked in its poller
/// cannot be stopped from inside). Dropping the guard disarms it.
pub struct Timeout(Arc<(Mutex<bool>, Condvar)>);

/// Arms a [`Timeout`] of `secs` seconds for the test named `what`.
pub fn timeout(secs: u64, what: &'static str) -> Timeout {
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    let d = Arc::clone(&done);
    std::thread::spawn(move || {
        let (m, cv) = &*d;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = cv
            .wait_timeout_while(g, Duration::from_secs(secs), |done| !*done)
            .unwrap_or_else(|e| e.into_inner());
        if !*g {
            // Straight to the descriptor: the test harness captures eprintln!.
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

/// How long one test may run.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Runs a test body on a thread of its own and fails the test if it has not finished
/// within [`LIMIT`]: a kernel that waits forever must fail the test, not stall it. (A
/// thread rather than a timer session, which would change what is tested: its timers
/// would keep the kernel from ever being idle.)
pub fn bounded(what: &'static str, body: fn() -> Result<(), Box<dyn std::error::Error>>) {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::Builder::new()
        .name(what.to_owned())
        .spawn(move || {
            let r = body().map_err(|e| e.to_string());
            let _ = tx.send(());
            r
        })
        .expect("spawn the test thread");
    if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(LIMIT) {
        panic!("{what}: still running after {LIMIT:?}; the kernel is stuck");
    }
    match h.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(p) => std::panic::resume_unwind(p),
    }
}
