//! The network examples, run as programs: `echo_server` (echo, then a clean exit on SIGINT
//! and SIGTERM), `chat_server` (fan-out to two clients) and `rot13` (its whole output).
//!
//! The servers listen on 127.0.0.1 port 0 and print `listening on ADDRESS` first; the
//! tests read that line, then talk to them with plain `std::net` sockets. Every read and
//! wait is bounded, so a broken server fails the test instead of hanging it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(10);

/// A server example running as a child process.
struct Server {
    child: Option<Child>,
    pid: u32,
    addr: SocketAddr,
}

impl Server {
    /// Starts example `name` with `--port 0` and reads its address from its first line.
    fn start(name: &str) -> Server {
        let bin = common::example(name);
        let mut cmd = Command::new(&bin);
        cmd.args(["--port", "0"]);
        Self::start_command(name, cmd)
    }

    /// Starts example `name` as [`start`](Server::start) does, allowed `nofile` open
    /// descriptors (`ulimit -n`), with warnings logged; the log arrives on the receiver.
    fn start_limited(name: &str, nofile: u32) -> (Server, mpsc::Receiver<String>) {
        let bin = common::example(name);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" --port 0"))
            .arg(&bin)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped());
        let mut server = Self::start_command(name, cmd);
        let child = server.child.as_mut().expect("running");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (server, rx)
    }

    fn start_command(name: &str, mut cmd: Command) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {name}: {e}"));
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = Server {
            child: Some(child),
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = first_line(stdout).unwrap_or_else(|| {
            server.kill();
            panic!("{name} printed no first line within {STEP:?}")
        });
        let addr = line
            .trim_end()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{name}'s first line is {line:?}"));
        server.addr = addr;
        server
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect to the example");
        s.set_read_timeout(Some(STEP)).expect("read timeout");
        s
    }

    /// Sends signal `sig` (e.g. "-INT") with kill(1).
    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {sig} {} failed", self.pid);
    }

    /// Waits for the child to exit, at most [`STEP`].
    fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("still running");
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send(());
            status
        });
        match rx.recv_timeout(STEP) {
            Ok(()) => waiter.join().expect("waiter").expect("wait"),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &self.pid.to_string()])
                    .status();
                panic!("the example did not exit within {STEP:?}");
            }
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The child's first output line, read on a thread so that the wait is bounded.
fn first_line(stdout: ChildStdout) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        if r.read_line(&mut line).is_ok() {
            let _ = tx.send(line);
        }
        // Keep reading so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    rx.recv_timeout(STEP).ok()
}

/// A line-reading client: one `BufReader` per connection, so buffered bytes are kept.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn new(s: TcpStream) -> Client {
        let w = s.try_clone().expect("clone");
        Client {
            r: BufReader::new(s),
            w,
        }
    }

    fn say(&mut self, line: &str) {
        self.w
            .write_all(format!("{line}\n").as_bytes())
            .expect("write");
    }

    /// The next line without its CRLF; panics on EOF or after [`STEP`].
    fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self.r.read_line(&mut l).expect("a line within the timeout");
        assert!(n > 0, "unexpected EOF");
        l.trim_end_matches(['\r', '\n']).to_owned()
    }

    /// Whether the server closed the connection (EOF within [`STEP`], nothing before it).
    fn at_eof(&mut self) -> bool {
        let mut rest = Vec::new();
        self.r.read_to_end(&mut rest).is_ok() && rest.is_empty()
    }
}

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

/// The server's resident memory, in KiB (`VmRSS` of `/proc/PID/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A client that sends and never reads made the server buffer twice what it sent (300 MB
/// sent, 621 MB resident). With backpressure on by default the server stops reading from
/// it, so the client can push only the server's high mark and the sockets' buffers.
#[test]
fn a_client_that_never_reads_cannot_grow_echo_server() {
    let server = Server::start("echo_server");
    let before = rss_kib(server.pid);
    let mut hog = server.connect();
    hog.set_write_timeout(Some(Duration::from_millis(500)))
        .expect("write timeout");
    let chunk = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n".repeat(1024);
    let mut sent = 0usize;
    while sent < 64 << 20 {
        match hog.write(&chunk) {
            Ok(n) => sent += n,
            // Nothing moved for half a second: the server has stopped reading.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
            Err(e) => panic!("writing: {e}"),
        }
    }
    assert!(
        sent < 64 << 20,
        "the server read 64 MiB from a client that never reads"
    );
    let grown = rss_kib(server.pid).saturating_sub(before);
    assert!(
        grown < 16 * 1024,
        "the server grew by {grown} KiB after {sent} bytes from a client that never reads"
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
    hog.set_write_timeout(Some(Duration::from_millis(500)))
        .expect("write timeout");
    let chunk = b"never read this\n".repeat(4096);
    for _ in 0..10_000 {
        match hog.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
            Err(e) => panic!("writing: {e}"),
        }
    }
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
