//! `Ctx::client` in a `ServerTcp` input handler names the wheel the connection's heap
//! names at the time it is asked: a handler that takes the wheel out of the heap first
//! gets `None`, whatever was read before the handler ran.

use reactor::component::ServerTcp;
use reactor::{HandlerError, Kernel};
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

#[test]
fn client_follows_the_heap_within_the_input_handler() {
    let seen: Rc<RefCell<Vec<(bool, bool)>>> = Rc::default();
    let s = Rc::clone(&seen);
    let mut k = Kernel::new().unwrap();
    let server = ServerTcp::builder()
        .address("127.0.0.1")
        .port(0)
        .alias("server")
        .client_input(move |ctx| -> Result<(), HandlerError> {
            let before = ctx.client().is_some();
            // Dropping the handle closes the wheel once the handler returns.
            let wheel = ctx.heap().client.take();
            let after = ctx.client().is_some();
            drop(wheel);
            s.borrow_mut().push((before, after));
            ctx.post("server", "shutdown", ())?;
            Ok(())
        })
        .build(&mut k)
        .unwrap();
    let address = server.local_addr().unwrap();
    let mut client = std::net::TcpStream::connect(address).unwrap();
    client.write_all(b"one\n").unwrap();
    k.run().unwrap();
    drop(client);
    assert_eq!(*seen.borrow(), [(true, false)]);
}
