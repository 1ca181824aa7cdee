//! Port of poe-test-loops `wheel_tail.pm`, and the rest of `FollowTail`'s behaviour.
//!
//! Upstream's two parts:
//! - a FollowTail on an accepted TCP socket (`Handle`, `BlockSize => 24` reads, a `Block`
//!   filter of 16) reads the ten blocks a `ReadWrite` client sends, with event renaming
//!   on the FollowTail, the SocketFactory and the ReadWrite; the ten assertions are kept.
//!   Upstream skips this part unless `run_network_tests` exists; it runs here, on
//!   127.0.0.1 port 0.
//! - a file that appears and disappears twice, created from `IdleEvent` and deleted from
//!   `InputEvent`: two records, two resets. Upstream's `./test-tail-file` is a unique file
//!   under the temporary directory, and its `PollInterval` of 0.5 s is 0.02 s.
//!
//! Then what upstream leaves out (its file says "TODO - Needs tests for Seek and
//! SeekBack"): `Seek`, `SeekBack` and `tell`, the default start at the end with a partial
//! record completed later, rotation by rename, truncation by name and by handle, a file
//! that does not exist yet, a path that cannot be opened, a directory, a pipe's end,
//! constructor errors, event renaming, the session kept alive only while the tail
//! follows, and dropping the wheel. Every change to a file is made from an `IdleEvent`
//! handler, when the tail has read everything, so each run is deterministic; time only
//! passes through the kernel's timers.
//!
//! The tests run one at a time (a lock), so that the descriptors one opens are not taken
//! for another's leak (`common::assert_no_new_fds`).

mod common;
use common::timeout;
use mio::net::TcpStream;
use reactor::component::ServerTcp;
use reactor::filter::{Block, Line};
use reactor::wheel::{
    FollowTail, FollowTailBuilder, ReadWrite, RwEvent, SocketFactory, TailEvent, WheelError,
};
use reactor::{Ctx, Error, HandlerError, Kernel, Session, WheelHandle, WheelId};
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

type R = Result<(), HandlerError>;
type Log = Rc<RefCell<Vec<String>>>;

/// Serialises the tests of this file.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A unique path under the temporary directory, removed (with `PATH.1`, and as a
/// directory) when dropped.
struct Temp(PathBuf);

impl Temp {
    fn new(what: &str) -> Temp {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "reactor-wheel-tail-{}-{n}-{what}",
            std::process::id()
        ));
        let t = Temp(p);
        t.remove();
        t
    }

    fn with(what: &str, contents: &str) -> Temp {
        let t = Temp::new(what);
        t.write(contents);
        t
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn rotated(&self) -> PathBuf {
        let mut p = self.0.clone().into_os_string();
        p.push(".1");
        PathBuf::from(p)
    }

    /// Makes the file hold `contents` (truncating it, or making a new one).
    fn write(&self, contents: &str) {
        std::fs::write(&self.0, contents).expect("write the tail file");
    }

    fn append(&self, contents: &str) {
        append(&self.0, contents);
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir(&self.0);
        let _ = std::fs::remove_file(self.rotated());
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        self.remove();
    }
}

fn append(path: &Path, contents: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open the tail file to append");
    f.write_all(contents.as_bytes()).expect("append");
}

fn text<H: 'static>(ctx: &Ctx<'_, H>) -> Result<String, HandlerError> {
    Ok(String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?).into_owned())
}

// ---------------------------------------------------------------------------------------
// A session that follows one file and logs what its tail reports.

#[derive(Default)]
struct Heap {
    tail: Option<WheelHandle>,
    id: Option<WheelId>,
    idles: u32,
}

/// What the step run at each `IdleEvent` does next.
enum Next {
    /// Go on following.
    Go,
    /// Drop the tail (POE's `delete $heap->{wheel}`).
    Drop,
}

type Step = Box<dyn Fn(u32, &mut Ctx<'_, Heap>) -> Result<Next, HandlerError>>;

/// A step that does `change` at the first `IdleEvent` and drops the tail at the next.
fn change_once(change: impl Fn() + 'static) -> Step {
    Box::new(move |n, _| {
        Ok(if n == 1 {
            change();
            Next::Go
        } else {
            Next::Drop
        })
    })
}

/// What a test does when its tail delivers a record (besides logging it).
type InputHook = Option<Box<dyn Fn(&str)>>;

thread_local! {
    /// What a test does when its tail delivers a record (besides logging it), in the
    /// handler, before the tail's next poll.
    static ON_INPUT: RefCell<InputHook> = const { RefCell::new(None) };
}

/// A session whose tail `make` builds, logging "in:RECORD", "reset" and
/// "error:OPERATION:ERRNO"; at the Nth `IdleEvent` it runs `step(N)`. The tail's position
/// right after `build` is logged as "tell:N" (or "tell:-").
fn follower(
    make: impl Fn() -> FollowTailBuilder + 'static,
    log: &Log,
    step: Step,
) -> Session<Heap> {
    let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log.clone());
    Session::new(Heap::default())
        .on("_start", move |ctx: &mut Ctx<'_, Heap>| -> R {
            let tail = make()
                .input_event("in")
                .reset_event("reset")
                .error_event("error")
                .idle_event("idle")
                .build(ctx)?;
            let id = tail.id();
            let tell = ctx.wheel_ref::<FollowTail>(id).ok_or("no wheel")?.tell();
            l1.borrow_mut().push(format!(
                "tell:{}",
                tell.map_or("-".into(), |t| t.to_string())
            ));
            let heap = ctx.heap();
            heap.tail = Some(tail);
            heap.id = Some(id);
            Ok(())
        })
        .on("in", move |ctx: &mut Ctx<'_, Heap>| -> R {
            let record = text(ctx)?;
            l2.borrow_mut().push(format!("in:{record}"));
            ON_INPUT.with(|hook| {
                if let Some(f) = &*hook.borrow() {
                    f(&record);
                }
            });
            Ok(())
        })
        .on("reset", move |_: &mut Ctx<'_, Heap>| {
            l3.borrow_mut().push("reset".into());
        })
        .on("error", move |ctx: &mut Ctx<'_, Heap>| -> R {
            let e = ctx.arg::<WheelError>(0)?;
            l4.borrow_mut()
                .push(format!("error:{}:{}", e.operation, e.errno));
            Ok(())
        })
        .on("idle", move |ctx: &mut Ctx<'_, Heap>| -> R {
            ctx.heap().idles += 1;
            let n = ctx.heap().idles;
            if let Next::Drop = step(n, ctx)? {
                ctx.heap().tail = None;
            }
            Ok(())
        })
}

/// Runs one follower to its end and returns its log; checks that no descriptor is left.
fn follow(make: impl Fn() -> FollowTailBuilder + 'static, step: Step) -> Vec<String> {
    let fds = common::open_fds();
    let log: Log = Rc::default();
    {
        let mut k = Kernel::new().expect("kernel");
        k.create(follower(make, &log, step)).expect("session");
        k.run().expect("run");
    }
    common::assert_no_new_fds(&fds);
    let v = log.borrow().clone();
    v
}

// ---------------------------------------------------------------------------------------
// Upstream part 1: a FollowTail on a TCP socket.

const MAX_SEND_COUNT: u32 = 10; // expected to be even

/// What upstream's `ok`s look at, gathered to be checked after `run`.
#[derive(Default)]
struct Results {
    received_connection: Option<bool>,
    // The handle tail's `_stop`.
    test_two: Option<bool>,
    read_count: Option<u32>,
    errors: Vec<WheelError>,
    // The client's `_stop`.
    test_three: Option<bool>,
    put_count: Option<u32>,
    flush_count: Option<u32>,
    test_six: Option<bool>,
}

#[derive(Default)]
struct ServerSide {
    wheel: Option<WheelHandle>,
    test_two: bool,
    read_count: u32,
}

/// `sss_new`: the session that follows an accepted socket.
fn sss_new(socket: TcpStream, results: &Rc<RefCell<Results>>) -> Session<ServerSide> {
    let (r1, r2) = (results.clone(), results.clone());
    // The socket reaches `_start` as ARG0, as upstream's `args => [ $socket, ... ]`.
    Session::new(ServerSide::default())
        .args((socket,))
        .on("_start", |ctx: &mut Ctx<'_, ServerSide>| -> R {
            let socket = ctx.take_arg::<TcpStream>(0)?;
            ctx.heap().wheel = None;
            let wheel = FollowTail::handle(socket)
                .block_size(24)
                .filter(Block::with_block_size(16)?)
                .input_event("got_block_nonexistent")
                .error_event("got_error_nonexistent")
                .build(ctx)?;
            // Test event changing.
            let id = wheel.id();
            let w = ctx.wheel_mut::<FollowTail>(id).ok_or("no wheel")?;
            w.event(TailEvent::Input, Some("got_block"))?;
            w.event(TailEvent::Error, Some("got_error"))?;
            let heap = ctx.heap();
            heap.wheel = Some(wheel);
            heap.test_two = true;
            heap.read_count = 0;
            Ok(())
        })
        .on("got_block", |ctx: &mut Ctx<'_, ServerSide>| -> R {
            if text(ctx)? == "DONEDONEDONEDONE" {
                ctx.delay("ev_timeout", 1, ())?;
                return Ok(());
            }
            ctx.heap().read_count += 1;
            ctx.delay("ev_timeout", 10, ())?;
            Ok(())
        })
        .on("got_error", move |ctx: &mut Ctx<'_, ServerSide>| -> R {
            let e = ctx.arg::<WheelError>(0)?.clone();
            if e.errno != 0 {
                ctx.heap().test_two = false;
            }
            r1.borrow_mut().errors.push(e);
            Ok(())
        })
        .on("ev_timeout", |ctx: &mut Ctx<'_, ServerSide>| {
            ctx.heap().wheel = None;
        })
        .on("_stop", move |ctx: &mut Ctx<'_, ServerSide>| {
            let mut r = r2.borrow_mut();
            r.test_two = Some(ctx.heap().test_two);
            r.read_count = Some(ctx.heap().read_count);
        })
}

#[derive(Default)]
struct Client {
    wheel: Option<WheelHandle>,
    socketfactory_wheel_id: Option<WheelId>,
    readwrite_wheel_id: Option<WheelId>,
    test_three: bool,
    test_six: bool,
    put_count: u32,
    flush_count: u32,
}

fn client_tcp(port: Rc<Cell<u16>>, results: &Rc<RefCell<Results>>) -> Session<Client> {
    let r = results.clone();
    Session::new(Client::default())
        .on("_start", move |ctx: &mut Ctx<'_, Client>| -> R {
            let wheel = SocketFactory::connect("127.0.0.1", port.get())
                .success_event("got_server_nonexistent")
                .failure_event("got_error_nonexistent")
                .build(ctx)?;
            // Test event changing.
            let id = wheel.id();
            ctx.wheel_mut::<SocketFactory>(id)
                .ok_or("no wheel")?
                .event(Some("got_server"), Some("got_error"));
            let heap = ctx.heap();
            heap.wheel = Some(wheel);
            heap.socketfactory_wheel_id = Some(id);
            heap.test_three = true;
            Ok(())
        })
        .on("_stop", move |ctx: &mut Ctx<'_, Client>| {
            let h = ctx.heap();
            let mut r = r.borrow_mut();
            r.test_three = Some(h.test_three);
            r.put_count = Some(h.put_count);
            r.flush_count = Some(h.flush_count);
            r.test_six = Some(h.test_six);
        })
        .on("got_server", |ctx: &mut Ctx<'_, Client>| -> R {
            let server_socket = ctx.take_arg::<TcpStream>(0)?;
            ctx.heap().wheel = None;
            let wheel = ReadWrite::builder(server_socket)
                .block_size(32)
                .filter(Block::with_block_size(16)?)
                .error_event("got_error_nonexistent")
                .flushed_event("got_flush_nonexistent")
                .build(ctx)?;
            // Test event changing.
            let id = wheel.id();
            let w = ctx.wheel_mut::<ReadWrite>(id).ok_or("no wheel")?;
            w.event(RwEvent::Error, Some("got_error"));
            w.event(RwEvent::Flushed, Some("got_flush"));
            let heap = ctx.heap();
            heap.wheel = Some(wheel);
            heap.test_six = true;
            heap.readwrite_wheel_id = Some(id);
            heap.flush_count = 0;
            heap.put_count = 0;
            ctx.yield_("next_send", ())?;
            Ok(())
        })
        .on("next_send", |ctx: &mut Ctx<'_, Client>| -> R {
            let id = ctx.heap().readwrite_wheel_id.ok_or("no wheel id")?;
            let w = ctx.wheel_mut::<ReadWrite>(id).ok_or("no wheel")?;
            w.put_one(&b"0123456789ABCDEF0123456789ABCDEF"[..])?;
            ctx.heap().put_count += 2;
            // Trigger shutdown after the last test send.
            if ctx.heap().put_count >= MAX_SEND_COUNT {
                let w = ctx.wheel_mut::<ReadWrite>(id).ok_or("no wheel")?;
                w.put_one(&b"DONEDONEDONEDONE"[..])?;
            }
            Ok(())
        })
        .on("got_error", |ctx: &mut Ctx<'_, Client>| -> R {
            let e = ctx.arg::<WheelError>(0)?.clone();
            let wheel_id = *ctx.arg::<WheelId>(1)?;
            let heap = ctx.heap();
            if Some(wheel_id) == heap.socketfactory_wheel_id {
                heap.test_three = false;
            }
            if Some(wheel_id) == heap.readwrite_wheel_id {
                heap.test_six = false;
            }
            heap.wheel = None;
            eprintln!("{e}");
            Ok(())
        })
        .on("got_flush", |ctx: &mut Ctx<'_, Client>| -> R {
            ctx.heap().flush_count += 1;
            if ctx.heap().put_count < MAX_SEND_COUNT {
                // Puts a little delay between puts.
                ctx.delay("next_send", 0.100, ())?;
            } else {
                // Delays destruction until all data is out.
                ctx.heap().wheel = None;
            }
            Ok(())
        })
}

#[test]
fn a_handle_tail_reads_what_a_tcp_client_sends() {
    let _serial = serial();
    let _guard = timeout(20, "a_handle_tail_reads_what_a_tcp_client_sends");
    let fds = common::open_fds();
    let results: Rc<RefCell<Results>> = Rc::default();
    {
        let mut k = Kernel::new().unwrap();
        let port = Rc::new(Cell::new(0u16));
        let (p1, p2, r) = (port.clone(), port.clone(), results.clone());
        ServerTcp::builder()
            .port(0)
            .address("127.0.0.1")
            .acceptor(move |ctx| -> R {
                let socket = ctx.take_arg::<TcpStream>(0)?;
                ctx.create(sss_new(socket, &r))?;
                // This next badness is just for testing.
                let sockname = ctx.heap().local_addr().ok_or("no sockname")?;
                ctx.heap().listener = None;
                r.borrow_mut().received_connection =
                    Some(sockname.ip().to_string() == "127.0.0.1" && sockname.port() == p1.get());
                Ok(())
            })
            .started(move |ctx| {
                p2.set(ctx.heap().local_addr().map_or(0, |a| a.port()));
            })
            .build(&mut k)
            .unwrap();
        k.create(client_tcp(port, &results)).unwrap();
        // pass("run() returned successfully")
        k.run().unwrap();
    }
    let r = results.borrow();
    assert_eq!(r.received_connection, Some(true), "received connection");
    assert_eq!(r.test_two, Some(true), "handle tail test two");
    assert_eq!(
        r.read_count,
        Some(MAX_SEND_COUNT),
        "handle tail read everything we were sent"
    );
    assert_eq!(r.test_three, Some(true), "test three");
    assert_eq!(
        r.put_count,
        Some(MAX_SEND_COUNT),
        "sent everything we should"
    );
    assert_eq!(
        r.flush_count,
        Some(MAX_SEND_COUNT / 2),
        "flushed what we sent"
    );
    assert_eq!(r.test_six, Some(true), "test six");
    // Not upstream's: the tail's one error is the client's close, seen as end of file.
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(r.errors[0].is_eof(), "{:?}", r.errors);
    drop(r);
    common::assert_no_new_fds(&fds);
}

// ---------------------------------------------------------------------------------------
// Upstream part 2: a file that appears and disappears.

#[derive(Default)]
struct FileSide {
    wheel: Option<WheelHandle>,
    sent_count: u32,
    recv_count: u32,
    reset_count: u32,
}

#[test]
fn a_file_that_appears_and_disappears_is_followed() {
    let _serial = serial();
    let _guard = timeout(10, "a_file_that_appears_and_disappears_is_followed");
    let fds = common::open_fds();
    let file = Rc::new(Temp::new("test-tail-file"));
    let counts = Rc::new(Cell::new((0, 0, 0)));
    {
        let mut k = Kernel::new().unwrap();
        let (f1, f2, f3, c) = (file.clone(), file.clone(), file.clone(), counts.clone());
        k.create(
            Session::new(FileSide::default())
                .on("_start", move |ctx: &mut Ctx<'_, FileSide>| -> R {
                    f1.remove();
                    let wheel = FollowTail::filename(f1.path())
                        .filter(Line::with_literal("\n")?)
                        .input_event("got_input")
                        .error_event("got_error")
                        .reset_event("got_reset")
                        .idle_event("create_file")
                        .poll_interval(0.020)
                        .build(ctx)?;
                    *ctx.heap() = FileSide {
                        wheel: Some(wheel),
                        ..FileSide::default()
                    };
                    Ok(())
                })
                .on("create_file", move |ctx: &mut Ctx<'_, FileSide>| -> R {
                    f2.write("moo\n");
                    ctx.heap().sent_count += 1;
                    // Make file creation a one-shot occurrence.
                    let id = ctx.heap().wheel.as_ref().ok_or("no wheel")?.id();
                    ctx.wheel_mut::<FollowTail>(id)
                        .ok_or("no wheel")?
                        .event(TailEvent::Idle, None)?;
                    Ok(())
                })
                .on("got_input", move |ctx: &mut Ctx<'_, FileSide>| -> R {
                    ctx.heap().recv_count += 1;
                    assert_eq!(text(ctx)?, "moo");
                    f3.remove();
                    if ctx.heap().recv_count == 1 {
                        // Trigger a new one-shot file creation.
                        let id = ctx.heap().wheel.as_ref().ok_or("no wheel")?.id();
                        ctx.wheel_mut::<FollowTail>(id)
                            .ok_or("no wheel")?
                            .event(TailEvent::Idle, Some("create_file"))?;
                        return Ok(());
                    }
                    ctx.heap().wheel = None;
                    Ok(())
                })
                .on("got_error", |ctx: &mut Ctx<'_, FileSide>| -> R {
                    Err(ctx.arg::<WheelError>(0)?.to_string().into())
                })
                .on("got_reset", |ctx: &mut Ctx<'_, FileSide>| {
                    ctx.heap().reset_count += 1;
                })
                .on("_stop", move |ctx: &mut Ctx<'_, FileSide>| {
                    let h = ctx.heap();
                    c.set((h.sent_count, h.recv_count, h.reset_count));
                }),
        )
        .unwrap();
        k.run().unwrap();
    }
    let (sent, recv, resets) = counts.get();
    assert!(
        sent == recv && sent == 2,
        "file tail sent and received everything we should sent({sent}) recv({recv}) wanted(2)"
    );
    assert_eq!(resets, 2, "file tail resets detected");
    common::assert_no_new_fds(&fds);
}

// ---------------------------------------------------------------------------------------
// Where a tail starts: Seek, SeekBack, tell.

/// Follows a file holding "0123456789\nabc\n" (15 octets) until the first IdleEvent.
fn start_with(tweak: fn(FollowTailBuilder) -> FollowTailBuilder) -> Vec<String> {
    let file = Temp::with("seek", "0123456789\nabc\n");
    let path = file.path().to_owned();
    follow(
        move || tweak(FollowTail::filename(&path).poll_interval(0.01)),
        Box::new(|_, _| Ok(Next::Drop)),
    )
}

#[test]
fn seek_and_seek_back_choose_where_the_tail_starts() {
    let _serial = serial();
    let _guard = timeout(10, "seek_and_seek_back_choose_where_the_tail_starts");
    let all = ["tell:0", "in:0123456789", "in:abc"];
    let last = ["tell:11", "in:abc"];
    let none = ["tell:15"];
    assert_eq!(start_with(|b| b.seek(0)), all, "Seek 0: the start");
    assert_eq!(start_with(|b| b.seek(11)), last, "Seek from the start");
    assert_eq!(
        start_with(|b| b.seek(100)),
        none,
        "Seek past the end: the end"
    );
    assert_eq!(
        start_with(|b| b.seek(-4)),
        last,
        "negative Seek: from the end"
    );
    assert_eq!(
        start_with(|b| b.seek(-100)),
        all,
        "before the start: the start"
    );
    assert_eq!(start_with(|b| b.seek_back(4)), last, "SeekBack");
    assert_eq!(start_with(|b| b.seek_back(0)), none, "SeekBack 0: the end");
    assert_eq!(start_with(|b| b.seek_back(-11)), last, "negative SeekBack");
    assert_eq!(
        start_with(|b| b.seek_back(100)),
        all,
        "SeekBack past the start"
    );
    // Neither: the end, the records before it read and thrown away.
    assert_eq!(start_with(|b| b), none, "the default start");
}

#[test]
fn by_default_a_partial_record_at_the_end_is_completed_by_what_follows() {
    let _serial = serial();
    let _guard = timeout(10, "partial_record");
    let file = Rc::new(Temp::with("partial", "old1\nold2\npart"));
    let (path, f) = (file.path().to_owned(), file.clone());
    let log = follow(
        move || FollowTail::filename(&path).poll_interval(0.01),
        change_once(move || f.append("ial\nnew\n")),
    );
    // POE 1.370 gives the same: tell 14, then "partial" and "new".
    assert_eq!(log, ["tell:14", "in:partial", "in:new"]);
}

#[test]
fn tell_gives_a_position_that_seek_resumes_from() {
    let _serial = serial();
    let _guard = timeout(10, "tell_resumes");
    let file = Rc::new(Temp::with("tell", "one\ntwo\n"));
    let saved = Rc::new(Cell::new(None));
    let (path, f, s) = (file.path().to_owned(), file.clone(), saved.clone());
    let log = follow(
        move || FollowTail::filename(&path).seek(0).poll_interval(0.01),
        Box::new(move |_, ctx| {
            let id = ctx.heap().id.ok_or("no id")?;
            s.set(ctx.wheel_ref::<FollowTail>(id).ok_or("no wheel")?.tell());
            // Written while no tail runs.
            f.append("three\n");
            Ok(Next::Drop)
        }),
    );
    assert_eq!(log, ["tell:0", "in:one", "in:two"]);
    assert_eq!(saved.get(), Some(8));
    let path = file.path().to_owned();
    let at = saved.get().unwrap() as i64;
    let log = follow(
        move || FollowTail::filename(&path).seek(at).poll_interval(0.01),
        Box::new(|_, _| Ok(Next::Drop)),
    );
    assert_eq!(log, ["tell:8", "in:three"]);
}

// ---------------------------------------------------------------------------------------
// Resets: rotation, truncation, a file that is not there yet.

#[test]
fn a_file_rotated_by_rename_is_followed_into_the_new_file() {
    let _serial = serial();
    let _guard = timeout(10, "rotation");
    let file = Rc::new(Temp::with("rotate", "a1\n"));
    let (path, f) = (file.path().to_owned(), file.clone());
    let log = follow(
        move || FollowTail::filename(&path).poll_interval(0.01),
        Box::new(move |n, _| {
            match n {
                1 => f.append("a2\n"),
                2 => {
                    // logrotate's way: rename, make a new file; the writer still has
                    // the old one open a moment longer.
                    std::fs::rename(f.path(), f.rotated())?;
                    f.write("b1\n");
                    append(&f.rotated(), "a3\n");
                }
                3 => f.append("b2\n"),
                _ => return Ok(Next::Drop),
            }
            Ok(Next::Go)
        }),
    );
    // The old file is read to its end before the new one is opened (POE 1.370 gives the
    // same, "late" line included).
    assert_eq!(log, ["tell:3", "in:a2", "in:a3", "reset", "in:b1", "in:b2"]);
}

#[test]
fn a_truncated_file_is_read_again_from_its_start() {
    let _serial = serial();
    let _guard = timeout(10, "truncation by name");
    let file = Rc::new(Temp::with("truncate", "x1\nx2\n"));
    let (path, f) = (file.path().to_owned(), file.clone());
    let log = follow(
        move || FollowTail::filename(&path).seek(0).poll_interval(0.01),
        change_once(move || f.write("y\n")),
    );
    assert_eq!(log, ["tell:0", "in:x1", "in:x2", "reset", "in:y"]);
}

/// A truncation that comes right after the tail read new data, before its next look at
/// the file's size: the file is shorter than what was read (though not shorter than it was
/// when the tail last looked), so it is read again from its start. (POE compares the
/// sizes only, and misses this one; a tail opened on an empty file then never reads the
/// truncated file's new lines.)
#[test]
fn a_truncation_right_after_a_read_is_seen() {
    let _serial = serial();
    let _guard = timeout(10, "truncation right after a read");
    let file = Rc::new(Temp::with("truncate-early", ""));
    let (path, f, g) = (file.path().to_owned(), file.clone(), file.clone());
    ON_INPUT.with(|hook| {
        *hook.borrow_mut() = Some(Box::new(move |record: &str| {
            if record == "0123456789" {
                g.write("cut\n");
            }
        }));
    });
    let log = follow(
        move || FollowTail::filename(&path).seek(0).poll_interval(0.01),
        change_once(move || f.append("0123456789\n")),
    );
    ON_INPUT.with(|hook| *hook.borrow_mut() = None);
    assert_eq!(log, ["tell:0", "in:0123456789", "reset", "in:cut"]);
}

#[test]
fn a_truncated_handle_is_read_again_from_its_start() {
    let _serial = serial();
    let _guard = timeout(10, "truncation by handle");
    let file = Rc::new(Temp::with("truncate-handle", "x1\nx2\n"));
    let (path, f) = (file.path().to_owned(), file.clone());
    let log = follow(
        move || {
            let handle = std::fs::File::open(&path).expect("open");
            FollowTail::handle(handle).seek(0).poll_interval(0.01)
        },
        change_once(move || f.write("y\n")),
    );
    assert_eq!(log, ["tell:0", "in:x1", "in:x2", "reset", "in:y"]);
}

#[test]
fn a_file_that_does_not_exist_yet_is_waited_for() {
    let _serial = serial();
    let _guard = timeout(10, "missing file");
    let file = Rc::new(Temp::new("missing"));
    let tells = Rc::new(RefCell::new(Vec::new()));
    let (path, f, t) = (file.path().to_owned(), file.clone(), tells.clone());
    let log = follow(
        move || FollowTail::filename(&path).poll_interval(0.01),
        Box::new(move |n, ctx| {
            let id = ctx.heap().id.ok_or("no id")?;
            t.borrow_mut()
                .push(ctx.wheel_ref::<FollowTail>(id).ok_or("no wheel")?.tell());
            Ok(match n {
                1 | 2 => Next::Go,
                3 => {
                    f.write("c1\nc2\n");
                    Next::Go
                }
                4 => {
                    // Gone again: waited for again.
                    f.remove();
                    Next::Go
                }
                5 => {
                    f.write("d1\n");
                    Next::Go
                }
                _ => Next::Drop,
            })
        }),
    );
    assert_eq!(log, ["tell:-", "reset", "in:c1", "in:c2", "reset", "in:d1"]);
    assert_eq!(*tells.borrow(), [None, None, None, Some(6), None, Some(3)]);
}

// ---------------------------------------------------------------------------------------
// What stops a tail: errors and ends.

/// Runs a follower whose steps do nothing, to its end (it must end by itself).
fn follow_until_it_stops(make: impl Fn() -> FollowTailBuilder + 'static) -> (Vec<String>, u32) {
    let idles = Rc::new(Cell::new(0));
    let i = idles.clone();
    let log = follow(
        make,
        Box::new(move |n, _| {
            i.set(n);
            Ok(Next::Go)
        }),
    );
    (log, idles.get())
}

#[test]
fn a_path_that_cannot_be_opened_is_an_error_event_and_the_session_ends() {
    let _serial = serial();
    let _guard = timeout(10, "open error");
    // A path through a regular file: ENOTDIR, not "not there yet".
    let file = Temp::with("notdir", "x\n");
    let path = file.path().join("x");
    // The session keeps the wheel in its heap, and ends all the same: a stopped tail no
    // longer keeps it alive.
    let (log, idles) = follow_until_it_stops(move || FollowTail::filename(&path));
    assert_eq!(log, ["tell:-", "error:open:20"]);
    assert_eq!(idles, 0);
}

#[test]
fn a_directory_appearing_at_the_path_is_a_read_error() {
    let _serial = serial();
    let _guard = timeout(10, "directory later");
    let file = Rc::new(Temp::new("dir-later"));
    let (path, f) = (file.path().to_owned(), file.clone());
    let log = follow(
        move || FollowTail::filename(&path).poll_interval(0.01),
        Box::new(move |_, _| {
            std::fs::create_dir(f.path())?;
            Ok(Next::Go)
        }),
    );
    // As POE 1.370: the directory opens, and reading it fails with EISDIR.
    assert_eq!(log, ["tell:-", "reset", "error:read:21"]);
}

#[test]
fn a_pipe_is_read_until_its_writers_are_gone() {
    let _serial = serial();
    let _guard = timeout(10, "pipe");
    let fds = common::open_fds();
    {
        let (rx, mut tx) = reactor::pipe::one_way().unwrap();
        tx.write_all(b"p1\np2\n").unwrap();
        drop(tx);
        let rx = Cell::new(Some(rx));
        let (log, idles) =
            follow_until_it_stops(move || FollowTail::handle(rx.take().expect("once")));
        // At the end of a pipe POE emits IdleEvent and stops; the session then ends.
        assert_eq!(log, ["tell:-", "in:p1", "in:p2"]);
        assert_eq!(idles, 1);
    }
    common::assert_no_new_fds(&fds);
}

#[test]
fn a_tail_keeps_its_session_alive_while_it_follows() {
    let _serial = serial();
    let _guard = timeout(10, "holds the session");
    let file = Temp::with("alive", "");
    let path = file.path().to_owned();
    // Nothing but the tail keeps the session: it lives through five polls that find
    // nothing, until it drops the tail. Its polls are not the session's timers:
    // `alarm_remove_all` finds none, and does not stop them.
    let (log, idles) = {
        let idles = Rc::new(Cell::new(0));
        let i = idles.clone();
        let log = follow(
            move || FollowTail::filename(&path).poll_interval(0.005),
            Box::new(move |n, ctx| {
                i.set(n);
                assert!(ctx.alarm_remove_all()?.is_empty());
                Ok(if n < 5 { Next::Go } else { Next::Drop })
            }),
        );
        (log, idles.get())
    };
    assert_eq!(log, ["tell:0"]);
    assert_eq!(idles, 5);
}

#[test]
fn dropping_the_tail_cancels_its_polls_and_closes_the_file() {
    let _serial = serial();
    let _guard = timeout(10, "drop");
    let fds = common::open_fds();
    let file = Temp::with("drop", "z\n");
    let path = file.path().to_owned();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    {
        let mut k = Kernel::new().unwrap();
        k.create(
            Session::new(None::<WheelHandle>)
                .on(
                    "_start",
                    move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                        // An hour between polls: only the first one could come.
                        let tail = FollowTail::filename(&path)
                            .input_event("in")
                            .poll_interval(3600)
                            .build(ctx)?;
                        let id = tail.id();
                        s.borrow_mut().push(ctx.wheel_wake_pending(id));
                        *ctx.heap() = Some(tail);
                        ctx.yield_("drop", (id,))?;
                        Ok(())
                    },
                )
                .on("drop", |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                    *ctx.heap() = None;
                    let id = *ctx.arg::<WheelId>(0)?;
                    ctx.yield_("check", (id,))?;
                    Ok(())
                })
                .on("check", {
                    let s = seen.clone();
                    move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> R {
                        let id = *ctx.arg::<WheelId>(0)?;
                        s.borrow_mut().push(ctx.wheel_wake_pending(id));
                        s.borrow_mut()
                            .push(ctx.wheel_ref::<FollowTail>(id).is_some());
                        Ok(())
                    }
                }),
        )
        .unwrap();
        // Returns at once: nothing waits for the hour.
        let started = std::time::Instant::now();
        k.run().unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
    assert_eq!(*seen.borrow(), [true, false, false]);
    common::assert_no_new_fds(&fds);
}

// ---------------------------------------------------------------------------------------
// Constructor errors and event renaming.

#[test]
fn bad_options_are_typed_errors_from_build() {
    let _serial = serial();
    let _guard = timeout(10, "constructor errors");
    let fds = common::open_fds();
    let file = Temp::with("options", "x\n");
    let dir = Temp::new("a-directory");
    std::fs::create_dir(dir.path()).unwrap();
    let (f, d) = (file.path().to_owned(), dir.path().to_owned());
    let outcomes: Rc<RefCell<Vec<(&'static str, String)>>> = Rc::default();
    let o = outcomes.clone();
    {
        let mut k = Kernel::new().unwrap();
        k.create(
            Session::new(()).on("_start", move |ctx: &mut Ctx<'_, ()>| -> R {
                let named = || FollowTail::filename(&f).input_event("in");
                let cases: Vec<(&'static str, FollowTailBuilder)> = vec![
                    ("no InputEvent", FollowTail::filename(&f)),
                    ("empty InputEvent", FollowTail::filename(&f).input_event("")),
                    ("Seek and SeekBack", named().seek(1).seek_back(1)),
                    ("BlockSize 0", named().block_size(0)),
                    ("negative PollInterval", named().poll_interval(-1.0)),
                    (
                        "a directory by name",
                        FollowTail::filename(&d).input_event("in"),
                    ),
                    (
                        "a directory by handle",
                        FollowTail::handle(std::fs::File::open(&d)?).input_event("in"),
                    ),
                ];
                for (what, builder) in cases {
                    let outcome = match builder.build(ctx) {
                        Ok(_) => "built".to_owned(),
                        Err(Error::InvalidArgument(m)) => m.to_owned(),
                        Err(e) => format!("other error: {e}"),
                    };
                    o.borrow_mut().push((what, outcome));
                }
                Ok(())
            }),
        )
        .unwrap();
        k.run().unwrap();
    }
    assert_eq!(
        *outcomes.borrow(),
        [
            ("no InputEvent", "InputEvent required".to_owned()),
            ("empty InputEvent", "InputEvent required".to_owned()),
            (
                "Seek and SeekBack",
                "can't have Seek and SeekBack at the same time".to_owned()
            ),
            ("BlockSize 0", "BlockSize must be greater than 0".to_owned()),
            (
                "negative PollInterval",
                "PollInterval must not be negative".to_owned()
            ),
            (
                "a directory by name",
                "FollowTail does not tail directories".to_owned()
            ),
            (
                "a directory by handle",
                "FollowTail does not tail directories".to_owned()
            ),
        ]
    );
    common::assert_no_new_fds(&fds);
}

#[test]
fn events_can_be_renamed_and_removed_but_input_stays() {
    let _serial = serial();
    let _guard = timeout(10, "event renaming");
    let file = Rc::new(Temp::with("events", ""));
    let (path, f) = (file.path().to_owned(), file.clone());
    let log = follow(
        move || FollowTail::filename(&path).poll_interval(0.01),
        Box::new(move |n, ctx| {
            let id = ctx.heap().id.ok_or("no id")?;
            let w = ctx.wheel_mut::<FollowTail>(id).ok_or("no wheel")?;
            assert_eq!(w.id(), id);
            match n {
                1 => {
                    // Removing InputEvent is refused, and changes nothing.
                    assert!(matches!(
                        w.event(TailEvent::Input, None),
                        Err(Error::InvalidArgument(_))
                    ));
                    // ResetEvent renamed to an event the session does not handle, then
                    // removed: the truncation below is not logged.
                    w.event(TailEvent::Reset, Some("reset_elsewhere"))?;
                    w.event(TailEvent::Reset, None)?;
                    f.append("kept\n");
                    Ok(Next::Go)
                }
                2 => {
                    f.write("");
                    Ok(Next::Go)
                }
                _ => Ok(Next::Drop),
            }
        }),
    );
    assert_eq!(log, ["tell:0", "in:kept"]);
}
