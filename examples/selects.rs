//! A port of POE's `examples/selects.perl`: a chargen server (RFC 864) and a line client
//! written on the kernel's bare I/O watchers (`select_read`, `select_write`), with no
//! wheels, in one program.
//!
//! ```text
//! cargo run --example selects -- [--port P] [--clients N]
//! ```
//!
//! The server listens on 127.0.0.1 port P (32100, the Perl program's `$chargen_port`,
//! without `--port`; with `--port 0` the system picks one, and the messages name the port
//! actually bound). Each accepted connection gets a session that watches its socket for
//! reading (input is read and thrown away) and for writing (one chargen line, written to
//! the end, whenever the socket is writable); a write error ends it. The client connects
//! (a blocking connect, as `IO::Socket::INET`'s), prints what it reads until it has seen
//! more than five lines, and stops; the server keeps running, and other clients (netcat,
//! telnet) may connect to it.
//!
//! Every session watches SIGINT and SIGPIPE and prints the signals it gets. SIGINT is not
//! handled, so it stops every session, and the program ends. SIGPIPE, which a write to a
//! connection whose peer has gone raises, is watched only to be seen: as under POE, the
//! kernel catches it while someone watches it (the write then fails with `EPIPE`,
//! reported by the connection) and delivers it to every session that watches it; with
//! nobody watching it is ignored, as POE ignores it.
//!
//! Like the Perl program it runs until interrupted. `--clients N` makes it interrupt
//! itself: once N client connections have ended (its own client's included) the server
//! sends SIGINT to its own process, as a Ctrl-C would, and everything stops as after one.
//!
//! Differences from the Perl program: it listens on 127.0.0.1 only (Perl: every
//! address), and the client connects to 127.0.0.1 (Perl: `localhost`, which
//! `IO::Socket::INET` resolves to the same); `--port` and `--clients` are additions.

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};
use reactor::{Args, Ctx, HandlerError, Kernel, Session, Value};
use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;

type R = Result<(), HandlerError>;

/// The command line: `--port P` (32100 without it) and `--clients N` (none: run until
/// interrupted).
struct Options {
    port: u16,
    clients: Option<u32>,
}

const USAGE: &str = "\
Usage: selects [--port P] [--clients N]

POE's selects.perl: a chargen server and a client on bare select_read/select_write
watchers. Ends on SIGINT.

Options:
  --port P     listen on 127.0.0.1 port P (default 32100, the Perl program's; 0: the
               system picks)
  --clients N  stop the server after N clients (default: run until interrupted)
  -h, --help   print this help";

fn options() -> Options {
    cli::parse(USAGE, |p| {
        let mut options = Options {
            port: 32100,
            clients: None,
        };
        while let Some(arg) = p.next()? {
            match arg {
                Long("port") => options.port = cli::value(p, "--port")?,
                Long("clients") => match cli::value(p, "--clients")? {
                    0 => return Err("--clients needs a positive count".into()),
                    n => options.clients = Some(n),
                },
                Short('h') | Long("help") => cli::help(USAGE),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(options)
    })
}

/// The text of an OS error as Perl's `$!` gives it, with its number.
fn os_error(e: &std::io::Error) -> (i32, String) {
    (e.raw_os_error().unwrap_or(0), reactor::wheel::errstr(e))
}

/// Perl's `scalar gmtime()`: `Sun Dec  6 04:57:31 2026`.
fn gmtime() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
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

/// What a `_default` handler prints of an event's parameters: the ones that are text or
/// numbers, joined by `; ` (Perl's `join('; ', @$params)`).
fn show_params(params: &Args) -> String {
    (0..params.len())
        .map(|i| {
            if let Some(s) = params.opt::<String>(i) {
                s.clone()
            } else if let Some(s) = params.opt::<&str>(i) {
                (*s).to_owned()
            } else if let Some(n) = params.opt::<i32>(i) {
                n.to_string()
            } else if let Some(n) = params.opt::<u32>(i) {
                n.to_string()
            } else if let Some(n) = params.opt::<u16>(i) {
                n.to_string()
            } else {
                "?".to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A `_default` handler printing the unknown event as `who` ("server", "connection",
/// "client").
fn default_handler<H: 'static>(
    who: &'static str,
) -> impl Fn(&mut Ctx<'_, H>) -> Result<Value, HandlerError> {
    move |ctx| {
        let state = ctx.arg::<String>(0)?.clone();
        let params = show_params(ctx.arg::<Args>(1)?);
        println!("The chargen {who} has received a _default event.");
        println!("The original event was {state}, with the following parameters:{params}");
        // Returns 0 in case it was a signal.
        Ok(Value::new(0i32))
    }
}

/// The session handling one client connection to the server.
mod connection {
    use super::*;

    /// Its heap: the socket and what Perl keeps in `$heap`.
    pub struct Heap {
        socket: Option<TcpStream>,
        host: String,
        port: u16,
        /// `$heap->{'char'}`: the first character of the next line.
        char: u8,
    }

    /// Starts a connection session for `socket`, from the server's `accept`.
    pub fn create(
        kernel: &mut Kernel,
        socket: TcpStream,
        host: String,
        port: u16,
    ) -> reactor::Result<()> {
        kernel.create(
            Session::new(Heap {
                socket: None,
                host: String::new(),
                port: 0,
                char: 32,
            })
            .on("_start", start)
            .on("_stop", stop)
            .on("_default", default_handler::<Heap>("connection"))
            .on("read", read)
            .on("write", write)
            .on("signal", signal)
            .args((socket, host, port)),
        )?;
        Ok(())
    }

    fn start(ctx: &mut Ctx<'_, Heap>) -> Result<Value, HandlerError> {
        let socket = ctx.take_arg::<TcpStream>(0)?;
        let host = ctx.arg::<String>(1)?.clone();
        let port = *ctx.arg::<u16>(2)?;
        println!("Starting chargen connection with {host}:{port} ...");
        ctx.sig("INT", "signal", ())?;
        ctx.sig("PIPE", "signal", ())?;
        // POE makes a selected handle non-blocking.
        socket.set_nonblocking(true)?;
        ctx.select_read(&socket, "read", ())?;
        ctx.select_write(&socket, "write", ())?;
        let heap = ctx.heap();
        heap.host = host;
        heap.port = port;
        heap.char = 32;
        heap.socket = Some(socket);
        // Return something interesting.
        Ok(Value::new(gmtime()))
    }

    fn stop(ctx: &mut Ctx<'_, Heap>) {
        let heap = ctx.heap();
        println!(
            "Stopped chargen connection with {}:{}",
            heap.host, heap.port
        );
    }

    /// The client sent something: read it all and throw it away.
    fn read(ctx: &mut Ctx<'_, Heap>) {
        if let Some(mut socket) = ctx.heap().socket.as_ref() {
            let mut buffer = [0u8; 32000];
            while matches!(socket.read(&mut buffer), Ok(n) if n > 0) {}
        }
    }

    /// The socket can take more: write one chargen line, all of it.
    fn write(ctx: &mut Ctx<'_, Heap>) -> R {
        let heap = ctx.heap();
        let start = u16::from(heap.char);
        let mut line: Vec<u8> = (start..start + 72)
            .map(|c| if c > 126 { (c - 95) as u8 } else { c as u8 })
            .collect();
        line.extend_from_slice(b"\r\n");
        heap.char += 1;
        if heap.char > 126 {
            heap.char = 32;
        }
        let Some(socket) = heap.socket.as_ref() else {
            return Ok(());
        };
        let mut offset = 0;
        while offset < line.len() {
            // write(2), as Perl's syswrite: std's socket writes pass MSG_NOSIGNAL, which
            // would keep a write to a closed connection from raising SIGPIPE.
            let error = match rustix::io::write(socket, &line[offset..]) {
                Ok(0) => std::io::Error::from(ErrorKind::WriteZero),
                Ok(n) => {
                    offset += n;
                    continue;
                }
                Err(e) => std::io::Error::from(e),
            };
            // Close the session on error.
            let (errno, text) = os_error(&error);
            println!("The chargen connection has encountered write error {errno}: {text}");
            if let Some(socket) = ctx.heap().socket.take() {
                ctx.select_read_clear(&socket)?;
                ctx.select_write_clear(&socket)?;
            }
            break;
        }
        Ok(())
    }

    fn signal(ctx: &mut Ctx<'_, Heap>) -> R {
        let name = ctx.arg::<String>(0)?;
        println!("The chargen connection received SIG{name}");
        Ok(())
    }
}

/// The chargen server: listens, and starts a connection session per client.
mod server {
    use super::*;

    /// Its heap.
    pub struct Heap {
        listener: Option<TcpListener>,
        port: u16,
        /// `--clients`: how many connections may end before the program interrupts itself.
        clients: Option<u32>,
        ended: u32,
    }

    /// Creates the server; returns the port it bound (or `port`, if it could not).
    pub fn create(kernel: &mut Kernel, port: u16, clients: Option<u32>) -> reactor::Result<u16> {
        let bound = Rc::new(Cell::new(port));
        let shown = Rc::clone(&bound);
        kernel.create(
            Session::new(Heap {
                listener: None,
                port,
                clients,
                ended: 0,
            })
            .on("_start", move |ctx: &mut Ctx<'_, Heap>| -> R {
                start(ctx)?;
                shown.set(ctx.heap().port);
                Ok(())
            })
            .on("_stop", |_: &mut Ctx<'_, Heap>| {
                println!("The chargen server has stopped.");
            })
            .on("_default", default_handler::<Heap>("server"))
            .on("_child", child)
            .on("accept", accept)
            .on("signal", signal),
        )?;
        Ok(bound.get())
    }

    /// `IO::Socket::INET->new(LocalPort => P, Listen => 5, Reuse => 'yes')`, on 127.0.0.1.
    fn listen(port: u16) -> std::io::Result<TcpListener> {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())?;
        socket.listen(5)?;
        Ok(socket.into())
    }

    fn start(ctx: &mut Ctx<'_, Heap>) -> R {
        let port = ctx.heap().port;
        // Bind first, so that the message names the port bound when 0 was asked for.
        let listener = listen(port);
        let shown = match &listener {
            Ok(l) => l.local_addr()?.port(),
            Err(_) => port,
        };
        ctx.heap().port = shown;
        println!("The chargen server is starting on port {shown} ...");
        // SIGPIPE does not stop a session: it is watched only to be seen.
        ctx.sig("INT", "signal", ())?;
        ctx.sig("PIPE", "signal", ())?;
        match listener {
            Ok(listener) => {
                listener.set_nonblocking(true)?;
                ctx.select_read(&listener, "accept", ())?;
                ctx.heap().listener = Some(listener);
            }
            Err(e) => {
                let (_, text) = os_error(&e);
                println!("The chargen server could not listen on {port}: {text}");
            }
        }
        Ok(())
    }

    fn child(ctx: &mut Ctx<'_, Heap>) -> R {
        let direction = ctx.arg::<String>(0)?.clone();
        let english = match direction.as_str() {
            "gain" => "gained",
            "lose" => "lost",
            _ => "created",
        };
        println!("The chargen server has {english} a child session.");
        if direction == "create" {
            let ret = ctx.arg::<Value>(2)?;
            let ret = ret.get::<String>().cloned().unwrap_or_default();
            println!("The child session's _start state returned: {ret}");
        }
        if direction == "lose" {
            let heap = ctx.heap();
            heap.ended += 1;
            if heap.clients == Some(heap.ended) {
                // `--clients N`: interrupt the program, as Ctrl-C would.
                use rustix::process::{getpid, kill_process, Signal};
                kill_process(getpid(), Signal::INT)?;
            }
        }
        Ok(())
    }

    /// The listening socket is readable: accept, and start a session for the connection.
    fn accept(ctx: &mut Ctx<'_, Heap>) -> R {
        println!("The chargen server detected an incoming connection.");
        let Some(listener) = ctx.heap().listener.as_ref() else {
            return Ok(());
        };
        match listener.accept() {
            Ok((socket, peer)) => {
                connection::create(ctx, socket, peer.ip().to_string(), peer.port())?;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                println!("Incoming chargen server connection not ready... try again!");
                ctx.yield_("accept", ())?;
            }
            Err(e) => {
                let (_, text) = os_error(&e);
                println!("Incoming chargen server connection failed: {text}");
            }
        }
        Ok(())
    }

    fn signal(ctx: &mut Ctx<'_, Heap>) -> Result<Value, HandlerError> {
        let name = ctx.arg::<String>(0)?;
        println!("The chargen server received SIG{name}");
        Ok(Value::new(0i32))
    }
}

/// The line client: reads a few lines of chargen and stops.
mod client {
    use super::*;

    /// Its heap.
    pub struct Heap {
        socket: Option<TcpStream>,
        port: u16,
        /// `$heap->{'lines read'}`.
        lines_read: usize,
    }

    /// Creates the client of the server listening on `port`.
    pub fn create(kernel: &mut Kernel, port: u16) -> reactor::Result<()> {
        kernel.create(
            Session::new(Heap {
                socket: None,
                port,
                lines_read: 0,
            })
            .on("_start", start)
            .on("_stop", |_: &mut Ctx<'_, Heap>| {
                println!("\nThe chargen client has stopped.");
            })
            .on("_default", default_handler::<Heap>("client"))
            .on("read", read)
            .on("signal", signal),
        )?;
        Ok(())
    }

    fn start(ctx: &mut Ctx<'_, Heap>) -> R {
        let port = ctx.heap().port;
        println!("The chargen client is connecting to port {port} ...");
        ctx.sig("INT", "signal", ())?;
        ctx.sig("PIPE", "signal", ())?;
        ctx.heap().lines_read = 0;
        // A blocking connect, as IO::Socket::INET's.
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(socket) => {
                println!("The chargen client has connected to port {port}.");
                socket.set_nonblocking(true)?;
                ctx.select_read(&socket, "read", ())?;
                ctx.heap().socket = Some(socket);
            }
            Err(e) => {
                let (_, text) = os_error(&e);
                println!("The chargen client could not connect to {port}: {text}");
            }
        }
        Ok(())
    }

    /// Prints a chunk of what the server sent; stops watching the socket (which ends the
    /// session) after more than five lines, or on end of file or an error.
    fn read(ctx: &mut Ctx<'_, Heap>) -> R {
        let Some(mut socket) = ctx.heap().socket.as_ref() else {
            return Ok(());
        };
        let mut buffer = [0u8; 512];
        let done = match socket.read(&mut buffer) {
            Ok(n) if n > 0 => {
                let chunk = &buffer[..n];
                let mut out = std::io::stdout().lock();
                out.write_all(chunk)?;
                out.flush()?;
                let heap = ctx.heap();
                heap.lines_read += chunk.windows(2).filter(|w| w == b"\r\n").count();
                heap.lines_read > 5
            }
            _ => true,
        };
        if done {
            if let Some(socket) = ctx.heap().socket.take() {
                ctx.select_read_clear(&socket)?;
            }
        }
        Ok(())
    }

    fn signal(ctx: &mut Ctx<'_, Heap>) -> Result<Value, HandlerError> {
        let name = ctx.arg::<String>(0)?;
        println!("The chargen client received SIG{name}");
        Ok(Value::new(0i32))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options();
    let mut kernel = Kernel::new()?;
    // The client connects to the port the server bound (the one asked for, unless 0).
    let port = server::create(&mut kernel, options.port, options.clients)?;
    client::create(&mut kernel, port)?;
    kernel.run()?;
    Ok(())
}
