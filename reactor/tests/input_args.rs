//! A wheel's records reach their handler in an argument list the kernel keeps from one
//! record to the next (the record and the id written into its boxes): what a handler keeps
//! of one record's arguments must never change under it when the next record comes.

use mio::net::UnixStream;
use reactor::wheel::{ReadWrite, WheelHandle};
use reactor::{Args, Ctx, HandlerError, Kernel, Session, WheelId};
use std::io::Write;

#[derive(Default)]
struct Heap {
    wheel: Option<WheelHandle>,
    /// Every third record's argument list, kept whole.
    kept: Vec<Args>,
    /// (record, id) as each handler saw them, taken or read.
    seen: Vec<(Vec<u8>, WheelId)>,
}

#[test]
fn arguments_a_handler_keeps_are_its_own_whatever_comes_next() {
    let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let socket = std::cell::Cell::new(Some(UnixStream::from_std(ours)));
    // Ten lines, then the peer hangs up: the wheel's records come in one read or several.
    let lines: Vec<String> = (0..10).map(|n| format!("line {n}")).collect();
    for l in &lines {
        writeln!(theirs, "{l}").unwrap();
    }
    drop(theirs);

    let checked = std::rc::Rc::new(std::cell::Cell::new(false));
    let done = std::rc::Rc::clone(&checked);
    let mut k = Kernel::new().unwrap();
    k.create(
        Session::new(Heap::default())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    let w = ReadWrite::builder(socket.take().unwrap())
                        .input_event("got")
                        .error_event("gone")
                        .build(ctx)?;
                    ctx.heap().wheel = Some(w);
                    Ok(())
                },
            )
            .on(
                "got",
                |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    let n = ctx.heap().seen.len();
                    let id = *ctx.arg::<WheelId>(1)?;
                    // Keep the whole list, take the record, take the id, or only read.
                    let (record, id) = match n % 4 {
                        0 => {
                            let args = ctx.args().clone();
                            ctx.heap().kept.push(args);
                            (ctx.arg::<Vec<u8>>(0)?.clone(), id)
                        }
                        1 => (ctx.take_arg::<Vec<u8>>(0)?, id),
                        2 => (ctx.arg::<Vec<u8>>(0)?.clone(), ctx.take_arg::<WheelId>(1)?),
                        _ => (ctx.arg::<Vec<u8>>(0)?.clone(), id),
                    };
                    ctx.heap().seen.push((record, id));
                    Ok(())
                },
            )
            .on("gone", move |ctx: &mut Ctx<'_, Heap>| {
                let heap = ctx.heap();
                heap.wheel = None;
                let wheel = heap.seen[0].1;
                let got: Vec<String> = heap
                    .seen
                    .iter()
                    .map(|(r, id)| {
                        assert_eq!(*id, wheel);
                        String::from_utf8(r.clone()).unwrap()
                    })
                    .collect();
                let want: Vec<String> = (0..10).map(|n| format!("line {n}")).collect();
                assert_eq!(got, want);
                // The kept lists still hold their own records (0, 4 and 8).
                let kept: Vec<String> = heap
                    .kept
                    .iter()
                    .map(|a| String::from_utf8(a.get::<Vec<u8>>(0).unwrap().clone()).unwrap())
                    .collect();
                assert_eq!(kept, ["line 0", "line 4", "line 8"]);
                for a in &heap.kept {
                    assert_eq!(*a.get::<WheelId>(1).unwrap(), wheel);
                }
                heap.kept.clear();
                done.set(true);
            }),
    )
    .unwrap();
    k.run().unwrap();
    assert!(checked.get(), "the error event came");
}
