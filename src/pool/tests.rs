//! The pool's bookkeeping (`keepalive::pool`), driven without sockets.
//!
//! - `t01_..` to `t51_..`: the scheduling side of the upstream Keepalive tests
//!   (keepalive-tests.md §B), with the socket layer's part played by hand;
//!   `c_..`: the probe scenarios of §C that are about scheduling.
//! - `b1_..` to `b16_..`: regression tests for the Perl bugs that live in the bookkeeping.
//! - `prop_..`: random call sequences; invariants after every step, exactly-once answers at
//!   the end.
//!
//! Every test goes through `Sim`, which mirrors the socket layer: it keeps its own model of
//! the sockets and requests from the actions alone, and after every call checks the model
//! against the pool (`check_invariants`, the stats, the limits, no head-of-line stall, no
//! answer after deallocate or shutdown, none twice).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use crate::pool::{
    Action, AllocateError, CallError, CloseReason, ConnId, ConnState, Failure, Gauges, KeyField,
    LookupId, Origin, Outcome, Pool, PoolKey, RequestId, RequestSpec, RequestStage, Settings,
    SettingsError, ECONNREFUSED, ETIMEDOUT,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Harness.

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(addr: &str, port: u16) -> PoolKey {
    PoolKey::new("http", addr, port)
}

const LOCAL: &str = "127.0.0.1";
const P: u16 = 31_000;

/// The socket layer's view, rebuilt from the actions alone.
struct Sim {
    pool: Pool,
    now: Duration,
    allocated: Vec<RequestId>,
    /// Requests that asked for a new connection only.
    fresh: BTreeSet<RequestId>,
    pending: BTreeSet<RequestId>,
    answers: BTreeMap<RequestId, (RequestStage, Outcome)>,
    deallocated: BTreeSet<RequestId>,
    connecting: BTreeMap<ConnId, RequestId>,
    in_use: BTreeSet<ConnId>,
    idle: BTreeSet<ConnId>,
    lookups: BTreeMap<LookupId, String>,
    seen_conns: BTreeSet<ConnId>,
    retired_conns: Vec<ConnId>,
    retired_lookups: Vec<LookupId>,
    timer: Option<Duration>,
    shut: bool,
}

impl Sim {
    fn new(settings: Settings) -> Self {
        Sim {
            pool: Pool::new(settings).unwrap(),
            now: Duration::ZERO,
            allocated: Vec::new(),
            fresh: BTreeSet::new(),
            pending: BTreeSet::new(),
            answers: BTreeMap::new(),
            deallocated: BTreeSet::new(),
            connecting: BTreeMap::new(),
            in_use: BTreeSet::new(),
            idle: BTreeSet::new(),
            lookups: BTreeMap::new(),
            seen_conns: BTreeSet::new(),
            retired_conns: Vec::new(),
            retired_lookups: Vec::new(),
            timer: None,
            shut: false,
        }
    }

    fn with(f: impl FnOnce(&mut Settings)) -> Self {
        let mut s = Settings::default();
        f(&mut s);
        Sim::new(s)
    }

    /// Applies one call's actions to the model, checking each against it. `freed` is the
    /// socket the call gave back (it must be accounted for exactly once).
    fn run(&mut self, actions: Vec<Action>, freed: Option<ConnId>) -> Vec<Action> {
        let mut limbo = freed;
        for a in &actions {
            match a {
                Action::Resolve { lookup, host } => {
                    assert!(!self.shut, "lookup after shutdown");
                    assert!(
                        self.lookups.insert(*lookup, host.clone()).is_none(),
                        "{lookup} started twice"
                    );
                }
                Action::CancelResolve { lookup } => {
                    assert!(
                        self.lookups.remove(lookup).is_some(),
                        "{lookup} not pending"
                    );
                    self.retired_lookups.push(*lookup);
                }
                Action::Connect { conn, request, .. } => {
                    assert!(!self.shut, "connect after shutdown");
                    assert!(self.pending.contains(request), "connect for {request}");
                    assert!(self.seen_conns.insert(*conn), "{conn} issued twice");
                    self.connecting.insert(*conn, *request);
                }
                Action::AbortConnect { conn } => {
                    assert!(self.connecting.remove(conn).is_some(), "abort {conn}");
                    self.retired_conns.push(*conn);
                }
                Action::Respond {
                    request,
                    stage,
                    outcome,
                } => {
                    assert!(!self.shut, "{request} answered after shutdown");
                    assert!(
                        self.pending.remove(request),
                        "{request} answered twice, after deallocate, or never allocated"
                    );
                    self.answers.insert(*request, (*stage, outcome.clone()));
                    if let Outcome::Connected { origin, .. } = outcome {
                        assert!(
                            !self.fresh.contains(request) || *origin == Origin::New,
                            "{request} wanted a new connection and got one {origin:?}"
                        );
                    }
                    if let Outcome::Connected { conn, origin } = outcome {
                        match origin {
                            Origin::New => {
                                assert_eq!(self.connecting.remove(conn), Some(*request));
                                assert_eq!(*stage, RequestStage::Connecting);
                            }
                            Origin::Immediate | Origin::Deferred => {
                                if limbo == Some(*conn) {
                                    limbo = None;
                                } else {
                                    assert!(self.idle.remove(conn), "{conn} handed out, not idle");
                                }
                                let want = if *origin == Origin::Immediate {
                                    RequestStage::Allocating
                                } else {
                                    RequestStage::Queued
                                };
                                assert_eq!(*stage, want);
                            }
                        }
                        assert!(self.in_use.insert(*conn), "{conn} handed out twice");
                    }
                }
                Action::WatchIdle { conn } => {
                    assert_eq!(limbo, Some(*conn), "watch of a socket not just freed");
                    limbo = None;
                    self.idle.insert(*conn);
                }
                Action::Close { conn, .. } => {
                    if limbo == Some(*conn) {
                        limbo = None;
                    } else {
                        assert!(self.idle.remove(conn), "closed {conn}, which is not idle");
                    }
                    self.retired_conns.push(*conn);
                }
                Action::SetTimer { at } => self.timer = *at,
            }
        }
        assert_eq!(
            limbo, None,
            "freed socket neither reused, pooled nor closed"
        );
        self.check();
        actions
    }

    fn check(&self) {
        if let Err(e) = self.pool.check_invariants() {
            panic!("invariant broken: {e}");
        }
        let st = self.pool.stats();
        let g = st.total;
        assert_eq!(g.in_use, self.in_use.len(), "in use");
        assert_eq!(g.idle, self.idle.len(), "idle");
        assert_eq!(g.connecting, self.connecting.len(), "connecting");
        assert_eq!(
            g.queued + g.resolving + g.connecting,
            self.pending.len(),
            "pending"
        );
        assert_eq!(g.resolving > 0, !self.lookups.is_empty(), "lookups");
        assert_eq!(self.timer, self.pool.next_deadline(), "timer as reported");
        for r in self.connecting.values() {
            assert!(self.pending.contains(r), "{r} connects but is not pending");
        }
        let s = self.pool.settings();
        assert!(g.open() <= s.max_open, "max_open exceeded: {g:?}");
        let mut sum = Gauges::default();
        for h in &st.hosts {
            let hg = h.gauges;
            let busy = hg.in_use + hg.connecting;
            assert!(busy <= s.max_per_host, "{}: max_per_host exceeded", h.key);
            if hg.queued > 0 {
                assert_eq!(hg.idle, 0, "{}: waiters beside idle sockets", h.key);
                assert!(
                    busy >= s.max_per_host || (g.open() >= s.max_open && g.idle == 0),
                    "{}: waits although it could be served (head-of-line stall)",
                    h.key
                );
            }
            sum.in_use += hg.in_use;
            sum.idle += hg.idle;
            sum.connecting += hg.connecting;
            sum.queued += hg.queued;
            sum.resolving += hg.resolving;
        }
        assert_eq!(sum, g, "per-key numbers do not add up");
        if self.shut {
            assert!(self.pending.is_empty() && self.connecting.is_empty());
            assert!(self.idle.is_empty() && self.lookups.is_empty());
        }
    }

    // -- calls --------------------------------------------------------------------------

    fn alloc(&mut self, key: PoolKey) -> (RequestId, Vec<Action>) {
        self.alloc_spec(RequestSpec::new(key), |_| true)
    }

    fn alloc_spec(
        &mut self,
        spec: RequestSpec,
        check: impl FnMut(ConnId) -> bool,
    ) -> (RequestId, Vec<Action>) {
        let fresh = spec.fresh;
        let (id, actions) = self.pool.allocate(spec, self.now, check).expect("allocate");
        assert!(!self.allocated.contains(&id), "{id} issued twice");
        if fresh {
            self.fresh.insert(id);
        }
        self.allocated.push(id);
        self.pending.insert(id);
        let actions = self.run(actions, None);
        (id, actions)
    }

    fn dealloc(&mut self, r: RequestId) -> Vec<Action> {
        let actions = self.pool.deallocate(r, self.now).expect("deallocate");
        assert!(self.pending.remove(&r));
        self.deallocated.insert(r);
        self.run(actions, None)
    }

    fn resolve(&mut self, l: LookupId, addrs: &[IpAddr]) -> Vec<Action> {
        self.resolve_checked(l, addrs, |_| true)
    }

    fn resolve_checked(
        &mut self,
        l: LookupId,
        addrs: &[IpAddr],
        check: impl FnMut(ConnId) -> bool,
    ) -> Vec<Action> {
        let actions = self
            .pool
            .resolved(l, addrs, self.now, check)
            .expect("resolved");
        assert!(self.lookups.remove(&l).is_some());
        self.retired_lookups.push(l);
        self.run(actions, None)
    }

    fn resolve_fail(&mut self, l: LookupId, err: &str) -> Vec<Action> {
        let actions = self
            .pool
            .resolve_failed(l, err, self.now)
            .expect("resolve_failed");
        assert!(self.lookups.remove(&l).is_some());
        self.retired_lookups.push(l);
        self.run(actions, None)
    }

    fn connected(&mut self, c: ConnId) -> Vec<Action> {
        let actions = self.pool.connected(c, self.now).expect("connected");
        self.run(actions, None)
    }

    fn connect_fail(&mut self, c: ConnId, f: Failure) -> Vec<Action> {
        let actions = self
            .pool
            .connect_failed(c, f, self.now)
            .expect("connect_failed");
        assert!(self.connecting.remove(&c).is_some());
        self.retired_conns.push(c);
        self.run(actions, None)
    }

    fn free(&mut self, c: ConnId, reusable: bool) -> Vec<Action> {
        let actions = self.pool.free(c, reusable, self.now).expect("free");
        assert!(self.in_use.remove(&c));
        self.run(actions, Some(c))
    }

    fn activity(&mut self, c: ConnId) -> Vec<Action> {
        let actions = self.pool.idle_activity(c, self.now).expect("idle_activity");
        self.run(actions, None)
    }

    fn advance(&mut self, d: Duration) -> Vec<Action> {
        self.now += d;
        let actions = self.pool.advance(self.now);
        self.run(actions, None)
    }

    fn shutdown(&mut self) -> Vec<Action> {
        let actions = self.pool.shutdown(self.now);
        let actions = self.run(actions, None);
        self.shut = true;
        self.check();
        actions
    }

    /// Ends a test: every timer runs out, the pool shuts down, sockets still held are
    /// freed; then every request was answered exactly once or deallocated, and nothing is
    /// left.
    fn finish(&mut self) {
        if !self.shut {
            self.advance(secs(100_000));
            assert!(self.pending.is_empty(), "requests left unanswered");
            assert!(self.idle.is_empty(), "idle sockets outlived keep_alive");
            self.shutdown();
        }
        for c in self.in_use.clone() {
            let a = self.free(c, true);
            assert_eq!(closes(&a), vec![(c, CloseReason::Shutdown)]);
        }
        for r in &self.allocated {
            assert!(
                self.answers.contains_key(r) != self.deallocated.contains(r),
                "{r}: answered {} / deallocated {}",
                self.answers.contains_key(r),
                self.deallocated.contains(r)
            );
        }
        assert_eq!(
            self.answers.len() + self.deallocated.len(),
            self.allocated.len()
        );
        let st = self.pool.stats();
        assert_eq!(st.total, Gauges::default());
        assert!(st.hosts.is_empty(), "key entries left: {:?}", st.hosts);
        assert_eq!(self.pool.next_deadline(), None);
    }

    fn answer(&self, r: RequestId) -> &Outcome {
        &self
            .answers
            .get(&r)
            .unwrap_or_else(|| panic!("{r} unanswered"))
            .1
    }

    fn stage_of(&self, r: RequestId) -> RequestStage {
        self.answers
            .get(&r)
            .unwrap_or_else(|| panic!("{r} unanswered"))
            .0
    }

    fn conn_of(&self, r: RequestId) -> (ConnId, Origin) {
        match self.answer(r) {
            Outcome::Connected { conn, origin } => (*conn, *origin),
            other => panic!("{r}: {other:?}"),
        }
    }

    fn failure_of(&self, r: RequestId) -> Failure {
        match self.answer(r) {
            Outcome::Failed(f) => f.clone(),
            other => panic!("{r}: {other:?}"),
        }
    }

    /// Allocates, answers the lookup if one starts, and completes the connect: returns the
    /// request and its new socket.
    fn held(&mut self, key: PoolKey) -> (RequestId, ConnId) {
        let (r, mut a) = self.alloc(key);
        if let Some(&l) = resolves(&a).first() {
            a = self.resolve(l, &[ip(LOCAL)]);
        }
        let c = one_connect(&a);
        self.connected(c);
        assert_eq!(self.conn_of(r), (c, Origin::New));
        (r, c)
    }
}

fn connects(a: &[Action]) -> Vec<(ConnId, RequestId)> {
    a.iter()
        .filter_map(|a| match a {
            Action::Connect { conn, request, .. } => Some((*conn, *request)),
            _ => None,
        })
        .collect()
}

fn one_connect(a: &[Action]) -> ConnId {
    let c = connects(a);
    assert_eq!(c.len(), 1, "{a:?}");
    c[0].0
}

fn resolves(a: &[Action]) -> Vec<LookupId> {
    a.iter()
        .filter_map(|a| match a {
            Action::Resolve { lookup, .. } => Some(*lookup),
            _ => None,
        })
        .collect()
}

fn one_resolve(a: &[Action]) -> LookupId {
    let l = resolves(a);
    assert_eq!(l.len(), 1, "{a:?}");
    l[0]
}

fn responses(a: &[Action]) -> Vec<RequestId> {
    a.iter()
        .filter_map(|a| match a {
            Action::Respond { request, .. } => Some(*request),
            _ => None,
        })
        .collect()
}

fn closes(a: &[Action]) -> Vec<(ConnId, CloseReason)> {
    a.iter()
        .filter_map(|a| match a {
            Action::Close { conn, reason } => Some((*conn, *reason)),
            _ => None,
        })
        .collect()
}

fn aborts(a: &[Action]) -> Vec<ConnId> {
    a.iter()
        .filter_map(|a| match a {
            Action::AbortConnect { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

fn watched(a: &[Action]) -> Vec<ConnId> {
    a.iter()
        .filter_map(|a| match a {
            Action::WatchIdle { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

/// The actions other than timer updates.
fn work(a: &[Action]) -> Vec<&Action> {
    a.iter()
        .filter(|a| !matches!(a, Action::SetTimer { .. }))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Upstream scenarios (t/NN_*.t), scheduling side.

/// 01_socket_reuse: a new connection, freed into the pool, is reused at once by the next
/// request, with no lookup.
#[test]
fn t01_socket_reuse() {
    let mut s = Sim::new(Settings::default());
    let (r1, a) = s.alloc(key("localhost", P));
    assert_eq!(s.pool.request_stage(r1), Some(RequestStage::Resolving));
    let l = one_resolve(&a);
    let c = one_connect(&s.resolve(l, &[ip(LOCAL)]));
    assert_eq!(s.pool.request_stage(r1), Some(RequestStage::Connecting));
    s.connected(c);
    assert_eq!(s.conn_of(r1), (c, Origin::New));
    assert!(!Origin::New.is_reused());
    assert_eq!(watched(&s.free(c, true)), vec![c]);

    let (r2, a) = s.alloc(key("localhost", P));
    assert!(resolves(&a).is_empty(), "the pool is checked before DNS");
    assert_eq!(s.conn_of(r2), (c, Origin::Immediate));
    assert_eq!(s.stage_of(r2), RequestStage::Allocating);
    assert_eq!(Origin::Immediate.as_str(), "immediate");
    assert_eq!(s.pool.request_stage(r2), None, "answered at once");
    s.finish();
}

/// A retry after a reused socket was found closed must not get another pooled socket:
/// `fresh_connection` skips idle sockets when asked, when queued, and when a socket is
/// freed while it waits (that one goes to the next ordinary waiter, or into the pool).
#[test]
fn fresh_connection_requests_never_get_a_pooled_socket() {
    let mut s = Sim::with(|s| s.max_per_host = 2);
    let (r1, a) = s.alloc(key(LOCAL, P));
    let c1 = one_connect(&a);
    s.connected(c1);
    assert_eq!(s.conn_of(r1), (c1, Origin::New));
    s.free(c1, true);

    // Asked with an idle socket in the pool: a new connection all the same.
    let (r2, a) = s.alloc_spec(RequestSpec::new(key(LOCAL, P)).fresh_connection(), |_| true);
    let c2 = one_connect(&a);
    assert_ne!(c2, c1);
    s.connected(c2);
    assert_eq!(s.conn_of(r2), (c2, Origin::New));

    // An ordinary request still takes the idle one.
    let (r3, _) = s.alloc(key(LOCAL, P));
    assert_eq!(s.conn_of(r3), (c1, Origin::Immediate));

    // Both in use (max_per_host 2): a fresh request queues, then an ordinary one behind it.
    let (r4, a) = s.alloc_spec(RequestSpec::new(key(LOCAL, P)).fresh_connection(), |_| true);
    assert!(work(&a).is_empty(), "waits for room: {a:?}");
    let (r5, a) = s.alloc(key(LOCAL, P));
    assert!(work(&a).is_empty(), "waits behind it: {a:?}");
    // A freed socket passes the fresh waiter over, to the ordinary one...
    let a = s.free(c1, true);
    assert_eq!(responses(&a), vec![r5]);
    assert_eq!(s.conn_of(r5), (c1, Origin::Deferred));
    assert_eq!(s.pool.request_stage(r4), Some(RequestStage::Queued));
    // ...and the next free makes room for the fresh one's own connection: the freed socket
    // would take that room idle, so it is closed.
    let a = s.free(c2, true);
    assert!(closes(&a).contains(&(c2, CloseReason::Evicted)), "{a:?}");
    let c4 = one_connect(&a);
    assert!(c4 != c1 && c4 != c2);
    s.connected(c4);
    assert_eq!(s.conn_of(r4), (c4, Origin::New));
    s.free(c1, true);
    s.free(c4, true);
    s.finish();
}

/// 02_socket_queue: max_open 1 queues the second request, which gets the first socket
/// deferred; a request for another port evicts the idle socket and is refused.
#[test]
fn t02_socket_queue() {
    let mut s = Sim::with(|s| s.max_open = 1);
    let (r1, a) = s.alloc(key(LOCAL, P));
    let c1 = one_connect(&a);
    let (r2, a) = s.alloc(key(LOCAL, P));
    assert!(work(&a).is_empty(), "second request waits: {a:?}");
    assert_eq!(s.pool.request_stage(r2), Some(RequestStage::Queued));
    s.connected(c1);
    assert_eq!(s.conn_of(r1), (c1, Origin::New));
    let a = s.free(c1, true);
    assert_eq!(responses(&a), vec![r2]);
    assert_eq!(s.conn_of(r2), (c1, Origin::Deferred));
    assert_eq!(Origin::Deferred.as_str(), "deferred");
    s.free(c1, true);

    let (r3, _) = s.alloc(key(LOCAL, P));
    assert_eq!(s.conn_of(r3), (c1, Origin::Immediate));
    let (r4, a) = s.alloc(key(LOCAL, P + 1));
    assert!(work(&a).is_empty(), "max_open: the fourth waits");
    let a = s.free(c1, true);
    assert_eq!(closes(&a), vec![(c1, CloseReason::Evicted)]);
    assert!(watched(&a).is_empty(), "evicted at once, never watched");
    let c2 = one_connect(&a);
    s.connect_fail(c2, Failure::refused());
    let f = s.failure_of(r4);
    assert_eq!(
        (f.function.as_str(), f.errnum, f.errstr.as_str()),
        ("connect", Some(ECONNREFUSED), "Connection refused")
    );
    s.finish();
}

/// 03_each_queue: max_per_host 1; two requests share one lookup; the second is served
/// deferred; a request whose lookup ends after the free is deferred too.
#[test]
fn t03_each_queue() {
    let mut s = Sim::with(|s| s.max_per_host = 1);
    let (r1, a) = s.alloc(key("localhost", P));
    let l = one_resolve(&a);
    let (r2, a) = s.alloc(key("localhost", P));
    assert!(resolves(&a).is_empty(), "piggybacks on the pending lookup");
    let a = s.resolve(l, &[ip(LOCAL)]);
    let c = one_connect(&a);
    assert_eq!(connects(&a)[0].1, r1);
    assert_eq!(s.pool.request_stage(r2), Some(RequestStage::Queued));
    s.connected(c);
    s.free(c, true);
    assert_eq!(s.conn_of(r2), (c, Origin::Deferred));
    s.free(c, true);

    // Lookup finishes after the free: the idle socket is taken, "deferred".
    let (r3, _) = s.alloc(key("localhost", P));
    assert_eq!(s.conn_of(r3), (c, Origin::Immediate));
    let (r4, a) = s.alloc(key("localhost", P));
    let l = one_resolve(&a);
    s.free(c, true);
    s.resolve(l, &[ip(LOCAL)]);
    assert_eq!(s.conn_of(r4), (c, Origin::Deferred));
    assert_eq!(s.stage_of(r4), RequestStage::Queued);

    // Lookup finishes before the free: the request queues per host, then "deferred".
    let (r5, a) = s.alloc(key("localhost", P));
    let l = one_resolve(&a);
    s.resolve(l, &[ip(LOCAL)]);
    assert_eq!(s.pool.request_stage(r5), Some(RequestStage::Queued));
    s.free(c, true);
    assert_eq!(s.conn_of(r5), (c, Origin::Deferred));
    s.finish();
}

/// 04_free_each: per-key counts across frees; a socket freed dirty (SHUT_RD, closed) is
/// discarded, the other one pooled and reused.
#[test]
fn t04_free_each() {
    let mut s = Sim::new(Settings::default());
    let (r1, a) = s.alloc(key("localhost", P));
    let l = one_resolve(&a);
    let (r2, _) = s.alloc(key("localhost", P));
    let a = s.resolve(l, &[ip(LOCAL)]);
    let c = connects(&a);
    assert_eq!(c.iter().map(|x| x.1).collect::<Vec<_>>(), vec![r1, r2]);
    // Completion order is not FIFO.
    s.connected(c[1].0);
    s.connected(c[0].0);
    let a = s.free(c[1].0, false);
    assert_eq!(closes(&a), vec![(c[1].0, CloseReason::NotReusable)]);
    s.free(c[0].0, true);
    let st = s.pool.host_stats(&key("localhost", P)).unwrap();
    assert_eq!((st.gauges.in_use, st.gauges.idle), (0, 1));

    let (r3, _) = s.alloc(key("localhost", P));
    assert_eq!(s.conn_of(r3), (c[0].0, Origin::Immediate));
    let a = s.free(c[0].0, false);
    assert_eq!(closes(&a), vec![(c[0].0, CloseReason::NotReusable)]);
    assert!(s.pool.host_stats(&key("localhost", P)).is_none());
    assert_eq!(s.pool.stats().counters.not_reusable, 2);
    s.finish();
}

/// 06_activity: an idle socket that turns readable is dropped; the next request gets a
/// new connection. (If the data arrived before the free, the free itself discards it.)
#[test]
fn t06_activity() {
    let mut s = Sim::new(Settings::default());
    let (_, c1) = s.held(key(LOCAL, P));
    s.free(c1, true);
    let a = s.activity(c1);
    assert_eq!(closes(&a), vec![(c1, CloseReason::Activity)]);
    assert_eq!(s.pool.conn_state(c1), None);
    let (r2, a) = s.alloc(key(LOCAL, P));
    let c2 = one_connect(&a);
    assert_ne!(c1, c2);
    s.connected(c2);
    assert_eq!(s.conn_of(r2), (c2, Origin::New));
    // The data was already there at free time.
    let a = s.free(c2, false);
    assert_eq!(closes(&a), vec![(c2, CloseReason::NotReusable)]);
    let st = s.pool.stats().counters;
    assert_eq!((st.stale_discards, st.not_reusable), (1, 1));
    s.finish();
}

/// 07_keep_alive: with keep_alive 1 s the pooled socket is gone 2 s later; the next two
/// requests connect anew, concurrently.
#[test]
fn t07_keep_alive() {
    let mut s = Sim::with(|s| s.keep_alive = secs(1));
    let (_, c1) = s.held(key("localhost", P).with_origin("http", "x", 1));
    let a = s.free(c1, true);
    assert!(a.contains(&Action::SetTimer {
        at: Some(s.now + secs(1))
    }));
    let a = s.advance(secs(2));
    assert_eq!(closes(&a), vec![(c1, CloseReason::KeepAliveExpired)]);
    let k = key("localhost", P);
    let (r2, a) = s.alloc(k.clone());
    let l = one_resolve(&a);
    let (r3, _) = s.alloc(k);
    let a = s.resolve(l, &[ip(LOCAL)]);
    assert_eq!(connects(&a).len(), 2);
    for (c, _) in connects(&a) {
        s.connected(c);
    }
    assert_eq!(s.conn_of(r2).1, Origin::New);
    assert_eq!(s.conn_of(r3).1, Origin::New);
    assert_eq!(s.pool.stats().counters.expired, 1);
    s.finish();
}

/// 07 (cont.): keep-alive restarts at every free.
#[test]
fn t07_keep_alive_restarts_at_each_free() {
    let mut s = Sim::with(|s| s.keep_alive = secs(1));
    let (_, c) = s.held(key(LOCAL, P));
    s.free(c, true);
    s.advance(ms(900));
    let (r, _) = s.alloc(key(LOCAL, P));
    assert_eq!(s.conn_of(r), (c, Origin::Immediate));
    s.advance(ms(600));
    s.free(c, true); // at 1.5 s: expires at 2.5 s, not 1.0 s or 1.9 s
    assert!(closes(&s.advance(ms(900))).is_empty());
    assert_eq!(s.pool.conn_state(c), Some(ConnState::Idle));
    assert_eq!(
        closes(&s.advance(ms(100))),
        vec![(c, CloseReason::KeepAliveExpired)]
    );
    s.finish();
}

/// 08_quick_reuse: max_open 2 with two idle sockets for A; a request for B (after its own
/// lookup) evicts the least recently freed A socket.
#[test]
fn t08_quick_reuse() {
    let mut s = Sim::with(|s| s.max_open = 2);
    let a_key = key("localhost", P);
    let (r1, a) = s.alloc(a_key.clone());
    let l = one_resolve(&a);
    let (r2, _) = s.alloc(a_key.clone());
    let c = connects(&s.resolve(l, &[ip(LOCAL)]));
    s.connected(c[0].0);
    s.connected(c[1].0);
    assert_eq!(s.conn_of(r1).1, Origin::New);
    assert_eq!(s.conn_of(r2).1, Origin::New);
    s.free(c[0].0, true);
    s.free(c[1].0, true);
    let (r3, _) = s.alloc(a_key);
    assert_eq!(
        s.conn_of(r3),
        (c[1].0, Origin::Immediate),
        "most recently freed"
    );
    s.free(c[1].0, true);
    let (r4, a) = s.alloc(key("localhost", P + 1));
    let l = one_resolve(&a);
    let a = s.resolve(l, &[ip(LOCAL)]);
    assert_eq!(
        closes(&a),
        vec![(c[0].0, CloseReason::Evicted)],
        "LRU first"
    );
    let c4 = one_connect(&a);
    s.connected(c4);
    assert_eq!(s.conn_of(r4), (c4, Origin::New));
    s.finish();
}

/// 08 with address literals.
#[test]
fn t08_quick_reuse_literals() {
    let mut s = Sim::with(|s| s.max_open = 2);
    let (_, c1) = s.held(key(LOCAL, P));
    let (_, c2) = s.held(key(LOCAL, P));
    s.free(c1, true);
    s.free(c2, true);
    let (r3, _) = s.alloc(key(LOCAL, P));
    assert_eq!(s.conn_of(r3), (c2, Origin::Immediate));
    s.free(c2, true);
    let (r4, a) = s.alloc(key("localhost", P + 1));
    let l = one_resolve(&a);
    let a = s.resolve(l, &[ip(LOCAL)]);
    assert_eq!(closes(&a), vec![(c1, CloseReason::Evicted)], "LRU first");
    let c3 = one_connect(&a);
    s.connected(c3);
    assert_eq!(s.conn_of(r4), (c3, Origin::New));
    assert_eq!(s.pool.conn_state(c2), Some(ConnState::Idle));
    s.finish();
}

/// 09_timeout: a request that times out at once gets ("connect", 110); a refused connect
/// within its timeout gets ("connect", 111).
#[test]
fn t09_timeout() {
    let mut s = Sim::with(|s| s.timeout = Duration::from_nanos(1));
    let (r1, a) = s.alloc(key(LOCAL, P));
    let c1 = one_connect(&a);
    let a = s.advance(ms(1));
    assert_eq!(aborts(&a), vec![c1]);
    let f = s.failure_of(r1);
    assert_eq!(f, Failure::timeout());
    assert_eq!(
        (f.function.as_str(), f.errnum, f.errstr.as_str()),
        ("connect", Some(ETIMEDOUT), "Connection timed out")
    );
    let spec = RequestSpec::new(key(LOCAL, P + 1)).with_timeout(ms(500));
    let (r2, a) = s.alloc_spec(spec, |_| true);
    let c2 = one_connect(&a);
    s.advance(ms(100));
    s.connect_fail(c2, Failure::refused());
    assert_eq!(s.failure_of(r2).errnum, Some(ECONNREFUSED));
    assert!(work(&s.advance(secs(1))).is_empty(), "no second answer");
    s.finish();
}

/// 11_dead_socket: a socket freed after EOF is not reused; the blocked request connects.
#[test]
fn t11_dead_socket() {
    let mut s = Sim::with(|s| s.max_per_host = 1);
    let (r1, a) = s.alloc(key("localhost", P));
    let l = one_resolve(&a);
    let (r2, _) = s.alloc(key("localhost", P));
    let c1 = one_connect(&s.resolve(l, &[ip(LOCAL)]));
    s.connected(c1);
    assert_eq!(s.conn_of(r1), (c1, Origin::New));
    let a = s.free(c1, false);
    assert_eq!(closes(&a), vec![(c1, CloseReason::NotReusable)]);
    let c2 = one_connect(&a);
    s.connected(c2);
    assert_eq!(s.conn_of(r2), (c2, Origin::New));
    s.finish();
}

/// 12_extref: shutdown while a connection is held; freeing it afterwards closes it.
#[test]
fn t12_extref() {
    let mut s = Sim::new(Settings::default());
    let (_, c) = s.held(key(LOCAL, P));
    let a = s.shutdown();
    assert!(work(&a).is_empty(), "nothing pending: {a:?}");
    assert_eq!(s.pool.conn_state(c), Some(ConnState::InUse));
    let a = s.free(c, true);
    assert_eq!(closes(&a), vec![(c, CloseReason::Shutdown)]);
    s.finish();
}

/// 13_close: close() before the free means no reuse, even at max_open = max_per_host = 1
/// with the next request allocated while the first socket was still counted.
#[test]
fn t13_close() {
    let mut s = Sim::with(|s| {
        s.keep_alive = secs(1);
        s.max_open = 1;
        s.max_per_host = 1;
    });
    let (r1, a) = s.alloc(key("localhost", P));
    let l = one_resolve(&a);
    let c1 = one_connect(&s.resolve(l, &[ip(LOCAL)]));
    s.connected(c1);
    assert_eq!(s.conn_of(r1).1, Origin::New);
    let (r2, a) = s.alloc(key("localhost", P));
    let l = one_resolve(&a);
    s.free(c1, false);
    let c2 = one_connect(&s.resolve(l, &[ip(LOCAL)]));
    s.connected(c2);
    assert_eq!(s.conn_of(r2), (c2, Origin::New));
    s.finish();
}

/// 50_bisbee_timeout: a request timing out in DNS gets exactly one answer, "connect"; the
/// lookup's late failure is refused, not answered again.
#[test]
fn t50_bisbee_timeout() {
    let mut s = Sim::new(Settings::default());
    let spec = RequestSpec::new(key("seriously-hoping-this-never-resolves.fail", 80))
        .with_timeout(Duration::from_nanos(1));
    let (r, a) = s.alloc_spec(spec, |_| true);
    let l = one_resolve(&a);
    let a = s.advance(ms(1));
    assert_eq!(responses(&a), vec![r]);
    assert!(a.contains(&Action::CancelResolve { lookup: l }));
    assert_eq!(s.failure_of(r).function, "connect");
    assert_eq!(
        s.pool.resolve_failed(l, "Name or service not known", s.now),
        Err(CallError::UnknownLookup(l))
    );
    s.finish();
    assert_eq!(s.answers.len(), 1);
}

/// 51_reiss_reuse: max_open 2, max_per_host 2; while a socket is handed out deferred,
/// eviction for another key must not pick it.
#[test]
fn t51_reiss_reuse() {
    let mut s = Sim::with(|s| {
        s.max_open = 2;
        s.max_per_host = 2;
    });
    let a_key = key("localhost", P);
    let b_key = key("localhost", P + 1);
    let (f1, a) = s.alloc(a_key.clone());
    let la = one_resolve(&a);
    let (f2, _) = s.alloc(a_key.clone());
    let (f3, _) = s.alloc(a_key.clone());
    let c = connects(&s.resolve(la, &[ip(LOCAL)]));
    assert_eq!(c.len(), 2, "the third waits per host");
    // first/2 answers first; it allocates second-a and second-b, then frees.
    s.connected(c[1].0);
    assert_eq!(s.conn_of(f2).1, Origin::New);
    let (sa, a) = s.alloc(a_key.clone());
    let l2 = one_resolve(&a);
    let (sb, a) = s.alloc(b_key);
    assert!(resolves(&a).is_empty(), "same host name: one lookup");
    s.free(c[1].0, true);
    assert_eq!(s.conn_of(f3), (c[1].0, Origin::Deferred));
    s.free(c[1].0, true);
    s.connected(c[0].0);
    assert_eq!(s.conn_of(f1).1, Origin::New);
    s.free(c[0].0, true);
    // Both A sockets idle; c[0] is the most recently freed.
    let a = s.resolve(l2, &[ip(LOCAL)]);
    assert_eq!(s.conn_of(sa), (c[0].0, Origin::Deferred));
    assert_eq!(closes(&a), vec![(c[1].0, CloseReason::Evicted)]);
    let cb = one_connect(&a);
    s.connected(cb);
    assert_eq!(s.conn_of(sb), (cb, Origin::New));
    for r in [f1, f2, f3, sa, sb] {
        s.conn_of(r);
    }
    s.finish();
}

// ---------------------------------------------------------------------------------------------
// Probe scenarios (keepalive-tests.md §C) about scheduling.

/// C-J: under max_open 1, queued requests for B, C, B are served strictly in order, each
/// evicting the previous key's socket.
#[test]
fn c_j_fifo_under_max_open() {
    let mut s = Sim::with(|s| s.max_open = 1);
    let (_, ca) = s.held(key("127.0.0.1", P));
    let (r2, _) = s.alloc(key("127.0.0.2", P));
    let (r3, _) = s.alloc(key("127.0.0.3", P));
    let (r4, _) = s.alloc(key("127.0.0.2", P));
    let mut prev = ca;
    for r in [r2, r3, r4] {
        s.advance(ms(300));
        let a = s.free(prev, true);
        assert_eq!(closes(&a), vec![(prev, CloseReason::Evicted)]);
        let (c, req) = connects(&a)[0];
        assert_eq!(req, r);
        s.connected(c);
        assert_eq!(s.conn_of(r).1, Origin::New);
        prev = c;
    }
    let st = s.pool.stats().counters;
    assert_eq!(st.evictions, 3);
    assert_eq!(st.queue_wait_max, ms(900));
    s.finish();
}

/// C-E: the error triples.
#[test]
fn c_e_error_triples() {
    assert_eq!(
        Failure::timeout(),
        Failure::new("connect", Some(110), "Connection timed out")
    );
    assert_eq!(
        Failure::refused(),
        Failure::new("connect", Some(111), "Connection refused")
    );
    assert_eq!(
        Failure::no_address(),
        Failure::new("resolve", None, "Host has no address.")
    );
    let bind = Failure::new(
        "bind",
        Some(crate::pool::EADDRNOTAVAIL),
        "Cannot assign requested address",
    );
    assert_eq!(
        bind.to_string(),
        "bind error 99: Cannot assign requested address"
    );
    assert_eq!(
        Failure::resolve("Name or service not known").to_string(),
        "resolve error: Name or service not known"
    );

    let mut s = Sim::new(Settings::default());
    let (r1, a) = s.alloc(key("no-such-host.invalid", P));
    let l = one_resolve(&a);
    s.resolve_fail(l, "Name or service not known");
    assert_eq!(
        s.failure_of(r1),
        Failure::resolve("Name or service not known")
    );
    assert_eq!(s.stage_of(r1), RequestStage::Resolving);
    let (r2, a) = s.alloc(key("empty.example", P));
    let l = one_resolve(&a);
    s.resolve(l, &[]);
    assert_eq!(s.failure_of(r2), Failure::no_address());
    let (r3, a) = s.alloc(key(LOCAL, P));
    let c = one_connect(&a);
    s.connect_fail(c, bind.clone());
    assert_eq!(s.failure_of(r3), bind);
    assert_eq!(s.pool.stats().counters.resolve_failures, 2);
    s.finish();
}

/// The key is Perl's string, `for_*` included; keys differing only in origin are separate
/// pools.
#[test]
fn keys_include_the_origin() {
    let k = PoolKey::new("https", "proxy", 3128).with_origin("https", "example.com", 443);
    assert_eq!(k.to_string(), "https proxy 3128 for https example.com 443");
    assert_eq!(
        key("localhost", 80).to_string(),
        "http localhost 80 for http localhost 80"
    );
    let mut s = Sim::new(Settings::default());
    let (_, c) = s.held(key(LOCAL, P).with_origin("http", "a", 80));
    s.free(c, true);
    let (r, a) = s.alloc(key(LOCAL, P).with_origin("http", "b", 80));
    assert_eq!(connects(&a).len(), 1, "other origin, other pool");
    assert_eq!(s.pool.request_stage(r), Some(RequestStage::Connecting));
    assert_eq!(s.pool.conn_key(c).map(|k| k.for_addr.as_str()), Some("a"));
    s.finish();
}

// ---------------------------------------------------------------------------------------------
// Regressions for the Perl bugs (spec §14) that live in the bookkeeping.

/// B1: deallocate() of a pending request while an idle socket of its key was pooled died
/// with "Not a HASH reference". Here it cancels the request and leaves the idle socket
/// alone.
#[test]
fn b1_deallocate_beside_an_idle_socket() {
    let mut s = Sim::with(|s| s.max_per_host = 2);
    let k = key("localhost", P);
    let (_, c1) = s.held(k.clone());
    let (r2, a) = s.alloc(k.clone());
    let l = one_resolve(&a);
    s.free(c1, true);
    let a = s.dealloc(r2);
    assert_eq!(work(&a), vec![&Action::CancelResolve { lookup: l }]);
    assert_eq!(s.pool.conn_state(c1), Some(ConnState::Idle));
    let (r3, _) = s.alloc(k);
    assert_eq!(s.conn_of(r3), (c1, Origin::Immediate));
    s.finish();
}

/// B2: deallocate() during an unshared lookup cancelled it, yet the resolver answered
/// later and the manager died ("DNS: Unexpectedly undefined requests"). Here the lookup is
/// cancelled and a late answer is refused harmlessly; a shared lookup carries on for the
/// others.
#[test]
fn b2_deallocate_during_lookup() {
    let mut s = Sim::new(Settings::default());
    let (r1, a) = s.alloc(key("localhost", P));
    let l = one_resolve(&a);
    let a = s.dealloc(r1);
    assert!(a.contains(&Action::CancelResolve { lookup: l }));
    assert_eq!(
        s.pool.resolved(l, &[ip(LOCAL)], s.now, |_| true),
        Err(CallError::UnknownLookup(l))
    );
    // Shared: only the last one out cancels.
    let (r2, a) = s.alloc(key("localhost", P));
    let l2 = one_resolve(&a);
    let (r3, _) = s.alloc(key("localhost", P + 1));
    let a = s.dealloc(r2);
    assert!(work(&a).is_empty());
    let a = s.resolve(l2, &[ip(LOCAL)]);
    assert_eq!(connects(&a).len(), 1);
    assert_eq!(connects(&a)[0].1, r3);
    assert_eq!(s.pool.stats().counters.deallocated, 2);
    s.finish();
}

/// B3: deallocate() of an address-literal, queued or connecting request did nothing: the
/// answer came anyway. Here nothing follows it; an aborted connect reported later is
/// refused.
#[test]
fn b3_deallocate_queued_or_connecting_is_final() {
    let mut s = Sim::with(|s| s.max_per_host = 1);
    let (r1, a) = s.alloc(key(LOCAL, P));
    let c1 = one_connect(&a);
    let (r2, a) = s.alloc(key(LOCAL, P));
    assert!(connects(&a).is_empty());
    // Queued: leaves the queue.
    assert!(work(&s.dealloc(r2)).is_empty());
    // Connecting: the connect is aborted.
    let a = s.dealloc(r1);
    assert_eq!(aborts(&a), vec![c1]);
    assert_eq!(s.pool.connected(c1, s.now), Err(CallError::UnknownConn(c1)));
    assert_eq!(
        s.pool.deallocate(r1, s.now),
        Err(CallError::UnknownRequest(r1))
    );
    assert!(work(&s.advance(secs(1000))).is_empty());
    assert!(s.answers.is_empty());
    s.finish();
}

/// B3 (cont.): deallocating a connecting request frees its slot for the next waiter.
#[test]
fn b3_deallocate_connecting_starts_the_next_waiter() {
    let mut s = Sim::with(|s| s.max_per_host = 1);
    let (r1, a) = s.alloc(key(LOCAL, P));
    let c1 = one_connect(&a);
    let (r2, _) = s.alloc(key(LOCAL, P));
    let a = s.dealloc(r1);
    assert_eq!(aborts(&a), vec![c1]);
    let (c2, req) = connects(&a)[0];
    assert_eq!(req, r2);
    s.connected(c2);
    s.finish();
}

/// B4: a non-empty queue (a request blocked on its host) suppressed the wake-up, so a
/// request for another host with room waited for an unrelated free. Here it starts at once,
/// under both limits.
#[test]
fn b4_no_head_of_line_stall() {
    let mut s = Sim::with(|s| {
        s.max_per_host = 1;
        s.max_open = 3;
    });
    let (_, c1) = s.held(key("10.0.0.1", P));
    let (r2, a) = s.alloc(key("10.0.0.1", P));
    assert!(connects(&a).is_empty(), "blocked on its host");
    let (r3, a) = s.alloc(key("10.0.0.2", P));
    assert_eq!(connects(&a)[0].1, r3, "another host starts at once");
    let c3 = connects(&a)[0].0;
    let (r4, a) = s.alloc(key("10.0.0.3", P));
    let c4 = one_connect(&a);
    assert_eq!(connects(&a)[0].1, r4);
    // Now max_open (3) is reached: a fourth host waits for room...
    let (r5, a) = s.alloc(key("10.0.0.4", P));
    assert!(connects(&a).is_empty());
    // ...and gets the first room that frees, though r2 is older (r2 is still blocked).
    let a = s.connect_fail(c3, Failure::refused());
    assert_eq!(connects(&a)[0].1, r5);
    assert_eq!(s.pool.request_stage(r2), Some(RequestStage::Queued));
    s.connected(c4);
    let a = s.free(c1, true);
    assert_eq!(s.conn_of(r2), (c1, Origin::Deferred));
    assert!(connects(&a).is_empty());
    s.finish();
}

/// B5: timed-out requests stayed in the queue (and blocked wake-ups); their ids stayed
/// "active" so deallocate() still accepted them. Here they leave at once.
#[test]
fn b5_dead_entries_leave_the_queue() {
    let mut s = Sim::with(|s| s.max_per_host = 1);
    let (_, c1) = s.held(key("10.0.0.1", P));
    let spec = RequestSpec::new(key("10.0.0.1", P)).with_timeout(ms(300));
    let (r2, _) = s.alloc_spec(spec, |_| true);
    let a = s.advance(ms(300));
    assert_eq!(responses(&a), vec![r2]);
    assert_eq!(s.stage_of(r2), RequestStage::Queued);
    assert_eq!(
        s.pool
            .host_stats(&key("10.0.0.1", P))
            .unwrap()
            .gauges
            .queued,
        0
    );
    assert_eq!(
        s.pool.deallocate(r2, s.now),
        Err(CallError::UnknownRequest(r2))
    );
    s.advance(ms(300));
    let (r3, a) = s.alloc(key("10.0.0.2", P));
    assert_eq!(connects(&a)[0].1, r3, "served at once");
    let a = s.free(c1, true);
    assert_eq!(watched(&a), vec![c1], "no dead waiter takes the socket");
    s.finish();
}

/// B6: shutdown() with a timed-out request still queued released the requester twice.
/// Here a request is released once: answered by its timeout, untouched by the shutdown,
/// and no count underflows.
#[test]
fn b6_shutdown_after_timeout_releases_once() {
    let mut s = Sim::with(|s| s.max_per_host = 1);
    let (_, c1) = s.held(key(LOCAL, P));
    let spec = RequestSpec::new(key(LOCAL, P)).with_timeout(ms(200));
    let (r2, _) = s.alloc_spec(spec, |_| true);
    s.advance(ms(200));
    assert_eq!(s.failure_of(r2), Failure::timeout());
    s.advance(ms(300));
    let a = s.shutdown();
    assert!(responses(&a).is_empty());
    assert_eq!(s.pool.gauges().in_use, 1);
    s.free(c1, true);
    assert_eq!(s.pool.gauges(), Gauges::default());
    let st = s.pool.stats().counters;
    assert_eq!((st.timeouts, st.shutdown_cancelled), (1, 0));
    s.finish();
}

/// B7: connects in flight at shutdown() still delivered a connection (or a timeout)
/// afterwards. Here they are aborted and answered during the shutdown; a late report is
/// refused.
#[test]
fn b7_shutdown_aborts_connects_in_flight() {
    let mut s = Sim::with(|s| s.max_open = 1);
    let (_, ca) = s.held(key(LOCAL, P));
    let (r2, _) = s.alloc(key(LOCAL, P + 1));
    let a = s.free(ca, false);
    let c2 = one_connect(&a);
    let a = s.shutdown();
    assert_eq!(aborts(&a), vec![c2]);
    assert_eq!(s.failure_of(r2), Failure::shutdown());
    assert_eq!(s.stage_of(r2), RequestStage::Connecting);
    assert_eq!(s.pool.connected(c2, s.now), Err(CallError::UnknownConn(c2)));
    assert!(s.pool.advance(s.now + secs(1000)).is_empty());
    s.finish();
}

/// B8: after shutdown() idle sockets and sockets freed later stayed open, and queued or
/// lookup-pending requests never got an answer. Here every pending request is answered
/// once, in allocation order, idle sockets are closed, late frees closed, nothing after.
#[test]
fn b8_shutdown_answers_everything_and_closes_sockets() {
    let mut s = Sim::with(|s| s.max_per_host = 1);
    let (_, inuse) = s.held(key(LOCAL, P));
    let (_, spare) = s.held(key(LOCAL, P + 2));
    s.free(spare, true);
    let (queued, _) = s.alloc(key(LOCAL, P));
    let (connecting, a) = s.alloc(key("10.9.9.9", P));
    let cc = one_connect(&a);
    let (dns, a) = s.alloc(key("localhost", P));
    let l = one_resolve(&a);
    let a = s.shutdown();
    assert_eq!(responses(&a), vec![queued, connecting, dns]);
    assert_eq!(s.stage_of(queued), RequestStage::Queued);
    assert_eq!(s.stage_of(connecting), RequestStage::Connecting);
    assert_eq!(s.stage_of(dns), RequestStage::Resolving);
    for r in [queued, connecting, dns] {
        assert_eq!(s.failure_of(r), Failure::shutdown());
    }
    assert_eq!(aborts(&a), vec![cc]);
    assert!(a.contains(&Action::CancelResolve { lookup: l }));
    assert_eq!(closes(&a), vec![(spare, CloseReason::Shutdown)]);
    assert_eq!(a.last(), Some(&Action::SetTimer { at: None }));
    assert!(s.pool.is_shut_down());
    assert!(
        s.pool.shutdown(s.now).is_empty(),
        "second shutdown is a no-op"
    );
    assert_eq!(
        s.pool.allocate(key(LOCAL, P).into(), s.now, |_| true),
        Err(AllocateError::ShutDown)
    );
    assert_eq!(
        AllocateError::ShutDown.to_string(),
        "allocate() on shut-down connection manager"
    );
    let a = s.free(inuse, true);
    assert_eq!(closes(&a), vec![(inuse, CloseReason::Shutdown)]);
    assert_eq!(s.pool.stats().counters.shutdown_cancelled, 3);
    s.finish();
}

/// B9: a TLS wrap failure leaked the key's slot and skipped the wake-up. Reported as a
/// connect failure, it releases the slot and the next waiter starts.
#[test]
fn b9_tls_failure_releases_the_slot() {
    let mut s = Sim::with(|s| s.max_per_host = 1);
    let k = PoolKey::new("https", LOCAL, 443);
    let (r1, a) = s.alloc(k.clone());
    let c1 = one_connect(&a);
    let (r2, _) = s.alloc(k.clone());
    let a = s.connect_fail(c1, Failure::new("sslify", None, "handshake failed"));
    assert_eq!(s.failure_of(r1).function, "sslify");
    let (c2, req) = connects(&a)[0];
    assert_eq!(req, r2);
    s.connected(c2);
    let h = s.pool.host_stats(&k).unwrap();
    assert_eq!((h.gauges.in_use, h.gauges.connecting), (1, 0));
    assert_eq!(h.counters.connect_failures, 1);
    s.finish();
}

/// B11: zero limits meant "the default" and zero or empty fields were rejected by Perl's
/// truthiness. Here zero settings and missing fields are typed errors.
#[test]
fn b11_zero_settings_and_fields_are_typed_errors() {
    let bad = |f: fn(&mut Settings)| {
        let mut s = Settings::default();
        f(&mut s);
        Pool::new(s).err()
    };
    assert_eq!(
        bad(|s| s.max_per_host = 0),
        Some(SettingsError::ZeroMaxPerHost)
    );
    assert_eq!(bad(|s| s.max_open = 0), Some(SettingsError::ZeroMaxOpen));
    assert_eq!(
        bad(|s| s.keep_alive = Duration::ZERO),
        Some(SettingsError::ZeroKeepAlive)
    );
    assert_eq!(
        bad(|s| s.timeout = Duration::ZERO),
        Some(SettingsError::ZeroTimeout)
    );
    assert_eq!(
        bad(|s| s.connect_timeout = Some(Duration::ZERO)),
        Some(SettingsError::ZeroConnectTimeout)
    );
    assert_eq!(bad(|_| {}), None);
    let d = Settings::default();
    assert_eq!(
        (
            d.max_per_host,
            d.max_open,
            d.keep_alive,
            d.timeout,
            d.connect_timeout
        ),
        (4, 128, secs(15), secs(120), None)
    );
    assert_eq!(
        SettingsError::ZeroMaxOpen.to_string(),
        "new() needs a non-zero 'max_open'"
    );

    let mut pool = Pool::new(Settings::default()).unwrap();
    let t = Duration::ZERO;
    let mut try_key = |k: PoolKey| pool.allocate(k.into(), t, |_| true).err();
    assert_eq!(
        try_key(key("", 80)),
        Some(AllocateError::Missing(KeyField::Addr))
    );
    assert_eq!(
        try_key(PoolKey::new("", "h", 80)),
        Some(AllocateError::Missing(KeyField::Scheme))
    );
    assert_eq!(
        try_key(key("h", 0)),
        Some(AllocateError::Missing(KeyField::Port))
    );
    assert_eq!(
        try_key(key("h", 80).with_origin("http", "o", 0)),
        Some(AllocateError::Missing(KeyField::ForPort))
    );
    assert_eq!(
        AllocateError::Missing(KeyField::Addr).to_string(),
        "allocate() needs an 'addr'"
    );
    assert_eq!(
        AllocateError::Missing(KeyField::Port).to_string(),
        "allocate() needs a 'port'"
    );
    // "0" is a fine address (Perl rejected it as false).
    assert!(try_key(key("0", 80)).is_none());
    let spec = RequestSpec::new(key("h", 80)).with_timeout(Duration::ZERO);
    assert_eq!(
        pool.allocate(spec, t, |_| true).err(),
        Some(AllocateError::ZeroTimeout)
    );
    assert_eq!(
        pool.stats().counters.requests,
        1,
        "refused calls change nothing"
    );
    pool.check_invariants().unwrap();
}

/// B12: the pool handed out an arbitrary idle socket and evicted a random one of any key.
/// Here hand-out is LIFO (most recently freed) and eviction LRU (least recently freed).
#[test]
fn b12_lifo_hand_out_lru_eviction() {
    let mut s = Sim::with(|s| s.max_open = 3);
    let (_, c1) = s.held(key(LOCAL, P));
    let (_, c2) = s.held(key(LOCAL, P));
    let (_, c3) = s.held(key(LOCAL, P));
    s.free(c2, true);
    s.free(c3, true);
    s.free(c1, true);
    let (r, _) = s.alloc(key(LOCAL, P));
    assert_eq!(s.conn_of(r).0, c1, "most recently freed first");
    s.advance(ms(1));
    s.free(c1, true);
    // Free order now c2, c3, c1: two other-key requests evict c2, then c3.
    let (_, a) = s.alloc(key("10.0.0.2", P));
    assert_eq!(closes(&a), vec![(c2, CloseReason::Evicted)]);
    let (_, a) = s.alloc(key("10.0.0.3", P));
    assert_eq!(closes(&a), vec![(c3, CloseReason::Evicted)]);
    s.finish();
}

/// B13: the timeout error says "connect" whatever the stage (kept, test 50 relies on it);
/// the stage is now told apart by `Respond::stage`.
#[test]
fn b13_timeout_tells_the_stage() {
    let mut s = Sim::with(|s| {
        s.max_per_host = 1;
        s.timeout = secs(5);
    });
    let (dns, _) = s.alloc(key("slow.example", P));
    let (conn, a) = s.alloc(key(LOCAL, P));
    one_connect(&a);
    let (queued, _) = s.alloc(key(LOCAL, P));
    s.advance(secs(5));
    for (r, stage) in [
        (dns, RequestStage::Resolving),
        (conn, RequestStage::Connecting),
        (queued, RequestStage::Queued),
    ] {
        assert_eq!(s.failure_of(r), Failure::timeout());
        assert_eq!(s.stage_of(r), stage);
    }
    assert_eq!(s.pool.stats().counters.timeouts, 3);
    s.finish();
}

/// B14: an idle socket that went bad between its last check and the hand-out was given
/// out. Here the socket layer's check runs at hand-out: a refused socket is closed and the
/// next one, or a new connect, is used.
#[test]
fn b14_check_at_hand_out() {
    let mut s = Sim::new(Settings::default());
    let (_, c1) = s.held(key(LOCAL, P));
    let (_, c2) = s.held(key(LOCAL, P));
    s.free(c1, true);
    s.free(c2, true);
    let mut asked = Vec::new();
    let (r, a) = s.alloc_spec(key(LOCAL, P).into(), |c| {
        asked.push(c);
        c != c2
    });
    assert_eq!(asked, vec![c2, c1]);
    assert_eq!(closes(&a), vec![(c2, CloseReason::Stale)]);
    assert_eq!(s.conn_of(r), (c1, Origin::Immediate));
    s.free(c1, true);
    // All refused: a new connect.
    let (r2, a) = s.alloc_spec(key(LOCAL, P).into(), |_| false);
    assert_eq!(closes(&a), vec![(c1, CloseReason::Stale)]);
    let c3 = one_connect(&a);
    s.connected(c3);
    assert_eq!(s.conn_of(r2).1, Origin::New);
    s.free(c3, true);
    assert_eq!(s.pool.stats().counters.stale_discards, 2);
    s.finish();
}

/// B14 (cont.): after a lookup, an idle socket refused by the check is replaced by a
/// connect.
#[test]
fn b14_check_after_lookup() {
    let mut s = Sim::new(Settings::default());
    let k = key("localhost", P);
    let (_, c1) = s.held(k.clone());
    let (r2, a) = s.alloc(k.clone());
    let l = one_resolve(&a);
    s.free(c1, true);
    let a = s.resolve_checked(l, &[ip(LOCAL)], |_| false);
    assert_eq!(closes(&a), vec![(c1, CloseReason::Stale)]);
    let c2 = one_connect(&a);
    s.connected(c2);
    assert_eq!(s.conn_of(r2), (c2, Origin::New));
    s.finish();
}

/// B15: `new()` consumed a request id from a process-wide counter. Here ids are per pool
/// and construction consumes none; a retired id is never confused with its slot's next
/// occupant.
#[test]
fn b15_request_ids_are_per_pool_with_generations() {
    let mut p1 = Pool::new(Settings::default()).unwrap();
    let mut p2 = Pool::new(Settings::default()).unwrap();
    let (a, _) = p1
        .allocate(key(LOCAL, P).into(), Duration::ZERO, |_| true)
        .unwrap();
    let (b, _) = p2
        .allocate(key(LOCAL, P).into(), Duration::ZERO, |_| true)
        .unwrap();
    assert_eq!(a, b);
    assert_eq!((a.index(), a.generation()), (0, 0));
    p1.deallocate(a, Duration::ZERO).unwrap();
    let (c, _) = p1
        .allocate(key(LOCAL, P).into(), Duration::ZERO, |_| true)
        .unwrap();
    assert_eq!(
        (c.index(), c.generation()),
        (0, 1),
        "slot reused, new generation"
    );
    assert_eq!(
        p1.deallocate(a, Duration::ZERO),
        Err(CallError::UnknownRequest(a))
    );
    assert_eq!(p1.request_stage(c), Some(RequestStage::Connecting));
    assert_eq!(a.to_string(), "req#0.0");
}

/// B16: with the resolver shut down under it, allocate() croaked. Here a resolver failure is
/// an answer to the waiting requests, and the pool carries on.
#[test]
fn b16_resolver_failure_answers_the_waiters() {
    let mut s = Sim::new(Settings::default());
    let (r1, a) = s.alloc(key("a.example", P));
    let l = one_resolve(&a);
    let (r2, _) = s.alloc(key("a.example", P + 1));
    let a = s.resolve_fail(l, "component shut down");
    assert_eq!(responses(&a), vec![r1, r2]);
    assert_eq!(s.failure_of(r2), Failure::resolve("component shut down"));
    let (_, a) = s.alloc(key("a.example", P));
    one_resolve(&a);
    s.finish();
}

// ---------------------------------------------------------------------------------------------
// Timers, ids, stats, edges.

/// The request timeout covers lookup, queue and connect together, from allocate().
#[test]
fn request_timeout_spans_every_stage() {
    let mut s = Sim::with(|s| {
        s.max_per_host = 1;
        s.timeout = secs(10);
    });
    let (_, c1) = s.held(key("localhost", P));
    let (r, a) = s.alloc(key("localhost", P));
    let l = one_resolve(&a);
    s.advance(secs(4));
    s.resolve(l, &[ip(LOCAL)]);
    s.advance(secs(4));
    let a = s.free(c1, false);
    let c2 = one_connect(&a);
    assert_eq!(s.pool.request_stage(r), Some(RequestStage::Connecting));
    let a = s.advance(ms(1999));
    assert!(responses(&a).is_empty());
    let a = s.advance(ms(1));
    assert_eq!(aborts(&a), vec![c2]);
    assert_eq!(s.failure_of(r), Failure::timeout());
    assert_eq!(s.pool.stats().counters.queue_wait_total, secs(4));
    s.finish();
}

/// The connect timeout bounds one connect from its start, beside the request timeout.
#[test]
fn connect_timeout_is_separate() {
    let mut s = Sim::with(|s| {
        s.max_per_host = 1;
        s.connect_timeout = Some(secs(2));
    });
    let (_, c1) = s.held(key(LOCAL, P));
    let (r, _) = s.alloc(key(LOCAL, P));
    s.advance(secs(5));
    let a = s.free(c1, false);
    let c2 = one_connect(&a);
    assert!(a.contains(&Action::SetTimer {
        at: Some(s.now + secs(2))
    }));
    let a = s.advance(secs(2));
    assert_eq!(aborts(&a), vec![c2]);
    assert_eq!(s.failure_of(r), Failure::timeout());
    assert_eq!(s.stage_of(r), RequestStage::Connecting);
    // A connect that succeeds in time cancels its timer.
    let (r2, a) = s.alloc(key(LOCAL, P));
    let c3 = one_connect(&a);
    s.advance(secs(1));
    s.connected(c3);
    assert_eq!(s.conn_of(r2).1, Origin::New);
    assert!(work(&s.advance(secs(5))).is_empty());
    s.finish();
}

/// Calls with retired ids, or on sockets in the wrong state, are typed errors that change
/// nothing.
#[test]
fn bad_ids_and_states_are_typed_errors() {
    let mut s = Sim::with(|s| s.max_per_host = 1);
    let (r1, c1) = s.held(key(LOCAL, P));
    let (r2, a) = s.alloc(key(LOCAL, P + 1));
    let c2 = one_connect(&a);
    let before = s.pool.stats();
    let t = s.now;
    let p = &mut s.pool;
    assert_eq!(p.deallocate(r1, t), Err(CallError::UnknownRequest(r1)));
    assert_eq!(
        p.free(c2, true, t),
        Err(CallError::WrongState {
            conn: c2,
            expected: ConnState::InUse,
            actual: ConnState::Connecting
        })
    );
    assert_eq!(
        p.connected(c1, t),
        Err(CallError::WrongState {
            conn: c1,
            expected: ConnState::Connecting,
            actual: ConnState::InUse
        })
    );
    assert!(matches!(
        p.connect_failed(c1, Failure::refused(), t),
        Err(CallError::WrongState { .. })
    ));
    assert!(matches!(
        p.idle_activity(c1, t),
        Err(CallError::WrongState { .. })
    ));
    assert_eq!(p.stats(), before);
    assert_eq!(p.request_stage(r2), Some(RequestStage::Connecting));
    s.free(c1, true);
    let p = &mut s.pool;
    assert!(matches!(
        p.free(c1, true, t),
        Err(CallError::WrongState { .. })
    ));
    s.activity(c1);
    let p = &mut s.pool;
    assert_eq!(p.free(c1, true, t), Err(CallError::UnknownConn(c1)));
    assert_eq!(p.idle_activity(c1, t), Err(CallError::UnknownConn(c1)));
    assert_eq!(p.conn_state(c1), None);
    let e = p.free(c1, true, t).unwrap_err();
    assert_eq!(e.to_string(), format!("{c1} is not a live socket"));
    s.check();
    s.finish();
}

/// An earlier `now` than already seen is taken as the latest one; huge times saturate.
#[test]
fn time_is_clamped_and_saturates() {
    let mut s = Sim::with(|s| s.timeout = secs(10));
    s.now = secs(100);
    let (r, _) = s.alloc(key("slow.example", P));
    // Back in time: no deadline moves, nothing fires.
    let a = s
        .pool
        .allocate(key("slow.example", P).into(), secs(1), |_| true);
    let (r2, a) = a.unwrap();
    s.allocated.push(r2);
    s.pending.insert(r2);
    s.run(a, None);
    assert_eq!(s.pool.now(), secs(100));
    let a = s.advance(secs(10));
    assert_eq!(responses(&a), vec![r, r2]);
    // Near the end of time.
    s.now = Duration::MAX - secs(1);
    let (r3, _) = s.alloc(key("slow.example", P));
    assert_eq!(s.pool.next_deadline(), Some(Duration::MAX));
    s.now = Duration::MAX;
    let a = s.pool.advance(Duration::MAX);
    s.run(a, None);
    assert_eq!(s.failure_of(r3), Failure::timeout());
    let a = s.pool.shutdown(Duration::MAX);
    s.run(a, None);
    s.shut = true;
    s.finish();
}

/// The stats snapshot: per key and total gauges, reuse hits, stale discards, queue wait.
#[test]
fn stats_snapshot() {
    let mut s = Sim::with(|s| s.max_per_host = 1);
    let ka = key(LOCAL, P);
    let (_, c1) = s.held(ka.clone());
    let (r2, _) = s.alloc(ka.clone());
    let (_, a) = s.alloc(key("b.example", P));
    one_resolve(&a);
    let st = s.pool.stats();
    assert_eq!(
        st.total,
        Gauges {
            in_use: 1,
            idle: 0,
            connecting: 0,
            queued: 1,
            resolving: 1
        }
    );
    assert_eq!(st.hosts.len(), 2);
    assert_eq!(*st.hosts[0].key, key("127.0.0.1", P));
    assert_eq!(st.hosts[0].gauges.queued, 1);
    assert_eq!(st.hosts[1].gauges.resolving, 1);
    s.advance(ms(250));
    s.free(c1, true);
    assert_eq!(s.conn_of(r2), (c1, Origin::Deferred));
    s.advance(ms(750));
    s.free(c1, true);
    let (_, _) = s.alloc(ka.clone());
    s.free(c1, true);
    let (_, _) = s.alloc_spec(ka.clone().into(), |_| false);
    let h = s.pool.host_stats(&ka).unwrap().counters;
    assert_eq!(h.reuse_hits(), 2);
    assert_eq!((h.immediate, h.deferred), (1, 1));
    assert_eq!(h.stale_discards, 1);
    // Three left the queue: two connects without waiting, one freed socket after 250 ms.
    assert_eq!(h.queue_waits, 3);
    assert_eq!(h.queue_wait_total, ms(250));
    assert_eq!(h.queue_wait_max, ms(250));
    assert_eq!(h.mean_queue_wait(), Some(Duration::from_nanos(83_333_333)));
    assert_eq!(h.requests, 4);
    assert_eq!(h.connects, 2);
    assert_eq!(s.pool.stats().counters.requests, 5);
    s.finish();
}

/// Requests for one key are served in allocation order, even when their lookups finish
/// out of order.
#[test]
fn queue_order_is_allocation_order() {
    let mut s = Sim::with(|s| s.max_per_host = 1);
    let (_, c1) = s.held(key(LOCAL, P));
    let (r2, _) = s.alloc(key(LOCAL, P));
    let (r3, _) = s.alloc(key(LOCAL, P));
    let (r4, _) = s.alloc(key(LOCAL, P));
    s.dealloc(r3);
    s.free(c1, true);
    assert_eq!(s.conn_of(r2).0, c1);
    s.free(c1, true);
    assert_eq!(s.conn_of(r4).0, c1);
    s.finish();
}

// ---------------------------------------------------------------------------------------------
// Property tests.

const HOSTS: [(&str, &str, u16); 6] = [
    ("http", "10.0.0.1", 80),
    ("http", "10.0.0.2", 80),
    ("http", "a.example", 80),
    ("https", "a.example", 443),
    ("http", "b.example", 80),
    ("http", "10.0.0.1", 8080),
];

fn host_key(i: usize) -> PoolKey {
    let (scheme, addr, port) = HOSTS[i % HOSTS.len()];
    let k = PoolKey::new(scheme, addr, port);
    if i % HOSTS.len() == 4 {
        k.with_origin("https", "origin.example", 443)
    } else {
        k
    }
}

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        host: usize,
        timeout_ms: Option<u64>,
        refuse: u8,
        fresh: bool,
    },
    Free {
        pick: usize,
        reusable: bool,
    },
    Dealloc {
        pick: usize,
    },
    ConnOk {
        pick: usize,
    },
    ConnFail {
        pick: usize,
    },
    Resolve {
        pick: usize,
        how: u8,
        refuse: u8,
    },
    Activity {
        pick: usize,
    },
    Advance {
        ms: u64,
    },
    Backwards {
        ms: u64,
    },
    Stale {
        pick: usize,
        which: u8,
    },
    Shutdown,
}

fn op() -> impl Strategy<Value = Op> {
    let refuse = prop_oneof![4 => Just(0u8), 1 => any::<u8>()];
    prop_oneof![
        6 => (
            0..HOSTS.len(),
            prop::option::of(1u64..20_000),
            refuse.clone(),
            prop::bool::weighted(0.2)
        )
            .prop_map(|(host, timeout_ms, refuse, fresh)| Op::Alloc {
                host,
                timeout_ms,
                refuse,
                fresh
            }),
        4 => (any::<usize>(), prop::bool::weighted(0.7))
            .prop_map(|(pick, reusable)| Op::Free { pick, reusable }),
        1 => any::<usize>().prop_map(|pick| Op::Dealloc { pick }),
        4 => any::<usize>().prop_map(|pick| Op::ConnOk { pick }),
        1 => any::<usize>().prop_map(|pick| Op::ConnFail { pick }),
        3 => (any::<usize>(), 0u8..6, refuse)
            .prop_map(|(pick, how, refuse)| Op::Resolve { pick, how, refuse }),
        1 => any::<usize>().prop_map(|pick| Op::Activity { pick }),
        3 => (0u64..8_000).prop_map(|ms| Op::Advance { ms }),
        1 => (0u64..5_000).prop_map(|ms| Op::Backwards { ms }),
        1 => (any::<usize>(), 0u8..8).prop_map(|(pick, which)| Op::Stale { pick, which }),
    ]
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        1usize..=4,
        1usize..=6,
        1u64..10,
        1u64..30,
        prop::option::of(1u64..10),
    )
        .prop_map(|(per_host, open, ka, to, ct)| Settings {
            max_per_host: per_host,
            max_open: open,
            keep_alive: secs(ka),
            timeout: secs(to),
            connect_timeout: ct.map(secs),
            ..Settings::default()
        })
}

fn nth<T: Copy>(set: impl IntoIterator<Item = T>, pick: usize) -> Option<T> {
    let v: Vec<T> = set.into_iter().collect();
    if v.is_empty() {
        None
    } else {
        Some(v[pick % v.len()])
    }
}

/// A check that refuses the idle sockets whose turn has a set bit in `refuse`.
fn checker(refuse: u8) -> impl FnMut(ConnId) -> bool {
    let mut i = 0u32;
    move |_| {
        let ok = (refuse >> (i % 8)) & 1 == 0;
        i += 1;
        ok
    }
}

impl Sim {
    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Alloc {
                host,
                timeout_ms,
                refuse,
                fresh,
            } => {
                let mut spec = RequestSpec::new(host_key(host));
                if fresh {
                    spec = spec.fresh_connection();
                }
                if let Some(t) = timeout_ms {
                    spec = spec.with_timeout(ms(t));
                }
                if self.shut {
                    let r = self.pool.allocate(spec, self.now, |_| true);
                    assert_eq!(r.err(), Some(AllocateError::ShutDown));
                } else {
                    self.alloc_spec(spec, checker(refuse));
                }
            }
            Op::Free { pick, reusable } => {
                if let Some(c) = nth(self.in_use.iter().copied(), pick) {
                    self.free(c, reusable);
                }
            }
            Op::Dealloc { pick } => {
                if let Some(r) = nth(self.pending.iter().copied(), pick) {
                    self.dealloc(r);
                }
            }
            Op::ConnOk { pick } => {
                if let Some(c) = nth(self.connecting.keys().copied(), pick) {
                    self.connected(c);
                }
            }
            Op::ConnFail { pick } => {
                if let Some(c) = nth(self.connecting.keys().copied(), pick) {
                    let f = if pick % 2 == 0 {
                        Failure::refused()
                    } else {
                        Failure::new("sslify", None, "handshake failed")
                    };
                    self.connect_fail(c, f);
                }
            }
            Op::Resolve { pick, how, refuse } => {
                if let Some(l) = nth(self.lookups.keys().copied(), pick) {
                    match how {
                        0 => {
                            self.resolve_fail(l, "Name or service not known");
                        }
                        1 => {
                            self.resolve_checked(l, &[], checker(refuse));
                        }
                        _ => {
                            let addrs = [ip("192.0.2.1"), ip("::1")];
                            self.resolve_checked(l, &addrs, checker(refuse));
                        }
                    }
                }
            }
            Op::Activity { pick } => {
                if let Some(c) = nth(self.idle.iter().copied(), pick) {
                    self.activity(c);
                }
            }
            Op::Advance { ms: n } => {
                self.advance(ms(n));
            }
            Op::Backwards { ms: n } => {
                let t = self.now.saturating_sub(ms(n));
                let actions = self.pool.advance(t);
                self.run(actions, None);
                assert_eq!(self.pool.now(), self.now);
            }
            Op::Stale { pick, which } => self.stale_call(pick, which),
            Op::Shutdown => {
                let again = self.shut;
                let a = self.shutdown();
                if again {
                    assert!(a.is_empty());
                }
            }
        }
    }

    /// A call with a retired id, or on a socket in the wrong state: a typed error, and
    /// nothing changes.
    fn stale_call(&mut self, pick: usize, which: u8) {
        let before = self.pool.stats();
        let deadline = self.pool.next_deadline();
        let t = self.now;
        let dead_conn = nth(self.retired_conns.iter().copied(), pick);
        let dead_req = nth(
            self.answers
                .keys()
                .chain(self.deallocated.iter())
                .copied()
                .collect::<Vec<_>>(),
            pick,
        );
        let dead_lookup = nth(self.retired_lookups.iter().copied(), pick);
        let p = &mut self.pool;
        match which {
            0 => {
                if let Some(c) = dead_conn {
                    assert_eq!(p.free(c, true, t), Err(CallError::UnknownConn(c)));
                    assert_eq!(p.connected(c, t), Err(CallError::UnknownConn(c)));
                    assert_eq!(p.idle_activity(c, t), Err(CallError::UnknownConn(c)));
                    assert_eq!(
                        p.connect_failed(c, Failure::refused(), t),
                        Err(CallError::UnknownConn(c))
                    );
                }
            }
            1 => {
                if let Some(r) = dead_req {
                    assert_eq!(p.deallocate(r, t), Err(CallError::UnknownRequest(r)));
                    assert_eq!(p.request_stage(r), None);
                }
            }
            2 => {
                if let Some(l) = dead_lookup {
                    assert_eq!(
                        p.resolved(l, &[ip(LOCAL)], t, |_| true),
                        Err(CallError::UnknownLookup(l))
                    );
                    assert_eq!(
                        p.resolve_failed(l, "x", t),
                        Err(CallError::UnknownLookup(l))
                    );
                }
            }
            3 => {
                if let Some(c) = nth(self.connecting.keys().copied(), pick) {
                    assert!(matches!(
                        p.free(c, true, t),
                        Err(CallError::WrongState { .. })
                    ));
                    assert!(matches!(
                        p.idle_activity(c, t),
                        Err(CallError::WrongState { .. })
                    ));
                }
            }
            4 => {
                if let Some(c) = nth(self.in_use.iter().copied(), pick) {
                    assert!(matches!(
                        p.connected(c, t),
                        Err(CallError::WrongState { .. })
                    ));
                    assert!(matches!(
                        p.idle_activity(c, t),
                        Err(CallError::WrongState { .. })
                    ));
                }
            }
            5 => {
                if let Some(c) = nth(self.idle.iter().copied(), pick) {
                    assert!(matches!(
                        p.free(c, true, t),
                        Err(CallError::WrongState { .. })
                    ));
                    assert!(matches!(
                        p.connect_failed(c, Failure::refused(), t),
                        Err(CallError::WrongState { .. })
                    ));
                }
            }
            6 => {
                // Ids the pool never issued (foreign slots).
                let foreign = Pool::new(Settings::default()).map(|mut q| {
                    for _ in 0..=pick % 50 {
                        let _ = q.allocate(key("10.1.1.1", 1).into(), t, |_| true);
                    }
                    q.allocate(key("10.1.1.1", 1).into(), t, |_| true)
                });
                if let Ok(Ok((r, _))) = foreign {
                    if !self.pending.contains(&r) {
                        assert_eq!(p.deallocate(r, t), Err(CallError::UnknownRequest(r)));
                    }
                }
            }
            _ => {
                let spec = RequestSpec::new(key("", 1));
                assert!(p.allocate(spec, t, |_| true).is_err());
            }
        }
        assert_eq!(self.pool.stats(), before, "a refused call changed the pool");
        assert_eq!(self.pool.next_deadline(), deadline);
        self.check();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random call sequences: after every step the invariants hold (slots = connecting +
    /// in use + idle; per key <= max_per_host; total <= max_open; no stall; nothing
    /// answered twice, after deallocate or after shutdown); at the end every request was
    /// answered exactly once or deallocated, and nothing is left.
    #[test]
    fn prop_random_sequences_keep_the_invariants(
        settings in settings(),
        ops in prop::collection::vec(op(), 1..200),
        shutdown_at in prop::option::weighted(0.3, 0usize..200),
    ) {
        let mut s = Sim::new(settings);
        for (i, op) in ops.iter().enumerate() {
            if shutdown_at == Some(i) {
                s.apply(&Op::Shutdown);
            }
            s.apply(op);
        }
        s.finish();
    }

    /// A cooperative socket layer (every connect and lookup eventually answers, sockets are
    /// freed clean): every request is answered, and never by a timeout when the timeout is
    /// long enough, whatever the limits.
    #[test]
    fn prop_cooperative_layer_serves_everything(
        settings in settings(),
        hosts in prop::collection::vec(0..HOSTS.len(), 1..60),
    ) {
        let settings = Settings { timeout: secs(1_000_000), ..settings };
        let mut s = Sim::new(settings);
        for h in hosts {
            s.alloc(host_key(h));
        }
        let mut rounds = 0;
        while !s.pending.is_empty() {
            rounds += 1;
            prop_assert!(rounds < 10_000, "no progress");
            if let Some(&l) = s.lookups.keys().next() {
                s.resolve(l, &[ip("192.0.2.7")]);
            } else if let Some(&c) = s.connecting.keys().next() {
                s.connected(c);
            } else if let Some(&c) = s.in_use.iter().next() {
                s.free(c, true);
            } else {
                prop_assert!(false, "pending requests but nothing to drive");
            }
        }
        for (r, (_, outcome)) in &s.answers {
            prop_assert!(matches!(outcome, Outcome::Connected { .. }), "{} failed", r);
        }
        s.finish();
    }
}

/// `max_uses`: a socket serves at most that many requests, then is closed at its free.
#[test]
fn max_uses_retires_a_socket() {
    let mut s = Sim::with(|s| {
        s.max_uses = Some(3);
        s.jitter_percent = 0;
    });
    let (_, c) = s.held(key(LOCAL, P));
    for _ in 0..2 {
        assert!(closes(&s.free(c, true)).is_empty());
        let (r, _) = s.alloc(key(LOCAL, P));
        assert_eq!(s.conn_of(r), (c, Origin::Immediate));
    }
    assert_eq!(closes(&s.free(c, true)), vec![(c, CloseReason::Retired)]);
    assert_eq!(s.pool.stats().counters.retired, 1);
    s.finish();
}

/// `max_lifetime`: a socket past it is closed at its free, and an idle one when it
/// reaches it, even within `keep_alive`.
#[test]
fn max_lifetime_retires_sockets_in_use_and_idle() {
    let mut s = Sim::with(|s| {
        s.max_lifetime = Some(secs(10));
        s.keep_alive = secs(60);
        s.jitter_percent = 0;
    });
    let (_, c1) = s.held(key(LOCAL, P));
    s.advance(secs(11));
    assert_eq!(closes(&s.free(c1, true)), vec![(c1, CloseReason::Retired)]);
    let (_, c2) = s.held(key(LOCAL, P));
    s.advance(secs(5));
    assert!(closes(&s.free(c2, true)).is_empty());
    assert!(closes(&s.advance(secs(4))).is_empty());
    assert_eq!(
        closes(&s.advance(secs(2))),
        vec![(c2, CloseReason::Retired)]
    );
    assert_eq!(s.pool.stats().counters.retired, 2);
    s.finish();
}

/// With jitter, sockets connected together get different limits within the band, so
/// they are not all renewed at once.
#[test]
fn lifetime_jitter_spreads_renewals() {
    let mut s = Sim::with(|s| {
        s.max_uses = Some(100);
        s.jitter_percent = 20;
        s.jitter_seed = 12345;
        s.max_per_host = 50;
        s.max_open = 50;
    });
    let mut conns = Vec::new();
    for _ in 0..20 {
        conns.push(s.held(key(LOCAL, P)).1);
    }
    // Use each socket until it is retired; count its uses.
    let mut lives = Vec::new();
    for c in conns {
        let mut uses = 1;
        loop {
            if !closes(&s.free(c, true)).is_empty() {
                break;
            }
            let (r, _) = s.alloc(key(LOCAL, P));
            assert_eq!(s.conn_of(r).0, c);
            uses += 1;
        }
        lives.push(uses);
    }
    assert!(lives.iter().all(|&u| (80..=100).contains(&u)), "{lives:?}");
    lives.sort_unstable();
    lives.dedup();
    assert!(lives.len() > 5, "limits not spread: {lives:?}");
    s.finish();
}

/// The module documentation's walk-through: a new connect, then the same socket reused.
#[test]
fn the_module_example() {
    let mut pool = Pool::new(Settings::default()).unwrap();
    let t0 = Duration::ZERO;
    let key = PoolKey::new("http", "127.0.0.1", 8080);

    // An address literal needs no lookup: the connect starts at once.
    let (req, actions) = pool.allocate(key.clone().into(), t0, |_| true).unwrap();
    let conn = actions
        .iter()
        .find_map(|a| match a {
            Action::Connect { conn, .. } => Some(*conn),
            _ => None,
        })
        .unwrap();

    // The socket layer reports success; the pool answers the request.
    let actions = pool.connected(conn, t0).unwrap();
    assert!(actions.iter().any(|a| matches!(a,
        Action::Respond { request, outcome: Outcome::Connected { origin: Origin::New, .. }, .. }
            if *request == req)));

    // Freed clean, the socket is pooled; the next request for the key reuses it at once.
    pool.free(conn, true, t0).unwrap();
    let (_, actions) = pool.allocate(key.into(), t0, |_| true).unwrap();
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Respond {
            outcome: Outcome::Connected {
                origin: Origin::Immediate,
                ..
            },
            ..
        }
    )));
}

/// An id retired without a record (a request answered at once) is the one the record's
/// insertion and removal would give, and leaves the arena as they would: the same ids
/// follow.
#[test]
fn a_retired_id_is_an_inserted_and_removed_one() {
    use super::Arena;
    let mut retired: Arena<u32> = Arena::new();
    let mut inserted: Arena<u32> = Arena::new();
    let mut live = Vec::new();
    for step in 0..60u32 {
        match step % 5 {
            // Retire an id both ways.
            0 | 3 => {
                let a = retired.retire_next();
                let b = inserted.insert(step);
                assert_eq!(inserted.remove(b), Some(step));
                assert_eq!(a, b, "step {step}");
            }
            // Keep a record, or let an old one go.
            1 | 4 => {
                let a = retired.insert(step);
                let b = inserted.insert(step);
                assert_eq!(a, b, "step {step}");
                live.push(a);
            }
            _ => {
                if let Some(k) = live.pop() {
                    assert_eq!(retired.remove(k), inserted.remove(k));
                }
            }
        }
        assert_eq!(
            format!("{retired:?}"),
            format!("{inserted:?}"),
            "step {step}"
        );
    }
}

/// `request`, which the manager calls, gives a socket handed out at once, with nothing else
/// done on the way, as it is (`Allocation::Immediate`); a stale socket closed before it
/// makes the answer a list of actions, the close first.
#[test]
fn request_gives_a_socket_handed_out_at_once_as_it_is() {
    use crate::pool::Allocation;
    let mut pool = Pool::new(Settings::default()).unwrap();
    let now = Duration::ZERO;
    let open = |pool: &mut Pool| {
        let spec = RequestSpec::new(key(LOCAL, P));
        let (_, a) = pool.allocate(spec, now, |_| true).unwrap();
        let c = one_connect(&a);
        pool.connected(c, now).unwrap();
        c
    };
    let c1 = open(&mut pool);
    let c2 = open(&mut pool);
    pool.free(c1, true, now).unwrap();
    pool.free(c2, true, now).unwrap();

    // The last freed goes at once.
    let spec = RequestSpec::new(key(LOCAL, P));
    match pool.request(spec, now, |_| true).unwrap() {
        Allocation::Immediate { conn, .. } => assert_eq!(conn, c2),
        other => panic!("not at once: {other:?}"),
    }
    pool.check_invariants().unwrap();
    pool.free(c2, true, now).unwrap();

    // The last freed is found stale: its close, then the other socket.
    let spec = RequestSpec::new(key(LOCAL, P));
    match pool.request(spec, now, |c| c != c2).unwrap() {
        Allocation::Actions(rid, a) => {
            assert!(
                matches!(a[0], Action::Close { conn, reason: CloseReason::Stale } if conn == c2),
                "{a:?}"
            );
            assert!(
                matches!(&a[1], Action::Respond {
                    request,
                    outcome: Outcome::Connected { conn, origin: Origin::Immediate },
                    ..
                } if *request == rid && *conn == c1),
                "{a:?}"
            );
        }
        other => panic!("no close: {other:?}"),
    }
    pool.check_invariants().unwrap();
}
