//! The network examples, run as programs: `echo_server` (echo, then a clean exit on SIGINT
//! and SIGTERM, on one kernel or, with `--threads 2`, on two), `chat_server` (fan-out to two clients) and `rot13` (its whole output).
//!
//! The servers listen on 127.0.0.1 port 0 and print `listening on ADDRESS` first; the
//! tests read that line, then talk to them with plain `std::net` sockets. Every read and
//! wait is bounded, so a broken server fails the test instead of hanging it.

mod common;

use common::example_server::{Client, Server, STEP};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;

fn echo_then_signal(sig: &str) {
    let mut server = Server::start("echo_server");
    let mut a = Client::new(server.connect());
    let mut b = Client::new(server.connect());
    a.say("hello");
    assert_eq!(a.line(), "hello");
    b.say("two words");
    b.say("and a third line");
    assert_eq!(b.line(), "two words");
    assert_eq!(b.line(), "and a third line");
    a.say("héllo wörld");
    assert_eq!(a.line(), "héllo wörld");

    // A signal with both clients still connected: the server closes them and exits 0.
    server.signal(sig);
    assert!(a.at_eof(), "client a not disconnected");
    assert!(b.at_eof(), "client b not disconnected");
    let status = server.wait();
    assert!(status.success(), "echo_server exited with {status}");
}

#[test]
fn echo_server_echoes_and_exits_0_on_sigint() {
    echo_then_signal("-INT");
}

#[test]
fn echo_server_exits_0_on_sigterm() {
    echo_then_signal("-TERM");
}

#[test]
fn echo_server_exits_0_on_sigint_when_idle() {
    let mut server = Server::start("echo_server");
    server.signal("-INT");
    let status = server.wait();
    assert!(status.success(), "echo_server exited with {status}");
}

/// The names of a process's threads.
fn thread_names(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the server's threads")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim_end().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn echo_server_on_two_kernels_echoes_and_exits_0_on_sigterm() {
    let mut server = Server::start_with("echo_server", &["--threads", "2"]);
    let names = thread_names(server.pid);
    assert!(
        names.iter().any(|n| n == "echo-0") && names.iter().any(|n| n == "echo-1"),
        "threads: {names:?}"
    );
    // Enough clients that both kernels take some (the system spreads them by a hash).
    let mut clients: Vec<Client> = (0..32).map(|_| Client::new(server.connect())).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.say(&format!("client {i}"));
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.line(), format!("client {i}"));
    }
    server.signal("-TERM");
    for (i, c) in clients.iter_mut().enumerate() {
        assert!(c.at_eof(), "client {i} not disconnected");
    }
    let status = server.wait();
    assert!(
        status.success(),
        "echo_server --threads 2 exited with {status}"
    );
}

#[test]
fn echo_server_on_two_kernels_exits_0_on_sigint_when_idle() {
    let mut server = Server::start_with("echo_server", &["--threads", "2"]);
    server.signal("-INT");
    let status = server.wait();
    assert!(
        status.success(),
        "echo_server --threads 2 exited with {status}"
    );
}

#[test]
fn echo_server_refuses_zero_threads() {
    let out = Command::new(common::example("echo_server"))
        .args(["--threads", "0"])
        .output()
        .expect("echo_server runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads needs a positive number"));
}

/// Parses "N rest" into N.
fn id_of(line: &str, rest: &str) -> u64 {
    line.strip_suffix(rest)
        .and_then(|n| n.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("{line:?} is not \"N {rest}\""))
}

#[test]
fn chat_server_fans_out_to_every_user() {
    let server = Server::start("chat_server");
    let mut a = Client::new(server.connect());
    assert_eq!(a.line(), "You connected.");
    let mut b = Client::new(server.connect());
    assert_eq!(b.line(), "You connected.");
    // A hears about B by B's session ID.
    let b_id = id_of(&a.line(), "connected.");

    a.say("hello, room");
    assert_eq!(a.line(), "You said: hello, room");
    let heard = b.line();
    let a_id = id_of(&heard, "said: hello, room");
    assert_ne!(a_id, b_id);

    b.say("hi a");
    assert_eq!(b.line(), "You said: hi a");
    assert_eq!(a.line(), format!("{b_id} said: hi a"));

    // B leaves: A is told (the cookbook's ClientError and ClientDisconnected both
    // broadcast it, so it comes twice, as with POE).
    drop(b);
    assert_eq!(a.line(), format!("{b_id} disconnected."));
    assert_eq!(a.line(), format!("{b_id} disconnected."));
    a.say("anyone?");
    assert_eq!(a.line(), "You said: anyone?");
}

#[test]
fn rot13_prints_the_conversation() {
    let bin = common::example("rot13");
    let mut child = Command::new(&bin)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        let _ = tx.send((child.wait(), out));
    });
    let (status, out) = rx.recv_timeout(STEP).unwrap_or_else(|_| {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("rot13 did not finish within {STEP:?}")
    });
    let status = status.expect("wait");
    assert!(status.success(), "rot13 exited with {status}");
    assert_eq!(
        out,
        "got a connection from 127.0.0.1\n\
         from server: Smile from the server!\n\
         from server: Uryyb, jbeyq!\n\
         from server: Gur dhvpx oebja sbk whzcf bire gur ynml qbt.\n\
         disconnected from server\n\
         client disconnected\n"
    );
}
