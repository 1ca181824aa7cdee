//! A line echo server on `ServerTcp` (POE's `POE::Component::Server::TCP` DESCRIPTION
//! example), which stops cleanly on SIGINT or SIGTERM; with `--threads N`, N kernels on N
//! threads share the port.
//!
//! ```text
//! cargo run --example echo_server -- [--port P] [--threads N]
//! ```
//!
//! It listens on 127.0.0.1 (port 0, the default, lets the system pick one), prints
//! `listening on ADDRESS` as its first line, and sends every line a client types back to
//! it. On SIGINT or SIGTERM it stops listening, closes every connection once its replies
//! are flushed, and exits with status 0.
//!
//! With `--threads N` (default 1) it runs N kernels, one per thread ([`Group`]), each with
//! its own listener on the same port (`SO_REUSEPORT`): the system spreads the connections
//! across them, and each connection lives on one kernel. The group catches the signals
//! and tells every kernel to shut its server down.

use reactor::component::ServerTcp;
use reactor::group::Group;
use reactor::{Ctx, HandlerError, Kernel, Session, SessionId};
use std::io::Write;
use std::net::SocketAddr;

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};

const USAGE: &str = "\
Usage: echo_server [--port P] [--threads N]

A line echo server on 127.0.0.1; prints `listening on ADDRESS` first, and stops cleanly
on SIGINT or SIGTERM.

Options:
  --port P      the port to listen on (default 0: the system picks one)
  --threads N   N kernels on N threads sharing the port (default 1)
  -h, --help    print this help";

/// The command line: (port, threads).
fn options() -> (u16, usize) {
    cli::parse(USAGE, |p| {
        let (mut port, mut threads) = (0u16, 1usize);
        while let Some(arg) = p.next()? {
            match arg {
                Long("port") => port = cli::value(p, "--port")?,
                Long("threads") => {
                    threads = cli::value(p, "--threads")?;
                    if threads == 0 {
                        return Err("--threads needs a positive number".into());
                    }
                }
                Short('h') | Long("help") => cli::help(USAGE),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok((port, threads))
    })
}

/// The echo server in `kernel`, on `port`; returns where it listens and its listener
/// session.
fn echo_server(
    kernel: &mut Kernel,
    port: u16,
    reuse_port: bool,
) -> Result<(SocketAddr, SessionId), Box<dyn std::error::Error + Send + Sync>> {
    let server = ServerTcp::builder()
        .address("127.0.0.1")
        .port(port)
        .reuse_port(reuse_port)
        .alias("echo_server")
        .client_input(|ctx| -> Result<(), HandlerError> {
            // ARG0 is the line without its newline; the Line filter adds CRLF back. Taking
            // it moves it out of the event instead of copying it.
            let line = ctx.take_arg::<Vec<u8>>(0)?;
            if let Some(client) = ctx.client() {
                client.put_one(line)?;
            }
            Ok(())
        })
        .build(kernel)?;
    let address = server
        .local_addr()
        .ok_or("could not bind the listening socket")?;
    Ok((address, server.session()))
}

/// Stops listening and shuts every connection down once its replies are flushed. The
/// connection sessions are the listener's children.
fn shut_down(k: &mut Kernel, listener: SessionId) -> Result<(), reactor::Error> {
    k.post("echo_server", "shutdown", ())?;
    for client in k.children_of(listener)? {
        k.post(client, "shutdown", ())?;
    }
    Ok(())
}

fn announce(address: SocketAddr) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    writeln!(out, "listening on {address}")?;
    out.flush()
}

/// One kernel, with a session that turns SIGINT and SIGTERM into a clean shutdown.
fn one_kernel(port: u16) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut kernel = Kernel::new()?;
    let (address, listener) = echo_server(&mut kernel, port, false)?;

    // Signal watchers do not keep a session alive; its alias does, until the signal comes.
    kernel.create(
        Session::new(())
            .on(
                "_start",
                |ctx: &mut Ctx<'_, ()>| -> Result<(), reactor::Error> {
                    ctx.alias_set("signals")?;
                    ctx.sig("INT", "stop", ())?;
                    ctx.sig("TERM", "stop", ())
                },
            )
            .on(
                "stop",
                move |ctx: &mut Ctx<'_, ()>| -> Result<(), reactor::Error> {
                    // Handled: the kernel stops no one; everything winds down by itself.
                    ctx.sig_handled();
                    shut_down(ctx, listener)?;
                    ctx.sig_clear("INT")?;
                    ctx.sig_clear("TERM")?;
                    ctx.alias_remove("signals")
                },
            ),
    )?;

    // Only now, with the signal watchers in place, tell the world where we are.
    announce(address)?;
    kernel.run()?;
    Ok(())
}

/// `threads` kernels, each with a listener on the same port.
fn many_kernels(port: u16, threads: usize) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Kernel 0 binds first (setups run in order) and the others take the port it got.
    let bound = std::sync::Arc::new(std::sync::Mutex::new(None::<SocketAddr>));
    let b = std::sync::Arc::clone(&bound);
    let announced = std::sync::Arc::clone(&bound);
    Group::new(threads)
        .name("echo")
        .on_signal(|k, _signal| {
            if let Ok(listener) = k.alias_resolve("echo_server") {
                let _ = shut_down(k, listener);
            }
        })
        .on_ready(move || {
            let address = announced.lock().ok().and_then(|a| *a);
            if let Some(a) = address {
                let _ = announce(a);
            }
        })
        .run(move |_, kernel| {
            let port = match *b.lock().map_err(|_| "poisoned")? {
                Some(a) => a.port(),
                None => port,
            };
            let (address, _) = echo_server(kernel, port, true)?;
            *b.lock().map_err(|_| "poisoned")? = Some(address);
            Ok(())
        })?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (port, threads) = options();
    if threads == 1 {
        one_kernel(port)
    } else {
        many_kernels(port, threads)
    }
}
