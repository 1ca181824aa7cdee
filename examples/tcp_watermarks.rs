//! A port of POE's `examples/tcp_watermarks.perl`: `watermarks.perl`'s self-throttling
//! chargen server (RFC 864) on `POE::Component::Server::TCP`.
//!
//! ```text
//! cargo run --example tcp_watermarks -- [--port P]
//! ```
//!
//! `ServerTcp`'s `Acceptor` hands each connection to a new session, whose `ReadWrite`
//! wheel (Line filter, high mark 1024 octets, low mark 128) is fed chargen lines until
//! `put` reports the high mark reached ("writes are paused"). The `LowEvent`, once the
//! buffer has drained, restarts the writing ("is resuming"); the `HighEvent` would stop it
//! ("is throttled"). Input is ignored, with a message. Messages go to standard error.
//!
//! The Perl program listens on every address, port 32100. This one listens on
//! 127.0.0.1, port 32100 unless `--port` says otherwise; with `--port 0` the system
//! picks one, and the banner names the port actually bound.

use reactor::component::ServerTcp;
use reactor::Kernel;

#[path = "common/chargen.rs"]
mod chargen;
#[path = "common/cli.rs"]
mod cli;
use chargen::{connection, port_arg, R};

const USAGE: &str = "\
Usage: tcp_watermarks [--port P]

POE's tcp_watermarks.perl: the self-throttling chargen server on ServerTcp.

Options:
  --port P    listen on 127.0.0.1 port P (default 32100, the Perl program's; 0: the system
              picks)
  -h, --help  print this help";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = port_arg(USAGE);
    let mut kernel = Kernel::new()?;
    // The Perl program prints the banner first; here the server is made first, so that
    // the banner can name the port bound when the one asked for is 0.
    let server = ServerTcp::builder()
        .address("127.0.0.1")
        .port(port)
        .acceptor(|ctx| -> R {
            let socket = ctx.take_arg::<mio::net::TcpStream>(0)?;
            connection::new(ctx, socket, 1024)?;
            Ok(())
        })
        .build(&mut kernel)?;
    let shown = server.local_addr().map_or(port, |a| a.port());
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
