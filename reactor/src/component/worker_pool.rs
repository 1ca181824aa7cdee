//! A bounded pool of threads for blocking work, whose results come back as events: what a
//! POE program gets from `POE::Component::Pool::Thread` or `POE::Component::JobQueue`
//! (POE itself has no threads; its programs fork workers with `POE::Wheel::Run`).
//!
//! A handler hands the pool a closure with [`WorkerPool::run`]; one of at most
//! [`threads`](WorkerPoolBuilder::threads) worker threads runs it, and its value comes
//! back to the session that asked, as the event it named: `ARG0` = the [`JobId`], `ARG1`
//! = `Result<T, JobError>` (the closure's value, or why there is none). The session stays
//! alive while its jobs are out. Results cross back through the kernel's
//! [`Poster`], so a pool costs the kernel nothing while it is idle.
//!
//! Workers start as jobs need them and exit after being idle for
//! [`idle_timeout`](WorkerPoolBuilder::idle_timeout). Dropping the last handle (or
//! [`shutdown`](WorkerPool::shutdown)) answers the jobs still queued with
//! [`JobError::Cancelled`]; the jobs already running finish and are answered as usual.
//!
//! ```
//! use reactor::component::{JobError, JobId, WorkerPool};
//! use reactor::{Ctx, Kernel, Session};
//!
//! let mut kernel = Kernel::new()?;
//! let pool = WorkerPool::builder().threads(2).build(&mut kernel)?;
//! kernel.create(
//!     Session::new(pool)
//!         .on("_start", |ctx: &mut Ctx<'_, WorkerPool>| {
//!             let pool = ctx.heap().clone();
//!             // Runs on a worker thread; the kernel goes on meanwhile.
//!             pool.run(ctx, "summed", || (1..=100u64).sum::<u64>()).unwrap();
//!         })
//!         .on("summed", |ctx: &mut Ctx<'_, WorkerPool>| {
//!             let _id: JobId = *ctx.arg(0).unwrap();
//!             let sum = ctx.arg::<Result<u64, JobError>>(1).unwrap();
//!             assert_eq!(*sum, Ok(5050));
//!         }),
//! )?;
//! kernel.run()?;
//! # Ok::<(), reactor::Error>(())
//! ```

use crate::error::Error;
use crate::kernel::KernelFn;
use crate::{Kernel, Poster, SessionId};
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The reference tag a session's outstanding jobs keep it alive with.
pub const WORKER_POOL_TAG: &str = "worker_pool";

/// How long an idle worker waits for a job before it exits, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A job's number, unique within its pool: `ARG0` of its result event.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct JobId(u64);

impl JobId {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job #{}", self.0)
    }
}

/// Why a job has no value (in `ARG1` of its result event).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// The closure panicked; the panic's message.
    Panicked(String),
    /// The pool was shut down before the job started.
    Cancelled,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(m) => write!(f, "job panicked: {m}"),
            JobError::Cancelled => f.write_str("job cancelled: the pool was shut down"),
        }
    }
}

impl std::error::Error for JobError {}

/// Why [`WorkerPool::run`] refused a job.
#[derive(Debug)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool's queue is full ([`WorkerPoolBuilder::max_queued`]).
    Full,
    /// The pool has been shut down.
    ShutDown,
    /// Called outside a handler, or the kernel refused the session's reference.
    Kernel(Error),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Full => f.write_str("the worker pool's queue is full"),
            PoolError::ShutDown => f.write_str("the worker pool is shut down"),
            PoolError::Kernel(e) => write!(f, "worker pool: {e}"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Kernel(e) => Some(e),
            _ => None,
        }
    }
}

/// A queued job: run (`true`) or cancelled (`false`), it gives what the kernel's thread
/// must do with its outcome.
type Job = Box<dyn FnOnce(bool) -> KernelFn + Send>;

struct State {
    queue: VecDeque<Job>,
    workers: usize,
    idle: usize,
    /// Jobs being run right now.
    running: usize,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    poster: Poster,
    idle_timeout: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn worker_loop(shared: &Shared) {
    let mut state = shared.lock();
    'work: loop {
        let mut deadline = None;
        let job = loop {
            if let Some(job) = state.queue.pop_front() {
                break job;
            }
            if state.shutdown {
                break 'work;
            }
            let now = Instant::now();
            let until = *deadline.get_or_insert(now + shared.idle_timeout);
            if now >= until {
                break 'work;
            }
            state.idle += 1;
            state = match shared.work.wait_timeout(state, until - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
            state.idle -= 1;
        };
        state.running += 1;
        drop(state);
        let deliver = job(true);
        // The kernel may be gone; then so is everyone who waited for the answer.
        let _ = shared.poster.run(deliver);
        state = shared.lock();
        state.running -= 1;
    }
    state.workers -= 1;
}

/// Configures a [`WorkerPool`].
#[derive(Clone, Debug)]
pub struct WorkerPoolBuilder {
    threads: usize,
    max_queued: Option<usize>,
    idle_timeout: Duration,
    name: String,
}

impl WorkerPoolBuilder {
    /// At most this many worker threads (default 4; 0 is taken as 1): POE::Component::
    /// Pool::Thread's `MaxThreads`.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// At most this many jobs waiting for a thread (default: no limit); past it
    /// [`WorkerPool::run`] fails with [`PoolError::Full`].
    pub fn max_queued(mut self, n: usize) -> Self {
        self.max_queued = Some(n);
        self
    }

    /// How long an idle worker waits for a job before it exits (default
    /// [`DEFAULT_IDLE_TIMEOUT`]).
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// The name of the worker threads (default `"worker-pool"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Makes the pool for `kernel`'s sessions. No thread starts until a job comes.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the kernel's waker cannot be made ([`Kernel::poster`]).
    pub fn build(self, kernel: &mut Kernel) -> Result<WorkerPool, Error> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                workers: 0,
                idle: 0,
                running: 0,
                shutdown: false,
            }),
            work: Condvar::new(),
            poster: kernel.poster()?,
            idle_timeout: self.idle_timeout,
        });
        Ok(WorkerPool(Rc::new(Inner {
            shared,
            config: self,
            next: std::cell::Cell::new(1),
        })))
    }
}

struct Inner {
    shared: Arc<Shared>,
    config: WorkerPoolBuilder,
    next: std::cell::Cell<u64>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        shut_down(&self.shared);
    }
}

/// Ends a pool: no new jobs, the queued ones answered [`JobError::Cancelled`].
fn shut_down(shared: &Shared) {
    let cancelled: Vec<Job> = {
        let mut state = shared.lock();
        if state.shutdown {
            return;
        }
        state.shutdown = true;
        state.queue.drain(..).collect()
    };
    shared.work.notify_all();
    for job in cancelled {
        let _ = shared.poster.run(job(false));
    }
}

/// A bounded pool of worker threads for one kernel's sessions; see the
/// [module documentation](self). A cheap handle: clone it into the sessions that use it.
#[derive(Clone)]
pub struct WorkerPool(Rc<Inner>);

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.shared.lock();
        f.debug_struct("WorkerPool")
            .field("threads", &self.0.config.threads)
            .field("workers", &s.workers)
            .field("queued", &s.queue.len())
            .field("running", &s.running)
            .finish()
    }
}

impl WorkerPool {
    /// A builder with the defaults: 4 threads, no queue limit, idle workers exit after
    /// 10 s.
    pub fn builder() -> WorkerPoolBuilder {
        WorkerPoolBuilder {
            threads: 4,
            max_queued: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            name: "worker-pool".to_owned(),
        }
    }

    /// Runs `job` on a worker thread and posts its value to the active session as `event`:
    /// `ARG0` = the returned [`JobId`], `ARG1` = `Result<T, JobError>`. The session is kept
    /// alive (a reference tagged [`WORKER_POOL_TAG`]) until the result is queued for it.
    ///
    /// # Errors
    ///
    /// [`PoolError::Kernel`] outside a handler, [`PoolError::Full`] when the queue is at
    /// its limit, [`PoolError::ShutDown`] after [`shutdown`](WorkerPool::shutdown).
    pub fn run<T, F>(&self, kernel: &mut Kernel, event: &str, job: F) -> Result<JobId, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if event.is_empty() {
            return Err(PoolError::Kernel(Error::InvalidArgument(
                "empty event name",
            )));
        }
        let session = kernel.active_session();
        if session.is_kernel() {
            return Err(PoolError::Kernel(Error::NoActiveSession));
        }
        let inner = &self.0;
        {
            let state = inner.shared.lock();
            if state.shutdown {
                return Err(PoolError::ShutDown);
            }
            if inner
                .config
                .max_queued
                .is_some_and(|max| state.queue.len() >= max)
            {
                return Err(PoolError::Full);
            }
        }
        kernel
            .refcount_increment(session, WORKER_POOL_TAG)
            .map_err(PoolError::Kernel)?;
        let id = JobId(inner.next.get());
        inner.next.set(id.0 + 1);
        let event = event.to_owned();
        let boxed: Job = Box::new(move |run: bool| {
            let outcome = if run {
                catch_unwind(AssertUnwindSafe(job)).map_err(|p| JobError::Panicked(panic_text(p)))
            } else {
                Err(JobError::Cancelled)
            };
            deliver(session, event, id, outcome)
        });
        let spawn = {
            let mut state = inner.shared.lock();
            state.queue.push_back(boxed);
            let spawn = state.queue.len() > state.idle && state.workers < inner.config.threads;
            if spawn {
                state.workers += 1;
            }
            spawn
        };
        inner.shared.work.notify_one();
        if spawn {
            self.spawn_worker();
        }
        Ok(id)
    }

    fn spawn_worker(&self) {
        let shared = Arc::clone(&self.0.shared);
        let spawned = std::thread::Builder::new()
            .name(self.0.config.name.clone())
            .spawn(move || worker_loop(&shared));
        if let Err(e) = spawned {
            log::warn!("worker pool: cannot start a thread: {e}");
            let mut state = self.0.shared.lock();
            state.workers -= 1;
            if state.workers == 0 {
                // Nobody would ever run the queued jobs: answer them now.
                let jobs: Vec<Job> = state.queue.drain(..).collect();
                drop(state);
                for job in jobs {
                    let _ = self.0.shared.poster.run(job(false));
                }
            }
        }
    }

    /// Stops taking jobs and answers the queued ones with [`JobError::Cancelled`]; running
    /// jobs finish and are answered. Idle workers exit at once, busy ones after their job.
    pub fn shutdown(&self) {
        shut_down(&self.0.shared);
    }

    /// Jobs waiting for a thread.
    pub fn queued(&self) -> usize {
        self.0.shared.lock().queue.len()
    }

    /// Jobs being run right now.
    pub fn running(&self) -> usize {
        self.0.shared.lock().running
    }

    /// Worker threads alive.
    pub fn workers(&self) -> usize {
        self.0.shared.lock().workers
    }
}

/// What the kernel's thread does with a job's outcome: post it to the session that asked,
/// then let go of the session (the queued event holds it from there).
fn deliver<T: Send + 'static>(
    session: SessionId,
    event: String,
    id: JobId,
    outcome: Result<T, JobError>,
) -> KernelFn {
    Box::new(move |k: &mut Kernel| {
        if k.post(session, &event, (id, outcome)).is_err() {
            log::debug!("worker pool: {id} finished for a session that is gone");
        }
        let _ = k.refcount_decrement(session, WORKER_POOL_TAG);
    })
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
