//! POE's `t/10_units/04_drivers/01_sysrw.t`, in spirit. POE::Driver::SysRW is built into
//! this port's ReadWrite wheel, so each assertion about the driver is checked through what
//! the wheel shows:
//!
//! | upstream (driver)                               | here (wheel)                                   |
//! |-------------------------------------------------|------------------------------------------------|
//! | `new(BlockSize => 0)` croaks                    | `block_size(0)` fails `build` with a typed error |
//! | `new(0)`, `new(Booga => 1)` croak               | Perl-only: no such calls can be written         |
//! | `get()` on a write-only handle: undef, `$!` set | ErrorEvent ('read', EBADF, ...)                 |
//! | `put([])` buffers 0 octets, 0 messages          | `put` of nothing: 0 octets, 0 messages          |
//! | `put` returns the octets buffered, 1 message    | `driver_out_octets` / `_messages` after puts |
//! | octets flushed == octets read from the pipe     | octets that left the wheel == octets read       |
//! | flush until the buffer is exhausted             | out messages reach 0 while the pipe is drained  |
//! | `get()` undef with `$! == 0` at EOF             | ErrorEvent ('read', 0, '') after all the data   |
//! | `flush()` to a closed pipe: octets left, `$!`   | ErrorEvent ('write', EPIPE); octets still queued |
//!
//! Reads take at most `BlockSize` octets each (checked with the Stream filter, which makes
//! every read a record), and a full pipe (EAGAIN) is no error.

mod common;
use common::timeout;
use mio::unix::pipe;
use reactor::filter::Stream;
use reactor::wheel::ReadWrite;
use reactor::wheel::WheelError;
use reactor::{Ctx, Error, HandlerError, Kernel, Session, SessionId, WheelHandle, WheelId};
use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

/// A session that owns one wheel, made in `_start` by `make`, and drops it on "finish" or
/// on an ErrorEvent. Records and errors are logged; the wheel's and the session's IDs are
/// published in `id`.
fn owner(
    log: Log,
    id: Rc<Cell<Option<(WheelId, SessionId)>>>,
    make: impl FnOnce(&mut Ctx<'_, Option<WheelHandle>>) -> Result<WheelHandle, Error> + 'static,
) -> Session<Option<WheelHandle>> {
    let make = RefCell::new(Some(make));
    let (l1, l2) = (Rc::clone(&log), log);
    Session::new(None)
        .on(
            "_start",
            move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                let make = make.borrow_mut().take().ok_or("started twice")?;
                let w = make(ctx)?;
                id.set(Some((w.id(), ctx.session())));
                *ctx.heap() = Some(w);
                Ok(())
            },
        )
        .on(
            "input",
            move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                let n = ctx.arg::<Vec<u8>>(0)?.len();
                l1.borrow_mut().push(format!("input {n}"));
                Ok(())
            },
        )
        .on(
            "error",
            move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
                let op = ctx.arg::<WheelError>(0)?.operation.to_owned();
                let errno = ctx.arg::<WheelError>(0)?.errno;
                let msg = ctx.arg::<WheelError>(0)?.message.clone();
                let wid = *ctx.arg::<WheelId>(1)?;
                let left = ctx
                    .wheel_ref::<ReadWrite>(wid)
                    .map(|w| (w.driver_out_octets(), w.driver_out_messages()));
                l2.borrow_mut().push(format!(
                    "error {op} {errno} empty_msg={} left={left:?}",
                    msg.is_empty()
                ));
                *ctx.heap() = None;
                Ok(())
            },
        )
        .on("finish", |ctx: &mut Ctx<'_, Option<WheelHandle>>| {
            *ctx.heap() = None;
        })
}

/// Reads a non-blocking pipe until it is empty (EAGAIN) or at EOF.
fn read_until_pipe_is_empty(rx: &mut pipe::Receiver, into: &mut Vec<u8>) -> usize {
    let mut buf = vec![0u8; 65536];
    let mut total = 0;
    loop {
        match rx.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                total += n;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return total,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the pipe: {e}"),
        }
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[test]
fn block_size_zero_is_refused() {
    let got: Rc<RefCell<Option<(bool, i32, String)>>> = Rc::default();
    let g = Rc::clone(&got);
    let mut k = Kernel::new().unwrap();
    k.create(Session::new(()).on(
        "_start",
        move |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
            let (tx, rx) = pipe::new()?;
            let r = ReadWrite::split(rx, tx)
                .input_event("in")
                .block_size(0)
                .build(ctx);
            *g.borrow_mut() = Some(match r {
                Ok(_) => (false, 0, "built".into()),
                Err(e) => (
                    matches!(e, Error::InvalidArgument(_)),
                    e.errno(),
                    e.to_string(),
                ),
            });
            Ok(())
        },
    ))
    .unwrap();
    k.run().unwrap();
    let (typed, errno, msg) = got.borrow_mut().take().expect("ran");
    assert!(typed, "{msg}");
    assert_eq!(errno, 22);
    // like($@, qr/BlockSize must be greater than 0/)
    assert!(msg.contains("BlockSize must be greater than 0"), "{msg}");
}

/// The write end of a pipe offered as an input handle: reading it fails (EBADF), as
/// upstream's `get()` on a file opened for writing.
struct WriteOnlyInput(std::fs::File);

impl Read for WriteOnlyInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl AsFd for WriteOnlyInput {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl mio::event::Source for WriteOnlyInput {
    fn register(
        &mut self,
        r: &mio::Registry,
        t: mio::Token,
        i: mio::Interest,
    ) -> std::io::Result<()> {
        mio::unix::SourceFd(&self.0.as_raw_fd()).register(r, t, i)
    }
    fn reregister(
        &mut self,
        r: &mio::Registry,
        t: mio::Token,
        i: mio::Interest,
    ) -> std::io::Result<()> {
        mio::unix::SourceFd(&self.0.as_raw_fd()).reregister(r, t, i)
    }
    fn deregister(&mut self, r: &mio::Registry) -> std::io::Result<()> {
        mio::unix::SourceFd(&self.0.as_raw_fd()).deregister(r)
    }
}

#[test]
fn a_read_error_is_an_error_event_with_errno() {
    let _guard = timeout(10, "a_read_error_is_an_error_event_with_errno");
    let (bad_tx, bad_rx) = pipe::new().unwrap();
    // With its reader gone the write end polls as an error, so the wheel tries a read.
    drop(bad_rx);
    let input = WriteOnlyInput(std::fs::File::from(OwnedFd::from(bad_tx)));
    let (out_tx, _out_rx) = pipe::new().unwrap();
    let log: Log = Rc::default();
    let id = Rc::default();
    let input = RefCell::new(Some((input, out_tx)));
    let mut k = Kernel::new().unwrap();
    k.create(owner(Rc::clone(&log), Rc::clone(&id), move |ctx| {
        let (i, o) = input.borrow_mut().take().expect("once");
        ReadWrite::split(i, o)
            .filter(Stream::new())
            .input_event("input")
            .error_event("error")
            .build(ctx)
    }))
    .unwrap();
    k.run().unwrap();
    // ok(!defined($get_ret), "get() returns undef on error"); ok($!, "get() sets $! on error")
    assert_eq!(
        *log.borrow(),
        ["error read 9 empty_msg=false left=Some((0, 0))"]
    );
}

#[test]
fn put_counts_octets_and_messages() {
    let seen: Rc<RefCell<Vec<(usize, usize, bool)>>> = Rc::default();
    let s = Rc::clone(&seen);
    let mut k = Kernel::new().unwrap();
    k.create(Session::new(()).on(
        "_start",
        move |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
            let (tx, rx) = pipe::new()?;
            let w = ReadWrite::split(rx, tx)
                .filter(Stream::new())
                .block_size(1024)
                .build(ctx)?;
            let rw = ctx.wheel_mut::<ReadWrite>(w.id()).ok_or("no wheel")?;
            let note = |rw: &ReadWrite, high: bool| {
                s.borrow_mut()
                    .push((rw.driver_out_octets(), rw.driver_out_messages(), high))
            };
            // Empty put().
            let high = rw.put(Vec::<Vec<u8>>::new())?;
            note(rw, high);
            // An empty record is no chunk either (SysRW skips empty chunks).
            let high = rw.put_one(Vec::new())?;
            note(rw, high);
            let high = rw.put_one("test".repeat(10))?;
            note(rw, high);
            let high = rw.put_one("more test".repeat(5))?;
            note(rw, high);
            assert_eq!(rw.block_size(), 1024);
            // The wheel is dropped here, before anything was written.
            Ok(())
        },
    ))
    .unwrap();
    k.run().unwrap();
    assert_eq!(
        *seen.borrow(),
        [
            (0, 0, false),  // "buffered 0 octets on empty put()", "no messages buffered"
            (0, 0, false),  // nothing for an empty record
            (40, 1, false), // "first put: buffer contains 40 octets", "one message buffered"
            (85, 2, false), // "second put: buffer contains 85 octets"
        ]
    );
}

#[test]
fn octets_flushed_equal_octets_read_and_the_buffer_drains() {
    let _guard = timeout(20, "octets_flushed_equal_octets_read_and_the_buffer_drains");
    const BIG: usize = 1024 * 1024; // "Hopefully bigger than any system buffer ever."
    let (tx, mut rx) = pipe::new().unwrap();
    let log: Log = Rc::default();
    let id: Rc<Cell<Option<(WheelId, SessionId)>>> = Rc::default();
    let tx = RefCell::new(Some(tx));
    let mut k = Kernel::new().unwrap();
    k.create(owner(Rc::clone(&log), Rc::clone(&id), move |ctx| {
        // The wheel only writes; a spare pipe stands in for its input.
        let (_, spare_rx) = pipe::new()?;
        let w = ReadWrite::split(spare_rx, tx.borrow_mut().take().expect("once"))
            .filter(Stream::new())
            .block_size(1024)
            .error_event("error")
            .build(ctx)?;
        let rw = ctx.wheel_mut::<ReadWrite>(w.id()).expect("wheel");
        rw.put_one(pattern(BIG))?;
        Ok(w)
    }))
    .unwrap();
    let (wid, _) = id.get().expect("wheel made");
    let octets = |k: &Kernel| {
        k.wheel_ref::<ReadWrite>(wid)
            .map(|w| (w.driver_out_octets(), w.driver_out_messages()))
    };
    assert_eq!(octets(&k), Some((BIG, 1)));
    // Let the wheel write until the pipe is full (EAGAIN, which is no error).
    k.run_while(|k| octets(k) == Some((BIG, 1))).unwrap();
    let (left, _) = octets(&k).expect("wheel alive");
    let flushed = BIG - left;
    assert!(flushed > 0 && left > 0, "the pipe took {flushed} of {BIG}");
    let mut got = Vec::new();
    let read = read_until_pipe_is_empty(&mut rx, &mut got);
    // ok($flushed_count == $read_count, "flushed N octets == read N octets")
    assert_eq!(flushed, read);
    // Flush the buffer and the pipe.
    for _ in 0..100_000 {
        if octets(&k).map(|(_, m)| m) == Some(0) {
            break;
        }
        let before = octets(&k);
        k.run_while(|k| octets(k) == before).unwrap();
        read_until_pipe_is_empty(&mut rx, &mut got);
    }
    // ok($out_messages == 0, "buffer exhausted")
    assert_eq!(octets(&k), Some((0, 0)), "buffer exhausted");
    read_until_pipe_is_empty(&mut rx, &mut got);
    assert_eq!(got.len(), BIG);
    assert!(got == pattern(BIG), "bytes arrived in order");
    assert!(log.borrow().is_empty(), "no error on a full pipe: {log:?}");
    let (_, session) = id.get().expect("wheel made");
    k.post(session, "finish", ()).unwrap();
    k.run().unwrap();
}

#[test]
fn reads_take_block_size_octets_and_eof_is_errno_0() {
    let _guard = timeout(10, "reads_take_block_size_octets_and_eof_is_errno_0");
    let (mut tx, rx) = pipe::new().unwrap();
    // write_until_pipe_is_full, then close the writer.
    let mut written = 0;
    let chunk = vec![b'*'; 4096];
    loop {
        match tx.write(&chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the pipe: {e}"),
        }
        assert!(written < 64 * 1024 * 1024, "pipe never filled");
    }
    drop(tx);
    let log: Log = Rc::default();
    let (out_tx, _out_rx) = pipe::new().unwrap();
    let rx = RefCell::new(Some((rx, out_tx)));
    let mut k = Kernel::new().unwrap();
    k.create(owner(Rc::clone(&log), Rc::default(), move |ctx| {
        let (rx, out) = rx.borrow_mut().take().expect("once");
        ReadWrite::split(rx, out)
            .filter(Stream::new())
            .block_size(1024)
            .input_event("input")
            .error_event("error")
            .build(ctx)
    }))
    .unwrap();
    k.run().unwrap();
    let log = log.borrow();
    let (last, inputs) = log.split_last().expect("events");
    // pass("driver returns undef on eof"); ok($! == 0, "$! is clear on eof")
    assert_eq!(last, "error read 0 empty_msg=true left=Some((0, 0))");
    // Every read is one record with the Stream filter: BlockSize octets each.
    assert_eq!(inputs.len(), written.div_ceil(1024));
    assert!(inputs[..inputs.len() - 1].iter().all(|l| l == "input 1024"));
    let total: usize = inputs
        .iter()
        .map(|l| l["input ".len()..].parse::<usize>().unwrap())
        .sum();
    assert_eq!(total, written);
}

#[test]
fn a_write_error_leaves_the_octets_queued() {
    let _guard = timeout(10, "a_write_error_leaves_the_octets_queued");
    let (tx, rx) = pipe::new().unwrap();
    // Make sure the pipe is closed at the other end.
    drop(rx);
    let log: Log = Rc::default();
    let tx = RefCell::new(Some(tx));
    let mut k = Kernel::new().unwrap();
    k.create(owner(Rc::clone(&log), Rc::default(), move |ctx| {
        let (_, spare_rx) = pipe::new()?;
        let w = ReadWrite::split(spare_rx, tx.borrow_mut().take().expect("once"))
            .filter(Stream::new())
            .error_event("error")
            .build(ctx)?;
        ctx.wheel_mut::<ReadWrite>(w.id())
            .expect("wheel")
            .put_one("test".repeat(10))?;
        Ok(w)
    }))
    .unwrap();
    k.run().unwrap();
    // ok($error_left, "put() returns octets left on error"); ok($!, "sets $! nonzero")
    assert_eq!(
        *log.borrow(),
        ["error write 32 empty_msg=false left=Some((40, 1))"]
    );
}
