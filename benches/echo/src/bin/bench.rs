//! The runner: measures every echo server at 1, 10, 100 and 1000 connections and prints
//! one markdown report, with ratios against the bare mio loop and against POE.
//!
//! Usage (from `benches/echo`, after `cargo build --release`):
//! `target/release/bench [--conns "1 10 100 1000"] [--servers "mio reactor tokio poe"]
//! [--warmup 1] [--duration 2] [--reps 3] [--max-other 10] [--sys-duration 1] [--cg-count 2000] [--callgrind 1]
//! [--out FILE]`. Server names: `mio`, `reactor`, `echo_server` (when built), `tokio`,
//! `poe`, and the opt-ins `reactor512` (reactor_echo with `--block-size 512`) and
//! `reactor_early` (reactor_echo with `--early-writes 1`).
//!
//! Each server runs pinned to core 0 (`taskset -c 0`), the load generator pinned to core 1.
//! For each server and connection count:
//! 1. round trips/s over `--duration` seconds after `--warmup` seconds, and the server's
//!    CPU (user + sys, from `/proc/PID/stat`) over exactly that window; `--reps` such
//!    windows (default 3) in a row, and the one with the median round trips/s is kept.
//!    A window during which other processes used more than `--max-other` percent of a
//!    core (machine-wide busy time from `/proc/stat`, less the server's and the load
//!    generator's) is measured again;
//! 2. syscalls over `--sys-duration` seconds with `perf stat -e raw_syscalls:sys_enter,
//!    syscalls:sys_enter_*` attached to the server (`strace -c -f -p` if perf fails);
//! 3. user-space instructions with the server under `valgrind --tool=callgrind
//!    --instr-atstart=no`: instrumentation is switched on (`callgrind_control -i on`,
//!    `-z`) for a run of `--cg-count` messages, then dumped (`callgrind_control -d`); with
//!    `ECHO_BENCH_KEEP_CALLGRIND=DIR` the dump is kept in DIR for `callgrind_annotate`.
//!
//! Windows are bracketed with the load generator's `run`/`pause` commands: a pause
//! completes when no echo is outstanding, so the messages counted are exactly those the
//! server handled inside the window. The example server of the main workspace
//! (`target/release/examples/echo_server`, or `--echo-server PATH`; under callgrind
//! `target/valgrind-main/release/examples/echo_server` or `--echo-server-cg PATH`) is
//! measured too when it has been built.

use echo_bench::Opts;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const SERVER_CORE: &str = "0";
const LOADGEN_CORE: &str = "1";

/// A process whose stdout lines arrive on a channel.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    stdin: Option<ChildStdin>,
}

impl Proc {
    fn spawn(cmd: &[String], with_stdin: bool) -> Res<Proc> {
        let mut c = Command::new(&cmd[0]);
        c.args(&cmd[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(if with_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = c
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", cmd[0]))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            child,
            lines: rx,
            stdin,
        })
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line starting with `prefix` (others are skipped), within `timeout`.
    fn expect(&self, prefix: &str, timeout: Duration) -> Res<String> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return Ok(l),
                Ok(_) => {}
                Err(_) => return Err(format!("no {prefix:?} line within {timeout:?}").into()),
            }
        }
    }

    fn send(&mut self, cmd: &str) -> Res<()> {
        let stdin = self.stdin.as_mut().ok_or("no stdin")?;
        writeln!(stdin, "{cmd}")?;
        stdin.flush()?;
        Ok(())
    }

    fn signal(&self, sig: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid()) {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }

    fn stop(mut self) {
        self.signal(rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }
}

/// A load generator session with the `run`/`pause` protocol.
struct Loadgen(Proc);

impl Loadgen {
    fn start(bin: &Path, addr: &str, conns: usize) -> Res<Loadgen> {
        let cmd = vec![
            bin.display().to_string(),
            "--addr".into(),
            addr.into(),
            "--conns".into(),
            conns.to_string(),
            "--core".into(),
            LOADGEN_CORE.into(),
        ];
        let p = Proc::spawn(&cmd, true)?;
        p.expect("ready", Duration::from_secs(300))?;
        Ok(Loadgen(p))
    }

    /// Runs for `secs` (or `count` messages) and returns (messages, seconds).
    fn window(&mut self, secs: f64, count: Option<u64>) -> Res<(u64, f64)> {
        match count {
            Some(n) => self.0.send(&format!("run {n}"))?,
            None => {
                self.0.send("run")?;
                std::thread::sleep(Duration::from_secs_f64(secs));
                self.0.send("pause")?;
            }
        }
        let l = self.0.expect("paused", Duration::from_secs(600))?;
        let mut w = l.split_whitespace().skip(1);
        let n = w.next().ok_or("bad paused line")?.parse()?;
        let s = w.next().ok_or("bad paused line")?.parse()?;
        Ok((n, s))
    }

    fn quit(mut self) {
        let _ = self.0.send("quit");
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.0.stop();
    }
}

struct ServerDef {
    name: &'static str,
    cmd: Vec<String>,
    /// The command to run under callgrind: the same program built with
    /// `--cfg rustix_use_libc`, since rustix's own vDSO lookup crashes under valgrind
    /// (rustix issue #1559).
    cg_cmd: Vec<String>,
}

/// Starts a server (optionally under a wrapper such as valgrind) pinned to the server core.
fn start_server(def: &ServerDef, wrapper: &[String]) -> Res<(Proc, String)> {
    let mut cmd: Vec<String> = vec!["taskset".into(), "-c".into(), SERVER_CORE.into()];
    cmd.extend(wrapper.iter().cloned());
    cmd.extend(def.cmd.iter().cloned());
    cmd.extend(["--port".to_string(), "0".to_string()]);
    let p = Proc::spawn(&cmd, false)?;
    let l = p.expect("listening on ", Duration::from_secs(120))?;
    let addr = l["listening on ".len()..].trim().to_string();
    Ok((p, addr))
}

/// (user, sys) CPU seconds of a process, from `/proc/PID/stat`.
fn cpu_times(pid: i32) -> Res<(f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &s[s.rfind(')').ok_or("bad stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line; `rest` starts at field 3.
    let hz = rustix::param::clock_ticks_per_second() as f64;
    Ok((f[11].parse::<f64>()? / hz, f[12].parse::<f64>()? / hz))
}

/// CPU seconds spent by the whole machine (every CPU, all but idle and iowait), from
/// `/proc/stat`: with the server's and the load generator's own CPU taken off, what is
/// left is other load that would skew a window.
fn machine_busy() -> Res<f64> {
    let s = std::fs::read_to_string("/proc/stat")?;
    let line = s.lines().next().ok_or("empty /proc/stat")?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let busy: f64 = f
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Ok(busy / rustix::param::clock_ticks_per_second() as f64)
}

/// Syscall counts by name over one window.
#[derive(Default, Clone)]
struct Sys {
    total: f64,
    by_name: BTreeMap<String, f64>,
    tool: &'static str,
}

const READS: &[&str] = &["read", "readv", "recvfrom", "recvmsg"];
const WRITES: &[&str] = &["write", "writev", "sendto", "sendmsg"];
const WAITS: &[&str] = &[
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "select",
    "pselect6",
    "poll",
    "ppoll",
];
const OTHERS: &[&str] = &[
    "epoll_ctl",
    "accept4",
    "clock_gettime",
    "gettimeofday",
    "rt_sigprocmask",
    "futex",
    "fcntl",
    "ioctl",
    "getpid",
    "close",
    "times",
];

impl Sys {
    fn sum(&self, names: &[&str]) -> f64 {
        names
            .iter()
            .map(|n| self.by_name.get(*n).copied().unwrap_or(0.0))
            .sum()
    }
}

fn tmpfile(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("echo-bench-{}-{name}", std::process::id()))
}

/// Counts syscalls of `pid` while `work` runs, with perf (tracepoints) or strace.
fn count_syscalls(pid: i32, work: impl FnOnce() -> Res<(u64, f64)>) -> Res<(Sys, u64)> {
    let out = tmpfile("perf.csv");
    let mut events = vec!["raw_syscalls:sys_enter".to_string()];
    for n in READS.iter().chain(WRITES).chain(WAITS).chain(OTHERS) {
        events.push(format!("syscalls:sys_enter_{n}"));
    }
    let perf_ok = Command::new("perf")
        .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let (tool, cmd): (&'static str, Vec<String>) = if perf_ok {
        (
            "perf",
            vec![
                "perf".into(),
                "stat".into(),
                "-x,".into(),
                "-o".into(),
                out.display().to_string(),
                "-e".into(),
                events.join(","),
                "-p".into(),
                pid.to_string(),
            ],
        )
    } else {
        (
            "strace",
            vec![
                "strace".into(),
                "-c".into(),
                "-f".into(),
                "-o".into(),
                out.display().to_string(),
                "-p".into(),
                pid.to_string(),
            ],
        )
    };
    let tracer = Proc::spawn(&cmd, false)?;
    // Let the tracer attach; the server is idle meanwhile (the load generator is paused).
    std::thread::sleep(Duration::from_millis(700));
    let (n, _) = work()?;
    tracer.signal(rustix::process::Signal::INT);
    let mut child = tracer.child;
    child.wait()?;
    let text = std::fs::read_to_string(&out)?;
    let _ = std::fs::remove_file(&out);
    let mut sys = Sys {
        tool,
        ..Sys::default()
    };
    if tool == "perf" {
        for l in text.lines() {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() < 3 {
                continue;
            }
            let Ok(v) = f[0].parse::<f64>() else { continue };
            if f[2] == "raw_syscalls:sys_enter" {
                sys.total = v;
            } else if let Some(name) = f[2].strip_prefix("syscalls:sys_enter_") {
                sys.by_name.insert(name.to_string(), v);
            }
        }
    } else {
        // strace -c: "% time seconds usecs/call calls errors syscall" rows.
        for l in text.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 5 || f[0].starts_with('%') || f[0].starts_with('-') {
                continue;
            }
            let name = f[f.len() - 1];
            let calls: f64 = f[3].parse().unwrap_or(0.0);
            if name == "total" {
                sys.total = calls;
            } else {
                sys.by_name.insert(name.to_string(), calls);
            }
        }
    }
    Ok((sys, n))
}

fn callgrind_control(args: &[&str], pid: &str) -> Res<()> {
    let ok = Command::new("callgrind_control")
        .args(args)
        .arg(pid)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success();
    if ok {
        Ok(())
    } else {
        Err(format!("callgrind_control {args:?} failed").into())
    }
}

/// Instructions (Ir) per message of the server under callgrind.
fn callgrind(def: &ServerDef, lg_bin: &Path, conns: usize, count: u64) -> Res<f64> {
    let out = tmpfile(&format!("cg.{}.{conns}", def.name));
    let wrapper = vec![
        "valgrind".to_string(),
        "-q".into(),
        "--tool=callgrind".into(),
        "--instr-atstart=no".into(),
        "--dump-instr=yes".into(),
        format!("--callgrind-out-file={}", out.display()),
    ];
    let cg_def = ServerDef {
        name: def.name,
        cmd: def.cg_cmd.clone(),
        cg_cmd: Vec::new(),
    };
    let (srv, addr) = start_server(&cg_def, &wrapper)?;
    let pid = srv.pid().to_string();
    let result = (|| -> Res<f64> {
        let mut lg = Loadgen::start(lg_bin, &addr, conns)?;
        lg.window(0.0, Some(conns as u64 * 2))?;
        for args in [["-i", "on"].as_slice(), ["-z"].as_slice()] {
            callgrind_control(args, &pid)?;
        }
        let (n, _) = lg.window(0.0, Some(count))?;
        callgrind_control(&["-d"], &pid)?;
        lg.quit();
        // The dump is OUT.1 (the first explicit dump).
        let dump = PathBuf::from(format!("{}.1", out.display()));
        let text = std::fs::read_to_string(&dump)?;
        // ECHO_BENCH_KEEP_CALLGRIND=DIR keeps the dump there, for callgrind_annotate.
        if let Some(dir) = std::env::var_os("ECHO_BENCH_KEEP_CALLGRIND") {
            let kept = PathBuf::from(dir).join(format!("callgrind.{}.{conns}", def.name));
            std::fs::copy(&dump, &kept)?;
        }
        let _ = std::fs::remove_file(&dump);
        let total = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("totals:")
                    .or_else(|| l.strip_prefix("summary:"))
            })
            .ok_or("no totals in the callgrind dump")?
            .split_whitespace()
            .next()
            .ok_or("empty totals")?
            .parse::<f64>()?;
        Ok(total / n as f64)
    })();
    srv.stop();
    let _ = std::fs::remove_file(&out);
    result
}

#[derive(Default, Clone)]
struct Row {
    rps: f64,
    msgs: u64,
    user_us: f64,
    sys_us: f64,
    util: f64,
    /// The load generator's CPU over the window, in cores.
    client_util: f64,
    /// CPU used by other processes over the window, in cores.
    other: f64,
    /// Lowest and highest round trips/s of the windows.
    spread: Option<(f64, f64)>,
    sys: Option<(Sys, u64)>,
    ir: Option<f64>,
}

impl Row {
    fn cpu_us(&self) -> f64 {
        self.user_us + self.sys_us
    }
    fn per_msg(&self, names: &[&str]) -> Option<f64> {
        self.sys
            .as_ref()
            .map(|(s, n)| s.sum(names) / (*n).max(1) as f64)
    }
    fn total_per_msg(&self) -> Option<f64> {
        self.sys.as_ref().map(|(s, n)| s.total / (*n).max(1) as f64)
    }
}

struct Cfg {
    reps: usize,
    max_other: f64,
    warmup: f64,
    duration: f64,
    sys_duration: f64,
    cg_count: u64,
    callgrind: bool,
}

fn measure(def: &ServerDef, lg_bin: &Path, conns: usize, cfg: &Cfg) -> Res<Row> {
    let (srv, addr) = start_server(def, &[])?;
    let pid = srv.pid();
    let result = (|| -> Res<Row> {
        let mut lg = Loadgen::start(lg_bin, &addr, conns)?;
        lg.window(cfg.warmup, None)?;
        let lg_pid = lg.0.pid();
        let mut windows = Vec::new();
        let mut noisy = Vec::new();
        // Windows during which something else used more than `cfg.max_other` of a core
        // are measured again (the machine may be shared); up to 4 extra tries each.
        for _ in 0..cfg.reps.max(1) * 5 {
            if windows.len() >= cfg.reps.max(1) {
                break;
            }
            let (u0, s0) = cpu_times(pid)?;
            let (lu0, ls0) = cpu_times(lg_pid)?;
            let m0 = machine_busy()?;
            let (n, secs) = lg.window(cfg.duration, None)?;
            let m1 = machine_busy()?;
            let (lu1, ls1) = cpu_times(lg_pid)?;
            let (u1, s1) = cpu_times(pid)?;
            let ours = (u1 - u0 + s1 - s0) + (lu1 - lu0 + ls1 - ls0);
            let other = ((m1 - m0 - ours) / secs).max(0.0);
            let row = Row {
                rps: n as f64 / secs,
                msgs: n,
                user_us: (u1 - u0) * 1e6 / n as f64,
                sys_us: (s1 - s0) * 1e6 / n as f64,
                util: (u1 - u0 + s1 - s0) / secs,
                client_util: (lu1 - lu0 + ls1 - ls0) / secs,
                other,
                ..Row::default()
            };
            if other > cfg.max_other {
                eprintln!(
                    "         window skipped: other load {:.0}% of a core",
                    other * 100.0
                );
                noisy.push(row);
            } else {
                windows.push(row);
            }
        }
        if windows.is_empty() {
            // Never quiet: keep the least disturbed windows, flagged by `other`.
            noisy.sort_by(|a, b| a.other.total_cmp(&b.other));
            noisy.truncate(cfg.reps.max(1));
            windows = noisy;
        }
        windows.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        let spread = windows
            .first()
            .zip(windows.last())
            .map(|(a, b)| (a.rps, b.rps));
        let mut row = windows.swap_remove(windows.len() / 2);
        row.spread = spread;
        let sd = cfg.sys_duration;
        match count_syscalls(pid, || lg.window(sd, None)) {
            Ok(s) => row.sys = Some(s),
            Err(e) => eprintln!("  syscalls: {e}"),
        }
        lg.quit();
        Ok(row)
    })();
    srv.stop();
    let mut row = result?;
    if cfg.callgrind {
        let count = cfg.cg_count.max(2 * conns as u64);
        match callgrind(def, lg_bin, conns, count) {
            Ok(ir) => row.ir = Some(ir),
            Err(e) => eprintln!("  callgrind: {e}"),
        }
    }
    Ok(row)
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.prec$}"))
}

fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

fn main() -> Res<()> {
    let opts = Opts::from_env()?;
    let conns: Vec<usize> = opts
        .opt("conns")
        .unwrap_or("1 10 100 1000")
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let cfg = Cfg {
        reps: opts.get("reps", 3)?,
        max_other: opts.get::<f64>("max-other", 10.0)? / 100.0,
        warmup: opts.get("warmup", 1.0)?,
        duration: opts.get("duration", 2.0)?,
        sys_duration: opts.get("sys-duration", 1.0)?,
        cg_count: opts.get("cg-count", 2000)?,
        callgrind: opts.get::<u8>("callgrind", 1)? != 0,
    };
    echo_bench::raise_nofile();
    let bin_dir = std::env::current_exe()?
        .parent()
        .ok_or("no exe dir")?
        .to_path_buf();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let example = opts.opt("echo-server").map_or_else(
        || manifest.join("../../target/release/examples/echo_server"),
        PathBuf::from,
    );
    let example_cg = opts.opt("echo-server-cg").map_or_else(
        || manifest.join("target/valgrind-main/release/examples/echo_server"),
        PathBuf::from,
    );
    let cg_dir = manifest.join("target/valgrind/release");
    let def = |name: &'static str, bin: &str| ServerDef {
        name,
        cmd: vec![bin_dir.join(bin).display().to_string()],
        cg_cmd: vec![cg_dir.join(bin).display().to_string()],
    };
    let mut all = vec![def("mio", "mio_echo"), def("reactor", "reactor_echo")];
    if example.exists() {
        all.push(ServerDef {
            name: "echo_server",
            cmd: vec![example.canonicalize()?.display().to_string()],
            cg_cmd: vec![example_cg.display().to_string()],
        });
    }
    all.push(def("tokio", "tokio_echo"));
    // Opt-in (name it in --servers): reactor_echo reading 512 bytes at a time instead of
    // POE's default BlockSize of 65536, to show what the per-wheel buffer costs.
    let mut small = def("reactor512", "reactor_echo");
    for c in [&mut small.cmd, &mut small.cg_cmd] {
        c.extend(["--block-size".to_string(), "512".to_string()]);
    }
    let poe = vec![
        "perl".into(),
        manifest.join("poe_echo.pl").display().to_string(),
    ];
    all.push(ServerDef {
        name: "poe",
        cmd: poe.clone(),
        cg_cmd: poe,
    });
    // Opt-in: reactor_echo with KernelBuilder::early_writes (answers written before the
    // next poll, not after it as POE does).
    let mut early = def("reactor_early", "reactor_echo");
    for c in [&mut early.cmd, &mut early.cg_cmd] {
        c.extend(["--early-writes".to_string(), "1".to_string()]);
    }
    let wanted: Option<Vec<&str>> = opts.opt("servers").map(|s| s.split_whitespace().collect());
    all.push(small);
    all.push(early);
    let servers: Vec<ServerDef> = all
        .into_iter()
        .filter(|s| match &wanted {
            Some(w) => w.contains(&s.name),
            None => !matches!(s.name, "reactor512" | "reactor_early"),
        })
        .collect();
    let lg_bin = bin_dir.join("loadgen");

    let started = Instant::now();
    let mut rows: BTreeMap<(usize, usize), Row> = BTreeMap::new();
    for &c in &conns {
        for (si, def) in servers.iter().enumerate() {
            eprintln!(
                "[{:>5.0}s] {} C={c}",
                started.elapsed().as_secs_f64(),
                def.name
            );
            match measure(def, &lg_bin, c, &cfg) {
                Ok(r) => {
                    eprintln!(
                        "         {:.0} rt/s ({} msgs; windows {:.0}..{:.0}; busy {:.0}%/{:.0}%/{:.0}%), {:.2} µs CPU/msg, {} syscalls/msg, {} Ir/msg",
                        r.rps,
                        r.msgs,
                        r.spread.map_or(0.0, |s| s.0),
                        r.spread.map_or(0.0, |s| s.1),
                        r.util * 100.0,
                        r.client_util * 100.0,
                        r.other * 100.0,
                        r.cpu_us(),
                        fmt_opt(r.total_per_msg(), 2),
                        fmt_opt(r.ir, 0)
                    );
                    rows.insert((c, si), r);
                }
                Err(e) => eprintln!("         failed: {e}"),
            }
        }
    }

    let idx = |n: &str| servers.iter().position(|s| s.name == n);
    let (mio, poe) = (idx("mio"), idx("poe"));
    let get = |c: usize, i: Option<usize>| i.and_then(|i| rows.get(&(c, i)));
    let mut md = String::new();
    writeln!(
        md,
        "| server | conns | round trips/s | spread | × mio | × POE | CPU µs/msg (user+sys) | \
         CPU × mio | busy: server, client, other | Ir/msg (callgrind) | syscalls/msg: read | write | \
         wait | other | total |"
    )?;
    writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for &c in &conns {
        for (si, def) in servers.iter().enumerate() {
            let Some(r) = rows.get(&(c, si)) else {
                writeln!(md, "| {} | {c} | failed ||||||||||||", def.name)?;
                continue;
            };
            let other = r
                .total_per_msg()
                .zip(r.per_msg(READS))
                .zip(r.per_msg(WRITES).zip(r.per_msg(WAITS)))
                .map(|((t, a), (b, w))| (t - a - b - w).max(0.0));
            writeln!(
                md,
                "| {} | {c} | {:.0} | {} | {} | {} | {:.2} ({:.2}+{:.2}) | {} | {:.0}%, {:.0}%, {:.0}% | {} | {} | {} | {} | {} | {} |",
                def.name,
                r.rps,
                r.spread
                    .map_or("–".into(), |(lo, hi)| format!("±{:.0}%", (hi - lo) / r.rps * 50.0)),
                ratio(r.rps, get(c, mio).map(|m| m.rps)),
                ratio(r.rps, get(c, poe).map(|p| p.rps)),
                r.cpu_us(),
                r.user_us,
                r.sys_us,
                ratio(r.cpu_us(), get(c, mio).map(|m| m.cpu_us())),
                r.util * 100.0,
                r.client_util * 100.0,
                r.other * 100.0,
                fmt_opt(r.ir, 0),
                fmt_opt(r.per_msg(READS), 3),
                fmt_opt(r.per_msg(WRITES), 3),
                fmt_opt(r.per_msg(WAITS), 3),
                fmt_opt(other, 3),
                fmt_opt(r.total_per_msg(), 3),
            )?;
        }
    }
    // Goals for our servers at 10–1000 connections.
    let ours: Vec<usize> = ["reactor", "echo_server"]
        .iter()
        .filter_map(|n| idx(n))
        .collect();
    if !ours.is_empty() {
        writeln!(md)?;
        writeln!(
            md,
            "| server | conns | ≥ 0.9× mio rt/s | ≤ 1.2× mio CPU/msg | 1 read + 1 write/msg | ≥ 4× POE |"
        )?;
        writeln!(md, "|---|---:|---|---|---|---|")?;
        let mark = |ok: Option<bool>, v: String| match ok {
            Some(true) => format!("{v} met"),
            Some(false) => format!("{v} **not met**"),
            None => "–".into(),
        };
        for &c in conns.iter().filter(|&&c| c >= 10) {
            for &si in &ours {
                let Some(r) = rows.get(&(c, si)) else {
                    continue;
                };
                let m = get(c, mio);
                let p = get(c, poe);
                let rps_m = m.map(|m| r.rps / m.rps);
                let cpu_m = m.map(|m| r.cpu_us() / m.cpu_us());
                let rw = r.per_msg(READS).zip(r.per_msg(WRITES));
                let rps_p = p.map(|p| r.rps / p.rps);
                writeln!(
                    md,
                    "| {} | {c} | {} | {} | {} | {} |",
                    servers[si].name,
                    mark(rps_m.map(|x| x >= 0.9), fmt_opt(rps_m, 2)),
                    mark(cpu_m.map(|x| x <= 1.2), fmt_opt(cpu_m, 2)),
                    mark(
                        rw.map(|(a, b)| a <= 1.05 && b <= 1.05),
                        rw.map_or("–".into(), |(a, b)| format!("{a:.2} + {b:.2}"))
                    ),
                    mark(rps_p.map(|x| x >= 4.0), fmt_opt(rps_p, 1)),
                )?;
            }
        }
    }
    let tool = rows
        .values()
        .find_map(|r| r.sys.as_ref().map(|s| s.0.tool))
        .unwrap_or("–");
    writeln!(
        md,
        "\nsyscalls counted with {tool}; total run time {:.0} s",
        started.elapsed().as_secs_f64()
    )?;
    print!("{md}");
    if let Some(path) = opts.opt("out") {
        std::fs::write(path, &md)?;
    }
    Ok(())
}
