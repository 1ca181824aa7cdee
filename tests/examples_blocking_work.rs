//! `examples/blocking_work.rs`, run as a program: every job handed to the worker pool is
//! answered once, with the right value, while the kernel's own timer keeps ticking.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    let bin = common::example("blocking_work");
    Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

#[test]
fn every_job_is_answered_while_the_kernel_ticks() {
    let _w = common::timeout(120, "blocking_work");
    let out = run(&["--jobs", "6", "--threads", "3", "--size", "20000"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let last = lines.pop().expect("a summary line");
    let ticks: u64 = last
        .strip_prefix("6 jobs on 3 threads, ")
        .and_then(|r| r.strip_suffix(" ticks meanwhile"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary {last:?}"));
    assert!(ticks >= 1, "{last}");
    // pi(x) for x = 20,000 .. 120,000: each job once, whatever order they finished in.
    let want: BTreeMap<u64, String> = [2262, 4203, 6057, 7837, 9592, 11301]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                i as u64,
                format!("job {i}: {p} primes below {}", 20_000 * (i + 1)),
            )
        })
        .collect();
    let got: BTreeMap<u64, String> = lines
        .iter()
        .map(|l| {
            let n = l
                .strip_prefix("job ")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("line {l:?}"));
            (n, (*l).to_owned())
        })
        .collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(got, want);
}

#[test]
fn bad_arguments_are_an_error() {
    let out = run(&["--threads", "none"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'none' for --threads"));
    let out = run(&["--threads", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads needs a positive number"));
}
