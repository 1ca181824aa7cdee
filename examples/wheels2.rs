//! A port of POE's `examples/wheels2.perl`: a terminal client for a line server (the
//! Perl program's comments suggest the rot13 server), made of a connecting
//! `SocketFactory` and two `ReadWrite` wheels with the Stream filter.
//!
//! ```text
//! cargo run --example wheels2 -- [--port P]
//! ```
//!
//! It prints `Connecting...`, connects to 127.0.0.1 port P (32100, the Perl program's
//! port, without `--port`), then relays: what is typed on standard input goes to the
//! server, what the server sends goes to standard output, the first thing written there
//! being `Begun terminal session.` (with no newline, as in Perl). A failed connection
//! prints `!!! Connecting: connect error ERRNO: MESSAGE`; end of input or an error on
//! either side drops both wheels, and the program ends.
//!
//! Standard input and output must be pipes or terminals (the poller cannot watch plain
//! files).

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};
use reactor::filter::Stream;
use reactor::wheel::WheelError;
use reactor::wheel::{ReadWrite, SocketFactory, WheelHandle, WheelId};
use reactor::{Ctx, HandlerError, Kernel, Session};
use std::os::fd::AsFd;

type R = Result<(), HandlerError>;

/// The session's heap: POE's `$heap->{connector}`, `{console_wheel}`, `{socket_wheel}`.
#[derive(Default)]
struct Heap {
    connector: Option<WheelHandle>,
    console_wheel: Option<WheelHandle>,
    socket_wheel: Option<WheelHandle>,
}

const USAGE: &str = "\
Usage: wheels2 [--port P]

POE's wheels2.perl: connects to a rot13 server and relays standard input to it and its
answers to standard output.

Options:
  --port P    the server's port on 127.0.0.1 (default 32100, the Perl program's)
  -h, --help  print this help";

/// The value of `--port`, 32100 (the Perl program's `$rot13_port`) without it.
fn port_arg() -> u16 {
    cli::parse(USAGE, |p| {
        let mut port = 32100;
        while let Some(arg) = p.next()? {
            match arg {
                Long("port") => port = cli::value(p, "--port")?,
                Short('h') | Long("help") => cli::help(USAGE),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(port)
    })
}

/// Puts `data` on the wheel `which` of the heap, if it is there.
fn put(ctx: &mut Ctx<'_, Heap>, which: fn(&Heap) -> Option<WheelId>, data: Vec<u8>) -> R {
    if let Some(id) = which(ctx.heap()) {
        if let Some(wheel) = ctx.wheel_mut::<ReadWrite>(id) {
            wheel.put_one(data)?;
        }
    }
    Ok(())
}

fn console(h: &Heap) -> Option<WheelId> {
    h.console_wheel.as_ref().map(WheelHandle::id)
}

fn socket(h: &Heap) -> Option<WheelId> {
    h.socket_wheel.as_ref().map(WheelHandle::id)
}

/// `_start`: connect.
fn session_start(ctx: &mut Ctx<'_, Heap>, port: u16) -> R {
    println!("Connecting...");
    let connector = SocketFactory::connect("127.0.0.1", port)
        .success_event("connect_success")
        .failure_event("connect_failure")
        .build(ctx)?;
    ctx.heap().connector = Some(connector);
    Ok(())
}

/// `connect_success`: wheels on the console (standard input and output) and the socket.
fn session_connect_success(ctx: &mut Ctx<'_, Heap>) -> R {
    let connected = ctx.take_arg::<mio::net::TcpStream>(0)?;
    ctx.heap().connector = None;
    // POE's InputHandle => \*STDIN, OutputHandle => \*STDOUT, made non-blocking.
    let stdin = mio::unix::pipe::Receiver::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    stdin.set_nonblocking(true)?;
    let stdout = mio::unix::pipe::Sender::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    stdout.set_nonblocking(true)?;
    let console_wheel = ReadWrite::split(stdin, stdout)
        .filter(Stream::new())
        .input_event("console_input")
        .error_event("console_error")
        .build(ctx)?;
    let socket_wheel = ReadWrite::builder(connected)
        .filter(Stream::new())
        .input_event("socket_input")
        .error_event("socket_error")
        .build(ctx)?;
    let id = console_wheel.id();
    let heap = ctx.heap();
    heap.console_wheel = Some(console_wheel);
    heap.socket_wheel = Some(socket_wheel);
    if let Some(w) = ctx.wheel_mut::<ReadWrite>(id) {
        w.put_one(&b"Begun terminal session."[..])?;
    }
    Ok(())
}

/// Prints `!!! WHAT: OP error ERRNO: MESSAGE` unless ERRNO is 0 (end of file).
fn report(ctx: &Ctx<'_, Heap>, what: &str) -> R {
    let op = ctx.arg::<WheelError>(0)?.operation;
    let errnum = ctx.arg::<WheelError>(0)?.errno;
    let errstr = ctx.arg::<WheelError>(0)?.message.clone();
    if errnum != 0 {
        println!("!!! {what}: {op} error {errnum}: {errstr}");
    }
    Ok(())
}

/// `connect_failure`.
fn session_connect_failure(ctx: &mut Ctx<'_, Heap>) -> R {
    report(ctx, "Connecting")?;
    *ctx.heap() = Heap::default();
    Ok(())
}

/// `console_error`: end of input, or an error; drop both wheels.
fn session_console_error(ctx: &mut Ctx<'_, Heap>) -> R {
    report(ctx, "Console")?;
    let heap = ctx.heap();
    heap.console_wheel = None;
    heap.socket_wheel = None;
    Ok(())
}

/// `socket_error`: the server went away, or an error; drop both wheels.
fn session_socket_error(ctx: &mut Ctx<'_, Heap>) -> R {
    report(ctx, "Socket")?;
    let heap = ctx.heap();
    heap.console_wheel = None;
    heap.socket_wheel = None;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = port_arg();
    let mut kernel = Kernel::new()?;
    kernel.create(
        Session::new(Heap::default())
            .on("_start", move |ctx: &mut Ctx<'_, Heap>| {
                session_start(ctx, port)
            })
            .on("_stop", |ctx: &mut Ctx<'_, Heap>| {
                *ctx.heap() = Heap::default();
            })
            .on("connect_success", session_connect_success)
            .on("connect_failure", session_connect_failure)
            .on("console_input", |ctx: &mut Ctx<'_, Heap>| -> R {
                let data = ctx.take_arg::<Vec<u8>>(0)?;
                put(ctx, socket, data)
            })
            .on("console_error", session_console_error)
            .on("socket_input", |ctx: &mut Ctx<'_, Heap>| -> R {
                let data = ctx.take_arg::<Vec<u8>>(0)?;
                put(ctx, console, data)
            })
            .on("socket_error", session_socket_error),
    )?;
    kernel.run()?;
    Ok(())
}
