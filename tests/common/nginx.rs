//! A throwaway nginx for integration tests: its own prefix directory under the system
//! temporary directory, listening on a free port of 127.0.0.1, killed and cleaned up on
//! drop.
//!
//! Served paths:
//! - `GET /` and `GET /index.html`: [`NginxConfig::body`] as a static file (`text/plain`),
//!   keep-alive governed by [`NginxConfig::keepalive_requests`] and
//!   [`NginxConfig::keepalive_timeout`];
//! - `GET /close`: the same body with `keepalive_timeout 0`, so the server answers with
//!   `Connection: close` and closes the connection after the response;
//! - `GET /big`: a 1 MiB static file (bytes `i % 251`);
//! - `GET /sizes/N`: with [`NginxConfig::sizes`], files of `N` bytes for each `N` of
//!   [`SIZES`] (bytes `i % 251`);
//! - `GET /gzip/text.txt`: a text file sent through nginx's gzip filter to clients that
//!   accept it, which nginx sends chunked (its length is not known in advance);
//! - `GET /redirect`: a 302 to `/`; `GET /redirect2`: a 301 to `/redirect`.
//!
//! Anything else is a 404.
#![allow(dead_code)]

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The size of the file served at `/big`.
pub const BIG_LEN: usize = 1 << 20;

/// The content served at `/big`.
pub fn big_body() -> Vec<u8> {
    (0..BIG_LEN).map(|i| (i % 251) as u8).collect()
}

/// The sizes served under `/sizes/` when [`NginxConfig::sizes`] is set: 0 bytes to 10 MiB.
pub const SIZES: [usize; 7] = [0, 1, 1000, 16 * 1024, 65_536, 1 << 20, 10 << 20];

/// The content of `/sizes/N`.
pub fn sized_body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// The text served at `/gzip/text.txt`.
pub fn gzip_text() -> Vec<u8> {
    (0..2000)
        .map(|i| format!("line {i} of a text that compresses well\n"))
        .collect::<String>()
        .into_bytes()
}

/// How a test nginx is configured.
#[derive(Clone, Debug)]
pub struct NginxConfig {
    /// `keepalive_requests`: responses on one connection before the server closes it.
    pub keepalive_requests: u32,
    /// `keepalive_timeout`, in nginx syntax (`"1s"`, `"500ms"`, `"0"`).
    pub keepalive_timeout: String,
    /// The content of `GET /` (and `GET /close`); may be binary.
    pub body: Vec<u8>,
    /// `worker_processes`; 1 runs nginx without a master process.
    pub workers: u32,
    /// Whether the files of `/sizes/` are written (10 MiB and more).
    pub sizes: bool,
}

impl Default for NginxConfig {
    fn default() -> Self {
        NginxConfig {
            keepalive_requests: 1000,
            keepalive_timeout: "75s".to_owned(),
            body: b"hello\n".to_vec(),
            workers: 1,
            sizes: false,
        }
    }
}

/// A running nginx; dropping it stops the process and removes its prefix directory.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

/// The nginx binary: `$NGINX`, or `/usr/sbin/nginx`. Panics with an installation hint
/// when it does not exist.
pub fn nginx_path() -> PathBuf {
    let path = std::env::var_os("NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
    if !path.is_file() {
        panic!(
            "nginx not found at {}: install nginx (e.g. `apt-get install nginx-light`) \
             or set NGINX to the path of an nginx binary",
            path.display()
        );
    }
    path
}

const START_ATTEMPTS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(5);
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(5);

static INSTANCE: AtomicUsize = AtomicUsize::new(0);

/// Escapes a path for a double-quoted nginx configuration string.
fn quoted(p: &Path) -> String {
    let s = p.to_str().expect("temporary directory path is UTF-8");
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn free_port() -> io::Result<u16> {
    let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

fn config_text(cfg: &NginxConfig, dir: &Path, port: u16) -> String {
    let workers = cfg.workers.max(1);
    let master = if workers > 1 { "on" } else { "off" };
    // `user` only matters (and is only allowed to change anything) when started as root;
    // worker processes would otherwise run as `nobody`.
    let user = if rustix::process::geteuid().is_root() {
        "user root;\n"
    } else {
        ""
    };
    let d = |name: &str| quoted(&dir.join(name));
    format!(
        "daemon off;
master_process {master};
worker_processes {workers};
{user}pid {pid};
error_log {error_log} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {t_body};
    proxy_temp_path {t_proxy};
    fastcgi_temp_path {t_fastcgi};
    uwsgi_temp_path {t_uwsgi};
    scgi_temp_path {t_scgi};
    default_type text/plain;
    types {{ }}
    etag off;
    server_tokens off;
    keepalive_requests {kreq};
    keepalive_timeout {ktime};
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location = / {{ try_files /index.html =404; }}
        location = /close {{ keepalive_timeout 0; try_files /index.html =404; }}
        location = /big {{ try_files /big.bin =404; }}
        location /gzip/ {{ gzip on; gzip_types text/plain; gzip_min_length 0; gzip_http_version 1.0; }}
        location = /redirect {{ return 302 /; }}
        location = /redirect2 {{ return 301 /redirect; }}
        location / {{ }}
    }}
}}
",
        pid = d("nginx.pid"),
        error_log = d("logs/error.log"),
        t_body = d("tmp/client_body"),
        t_proxy = d("tmp/proxy"),
        t_fastcgi = d("tmp/fastcgi"),
        t_uwsgi = d("tmp/uwsgi"),
        t_scgi = d("tmp/scgi"),
        kreq = cfg.keepalive_requests,
        ktime = cfg.keepalive_timeout,
        root = d("html"),
    )
}

/// What happened to one attempt at starting nginx on a port.
enum Attempt {
    Ready(Child),
    /// nginx exited before becoming ready; the text is its error output.
    Exited(String),
}

impl Nginx {
    /// Starts nginx in the foreground as a child process with a fresh prefix directory,
    /// on a free port of 127.0.0.1, and returns once that port accepts connections.
    /// Retries with another port (up to 5 attempts) when nginx cannot bind.
    pub fn start(cfg: NginxConfig) -> io::Result<Nginx> {
        let bin = nginx_path();
        let dir = std::env::temp_dir().join(format!(
            "keepalive-test-nginx-{}-{}",
            std::process::id(),
            INSTANCE.fetch_add(1, Ordering::Relaxed)
        ));
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        let result = Self::start_in(&bin, &cfg, &dir);
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    fn start_in(bin: &Path, cfg: &NginxConfig, dir: &Path) -> io::Result<Nginx> {
        for sub in ["html", "logs", "conf", "tmp"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        fs::write(dir.join("html/index.html"), &cfg.body)?;
        fs::write(dir.join("html/big.bin"), big_body())?;
        fs::create_dir_all(dir.join("html/gzip"))?;
        fs::write(dir.join("html/gzip/text.txt"), gzip_text())?;
        if cfg.sizes {
            fs::create_dir_all(dir.join("html/sizes"))?;
            for n in SIZES {
                fs::write(dir.join(format!("html/sizes/{n}")), sized_body(n))?;
            }
        }

        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let conf = dir.join("conf/nginx.conf");
            fs::write(&conf, config_text(cfg, dir, port))?;
            let _ = fs::remove_file(dir.join("nginx.pid"));
            match Self::attempt(bin, dir, &conf, port)? {
                Attempt::Ready(child) => {
                    return Ok(Nginx {
                        child,
                        dir: dir.to_owned(),
                        port,
                    })
                }
                Attempt::Exited(err) => {
                    last_error = err;
                    if !last_error.contains("Address already in use") {
                        break;
                    }
                }
            }
        }
        Err(io::Error::other(format!(
            "nginx did not start: {}",
            last_error.trim()
        )))
    }

    fn attempt(bin: &Path, dir: &Path, conf: &Path, port: u16) -> io::Result<Attempt> {
        let stderr_path = dir.join("logs/stderr.log");
        let stderr = fs::File::create(&stderr_path)?;
        let mut child = Command::new(bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(conf)
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let pid_file = dir.join("nginx.pid");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if child.try_wait()?.is_some() {
                let mut err = fs::read_to_string(&stderr_path).unwrap_or_default();
                err.push_str(&fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default());
                return Ok(Attempt::Exited(err));
            }
            // nginx writes its pid file only after binding its listening sockets, so a
            // connection accepted after that is nginx's and not some other process's.
            if pid_file.exists()
                && TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
                && child.try_wait()?.is_none()
            {
                return Ok(Attempt::Ready(child));
            }
            if Instant::now() >= deadline {
                stop(&mut child);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nginx did not accept connections on {addr} within {READY_TIMEOUT:?}"),
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The port nginx listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address nginx listens on: 127.0.0.1 and [`Nginx::port`].
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The prefix directory (configuration, logs, served files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The contents of nginx's error log so far, for diagnostics.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }
}

/// SIGTERM (fast shutdown, which also ends worker processes), a bounded wait, then SIGKILL.
fn stop(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let pid = rustix::process::Pid::from_child(child);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(POLL),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = fs::remove_dir_all(&self.dir);
    }
}
