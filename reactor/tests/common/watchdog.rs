//! The test watchdog, shared by the reactor's tests and the root crate's (which include
//! this file by path).

use std::sync::{Arc, Condvar, Mutex};
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
