//! Ports poe-test-loops' `POE/Test/Loops/k_run_returns.pm`: `POE::Kernel->run()` returns
//! right away when there are no sessions.
//!
//! Upstream arms `alarm(10)` whose handler dies with "never returned", and checks that
//! `run()` returned without an error; here [`common::bounded`] runs the body on a thread
//! and fails the test if it has not finished within ten seconds.

mod common;

/// Upstream test 1, "POE::Kernel->run() returned right away": `is($@, "")` after
/// `eval { POE::Kernel->run() }` under a 10 s alarm.
#[test]
fn run_returns_right_away_without_sessions() {
    common::bounded("k_run_returns", || {
        let mut k = reactor::Kernel::new()?;
        let r = k.run();
        assert!(r.is_ok(), "run() with no sessions failed: {r:?}");
        assert_eq!(k.session_count(), 0);
        Ok(())
    });
}
