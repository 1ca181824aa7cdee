//! `examples/tail.rs`, run as a program: it prints the lines appended to a file, and keeps
//! following the file through a rotation by rename and a truncation; polling every 0.05 s,
//! and with `--notify` (inotify, polls 30 s apart).
//!
//! The file is a unique one under the temporary directory. The test waits for the
//! example's `following FILE` on standard error before it appends anything (the example
//! starts at the end of the file); every later step waits for the line it caused on
//! standard output. Every wait is bounded, so a broken example fails the test instead of
//! hanging it.

mod common;

use common::example_server::STEP;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

/// The lines a child writes on one of its outputs, as they come.
fn lines_of(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line, within [`STEP`].
#[track_caller]
fn next(rx: &mpsc::Receiver<String>, what: &str) -> String {
    rx.recv_timeout(STEP)
        .unwrap_or_else(|_| panic!("no {what} within {STEP:?}"))
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open the file to append");
    f.write_all(text.as_bytes()).expect("append");
}

/// Kills the example and removes the files when the test ends, passed or not.
struct Cleanup {
    child: Child,
    files: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

#[test]
fn tail_prints_appended_lines_and_survives_rotation_and_truncation() {
    follow("poll", &["--interval", "0.05"]);
}

/// With `--notify` and polls 30 s apart, every line within [`STEP`] (10 s) is one that
/// inotify reported.
#[cfg(target_os = "linux")]
#[test]
fn tail_with_notify_prints_what_inotify_reports() {
    follow("notify", &["--notify", "--interval", "30"]);
}

/// Runs the example with `args` on a file of its own (named after `what`): it prints the
/// lines appended, and follows the file through a rotation by rename and a truncation.
fn follow(what: &str, args: &[&str]) {
    let bin = common::example("tail");
    let dir = std::env::temp_dir();
    let file = dir.join(format!(
        "keepalive-tail-example-{}-{what}.log",
        std::process::id()
    ));
    let rotated = dir.join(format!(
        "keepalive-tail-example-{}-{what}.log.1",
        std::process::id()
    ));
    std::fs::write(&file, "written before the tail started\n").unwrap();

    let mut child = Command::new(&bin)
        .arg(&file)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let out = lines_of(child.stdout.take().expect("piped stdout"));
    let err = lines_of(child.stderr.take().expect("piped stderr"));
    let _cleanup = Cleanup {
        child,
        files: vec![file.clone(), rotated.clone()],
    };

    assert_eq!(
        next(&err, "start message"),
        format!("following {}", file.display())
    );
    append(&file, "alpha\n");
    assert_eq!(next(&out, "first line"), "alpha");
    append(&file, "beta\ngamma\n");
    assert_eq!(next(&out, "second line"), "beta");
    assert_eq!(next(&out, "third line"), "gamma");

    // Rotation: the file is renamed away and made again.
    std::fs::rename(&file, &rotated).unwrap();
    std::fs::write(&file, "after rotation\n").unwrap();
    assert_eq!(next(&out, "the new file's line"), "after rotation");
    assert!(next(&err, "rotation notice").contains("was rotated or truncated"));

    // Truncation: shorter than before, read from its start.
    std::fs::write(&file, "cut\n").unwrap();
    assert_eq!(next(&out, "the truncated file's line"), "cut");
    assert!(next(&err, "truncation notice").contains("was rotated or truncated"));

    // Nothing was printed twice, or out of turn.
    assert!(out.try_recv().is_err());
}
