//! One kernel against several: the main workspace's `examples/echo_server` with
//! `--threads 1` and `--threads N`, the load generators on the same cores (nothing pinned),
//! round trips/s and the CPU each message costs, per kernel thread.
//!
//! Usage (from `benches/echo`, after `cargo build --release --bins` here and
//! `cargo build --release --example echo_server` in the main workspace):
//! `target/release/threads [--echo-server PATH] [--threads "1 2"] [--conns 100]
//! [--loadgens 2] [--warmup 1] [--duration 3] [--reps 3]`.
//!
//! For each kernel count the server is started, `--loadgens` load generators share
//! `--conns` connections, and `--reps` windows of `--duration` seconds are measured after
//! `--warmup` (each window bracketed with the load generators' `run`/`pause`, so exactly
//! the messages handled inside it are counted); the window with the median rate is kept.
//! CPU comes from `/proc/PID/task/TID/stat`: every thread of the server, and the kernel
//! threads (`echo-N`, or the main thread with one kernel) on their own. "CPU µs/msg" is the
//! server's CPU over the window divided by the messages of the window: what a message
//! costs whichever kernel handles it. It staying flat as kernels are added is what "no
//! shared state on the hot path" predicts.

use echo_bench::Opts;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A child process whose stdout lines arrive on a channel.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    stdin: Option<ChildStdin>,
}

impl Proc {
    fn spawn(cmd: &[String], with_stdin: bool) -> Res<Proc> {
        let mut child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(if with_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
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

    fn pid(&self) -> u32 {
        self.child.id()
    }

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

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + sys) of every thread of `pid`, by thread id, with its name.
fn thread_cpu(pid: u32) -> Res<BTreeMap<u32, (String, f64)>> {
    let hz = rustix::param::clock_ticks_per_second() as f64;
    let mut out = BTreeMap::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let t = t?;
        let Ok(tid) = t.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(s) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (s.find('('), s.rfind(')')) else {
            continue;
        };
        let name = s[open + 1..close].to_owned();
        let f: Vec<&str> = s[close + 2..].split_whitespace().collect();
        let cpu = (f[11].parse::<f64>()? + f[12].parse::<f64>()?) / hz;
        out.insert(tid, (name, cpu));
    }
    Ok(out)
}

/// CPU seconds the whole machine has been busy (every CPU, all but idle and iowait), from
/// `/proc/stat`: less the server's and the load generators', what other processes used.
fn machine_busy() -> Res<f64> {
    let s = std::fs::read_to_string("/proc/stat")?;
    let line = s.lines().next().ok_or("empty /proc/stat")?;
    let busy: f64 = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v.parse::<f64>().unwrap_or(0.0))
        .sum();
    Ok(busy / rustix::param::clock_ticks_per_second() as f64)
}

/// CPU seconds of a whole process.
fn process_cpu(pid: u32) -> Res<f64> {
    Ok(thread_cpu(pid)?.values().map(|(_, c)| c).sum())
}

struct Window {
    rate: f64,
    msgs: u64,
    secs: f64,
    /// Server CPU over the window, by thread: (name, seconds).
    threads: Vec<(String, f64)>,
    loadgen_cpu: f64,
    /// CPU seconds other processes used over the window.
    other_cpu: f64,
    /// Per message, over one more window: (syscalls, epoll_waits), if perf could count them.
    syscalls: Option<(f64, f64)>,
}

/// Counts the server's system calls (all its threads) with `perf stat` while `work` runs.
fn count_syscalls(pid: u32, work: impl FnOnce() -> Res<(u64, f64)>) -> Res<(f64, f64)> {
    let out = std::env::temp_dir().join(format!("echo-threads-{}.perf", std::process::id()));
    let mut perf = Command::new("perf")
        .args(["stat", "-x,", "-o"])
        .arg(&out)
        .args([
            "-e",
            "raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait",
            "-p",
            &pid.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // Let perf attach; the server is idle meanwhile (the load generators are paused).
    std::thread::sleep(Duration::from_millis(700));
    let (msgs, _) = work()?;
    if let Some(p) = rustix::process::Pid::from_raw(perf.id() as i32) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::INT);
    }
    perf.wait()?;
    let text = std::fs::read_to_string(&out)?;
    let _ = std::fs::remove_file(&out);
    let count = |name: &str| -> f64 {
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f.len() > 2 && f[2] == name).then(|| f[0].parse().ok())?
            })
            .next()
            .unwrap_or(f64::NAN)
    };
    let n = msgs.max(1) as f64;
    Ok((
        count("raw_syscalls:sys_enter") / n,
        count("syscalls:sys_enter_epoll_wait") / n,
    ))
}

/// The load a measurement puts on the server: connections, load generators, and the
/// warm-up, window length and number of windows.
#[derive(Clone, Copy)]
struct Load {
    conns: usize,
    gens: usize,
    warmup: f64,
    duration: f64,
    reps: usize,
}

fn measure(server: &Path, loadgen: &Path, kernels: usize, load: &Load) -> Res<Window> {
    let Load {
        conns,
        gens,
        warmup,
        duration,
        reps,
    } = *load;
    let srv = Proc::spawn(
        &[
            server.display().to_string(),
            "--port".into(),
            "0".into(),
            "--threads".into(),
            kernels.to_string(),
        ],
        false,
    )?;
    let l = srv.expect("listening on ", Duration::from_secs(60))?;
    let addr = l["listening on ".len()..].trim().to_owned();
    let result = (|| -> Res<Window> {
        let mut lgs = Vec::new();
        for g in 0..gens {
            let share = conns / gens + usize::from(g < conns % gens);
            let p = Proc::spawn(
                &[
                    loadgen.display().to_string(),
                    "--addr".into(),
                    addr.clone(),
                    "--conns".into(),
                    share.to_string(),
                ],
                true,
            )?;
            p.expect("ready", Duration::from_secs(120))?;
            lgs.push(p);
        }
        let window = |lgs: &mut Vec<Proc>, secs: f64| -> Res<(u64, f64)> {
            for p in lgs.iter_mut() {
                p.send("run")?;
            }
            std::thread::sleep(Duration::from_secs_f64(secs));
            for p in lgs.iter_mut() {
                p.send("pause")?;
            }
            let (mut n, mut s) = (0u64, 0f64);
            for p in lgs.iter() {
                let l = p.expect("paused", Duration::from_secs(60))?;
                let mut w = l.split_whitespace().skip(1);
                n += w.next().ok_or("bad paused line")?.parse::<u64>()?;
                s = s.max(w.next().ok_or("bad paused line")?.parse::<f64>()?);
            }
            Ok((n, s))
        };
        window(&mut lgs, warmup)?;
        let mut windows = Vec::new();
        for _ in 0..reps.max(1) {
            let m0 = machine_busy()?;
            let t0 = thread_cpu(srv.pid())?;
            let l0: f64 = lgs.iter().map(|p| process_cpu(p.pid())).sum::<Res<f64>>()?;
            let (msgs, secs) = window(&mut lgs, duration)?;
            let t1 = thread_cpu(srv.pid())?;
            let l1: f64 = lgs.iter().map(|p| process_cpu(p.pid())).sum::<Res<f64>>()?;
            let m1 = machine_busy()?;
            let threads: Vec<(String, f64)> = t1
                .iter()
                .map(|(tid, (name, c1))| {
                    let c0 = t0.get(tid).map_or(0.0, |(_, c)| *c);
                    (name.clone(), c1 - c0)
                })
                .collect();
            let server: f64 = threads.iter().map(|(_, c): &(String, f64)| c).sum();
            windows.push(Window {
                rate: msgs as f64 / secs,
                msgs,
                secs,
                threads,
                loadgen_cpu: l1 - l0,
                other_cpu: (m1 - m0 - server - (l1 - l0)).max(0.0),
                syscalls: None,
            });
        }
        let syscalls = count_syscalls(srv.pid(), || window(&mut lgs, duration)).ok();
        for p in lgs {
            let mut p = p;
            let _ = p.send("quit");
            p.stop();
        }
        windows.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let mid = windows.len() / 2;
        let mut w = windows.swap_remove(mid);
        w.syscalls = syscalls;
        Ok(w)
    })();
    srv.stop();
    result
}

fn main() -> Res<()> {
    let opts = Opts::from_env()?;
    echo_bench::raise_nofile();
    let bin_dir = std::env::current_exe()?
        .parent()
        .ok_or("no exe dir")?
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let server = opts.opt("echo-server").map_or_else(
        || target.join("release/examples/echo_server"),
        PathBuf::from,
    );
    if !server.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release --example echo_server`",
            server.display()
        )
        .into());
    }
    let loadgen = bin_dir.join("loadgen");
    let kernels: Vec<usize> = opts
        .opt("threads")
        .unwrap_or("1 2")
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let conns: usize = opts.get("conns", 100)?;
    let gens: usize = opts.get("loadgens", 2)?;
    let warmup: f64 = opts.get("warmup", 1.0)?;
    let duration: f64 = opts.get("duration", 3.0)?;
    let reps: usize = opts.get("reps", 3)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "echo_server --threads K, {conns} connections from {gens} load generators, all on the \
         same {cores} cores; median of {reps} windows of {duration} s"
    );
    println!(
        "| kernels | round trips/s | × 1 kernel | server CPU µs/msg | kernel threads: CPU (cores) | load generators: CPU (cores) | other processes (cores) | syscalls/msg | epoll_waits/msg |"
    );
    println!("|---:|---:|---:|---:|---|---:|---:|---:|---:|");
    let mut base = None;
    for &k in &kernels {
        eprintln!("kernels={k}");
        let load = Load {
            conns,
            gens,
            warmup,
            duration,
            reps,
        };
        let w = measure(&server, &loadgen, k, &load)?;
        let total: f64 = w.threads.iter().map(|(_, c)| c).sum();
        let kernel_threads: Vec<String> = w
            .threads
            .iter()
            .filter(|(n, c)| n.starts_with("echo") && *c > 0.0)
            .map(|(n, c)| format!("{n} {:.2}", c / w.secs))
            .collect();
        let rate = w.rate;
        let b = *base.get_or_insert(rate);
        println!(
            "| {k} | {rate:.0} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {} | {} |",
            rate / b,
            total * 1e6 / w.msgs as f64,
            kernel_threads.join(", "),
            w.loadgen_cpu / w.secs,
            w.other_cpu / w.secs,
            w.syscalls.map_or("–".into(), |s| format!("{:.2}", s.0)),
            w.syscalls.map_or("–".into(), |s| format!("{:.3}", s.1)),
        );
    }
    Ok(())
}
