//! Non-blocking host name lookups for the keep-alive manager.
//!
//! The manager runs on a single-threaded kernel and must never wait in `getaddrinfo`.
//! [`Resolver`] hands each lookup to a small pool of worker threads, and a worker that
//! finishes one tells the owner through a wake-up function given to [`Resolver::new`]:
//!
//! 1. [`Resolver::start`] queues a lookup under a caller-chosen id;
//! 2. a worker calls the wake-up function when answers are ready and none has been
//!    announced since the last [`Resolver::drain`]: one call per batch of answers, on the
//!    worker's thread. The manager's function posts an event to the manager's session
//!    through the kernel's [`Poster`](reactor::Poster);
//! 3. [`Resolver::drain`] returns every answer that is ready.
//!
//! Workers start on demand (never more than the configured limit), exit after being idle
//! for a while, and are detached: dropping the [`Resolver`] never waits for a thread stuck
//! in `getaddrinfo`, and no worker keeps the process alive.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::sync::{mpsc, Arc, Mutex};
//! use std::time::Duration;
//! use keepalive::resolver::{Resolver, ResolverKind};
//!
//! let kind = ResolverKind::Custom(Arc::new(|_host: &str| Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])));
//! // A kernel would post an event through its `Poster`; here, a channel.
//! let (tx, woken) = mpsc::channel();
//! let tx = Mutex::new(tx);
//! let mut resolver = Resolver::new(kind, 2, move || {
//!     let _ = tx.lock().unwrap().send(());
//! })
//! .unwrap();
//! resolver.start(7, "example.test");
//! assert_eq!(resolver.pending(), 1);
//! let mut answers = resolver.drain();
//! while answers.is_empty() {
//!     woken.recv_timeout(Duration::from_secs(5)).unwrap();
//!     answers = resolver.drain();
//! }
//! assert_eq!(answers, vec![(7, Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]))]);
//! assert_eq!(resolver.pending(), 0);
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{IpAddr, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// One lookup's answer: the host's addresses, or the resolver's error text.
pub type Answer = Result<Vec<IpAddr>, String>;

/// How long an idle worker thread waits for work before it exits.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The prefix std puts before `gai_strerror`'s text in a failed lookup's error.
const GAI_PREFIX: &str = "failed to lookup address information: ";

/// What a worker calls when answers are ready ([`Resolver::new`]).
pub type WakeFn = dyn Fn() + Send + Sync;

/// A custom lookup function: host -> addresses or an error text.
pub type LookupFn = dyn Fn(&str) -> Result<Vec<IpAddr>, String> + Send + Sync;

/// What resolves host names: the system's getaddrinfo, or a function (tests, custom DNS).
#[derive(Clone, Default)]
pub enum ResolverKind {
    /// getaddrinfo on worker threads.
    #[default]
    System,
    /// A user function run on the worker threads: host -> addresses or an error text.
    Custom(Arc<LookupFn>),
}

impl fmt::Debug for ResolverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolverKind::System => f.write_str("System"),
            ResolverKind::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl ResolverKind {
    /// Looks `host` up on the calling thread, which blocks until the answer is known.
    ///
    /// [`ResolverKind::System`] answers with the addresses `getaddrinfo` returns,
    /// deduplicated and with IPv4 before IPv6 (otherwise in the resolver's order), or with
    /// `gai_strerror`'s text (such as `"Name or service not known"`). A
    /// [`ResolverKind::Custom`] function's answer is returned as it is; if the function
    /// panics, the answer is an error naming the panic.
    pub fn resolve_blocking(&self, host: &str) -> Answer {
        match self {
            ResolverKind::System => system_lookup(host),
            ResolverKind::Custom(lookup) => {
                match panic::catch_unwind(AssertUnwindSafe(|| lookup(host))) {
                    Ok(answer) => answer,
                    Err(payload) => {
                        let text = if let Some(s) = payload.downcast_ref::<&str>() {
                            (*s).to_owned()
                        } else if let Some(s) = payload.downcast_ref::<String>() {
                            s.clone()
                        } else {
                            "unknown panic".to_owned()
                        };
                        Err(format!("resolver function panicked: {text}"))
                    }
                }
            }
        }
    }
}

/// `getaddrinfo` through std, with the answer shaped as PoCo::Resolver gives it.
fn system_lookup(host: &str) -> Answer {
    match (host, 0u16).to_socket_addrs() {
        Ok(addrs) => Ok(order_addresses(addrs.map(|a| a.ip()))),
        Err(e) => Err(gai_message(&e)),
    }
}

/// Drops repeated addresses (keeping the first) and puts IPv4 before IPv6, stably.
fn order_addresses(addrs: impl IntoIterator<Item = IpAddr>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for addr in addrs {
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    out.sort_by_key(IpAddr::is_ipv6);
    out
}

/// The resolver's own error text: std's message without its "failed to lookup ..." prefix.
fn gai_message(e: &io::Error) -> String {
    let text = e.to_string();
    match text.strip_prefix(GAI_PREFIX) {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// A queued lookup: the internal sequence number and the host.
struct Job {
    seq: u64,
    host: String,
}

/// What the owner and the workers share under one lock.
struct State {
    /// Lookups not yet taken by a worker, oldest first.
    queue: VecDeque<Job>,
    /// Finished answers not yet drained, by sequence number.
    results: Vec<(u64, Answer)>,
    /// Worker threads alive (or being spawned).
    workers: usize,
    /// Workers waiting for a job.
    idle: usize,
    /// The owner was woken since the last drain.
    wake_pending: bool,
    /// The owner is gone: workers exit and answers are dropped.
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a job is queued or on shutdown.
    work: Condvar,
    /// Signalled when a worker exits.
    exited: Condvar,
    kind: ResolverKind,
    idle_timeout: Duration,
    /// Tells the owner answers are ready.
    wake: Box<WakeFn>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the owner must be woken (by [`Shared::wake`], after unlocking): not if a
    /// wake-up is pending already, or the owner is gone.
    fn needs_wake(state: &mut State) -> bool {
        if state.wake_pending || state.shutdown {
            return false;
        }
        state.wake_pending = true;
        true
    }

    /// Calls the owner's wake-up function; never with the lock held.
    fn wake(&self) {
        (self.wake)();
    }
}

/// A worker thread's life: take jobs until idle for too long or the owner is gone.
fn worker_loop(shared: &Shared) {
    let mut state = shared.lock();
    'work: loop {
        let mut deadline = None;
        let job = loop {
            if state.shutdown {
                break 'work;
            }
            if let Some(job) = state.queue.pop_front() {
                break job;
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
        drop(state);
        let answer = shared.kind.resolve_blocking(&job.host);
        state = shared.lock();
        if state.shutdown {
            break;
        }
        state.results.push((job.seq, answer));
        if Shared::needs_wake(&mut state) {
            drop(state);
            shared.wake();
            state = shared.lock();
        }
    }
    state.workers -= 1;
    drop(state);
    shared.exited.notify_all();
}

/// Non-blocking DNS lookups: a lazily grown pool of worker threads and a wake-up function.
///
/// See the [module documentation](self) for how the kernel drives it.
pub struct Resolver {
    shared: Arc<Shared>,
    max_threads: usize,
    next_seq: u64,
    /// Live lookups: sequence number -> caller's id.
    by_seq: HashMap<u64, u64>,
    /// Live lookups: caller's id -> sequence number.
    by_id: HashMap<u64, u64>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("kind", &self.shared.kind)
            .field("max_threads", &self.max_threads)
            .field("workers", &self.workers())
            .field("pending", &self.pending())
            .finish()
    }
}

impl Resolver {
    /// `threads` = max worker threads (>=1; 0 is taken as 1). Workers start lazily on
    /// demand and exit after being idle ~10 s ([`DEFAULT_IDLE_TIMEOUT`]) or when the
    /// Resolver is dropped; they never keep the process alive (dropping the Resolver does
    /// not wait for threads stuck in getaddrinfo: they are detached).
    ///
    /// `wake` is called on a worker's thread when an answer is ready and the owner has not
    /// been woken since its last [`drain`](Resolver::drain); it is not called once the
    /// Resolver is dropped, except by a worker already on its way to calling it.
    pub fn new(
        kind: ResolverKind,
        threads: usize,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> io::Result<Resolver> {
        Resolver::with_idle_timeout(kind, threads, DEFAULT_IDLE_TIMEOUT, wake)
    }

    /// Like [`Resolver::new`], with idle workers exiting after `idle_timeout`.
    pub fn with_idle_timeout(
        kind: ResolverKind,
        threads: usize,
        idle_timeout: Duration,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> io::Result<Resolver> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                results: Vec::new(),
                workers: 0,
                idle: 0,
                wake_pending: false,
                shutdown: false,
            }),
            work: Condvar::new(),
            exited: Condvar::new(),
            kind,
            idle_timeout,
            wake: Box::new(wake),
        });
        Ok(Resolver {
            shared,
            max_threads: threads.max(1),
            next_seq: 0,
            by_seq: HashMap::new(),
            by_id: HashMap::new(),
        })
    }

    /// Starts looking up `host`; the answer comes back under `id` from [`drain`].
    /// Starting an `id` that is still pending cancels the earlier lookup first.
    ///
    /// [`drain`]: Resolver::drain
    pub fn start(&mut self, id: u64, host: &str) {
        if self.by_id.contains_key(&id) {
            self.cancel(id);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_seq.insert(seq, id);
        self.by_id.insert(id, seq);
        let spawn = {
            let mut state = self.shared.lock();
            state.queue.push_back(Job {
                seq,
                host: host.to_owned(),
            });
            // More queued jobs than idle workers to take them: all workers are busy.
            let spawn = state.queue.len() > state.idle && state.workers < self.max_threads;
            if spawn {
                state.workers += 1;
            }
            spawn
        };
        self.shared.work.notify_one();
        if spawn {
            self.spawn_worker();
        }
    }

    /// Starts one worker thread (already counted in `workers`).
    fn spawn_worker(&self) {
        let shared = Arc::clone(&self.shared);
        let spawned = thread::Builder::new()
            .name("resolver".to_owned())
            .spawn(move || worker_loop(&shared));
        // The handle is dropped: the thread is detached.
        if let Err(e) = spawned {
            log::warn!("resolver: cannot start a worker thread: {e}");
            let mut state = self.shared.lock();
            state.workers -= 1;
            if state.workers == 0 {
                // Nobody would ever take the queued lookups: fail them now.
                let text = format!("cannot start a resolver thread: {e}");
                while let Some(job) = state.queue.pop_front() {
                    state.results.push((job.seq, Err(text.clone())));
                }
                if Shared::needs_wake(&mut state) {
                    drop(state);
                    self.shared.wake();
                }
            }
        }
    }

    /// Forget lookup `id`: its answer, if it arrives later, is dropped by [`drain`]. A
    /// lookup already running in getaddrinfo cannot be interrupted; a queued one is removed
    /// and never runs. Unknown ids are ignored.
    ///
    /// [`drain`]: Resolver::drain
    pub fn cancel(&mut self, id: u64) {
        let Some(seq) = self.by_id.remove(&id) else {
            return;
        };
        self.by_seq.remove(&seq);
        let mut state = self.shared.lock();
        if let Some(pos) = state.queue.iter().position(|job| job.seq == seq) {
            state.queue.remove(pos);
        } else {
            state.results.retain(|(s, _)| *s != seq);
        }
    }

    /// Lookups started and neither answered (drained) nor cancelled.
    pub fn pending(&self) -> usize {
        self.by_id.len()
    }

    /// Worker threads currently alive (at most the `threads` given to [`Resolver::new`]).
    pub fn workers(&self) -> usize {
        self.shared.lock().workers
    }

    /// Returns every finished, non-cancelled answer since the last call, in the order
    /// they finished. An answer that finishes after this takes the answers wakes the owner
    /// again.
    pub fn drain(&mut self) -> Vec<(u64, Answer)> {
        let results = {
            let mut state = self.shared.lock();
            state.wake_pending = false;
            std::mem::take(&mut state.results)
        };
        results
            .into_iter()
            .filter_map(|(seq, answer)| {
                let id = self.by_seq.remove(&seq)?;
                self.by_id.remove(&id);
                Some((id, answer))
            })
            .collect()
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.shutdown = true;
        state.queue.clear();
        state.results.clear();
        drop(state);
        self.shared.work.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::mpsc;

    const LIMIT: Duration = Duration::from_secs(5);

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    /// A resolver whose wake-ups arrive on the receiver.
    fn new_res(kind: ResolverKind, threads: usize) -> (Resolver, mpsc::Receiver<()>) {
        new_res_idle(kind, threads, DEFAULT_IDLE_TIMEOUT)
    }

    fn new_res_idle(
        kind: ResolverKind,
        threads: usize,
        idle: Duration,
    ) -> (Resolver, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let res = Resolver::with_idle_timeout(kind, threads, idle, move || {
            let _ = tx.lock().unwrap().send(());
        })
        .unwrap();
        (res, rx)
    }

    /// Waits (for wake-ups, bounded) until `want` answers were drained.
    fn collect(res: &mut Resolver, woken: &mpsc::Receiver<()>, want: usize) -> Vec<(u64, Answer)> {
        let deadline = Instant::now() + LIMIT;
        let mut got = res.drain();
        while got.len() < want {
            let now = Instant::now();
            assert!(now < deadline, "only {} of {want} answers", got.len());
            let _ = woken.recv_timeout(deadline - now);
            got.extend(res.drain());
        }
        got
    }

    /// Waits (bounded) until every worker of `shared` has exited.
    fn wait_no_workers(shared: &Shared) {
        let deadline = Instant::now() + LIMIT;
        let mut state = shared.lock();
        while state.workers > 0 {
            let now = Instant::now();
            assert!(now < deadline, "{} workers still alive", state.workers);
            state = shared.exited.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    /// A gate the custom function waits on until the test opens it.
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        cond: Condvar,
    }

    impl Gate {
        fn wait(&self) {
            let guard = self.open.lock().unwrap();
            let _guard = self
                .cond
                .wait_timeout_while(guard, LIMIT, |open| !*open)
                .unwrap();
        }
        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.cond.notify_all();
        }
    }

    /// What [`gated`] returns: the kind, its gate, the hosts it was called with, and a
    /// receiver told each host as its lookup starts.
    type Gated = (
        ResolverKind,
        Arc<Gate>,
        Arc<Mutex<Vec<String>>>,
        mpsc::Receiver<String>,
    );

    /// A custom resolver that records each host, reports it entered, and blocks on the
    /// gate; it answers 10.0.0.<first byte of the host>.
    fn gated() -> Gated {
        let gate = Arc::new(Gate::default());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let (g, c) = (Arc::clone(&gate), Arc::clone(&calls));
        let kind = ResolverKind::Custom(Arc::new(move |host: &str| {
            c.lock().unwrap().push(host.to_owned());
            let _ = tx.send(host.to_owned());
            g.wait();
            Ok(vec![v4(10, 0, 0, host.as_bytes()[0])])
        }));
        (kind, gate, calls, rx)
    }

    fn entered(rx: &mpsc::Receiver<String>) -> String {
        rx.recv_timeout(LIMIT).expect("lookup did not start")
    }

    #[test]
    fn custom_answers_reach_drain() {
        let kind = ResolverKind::Custom(Arc::new(|host: &str| match host {
            "good" => Ok(vec![v4(192, 0, 2, 1), IpAddr::V6(Ipv6Addr::LOCALHOST)]),
            "empty" => Ok(vec![]),
            _ => Err("no such host".to_owned()),
        }));
        let (mut res, woken) = new_res(kind, 2);
        assert_eq!(res.workers(), 0, "workers start lazily");
        res.start(1, "good");
        res.start(2, "empty");
        res.start(3, "bad");
        assert_eq!(res.pending(), 3);
        let mut got = collect(&mut res, &woken, 3);
        got.sort_by_key(|(id, _)| *id);
        assert_eq!(
            got,
            vec![
                (
                    1,
                    Ok(vec![v4(192, 0, 2, 1), IpAddr::V6(Ipv6Addr::LOCALHOST)])
                ),
                (2, Ok(vec![])),
                (3, Err("no such host".to_owned())),
            ]
        );
        assert_eq!(res.pending(), 0);
        assert!(res.drain().is_empty());
    }

    #[test]
    fn answers_between_drains_wake_the_owner_once() {
        let kind = ResolverKind::Custom(Arc::new(|_: &str| Ok(vec![v4(127, 0, 0, 1)])));
        let (mut res, woken) = new_res_idle(kind, 4, Duration::from_millis(20));
        for id in 0..50 {
            res.start(id, "h");
        }
        // Once every worker has gone idle and exited, every answer is in.
        wait_no_workers(&res.shared);
        assert_eq!(woken.try_iter().count(), 1, "one wake-up for 50 answers");
        assert_eq!(res.drain().len(), 50);
        res.start(50, "h");
        // The wake-up comes after the answer is in (the worker calls it unlocked): wait for
        // it, not for the answer, or it may arrive after a drain that found the answer.
        woken
            .recv_timeout(LIMIT)
            .expect("a wake-up for the next answer");
        assert_eq!(res.drain().len(), 1);
        assert!(woken.try_recv().is_err(), "and only one");
    }

    #[test]
    fn cancelled_queued_lookup_never_runs() {
        let (kind, gate, calls, rx) = gated();
        let (mut res, woken) = new_res(kind, 1);
        res.start(1, "one");
        assert_eq!(entered(&rx), "one");
        res.start(2, "two");
        res.start(3, "three");
        assert_eq!(res.pending(), 3);
        res.cancel(2);
        res.cancel(99); // unknown: ignored
        assert_eq!(res.pending(), 2);
        gate.open();
        let mut got = collect(&mut res, &woken, 2);
        got.sort_by_key(|(id, _)| *id);
        assert_eq!(
            got,
            vec![
                (1, Ok(vec![v4(10, 0, 0, b'o')])),
                (3, Ok(vec![v4(10, 0, 0, b't')]))
            ]
        );
        assert_eq!(*calls.lock().unwrap(), vec!["one", "three"]);
        assert_eq!(res.pending(), 0);
        assert!(res.drain().is_empty());
    }

    #[test]
    fn cancelled_running_lookup_answer_is_dropped() {
        let (kind, gate, calls, rx) = gated();
        let (mut res, woken) = new_res(kind, 1);
        res.start(1, "one");
        assert_eq!(entered(&rx), "one");
        res.start(2, "two");
        res.cancel(1);
        assert_eq!(res.pending(), 1);
        gate.open();
        // One worker: lookup 1 finishes before lookup 2, so its answer would show up here.
        let got = collect(&mut res, &woken, 1);
        assert_eq!(got, vec![(2, Ok(vec![v4(10, 0, 0, b't')]))]);
        assert_eq!(*calls.lock().unwrap(), vec!["one", "two"]);
        assert!(res.drain().is_empty());
    }

    #[test]
    fn restarted_id_gets_only_the_new_answer() {
        let (kind, gate, _calls, rx) = gated();
        let (mut res, woken) = new_res(kind, 1);
        res.start(5, "alpha");
        assert_eq!(entered(&rx), "alpha");
        res.start(5, "beta"); // replaces the running lookup
        assert_eq!(res.pending(), 1);
        gate.open();
        let got = collect(&mut res, &woken, 1);
        assert_eq!(got, vec![(5, Ok(vec![v4(10, 0, 0, b'b')]))]);
        assert_eq!(res.pending(), 0);
    }

    #[test]
    fn workers_are_lazy_and_limited() {
        let (kind, gate, _calls, rx) = gated();
        let (mut res, woken) = new_res(kind, 3);
        assert_eq!(res.workers(), 0);
        for id in 0..10 {
            res.start(id, "x");
        }
        assert_eq!(res.workers(), 3);
        for _ in 0..3 {
            entered(&rx);
        }
        assert_eq!(res.pending(), 10);
        gate.open();
        let got = collect(&mut res, &woken, 10);
        let ids: HashSet<u64> = got.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, (0..10).collect());
        assert!(res.workers() <= 3);
    }

    #[test]
    fn idle_workers_exit_and_come_back() {
        let kind = ResolverKind::Custom(Arc::new(|_: &str| Ok(vec![v4(127, 0, 0, 1)])));
        let (mut res, woken) = new_res_idle(kind, 2, Duration::from_millis(20));
        for id in 0..4 {
            res.start(id, "h");
        }
        assert_eq!(collect(&mut res, &woken, 4).len(), 4);
        wait_no_workers(&res.shared);
        assert_eq!(res.workers(), 0);
        res.start(9, "h");
        assert_eq!(
            collect(&mut res, &woken, 1),
            vec![(9, Ok(vec![v4(127, 0, 0, 1)]))]
        );
    }

    #[test]
    fn drop_does_not_wait_for_busy_workers() {
        let (kind, gate, calls, rx) = gated();
        let (mut res, _woken) = new_res(kind, 2);
        for (id, host) in ["a", "b", "c"].iter().enumerate() {
            res.start(id as u64, host);
        }
        entered(&rx);
        entered(&rx);
        let shared = Arc::clone(&res.shared);
        let t0 = Instant::now();
        drop(res);
        assert!(t0.elapsed() < Duration::from_secs(1));
        gate.open();
        wait_no_workers(&shared);
        // The queued lookup was discarded with the resolver.
        assert_eq!(calls.lock().unwrap().len(), 2);
    }

    #[test]
    fn thousand_concurrent_lookups_each_answered_once() {
        let kind = ResolverKind::Custom(Arc::new(|host: &str| {
            let n: u32 = host.trim_start_matches('h').parse().map_err(|_| "bad")?;
            Ok(vec![IpAddr::V4(Ipv4Addr::from(n))])
        }));
        let (mut res, woken) = new_res(kind, 8);
        for id in 0..1000u64 {
            res.start(id, &format!("h{id}"));
        }
        assert_eq!(res.pending(), 1000);
        assert!(res.workers() <= 8);
        let got = collect(&mut res, &woken, 1000);
        assert_eq!(got.len(), 1000);
        let mut seen = HashSet::new();
        for (id, answer) in got {
            assert!(seen.insert(id), "id {id} answered twice");
            assert_eq!(answer, Ok(vec![IpAddr::V4(Ipv4Addr::from(id as u32))]));
        }
        assert_eq!(res.pending(), 0);
        assert!(res.drain().is_empty());
    }

    #[test]
    fn panicking_custom_function_gives_an_error() {
        let kind = ResolverKind::Custom(Arc::new(|host: &str| {
            if host == "boom" {
                panic!("kaboom");
            }
            Ok(vec![v4(1, 2, 3, 4)])
        }));
        let (mut res, woken) = new_res(kind, 1);
        res.start(1, "boom");
        res.start(2, "fine");
        let mut got = collect(&mut res, &woken, 2);
        got.sort_by_key(|(id, _)| *id);
        assert_eq!(
            got,
            vec![
                (1, Err("resolver function panicked: kaboom".to_owned())),
                (2, Ok(vec![v4(1, 2, 3, 4)])),
            ]
        );
    }

    #[test]
    fn system_resolves_localhost_ipv4_first() {
        let (mut res, woken) = new_res(ResolverKind::default(), 2);
        res.start(1, "localhost");
        let got = collect(&mut res, &woken, 1);
        let addrs = match &got[..] {
            [(1, Ok(addrs))] => addrs.clone(),
            other => panic!("unexpected answer {other:?}"),
        };
        assert!(addrs.contains(&v4(127, 0, 0, 1)), "{addrs:?}");
        assert!(addrs[0].is_ipv4(), "{addrs:?}");
        assert!(addrs
            .windows(2)
            .all(|w| !(w[0].is_ipv6() && w[1].is_ipv4())));
    }

    #[test]
    fn system_address_literals() {
        let (mut res, woken) = new_res(ResolverKind::System, 2);
        res.start(1, "192.0.2.7");
        res.start(2, "::1");
        let mut got = collect(&mut res, &woken, 2);
        got.sort_by_key(|(id, _)| *id);
        assert_eq!(
            got,
            vec![
                (1, Ok(vec![v4(192, 0, 2, 7)])),
                (2, Ok(vec![IpAddr::V6(Ipv6Addr::LOCALHOST)])),
            ]
        );
    }

    #[test]
    fn addresses_are_deduplicated_ipv4_first() {
        let a6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let b6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let input = vec![a6, v4(1, 1, 1, 1), b6, a6, v4(2, 2, 2, 2), v4(1, 1, 1, 1)];
        assert_eq!(
            order_addresses(input),
            vec![v4(1, 1, 1, 1), v4(2, 2, 2, 2), a6, b6]
        );
        assert!(order_addresses(Vec::new()).is_empty());
    }

    #[test]
    fn gai_prefix_is_stripped() {
        let e = io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(gai_message(&e), "Name or service not known");
        let e = io::Error::other("something else");
        assert_eq!(gai_message(&e), "something else");
    }

    #[test]
    fn debug_formats() {
        assert_eq!(format!("{:?}", ResolverKind::default()), "System");
        let kind = ResolverKind::Custom(Arc::new(|_: &str| Ok(vec![])));
        assert_eq!(format!("{kind:?}"), "Custom(..)");
        let (res, _woken) = new_res(kind, 0);
        let text = format!("{res:?}");
        assert!(text.contains("max_threads: 1"), "{text}");
        assert!(text.contains("pending: 0"), "{text}");
    }
}
