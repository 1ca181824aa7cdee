//! A line echo server on `ServerTcp` (POE's `POE::Component::Server::TCP` DESCRIPTION
//! example), which stops cleanly on SIGINT or SIGTERM.
//!
//! ```text
//! cargo run --example echo_server -- [--port P]
//! ```
//!
//! It listens on 127.0.0.1 (port 0, the default, lets the system pick one), prints
//! `listening on ADDRESS` as its first line, and sends every line a client types back to
//! it. On SIGINT or SIGTERM it stops listening, closes every connection once its replies
//! are flushed, and exits with status 0.

use reactor::component::ServerTcp;
use reactor::{Ctx, HandlerError, Kernel, Session};
use std::io::Write;

/// The value of `--port`, 0 without it.
fn port_arg() -> Result<u16, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--port") {
        None => Ok(0),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| "--port needs a port number (0-65535)".to_owned()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let port = port_arg()?;
    let mut kernel = Kernel::new()?;

    let server = ServerTcp::builder()
        .address("127.0.0.1")
        .port(port)
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
        .build(&mut kernel)?;
    let address = server
        .local_addr()
        .ok_or("could not bind the listening socket")?;
    // The connection sessions are the listener's children: a signal closes them all.
    let listener = server.session();

    // A session that turns SIGINT and SIGTERM into a clean shutdown. Signal watchers do
    // not keep a session alive; its alias does, until the signal comes.
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
                    ctx.post("echo_server", "shutdown", ())?;
                    for client in ctx.children_of(listener)? {
                        ctx.post(client, "shutdown", ())?;
                    }
                    ctx.sig_clear("INT")?;
                    ctx.sig_clear("TERM")?;
                    ctx.alias_remove("signals")
                },
            ),
    )?;

    // Only now, with the signal watchers in place, tell the world where we are.
    let mut out = std::io::stdout();
    writeln!(out, "listening on {address}")?;
    out.flush()?;

    kernel.run()?;
    Ok(())
}
