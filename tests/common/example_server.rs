//! An example server run as a child process, and line-reading clients for it: what the
//! tests of the network examples and the chaos suite share.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long any one step may take.
pub const STEP: Duration = Duration::from_secs(10);

/// A server example running as a child process.
pub struct Server {
    child: Option<Child>,
    /// The server's process id.
    pub pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts example `name` with `--port 0` and reads its address from its first line.
    pub fn start(name: &str) -> Server {
        let bin = super::example(name);
        let mut cmd = Command::new(&bin);
        cmd.args(["--port", "0"]);
        Self::start_command(name, cmd)
    }

    /// Starts example `name` with `--port 0` and `args`.
    pub fn start_with(name: &str, args: &[&str]) -> Server {
        let bin = super::example(name);
        let mut cmd = Command::new(&bin);
        cmd.args(["--port", "0"]).args(args);
        Self::start_command(name, cmd)
    }

    /// Starts example `name` as [`start`](Server::start) does, allowed `nofile` open
    /// descriptors (`ulimit -n`), with warnings logged; the log arrives on the receiver.
    pub fn start_limited(name: &str, nofile: u32) -> (Server, mpsc::Receiver<String>) {
        let bin = super::example(name);
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

    fn start_command(name: &str, cmd: Command) -> Server {
        let (mut server, at) = Self::start_listening(name, cmd);
        server.addr = at
            .parse()
            .unwrap_or_else(|_| panic!("{name} listens on {at:?}, not an address"));
        server
    }

    /// Starts example `name` with `args` and returns it with what its first line says
    /// after `listening on ` (a UNIX socket's path, say); its `addr` stays 127.0.0.1:0.
    pub fn start_at(name: &str, args: &[&str]) -> (Server, String) {
        let mut cmd = Command::new(super::example(name));
        cmd.args(args);
        Self::start_listening(name, cmd)
    }

    fn start_listening(name: &str, mut cmd: Command) -> (Server, String) {
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
        let at = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{name}'s first line is {line:?}"))
            .to_owned();
        (server, at)
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect to the example");
        s.set_read_timeout(Some(STEP)).expect("read timeout");
        s
    }

    /// Sends signal `sig` (e.g. "-INT") with kill(1).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {sig} {} failed", self.pid);
    }

    /// Waits for the child to exit, at most [`STEP`].
    pub fn wait(&mut self) -> ExitStatus {
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

    pub fn kill(&mut self) {
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
pub struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    pub fn new(s: TcpStream) -> Client {
        let w = s.try_clone().expect("clone");
        Client {
            r: BufReader::new(s),
            w,
        }
    }

    pub fn say(&mut self, line: &str) {
        self.w
            .write_all(format!("{line}\n").as_bytes())
            .expect("write");
    }

    /// The next line without its CRLF; panics on EOF or after [`STEP`].
    pub fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self.r.read_line(&mut l).expect("a line within the timeout");
        assert!(n > 0, "unexpected EOF");
        l.trim_end_matches(['\r', '\n']).to_owned()
    }

    /// Whether the server closed the connection (EOF within [`STEP`], nothing before it).
    pub fn at_eof(&mut self) -> bool {
        let mut rest = Vec::new();
        self.r.read_to_end(&mut rest).is_ok() && rest.is_empty()
    }
}

/// The server's resident memory, in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// How many descriptors process `pid` has open.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("proc fd")
        .count()
}

/// Waits (by round trips with a fresh client, at most 1,000) until the server holds no more
/// descriptors than `baseline` plus that client's: the descriptors of the clients that
/// went before are closed.
pub fn assert_descriptors_back_to(server: &Server, baseline: usize) {
    let mut c = Client::new(server.connect());
    for i in 0..1000 {
        c.say(&format!("ping {i}"));
        assert_eq!(c.line(), format!("ping {i}"));
        if fd_count(server.pid) <= baseline + 1 {
            return;
        }
    }
    panic!(
        "the server holds {} descriptors, {} more than before the clients came",
        fd_count(server.pid),
        fd_count(server.pid) - baseline - 1
    );
}

/// Opens `n` connections to a fresh `echo_server`, each saying one line and then idle, and
/// checks that every one is answered, that together they grew the server's resident memory
/// by at most `bytes_each` bytes a connection, and that a new client is still answered.
pub fn idle_connections_cost_at_most(n: usize, bytes_each: u64) {
    let server = Server::start("echo_server");
    let mut first = Client::new(server.connect());
    first.say("warm up");
    assert_eq!(first.line(), "warm up");
    let before = rss_kib(server.pid);
    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = server.connect();
        s.write_all(b"x\n").expect("write");
        idle.push(s);
    }
    // Every one was accepted and answered: its connection session exists.
    for s in &mut idle {
        let mut reply = [0u8; 3];
        s.read_exact(&mut reply).expect("an answer");
        assert_eq!(&reply, b"x\r\n");
    }
    let grown = rss_kib(server.pid).saturating_sub(before);
    let per_conn = grown * 1024 / n as u64;
    eprintln!("{per_conn} bytes per idle connection ({grown} KiB for {n})");
    assert!(
        per_conn <= bytes_each,
        "{per_conn} bytes per idle connection ({grown} KiB for {n})"
    );
    let mut late = Client::new(server.connect());
    late.say("still answering");
    assert_eq!(late.line(), "still answering");
}
