//! Many kernels ([`reactor::group::Group`]): `reuse_port` servers on two kernels both
//! accept; setups run in order; a failed setup stops the group and is reported.

mod common;

use reactor::component::ServerTcp;
use reactor::group::{Group, GroupError};
use reactor::{Ctx, HandlerError, Kernel, Poster, Session};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

/// A session that keeps its kernel running until something stops it.
fn hold(k: &mut Kernel) -> Result<(), reactor::Error> {
    k.create(Session::new(()).on("_start", |ctx: &mut Ctx<'_, ()>| {
        let me = ctx.active_session();
        ctx.refcount_increment(me, "test").map(|_| ())
    }))?;
    Ok(())
}

#[test]
fn reuse_port_servers_on_two_kernels_both_accept() {
    let _w = common::timeout(60, "reuse_port_servers");
    let port = Arc::new(Mutex::new(0u16));
    let accepted: Arc<[AtomicUsize; 2]> = Arc::new(Default::default());
    let posters = Arc::new(Mutex::new(Vec::<Poster>::new()));
    let (ready_tx, ready) = mpsc::channel();
    let (p, a, ps) = (
        Arc::clone(&port),
        Arc::clone(&accepted),
        Arc::clone(&posters),
    );
    let group = std::thread::spawn(move || {
        Group::new(2)
            .catch_signals(false)
            .on_ready(move || ready_tx.send(()).unwrap())
            .run(move |i, k| {
                // Setups run in order: kernel 0 binds port 0, kernel 1 the port it got.
                let bind = *p.lock().unwrap();
                assert_eq!(bind == 0, i == 0);
                let a = Arc::clone(&a);
                let server = ServerTcp::builder()
                    .address("127.0.0.1")
                    .port(bind)
                    .reuse_port(true)
                    .alias("echo")
                    .client_connected(move |_ctx| {
                        a[i].fetch_add(1, Ordering::SeqCst);
                    })
                    .client_input(|ctx| -> Result<(), HandlerError> {
                        let line = ctx.take_arg::<Vec<u8>>(0)?;
                        if let Some(c) = ctx.client() {
                            c.put_one(line)?;
                        }
                        Ok(())
                    })
                    .build(k)?;
                let bound = server.local_addr().ok_or("not bound")?.port();
                *p.lock().unwrap() = bound;
                ps.lock().unwrap().push(k.poster()?);
                Ok(())
            })
    });
    ready
        .recv_timeout(common::LIMIT)
        .expect("the group is ready");
    let port = *port.lock().unwrap();
    // The system spreads connections by a hash of their addresses: keep connecting (each
    // connection answered, so it was accepted) until both kernels have taken some.
    let mut clients = Vec::new();
    for n in 0..500 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(common::LIMIT)).unwrap();
        writeln!(s, "hello {n}").unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        assert_eq!(line.trim_end(), format!("hello {n}"));
        clients.push(s);
        if accepted.iter().all(|c| c.load(Ordering::SeqCst) > 0) {
            break;
        }
    }
    let counts: Vec<usize> = accepted.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert!(
        counts.iter().all(|&c| c > 0),
        "connections per kernel: {counts:?}"
    );
    assert_eq!(counts.iter().sum::<usize>(), clients.len());
    // Hang up and shut both listeners down: each kernel then runs out of sessions.
    drop(clients);
    for p in posters.lock().unwrap().iter() {
        p.post("echo", "shutdown", ()).unwrap();
    }
    group.join().unwrap().unwrap();
}

#[test]
fn setups_run_one_at_a_time_in_order() {
    let _w = common::timeout(30, "setups_run_in_order");
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = Arc::clone(&order);
    Group::new(4)
        .catch_signals(false)
        .run(move |i, _k| {
            o.lock().unwrap().push(i);
            Ok(())
        })
        .unwrap();
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
}

#[test]
fn a_failed_setup_stops_the_group_and_is_reported() {
    let _w = common::timeout(30, "a_failed_setup");
    let r = Group::new(3).catch_signals(false).run(|i, k| {
        if i == 1 {
            return Err("no luck".into());
        }
        // The others would run for ever: the group stops them.
        hold(k)?;
        Ok(())
    });
    match r {
        Err(GroupError::Setup { index: 1, message }) => assert_eq!(message, "no luck"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_panicking_setup_is_reported() {
    let _w = common::timeout(30, "a_panicking_setup");
    let r = Group::new(2).catch_signals(false).run(|i, k| {
        if i == 0 {
            hold(k)?;
            return Ok(());
        }
        panic!("setup {i} panicked");
    });
    match r {
        Err(GroupError::Panicked { index: 1, message }) => {
            assert_eq!(message, "setup 1 panicked")
        }
        other => panic!("{other:?}"),
    }
}
