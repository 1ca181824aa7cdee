//! A port of POE's `examples/watermarks.perl`: a chargen server (RFC 864) that throttles
//! itself with `ReadWrite`'s output watermarks.
//!
//! ```text
//! cargo run --example watermarks -- [--port P]
//! ```
//!
//! A listening `SocketFactory` hands each connection to a new session, whose `ReadWrite`
//! wheel (Line filter, high mark 256 octets, low mark 128) is fed chargen lines until
//! `put` reports the high mark reached ("writes are paused"). The `LowEvent`, once the
//! buffer has drained, restarts the writing ("is resuming"); the `HighEvent` would stop it
//! ("is throttled"). Input is ignored, with a message. Messages go to standard error.
//!
//! The Perl program listens on every address, port 32100. This one listens on
//! 127.0.0.1, port 32100 unless `--port` says otherwise; with `--port 0` the system
//! picks one, and the banner names the port actually bound.

use reactor::wheel::WheelError;
use reactor::wheel::{SocketFactory, WheelHandle};
use reactor::{Ctx, Kernel, Session};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

#[path = "common/chargen.rs"]
mod chargen;
#[path = "common/cli.rs"]
mod cli;
use chargen::{connection, port_arg, R};

/// `Chargen::Server`: a session holding the listening factory.
mod server {
    use super::*;

    /// Its heap: `$heap->{listener}`.
    pub type Heap = Option<WheelHandle>;

    /// `Chargen::Server->new`; returns the address it listens on, if it could bind.
    pub fn new(kernel: &mut Kernel, port: u16) -> reactor::Result<Option<SocketAddr>> {
        let bound: Rc<Cell<Option<SocketAddr>>> = Rc::default();
        let b = Rc::clone(&bound);
        kernel.create(
            Session::new(None)
                .on("_start", move |ctx: &mut Ctx<'_, Heap>| -> R {
                    let listener = SocketFactory::listen()
                        .bind_address("127.0.0.1")
                        .bind_port(port)
                        .reuse(true)
                        .success_event("accepted")
                        .failure_event("error")
                        .build(ctx)?;
                    b.set(
                        ctx.wheel_ref::<SocketFactory>(listener.id())
                            .and_then(SocketFactory::getsockname),
                    );
                    *ctx.heap() = Some(listener);
                    Ok(())
                })
                .on("accepted", |ctx: &mut Ctx<'_, Heap>| -> R {
                    let socket = ctx.take_arg::<mio::net::TcpStream>(0)?;
                    super::connection::new(ctx, socket, 256)?;
                    Ok(())
                })
                .on("error", |ctx: &mut Ctx<'_, Heap>| -> R {
                    let op = ctx.arg::<WheelError>(0)?.operation;
                    let errnum = ctx.arg::<WheelError>(0)?.errno;
                    let errstr = ctx.arg::<WheelError>(0)?.message.clone();
                    eprintln!("Chargen::Server encountered {op} error {errnum}: {errstr}");
                    *ctx.heap() = None;
                    Ok(())
                }),
        )?;
        Ok(bound.get())
    }
}

const USAGE: &str = "\
Usage: watermarks [--port P]

POE's watermarks.perl: a chargen server that throttles itself with ReadWrite's
output watermarks.

Options:
  --port P    listen on 127.0.0.1 port P (default 32100, the Perl program's; 0: the system
              picks)
  -h, --help  print this help";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = port_arg(USAGE);
    let mut kernel = Kernel::new()?;
    // The banner names the port asked for, or the one bound when that was 0.
    let shown = server::new(&mut kernel, port)?.map_or(port, |a| a.port());
    print!(
        "*** If all goes well, a watermarked (self-throttling) chargen\n\
         *** service will be listening on localhost port {}.\n\
         *** Watch it perform flow control by connecting to it over a slow\n\
         *** connection or with a client you can pause.  The server will\n\
         *** throttle itself when its output buffer becomes too large, and\n\
         *** it will resume output when the client receives enough data.\n",
        shown
    );
    use std::io::Write as _;
    std::io::stdout().flush()?;
    kernel.run()?;
    Ok(())
}
