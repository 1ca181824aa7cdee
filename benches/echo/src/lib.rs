//! Shared helpers for the echo benchmark binaries: argument parsing, core pinning and the
//! open-file limit.
//!
//! The binaries are `loadgen` (the load generator), the servers `mio_echo`, `tokio_echo`
//! and `reactor_echo` (plus `poe_echo.pl` in Perl), and `bench`, the runner that measures
//! them side by side; `threads` measures the main workspace's `echo_server` on one kernel
//! and on several. See `docs/benchmarks.md` of the main repository.

use std::collections::HashMap;
use std::fmt;

/// Bytes in one request line, newline included.
pub const LINE_LEN: usize = 64;

/// The request line: 63 printable bytes and a newline.
pub fn request_line() -> [u8; LINE_LEN] {
    let mut line = [0u8; LINE_LEN];
    for (i, b) in line.iter_mut().enumerate() {
        *b = b'a' + (i % 26) as u8;
    }
    line[LINE_LEN - 1] = b'\n';
    line
}

/// A command-line error.
#[derive(Debug)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

/// `--key value` options, parsed once.
pub struct Opts(HashMap<String, String>);

impl Opts {
    /// Parses the process's arguments: each `--key` must be followed by a value.
    pub fn from_env() -> Result<Opts, ArgError> {
        let mut map = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(k) = it.next() {
            let Some(key) = k.strip_prefix("--") else {
                return Err(ArgError(format!("unexpected argument {k:?}")));
            };
            let v = it
                .next()
                .ok_or_else(|| ArgError(format!("--{key} needs a value")))?;
            map.insert(key.to_owned(), v);
        }
        Ok(Opts(map))
    }

    /// The value of `--key`, parsed, or `default`.
    pub fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, ArgError> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ArgError(format!("--{key}: cannot parse {v:?}"))),
        }
    }

    /// The value of `--key`, if given.
    pub fn opt(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// Raises the soft open-file limit to the hard limit (1000 connections need > 1024 fds on
/// both sides).
pub fn raise_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }
}

/// Pins the calling thread (and threads it starts later) to one CPU.
pub fn pin_to_core(core: usize) -> std::io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(core);
    rustix::thread::sched_setaffinity(None, &set).map_err(std::io::Error::from)
}

/// Prints `listening on ADDR` as the first line of output and flushes it.
pub fn announce(addr: std::net::SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}
