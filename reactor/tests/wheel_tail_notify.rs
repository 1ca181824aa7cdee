//! `FollowTail` with `TailWatch::Inotify`: changes reported by inotify are read at once,
//! and polling stays as the fallback.
//!
//! Most tests give a `PollInterval` of 30 s and a watchdog of 10 s: a change that inotify
//! did not report would wait for the next poll, and the test would time out. Each step is
//! taken when the tail reports the previous one (the first `IdleEvent`, a record, a
//! reset), so nothing waits on time; `IdleEvent`s are not logged, since inotify may
//! report a change that holds nothing new (a writer closing the file).
//!
//! The fallback: a file in a directory that does not exist cannot be watched, and is
//! polled; a directory deleted under a followed file ends the watching, and the tail
//! polls at the ordinary default of 1 s; a stopped tail closes its inotify descriptor.
//!
//! The tests run one at a time (a lock), so that the descriptors one opens are not taken
//! for another's leak (`common::assert_no_new_fds`).
#![cfg(target_os = "linux")]

mod common;
use common::timeout;
use reactor::wheel::{FollowTail, FollowTailBuilder, TailWatch, WheelError};
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle, WheelId};
use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

type R = Result<(), HandlerError>;
type Log = Rc<RefCell<Vec<String>>>;

/// Serialises the tests of this file.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A unique directory under the temporary directory, removed with what is in it when
/// dropped. It is made by [`Temp::new`]; [`Temp::missing`] only names it.
struct Temp(PathBuf);

impl Temp {
    fn missing(what: &str) -> Temp {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Temp(std::env::temp_dir().join(format!(
            "reactor-wheel-tail-notify-{}-{n}-{what}",
            std::process::id()
        )))
    }

    fn new(what: &str) -> Temp {
        let t = Temp::missing(what);
        std::fs::create_dir_all(&t.0).expect("make the test directory");
        t
    }

    /// The followed file's path in the directory.
    fn file(&self) -> PathBuf {
        self.0.join("tail.log")
    }

    /// The path a rotation renames the file to.
    fn rotated(&self) -> PathBuf {
        self.0.join("tail.log.1")
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether this process has an inotify descriptor open.
fn inotify_open() -> bool {
    std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .any(|t| t.as_os_str() == "anon_inode:inotify")
}

fn append(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)?
        .write_all(contents.as_bytes())
}

/// What the script does after a step.
enum Next {
    /// Go on following.
    Go,
    /// Drop the tail: the session ends.
    Drop,
}

/// Called with "idle", "reset", "in:RECORD" or "error", as the tail reports them, and
/// with "tick" when a `tick` timer of the session goes off.
type Script = Box<dyn FnMut(&str, &mut Ctx<'_, Heap>) -> Result<Next, HandlerError>>;

#[derive(Default)]
struct Heap {
    tail: Option<WheelHandle>,
    id: Option<WheelId>,
}

/// How the tail watches its file now, as a log line.
fn watching(ctx: &mut Ctx<'_, Heap>) -> Result<String, HandlerError> {
    let id = ctx.heap().id.ok_or("no tail")?;
    let w = ctx.wheel_ref::<FollowTail>(id).ok_or("no tail")?;
    Ok(format!("watch:{:?}", w.watching()))
}

/// A session following with the tail `make` builds; it logs "watch:HOW" after building,
/// each record as "in:RECORD", "reset", and "error:OPERATION:ERRNO", and hands every
/// report (and each `IdleEvent`, as "idle") to `script`.
fn follower(
    make: impl Fn() -> FollowTailBuilder + 'static,
    log: &Log,
    script: Script,
) -> Session<Heap> {
    let script = Rc::new(RefCell::new(script));
    let step = {
        let log = log.clone();
        move |what: String, logged: bool, ctx: &mut Ctx<'_, Heap>| -> R {
            if logged {
                log.borrow_mut().push(what.clone());
            }
            let next = (script.borrow_mut())(&what, ctx)?;
            if let Next::Drop = next {
                ctx.heap().tail = None;
            }
            Ok(())
        }
    };
    let (s1, s2, s3, s4, s5) = (step.clone(), step.clone(), step.clone(), step.clone(), step);
    let l = log.clone();
    Session::new(Heap::default())
        .on("_start", move |ctx: &mut Ctx<'_, Heap>| -> R {
            let tail = make()
                .input_event("in")
                .reset_event("reset")
                .error_event("error")
                .idle_event("idle")
                .build(ctx)?;
            ctx.heap().id = Some(tail.id());
            ctx.heap().tail = Some(tail);
            l.borrow_mut().push(watching(ctx)?);
            Ok(())
        })
        .on("in", move |ctx: &mut Ctx<'_, Heap>| -> R {
            let rec = String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?).into_owned();
            s1(format!("in:{rec}"), true, ctx)
        })
        .on("reset", move |ctx: &mut Ctx<'_, Heap>| -> R {
            s2("reset".into(), true, ctx)
        })
        .on("idle", move |ctx: &mut Ctx<'_, Heap>| -> R {
            s3("idle".into(), false, ctx)
        })
        .on("error", move |ctx: &mut Ctx<'_, Heap>| -> R {
            let e = ctx.arg::<WheelError>(0)?;
            let what = format!("error:{}:{}", e.operation, e.errno);
            s4(what, true, ctx)
        })
        .on("tick", move |ctx: &mut Ctx<'_, Heap>| -> R {
            s5("tick".into(), false, ctx)
        })
}

/// Runs one follower to its end and returns its log; checks that no descriptor is left.
fn follow(make: impl Fn() -> FollowTailBuilder + 'static, script: Script) -> Vec<String> {
    let fds = common::open_fds();
    let log: Log = Rc::default();
    {
        let mut k = Kernel::new().expect("kernel");
        k.create(follower(make, &log, script)).expect("session");
        k.run().expect("run");
    }
    common::assert_no_new_fds(&fds);
    let v = log.borrow().clone();
    v
}

/// A tail of `path` by inotify, whose polls would come only every 30 s.
fn by_inotify(path: &Path) -> impl Fn() -> FollowTailBuilder + 'static {
    let path = path.to_owned();
    move || {
        FollowTail::filename(&path)
            .watch(TailWatch::Inotify)
            .poll_interval(30)
    }
}

/// Runs `first` at the first `IdleEvent` only.
fn once(mut first: impl FnMut() -> std::io::Result<()> + 'static) -> impl FnMut(&str) -> R {
    let mut done = false;
    move |what: &str| -> R {
        if what == "idle" && !done {
            done = true;
            first()?;
        }
        Ok(())
    }
}

#[test]
fn appended_lines_arrive_at_once() {
    let _serial = serial();
    let _guard = timeout(10, "appended_lines_arrive_at_once");
    let dir = Temp::new("append");
    let path = dir.file();
    std::fs::write(&path, "before\n").unwrap();
    let p = path.clone();
    let mut start = once(move || append(&p, "one\n"));
    let p = path.clone();
    let began = Instant::now();
    let log = follow(
        by_inotify(&path),
        Box::new(move |what, _| {
            start(what)?;
            match what {
                "in:one" => append(&p, "two\nthree\n")?,
                "in:three" => return Ok(Next::Drop),
                _ => {}
            }
            Ok(Next::Go)
        }),
    );
    assert_eq!(log, ["watch:Inotify", "in:one", "in:two", "in:three"]);
    // The first poll, at the start, is the only one the interval gave.
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
}

#[test]
fn a_quiet_file_costs_no_polls() {
    let _serial = serial();
    let _guard = timeout(10, "a_quiet_file_costs_no_polls");
    // Nothing the tail itself does (opening, reading, stat) is reported to it: while the
    // file does not change, the first poll is the only one.
    let dir = Temp::new("quiet");
    let path = dir.file();
    std::fs::write(&path, "before\n").unwrap();
    let idles = Rc::new(std::cell::Cell::new(0));
    let n = idles.clone();
    let log = follow(
        by_inotify(&path),
        Box::new(move |what, ctx| {
            match what {
                "idle" => {
                    n.set(n.get() + 1);
                    if n.get() == 1 {
                        ctx.delay("tick", 0.3, ())?;
                    }
                }
                "tick" => return Ok(Next::Drop),
                _ => {}
            }
            Ok(Next::Go)
        }),
    );
    assert_eq!(log, ["watch:Inotify"]);
    assert_eq!(idles.get(), 1);
}

#[test]
fn a_rotation_by_rename_is_followed_into_the_new_file() {
    let _serial = serial();
    let _guard = timeout(10, "a_rotation_by_rename_is_followed_into_the_new_file");
    let dir = Temp::new("rename");
    let (path, rotated) = (dir.file(), dir.rotated());
    std::fs::write(&path, "before\n").unwrap();
    let (p, r) = (path.clone(), rotated.clone());
    let mut start = once(move || {
        // The last line of the old file, then the rotation, then the new file's first.
        append(&p, "last-old\n")?;
        std::fs::rename(&p, &r)?;
        std::fs::write(&p, "new\n")
    });
    let p = path.clone();
    let log = follow(
        by_inotify(&path),
        Box::new(move |what, _| {
            start(what)?;
            match what {
                // The new file is watched: what is appended to it comes at once too.
                "in:new" => append(&p, "more\n")?,
                "in:more" => return Ok(Next::Drop),
                _ => {}
            }
            Ok(Next::Go)
        }),
    );
    assert_eq!(
        log,
        ["watch:Inotify", "in:last-old", "reset", "in:new", "in:more"]
    );
}

#[test]
fn a_truncated_file_is_read_again_from_its_start() {
    let _serial = serial();
    let _guard = timeout(10, "a_truncated_file_is_read_again_from_its_start");
    let dir = Temp::new("truncate");
    let path = dir.file();
    std::fs::write(&path, "0123456789\n").unwrap();
    let p = path.clone();
    let mut start = once(move || std::fs::write(&p, "cut\n"));
    let p = path.clone();
    let log = follow(
        by_inotify(&path),
        Box::new(move |what, _| {
            start(what)?;
            match what {
                "in:cut" => append(&p, "after\n")?,
                "in:after" => return Ok(Next::Drop),
                _ => {}
            }
            Ok(Next::Go)
        }),
    );
    assert_eq!(log, ["watch:Inotify", "reset", "in:cut", "in:after"]);
}

#[test]
fn a_file_that_does_not_exist_yet_is_read_when_it_appears() {
    let _serial = serial();
    let _guard = timeout(10, "a_file_that_does_not_exist_yet_is_read_when_it_appears");
    let dir = Temp::new("later");
    let path = dir.file();
    let p = path.clone();
    let mut start = once(move || std::fs::write(&p, "hello\n"));
    let p = path.clone();
    let log = follow(
        by_inotify(&path),
        Box::new(move |what, _| {
            start(what)?;
            match what {
                "in:hello" => append(&p, "again\n")?,
                "in:again" => return Ok(Next::Drop),
                _ => {}
            }
            Ok(Next::Go)
        }),
    );
    assert_eq!(log, ["watch:Inotify", "reset", "in:hello", "in:again"]);
}

#[test]
fn a_file_deleted_and_made_again_is_followed() {
    let _serial = serial();
    let _guard = timeout(10, "a_file_deleted_and_made_again_is_followed");
    let dir = Temp::new("remake");
    let path = dir.file();
    std::fs::write(&path, "before\n").unwrap();
    let p = path.clone();
    // Deleted at the first IdleEvent; made again at the next, when the tail has seen it
    // gone.
    let mut idles = 0;
    let log = follow(
        by_inotify(&path),
        Box::new(move |what, _| {
            match what {
                "idle" => {
                    idles += 1;
                    match idles {
                        1 => std::fs::remove_file(&p)?,
                        2 => std::fs::write(&p, "reborn\n")?,
                        _ => {}
                    }
                }
                "in:reborn" => return Ok(Next::Drop),
                _ => {}
            }
            Ok(Next::Go)
        }),
    );
    assert_eq!(log, ["watch:Inotify", "reset", "in:reborn"]);
}

#[test]
fn a_handle_is_watched_too() {
    let _serial = serial();
    let _guard = timeout(10, "a_handle_is_watched_too");
    let dir = Temp::new("handle");
    let path = dir.file();
    std::fs::write(&path, "0123456789\n").unwrap();
    let file = RefCell::new(Some(std::fs::File::open(&path).unwrap()));
    let p = path.clone();
    let mut start = once(move || append(&p, "one\n"));
    let p = path.clone();
    let log = follow(
        move || {
            let f = file.borrow_mut().take().expect("built once");
            FollowTail::handle(f)
                .watch(TailWatch::Inotify)
                .poll_interval(30)
        },
        Box::new(move |what, _| {
            start(what)?;
            match what {
                // Truncated: a handle is read again from its start.
                "in:one" => std::fs::write(&p, "cut\n")?,
                "in:cut" => return Ok(Next::Drop),
                _ => {}
            }
            Ok(Next::Go)
        }),
    );
    assert_eq!(log, ["watch:Inotify", "in:one", "reset", "in:cut"]);
}

#[test]
fn a_file_in_a_directory_that_is_not_there_is_polled() {
    let _serial = serial();
    let _guard = timeout(10, "a_file_in_a_directory_that_is_not_there_is_polled");
    // inotify cannot watch a directory that does not exist: the tail polls, and finds the
    // file when the directory and the file are made.
    let dir = Rc::new(Temp::missing("nodir"));
    let path = dir.file();
    let d = dir.clone();
    let p = path.clone();
    let mut start = once(move || {
        std::fs::create_dir(&d.0)?;
        std::fs::write(&p, "hello\n")
    });
    let p = path.clone();
    let log = follow(
        move || {
            FollowTail::filename(&p)
                .watch(TailWatch::Inotify)
                .poll_interval(0.02)
        },
        Box::new(move |what, _| {
            start(what)?;
            Ok(match what {
                "in:hello" => Next::Drop,
                _ => Next::Go,
            })
        }),
    );
    assert_eq!(log, ["watch:Poll", "reset", "in:hello"]);
}

#[test]
fn a_tail_whose_directory_is_deleted_falls_back_to_polling() {
    let _serial = serial();
    let _guard = timeout(
        10,
        "a_tail_whose_directory_is_deleted_falls_back_to_polling",
    );
    // No PollInterval: 10 s while inotify watches, 1 s once it no longer can. The file
    // made again after the fallback is found by the next poll, a second later.
    let dir = Rc::new(Temp::new("rmdir"));
    let path = dir.file();
    std::fs::write(&path, "before\n").unwrap();
    let (d, p) = (dir.clone(), path.clone());
    let mut gone = false;
    let mut back = false;
    let began = Instant::now();
    let log = follow(
        move || FollowTail::filename(&p).watch(TailWatch::Inotify),
        Box::new(move |what, ctx| {
            if what == "idle" && !gone {
                gone = true;
                std::fs::remove_file(d.file())?;
                std::fs::remove_dir(&d.0)?;
            } else if what == "idle" && !back {
                let how = watching(ctx)?;
                if how == "watch:Poll" {
                    back = true;
                    std::fs::create_dir(&d.0)?;
                    std::fs::write(d.file(), "back\n")?;
                }
            } else if what == "in:back" {
                return Ok(Next::Drop);
            }
            Ok(Next::Go)
        }),
    );
    assert_eq!(log, ["watch:Inotify", "reset", "in:back"]);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
}

#[test]
fn a_tail_stopped_by_an_error_closes_its_inotify_descriptor() {
    let _serial = serial();
    let _guard = timeout(
        10,
        "a_tail_stopped_by_an_error_closes_its_inotify_descriptor",
    );
    // A directory made at the path opens, and reading it fails: the tail stops, and no
    // longer watches anything (the session keeps it until it ends).
    let dir = Temp::new("error");
    let path = dir.file();
    std::fs::write(&path, "before\n").unwrap();
    let p = path.clone();
    let mut start = once(move || {
        std::fs::remove_file(&p)?;
        std::fs::create_dir(&p)
    });
    let seen: Log = Rc::default();
    let s = seen.clone();
    let log = follow(
        by_inotify(&path),
        Box::new(move |what, ctx| {
            start(what)?;
            if what.starts_with("error:") {
                s.borrow_mut().push(watching(ctx)?);
                s.borrow_mut()
                    .push(format!("inotify open: {}", inotify_open()));
            }
            Ok(Next::Go)
        }),
    );
    assert_eq!(log, ["watch:Inotify", "reset", "error:read:21"]);
    assert_eq!(*seen.borrow(), ["watch:Poll", "inotify open: false"]);
}

#[test]
fn pipes_are_read_by_readiness_and_not_watched() {
    let _serial = serial();
    let _guard = timeout(10, "pipes_are_read_by_readiness_and_not_watched");
    let (rx, mut tx) = reactor::pipe::one_way().unwrap();
    tx.write_all(b"p1\n").unwrap();
    drop(tx);
    let rx = RefCell::new(Some(rx));
    let log = follow(
        move || {
            let rx = rx.borrow_mut().take().expect("built once");
            FollowTail::handle(rx).watch(TailWatch::Inotify)
        },
        Box::new(|_, _| Ok(Next::Go)),
    );
    assert_eq!(log, ["watch:Poll", "in:p1"]);
}
