//! The chaos suite, client side: the demo (the keep-alive manager with its retry and
//! response timeout) against servers that misbehave, each a small server on 127.0.0.1 in a
//! thread of the test. Whatever the server does, every request ends exactly once (the
//! summary line counts them all), the exit status says whether any failed, and nothing
//! hangs.
//!
//! - a server that closes after every response without saying so (`Connection: close`
//!   missing): reused sockets fail before any response byte, and the retry on a fresh
//!   connection makes every request succeed;
//! - a server that closes every third connection's socket after a response, at random
//!   moments for the client: the same;
//! - a server that resets every connection after reading the request: every request fails,
//!   once each;
//! - a server that answers garbage: every request fails, once each.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
const REQUESTS: &str = "40";

/// How a misbehaving server answers one request on a connection; `Err` closes the
/// connection (after the answer, if any).
type Behaviour = fn(conn: usize, nth: usize, s: &TcpStream) -> Result<(), ()>;

/// Serves on a thread: reads request heads and answers them as `behave` says.
fn serve(behave: Behaviour) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let conns = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            let conn = conns.fetch_add(1, Ordering::Relaxed);
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut nth = 0;
                loop {
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match r.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    if behave(conn, nth, &s).is_err() {
                        return;
                    }
                    nth += 1;
                }
            });
        }
    });
    port
}

/// Runs the demo against `port`; returns (errors, succeeded).
fn demo_against(port: u16) -> (u64, bool) {
    let out = Command::new(common::example("demo"))
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}/"),
            "-n",
            REQUESTS,
            "-c",
            "4",
            "--response-timeout",
            "3",
        ])
        .output()
        .expect("demo runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = text
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no summary line; stderr: {stderr}"));
    assert!(
        line.starts_with(&format!("requests={REQUESTS} ")),
        "{line}\n{stderr}"
    );
    let errors = line
        .split(' ')
        .find_map(|kv| kv.strip_prefix("errors="))
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| panic!("no error count in {line}"));
    assert_eq!(
        out.status.success(),
        errors == 0,
        "exit status {} with {errors} errors",
        out.status
    );
    (errors, out.status.success())
}

#[test]
fn a_server_that_closes_after_every_response_without_saying_so() {
    let _guard = common::timeout(60, "closes_after_every_response");
    let port = serve(|_, _, s| {
        (&*s).write_all(OK).map_err(drop)?;
        Err(())
    });
    let (errors, ok) = demo_against(port);
    assert_eq!(errors, 0);
    assert!(ok);
}

#[test]
fn a_server_that_closes_some_connections_at_random_moments() {
    let _guard = common::timeout(60, "closes_some_connections");
    let port = serve(|conn, nth, s| {
        (&*s).write_all(OK).map_err(drop)?;
        // Every third connection goes after its second answer.
        if conn % 3 == 0 && nth == 1 {
            return Err(());
        }
        Ok(())
    });
    let (errors, _) = demo_against(port);
    assert_eq!(errors, 0);
}

#[test]
fn a_server_that_resets_every_connection() {
    let _guard = common::timeout(60, "resets_every_connection");
    let port = serve(|_, _, s| {
        let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
        Err(())
    });
    let (errors, ok) = demo_against(port);
    assert_eq!(errors, REQUESTS.parse::<u64>().unwrap());
    assert!(!ok);
}

#[test]
fn a_server_that_answers_garbage() {
    let _guard = common::timeout(60, "answers_garbage");
    let port = serve(|_, _, s| {
        (&*s)
            .write_all(b"HTTP/1.1 two hundred\r\n\xff\xfe garbage\r\n\r\n")
            .map_err(drop)?;
        Err(())
    });
    let (errors, ok) = demo_against(port);
    assert_eq!(errors, REQUESTS.parse::<u64>().unwrap());
    assert!(!ok);
}
