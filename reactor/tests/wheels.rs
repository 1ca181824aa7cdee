//! Wheels over real sockets on 127.0.0.1: SocketFactory listen and connect, ReadWrite line
//! I/O both ways, EOF as a read error with errno 0, dropping a wheel, ListenAccept.

use reactor::filter::Line;
use reactor::wheel::WheelError;
use reactor::wheel::{ListenAccept, ReadWrite, SocketFactory};
use reactor::{Ctx, Error, HandlerError, Kernel, WheelHandle, WheelId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

#[derive(Default)]
struct Server {
    listener: Option<WheelHandle>,
    clients: HashMap<WheelId, WheelHandle>,
}

#[derive(Default)]
struct Client {
    factory: Option<WheelHandle>,
    wheel: Option<WheelHandle>,
    port: u16,
}

fn server(log: Log, port_out: Rc<RefCell<u16>>) -> reactor::Session<Server> {
    let l1 = Rc::clone(&log);
    reactor::Session::new(Server::default())
        .on(
            "_start",
            move |ctx: &mut Ctx<'_, Server>| -> Result<(), Error> {
                let w = SocketFactory::listen()
                    .bind_address("127.0.0.1")
                    .success_event("accepted")
                    .failure_event("failed")
                    .build(ctx)?;
                let id = w.id();
                let addr = ctx
                    .wheel_ref::<SocketFactory>(id)
                    .and_then(|f| f.getsockname())
                    .expect("bound");
                *port_out.borrow_mut() = addr.port();
                ctx.heap().listener = Some(w);
                ctx.alias_set("server")
            },
        )
        .on(
            "accepted",
            |ctx: &mut Ctx<'_, Server>| -> Result<(), HandlerError> {
                let stream = ctx.take_arg::<mio::net::TcpStream>(0)?;
                assert_eq!(
                    *ctx.arg::<Option<IpAddr>>(1)?,
                    Some("127.0.0.1".parse().unwrap())
                );
                let w = ReadWrite::builder(stream)
                    .filter(Line::new())
                    .input_event("line")
                    .error_event("client_error")
                    .build(ctx)?;
                ctx.heap().clients.insert(w.id(), w);
                Ok(())
            },
        )
        .on(
            "line",
            move |ctx: &mut Ctx<'_, Server>| -> Result<(), HandlerError> {
                let line = String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?;
                let id = *ctx.arg::<WheelId>(1)?;
                l1.borrow_mut().push(format!("server got {line}"));
                let w = ctx.wheel_mut::<ReadWrite>(id).expect("client wheel");
                w.put_one(format!("echo: {line}"))?;
                Ok(())
            },
        )
        .on(
            "client_error",
            move |ctx: &mut Ctx<'_, Server>| -> Result<(), HandlerError> {
                let op = ctx.arg::<WheelError>(0)?.operation.to_owned();
                let errno = ctx.arg::<WheelError>(0)?.errno;
                let id = *ctx.arg::<WheelId>(1)?;
                log.borrow_mut().push(format!("server {op} error {errno}"));
                ctx.heap().clients.remove(&id);
                // Done: let the server go.
                ctx.heap().listener = None;
                ctx.alias_remove("server")?;
                Ok(())
            },
        )
        .on("failed", |_ctx: &mut Ctx<'_, Server>| -> () {
            panic!("listen failed")
        })
}

fn client(log: Log, port: u16) -> reactor::Session<Client> {
    let l1 = Rc::clone(&log);
    reactor::Session::new(Client {
        port,
        ..Default::default()
    })
    .on("_start", |ctx: &mut Ctx<'_, Client>| -> Result<(), Error> {
        let port = ctx.heap().port;
        let f = SocketFactory::connect("127.0.0.1", port)
            .success_event("connected")
            .failure_event("connect_failed")
            .build(ctx)?;
        ctx.heap().factory = Some(f);
        Ok(())
    })
    .on(
        "connected",
        |ctx: &mut Ctx<'_, Client>| -> Result<(), HandlerError> {
            let stream = ctx.take_arg::<mio::net::TcpStream>(0)?;
            ctx.heap().factory = None;
            let w = ReadWrite::builder(stream).input_event("reply").build(ctx)?;
            let id = w.id();
            ctx.heap().wheel = Some(w);
            let rw = ctx.wheel_mut::<ReadWrite>(id).unwrap();
            rw.put(["one", "two", "héllo"])?;
            assert_eq!(rw.driver_out_octets(), 5 + 5 + 8);
            // One chunk per record, as POE's driver counts them; they leave in one writev.
            assert_eq!(rw.driver_out_messages(), 3);
            Ok(())
        },
    )
    .on(
        "reply",
        move |ctx: &mut Ctx<'_, Client>| -> Result<(), HandlerError> {
            let line = String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?;
            l1.borrow_mut().push(format!("client got {line}"));
            if line == "echo: héllo" {
                // Closing our end: the server sees EOF as a read error with errno 0.
                ctx.heap().wheel = None;
            }
            Ok(())
        },
    )
    .on(
        "connect_failed",
        move |ctx: &mut Ctx<'_, Client>| -> Result<(), HandlerError> {
            log.borrow_mut().push(format!(
                "connect failed: {} {}",
                ctx.arg::<WheelError>(0)?.operation,
                ctx.arg::<WheelError>(0)?.errno
            ));
            ctx.heap().factory = None;
            Ok(())
        },
    )
}

#[test]
fn line_echo_over_tcp() {
    let mut k = Kernel::new().unwrap();
    let log: Log = Rc::default();
    let port = Rc::new(RefCell::new(0));
    k.create(server(Rc::clone(&log), Rc::clone(&port))).unwrap();
    assert_ne!(*port.borrow(), 0);
    k.create(client(Rc::clone(&log), *port.borrow())).unwrap();
    k.run().unwrap();
    let got = log.borrow().clone();
    let server_lines: Vec<_> = got
        .iter()
        .filter(|l| l.starts_with("server got"))
        .cloned()
        .collect();
    let client_lines: Vec<_> = got
        .iter()
        .filter(|l| l.starts_with("client got"))
        .cloned()
        .collect();
    assert_eq!(
        server_lines,
        ["server got one", "server got two", "server got héllo"]
    );
    assert_eq!(
        client_lines,
        [
            "client got echo: one",
            "client got echo: two",
            "client got echo: héllo"
        ]
    );
    assert_eq!(got.last().unwrap(), "server read error 0");
}

#[test]
fn connect_to_a_closed_port_fails_with_econnrefused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut k = Kernel::new().unwrap();
    let log: Log = Rc::default();
    k.create(client(Rc::clone(&log), port)).unwrap();
    k.run().unwrap();
    assert_eq!(*log.borrow(), ["connect failed: connect 111"]);
}

#[test]
fn listen_accept_on_a_listener_made_elsewhere() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut k = Kernel::new().unwrap();
    let accepted = Rc::new(RefCell::new(0));
    let a = Rc::clone(&accepted);
    k.create(
        reactor::Session::new(Option::<WheelHandle>::None)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), Error> {
                    let w = ListenAccept::tcp(listener.try_clone()?, "accept")?
                        .error_event("err")
                        .build(ctx)?;
                    *ctx.heap() = Some(w);
                    Ok(())
                },
            )
            .on("accept", move |ctx: &mut Ctx<'_, Option<WheelHandle>>| {
                *a.borrow_mut() += 1;
                if *a.borrow() == 3 {
                    // Dropping the wheel stops accepting and lets the session end.
                    *ctx.heap() = None;
                }
            }),
    )
    .unwrap();
    let clients: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    k.run().unwrap();
    assert_eq!(*accepted.borrow(), 3);
    drop(clients);
}
