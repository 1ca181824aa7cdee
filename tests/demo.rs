//! The demo runs to completion and prints its one summary line; bad arguments are a clear
//! error, not a panic.

mod common;

use std::process::Command;

fn demo() -> Command {
    Command::new(common::example("demo"))
}

#[test]
fn demo_prints_the_summary_line() {
    let out = demo()
        .args(["--sessions", "7", "--hops", "50"])
        .output()
        .expect("demo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().last().expect("a summary line");
    assert!(
        line.starts_with("sessions=7 hops=50 events=100 elapsed_ms="),
        "{line}"
    );
    assert!(line.contains(" events_per_sec="), "{line}");
}

#[test]
fn demo_rejects_bad_arguments() {
    let out = demo().args(["--hops", "many"]).output().expect("demo runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--hops needs a positive number"));
}
