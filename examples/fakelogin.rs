//! A port of POE's `examples/fakelogin.perl`: a fake telnet login prompt, an exercise in
//! renaming a wheel's events and switching its filters on the fly.
//!
//! ```text
//! cargo run --example fakelogin -- [--port P | P] [--sessions N]
//! ```
//!
//! A listening `SocketFactory` hands each connection to a login session, whose
//! `ReadWrite` wheel (Line filter, no input event at first) greets the caller with a
//! FreeBSD banner and then alternates between two states, each set up by an event:
//! `login_start` switches the output filter to Stream, points the wheel's input event at
//! `login_input` and prompts `login: `; `password_start` does the same for
//! `password_input` and prompts `Password: `. An empty login prompts again; any password
//! gets `Login incorrect` (through the Line filter again) and a new login prompt. When the
//! caller hangs up, the session prints `read error 0: Client closed connection` and
//! drops its wheel. Every step is printed on standard output.
//!
//! The port is the first argument, as in Perl, or `--port P`; `--port 0` lets the system
//! pick one. Without one, the program says it listens on port 23 (the telnet port, which
//! takes privileges) and does. It listens on 127.0.0.1 and prints the address bound,
//! `listening on 127.0.0.1:PORT`, on standard error (the Perl program listens on every
//! address and prints nothing then). Like the Perl program it runs forever, unless
//! `--sessions N` is given: then the listener closes after its N-th connection, and the
//! program ends once those sessions have.

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};
use reactor::filter::{Line, Stream};
use reactor::wheel::WheelError;
use reactor::wheel::{ReadWrite, RwEvent, SocketFactory, WheelHandle, WheelId};
use reactor::{Ctx, HandlerError, Kernel, Session};

type R = Result<(), HandlerError>;

/// The command line: the port (`None`: the default, announced) and `--sessions`.
struct Options {
    port: Option<u16>,
    sessions: Option<u32>,
}

const USAGE: &str = "\
Usage: fakelogin [--port P | P] [--sessions N]

POE's fakelogin.perl: a fake login prompt on a TCP port.

Options:
  P, --port P     listen on port P (default 23, announced; 0 lets the system pick)
  --sessions N    stop after N sessions (default: run for ever)
  -h, --help      print this help";

fn options() -> Options {
    cli::parse(USAGE, |p| {
        let mut options = Options {
            port: None,
            sessions: None,
        };
        while let Some(arg) = p.next()? {
            match arg {
                Long("port") => options.port = Some(cli::value(p, "--port")?),
                Long("sessions") => match cli::value(p, "--sessions")? {
                    0 => return Err("--sessions needs a positive count".into()),
                    n => options.sessions = Some(n),
                },
                Short('h') | Long("help") => cli::help(USAGE),
                cli::Value(bare) if options.port.is_none() => {
                    let bare = cli::text(bare);
                    let port = bare
                        .parse()
                        .map_err(|e| format!("invalid port '{bare}': {e}"))?;
                    options.port = Some(port);
                }
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(options)
    })
}

/// A login session's heap: `$heap->{wheel}`.
type Heap = Option<WheelHandle>;

/// The session's wheel, if it still has it.
fn wheel<'a>(ctx: &'a mut Ctx<'_, Heap>) -> Option<&'a mut ReadWrite> {
    let id: WheelId = ctx.heap().as_ref()?.id();
    ctx.wheel_mut::<ReadWrite>(id)
}

// The login state group.

/// Enters the login state: prompt, and wait for input.
fn login_login_start(ctx: &mut Ctx<'_, Heap>) -> R {
    println!("Session {} - entering login state", ctx.session());
    if let Some(w) = wheel(ctx) {
        // Switch the output filter to stream, and the input event to login_input.
        w.set_output_filter(Stream::new());
        w.event(RwEvent::Input, Some("login_input"));
        w.put_one(&b"login: "[..])?;
    }
    Ok(())
}

fn login_login_input(ctx: &mut Ctx<'_, Heap>) -> R {
    println!("Session {} - received login input", ctx.session());
    if ctx.arg::<Vec<u8>>(0)?.is_empty() {
        ctx.yield_("login_start", ())?;
    } else {
        ctx.yield_("password_start", ())?;
    }
    Ok(())
}

// The password state group.

fn login_password_start(ctx: &mut Ctx<'_, Heap>) -> R {
    println!("Session {} - entering password state", ctx.session());
    if let Some(w) = wheel(ctx) {
        w.set_output_filter(Stream::new());
        w.event(RwEvent::Input, Some("password_input"));
        w.put_one(&b"Password: "[..])?;
    }
    Ok(())
}

fn login_password_input(ctx: &mut Ctx<'_, Heap>) -> R {
    println!("Session {} - received password input", ctx.session());
    if let Some(w) = wheel(ctx) {
        // Back to lines for the response.
        w.set_output_filter(Line::new());
        w.put_one(&b"Login incorrect"[..])?;
    }
    ctx.yield_("login_start", ())?;
    Ok(())
}

fn login_error(ctx: &mut Ctx<'_, Heap>) -> R {
    let operation = ctx.arg::<WheelError>(0)?.operation.to_owned();
    let errnum = ctx.arg::<WheelError>(0)?.errno;
    let errstr = if errnum == 0 {
        "Client closed connection".to_owned()
    } else {
        ctx.arg::<WheelError>(0)?.message.clone()
    };
    println!(
        "Session {}: login: {operation} error {errnum}: {errstr}",
        ctx.session()
    );
    *ctx.heap() = None;
    Ok(())
}

// The main entry point for the login session.

fn login_session_start(ctx: &mut Ctx<'_, Heap>) -> R {
    println!("Session {} - received connection", ctx.session());
    let socket = ctx.take_arg::<mio::net::TcpStream>(0)?;
    // No input event yet: login_start names one.
    let w = ReadWrite::builder(socket)
        .filter(Line::new())
        .error_event("error")
        .build(ctx)?;
    let id = w.id();
    *ctx.heap() = Some(w);
    if let Some(w) = ctx.wheel_mut::<ReadWrite>(id) {
        w.put([&b"FreeBSD (localhost) (ttyp2)"[..], b"", b""])?;
    }
    ctx.yield_("login_start", ())?;
    Ok(())
}

/// The listener's `socket_ok`: a session for the new connection.
fn login_session_create<H: 'static>(ctx: &mut Ctx<'_, H>) -> R {
    let socket = ctx.take_arg::<mio::net::TcpStream>(0)?;
    let peer_addr = *ctx.arg::<Option<std::net::IpAddr>>(1)?;
    let peer_port = *ctx.arg::<u16>(2)?;
    ctx.create(
        Session::new(None::<WheelHandle>)
            .on("_start", login_session_start)
            // General error handler.
            .on("error", login_error)
            // Login prompt states.
            .on("login_start", login_login_start)
            .on("login_input", login_login_input)
            // Password prompt states.
            .on("password_start", login_password_start)
            .on("password_input", login_password_input)
            .args((socket, peer_addr, peer_port)),
    )?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options();
    let port = options.port.unwrap_or_else(|| {
        let me = std::env::args().next().unwrap_or_default();
        print!(
            "*** This program listens on port 23 by default.  You can change\n\
             *** the port by putting a new one on the command line.  For\n\
             *** example, to listen on port 10023:\n\
             *** {me} 10023\n"
        );
        23
    });
    let sessions = options.sessions;
    let mut kernel = Kernel::new()?;
    kernel.create(
        Session::new((None::<WheelHandle>, 0u32))
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, (Option<WheelHandle>, u32)>| -> R {
                    let w = SocketFactory::listen()
                        .bind_address("127.0.0.1")
                        .bind_port(port)
                        .success_event("socket_ok")
                        .failure_event("socket_error")
                        .reuse(true)
                        .build(ctx)?;
                    if let Some(a) = ctx
                        .wheel_ref::<SocketFactory>(w.id())
                        .and_then(SocketFactory::getsockname)
                    {
                        eprintln!("listening on {a}");
                    }
                    ctx.heap().0 = Some(w);
                    Ok(())
                },
            )
            .on(
                "socket_error",
                |ctx: &mut Ctx<'_, (Option<WheelHandle>, u32)>| -> R {
                    let operation = ctx.arg::<WheelError>(0)?.operation;
                    let errnum = ctx.arg::<WheelError>(0)?.errno;
                    let errstr = ctx.arg::<WheelError>(0)?.message.clone();
                    println!(
                        "Session {}: listener: {operation} error {errnum}: {errstr}",
                        ctx.session()
                    );
                    Ok(())
                },
            )
            .on(
                "socket_ok",
                move |ctx: &mut Ctx<'_, (Option<WheelHandle>, u32)>| -> R {
                    login_session_create(ctx)?;
                    let heap = ctx.heap();
                    heap.1 += 1;
                    if sessions == Some(heap.1) {
                        // `--sessions N`: close the listener.
                        heap.0 = None;
                    }
                    Ok(())
                },
            ),
    )?;
    kernel.run()?;
    Ok(())
}
