//! The rot13 server of `POE::Component::Server::TCP`'s SYNOPSIS and a client in the manner
//! of `POE::Component::Client::TCP`'s SYNOPSIS, in one program that ends by itself.
//!
//! ```text
//! cargo run --example rot13
//! ```
//!
//! The server greets each connection with "Smile from the server!" and answers every line
//! with its rot13. The client, started from the server's `Started` callback once the port
//! is known, sends two lines, prints what comes back, and shuts down after the second
//! answer. The server sees the client go, prints that, and shuts itself down; then
//! `run()` returns. The output is always:
//!
//! ```text
//! got a connection from 127.0.0.1
//! from server: Smile from the server!
//! from server: Uryyb, jbeyq!
//! from server: Gur dhvpx oebja sbk whzcf bire gur ynml qbt.
//! disconnected from server
//! client disconnected
//! ```

#[path = "common/cli.rs"]
mod cli;
use reactor::component::{ClientTcpBuilder, ComponentError, ServerTcp};
use reactor::{HandlerError, Kernel};

const LINES: [&str; 2] = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
];

/// Perl's `tr[a-zA-Z][n-za-mN-ZA-M]`.
fn rot13(input: &[u8]) -> Vec<u8> {
    input
        .iter()
        .map(|&c| match c {
            b'a'..=b'z' => (c - b'a' + 13) % 26 + b'a',
            b'A'..=b'Z' => (c - b'A' + 13) % 26 + b'A',
            _ => c,
        })
        .collect()
}

const USAGE: &str = "\
Usage: rot13

A rot13 server on ServerTcp and a client on ClientTcp, in one program that ends by
itself.

Options:
  -h, --help  print this help";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    cli::no_args(USAGE);
    let mut kernel = Kernel::new()?;

    ServerTcp::builder()
        .address("127.0.0.1")
        .port(0)
        .alias("rot13_server")
        .started(|ctx| -> Result<(), HandlerError> {
            let port = ctx.heap().local_addr().ok_or("not listening")?.port();
            start_client(ctx, port)?;
            Ok(())
        })
        .client_connected(|ctx| -> Result<(), HandlerError> {
            println!("got a connection from {}", ctx.heap().remote_ip);
            ctx.client()
                .ok_or("no client")?
                .put_one("Smile from the server!")?;
            Ok(())
        })
        .client_input(|ctx| -> Result<(), HandlerError> {
            let reply = rot13(ctx.arg::<Vec<u8>>(0)?);
            ctx.client().ok_or("no client")?.put_one(reply)?;
            Ok(())
        })
        .client_disconnected(|ctx| -> Result<(), HandlerError> {
            println!("client disconnected");
            ctx.post("rot13_server", "shutdown", ())?;
            Ok(())
        })
        .build(&mut kernel)?;

    kernel.run()?;
    Ok(())
}

/// The client: counts the server's lines in its heap (`ClientHeap<usize>`).
fn start_client(kernel: &mut Kernel, port: u16) -> Result<(), ComponentError> {
    ClientTcpBuilder::<usize>::new()
        .remote_address("127.0.0.1")
        .remote_port(port)
        .connected(|ctx| -> Result<(), HandlerError> {
            ctx.server().ok_or("no server")?.put(LINES)?;
            Ok(())
        })
        .server_input(|ctx| -> Result<(), HandlerError> {
            let input = String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?).into_owned();
            println!("from server: {input}");
            ctx.heap().data += 1;
            // The greeting, then one answer per line.
            if ctx.heap().data == LINES.len() + 1 {
                ctx.yield_("shutdown", ())?;
            }
            Ok(())
        })
        .disconnected(|_| println!("disconnected from server"))
        .build(kernel)?;
    Ok(())
}
