//! A UDP echo server (RFC 862 over UDP): `SocketFactory` with `SocketProtocol => 'udp'`
//! hands over a bound socket, and a `Udp` wheel sends every datagram back to its sender.
//! It stops cleanly on SIGINT or SIGTERM.
//!
//! ```text
//! cargo run --example udp_echo -- [--port P]
//! ```
//!
//! It binds 127.0.0.1 (port 0, the default, lets the system pick one), prints
//! `listening on ADDRESS` as its first line once the socket is bound, and echoes every
//! datagram, empty ones included. Try it with `nc -u 127.0.0.1 PORT`. On SIGINT or SIGTERM
//! it drops the wheel (closing the socket) and exits with status 0.
//!
//! A POE program would take the socket in the `SuccessEvent` and call `select_read`,
//! `recv` and `send` itself, which works here too (`tests/wheel_sf_udp.rs` does exactly
//! that); the wheel does the same work and queues what the socket cannot take at once.

use mio::net::UdpSocket;
#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};
use reactor::wheel::{SocketFactory, Udp, WheelError};
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle, WheelId};
use std::io::Write;
use std::net::SocketAddr;

const USAGE: &str = "\
Usage: udp_echo [--port P]

A UDP echo server: every datagram goes back to its sender. Stops on SIGINT or SIGTERM.

Options:
  --port P    bind 127.0.0.1 port P (default 0: the system picks; the first line printed
              is `listening on ADDRESS`)
  -h, --help  print this help";

/// The value of `--port`, 0 without it.
fn port_arg() -> u16 {
    cli::parse(USAGE, |p| {
        let mut port = 0;
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

/// The session's heap: the factory while it works, then the echoing wheel.
#[derive(Default)]
struct Echo {
    factory: Option<WheelHandle>,
    wheel: Option<WheelHandle>,
}

type R = Result<(), HandlerError>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = port_arg();
    let mut kernel = Kernel::new()?;

    kernel.create(
        Session::new(Echo::default())
            .on("_start", move |ctx: &mut Ctx<'_, Echo>| -> R {
                // SocketProtocol => 'udp', BindAddress => '127.0.0.1', BindPort => $port.
                // The socket comes at once, in got_socket.
                let factory = SocketFactory::udp()
                    .bind_address("127.0.0.1")
                    .bind_port(port)
                    .success_event("got_socket")
                    .failure_event("got_error")
                    .build(ctx)?;
                ctx.heap().factory = Some(factory);
                // Signal watchers do not keep a session alive; the wheel will.
                ctx.sig("INT", "stop", ())?;
                ctx.sig("TERM", "stop", ())?;
                Ok(())
            })
            .on("got_socket", |ctx: &mut Ctx<'_, Echo>| -> R {
                let socket = ctx.take_arg::<UdpSocket>(0)?;
                let address = socket.local_addr()?;
                let wheel = Udp::builder(socket)
                    .input_event("got_datagram")
                    .error_event("got_error")
                    .build(ctx)?;
                let heap = ctx.heap();
                heap.factory = None;
                heap.wheel = Some(wheel);
                // Now, with the socket bound and the signal watchers in place, tell the
                // world where we are.
                let mut out = std::io::stdout();
                writeln!(out, "listening on {address}")?;
                out.flush()?;
                Ok(())
            })
            .on("got_datagram", |ctx: &mut Ctx<'_, Echo>| -> R {
                // ARG0 the payload, ARG1 who sent it, ARG2 the wheel's id.
                let payload = ctx.take_arg::<Vec<u8>>(0)?;
                let from = *ctx.arg::<SocketAddr>(1)?;
                let id = *ctx.arg::<WheelId>(2)?;
                if let Some(wheel) = ctx.wheel_mut::<Udp>(id) {
                    // A full queue refuses the datagram: UDP may drop it, so do we.
                    if let Err(full) = wheel.put(payload, from) {
                        log::warn!("{full}");
                    }
                }
                Ok(())
            })
            .on("got_error", |ctx: &mut Ctx<'_, Echo>| -> R {
                let e = ctx.arg::<WheelError>(0)?.clone();
                if ctx.heap().wheel.is_none() {
                    // The socket could not be made (a port in use...): die, as a POE
                    // program would; `run` returns the error.
                    return Err(format!("udp_echo: {e}").into());
                }
                // A datagram that could not be sent is only reported.
                log::warn!("{e}");
                Ok(())
            })
            .on("stop", |ctx: &mut Ctx<'_, Echo>| -> R {
                // Handled: the kernel stops no one; dropping the wheel ends the session.
                ctx.sig_handled();
                let heap = ctx.heap();
                heap.wheel = None;
                heap.factory = None;
                ctx.sig_clear("INT")?;
                ctx.sig_clear("TERM")?;
                Ok(())
            }),
    )?;

    kernel.run()?;
    Ok(())
}
