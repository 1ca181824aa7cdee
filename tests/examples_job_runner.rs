//! `examples/job_runner.rs`, run as a program: N commands, at most K at once, every
//! output line streamed with its job's number, every exit reported, the next job started
//! only when one is done, and a failing job reflected in the summary and the exit status.

mod common;

use std::collections::HashSet;
use std::process::Command;

fn run(args: &[&str]) -> (String, Option<i32>) {
    let bin = common::example("job_runner");
    let out = Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

#[test]
fn at_most_k_jobs_run_at_once_and_every_line_and_exit_is_reported() {
    let job = "echo start; sleep 0.1; echo end";
    let mut args = vec!["--max", "2"];
    args.extend([job; 5]);
    args.push("echo doomed; exit 7");
    let (out, status) = run(&args);
    let mut running = HashSet::new();
    let mut most = 0;
    let mut lines_of = vec![Vec::new(); 7];
    for line in out.lines() {
        let Some(rest) = line.strip_prefix('[') else {
            continue;
        };
        let (n, text) = rest.split_once("] ").expect("a job line");
        let n: usize = n.parse().expect("a job number");
        if text.starts_with("started") {
            assert!(running.insert(n), "job {n} started twice");
            most = most.max(running.len());
        } else if text.starts_with("exited") {
            assert!(running.remove(&n), "job {n} ended without starting");
        } else {
            assert!(
                running.contains(&n),
                "job {n} printed while not running: {line}"
            );
        }
        lines_of[n].push(text.to_owned());
    }
    assert!(running.is_empty(), "jobs left running: {running:?}\n{out}");
    assert_eq!(
        most, 2,
        "at most, and at some point exactly, 2 at once\n{out}"
    );
    for (n, lines) in lines_of.iter().enumerate().skip(1).take(5) {
        assert_eq!(
            lines[1..],
            ["start", "end", "exited with status 0"],
            "job {n}\n{out}"
        );
    }
    assert_eq!(
        lines_of[6][1..],
        ["doomed", "exited with status 7"],
        "{out}"
    );
    assert!(out.ends_with("6 jobs: 5 succeeded, 1 failed\n"), "{out}");
    assert_eq!(status, Some(1), "a failed job fails the run");
}

#[test]
fn the_demo_jobs_run_by_default() {
    let (out, status) = run(&[]);
    assert!(out.contains("[2] ! beta"), "stderr lines are marked\n{out}");
    assert!(out.contains("[5] killed by signal 15"), "{out}");
    assert!(out.ends_with("6 jobs: 4 succeeded, 2 failed\n"), "{out}");
    assert_eq!(status, Some(1));
}
