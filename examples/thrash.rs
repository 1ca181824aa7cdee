//! A port of POE's `examples/thrash.perl`: a daytime server and a pool of clients that
//! connect to it over and over, in one process; a leak test and a benchmark.
//!
//! ```text
//! cargo run --example thrash -- [--port P] [--debug] [--clients N]
//! ```
//!
//! The server (alias `server`) listens on 127.0.0.1 port P (32100, the Perl program's
//! `$server_port`, without `--port`; with `--port 0` the system picks one, and the clients
//! connect to the port bound, printed on standard error as `listening on
//! 127.0.0.1:PORT`). Each connection gets a session that sends one line, `Hi, ADDRESS
//! PORT!  The time is: DATE GMT`, and stops once it is flushed or the client has hung up.
//! The pool keeps five clients at a time: each connects with a `SocketFactory`, shuts its
//! sending side down, prints what it receives and stops when the server closes; the pool's
//! `_child` handler starts a new client for every one lost. Every ten seconds or more the
//! pool prints `bench: COUNT / SECONDS = RATE`, the clients started per second.
//!
//! `--debug` turns the Perl program's `DEBUG` constant on: every step of every session is
//! printed, and the pool stops starting clients once the program has run 60 seconds. The
//! Perl program otherwise runs forever. Either way, once the last client has gone the pool
//! stops, and from its `_stop` sends SIGQUIT to the server, meaning to stop it too; but a
//! stopping session's pending events are discarded with it, the ones it sent included, in
//! POE 1.370 as here, so the signal never arrives and the server keeps listening: the
//! Perl program never ends. `--clients N` makes the pool start no more than N clients in
//! all, and the server close its listener after accepting N connections, so that it stops
//! once it has served them, and the program ends. Every session watches SIGINT without
//! handling it, so Ctrl-C stops everything.
//!
//! Differences from the Perl program: `--port`, `--debug` and `--clients` replace editing
//! the source (`$server_port`, `DEBUG`), and the listener closing under `--clients` is
//! an addition.

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};
use reactor::filter::Line;
use reactor::wheel::WheelError;
use reactor::wheel::{ReadWrite, SocketFactory, WheelHandle};
use reactor::{Ctx, HandlerError, Kernel, Session, Value};
use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

type R = Result<(), HandlerError>;

/// The most clients at a time (`MAX_SIMULTANEOUS_CLIENTS`).
const MAX_SIMULTANEOUS_CLIENTS: u32 = 5;

/// The address the server binds to and the clients connect to (`$server_addr`).
const SERVER_ADDR: &str = "127.0.0.1";

/// What the command line sets, shared by every session.
struct Config {
    /// The port clients connect to: the one bound.
    port: Cell<u16>,
    /// Perl's `DEBUG`.
    debug: bool,
    /// `--clients N`.
    clients: Option<u32>,
    /// Perl's `$^T`: when the program started, in whole seconds.
    started: u64,
}

/// `print` when debugging (Perl's `DEBUG && print ...`).
macro_rules! debug {
    ($config:expr, $($arg:tt)*) => {
        if $config.debug {
            println!($($arg)*);
        }
    };
}

/// Perl's `time()`.
fn time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Perl's `scalar gmtime()`: `Sun Dec  6 04:57:31 2026`.
fn gmtime() -> String {
    let secs = time();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WDAY: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        WDAY[(days % 7) as usize],
        MON[(month - 1) as usize],
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        year
    )
}

/// A number as Perl prints it (`%.15g`).
fn perl_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let sci = format!("{x:.14e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if (-4..15).contains(&exp) {
        trim(format!("{x:.*}", (14 - exp).max(0) as usize))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa.to_owned()), exp.abs())
    }
}

/// A client: connects, shuts its sending side down, reads what comes.
mod client {
    use super::*;

    /// Its heap.
    pub struct Heap {
        config: Rc<Config>,
        serial: u32,
        wheel: Option<WheelHandle>,
    }

    /// `client_create`.
    pub fn create(kernel: &mut Kernel, config: &Rc<Config>, serial: u32) -> reactor::Result<()> {
        kernel.create(
            Session::new(Heap {
                config: Rc::clone(config),
                serial,
                wheel: None,
            })
            .on("_start", start)
            .on("_stop", |ctx: &mut Ctx<'_, Heap>| {
                let h = ctx.heap();
                debug!(h.config, "Client {} has stopped.", h.serial);
            })
            .on("receive", receive)
            .on("error", error)
            .on("connected", connected)
            .on("signals", signals)
            .on("_parent", |_: &mut Ctx<'_, Heap>| {}),
        )?;
        Ok(())
    }

    fn start(ctx: &mut Ctx<'_, Heap>) -> R {
        let h = ctx.heap();
        debug!(h.config, "Client {} is starting.", h.serial);
        let port = h.config.port.get();
        ctx.sig("INT", "signals", ())?;
        let wheel = SocketFactory::connect(SERVER_ADDR, port)
            .success_event("connected")
            .failure_event("error")
            .build(ctx)?;
        ctx.heap().wheel = Some(wheel);
        Ok(())
    }

    /// Connected: a ReadWrite wheel replaces the SocketFactory.
    fn connected(ctx: &mut Ctx<'_, Heap>) -> R {
        let socket = ctx.take_arg::<mio::net::TcpStream>(0)?;
        if socket.as_raw_fd() > 63 {
            return Err("possible filehandle leak".into());
        }
        let h = ctx.heap();
        debug!(h.config, "Client {} is connected.", h.serial);
        // Perl's shutdown($socket, 1), made before the wheel takes the socket.
        socket.shutdown(std::net::Shutdown::Write)?;
        let wheel = ReadWrite::builder(socket)
            .filter(Line::new())
            .input_event("receive")
            .error_event("error")
            .build(ctx)?;
        ctx.heap().wheel = Some(wheel);
        Ok(())
    }

    fn receive(ctx: &mut Ctx<'_, Heap>) -> R {
        let line = String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?).into_owned();
        let h = ctx.heap();
        debug!(h.config, "Client {} received: {line}", h.serial);
        Ok(())
    }

    /// From either wheel: an error, or the server closed the connection.
    fn error(ctx: &mut Ctx<'_, Heap>) -> R {
        let operation = ctx.arg::<WheelError>(0)?.operation.to_owned();
        let errnum = ctx.arg::<WheelError>(0)?.errno;
        let errstr = ctx.arg::<WheelError>(0)?.message.clone();
        let h = ctx.heap();
        if errnum != 0 {
            debug!(
                h.config,
                "Client {} encountered {operation} error {errnum}: {errstr}", h.serial
            );
        } else {
            debug!(
                h.config,
                "Client {} the server closed the connection.", h.serial
            );
        }
        // Removing the wheel stops the session.
        h.wheel = None;
        Ok(())
    }

    /// Logs a signal; never handles it.
    fn signals(ctx: &mut Ctx<'_, Heap>) -> Result<Value, HandlerError> {
        let name = ctx.arg::<String>(0)?.clone();
        let h = ctx.heap();
        debug!(h.config, "Client {} caught SIG{name}", h.serial);
        Ok(Value::new(0i32))
    }
}

/// The pool: keeps five clients going.
mod pool {
    use super::*;

    /// Its heap.
    pub struct Heap {
        config: Rc<Config>,
        children: i64,
        client_serial: u32,
        running: bool,
        bench_start: u64,
        bench_count: u64,
    }

    /// `pool_create`.
    pub fn create(kernel: &mut Kernel, config: &Rc<Config>) -> reactor::Result<()> {
        kernel.create(
            Session::new(Heap {
                config: Rc::clone(config),
                children: 0,
                client_serial: 0,
                running: true,
                bench_start: 0,
                bench_count: 0,
            })
            .on("_start", start)
            .on("_stop", |ctx: &mut Ctx<'_, Heap>| -> R {
                // Stop the server too.
                ctx.signal("server", "QUIT", ())?;
                debug!(ctx.heap().config, "Pool has stopped.");
                Ok(())
            })
            .on(
                "signals",
                |ctx: &mut Ctx<'_, Heap>| -> Result<Value, HandlerError> {
                    let name = ctx.arg::<String>(0)?.clone();
                    debug!(ctx.heap().config, "Pool caught SIG{name}");
                    Ok(Value::new(0i32))
                },
            )
            .on("_child", child)
            .on("_parent", |_: &mut Ctx<'_, Heap>| {}),
        )?;
        Ok(())
    }

    /// Starts the next client, unless `--clients` says it is one too many.
    fn next_client(ctx: &mut Ctx<'_, Heap>) -> R {
        let h = ctx.heap();
        h.client_serial += 1;
        let serial = h.client_serial;
        if h.config.clients == Some(serial) {
            h.running = false;
        }
        let config = Rc::clone(&h.config);
        client::create(ctx, &config, serial)?;
        Ok(())
    }

    fn start(ctx: &mut Ctx<'_, Heap>) -> R {
        debug!(ctx.heap().config, "Pool starting.");
        ctx.sig("INT", "signals", ())?;
        let h = ctx.heap();
        h.children = 0;
        h.client_serial = 0;
        h.running = true;
        h.bench_start = time();
        h.bench_count = 0;
        // SocketFactory connects do not block, so this loop holds nothing up.
        for _ in 0..MAX_SIMULTANEOUS_CLIENTS {
            if !ctx.heap().running {
                break;
            }
            next_client(ctx)?;
        }
        Ok(())
    }

    /// Counts children, replacing each one lost while running; prints the benchmark.
    fn child(ctx: &mut Ctx<'_, Heap>) -> R {
        let direction = ctx.arg::<String>(0)?.clone();
        if direction == "lose" {
            ctx.heap().children -= 1;
            if ctx.heap().running {
                next_client(ctx)?;
            }
        } else {
            let h = ctx.heap();
            h.children += 1;
            h.bench_count += 1;
        }
        let h = ctx.heap();
        let english = match direction.as_str() {
            "create" => "created",
            "lose" => "lost",
            _ => "gained",
        };
        debug!(
            h.config,
            "Pool {english} a child session (now has {}).", h.children
        );
        let elapsed = time().saturating_sub(h.bench_start);
        if elapsed >= 10 {
            println!(
                "bench: {} / {elapsed} = {}",
                h.bench_count,
                perl_number(h.bench_count as f64 / elapsed as f64)
            );
            h.bench_count = 0;
            h.bench_start = time();
            // Limit the run to 60 seconds when debugging.
            if h.config.debug && time().saturating_sub(h.config.started) >= 60 {
                h.running = false;
            }
        }
        Ok(())
    }
}

/// A server session: greets one client.
mod session {
    use super::*;

    /// Its heap.
    pub struct Heap {
        config: Rc<Config>,
        host: String,
        port: u16,
        wheel: Option<WheelHandle>,
    }

    /// `session_create`.
    pub fn create(
        kernel: &mut Kernel,
        config: &Rc<Config>,
        socket: mio::net::TcpStream,
        host: Option<std::net::IpAddr>,
        port: u16,
    ) -> reactor::Result<()> {
        kernel.create(
            Session::new(Heap {
                config: Rc::clone(config),
                host: String::new(),
                port: 0,
                wheel: None,
            })
            .on("_start", start)
            .on("_stop", |ctx: &mut Ctx<'_, Heap>| {
                let h = ctx.heap();
                debug!(h.config, "Session with {} {} has stopped.", h.host, h.port);
            })
            .on("receive", |ctx: &mut Ctx<'_, Heap>| -> R {
                let line = String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?).into_owned();
                let h = ctx.heap();
                debug!(h.config, "Received from {} {}: {line}", h.host, h.port);
                Ok(())
            })
            .on("flushed", |ctx: &mut Ctx<'_, Heap>| {
                let h = ctx.heap();
                debug!(h.config, "Output to {} {} has flushed.", h.host, h.port);
                // Removing the wheel stops the session.
                h.wheel = None;
            })
            .on("error", |ctx: &mut Ctx<'_, Heap>| -> R {
                let operation = ctx.arg::<WheelError>(0)?.operation.to_owned();
                let errnum = ctx.arg::<WheelError>(0)?.errno;
                let errstr = ctx.arg::<WheelError>(0)?.message.clone();
                let h = ctx.heap();
                debug!(
                    h.config,
                    "Session with {} {} encountered {operation} error {errnum}: {errstr}",
                    h.host,
                    h.port
                );
                h.wheel = None;
                Ok(())
            })
            .on(
                "signals",
                |ctx: &mut Ctx<'_, Heap>| -> Result<Value, HandlerError> {
                    let name = ctx.arg::<String>(0)?.clone();
                    let h = ctx.heap();
                    debug!(
                        h.config,
                        "Session with {} {} has received a SIG{name}", h.host, h.port
                    );
                    Ok(Value::new(0i32))
                },
            )
            .on("_child", |_: &mut Ctx<'_, Heap>| {})
            .on("_parent", |_: &mut Ctx<'_, Heap>| {})
            .args((socket, host, port)),
        )?;
        Ok(())
    }

    fn start(ctx: &mut Ctx<'_, Heap>) -> R {
        let socket = ctx.take_arg::<mio::net::TcpStream>(0)?;
        let host = ctx
            .arg::<Option<std::net::IpAddr>>(1)?
            .map(|a| a.to_string())
            .unwrap_or_default();
        let port = *ctx.arg::<u16>(2)?;
        let h = ctx.heap();
        debug!(h.config, "Session with {host} {port} is starting.");
        ctx.sig("INT", "signals", ())?;
        let wheel = ReadWrite::builder(socket)
            .filter(Line::new())
            .input_event("receive")
            .error_event("error")
            .flushed_event("flushed")
            .build(ctx)?;
        let id = wheel.id();
        let h = ctx.heap();
        h.host = host.clone();
        h.port = port;
        h.wheel = Some(wheel);
        if let Some(w) = ctx.wheel_mut::<ReadWrite>(id) {
            w.put_one(format!("Hi, {host} {port}!  The time is: {} GMT", gmtime()))?;
        }
        Ok(())
    }
}

/// The daytime server: listens, and starts a session per connection.
mod server {
    use super::*;

    /// `server_create`.
    pub fn create(kernel: &mut Kernel, config: &Rc<Config>) -> reactor::Result<()> {
        let config = Rc::clone(config);
        kernel.create(
            Session::new((Rc::clone(&config), None::<WheelHandle>, 0u32))
                .on("_start", start)
                .on("_stop", |ctx: &mut Ctx<'_, Heap>| {
                    debug!(ctx.heap().0, "Daytime server has stopped.");
                })
                .on("accept_success", accept)
                .on("accept_error", |ctx: &mut Ctx<'_, Heap>| -> R {
                    let operation = ctx.arg::<WheelError>(0)?.operation.to_owned();
                    let errnum = ctx.arg::<WheelError>(0)?.errno;
                    let errstr = ctx.arg::<WheelError>(0)?.message.clone();
                    debug!(
                        ctx.heap().0,
                        "Daytime server encountered {operation} error {errnum}: {errstr}"
                    );
                    Ok(())
                })
                .on(
                    "signals",
                    |ctx: &mut Ctx<'_, Heap>| -> Result<Value, HandlerError> {
                        let name = ctx.arg::<String>(0)?.clone();
                        debug!(ctx.heap().0, "Daytime server caught SIG{name}");
                        Ok(Value::new(0i32))
                    },
                )
                .on("_child", |_: &mut Ctx<'_, Heap>| {})
                .on("_parent", |_: &mut Ctx<'_, Heap>| {}),
        )?;
        Ok(())
    }

    /// Its heap: the configuration, the listening factory, and how many connections it
    /// has accepted.
    type Heap = (Rc<Config>, Option<WheelHandle>, u32);

    fn start(ctx: &mut Ctx<'_, Heap>) -> R {
        let config = Rc::clone(&ctx.heap().0);
        debug!(config, "Daytime server is starting.");
        // An alias, so that the pool can signal it.
        ctx.alias_set("server")?;
        ctx.sig("INT", "signals", ())?;
        ctx.sig("QUIT", "signals", ())?;
        let wheel = SocketFactory::listen()
            .bind_address(SERVER_ADDR)
            .bind_port(config.port.get())
            .reuse(true)
            .success_event("accept_success")
            .failure_event("accept_error")
            .build(ctx)?;
        if let Some(a) = ctx
            .wheel_ref::<SocketFactory>(wheel.id())
            .and_then(SocketFactory::getsockname)
        {
            eprintln!("listening on {a}");
            config.port.set(a.port());
        }
        ctx.heap().1 = Some(wheel);
        Ok(())
    }

    fn accept(ctx: &mut Ctx<'_, Heap>) -> R {
        let socket = ctx.take_arg::<mio::net::TcpStream>(0)?;
        let host = *ctx.arg::<Option<std::net::IpAddr>>(1)?;
        let port = *ctx.arg::<u16>(2)?;
        if socket.as_raw_fd() > 63 {
            return Err("possible filehandle leak".into());
        }
        let config = Rc::clone(&ctx.heap().0);
        session::create(ctx, &config, socket, host, port)?;
        let heap = ctx.heap();
        heap.2 += 1;
        if config.clients == Some(heap.2) {
            // `--clients N`: that was the last; close the listener.
            heap.1 = None;
        }
        Ok(())
    }
}

const USAGE: &str = "\
Usage: thrash [--port P] [--debug] [--clients N]

POE's thrash.perl: a daytime server and a pool of clients that connect to it over and
over; a leak test and a benchmark.

Options:
  --port P     listen on 127.0.0.1 port P (default 32100, the Perl program's; 0: the
               system picks)
  --debug      print every step of every session, and stop starting clients after 60 s
  --clients N  start N clients in all, then end (default: run for ever)
  -h, --help   print this help";

/// The command line.
fn config() -> Config {
    cli::parse(USAGE, |p| {
        let (mut port, mut debug, mut clients) = (32100, false, None);
        while let Some(arg) = p.next()? {
            match arg {
                Long("port") => port = cli::value(p, "--port")?,
                Long("debug") => debug = true,
                Long("clients") => match cli::value(p, "--clients")? {
                    0 => return Err("--clients needs a positive count".into()),
                    n => clients = Some(n),
                },
                Short('h') | Long("help") => cli::help(USAGE),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(Config {
            port: Cell::new(port),
            debug,
            clients,
            started: time(),
        })
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Rc::new(config());
    let mut kernel = Kernel::new()?;
    server::create(&mut kernel, &config)?;
    pool::create(&mut kernel, &config)?;
    kernel.run()?;
    Ok(())
}
