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
//! - a server that answers garbage: every request fails, once each;
//! - a server that accepts and never speaks TLS: the connect timeout ends every request;
//! - a server that goes away in the middle of the run and comes back: every request ends,
//!   and the ones after the restart succeed;
//! - a server whose every connection closes on its second request: retries go out on
//!   fresh connections, so none meets a second stale socket (without that, 1-2 of 40
//!   requests failed in every run).

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
    demo_with(&format!("http://127.0.0.1:{port}/"), &[])
}

/// Runs the demo on `url` with `extra` arguments; returns (errors, succeeded).
fn demo_with(url: &str, extra: &[&str]) -> (u64, bool) {
    let out = Command::new(common::example("demo"))
        .args([
            "--url",
            url,
            "-n",
            REQUESTS,
            "-c",
            "4",
            "--response-timeout",
            "3",
            // Every request must get its answer, however the server misbehaves.
            "--keep-going",
        ])
        .args(extra)
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

#[test]
fn a_server_that_accepts_and_never_speaks_tls() {
    let _guard = common::timeout(60, "never_speaks_tls");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let (errors, ok) = demo_with(&format!("https://127.0.0.1:{port}/"), &["--timeout", "0.3"]);
    assert_eq!(errors, REQUESTS.parse::<u64>().unwrap());
    assert!(!ok);
}

#[test]
fn a_server_that_restarts_in_the_middle_of_the_run() {
    let _guard = common::timeout(60, "restarts");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (srv, dn) = (Arc::clone(&served), Arc::clone(&down));
    std::thread::spawn(move || {
        // The first life: answers until 15 requests are served, then closes everything.
        listener.set_nonblocking(true).unwrap();
        let mut conns: Vec<std::thread::JoinHandle<()>> = Vec::new();
        while !dn.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    let (srv, dn) = (Arc::clone(&srv), Arc::clone(&dn));
                    conns.push(std::thread::spawn(move || {
                        let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
                        let mut r = BufReader::new(s.try_clone().unwrap());
                        let mut line = String::new();
                        while !dn.load(Ordering::Relaxed) {
                            line.clear();
                            match r.read_line(&mut line) {
                                Ok(0) => return,
                                Ok(_) if line == "\r\n" => {
                                    if (&s).write_all(OK).is_err() {
                                        return;
                                    }
                                    if srv.fetch_add(1, Ordering::Relaxed) + 1 >= 15 {
                                        dn.store(true, Ordering::Relaxed);
                                    }
                                }
                                Ok(_) => {}
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                Err(_) => return,
                            }
                        }
                    }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        drop(listener);
        for c in conns {
            let _ = c.join();
        }
        // Down for a moment (the outage being tested), then the second life on the same
        // port, answering everything.
        std::thread::sleep(Duration::from_millis(300));
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                loop {
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            if (&s).write_all(OK).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    let (errors, _) = demo_against(port);
    let total = REQUESTS.parse::<u64>().unwrap();
    assert!(
        served.load(Ordering::Relaxed) >= 15,
        "the first life served too little"
    );
    assert!(
        errors < total - 15,
        "{errors} errors: the second life served nothing"
    );
}

/// Every connection answers one request and closes on the next without answering, as a
/// server does whose idle timeout crosses the request. A request that fails so on a reused
/// connection is retried once, on a fresh connection: were the retry handed the other
/// pooled socket, the same close would fail it again.
#[test]
fn a_retry_never_meets_a_second_stale_socket() {
    let _guard = common::timeout(60, "second_stale_socket");
    let port = serve(|_, nth, s| {
        if nth == 0 {
            (&*s).write_all(OK).map_err(drop)
        } else {
            Err(())
        }
    });
    for _ in 0..5 {
        let (errors, ok) = demo_with(&format!("http://127.0.0.1:{port}/"), &[]);
        assert_eq!(errors, 0);
        assert!(ok);
    }
}
