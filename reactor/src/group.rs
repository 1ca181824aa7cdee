//! One kernel per core: [`Group`] runs N kernels on N threads, each set up by a closure of
//! yours, and stops them all on SIGINT or SIGTERM.
//!
//! A kernel is single-threaded, as POE's is; a program that needs more than one core runs
//! more than one kernel. Nothing is shared between them on the hot path: each has its own
//! sessions, queue, poller and sockets, and they meet only where the program makes them
//! (a [`Poster`] from one to another, or the system spreading connections across listeners
//! bound with [`reuse_port`](crate::component::ServerTcpBuilder::reuse_port)). A server
//! scales by giving every kernel its own listener on the same port.
//!
//! The thread that calls [`Group::run`] runs a small kernel of its own, which catches the
//! signals (only it: they are delivered to one kernel) and tells every kernel of the group
//! through its poster: [`Group::on_signal`] says what a kernel does then (by default
//! [`Kernel::stop`]). `run` returns once every kernel of the group has finished.
//!
//! ```
//! use reactor::group::Group;
//! use reactor::{Ctx, Session};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! let ran = Arc::new(AtomicUsize::new(0));
//! let r = Arc::clone(&ran);
//! Group::new(2)
//!     .catch_signals(false)
//!     .run(move |index, kernel| {
//!         let r = Arc::clone(&r);
//!         kernel.create(Session::new(()).on("_start", move |_: &mut Ctx<'_, ()>| {
//!             r.fetch_add(index + 1, Ordering::SeqCst);
//!         }))?;
//!         Ok(())
//!     })?;
//! assert_eq!(ran.load(Ordering::SeqCst), 1 + 2);
//! # Ok::<(), reactor::group::GroupError>(())
//! ```

use crate::error::Error;
use crate::{Ctx, Kernel, Poster, Session};
use std::cell::RefCell;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// What a setup closure may fail with.
pub type SetupError = Box<dyn std::error::Error + Send + Sync>;

/// What a kernel of the group does when the group is told to stop (see
/// [`Group::on_signal`]): the kernel, and the signal's name (`"INT"` or `"TERM"`).
pub type OnSignal = dyn Fn(&mut Kernel, &str) + Send + Sync;

/// Why [`Group::run`] failed: the first failure, by the kernel's index.
#[derive(Debug)]
#[non_exhaustive]
pub enum GroupError {
    /// The calling thread's kernel failed.
    Kernel(Error),
    /// A thread could not be started.
    Spawn(std::io::Error),
    /// Kernel `index`'s setup closure failed (every kernel of the group was stopped).
    Setup {
        /// Which kernel.
        index: usize,
        /// What the closure returned.
        message: String,
    },
    /// Kernel `index`'s run ended with an error ([`Error::Exception`] and the like).
    Run {
        /// Which kernel.
        index: usize,
        /// The error, as text.
        message: String,
    },
    /// Kernel `index`'s thread panicked, in its setup or otherwise outside any handler
    /// (handlers' panics are the kernel's `DIE`); every kernel of the group was stopped.
    Panicked {
        /// Which kernel.
        index: usize,
        /// The panic's message.
        message: String,
    },
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::Kernel(e) => write!(f, "the group's own kernel: {e}"),
            GroupError::Spawn(e) => write!(f, "cannot start a kernel's thread: {e}"),
            GroupError::Setup { index, message } => {
                write!(f, "kernel {index}: setup failed: {message}")
            }
            GroupError::Run { index, message } => write!(f, "kernel {index}: {message}"),
            GroupError::Panicked { index, message } => {
                write!(f, "kernel {index}: thread panicked: {message}")
            }
        }
    }
}

impl std::error::Error for GroupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GroupError::Kernel(e) => Some(e),
            GroupError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for GroupError {
    fn from(e: Error) -> Self {
        GroupError::Kernel(e)
    }
}

/// Runs N kernels on N threads; see the [module documentation](self).
pub struct Group {
    threads: usize,
    catch_signals: bool,
    on_signal: Arc<OnSignal>,
    on_ready: Option<Box<dyn FnOnce() + Send>>,
    name: String,
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("threads", &self.threads)
            .field("catch_signals", &self.catch_signals)
            .finish_non_exhaustive()
    }
}

/// How a kernel's thread ended, as its report to the group.
enum Ended {
    Ok,
    Setup(String),
    Run(String),
    Panicked(String),
}

/// The calling thread's session: what it knows of the group.
struct Coordinator {
    posters: Vec<Option<Poster>>,
    ready: usize,
    finished: usize,
    threads: usize,
    /// The signal that stopped the group, or "setup" after a failed setup.
    stopping: Option<String>,
    on_signal: Arc<OnSignal>,
    on_ready: Option<Box<dyn FnOnce() + Send>>,
    /// How each kernel ended, for `run` to report.
    ended: Rc<RefCell<Vec<(usize, Ended)>>>,
    catch_signals: bool,
}

/// The reference the coordinating session holds on itself while kernels run.
const GROUP_TAG: &str = "group";

impl Coordinator {
    /// Tells kernel `i` to stop, the way the group is stopping.
    fn tell(&self, poster: &Poster) {
        let Some(how) = self.stopping.clone() else {
            return;
        };
        let on_signal = Arc::clone(&self.on_signal);
        // A kernel that has finished meanwhile cannot be told, and need not be.
        let _ = poster.run(Box::new(move |k: &mut Kernel| {
            if how == "setup" {
                k.stop();
            } else {
                on_signal(k, &how);
            }
        }));
    }

    fn stop_all(&mut self, how: &str) {
        if self.stopping.is_some() {
            return;
        }
        self.stopping = Some(how.to_owned());
        for p in self.posters.iter().flatten() {
            self.tell(p);
        }
    }
}

fn coordinator(c: Coordinator) -> Session<Coordinator> {
    Session::new(c)
        .on(
            "_start",
            |ctx: &mut Ctx<'_, Coordinator>| -> Result<(), Error> {
                let me = ctx.active_session();
                ctx.refcount_increment(me, GROUP_TAG)?;
                if ctx.heap().catch_signals {
                    ctx.sig("INT", "group_signal", ())?;
                    ctx.sig("TERM", "group_signal", ())?;
                }
                Ok(())
            },
        )
        .on("group_signal", |ctx: &mut Ctx<'_, Coordinator>| {
            ctx.sig_handled();
            let name = ctx.arg::<String>(0).cloned().unwrap_or_default();
            log::debug!("group: SIG{name}: stopping every kernel");
            ctx.heap().stop_all(&name);
        })
        .on("group_ready", |ctx: &mut Ctx<'_, Coordinator>| {
            let (Ok(&i), Ok(p)) = (ctx.arg::<usize>(0), ctx.arg::<Poster>(1)) else {
                return;
            };
            let p = p.clone();
            let h = ctx.heap();
            h.tell(&p);
            h.posters[i] = Some(p);
            h.ready += 1;
            if h.ready == h.threads && h.stopping.is_none() {
                if let Some(f) = h.on_ready.take() {
                    f();
                }
            }
        })
        .on("group_finished", |ctx: &mut Ctx<'_, Coordinator>| {
            let Ok(&i) = ctx.arg::<usize>(0) else { return };
            let ended = ctx
                .take_arg::<Ended>(1)
                .unwrap_or(Ended::Panicked("no report".to_owned()));
            let h = ctx.heap();
            if matches!(ended, Ended::Setup(_) | Ended::Panicked(_)) {
                h.stop_all("setup");
            }
            h.posters[i] = None;
            h.ended.borrow_mut().push((i, ended));
            h.finished += 1;
            if h.finished == h.threads {
                let catch = h.catch_signals;
                let me = ctx.active_session();
                if catch {
                    let _ = ctx.sig_clear("INT");
                    let _ = ctx.sig_clear("TERM");
                }
                let _ = ctx.refcount_decrement(me, GROUP_TAG);
            }
        })
}

/// Setups run one at a time, in index order: kernel `i` waits for its turn here.
struct Turns {
    next: Mutex<usize>,
    cond: Condvar,
}

impl Turns {
    fn wait(&self, i: usize) {
        let g = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let _g = self
            .cond
            .wait_while(g, |n| *n < i)
            .unwrap_or_else(PoisonError::into_inner);
    }
    fn done(&self, i: usize) {
        let mut g = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        *g = (*g).max(i + 1);
        self.cond.notify_all();
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

impl Group {
    /// A group of `threads` kernels (0 is taken as 1) that catches SIGINT and SIGTERM and
    /// stops every kernel ([`Kernel::stop`]) when one comes.
    pub fn new(threads: usize) -> Group {
        Group {
            threads: threads.max(1),
            catch_signals: true,
            on_signal: Arc::new(|k: &mut Kernel, _: &str| k.stop()),
            on_ready: None,
            name: "kernel".to_owned(),
        }
    }

    /// Whether the group catches SIGINT and SIGTERM (default on). Off, the signals keep
    /// their default action unless a session of some kernel watches them.
    pub fn catch_signals(mut self, on: bool) -> Self {
        self.catch_signals = on;
        self
    }

    /// What every kernel does, on its own thread and outside any session, when the group
    /// catches SIGINT or SIGTERM; the second argument is `"INT"` or `"TERM"`. The default
    /// is [`Kernel::stop`]. A server that winds down gracefully posts its shutdown events
    /// here instead (`kernel.post("server", "shutdown", ())`): the kernel runs until its
    /// sessions are done. A kernel still being set up is told once it is ready.
    pub fn on_signal(mut self, f: impl Fn(&mut Kernel, &str) + Send + Sync + 'static) -> Self {
        self.on_signal = Arc::new(f);
        self
    }

    /// Called once on the calling thread when every kernel's setup has succeeded (not
    /// after a failed one): the moment a server may announce where it listens.
    pub fn on_ready(mut self, f: impl FnOnce() + Send + 'static) -> Self {
        self.on_ready = Some(Box::new(f));
        self
    }

    /// The name of the kernels' threads (default `"kernel"`; each gets its index
    /// appended).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Runs the group: on each of its threads a new [`Kernel`], given to
    /// `setup(index, kernel)` (the setups run one at a time, in index order, each on its
    /// kernel's thread, so kernel 0 may bind port 0 and tell the others the port it got),
    /// then run until it has no session left. Returns when every kernel has finished.
    ///
    /// # Errors
    ///
    /// The first failure, by kernel index, of a setup, a kernel's run or a thread; after
    /// a failed setup every kernel of the group is stopped ([`Kernel::stop`]).
    pub fn run<F>(self, setup: F) -> Result<(), GroupError>
    where
        F: Fn(usize, &mut Kernel) -> Result<(), SetupError> + Send + Sync + 'static,
    {
        let n = self.threads;
        let mut k = Kernel::new()?;
        let ended: Rc<RefCell<Vec<(usize, Ended)>>> = Rc::default();
        let group = k.create(coordinator(Coordinator {
            posters: vec![None; n],
            ready: 0,
            finished: 0,
            threads: n,
            stopping: None,
            on_signal: Arc::clone(&self.on_signal),
            on_ready: self.on_ready,
            ended: Rc::clone(&ended),
            catch_signals: self.catch_signals,
        }))?;
        let home = k.poster()?;
        let setup = Arc::new(setup);
        let turns = Arc::new(Turns {
            next: Mutex::new(0),
            cond: Condvar::new(),
        });
        let mut handles = Vec::with_capacity(n);
        let mut spawn_error = None;
        for i in 0..n {
            let (home2, setup, turns2) = (home.clone(), Arc::clone(&setup), Arc::clone(&turns));
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{i}", self.name))
                .spawn(move || {
                    let ended = catch_unwind(AssertUnwindSafe(|| {
                        kernel_thread(i, &home2, group, &*setup, &turns2)
                    }))
                    .unwrap_or_else(|p| Ended::Panicked(panic_text(p)));
                    turns2.done(i);
                    let _ = home2.post(group, "group_finished", (i, ended));
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // The kernels already started are told to stop; this one never ran.
                    spawn_error = Some(e);
                    let _ = home.post(
                        group,
                        "group_finished",
                        (i, Ended::Setup("not started".into())),
                    );
                    for j in i + 1..n {
                        turns.done(j);
                        let _ = home.post(
                            group,
                            "group_finished",
                            (j, Ended::Setup("not started".into())),
                        );
                    }
                    break;
                }
            }
        }
        drop(home);
        let run = k.run();
        for h in handles {
            let _ = h.join();
        }
        if let Some(e) = spawn_error {
            return Err(GroupError::Spawn(e));
        }
        run?;
        let mut ended = std::mem::take(&mut *ended.borrow_mut());
        ended.sort_by_key(|(i, _)| *i);
        for (index, how) in ended {
            match how {
                Ended::Ok => {}
                Ended::Setup(message) => return Err(GroupError::Setup { index, message }),
                Ended::Run(message) => return Err(GroupError::Run { index, message }),
                Ended::Panicked(message) => return Err(GroupError::Panicked { index, message }),
            }
        }
        Ok(())
    }
}

/// One kernel's thread: wait for its turn, set up, report ready, run.
fn kernel_thread(
    i: usize,
    home: &Poster,
    group: crate::SessionId,
    setup: &(dyn Fn(usize, &mut Kernel) -> Result<(), SetupError> + Send + Sync),
    turns: &Turns,
) -> Ended {
    turns.wait(i);
    let mut k = match Kernel::new() {
        Ok(k) => k,
        Err(e) => {
            turns.done(i);
            return Ended::Setup(e.to_string());
        }
    };
    let set_up = setup(i, &mut k);
    turns.done(i);
    if let Err(e) = set_up {
        return Ended::Setup(e.to_string());
    }
    match k.poster() {
        Ok(p) => {
            let _ = home.post(group, "group_ready", (i, p));
        }
        Err(e) => return Ended::Setup(e.to_string()),
    }
    match k.run() {
        Ok(()) => Ended::Ok,
        Err(e) => Ended::Run(e.to_string()),
    }
}
