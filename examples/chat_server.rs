//! The POE Cookbook's "Chat Server" (<http://poe.perl.org/?POE_Cookbook/Chat_Server>) on
//! `ServerTcp`.
//!
//! ```text
//! cargo run --example chat_server -- [--port P]
//! ```
//!
//! Everyone connected is a user, known by the ID of the session serving their connection.
//! What one user types is broadcast to all: the sender sees `You said: ...`, the others
//! `N said: ...`; arrivals and departures are announced the same way (`N connected.`,
//! `N disconnected.`). Each connection session has an extra `send` state, and the
//! broadcast posts `send` to every user's session by its ID.
//!
//! The cookbook listens on port 32080; this one listens on 127.0.0.1, port 0 (the system
//! picks) unless `--port` says otherwise, and prints `listening on ADDRESS` first.

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};
use reactor::component::{ConnHeap, ServerTcp};
use reactor::{Ctx, HandlerError, Kernel, SessionId};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::Write;
use std::rc::Rc;

/// The users in the chat room (the cookbook's `%users`).
type Users = Rc<RefCell<BTreeSet<SessionId>>>;

const USAGE: &str = "\
Usage: chat_server [--port P]

A chat room on ServerTcp: what one client types, every client sees.

Options:
  --port P    listen on 127.0.0.1 port P (default 0: the system picks; the first line
              printed is `listening on ADDRESS`)
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

/// Broadcasts a message to all the users in the chat room: a plain function, not an
/// event handler.
fn broadcast(
    kernel: &mut Kernel,
    users: &Users,
    sender: SessionId,
    message: &str,
) -> Result<(), HandlerError> {
    for &user in users.borrow().iter() {
        if user == sender {
            kernel.post(user, "send", (format!("You {message}"),))?;
        } else {
            kernel.post(user, "send", (format!("{sender} {message}"),))?;
        }
    }
    Ok(())
}

/// Handles an outgoing message by sending it to the client.
fn handle_send(ctx: &mut Ctx<'_, ConnHeap>) -> Result<(), HandlerError> {
    let message = ctx.arg::<String>(0)?.clone();
    if let Some(client) = ctx.client() {
        client.put_one(message)?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = port_arg();
    let mut kernel = Kernel::new()?;
    let users: Users = Rc::default();
    let (u1, u2, u3, u4) = (users.clone(), users.clone(), users.clone(), users);

    let server = ServerTcp::builder()
        .alias("chat_server")
        .address("127.0.0.1")
        .port(port)
        .inline_state("send", handle_send)
        // A connection: register the new user, and tell whoever is already here.
        .client_connected(move |ctx| -> Result<(), HandlerError> {
            let session_id = ctx.session();
            u1.borrow_mut().insert(session_id);
            broadcast(ctx, &u1, session_id, "connected.")
        })
        // The client disconnected: remove them and tell whoever is left.
        .client_disconnected(move |ctx| -> Result<(), HandlerError> {
            let session_id = ctx.session();
            u2.borrow_mut().remove(&session_id);
            broadcast(ctx, &u2, session_id, "disconnected.")
        })
        // The socket had an error (EOF included): the same, then shut down.
        .client_error(move |ctx| -> Result<(), HandlerError> {
            let session_id = ctx.session();
            u3.borrow_mut().remove(&session_id);
            broadcast(ctx, &u3, session_id, "disconnected.")?;
            ctx.yield_("shutdown", ())?;
            Ok(())
        })
        // Client input goes to everyone in the room.
        .client_input(move |ctx| -> Result<(), HandlerError> {
            let input = String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?).into_owned();
            let session_id = ctx.session();
            broadcast(ctx, &u4, session_id, &format!("said: {input}"))
        })
        .build(&mut kernel)?;
    let address = server
        .local_addr()
        .ok_or("could not bind the listening socket")?;

    let mut out = std::io::stdout();
    writeln!(out, "listening on {address}")?;
    out.flush()?;

    kernel.run()?;
    Ok(())
}
