//! `ReadWrite` on a TCP stream, whose usual write (one chunk, taken whole) has a path of
//! its own: a chunk the socket takes only in part goes out whole all the same, and the
//! kernel's output budget hears of every write.

mod common;

use mio::net::TcpStream;
use reactor::wheel::ReadWrite;
use reactor::{Ctx, HandlerError, Kernel, ManualClock, Session, WheelHandle, WheelId};
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

/// A session with a line echo on `end`, which puts `first` when it starts.
fn echo(
    kernel: &mut Kernel,
    end: TcpStream,
    first: Option<Vec<u8>>,
) -> Rc<RefCell<Option<WheelHandle>>> {
    let wheel: Rc<RefCell<Option<WheelHandle>>> = Rc::default();
    let (w1, w2, w3) = (Rc::clone(&wheel), Rc::clone(&wheel), Rc::clone(&wheel));
    let end = RefCell::new(Some(end));
    let first = RefCell::new(first);
    kernel
        .create(
            Session::new(())
                .on(
                    "_start",
                    move |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                        let end = end.borrow_mut().take().ok_or("twice")?;
                        let w = ReadWrite::builder(end)
                            .input_event("line")
                            .error_event("error")
                            .build(ctx)?;
                        if let Some(first) = first.borrow_mut().take() {
                            let id = w.id();
                            ctx.wheel_mut::<ReadWrite>(id)
                                .ok_or("gone")?
                                .put_one(first)?;
                        }
                        *w1.borrow_mut() = Some(w);
                        ctx.delay("tick", 0.001, ())?;
                        Ok(())
                    },
                )
                .on(
                    "tick",
                    move |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                        // A timeslice never waits for the network while the wheel lives.
                        if w3.borrow().is_some() {
                            ctx.delay("tick", 0.001, ())?;
                        }
                        Ok(())
                    },
                )
                .on(
                    "line",
                    |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                        let line = ctx.take_arg::<Vec<u8>>(0)?;
                        let id = *ctx.arg::<WheelId>(1)?;
                        ctx.wheel_mut::<ReadWrite>(id)
                            .ok_or("gone")?
                            .put_one(line)?;
                        Ok(())
                    },
                )
                .on(
                    "error",
                    move |_: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                        // End of file: the peer is done; the session ends.
                        drop(w2.borrow_mut().take());
                        Ok(())
                    },
                ),
        )
        .expect("session");
    wheel
}

#[test]
fn a_chunk_the_socket_takes_in_part_goes_out_whole() {
    let _guard = common::timeout(20, "a big chunk over TCP");
    let clock = ManualClock::new();
    clock.set_auto_advance(true);
    let mut k = Kernel::builder().clock(clock).build().unwrap();
    let (server_end, mut peer) = common::tcp_pair();
    // More than any socket buffer takes at once.
    let big: Vec<u8> = (0..16 << 20).map(|i: u32| b'a' + (i % 26) as u8).collect();
    let wheel = echo(&mut k, server_end, Some(big.clone()));
    let mut got = Vec::new();
    for _ in 0..1_000_000 {
        if got.len() >= big.len() + 2 {
            break;
        }
        common::read_available(&mut peer, &mut got);
        assert!(k.run_one_timeslice().unwrap());
    }
    assert_eq!(got.len(), big.len() + 2, "the chunk did not go out whole");
    assert!(got[..big.len()] == big[..], "the chunk went out changed");
    assert_eq!(&got[big.len()..], b"\r\n");
    // Then a line comes back as usual.
    peer.write_all(b"ping\n").unwrap();
    got.clear();
    for _ in 0..1_000_000 {
        if got.len() >= 6 {
            break;
        }
        common::read_available(&mut peer, &mut got);
        assert!(k.run_one_timeslice().unwrap());
    }
    assert_eq!(got, b"ping\r\n");
    drop(peer);
    while k.run_one_timeslice().unwrap() {}
    assert!(wheel.borrow().is_none(), "the wheel never saw the end");
}

#[test]
fn the_output_budget_hears_of_each_usual_write() {
    let _guard = common::timeout(20, "a budget over TCP");
    let clock = ManualClock::new();
    clock.set_auto_advance(true);
    let mut k = Kernel::builder()
        .clock(clock)
        .output_budget(1 << 20)
        .build()
        .unwrap();
    let budget = k.output_budget().expect("a budget");
    let (server_end, mut peer) = common::tcp_pair();
    let wheel = echo(&mut k, server_end, None);
    for i in 0..10 {
        let line = format!("line {i}\n");
        peer.write_all(line.as_bytes()).unwrap();
        let mut got = Vec::new();
        for _ in 0..1_000_000 {
            if got.ends_with(b"\r\n") {
                break;
            }
            common::read_available(&mut peer, &mut got);
            assert!(k.run_one_timeslice().unwrap());
        }
        assert_eq!(got, format!("line {i}\r\n").as_bytes());
        let id = wheel.borrow().as_ref().expect("wheel").id();
        let held = k
            .wheel_ref::<ReadWrite>(id)
            .expect("wheel")
            .driver_out_octets();
        assert_eq!(held, 0);
        assert_eq!(
            budget.used(),
            0,
            "the budget still counts a line written out"
        );
    }
    drop(peer);
    while k.run_one_timeslice().unwrap() {}
}
