//! The load generator: N connections, each sending a 64-byte line and waiting for its echo
//! before sending the next (closed-loop ping-pong), on one thread with mio.
//!
//! Usage: `loadgen --addr HOST:PORT --conns N [--core K] [--warmup S --duration S]`
//!
//! Connections are opened in batches of 100, each answering one unmeasured ping before the
//! next batch, so the listen backlog never overflows. Then:
//!
//! - with `--duration`: runs `--warmup` seconds (default 1), then `--duration` seconds,
//!   and prints `round_trips N secs S rate R`;
//! - without it, takes commands on stdin, one a line, and prints `ready` once connected:
//!   `run` starts sending (every connection sends its first line), `run COUNT` sends
//!   COUNT lines in all and then pauses by itself, `pause` stops sending new lines, and
//!   `quit` exits. When a pause completes (no echo outstanding) it prints
//!   `paused N SECS`: round trips since the `run` and seconds from the `run` to the last
//!   echo. The runner uses pauses to bracket measurement windows exactly.
//!
//! Every echo must be exactly the line sent (64 bytes ending in a newline), or that line
//! ending in CRLF instead (65 bytes: POE's `Filter::Line` writes CRLF by default); which
//! one is fixed by the first echo. Anything else is an error (exit status 1).

use echo_bench::{pin_to_core, raise_nofile, request_line, Opts, LINE_LEN};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAKER: Token = Token(usize::MAX);
const BATCH: usize = 100;

struct Conn {
    stream: TcpStream,
    /// Bytes of the current echo received so far.
    got: usize,
    /// A request is out and its echo not complete.
    waiting: bool,
    /// Bytes of the request still to write (after a short write).
    unsent: usize,
}

enum Cmd {
    Run(Option<u64>),
    Pause,
    Quit,
}

struct Gen {
    conns: Vec<Conn>,
    line: [u8; LINE_LEN],
    /// The echo expected for `line`.
    echo: Vec<u8>,
    running: bool,
    /// Lines left to send in a counted run.
    budget: Option<u64>,
    outstanding: usize,
    done: u64,
    started: Instant,
    last: Instant,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("loadgen: {msg}");
    std::process::exit(1)
}

impl Gen {
    fn may_send(&mut self) -> bool {
        if !self.running {
            return false;
        }
        match &mut self.budget {
            None => true,
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
        }
    }

    fn send(&mut self, i: usize) {
        let c = &mut self.conns[i];
        c.waiting = true;
        c.got = 0;
        c.unsent = LINE_LEN;
        self.outstanding += 1;
        self.write_rest(i);
    }

    fn write_rest(&mut self, i: usize) {
        let c = &mut self.conns[i];
        while c.unsent > 0 {
            match c.stream.write(&self.line[LINE_LEN - c.unsent..]) {
                Ok(n) => c.unsent -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => fail(format_args!("write: {e}")),
            }
        }
    }

    fn read(&mut self, i: usize, buf: &mut [u8]) {
        loop {
            let c = &mut self.conns[i];
            let n = match c.stream.read(buf) {
                Ok(0) => fail("server closed a connection"),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => fail(format_args!("read: {e}")),
            };
            let want = self.echo.len();
            if !c.waiting || c.got + n > want {
                fail("unexpected bytes from the server");
            }
            if buf[..n] != self.echo[c.got..c.got + n] {
                fail("the echo differs from the line sent");
            }
            c.got += n;
            if c.got == want {
                c.waiting = false;
                self.outstanding -= 1;
                self.done += 1;
                self.last = Instant::now();
                if self.may_send() {
                    self.send(i);
                } else if self.outstanding == 0 {
                    self.report_pause();
                }
            }
            if n < buf.len() {
                return;
            }
        }
    }

    fn run(&mut self, budget: Option<u64>) {
        self.running = true;
        self.budget = budget;
        self.done = 0;
        self.started = Instant::now();
        self.last = self.started;
        for i in 0..self.conns.len() {
            if self.conns[i].waiting {
                continue;
            }
            if !self.may_send() {
                break;
            }
            self.send(i);
        }
        if self.outstanding == 0 {
            self.report_pause();
        }
    }

    fn pause(&mut self) {
        self.running = false;
        if self.outstanding == 0 {
            self.report_pause();
        }
    }

    fn report_pause(&mut self) {
        self.running = false;
        let secs = (self.last - self.started).as_secs_f64();
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "paused {} {:.6}", self.done, secs);
        let _ = out.flush();
    }
}

/// Opens `n` connections, in batches that each complete one blocking ping-pong. Returns
/// them with the echo the server gives for `line`.
fn connect_all(addr: SocketAddr, n: usize, line: &[u8]) -> io::Result<(Vec<TcpStream>, Vec<u8>)> {
    let mut all = Vec::with_capacity(n);
    let mut crlf = line[..line.len() - 1].to_vec();
    crlf.extend_from_slice(b"\r\n");
    let mut expected: Option<Vec<u8>> = None;
    while all.len() < n {
        let batch: Vec<std::net::TcpStream> = (0..BATCH.min(n - all.len()))
            .map(|_| std::net::TcpStream::connect(addr))
            .collect::<io::Result<_>>()?;
        for s in &batch {
            s.set_nodelay(true)?;
            (&*s).write_all(line)?;
        }
        for s in batch {
            let mut echo = vec![0u8; line.len()];
            (&s).read_exact(&mut echo)?;
            if echo[line.len() - 1] == b'\r' {
                let mut nl = [0u8; 1];
                (&s).read_exact(&mut nl)?;
                echo.push(nl[0]);
            }
            let want = expected.get_or_insert_with(|| {
                if echo == crlf {
                    crlf.clone()
                } else {
                    line.to_vec()
                }
            });
            if echo != *want {
                return Err(io::Error::other("the echo differs from the line sent"));
            }
            s.set_nonblocking(true)?;
            all.push(TcpStream::from_std(s));
        }
    }
    Ok((all, expected.unwrap_or_else(|| line.to_vec())))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opts = Opts::from_env()?;
    let addr: SocketAddr = opts
        .opt("addr")
        .ok_or_else(|| echo_bench::ArgError("--addr HOST:PORT is required".into()))?
        .parse()?;
    let n: usize = opts.get("conns", 1)?;
    if let Some(core) = opts.opt("core") {
        pin_to_core(core.parse()?)?;
    }
    let duration: Option<f64> = match opts.opt("duration") {
        Some(d) => Some(d.parse()?),
        None => None,
    };
    let warmup: f64 = opts.get("warmup", 1.0)?;
    raise_nofile();

    let line = request_line();
    let (streams, echo) = connect_all(addr, n, &line)?;
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(n);
    for (i, mut stream) in streams.into_iter().enumerate() {
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conns.push(Conn {
            stream,
            got: 0,
            waiting: false,
            unsent: 0,
        });
    }
    let now = Instant::now();
    let mut g = Gen {
        conns,
        line,
        echo,
        running: false,
        budget: None,
        outstanding: 0,
        done: 0,
        started: now,
        last: now,
    };

    // Commands: from stdin (interactive) or from a timer thread (--duration).
    let waker = std::sync::Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = mpsc::channel::<Cmd>();
    let timed = duration.is_some();
    {
        let waker = std::sync::Arc::clone(&waker);
        std::thread::spawn(move || {
            let send = |c: Cmd| {
                let ok = tx.send(c).is_ok();
                let _ = waker.wake();
                ok
            };
            if let Some(d) = duration {
                // Warm-up run, pause, measured run, pause, quit: the main loop reports.
                send(Cmd::Run(None));
                std::thread::sleep(Duration::from_secs_f64(warmup));
                send(Cmd::Pause);
                std::thread::sleep(Duration::from_millis(100));
                send(Cmd::Run(None));
                std::thread::sleep(Duration::from_secs_f64(d));
                send(Cmd::Pause);
                return;
            }
            for l in io::stdin().lock().lines() {
                let Ok(l) = l else { break };
                let mut words = l.split_whitespace();
                let cmd = match words.next() {
                    Some("run") => Cmd::Run(words.next().and_then(|w| w.parse().ok())),
                    Some("pause") => Cmd::Pause,
                    Some("quit") => Cmd::Quit,
                    _ => continue,
                };
                if !send(cmd) {
                    return;
                }
            }
            send(Cmd::Quit);
        });
    }
    if !timed {
        println!("ready");
        io::stdout().flush()?;
    }

    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 4096];
    let mut pauses = 0;
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        for ev in events.iter() {
            if ev.token() == WAKER {
                while let Ok(cmd) = rx.try_recv() {
                    match cmd {
                        Cmd::Run(budget) => g.run(budget),
                        Cmd::Pause => {
                            g.pause();
                            pauses += 1;
                        }
                        Cmd::Quit => return Ok(()),
                    }
                }
                continue;
            }
            let i = ev.token().0;
            if ev.is_writable() && g.conns[i].unsent > 0 {
                g.write_rest(i);
            }
            if ev.is_readable() || ev.is_read_closed() {
                g.read(i, &mut buf);
            }
        }
        if timed && pauses == 2 && g.outstanding == 0 {
            let secs = (g.last - g.started).as_secs_f64();
            println!(
                "round_trips {} secs {:.3} rate {:.0}",
                g.done,
                secs,
                g.done as f64 / secs
            );
            return Ok(());
        }
    }
}
