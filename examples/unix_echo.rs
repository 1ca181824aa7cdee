//! A line echo server on a UNIX socket: `ServerTcp` with `Domain => AF_UNIX` (here
//! `unix_path`), the same component, defaults and limits as `echo_server` over TCP. It
//! stops cleanly on SIGINT or SIGTERM.
//!
//! ```text
//! cargo run --example unix_echo -- [--path PATH]
//! ```
//!
//! It listens at PATH (default: `unix_echo-PID.sock` in the temporary directory; a path
//! that starts with `@` is a Linux abstract name, which leaves no file), prints
//! `listening on PATH` as its first line, and sends every line a client types back to it.
//! Try it with `nc -U PATH` or `socat - UNIX-CONNECT:PATH`. A socket file left at PATH by
//! an earlier run is removed first (any other file is left alone, and binding then fails).
//! On SIGINT or SIGTERM it stops listening, closes every connection once its replies are
//! flushed, removes the socket file and exits with status 0.

#[path = "common/cli.rs"]
mod cli;
use cli::{Long, Short};
use reactor::component::ServerTcp;
use reactor::{Ctx, HandlerError, Kernel, Session};
use std::cell::Cell;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::rc::Rc;

const USAGE: &str = "\
Usage: unix_echo [--path PATH]

A line echo server on a UNIX socket. Stops on SIGINT or SIGTERM and removes its socket.

Options:
  --path PATH  listen at PATH (default: unix_echo-PID.sock in the temporary directory);
               @NAME is a Linux abstract name. The first line printed is
               `listening on PATH`.
  -h, --help   print this help";

/// The value of `--path`, or a fresh name in the temporary directory.
fn path_arg() -> String {
    cli::parse(USAGE, |p| {
        let mut path = None;
        while let Some(arg) = p.next()? {
            match arg {
                Long("path") => path = Some(cli::text(p.value()?)),
                Short('h') | Long("help") => cli::help(USAGE),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(path.unwrap_or_else(|| {
            let p = std::env::temp_dir().join(format!("unix_echo-{}.sock", std::process::id()));
            p.to_string_lossy().into_owned()
        }))
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shown = path_arg();
    // "@name" is how tools write an abstract name; the socket API wants a NUL first.
    let (path, file) = match shown.strip_prefix('@') {
        Some(name) => (PathBuf::from(format!("\0{name}")), None),
        None => (PathBuf::from(&shown), Some(PathBuf::from(&shown))),
    };
    if let Some(f) = &file {
        if std::fs::symlink_metadata(f).is_ok_and(|m| m.file_type().is_socket()) {
            std::fs::remove_file(f)?;
        }
    }
    let mut kernel = Kernel::new()?;
    let failed = Rc::new(Cell::new(false));
    let failed_too = Rc::clone(&failed);

    let server = ServerTcp::builder()
        .unix_path(&path)
        .alias("unix_echo")
        // A socket that cannot be made (a path in use, a directory that is not there) is
        // reported here, in the first timeslice: die, as a POE program would, and `run`
        // returns the error.
        .error(move |ctx| -> Result<(), HandlerError> {
            let e = ctx.arg::<reactor::wheel::WheelError>(0)?;
            failed.set(true);
            Err(format!("unix_echo: {e}").into())
        })
        .client_input(|ctx| -> Result<(), HandlerError> {
            // ARG0 is the line without its newline; the Line filter adds CRLF back.
            let line = ctx.take_arg::<Vec<u8>>(0)?;
            if let Some(client) = ctx.client() {
                client.put_one(line)?;
            }
            Ok(())
        })
        .build(&mut kernel)?;
    // The connection sessions are the listener's children: a signal closes them all.
    let listener = server.session();

    kernel.create(
        Session::new(())
            .on(
                "_start",
                |ctx: &mut Ctx<'_, ()>| -> Result<(), reactor::Error> {
                    ctx.alias_set("signals")?;
                    ctx.sig("INT", "stop", ())?;
                    ctx.sig("TERM", "stop", ())?;
                    ctx.yield_("ready", ())
                },
            )
            .on(
                "ready",
                move |_: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                    // The listener's failure, if any, came first (its event was queued
                    // first), and the program is dying of it.
                    if failed_too.get() {
                        return Ok(());
                    }
                    // Now, with the signal watchers in place too, tell the world where we
                    // are.
                    let mut out = std::io::stdout();
                    writeln!(out, "listening on {shown}")?;
                    out.flush()?;
                    Ok(())
                },
            )
            .on(
                "stop",
                move |ctx: &mut Ctx<'_, ()>| -> Result<(), reactor::Error> {
                    ctx.sig_handled();
                    ctx.post("unix_echo", "shutdown", ())?;
                    for client in ctx.children_of(listener)? {
                        ctx.post(client, "shutdown", ())?;
                    }
                    ctx.sig_clear("INT")?;
                    ctx.sig_clear("TERM")?;
                    ctx.alias_remove("signals")
                },
            ),
    )?;

    let ran = kernel.run();
    // The listener is closed; its file stays unless removed (POE leaves it too).
    if let Some(f) = &file {
        let _ = std::fs::remove_file(f);
    }
    ran?;
    Ok(())
}
