//! Every example's command line: `--help` prints the usage on standard output and exits 0;
//! an unknown option, a stray argument or a malformed value is refused with one plain line
//! on standard error (no Debug quotes) and exit status 2, before anything starts.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;

/// The examples whose command lines are checked here, and whether each takes positional
/// arguments (a port, a file, commands).
const EXAMPLES: &[(&str, bool)] = &[
    ("chat_server", false),
    ("blocking_work", false),
    ("create", false),
    ("demo", false),
    ("echo_server", false),
    ("fakelogin", true),
    ("fetch", true),
    ("forkbomb", false),
    ("job_runner", true),
    ("names", false),
    ("objmaps", false),
    ("objsessions", false),
    ("packagesessions", false),
    ("queue", false),
    ("rot13", false),
    ("selects", false),
    ("sessions", false),
    ("signals", false),
    ("tail", true),
    ("tcp_watermarks", false),
    ("thrash", false),
    ("token_ring", false),
    ("udp_echo", false),
    ("unix_echo", false),
    ("watermarks", false),
    ("wheels2", false),
];

/// Runs example `name` with `args`. Each test arms a watchdog: a program that started
/// instead of refusing its arguments would end the test binary, failing the test.
fn run(name: &str, args: &[&str]) -> Output {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let bin = {
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        built
            .entry(name.to_owned())
            .or_insert_with(|| common::example(name))
            .clone()
    };
    Command::new(bin)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_prints_the_usage_on_stdout_and_exits_0() {
    let _watchdog = common::timeout(300, "help_prints_the_usage_on_stdout_and_exits_0");
    for &(name, _) in EXAMPLES {
        for flag in ["--help", "-h"] {
            let out = run(name, &[flag]);
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            assert_eq!(out.status.code(), Some(0), "{name} {flag}: {stderr}");
            assert!(
                stdout.starts_with(&format!("Usage: {name}")),
                "{name} {flag}: {stdout}"
            );
            assert!(stdout.contains("-h, --help"), "{name} {flag}: {stdout}");
            assert!(stderr.is_empty(), "{name} {flag}: {stderr}");
        }
    }
}

/// The refusal: exit status 2, nothing on standard output, and a first line on standard
/// error that names the program and what is wrong, without Debug quotes.
#[track_caller]
fn assert_refused(name: &str, args: &[&str], what: &str) {
    let out = run(name, args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
    assert!(stdout.is_empty(), "{name} {args:?} printed {stdout}");
    let first = stderr.lines().next().unwrap_or_default();
    assert_eq!(first, format!("{name}: {what}"), "{name} {args:?}");
    assert!(!stderr.contains('"'), "{name} {args:?}: {stderr}");
    assert!(
        stderr.contains(&format!("Usage: {name}")),
        "{name} {args:?}: {stderr}"
    );
}

#[test]
fn unknown_options_and_stray_arguments_are_refused_with_status_2() {
    let _watchdog = common::timeout(300, "unknown_options_and_stray_arguments_are_refused");
    for &(name, positional) in EXAMPLES {
        assert_refused(
            name,
            &["--no-such-option"],
            "invalid option '--no-such-option'",
        );
        if !positional {
            assert_refused(name, &["stray"], "unexpected argument 'stray'");
        }
    }
}

#[test]
fn malformed_values_are_refused_with_status_2() {
    let _watchdog = common::timeout(300, "malformed_values_are_refused_with_status_2");
    for name in [
        "chat_server",
        "echo_server",
        "selects",
        "tcp_watermarks",
        "thrash",
        "udp_echo",
        "watermarks",
        "wheels2",
    ] {
        assert_refused(
            name,
            &["--port", "http"],
            "invalid value 'http' for --port: invalid digit found in string",
        );
    }
    assert_refused(
        "echo_server",
        &["--threads", "0"],
        "--threads needs a positive number",
    );
    assert_refused(
        "token_ring",
        &["--hops", "0"],
        "--hops needs a positive number",
    );
    assert_refused(
        "job_runner",
        &["--max"],
        "missing argument for option '--max'",
    );
    assert_refused("tail", &[], "missing FILE");
    assert_refused("fetch", &[], "missing URL");
    assert_refused(
        "blocking_work",
        &["--jobs", "0"],
        "--jobs needs a positive number",
    );
    assert_refused("fakelogin", &["23", "24"], "unexpected argument '24'");
}
