//! The main demo: with no arguments it fetches from its embedded keep-alive server and
//! prints one summary line; with `--url` it fetches from a real server; bad arguments are
//! a clear error, not a panic.

mod common;

use std::process::Command;

fn demo() -> Command {
    Command::new(common::example("demo"))
}

/// The numbers of the summary line, by name.
fn summary(line: &str) -> std::collections::HashMap<String, f64> {
    line.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().expect("a number")))
        .collect()
}

/// Runs the demo with `args` against a loopback port nobody listens on.
fn against_a_refusing_port(args: &[&str]) -> std::process::Output {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    demo()
        .args(["--url", &format!("http://127.0.0.1:{port}/")])
        .args(args)
        .output()
        .expect("demo runs")
}

/// Runs the demo with `args`, which must succeed: its standard output and summary line.
fn run_ok(args: &[&str]) -> (String, String) {
    let out = demo().args(args).output().expect("demo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().last().expect("a summary line").to_owned();
    (text, line)
}

#[test]
fn demo_fetches_from_its_embedded_server() {
    let (_, line) = run_ok(&["-n", "1000", "-c", "4"]);
    assert!(line.starts_with("requests=1000 errors=0 "), "{line}");
    let s = summary(&line);
    for key in ["new_connections", "reused", "rps", "p50_us", "p99_us"] {
        assert!(s.contains_key(key), "{key} missing in {line}");
    }
    // The embedded server closes a connection after 100 requests: 1000 requests over 4
    // workers need at least 10 connections, and every other request reuses one.
    assert!(s["new_connections"] >= 10.0, "{line}");
    assert_eq!(s["new_connections"] + s["reused"], 1000.0, "{line}");
    assert!(s["p50_us"] <= s["p99_us"], "{line}");
}

/// `--threads 2`: two kernels, each with its own manager, client and embedded server on
/// the same port; the summary adds both kernels' numbers up.
#[test]
fn demo_on_two_kernels_adds_their_numbers_up() {
    let _w = common::timeout(120, "demo_on_two_kernels");
    let (text, line) = run_ok(&["-n", "1000", "-c", "4", "--threads", "2"]);
    assert!(text.contains(" threads=2"), "{text}");
    assert!(line.starts_with("requests=1000 errors=0 "), "{line}");
    let s = summary(&line);
    // Two managers, two workers each; each embedded server closes a connection after 100
    // requests, so 1000 requests need at least 10 connections, and every request is
    // counted once, on one kernel or the other.
    assert!(s["new_connections"] >= 10.0, "{line}");
    assert_eq!(s["new_connections"] + s["reused"], 1000.0, "{line}");
    assert!(s["p50_us"] > 0.0 && s["p50_us"] <= s["p99_us"], "{line}");
}

/// More kernels than requests: the kernels with no share finish at once, and the servers
/// still stop once the others are done (the run ends, repeatedly).
#[test]
fn demo_with_more_kernels_than_requests() {
    let _w = common::timeout(120, "demo_with_more_kernels_than_requests");
    for _ in 0..5 {
        let (_, line) = run_ok(&["-n", "2", "--threads", "3"]);
        assert!(line.starts_with("requests=2 errors=0 "), "{line}");
    }
}

/// Against a port that refuses, on two kernels: each stops early, the error is printed
/// once across both, and the summary counts every failure.
#[test]
fn demo_on_two_kernels_reports_errors_once() {
    let _w = common::timeout(60, "demo_on_two_kernels_reports_errors_once");
    let out = against_a_refusing_port(&["-n", "100000", "--threads", "2"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let first = stderr
        .lines()
        .filter(|l| l.starts_with("request failed:") && l.contains("Connection refused"))
        .count();
    assert_eq!(first, 1, "{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().last().expect("a summary line");
    let s = summary(line);
    assert!(s["requests"] >= 40.0 && s["requests"] < 1000.0, "{line}");
    assert_eq!(s["errors"], s["requests"], "{line}");
}

#[test]
fn demo_rejects_bad_arguments() {
    let out = demo().args(["-n", "many"]).output().expect("demo runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-n needs a positive number"));
    let out = demo().args(["--threads", "0"]).output().expect("demo runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads needs a positive number"));
    let out = demo()
        .args(["--url", "ftp://x/"])
        .output()
        .expect("demo runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported scheme"));
}

#[test]
fn demo_reports_errors_against_a_closed_port() {
    let out = against_a_refusing_port(&["-n", "3", "-c", "2"]);
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().last().expect("a summary line");
    assert!(line.starts_with("requests=3 errors=3 "), "{line}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Connection refused"));
}

/// Every request failing the same way (a port that refuses): the run stops after the first
/// few instead of trying all 100,000, says why, and prints the error once with its count,
/// not once per request.
#[test]
fn demo_stops_early_when_every_request_fails_the_same_way() {
    let _watchdog = common::timeout(60, "demo_stops_early");
    let out = against_a_refusing_port(&["-n", "100000"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("stopping early: the first 20 requests all failed the same way"),
        "{stderr}"
    );
    let refused = stderr
        .lines()
        .filter(|l| l.contains("Connection refused"))
        .count();
    assert_eq!(
        refused, 3,
        "the error once, in the stop message, and counted: {stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.ends_with("Connection refused") && l.contains(" x ")),
        "{stderr}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().last().expect("a summary line");
    let s = summary(line);
    assert!(
        s["requests"] < 100.0 && s["requests"] == s["errors"],
        "{line}"
    );
}

/// A GET that fails on a reused connection before any response byte (the server closed it
/// as the request went out) is retried once on a new connection, and counts as no error.
#[test]
fn demo_retries_once_on_a_reused_connection_the_server_closed() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
        // Reads one request head; false at end of stream.
        fn request(r: &mut BufReader<std::net::TcpStream>) -> bool {
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => return false,
                    Ok(_) if line == "\r\n" => return true,
                    Ok(_) => {}
                }
            }
        }
        // First connection: one answer, then the next request is met with a close.
        let (s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        assert!(request(&mut r));
        (&s).write_all(OK).unwrap();
        assert!(request(&mut r));
        drop((r, s));
        // Second connection: answers everything.
        let (s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        while request(&mut r) {
            (&s).write_all(OK).unwrap();
        }
    });
    let out = demo()
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}/"),
            "-n",
            "2",
            "-c",
            "1",
        ])
        .output()
        .expect("demo runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().last().expect("a summary line");
    assert!(
        line.starts_with("requests=2 errors=0 new_connections=2 reused=1 "),
        "{line}"
    );
    assert!(
        stderr.contains("retried on a new connection: 1"),
        "{stderr}"
    );
    server.join().unwrap();
}

/// The demo hung on a server that never answers: the manager's timeout ends when the
/// connection is handed out. The response timeout ends every request, and the summary
/// line still comes.
#[test]
fn demo_ends_every_request_against_a_server_that_never_answers() {
    let _guard = common::timeout(
        30,
        "demo_ends_every_request_against_a_server_that_never_answers",
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and keeps every connection open, reading nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(16) {
            held.push(s);
        }
    });
    let out = demo()
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}/"),
            "-n",
            "2",
            "-c",
            "1",
            "--response-timeout",
            "0.2",
        ])
        .output()
        .expect("demo runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().last().expect("a summary line");
    assert!(line.starts_with("requests=2 errors=2 "), "{line}");
    assert_eq!(stderr.matches("response timeout").count(), 2, "{stderr}");
}
