//! The upstream Keepalive suite's `TestServer`: a `Server::TCP` on 127.0.0.1 (port 0) that
//! discards input and, on request, sends a line to every client or closes them all.
#![allow(dead_code)]

use keepalive::reactor::component::ServerTcp;
use keepalive::reactor::{Kernel, SessionId};
use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;

/// A running test server in a kernel.
pub struct TestServer {
    /// The port it listens on.
    pub port: u16,
    listener: SessionId,
    clients: Rc<RefCell<Vec<SessionId>>>,
    /// Peer addresses of the connections accepted so far.
    pub peers: Rc<RefCell<Vec<IpAddr>>>,
    /// Lines sent so far (each line is `line N`).
    sent: Rc<Cell<u32>>,
    /// Who hears `server_flushed` after each flush: (session, event).
    pub notify: Rc<RefCell<Option<(SessionId, String)>>>,
}

impl TestServer {
    /// Starts listening in `kernel`.
    pub fn spawn(kernel: &mut Kernel) -> TestServer {
        let clients = Rc::new(RefCell::new(Vec::new()));
        let peers = Rc::new(RefCell::new(Vec::new()));
        let notify: Rc<RefCell<Option<(SessionId, String)>>> = Rc::new(RefCell::new(None));
        let sent = Rc::new(Cell::new(0u32));
        let (c1, c2, p1, n1, s1) = (
            clients.clone(),
            clients.clone(),
            peers.clone(),
            notify.clone(),
            sent.clone(),
        );
        let h = ServerTcp::builder()
            .address("127.0.0.1")
            .port(0)
            .client_connected(move |ctx| {
                c1.borrow_mut().push(ctx.session());
                if let Some(ip) = ctx.heap().remote_ip.addr() {
                    p1.borrow_mut().push(ip);
                }
            })
            .client_disconnected(move |ctx| {
                let me = ctx.session();
                c2.borrow_mut().retain(|s| *s != me);
            })
            .client_input(|_ctx| {})
            .client_error(|_ctx| {})
            .client_flushed(move |ctx| {
                let n = n1.borrow().clone();
                if let Some((s, ev)) = n {
                    let _ = ctx.post(s, &ev, ());
                }
            })
            .inline_state("send_something", move |ctx| {
                s1.set(s1.get() + 1);
                let line = format!("line {}", s1.get());
                if let Some(c) = ctx.client() {
                    let _ = c.put_one(line);
                }
            })
            .build(kernel)
            .expect("test server starts");
        TestServer {
            port: h.local_addr().expect("bound").port(),
            listener: h.session(),
            clients,
            peers,
            sent,
            notify,
        }
    }

    /// Makes every connected client session send one line (`line N`).
    pub fn send_something(&self, kernel: &mut Kernel) {
        let list = self.clients.borrow().clone();
        for s in list {
            let _ = kernel.call(s, "send_something", ());
        }
    }

    /// Closes every client connection now (after flushing).
    pub fn shutdown_clients(&self, kernel: &mut Kernel) {
        let list = self.clients.borrow().clone();
        for s in list {
            let _ = kernel.call(s, "shutdown", ());
        }
    }

    /// Stops listening and closes every client.
    pub fn shutdown(&self, kernel: &mut Kernel) {
        let _ = kernel.post(self.listener, "shutdown", ());
        let list = self.clients.borrow().clone();
        for s in list {
            let _ = kernel.post(s, "shutdown", ());
        }
    }

    /// Connected clients.
    pub fn client_count(&self) -> usize {
        self.clients.borrow().len()
    }
}
