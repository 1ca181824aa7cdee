//! The network examples, run as programs: `echo_server` (echo, then a clean exit on SIGINT
//! and SIGTERM), `chat_server` (fan-out to two clients) and `rot13` (its whole output).
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
