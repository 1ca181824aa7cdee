//! Five Client::TCP exchanges with one Server::TCP, counted exactly: a port of
//! poe-test-loops' `POE/Test/Loops/z_rt53302_fh_watchers.pm` (rt.cpan.org 53302, a
//! file-handle watcher bug in POE::Loop::Glib).
//!
//! The server, on `localhost` port 0, answers each client's line with one line and yields
//! `shutdown`; each client (with `ConnectTimeout => 2`) sends one line on connect and, on
//! input, delays its own `shutdown` by one second, by which time the server has closed the
//! connection. After the fifth `ClientDisconnected` the server shuts itself down. Every
//! callback must have run exactly five times on each side.

mod common;
use common::bounded;
use reactor::component::{ClientTcp, ServerTcp};
use reactor::{HandlerError, Kernel};
use std::cell::Cell;
use std::rc::Rc;

const NUM_CLIENTS: u32 = 5;

#[derive(Default)]
struct Counts {
    server_connects: Cell<u32>,
    server_disconnects: Cell<u32>,
    server_inputs: Cell<u32>,
    server_flushes: Cell<u32>,
    client_connects: Cell<u32>,
    client_disconnects: Cell<u32>,
    client_inputs: Cell<u32>,
    client_flushes: Cell<u32>,
}

fn bump(c: &Cell<u32>) {
    c.set(c.get() + 1);
}

#[test]
fn five_exchanges_counted_exactly() {
    bounded(
        "five_exchanges_counted_exactly",
        five_exchanges_counted_exactly_body,
    );
}

fn five_exchanges_counted_exactly_body() -> Result<(), Box<dyn std::error::Error>> {
    let mut k = Kernel::new()?;
    let n = Rc::new(Counts::default());

    let (n1, n2, n3, n4) = (n.clone(), n.clone(), n.clone(), n.clone());
    let server = ServerTcp::builder()
        .alias("server")
        .address("localhost")
        .port(0)
        .client_connected(move |_| bump(&n1.server_connects))
        .client_input(move |ctx| -> Result<(), HandlerError> {
            bump(&n2.server_inputs);
            ctx.client().ok_or("no client")?.put_one("from server")?;
            ctx.yield_("shutdown", ())?;
            Ok(())
        })
        .client_flushed(move |_| bump(&n3.server_flushes))
        .client_disconnected(move |ctx| -> Result<(), HandlerError> {
            bump(&n4.server_disconnects);
            // End the test after N clients are done.
            if n4.server_disconnects.get() >= NUM_CLIENTS {
                ctx.call("server", "shutdown", ())?;
            }
            Ok(())
        })
        .build(&mut k)?;
    let port = server.local_addr().ok_or("bound")?.port();

    for _ in 0..NUM_CLIENTS {
        let (n1, n2, n3, n4) = (n.clone(), n.clone(), n.clone(), n.clone());
        ClientTcp::builder("localhost", port)
            .connect_timeout(2.0)
            .connected(move |ctx| -> Result<(), HandlerError> {
                bump(&n1.client_connects);
                ctx.server().ok_or("no server")?.put_one("from client")?;
                Ok(())
            })
            .disconnected(move |_| bump(&n2.client_disconnects))
            .server_input(move |ctx| -> Result<(), HandlerError> {
                bump(&n3.client_inputs);
                ctx.delay("shutdown", 1, ())?;
                Ok(())
            })
            .server_error(|_| {})
            .server_flushed(move |_| bump(&n4.client_flushes))
            .build(&mut k)?;
    }

    k.run()?;

    assert_eq!(n.server_connects.get(), NUM_CLIENTS, "server connections");
    assert_eq!(
        n.server_disconnects.get(),
        NUM_CLIENTS,
        "server disconnections"
    );
    assert_eq!(n.server_inputs.get(), NUM_CLIENTS, "client sent input");
    assert_eq!(n.server_flushes.get(), NUM_CLIENTS, "server flushed lines");
    assert_eq!(n.client_connects.get(), NUM_CLIENTS, "client connected");
    assert_eq!(
        n.client_disconnects.get(),
        NUM_CLIENTS,
        "client disconnected"
    );
    assert_eq!(n.client_inputs.get(), NUM_CLIENTS, "server sent input");
    assert_eq!(n.client_flushes.get(), NUM_CLIENTS, "client flushed lines");
    Ok(())
}
