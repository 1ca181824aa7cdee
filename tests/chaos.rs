//! The chaos suite: hostile clients against the servers built on the reactor, and what
//! must survive them. Each test starts `examples/echo_server` (the `ServerTcp` component
//! with its defaults) as a child process on 127.0.0.1 and asserts that the server still
//! answers a well-behaved client afterwards, and where clients come and go, that it holds
//! no more descriptors than before they came; every wait is bounded.
//!
//! - descriptor exhaustion (a child with 32 descriptors and 60 clients);
//! - a client that sends and never reads (backpressure bounds what it costs);
//! - SIGTERM with a client that never drains (the drain deadline);
//! - a line without end (the default 1 MiB line limit);
//! - 5,000 idle connections (memory per connection), binary garbage, a reset in the
//!   middle of a write, a half-close.

mod common;

use common::example_server::{
    assert_descriptors_back_to, fd_count, idle_connections_cost_at_most, rss_kib, Client, Server,
    STEP,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A server that ran out of descriptors refused every client from then on (POE's default:
/// the listener goes on the first `EMFILE`). With 32 descriptors and 60 clients at once it
/// must run out, say so, and still answer a new client once the crowd has left.
#[test]
fn echo_server_survives_running_out_of_descriptors() {
    let (server, log) = Server::start_limited("echo_server", 32);
    let mut crowd: Vec<TcpStream> = (0..60).map(|_| server.connect()).collect();
    for c in &mut crowd {
        let _ = c.write_all(b"crowd\n");
    }
    // The first client is answered, so the server has seen the crowd's connections.
    let mut first = Client::new(crowd.remove(0));
    assert_eq!(first.line(), "crowd");
    // It ran out of descriptors and said so.
    let warning = log
        .recv_timeout(STEP)
        .expect("a warning within the time limit");
    assert!(
        warning.contains("Too many open files") && warning.contains("accepting again in"),
        "the server's first warning is {warning:?}"
    );
    drop(first);
    drop(crowd);
    let mut late = Client::new(server.connect());
    late.say("after the storm");
    assert_eq!(late.line(), "after the storm");
}

/// Sends lines on `s` without reading until the server stops taking them (nothing moves
/// for half a second) or 64 MiB went; returns how much went.
fn send_until_held(s: &mut TcpStream) -> usize {
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .expect("write timeout");
    let chunk = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n".repeat(1024);
    let mut sent = 0usize;
    while sent < 64 << 20 {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
            Err(e) => panic!("writing: {e}"),
        }
    }
    sent
}

/// Clients that send and never read made the server buffer twice what they sent (300 MB
/// sent, 621 MB resident). With backpressure on by default the server stops reading from
/// each at its high mark (256 KiB of output octets, plus the answers to one 64 KiB read),
/// whatever they send. In memory that is more: each short answer is a chunk of its own,
/// so a 66-byte line costs about twice its size; the bound is four times the high mark
/// per client, and the measured cost about 870 KiB each.
#[test]
fn clients_that_never_read_cost_at_most_their_high_marks() {
    const CLIENTS: u64 = 4;
    let server = Server::start("echo_server");
    let before = rss_kib(server.pid);
    let mut hogs: Vec<TcpStream> = (0..CLIENTS).map(|_| server.connect()).collect();
    for hog in &mut hogs {
        let sent = send_until_held(hog);
        assert!(
            sent < 64 << 20,
            "the server read 64 MiB from a client that never reads"
        );
    }
    let grown = rss_kib(server.pid).saturating_sub(before);
    eprintln!("grew by {grown} KiB for {CLIENTS} clients that never read");
    // Per client: four times the high mark; and 1 MiB of allocator slack.
    let bound = CLIENTS * 4 * 256 + 1024;
    assert!(
        grown <= bound,
        "the server grew by {grown} KiB for {CLIENTS} clients that never read (bound {bound})"
    );
    // It still answers others.
    let mut other = Client::new(server.connect());
    other.say("still here");
    assert_eq!(other.line(), "still here");
}

/// On SIGTERM the server waited for every reply to be read, so one client that never reads
/// kept it alive for ever. It now closes such a client at the drain deadline (5 s by
/// default) and exits 0.
#[test]
fn echo_server_exits_on_sigterm_despite_a_client_that_never_reads() {
    let mut server = Server::start("echo_server");
    let mut hog = server.connect();
    send_until_held(&mut hog);
    server.signal("-TERM");
    let status = server.wait();
    assert!(status.success(), "echo_server exited with {status}");
}

/// A line without end made the buffer grow to 512 MiB per connection. The default filter
/// stops at 1 MiB: the client is disconnected, the others go on.
#[test]
fn echo_server_disconnects_a_line_over_a_megabyte() {
    let server = Server::start("echo_server");
    let mut long = server.connect();
    long.set_write_timeout(Some(STEP)).expect("write timeout");
    let chunk = vec![b'a'; 64 * 1024];
    let mut written = 0;
    for _ in 0..64 {
        match long.write_all(&chunk) {
            Ok(()) => written += chunk.len(),
            // The server has closed the connection.
            Err(_) => break,
        }
    }
    assert!(
        written >= 1 << 20,
        "the server closed after only {written} bytes"
    );
    let mut rest = Vec::new();
    match long.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "the long line was answered"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    let mut other = Client::new(server.connect());
    other.say("short");
    assert_eq!(other.line(), "short");
}

/// 5,000 connections that said one line and then idle cost the server at most 1 KiB each
/// (resident memory), and it still answers a new client.
#[test]
fn five_thousand_idle_connections_cost_at_most_a_kibibyte_each() {
    idle_connections_cost_at_most(5_000, 1024);
}

/// Binary garbage (every byte value, no newline for 100 KiB) neither stops the server nor
/// the connection: the next newline ends a record and the garbage comes back as sent.
#[test]
fn binary_garbage_is_just_bytes() {
    let server = Server::start("echo_server");
    let baseline = fd_count(server.pid);
    let mut s = server.connect();
    let garbage: Vec<u8> = (0..100 * 1024)
        .map(|i| (i % 256) as u8)
        .filter(|&b| b != b'\n' && b != b'\r')
        .collect();
    s.write_all(&garbage).expect("write");
    s.write_all(b"\n").expect("write");
    let mut back = vec![0u8; garbage.len() + 2];
    s.read_exact(&mut back).expect("the garbage comes back");
    assert_eq!(&back[..garbage.len()], &garbage[..]);
    assert_eq!(&back[garbage.len()..], b"\r\n");
    let mut other = Client::new(server.connect());
    other.say("fine");
    assert_eq!(other.line(), "fine");
    drop((s, other));
    assert_descriptors_back_to(&server, baseline);
}

/// A client that sends a lot and resets the connection (SO_LINGER 0) while the server is
/// writing its answers: the server meets ECONNRESET or EPIPE, drops that connection and
/// goes on.
#[test]
fn a_reset_in_the_middle_of_a_write_is_survived() {
    let server = Server::start("echo_server");
    let baseline = fd_count(server.pid);
    for _ in 0..5 {
        let s = server.connect();
        let sock = socket2::SockRef::from(&s);
        let chunk = b"reset me please\n".repeat(8192);
        (&s).write_all(&chunk).expect("write");
        sock.set_linger(Some(Duration::ZERO)).expect("linger");
        drop(s);
    }
    let mut other = Client::new(server.connect());
    other.say("after the resets");
    assert_eq!(other.line(), "after the resets");
    drop(other);
    // No descriptor of the reset connections is left behind.
    assert_descriptors_back_to(&server, baseline);
}

/// A client that sends a line and shuts its sending side: the server answers the line,
/// sees end-of-file and closes the connection.
#[test]
fn a_half_close_gets_its_answer_then_end_of_file() {
    let server = Server::start("echo_server");
    let baseline = fd_count(server.pid);
    let s = server.connect();
    (&s).write_all(b"last words\n").expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut c = Client::new(s);
    assert_eq!(c.line(), "last words");
    assert!(c.at_eof(), "the server did not close after end-of-file");
    drop(c);
    assert_descriptors_back_to(&server, baseline);
}
