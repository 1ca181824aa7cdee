//! The pool's bookkeeping (internal): a pure state machine with no sockets, no clock and no kernel.
//!
//! [`Pool`] keeps everything `POE::Component::Client::Keepalive` keeps (connection keys,
//! per-key counts, idle lists, request queues, DNS piggybacking, timers) as plain data. The
//! socket layer drives it with method calls that carry the current time (`now`, a
//! [`Duration`] since any fixed origin the caller picks; the pool never reads a clock) and
//! performs the [`Action`]s each call returns: start or abort a connect, start or cancel a
//! lookup, deliver a response, watch or close a socket, re-arm the one timer. Sockets are
//! named by [`ConnId`]s, requests by [`RequestId`]s, lookups by [`LookupId`]s; all three carry
//! a generation, so an id that was retired (and whose slot was reused) is reported as
//! unknown, never confused with the new occupant.
//!
//! # Driving it
//!
//! | the socket layer sees | it calls |
//! |---|---|
//! | the user asks for a connection | [`Pool::allocate`] |
//! | the user cancels a request | [`Pool::deallocate`] |
//! | a lookup answers | [`Pool::resolved`] / [`Pool::resolve_failed`] |
//! | a connect (and TLS, if any) completes | [`Pool::connected`] / [`Pool::connect_failed`] |
//! | the user drops a connection | [`Pool::free_into`] (saying whether the socket is clean) |
//! | an idle socket turns readable | [`Pool::idle_activity`] |
//! | the timer set by [`Action::SetTimer`] fires | [`Pool::advance`] |
//! | the manager shuts down | [`Pool::shutdown`] |
//!
//! [`Pool::allocate`] and [`Pool::resolved`] may hand out an idle socket; they take a check
//! (`FnMut(ConnId) -> bool`) that the socket layer answers by peeking at the socket. A socket
//! that fails the check is closed ([`CloseReason::Stale`]) and the next idle one, or a new
//! connect, is used instead.
//!
//! The test `the_module_example` in `tests.rs` walks one request through it.
//!
//!
//! What stays with the socket layer: deciding whether a freed socket is clean (unread data,
//! EOF, error, closed), peeking at idle sockets, the resolver's ownership (B10, B16), TLS
//! itself, and echoing the user's context and key fields in responses.
//!
//! Time: `now` may come from any monotonic clock; a `now` earlier than one already seen is
//! taken as the latest one, and deadlines saturate at [`Duration::MAX`], so no call sequence
//! panics.

use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// `EADDRNOTAVAIL` as Linux numbers it: what a failed bind reports, e.g. `("bind", 99, ...)`.
#[cfg(test)]
pub const EADDRNOTAVAIL: i32 = reactor::errno::EADDRNOTAVAIL;
/// `ETIMEDOUT` as Linux numbers it: the errnum of every timeout ([`Failure::timeout`]).
pub const ETIMEDOUT: i32 = reactor::errno::ETIMEDOUT;
/// `ECONNREFUSED` as Linux numbers it ([`Failure::refused`]).
pub const ECONNREFUSED: i32 = reactor::errno::ECONNREFUSED;
/// `ECANCELED` as Linux numbers it: the errnum of [`Failure::shutdown`].
pub const ECANCELED: i32 = reactor::errno::ECANCELED;

// ---------------------------------------------------------------------------------------------
// Ids and the generational arena behind them.

/// Slot index plus generation; the generation changes whenever a slot is vacated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    index: usize,
    generation: u64,
}

#[derive(Debug)]
struct Entry<T> {
    generation: u64,
    value: Option<T>,
}

/// A slab whose keys carry generations, so a retired key never reaches a new value.
#[derive(Debug)]
struct Arena<T> {
    entries: Vec<Entry<T>>,
    vacant: Vec<usize>,
    len: usize,
}

impl<T> Arena<T> {
    fn new() -> Self {
        Arena {
            entries: Vec::new(),
            vacant: Vec::new(),
            len: 0,
        }
    }

    fn insert(&mut self, value: T) -> Key {
        self.len += 1;
        while let Some(index) = self.vacant.pop() {
            if let Some(entry) = self.entries.get_mut(index) {
                if entry.value.is_none() {
                    entry.value = Some(value);
                    return Key {
                        index,
                        generation: entry.generation,
                    };
                }
            }
        }
        let index = self.entries.len();
        self.entries.push(Entry {
            generation: 0,
            value: Some(value),
        });
        Key {
            index,
            generation: 0,
        }
    }

    /// The key an [`insert`](Self::insert) would give, retired at once, as that insert
    /// followed by a [`remove`](Self::remove) would leave the arena (the slot's generation
    /// moved on, the slot vacant again, on top of the vacant ones): for an id that never
    /// needs a value.
    fn retire_next(&mut self) -> Key {
        while let Some(&index) = self.vacant.last() {
            match self.entries.get_mut(index) {
                Some(entry) if entry.value.is_none() => {
                    let generation = entry.generation;
                    entry.generation = generation.wrapping_add(1);
                    return Key { index, generation };
                }
                _ => {
                    self.vacant.pop();
                }
            }
        }
        let index = self.entries.len();
        self.entries.push(Entry {
            generation: 1,
            value: None,
        });
        self.vacant.push(index);
        Key {
            index,
            generation: 0,
        }
    }

    fn get(&self, key: Key) -> Option<&T> {
        self.entries
            .get(key.index)
            .filter(|e| e.generation == key.generation)
            .and_then(|e| e.value.as_ref())
    }

    fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        self.entries
            .get_mut(key.index)
            .filter(|e| e.generation == key.generation)
            .and_then(|e| e.value.as_mut())
    }

    fn remove(&mut self, key: Key) -> Option<T> {
        let entry = self.entries.get_mut(key.index)?;
        if entry.generation != key.generation {
            return None;
        }
        let value = entry.value.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        self.vacant.push(key.index);
        self.len -= 1;
        Some(value)
    }

    fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        self.entries.iter().enumerate().filter_map(|(index, e)| {
            e.value.as_ref().map(|v| {
                (
                    Key {
                        index,
                        generation: e.generation,
                    },
                    v,
                )
            })
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }
}

/// A socket's links in one idle list (see [`IdleList`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Link {
    prev: Option<Key>,
    next: Option<Key>,
}

/// Idle sockets in the order they were freed, oldest first: a doubly linked list threaded
/// through the sockets' own records, so a socket goes in at the back, and out from
/// anywhere, without an allocation or a search (an ordered map cost a node's worth of
/// both at every free and every hand-out). Each list says which of a record's links it
/// uses.
#[derive(Debug, Default)]
struct IdleList {
    first: Option<Key>,
    last: Option<Key>,
    len: usize,
}

/// Which links of a record an [`IdleList`] uses.
type LinkOf = fn(&mut Conn) -> &mut Link;

impl IdleList {
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The least recently freed.
    fn first(&self) -> Option<Key> {
        self.first
    }

    /// The most recently freed.
    fn last(&self) -> Option<Key> {
        self.last
    }

    /// Appends `k`, which is in no list of this kind.
    fn push_back(&mut self, conns: &mut Arena<Conn>, k: Key, link: LinkOf) {
        let prev = self.last;
        let Some(c) = conns.get_mut(k) else {
            return;
        };
        *link(c) = Link { prev, next: None };
        match prev.and_then(|p| conns.get_mut(p)) {
            Some(p) => link(p).next = Some(k),
            None => self.first = Some(k),
        }
        self.last = Some(k);
        self.len += 1;
    }

    /// Takes `k`, which is in this list, out of it.
    fn remove(&mut self, conns: &mut Arena<Conn>, k: Key, link: LinkOf) {
        let Some(c) = conns.get_mut(k) else {
            return;
        };
        let Link { prev, next } = std::mem::take(link(c));
        match prev.and_then(|p| conns.get_mut(p)) {
            Some(p) => link(p).next = next,
            None => self.first = next,
        }
        match next.and_then(|n| conns.get_mut(n)) {
            Some(n) => link(n).prev = prev,
            None => self.last = prev,
        }
        self.len -= 1;
    }

    /// The sockets in order, oldest first.
    fn keys(&self, conns: &Arena<Conn>, link: fn(&Conn) -> &Link) -> Vec<Key> {
        let mut out = Vec::with_capacity(self.len);
        let mut at = self.first;
        while let Some(k) = at {
            out.push(k);
            at = conns.get(k).and_then(|c| link(c).next);
            if out.len() > self.len {
                break; // a broken list; the invariant check reports it
            }
        }
        out
    }
}

/// The links of the list of all idle sockets.
fn lru_link(c: &mut Conn) -> &mut Link {
    &mut c.lru_link
}

/// The links of the list of a key's idle sockets.
fn key_link(c: &mut Conn) -> &mut Link {
    &mut c.key_link
}

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident, $tag:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Key);

        impl $name {
            /// The slot number. Slots are reused once retired, so it is dense (fit for a
            /// `Vec` index in the socket layer) but only unique together with
            /// [`generation`](Self::generation).
            pub fn index(self) -> usize {
                self.0.index
            }

            /// How many times the slot was retired before this id was issued.
            pub fn generation(self) -> u64 {
                self.0.generation
            }

            /// An id for tests of the socket layer.
            #[cfg(test)]
            #[allow(dead_code)]
            pub(crate) fn test_new(index: usize) -> Self {
                $name(Key {
                    index,
                    generation: 0,
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($tag, "{}.{}"), self.0.index, self.0.generation)
            }
        }
    };
}

typed_id!(
    /// A request, from [`Keepalive::allocate`](crate::Keepalive::allocate) until its one
    /// [`Response`](crate::Response) (or its [`Keepalive::deallocate`](crate::Keepalive::deallocate)).
    RequestId,
    "req#"
);
typed_id!(
    /// A socket, from its connect until it is closed (by the pool, an aborted connect, or a
    /// failed one). The same id names it while it
    /// connects, while it is in use and while it is idle.
    ConnId,
    "conn#"
);
typed_id!(
    /// A DNS lookup, from [`Action::Resolve`] until it is answered or cancelled
    /// ([`Action::CancelResolve`]). Requests for the same host name share one lookup.
    LookupId,
    "lookup#"
);

/// A key's entry in the pool (internal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct HostId(Key);

// ---------------------------------------------------------------------------------------------
// Settings.

/// The pool's limits and timers. Build with struct update syntax:
/// `Settings { max_open: 16, ..Settings::default() }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Most sockets per [`PoolKey`] that are in use or connecting (default 4). Idle sockets do
    /// not count.
    pub max_per_host: usize,
    /// Most sockets in all: in use, connecting and idle (default 128). Idle sockets are
    /// evicted, least recently freed first, to make room for new connects.
    pub max_open: usize,
    /// How long a freed socket stays pooled (default 15 s). Restarted at every free.
    pub keep_alive: Duration,
    /// Default request timeout (default 120 s), measured from [`Keepalive::allocate`](crate::Keepalive::allocate): it covers
    /// the lookup, the wait in the queue and the connect.
    pub timeout: Duration,
    /// Bound on a single connect, from its start (default `None`: only the request timeout
    /// applies). Reports the same error as the request timeout.
    pub connect_timeout: Option<Duration>,
    /// The longest a socket is used, from its connect (default `None`: no limit). A socket
    /// past it is closed when freed, and an idle one when it reaches it.
    pub max_lifetime: Option<Duration>,
    /// The most requests a socket serves (default `None`: no limit); it is closed when
    /// freed after the last.
    pub max_uses: Option<u32>,
    /// How far each socket's `max_lifetime` and `max_uses` are shortened at random, in
    /// percent (default 10: each socket gets a limit between 90% and 100% of the setting),
    /// so sockets opened together are not all renewed together.
    pub jitter_percent: u8,
    /// Seeds the jitter (default 0: a fixed seed, for reproducible tests; the manager
    /// seeds it per process).
    pub jitter_seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_per_host: 4,
            max_open: 128,
            keep_alive: Duration::from_secs(15),
            timeout: Duration::from_secs(120),
            connect_timeout: None,
            max_lifetime: None,
            max_uses: None,
            jitter_percent: 10,
            jitter_seed: 0,
        }
    }
}

impl Settings {
    /// Checks every field: limits and durations must be non-zero.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.max_per_host == 0 {
            return Err(SettingsError::ZeroMaxPerHost);
        }
        if self.max_open == 0 {
            return Err(SettingsError::ZeroMaxOpen);
        }
        if self.keep_alive.is_zero() {
            return Err(SettingsError::ZeroKeepAlive);
        }
        if self.timeout.is_zero() {
            return Err(SettingsError::ZeroTimeout);
        }
        if self.connect_timeout.is_some_and(|t| t.is_zero()) {
            return Err(SettingsError::ZeroConnectTimeout);
        }
        if self.max_lifetime.is_some_and(|t| t.is_zero()) {
            return Err(SettingsError::ZeroMaxLifetime);
        }
        if self.max_uses == Some(0) {
            return Err(SettingsError::ZeroMaxUses);
        }
        if self.jitter_percent > 100 {
            return Err(SettingsError::JitterOver100);
        }
        Ok(())
    }
}

/// Why [`Settings`] were refused. (Perl silently took 0 to mean "the default".)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingsError {
    /// `max_per_host` is 0.
    ZeroMaxPerHost,
    /// `max_open` is 0.
    ZeroMaxOpen,
    /// `keep_alive` is zero.
    ZeroKeepAlive,
    /// `timeout` is zero.
    ZeroTimeout,
    /// `connect_timeout` is `Some` zero.
    ZeroConnectTimeout,
    /// `max_lifetime` is `Some` zero.
    ZeroMaxLifetime,
    /// `max_uses` is `Some(0)`.
    ZeroMaxUses,
    /// `jitter_percent` is over 100.
    JitterOver100,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = match self {
            SettingsError::ZeroMaxPerHost => "max_per_host",
            SettingsError::ZeroMaxOpen => "max_open",
            SettingsError::ZeroKeepAlive => "keep_alive",
            SettingsError::ZeroTimeout => "timeout",
            SettingsError::ZeroConnectTimeout => "connect_timeout",
            SettingsError::ZeroMaxLifetime => "max_lifetime",
            SettingsError::ZeroMaxUses => "max_uses",
            SettingsError::JitterOver100 => return f.write_str("'jitter_percent' is at most 100"),
        };
        write!(f, "new() needs a non-zero '{field}'")
    }
}

impl std::error::Error for SettingsError {}

// ---------------------------------------------------------------------------------------------
// Keys and requests.

/// What sockets are pooled by: Perl's `"$scheme $addr $port for $for_scheme $for_addr
/// $for_port"`. The address is the one requested, not the resolved one, and is compared
/// exactly (so `localhost` and `127.0.0.1` are separate pools, as in Perl).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey {
    /// Scheme, e.g. `"http"`.
    pub scheme: String,
    /// Host name or address literal to connect to.
    pub addr: String,
    /// Port to connect to.
    pub port: u16,
    /// Scheme of the origin this connection is for (a proxy keeps one pool per origin).
    pub for_scheme: String,
    /// Address of the origin this connection is for.
    pub for_addr: String,
    /// Port of the origin this connection is for.
    pub for_port: u16,
}

impl PoolKey {
    /// A key whose `for_*` fields equal the connection's own, as Perl defaults them.
    pub fn new(scheme: impl Into<String>, addr: impl Into<String>, port: u16) -> Self {
        let scheme = scheme.into();
        let addr = addr.into();
        PoolKey {
            for_scheme: scheme.clone(),
            for_addr: addr.clone(),
            for_port: port,
            scheme,
            addr,
            port,
        }
    }

    /// Sets the `for_*` fields: the origin served through this connection.
    pub fn with_origin(
        mut self,
        scheme: impl Into<String>,
        addr: impl Into<String>,
        port: u16,
    ) -> Self {
        self.for_scheme = scheme.into();
        self.for_addr = addr.into();
        self.for_port = port;
        self
    }

    fn missing(&self) -> Option<KeyField> {
        if self.scheme.is_empty() {
            Some(KeyField::Scheme)
        } else if self.addr.is_empty() {
            Some(KeyField::Addr)
        } else if self.port == 0 {
            Some(KeyField::Port)
        } else if self.for_scheme.is_empty() {
            Some(KeyField::ForScheme)
        } else if self.for_addr.is_empty() {
            Some(KeyField::ForAddr)
        } else if self.for_port == 0 {
            Some(KeyField::ForPort)
        } else {
            None
        }
    }
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} for {} {} {}",
            self.scheme, self.addr, self.port, self.for_scheme, self.for_addr, self.for_port
        )
    }
}

/// What [`Pool::allocate`] is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSpec {
    /// The pool key; its `addr` is resolved unless it parses as an IP address. Shared, so
    /// a caller that asks for the same key again and again builds it once.
    pub key: Arc<PoolKey>,
    /// This request's timeout, instead of [`Settings::timeout`].
    pub timeout: Option<Duration>,
    /// Only a new connection will do: no idle socket is handed out for this request, and
    /// none freed while it waits (see [`RequestSpec::fresh_connection`]).
    pub fresh: bool,
}

impl RequestSpec {
    /// A request for `key` with the pool's default timeout.
    pub fn new(key: impl Into<Arc<PoolKey>>) -> Self {
        RequestSpec {
            key: key.into(),
            timeout: None,
            fresh: false,
        }
    }

    /// Asks for a new connection only. A server may close an idle connection at any
    /// moment, so a request that failed on a reused socket before any response byte is
    /// retried once, and the retry must not be handed another socket that sat idle as long.
    pub fn fresh_connection(mut self) -> Self {
        self.fresh = true;
        self
    }

    /// Sets this request's timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl From<PoolKey> for RequestSpec {
    fn from(key: PoolKey) -> Self {
        RequestSpec::new(key)
    }
}

// ---------------------------------------------------------------------------------------------
// Outcomes and actions.

/// Where a handed-out socket came from: Perl's `from_cache`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A new connection (`from_cache` undef).
    New,
    /// Taken from the pool inside [`Keepalive::allocate`](crate::Keepalive::allocate)
    /// (`"immediate"`).
    Immediate,
    /// Taken from the pool after waiting: a socket freed to a waiter, or found idle when the
    /// request's lookup finished (`"deferred"`).
    Deferred,
}

impl Origin {
    /// The name Perl's `from_cache` gives a reused connection (`"immediate"`,
    /// `"deferred"`), and `"new"` for a new one (Perl's `undef`).
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::New => "new",
            Origin::Immediate => "immediate",
            Origin::Deferred => "deferred",
        }
    }

    /// Whether the connection was reused from the pool.
    pub fn is_reused(self) -> bool {
        self != Origin::New
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer in Perl's terms: the failing function, `$!` as a number (if any) and as
/// text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Failure {
    /// The operation that failed: `"connect"`, `"resolve"`, `"bind"`, `"sslify"`, ...
    pub function: String,
    /// The error number (`undef` in Perl for resolver errors).
    pub errnum: Option<i32>,
    /// The error text.
    pub errstr: String,
}

impl Failure {
    /// Any failure; the socket layer builds connect, bind and TLS failures with this.
    pub fn new(
        function: impl Into<String>,
        errnum: Option<i32>,
        errstr: impl Into<String>,
    ) -> Self {
        Failure {
            function: function.into(),
            errnum,
            errstr: errstr.into(),
        }
    }

    /// The error number as an [`std::io::Error`] (its [`kind`](std::io::Error::kind) says
    /// e.g. `ConnectionRefused`), if the failure has one.
    pub fn io_error(&self) -> Option<std::io::Error> {
        self.errnum.map(std::io::Error::from_raw_os_error)
    }

    /// `("connect", 110, "Connection timed out")`: every timeout, whatever the stage (as Perl).
    pub fn timeout() -> Self {
        Failure::new("connect", Some(ETIMEDOUT), "Connection timed out")
    }

    /// `("connect", 111, "Connection refused")`.
    pub fn refused() -> Self {
        Failure::new("connect", Some(ECONNREFUSED), "Connection refused")
    }

    /// `("resolve", undef, errstr)`: a failed lookup.
    pub fn resolve(errstr: impl Into<String>) -> Self {
        Failure::new("resolve", None, errstr)
    }

    /// `("resolve", undef, "Host has no address.")`: a lookup that found nothing.
    pub fn no_address() -> Self {
        Failure::resolve("Host has no address.")
    }

    /// `("shutdown", 125, "connection manager shut down")`: the answer to every request
    /// pending at [`Keepalive::shutdown`](crate::Keepalive::shutdown). (Perl sent none.)
    pub fn shutdown() -> Self {
        Failure::new("shutdown", Some(ECANCELED), "connection manager shut down")
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errnum {
            Some(n) => write!(f, "{} error {}: {}", self.function, n, self.errstr),
            None => write!(f, "{} error: {}", self.function, self.errstr),
        }
    }
}

/// A failure is an ordinary error, so `r.connection?` works in a handler that returns
/// `Result<_, HandlerError>` or `Box<dyn Error>`. Its `$!` is kept as a number, not as a
/// source: [`Failure::io_error`] rebuilds the `io::Error`.
impl std::error::Error for Failure {}

/// What [`Pool::request`] did with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Allocation {
    /// Answered at once with an idle socket of its key ([`Origin::Immediate`], stage
    /// [`RequestStage::Allocating`]); the id is already retired. Nothing else was done
    /// but, if `timer` is set, a change of the earliest deadline to report (what
    /// [`Action::SetTimer`] carries). [`Pool::allocate`] gives the same as those two
    /// actions.
    Immediate {
        /// The request.
        request: RequestId,
        /// The socket handed out, now in use.
        conn: ConnId,
        /// The earliest deadline, if it changed.
        timer: Option<Option<Duration>>,
    },
    /// Anything else: the request's id and the actions, as [`Pool::allocate`] gives them.
    Actions(RequestId, Vec<Action>),
}

/// The answer of a request given an idle socket at once ([`Allocation::Immediate`] as an
/// action).
fn immediate_answer(request: RequestId, conn: ConnId) -> Action {
    Action::Respond {
        request,
        stage: RequestStage::Allocating,
        outcome: Outcome::Connected {
            conn,
            origin: Origin::Immediate,
        },
    }
}

/// The answer to a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A socket, now in use by the requester until it calls [`Pool::free_into`].
    Connected {
        /// The socket.
        conn: ConnId,
        /// Whether it is new or reused.
        origin: Origin,
    },
    /// No socket.
    Failed(Failure),
}

/// Where a request is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestStage {
    /// Inside [`Keepalive::allocate`](crate::Keepalive::allocate) (only seen on an
    /// immediate answer).
    Allocating,
    /// Waiting for its lookup.
    Resolving,
    /// Waiting for a socket of its key (a deferred hand-out always reports this stage).
    Queued,
    /// Its connect is in flight.
    Connecting,
}

/// Where a socket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Its connect is in flight, for one request.
    Connecting,
    /// Handed out; the user gives it back with [`Pool::free_into`].
    InUse,
    /// Pooled, waiting to be reused or to expire.
    Idle,
}

/// Why the socket layer is told to close a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Freed as not reusable (unread data, EOF, error, closed by the user).
    NotReusable,
    /// Idle (or just freed) and evicted to make room under `max_open`.
    Evicted,
    /// Idle for `keep_alive`.
    KeepAliveExpired,
    /// Idle and turned readable ([`Pool::idle_activity`]).
    Activity,
    /// Idle and refused by the hand-out check.
    Stale,
    /// Idle at shutdown, or freed after it.
    Shutdown,
    /// Past its `max_lifetime` or `max_uses`.
    Retired,
}

/// Something the socket layer must do. Each call returns them in the order to perform them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a lookup of `host`; answer with [`Pool::resolved`] or [`Pool::resolve_failed`].
    Resolve {
        /// Names the lookup in the answer.
        lookup: LookupId,
        /// The host name to resolve (the key's `addr`).
        host: String,
    },
    /// Stop the lookup: nobody waits for it any more. An answer that still arrives is
    /// refused with [`CallError::UnknownLookup`], harmlessly.
    CancelResolve {
        /// The lookup.
        lookup: LookupId,
    },
    /// Start connecting a new socket to `ip` and `key.port`; report with [`Pool::connected`]
    /// or [`Pool::connect_failed`].
    Connect {
        /// The socket's id from now on.
        conn: ConnId,
        /// The request it is for.
        request: RequestId,
        /// The pool key (scheme, port, origin).
        key: Arc<PoolKey>,
        /// The address to connect to.
        ip: IpAddr,
    },
    /// Abandon a connect in flight and close its socket (request timed out, deallocated or
    /// shut down). Do not report it afterwards.
    AbortConnect {
        /// The socket.
        conn: ConnId,
    },
    /// Deliver the request's one answer. If it hands out a socket the layer was watching as
    /// idle, stop watching it.
    Respond {
        /// The request.
        request: RequestId,
        /// The stage the request was in when answered.
        stage: RequestStage,
        /// The answer.
        outcome: Outcome,
    },
    /// The socket is now idle in the pool: watch it for readability and report any with
    /// [`Pool::idle_activity`].
    WatchIdle {
        /// The socket.
        conn: ConnId,
    },
    /// Close the socket (idle, or just freed) and forget it.
    Close {
        /// The socket.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// The earliest deadline changed: call [`Pool::advance`] at `at` (`None`: no timer needed).
    SetTimer {
        /// When, on the caller's time line.
        at: Option<Duration>,
    },
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// A field of [`PoolKey`], named in [`AllocateError::Missing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyField {
    /// `scheme`.
    Scheme,
    /// `addr`.
    Addr,
    /// `port`.
    Port,
    /// `for_scheme`.
    ForScheme,
    /// `for_addr`.
    ForAddr,
    /// `for_port`.
    ForPort,
}

impl KeyField {
    /// The field's name, as Perl spells the parameter.
    pub fn name(self) -> &'static str {
        match self {
            KeyField::Scheme => "scheme",
            KeyField::Addr => "addr",
            KeyField::Port => "port",
            KeyField::ForScheme => "for_scheme",
            KeyField::ForAddr => "for_addr",
            KeyField::ForPort => "for_port",
        }
    }
}

/// Why [`Keepalive::allocate`](crate::Keepalive::allocate) refused a request. Nothing
/// changed in the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AllocateError {
    /// The pool was shut down.
    ShutDown,
    /// A key field is empty (or a port is 0).
    Missing(KeyField),
    /// The request's own timeout is zero.
    ZeroTimeout,
}

impl fmt::Display for AllocateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocateError::ShutDown => f.write_str("allocate() on shut-down connection manager"),
            AllocateError::Missing(KeyField::Addr) => f.write_str("allocate() needs an 'addr'"),
            AllocateError::Missing(field) => write!(f, "allocate() needs a '{}'", field.name()),
            AllocateError::ZeroTimeout => f.write_str("allocate() needs a non-zero 'timeout'"),
        }
    }
}

impl std::error::Error for AllocateError {}

/// Why a call naming a request, socket or lookup was refused. Nothing changed in the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallError {
    /// Not a pending request: already answered, deallocated, or never issued.
    UnknownRequest(RequestId),
    /// Not a live socket: closed, aborted, failed, or never issued. (A connect reported after
    /// its aborted connect lands here: close that socket.)
    UnknownConn(ConnId),
    /// Not a pending lookup: answered, cancelled, or never issued.
    UnknownLookup(LookupId),
    /// The socket is live but not in the state the call needs.
    WrongState {
        /// The socket.
        conn: ConnId,
        /// The state the call needs.
        expected: ConnState,
        /// Its state.
        actual: ConnState,
    },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::UnknownRequest(id) => write!(f, "{id} is not a pending request"),
            CallError::UnknownConn(id) => write!(f, "{id} is not a live socket"),
            CallError::UnknownLookup(id) => write!(f, "{id} is not a pending lookup"),
            CallError::WrongState {
                conn,
                expected,
                actual,
            } => write!(f, "{conn} is {actual:?}, not {expected:?}"),
        }
    }
}

impl std::error::Error for CallError {}

// ---------------------------------------------------------------------------------------------
// Statistics.

/// Current numbers, per key or in total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Sockets handed out and not yet freed.
    pub in_use: usize,
    /// Sockets pooled.
    pub idle: usize,
    /// Connects in flight.
    pub connecting: usize,
    /// Requests waiting for a socket (resolved, not connecting).
    pub queued: usize,
    /// Requests waiting for their lookup.
    pub resolving: usize,
}

impl Gauges {
    /// Sockets counted against `max_open`: in use, connecting and idle.
    pub fn open(&self) -> usize {
        self.in_use + self.connecting + self.idle
    }
}

/// Cumulative counts, per key (while the key has an entry) or for the pool's whole life.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests accepted by [`Keepalive::allocate`](crate::Keepalive::allocate).
    pub requests: u64,
    /// Answered at once from the pool.
    pub immediate: u64,
    /// Answered from the pool after waiting.
    pub deferred: u64,
    /// Connects started.
    pub connects: u64,
    /// Connects that succeeded.
    pub connected: u64,
    /// Connects that failed.
    pub connect_failures: u64,
    /// Requests failed by their lookup.
    pub resolve_failures: u64,
    /// Requests timed out (request or connect timeout).
    pub timeouts: u64,
    /// Requests deallocated.
    pub deallocated: u64,
    /// Requests answered by [`Keepalive::shutdown`](crate::Keepalive::shutdown).
    pub shutdown_cancelled: u64,
    /// Idle sockets found bad: activity while idle, or refused by the hand-out check.
    pub stale_discards: u64,
    /// Sockets freed as not reusable.
    pub not_reusable: u64,
    /// Idle sockets evicted for `max_open`.
    pub evictions: u64,
    /// Idle sockets closed by the keep-alive timer.
    pub expired: u64,
    /// Sockets closed for their `max_lifetime` or `max_uses`.
    pub retired: u64,
    /// Requests that left the queue to be served (a connect or a freed socket).
    pub queue_waits: u64,
    /// Their total time in the queue.
    pub queue_wait_total: Duration,
    /// The longest of them.
    pub queue_wait_max: Duration,
}

impl Counters {
    /// Requests served by a pooled socket: `immediate + deferred`.
    pub fn reuse_hits(&self) -> u64 {
        self.immediate + self.deferred
    }

    /// Mean time in the queue of the requests that left it to be served.
    pub fn mean_queue_wait(&self) -> Option<Duration> {
        if self.queue_waits == 0 {
            return None;
        }
        let nanos = self.queue_wait_total.as_nanos() / u128::from(self.queue_waits);
        Some(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    fn record_wait(&mut self, wait: Duration) {
        self.queue_waits += 1;
        self.queue_wait_total = self.queue_wait_total.saturating_add(wait);
        self.queue_wait_max = self.queue_wait_max.max(wait);
    }
}

/// One key's numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostStats {
    /// The key.
    pub key: Arc<PoolKey>,
    /// Its current numbers.
    pub gauges: Gauges,
    /// Its counts since its entry was created. An entry is dropped when the key has no
    /// request and no socket left, and starts from zero if the key comes back.
    pub counters: Counters,
}

/// A snapshot of the pool's numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Current numbers over all keys.
    pub total: Gauges,
    /// Counts over the pool's life.
    pub counters: Counters,
    /// Per key, sorted by key.
    pub hosts: Vec<HostStats>,
}

// ---------------------------------------------------------------------------------------------
// Internal records.

/// A timer's place in the ordered timer map: deadline, then arming order.
type TimerKey = (Duration, u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// The request's timeout.
    Request(RequestId),
    /// The socket's connect timeout (connecting) or keep-alive expiry (idle).
    Conn(ConnId),
}

#[derive(Clone, Copy, Debug)]
enum ReqStage {
    Allocating,
    Resolving(LookupId),
    Queued { since: Duration, ip: IpAddr },
    Connecting(ConnId),
}

#[derive(Debug)]
struct Req {
    /// Allocation order: queue position and shutdown order.
    seq: u64,
    host: HostId,
    /// Only a new connection will do ([`RequestSpec::fresh`]).
    fresh: bool,
    stage: ReqStage,
    timer: Option<TimerKey>,
}

#[derive(Clone, Copy, Debug)]
enum CState {
    Connecting(RequestId),
    InUse,
    /// Freed at this sequence number: the idle lists keep this order (the invariant check
    /// of the tests reads it).
    Idle(#[cfg_attr(not(test), allow(dead_code))] u64),
}

impl CState {
    fn public(self) -> ConnState {
        match self {
            CState::Connecting(_) => ConnState::Connecting,
            CState::InUse => ConnState::InUse,
            CState::Idle(_) => ConnState::Idle,
        }
    }
}

#[derive(Debug)]
struct Conn {
    host: HostId,
    state: CState,
    /// The socket's timer: its connect timeout while it connects; while it is idle, a
    /// keep-alive timer at or before `idle_until`. A socket handed out keeps the timer it
    /// had as idle (see [`Pool::park`]); it is dropped when it fires on a socket in use.
    timer: Option<TimerKey>,
    /// While idle: when its keep-alive (or its lifetime) ends.
    idle_until: Duration,
    /// While idle: its place among all idle sockets, and among its key's.
    lru_link: Link,
    key_link: Link,
    /// A shorter idle life than `keep_alive` for this socket (the server's hint).
    idle_limit: Option<Duration>,
    /// When the socket reaches its `max_lifetime` (jittered), from its connect.
    expires: Option<Duration>,
    /// Requests served, and the most it may serve (`max_uses`, jittered).
    uses: u32,
    max_uses: Option<u32>,
}

#[derive(Debug)]
struct Lookup {
    host: String,
    /// Waiting requests by allocation order.
    waiters: BTreeMap<u64, RequestId>,
}

#[derive(Debug)]
struct Host {
    key: Arc<PoolKey>,
    in_use: usize,
    connecting: usize,
    resolving: usize,
    /// Idle sockets by free order: the last is the most recently freed.
    idle: IdleList,
    /// Queued requests by allocation order.
    waiters: BTreeMap<u64, RequestId>,
    /// This key's entry in `Pool::runnable`, if any.
    runnable: Option<u64>,
    counters: Counters,
}

impl Host {
    fn busy(&self) -> usize {
        self.in_use + self.connecting
    }
}

#[derive(Clone, Copy, Debug)]
enum Gauge {
    InUse,
    Connecting,
    Resolving,
}

// ---------------------------------------------------------------------------------------------
// The pool.

/// The keep-alive pool's bookkeeping. See the [module documentation](self).
#[derive(Debug)]
pub struct Pool {
    settings: Settings,
    /// Latest time seen (time never goes backwards here).
    now: Duration,
    /// Source of sequence numbers: requests, idle order, timers.
    seq: u64,
    shut_down: bool,
    /// The jitter's random state (xorshift).
    rng: u64,
    requests: Arena<Req>,
    conns: Arena<Conn>,
    lookups: Arena<Lookup>,
    lookup_by_host: FxHashMap<String, LookupId>,
    hosts: Arena<Host>,
    host_by_key: FxHashMap<Arc<PoolKey>, HostId>,
    /// All idle sockets by free order: the first is the least recently freed.
    lru: IdleList,
    /// Keys with waiters and room under `max_per_host`, by their oldest waiter's `seq`.
    runnable: BTreeMap<u64, HostId>,
    timers: BTreeMap<TimerKey, Timer>,
    /// The first key of `timers`, kept beside it: every call that may have changed the
    /// deadline reports it, and the map rarely changes on the hand-out's path.
    first_timer: Option<TimerKey>,
    /// The deadline last reported with [`Action::SetTimer`].
    reported: Option<Duration>,
    in_use: usize,
    connecting: usize,
    resolving: usize,
    queued: usize,
    counters: Counters,
    /// The host last interned, found again by its key's address.
    last_host: Option<HostId>,
    /// An emptied list of actions given back by the caller ([`Pool::recycle`]), reused
    /// for the next call's answer: a hand-out or a free allocates no list.
    spare: Vec<Action>,
}

impl Pool {
    /// An empty pool, or the reason the settings are refused.
    pub fn new(settings: Settings) -> Result<Self, SettingsError> {
        settings.validate()?;
        Ok(Pool {
            settings: settings.clone(),
            now: Duration::ZERO,
            seq: 0,
            shut_down: false,
            rng: settings.jitter_seed | 1,
            requests: Arena::new(),
            conns: Arena::new(),
            lookups: Arena::new(),
            lookup_by_host: FxHashMap::default(),
            hosts: Arena::new(),
            host_by_key: FxHashMap::default(),
            lru: IdleList::default(),
            runnable: BTreeMap::new(),
            timers: BTreeMap::new(),
            first_timer: None,
            reported: None,
            in_use: 0,
            connecting: 0,
            resolving: 0,
            queued: 0,
            counters: Counters::default(),
            spare: Vec::new(),
            last_host: None,
        })
    }

    /// An empty list for [`free_into`](Self::free_into): the one last given back with
    /// [`recycle`](Self::recycle), if any.
    pub fn action_list(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.spare)
    }

    /// Gives back a list of actions the caller has emptied, to carry a later answer.
    pub fn recycle(&mut self, mut actions: Vec<Action>) {
        actions.clear();
        if actions.capacity() > self.spare.capacity() {
            self.spare = actions;
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// The latest `now` passed in. An earlier `now` than this is taken as this one.
    #[cfg(test)]
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The earliest pending deadline, if any (also reported by [`Action::SetTimer`]).
    pub fn next_deadline(&self) -> Option<Duration> {
        self.first_timer.map(|k| k.0)
    }

    /// The stage of a pending request; `None` once it is answered or deallocated.
    #[cfg(test)]
    pub fn request_stage(&self, request: RequestId) -> Option<RequestStage> {
        self.requests.get(request.0).map(|r| match r.stage {
            ReqStage::Allocating => RequestStage::Allocating,
            ReqStage::Resolving(_) => RequestStage::Resolving,
            ReqStage::Queued { .. } => RequestStage::Queued,
            ReqStage::Connecting(_) => RequestStage::Connecting,
        })
    }

    /// The state of a live socket; `None` once it is closed.
    #[cfg(test)]
    pub fn conn_state(&self, conn: ConnId) -> Option<ConnState> {
        self.conns.get(conn.0).map(|c| c.state.public())
    }

    /// The key of a live socket.
    pub fn conn_key(&self, conn: ConnId) -> Option<&Arc<PoolKey>> {
        let c = self.conns.get(conn.0)?;
        self.hosts.get(c.host.0).map(|h| &h.key)
    }

    /// Current numbers over all keys (cheap; [`stats`](Self::stats) has everything).
    pub fn gauges(&self) -> Gauges {
        Gauges {
            in_use: self.in_use,
            idle: self.lru.len(),
            connecting: self.connecting,
            queued: self.queued,
            resolving: self.resolving,
        }
    }

    /// A snapshot of every number, in total and per key.
    pub fn stats(&self) -> Stats {
        let mut hosts: Vec<HostStats> = self.hosts.iter().map(|(_, h)| host_stats(h)).collect();
        hosts.sort_by(|a, b| a.key.cmp(&b.key));
        Stats {
            total: self.gauges(),
            counters: self.counters.clone(),
            hosts,
        }
    }

    /// One key's numbers; `None` if the key has no entry.
    #[cfg(test)]
    pub fn host_stats(&self, key: &PoolKey) -> Option<HostStats> {
        let h = self.host_by_key.get(key)?;
        self.hosts.get(h.0).map(host_stats)
    }

    // -- the calls ------------------------------------------------------------------------

    /// Asks for a socket for `spec.key`.
    ///
    /// Returns the request's id and the actions. If an idle socket of the key passes
    /// `check`, the request is answered at once ([`Origin::Immediate`]) and the id is already
    /// retired. Otherwise the request's timer starts, and the request waits for a lookup
    /// (unless the address is an IP literal), then for a socket of its key, then for its
    /// connect. It gets exactly one [`Action::Respond`], unless it is
    /// [deallocated](Self::deallocate) first.
    ///
    /// The manager calls [`request`](Self::request), the same with its common answer
    /// given as it is; the tests drive the pool through this one.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn allocate<F>(
        &mut self,
        spec: RequestSpec,
        now: Duration,
        check: F,
    ) -> Result<(RequestId, Vec<Action>), AllocateError>
    where
        F: FnMut(ConnId) -> bool,
    {
        match self.request(spec, now, check)? {
            Allocation::Immediate {
                request,
                conn,
                timer,
            } => {
                let mut out = std::mem::take(&mut self.spare);
                out.push(immediate_answer(request, conn));
                if let Some(at) = timer {
                    out.push(Action::SetTimer { at });
                }
                Ok((request, out))
            }
            Allocation::Actions(request, out) => Ok((request, out)),
        }
    }

    /// [`allocate`](Self::allocate), with the common answer, an idle socket handed out at
    /// once, given as it is rather than as a list of actions.
    pub fn request<F>(
        &mut self,
        spec: RequestSpec,
        now: Duration,
        mut check: F,
    ) -> Result<Allocation, AllocateError>
    where
        F: FnMut(ConnId) -> bool,
    {
        if self.shut_down {
            return Err(AllocateError::ShutDown);
        }
        if let Some(field) = spec.key.missing() {
            return Err(AllocateError::Missing(field));
        }
        let timeout = match spec.timeout {
            Some(t) if t.is_zero() => return Err(AllocateError::ZeroTimeout),
            Some(t) => t,
            None => self.settings.timeout,
        };
        let now = self.tick(now);
        let h = self.intern(&spec.key);
        let seq = self.next_seq();
        let fresh = spec.fresh;
        // The actions start in the spare list, where `take_idle` puts its closes: a socket
        // handed out at once with nothing else to do moves no list.
        let idle = if fresh {
            None
        } else {
            self.take_idle(h, &mut check, None)
        };
        let rid;
        let mut out;
        if let Some(conn) = idle {
            // Answered at once: the request needs no record, only its id, retired as the
            // record's insertion and removal would retire it.
            rid = RequestId(self.requests.retire_next());
            self.count(h, |c| {
                c.requests += 1;
                c.immediate += 1;
            });
            // A socket taken from the pool frees no room. Unless stale sockets were closed
            // on the way (actions already) or requests wait for room, touching the key and
            // pumping would do nothing: only the timer is reported.
            if self.spare.is_empty() && self.nothing_waits(h) {
                return Ok(Allocation::Immediate {
                    request: rid,
                    conn,
                    timer: self.timer_change(),
                });
            }
            out = std::mem::take(&mut self.spare);
            out.push(immediate_answer(rid, conn));
        } else {
            out = std::mem::take(&mut self.spare);
            rid = RequestId(self.requests.insert(Req {
                seq,
                host: h,
                fresh,
                stage: ReqStage::Allocating,
                timer: None,
            }));
            self.count(h, |c| c.requests += 1);
            let timer = self.arm(now.saturating_add(timeout), Timer::Request(rid));
            if let Some(req) = self.requests.get_mut(rid.0) {
                req.timer = Some(timer);
            }
            match spec.key.addr.parse::<IpAddr>() {
                Ok(ip) => self.enqueue(rid, ip, now, &mut check, &mut out),
                Err(_) => self.start_lookup(rid, &mut out),
            }
        }
        self.settle(h, now, &mut out);
        Ok(Allocation::Actions(rid, out))
    }

    /// Cancels a pending request in any stage. No response follows: a lookup nobody else
    /// waits for is cancelled, a connect in flight is aborted, and the room it held goes to
    /// the next waiter.
    pub fn deallocate(
        &mut self,
        request: RequestId,
        now: Duration,
    ) -> Result<Vec<Action>, CallError> {
        let h = self
            .requests
            .get(request.0)
            .map(|r| r.host)
            .ok_or(CallError::UnknownRequest(request))?;
        let now = self.tick(now);
        let mut out = std::mem::take(&mut self.spare);
        self.detach(request, &mut out);
        if let Some(req) = self.requests.remove(request.0) {
            self.disarm(req.timer);
        }
        self.count(h, |c| c.deallocated += 1);
        self.settle(h, now, &mut out);
        Ok(out)
    }

    /// A lookup answered. The first address is used (order them by preference). Every
    /// request waiting for it takes an idle socket of its key that passes `check`
    /// ([`Origin::Deferred`]) or joins its key's queue. No address at all fails them with
    /// [`Failure::no_address`].
    pub fn resolved<F>(
        &mut self,
        lookup: LookupId,
        addrs: &[IpAddr],
        now: Duration,
        mut check: F,
    ) -> Result<Vec<Action>, CallError>
    where
        F: FnMut(ConnId) -> bool,
    {
        let result = addrs.first().copied().ok_or_else(Failure::no_address);
        self.finish_lookup(lookup, result, now, &mut check)
    }

    /// A lookup failed: every request waiting for it gets `("resolve", undef, errstr)`.
    pub fn resolve_failed(
        &mut self,
        lookup: LookupId,
        errstr: &str,
        now: Duration,
    ) -> Result<Vec<Action>, CallError> {
        self.finish_lookup(lookup, Err(Failure::resolve(errstr)), now, &mut |_| true)
    }

    /// A connect succeeded (including TLS, if the layer does it before reporting): the
    /// socket is in use and its request gets it ([`Origin::New`]).
    pub fn connected(&mut self, conn: ConnId, now: Duration) -> Result<Vec<Action>, CallError> {
        let (h, rid) = self.connecting_conn(conn)?;
        let now = self.tick(now);
        let mut out = std::mem::take(&mut self.spare);
        let expires = self
            .settings
            .max_lifetime
            .map(|l| now.saturating_add(self.jittered(l)));
        let max_uses = self.settings.max_uses.map(|n| self.jittered_count(n));
        let timer = self.conns.get_mut(conn.0).and_then(|c| {
            c.state = CState::InUse;
            c.expires = expires;
            c.max_uses = max_uses;
            c.uses = 1;
            c.timer.take()
        });
        self.disarm(timer);
        self.gauge(h, Gauge::Connecting, false);
        self.gauge(h, Gauge::InUse, true);
        self.count(h, |c| c.connected += 1);
        let outcome = Outcome::Connected {
            conn,
            origin: Origin::New,
        };
        self.respond(rid, RequestStage::Connecting, outcome, &mut out);
        self.settle(h, now, &mut out);
        Ok(out)
    }

    /// A connect failed (connect, bind, socket, TLS, ...): the socket is gone, its request
    /// gets `failure`, and the room goes to the next waiter.
    pub fn connect_failed(
        &mut self,
        conn: ConnId,
        failure: Failure,
        now: Duration,
    ) -> Result<Vec<Action>, CallError> {
        let (h, rid) = self.connecting_conn(conn)?;
        let now = self.tick(now);
        let mut out = std::mem::take(&mut self.spare);
        self.drop_conn(conn.0);
        self.gauge(h, Gauge::Connecting, false);
        self.count(h, |c| c.connect_failures += 1);
        self.respond(
            rid,
            RequestStage::Connecting,
            Outcome::Failed(failure),
            &mut out,
        );
        self.settle(h, now, &mut out);
        Ok(out)
    }

    /// Shortens socket `conn`'s idle life in the pool, from its next free on, to `limit`
    /// (at most `keep_alive`): a server that says `Keep-Alive: timeout=N` closes it after N
    /// seconds idle, so a client that stops reusing it a second earlier never sends a
    /// request into that close. Zero means it is not pooled again.
    pub fn set_idle_limit(&mut self, conn: ConnId, limit: Duration) -> Result<(), CallError> {
        let c = self
            .conns
            .get_mut(conn.0)
            .ok_or(CallError::UnknownConn(conn))?;
        c.idle_limit = Some(limit);
        Ok(())
    }

    /// [`free_into`](Self::free_into) into a list of its own.
    #[cfg(test)]
    pub fn free(
        &mut self,
        conn: ConnId,
        reusable: bool,
        now: Duration,
    ) -> Result<Vec<Action>, CallError> {
        let mut out = std::mem::take(&mut self.spare);
        match self.free_into(conn, reusable, now, &mut out) {
            Ok(()) => Ok(out),
            Err(e) => {
                self.spare = out;
                Err(e)
            }
        }
    }

    /// The user gave a socket back. `reusable` is the socket layer's verdict at free time
    /// (open, nothing to read, no EOF, no error). A reusable socket goes to the oldest waiter
    /// of its key ([`Origin::Deferred`]) or into the pool with its keep-alive restarted
    /// ([`Action::WatchIdle`]); any other is closed. If an older request of another key is
    /// waiting for room under `max_open`, that request goes first: the socket is evicted to
    /// make room for it. After shutdown every freed socket is closed.
    ///
    /// The actions are appended to `out`: sockets given back together share one list. On
    /// an error nothing is appended.
    pub fn free_into(
        &mut self,
        conn: ConnId,
        reusable: bool,
        now: Duration,
        out: &mut Vec<Action>,
    ) -> Result<(), CallError> {
        let c = self.conns.get(conn.0).ok_or(CallError::UnknownConn(conn))?;
        let h = c.host;
        if !matches!(c.state, CState::InUse) {
            return Err(CallError::WrongState {
                conn,
                expected: ConnState::InUse,
                actual: c.state.public(),
            });
        }
        let (uses, max_uses, expires) = (c.uses, c.max_uses, c.expires);
        let now = self.tick(now);
        let worn = max_uses.is_some_and(|m| uses >= m) || expires.is_some_and(|e| now >= e);
        let retire = reusable && worn && !self.shut_down;
        let reusable = reusable && !worn;
        self.gauge(h, Gauge::InUse, false);
        // The key's oldest waiter takes the socket, unless an older request of another key
        // waits for room under max_open: then the room goes to that one first (no starving).
        // Waiters that want a new connection are passed over: the socket goes to the oldest
        // other one, or into the pool, and settling below connects for them.
        let oldest_runnable = self.runnable.keys().next().copied();
        let requests = &self.requests;
        let waiter = match self.hosts.get_mut(h.0) {
            Some(host) if reusable && !self.shut_down && !host.waiters.is_empty() => {
                let first = host
                    .waiters
                    .iter()
                    .find(|(_, rid)| !requests.get(rid.0).is_some_and(|r| r.fresh))
                    .map(|(&seq, &rid)| (seq, rid));
                match first {
                    Some((seq, rid)) if oldest_runnable.is_none_or(|r| r >= seq) => {
                        host.waiters.remove(&seq);
                        Some((seq, rid))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if self.shut_down || !reusable {
            self.drop_conn(conn.0);
            let reason = if reusable {
                CloseReason::Shutdown
            } else if retire {
                self.count(h, |c| c.retired += 1);
                CloseReason::Retired
            } else {
                self.count(h, |c| c.not_reusable += 1);
                CloseReason::NotReusable
            };
            out.push(Action::Close { conn, reason });
        } else if let Some((_, rid)) = waiter {
            // Straight to the oldest waiter of the key.
            if let Some(c) = self.conns.get_mut(conn.0) {
                c.uses = c.uses.saturating_add(1);
            }
            self.queued = self.queued.saturating_sub(1);
            self.gauge(h, Gauge::InUse, true);
            let wait = self.queue_wait(rid, now);
            self.count(h, |c| {
                c.deferred += 1;
                c.record_wait(wait);
            });
            let outcome = Outcome::Connected {
                conn,
                origin: Origin::Deferred,
            };
            self.respond(rid, RequestStage::Queued, outcome, out);
        } else if !self.runnable.is_empty()
            && self.lru.is_empty()
            && self.open() + 1 >= self.settings.max_open
        {
            // Parked, it would be the least recently used idle socket and be evicted at once
            // for a runnable waiter of another key: close it without watching it first.
            self.drop_conn(conn.0);
            self.count(h, |c| c.evictions += 1);
            out.push(Action::Close {
                conn,
                reason: CloseReason::Evicted,
            });
        } else {
            self.park(conn, now, out);
            // Pooled, the socket freed room; unless requests wait for room (of any key),
            // touching the key (which now has an idle socket) and pumping would do
            // nothing: only the timer is reported.
            if self.nothing_waits(h) {
                self.report_timer(out);
                return Ok(());
            }
        }
        self.settle(h, now, out);
        Ok(())
    }

    /// An idle socket turned readable (data, EOF, error): it is closed
    /// ([`CloseReason::Activity`]).
    pub fn idle_activity(&mut self, conn: ConnId, now: Duration) -> Result<Vec<Action>, CallError> {
        let c = self.conns.get(conn.0).ok_or(CallError::UnknownConn(conn))?;
        let h = c.host;
        if !matches!(c.state, CState::Idle(_)) {
            return Err(CallError::WrongState {
                conn,
                expected: ConnState::Idle,
                actual: c.state.public(),
            });
        }
        let now = self.tick(now);
        let mut out = std::mem::take(&mut self.spare);
        self.unpark(conn);
        self.drop_conn(conn.0);
        self.count(h, |c| c.stale_discards += 1);
        out.push(Action::Close {
            conn,
            reason: CloseReason::Activity,
        });
        self.settle(h, now, &mut out);
        Ok(out)
    }

    /// Moves time to `now` and fires every deadline up to it: request timeouts (any stage:
    /// `("connect", 110, "Connection timed out")`), connect timeouts (the same) and keep-alive
    /// expiries ([`CloseReason::KeepAliveExpired`]).
    pub fn advance(&mut self, now: Duration) -> Vec<Action> {
        let now = self.tick(now);
        let mut out = std::mem::take(&mut self.spare);
        while let Some((&tk, &timer)) = self.timers.first_key_value() {
            if tk.0 > now {
                break;
            }
            self.timer_remove(&tk);
            match timer {
                Timer::Request(rid) => {
                    let due = self
                        .requests
                        .get(rid.0)
                        .is_some_and(|r| r.timer == Some(tk));
                    if due {
                        self.time_out(rid, &mut out);
                    }
                }
                Timer::Conn(conn) => {
                    let Some(c) = self.conns.get_mut(conn.0) else {
                        continue;
                    };
                    if c.timer != Some(tk) {
                        continue;
                    }
                    c.timer = None;
                    let h = c.host;
                    let worn = c.expires.is_some_and(|e| now >= e);
                    match c.state {
                        CState::Connecting(rid) => self.time_out(rid, &mut out),
                        CState::Idle(_) if c.idle_until > now => {
                            // Early: the timer of an earlier idle spell.
                            let until = c.idle_until;
                            let timer = self.arm(until, Timer::Conn(conn));
                            if let Some(c) = self.conns.get_mut(conn.0) {
                                c.timer = Some(timer);
                            }
                        }
                        CState::Idle(_) => {
                            self.unpark(conn);
                            self.drop_conn(conn.0);
                            let reason = if worn {
                                self.count(h, |c| c.retired += 1);
                                CloseReason::Retired
                            } else {
                                self.count(h, |c| c.expired += 1);
                                CloseReason::KeepAliveExpired
                            };
                            out.push(Action::Close { conn, reason });
                            self.touch(h);
                        }
                        CState::InUse => {}
                    }
                }
            }
        }
        self.pump(now, &mut out);
        self.report_timer(&mut out);
        out
    }

    /// Shuts the pool down: every pending request is answered with [`Failure::shutdown`]
    /// (in allocation order), connects in flight are aborted, lookups cancelled, idle sockets
    /// closed. Afterwards [`allocate`](Self::allocate) is refused, sockets still in use are
    /// closed when freed, and no response is ever delivered. A second call does nothing.
    pub fn shutdown(&mut self, now: Duration) -> Vec<Action> {
        let mut out = std::mem::take(&mut self.spare);
        if self.shut_down {
            return out;
        }
        self.tick(now);
        self.shut_down = true;
        let mut pending: Vec<(u64, RequestId)> = self
            .requests
            .iter()
            .map(|(k, r)| (r.seq, RequestId(k)))
            .collect();
        pending.sort_unstable();
        for (_, rid) in pending {
            let Some(h) = self.requests.get(rid.0).map(|r| r.host) else {
                continue;
            };
            let stage = self.detach(rid, &mut out);
            self.count(h, |c| c.shutdown_cancelled += 1);
            self.respond(rid, stage, Outcome::Failed(Failure::shutdown()), &mut out);
            self.touch(h);
        }
        let idle: Vec<ConnId> = self
            .lru
            .keys(&self.conns, |c| &c.lru_link)
            .into_iter()
            .map(ConnId)
            .collect();
        for conn in idle {
            let Some(h) = self.conns.get(conn.0).map(|c| c.host) else {
                continue;
            };
            self.unpark(conn);
            self.drop_conn(conn.0);
            out.push(Action::Close {
                conn,
                reason: CloseReason::Shutdown,
            });
            self.touch(h);
        }
        // Sockets still in use may hold the keep-alive timer of an earlier idle spell;
        // they will be closed when freed.
        self.first_timer = None;
        for (_, timer) in std::mem::take(&mut self.timers) {
            if let Timer::Conn(conn) = timer {
                if let Some(c) = self.conns.get_mut(conn.0) {
                    c.timer = None;
                }
            }
        }
        self.report_timer(&mut out);
        out
    }

    /// Checks every internal invariant (O(n); a debugging aid the tests call after every
    /// step): recounted numbers match the kept ones; `in use + connecting <= max_per_host`
    /// and `idle + in use + connecting <= max_per_host` per key; `in use + connecting + idle
    /// <= max_open`; no key with waiters could be served now; every record, queue entry,
    /// lookup and timer points back at its owner.
    #[cfg(test)]
    pub fn check_invariants(&self) -> Result<(), String> {
        macro_rules! ensure {
            ($cond:expr, $($fmt:tt)*) => {
                if !$cond {
                    return Err(format!($($fmt)*));
                }
            };
        }
        let max_host = self.settings.max_per_host;
        // Keys.
        ensure!(
            self.host_by_key.len() == self.hosts.len(),
            "key map has {} entries, {} hosts",
            self.host_by_key.len(),
            self.hosts.len()
        );
        let mut per_host: FxHashMap<HostId, [usize; 5]> = FxHashMap::default();
        for (k, host) in self.hosts.iter() {
            let h = HostId(k);
            ensure!(
                self.host_by_key.get(&*host.key) == Some(&h),
                "key map disagrees for {}",
                host.key
            );
            per_host.insert(h, [0; 5]);
        }
        // Sockets.
        let mut connecting_total = 0;
        let mut in_use_total = 0;
        let mut idle_total = 0;
        let lru_keys = self.lru.keys(&self.conns, |c| &c.lru_link);
        for (k, c) in self.conns.iter() {
            let conn = ConnId(k);
            let counts = per_host
                .get_mut(&c.host)
                .ok_or_else(|| format!("{conn} belongs to a missing host"))?;
            match c.state {
                CState::Connecting(rid) => {
                    counts[0] += 1;
                    connecting_total += 1;
                    let req = self
                        .requests
                        .get(rid.0)
                        .ok_or_else(|| format!("{conn} connects for missing {rid}"))?;
                    ensure!(
                        matches!(req.stage, ReqStage::Connecting(x) if x == conn),
                        "{rid} is not connecting on {conn}"
                    );
                    ensure!(req.host == c.host, "{conn} and {rid} disagree on the key");
                    ensure!(
                        c.timer.is_some() == self.settings.connect_timeout.is_some(),
                        "{conn} connect timer mismatch"
                    );
                }
                CState::InUse => {
                    counts[1] += 1;
                    in_use_total += 1;
                    // Only the keep-alive timer of its last idle spell (see `park`).
                    ensure!(
                        c.timer.is_none() || c.uses > 0,
                        "{conn} in use since its connect has a timer"
                    );
                }
                CState::Idle(_) => {
                    counts[2] += 1;
                    idle_total += 1;
                    ensure!(lru_keys.contains(&conn.0), "{conn} missing from LRU");
                    let listed = self.hosts.get(c.host.0).is_some_and(|h| {
                        h.idle.keys(&self.conns, |c| &c.key_link).contains(&conn.0)
                    });
                    ensure!(listed, "{conn} missing from its key's idle list");
                    ensure!(
                        c.timer.is_some_and(|tk| tk.0 <= c.idle_until),
                        "{conn} idle without a keep-alive timer at or before its end"
                    );
                }
            }
            if let Some(tk) = c.timer {
                ensure!(
                    self.timers.get(&tk) == Some(&Timer::Conn(conn)),
                    "{conn} timer not armed"
                );
            }
        }
        ensure!(
            self.lru.len() == idle_total && lru_keys.len() == idle_total,
            "LRU has {} entries ({} linked)",
            self.lru.len(),
            lru_keys.len()
        );
        // Oldest first: the order of the frees.
        let seq_of = |k: &Key| match self.conns.get(*k).map(|c| c.state) {
            Some(CState::Idle(seq)) => seq,
            _ => 0,
        };
        ensure!(
            lru_keys.windows(2).all(|w| seq_of(&w[0]) < seq_of(&w[1])),
            "LRU out of order"
        );
        for (_, host) in self.hosts.iter() {
            let keys = host.idle.keys(&self.conns, |c| &c.key_link);
            ensure!(
                keys.len() == host.idle.len()
                    && keys.windows(2).all(|w| seq_of(&w[0]) < seq_of(&w[1])),
                "{}: idle list broken or out of order",
                host.key
            );
        }

        // Requests.
        let mut resolving_total = 0;
        let mut queued_total = 0;
        for (k, req) in self.requests.iter() {
            let rid = RequestId(k);
            let counts = per_host
                .get_mut(&req.host)
                .ok_or_else(|| format!("{rid} belongs to a missing host"))?;
            let tk = req
                .timer
                .ok_or_else(|| format!("{rid} pending without a timer"))?;
            ensure!(
                self.timers.get(&tk) == Some(&Timer::Request(rid)),
                "{rid} timer not armed"
            );
            match req.stage {
                ReqStage::Allocating => return Err(format!("{rid} left in Allocating")),
                ReqStage::Resolving(lid) => {
                    counts[3] += 1;
                    resolving_total += 1;
                    let l = self
                        .lookups
                        .get(lid.0)
                        .ok_or_else(|| format!("{rid} waits for missing {lid}"))?;
                    ensure!(l.waiters.get(&req.seq) == Some(&rid), "{lid} lost {rid}");
                }
                ReqStage::Queued { .. } => {
                    counts[4] += 1;
                    queued_total += 1;
                    let host = self.hosts.get(req.host.0);
                    ensure!(
                        host.and_then(|h| h.waiters.get(&req.seq)) == Some(&rid),
                        "{rid} missing from its queue"
                    );
                }
                ReqStage::Connecting(conn) => {
                    let c = self
                        .conns
                        .get(conn.0)
                        .ok_or_else(|| format!("{rid} connects on missing {conn}"))?;
                    ensure!(
                        matches!(c.state, CState::Connecting(x) if x == rid),
                        "{conn} does not connect for {rid}"
                    );
                }
            }
        }
        // Per-key numbers, limits, queues, runnable set.
        let mut open_check = 0;
        let mut runnable_expected = BTreeMap::new();
        for (k, host) in self.hosts.iter() {
            let h = HostId(k);
            let [connecting, in_use, idle, resolving, queued] =
                per_host.get(&h).copied().unwrap_or_default();
            ensure!(
                host.connecting == connecting,
                "{}: connecting {} != {}",
                host.key,
                host.connecting,
                connecting
            );
            ensure!(
                host.in_use == in_use,
                "{}: in use {} != {}",
                host.key,
                host.in_use,
                in_use
            );
            ensure!(host.idle.len() == idle, "{}: idle list length", host.key);
            ensure!(
                host.resolving == resolving,
                "{}: resolving {} != {}",
                host.key,
                host.resolving,
                resolving
            );
            ensure!(host.waiters.len() == queued, "{}: queue length", host.key);
            ensure!(
                host.busy() <= max_host,
                "{}: {} busy > max_per_host",
                host.key,
                host.busy()
            );
            ensure!(
                host.busy() + idle <= max_host,
                "{}: busy + idle > max_per_host",
                host.key
            );
            ensure!(
                host.waiters.is_empty() || host.idle.is_empty(),
                "{}: waiters beside idle sockets",
                host.key
            );
            ensure!(
                connecting + in_use + idle + resolving + queued > 0,
                "{}: empty entry kept",
                host.key
            );
            let want = if host.busy() < max_host {
                host.waiters.keys().next().copied()
            } else {
                None
            };
            ensure!(host.runnable == want, "{}: runnable mark stale", host.key);
            if let Some(seq) = want {
                runnable_expected.insert(seq, h);
            }
            open_check += connecting + in_use + idle;
        }
        ensure!(self.runnable == runnable_expected, "runnable set stale");
        ensure!(
            self.connecting == connecting_total
                && self.in_use == in_use_total
                && self.resolving == resolving_total
                && self.queued == queued_total,
            "totals stale: {:?}",
            self.gauges()
        );
        ensure!(self.open() == open_check, "open count stale");
        ensure!(
            self.open() <= self.settings.max_open,
            "{} open > max_open",
            self.open()
        );
        ensure!(
            self.runnable.is_empty()
                || (self.open() >= self.settings.max_open && self.lru.is_empty()),
            "a runnable waiter could be served now"
        );
        // Lookups.
        ensure!(
            self.lookup_by_host.len() == self.lookups.len(),
            "lookup map size"
        );
        for (k, l) in self.lookups.iter() {
            let lid = LookupId(k);
            ensure!(!l.waiters.is_empty(), "{lid} has no waiter");
            ensure!(
                self.lookup_by_host.get(&l.host) == Some(&lid),
                "lookup map disagrees for {}",
                l.host
            );
            for rid in l.waiters.values() {
                let ok = self
                    .requests
                    .get(rid.0)
                    .is_some_and(|r| matches!(r.stage, ReqStage::Resolving(x) if x == lid));
                ensure!(ok, "{lid} lists {rid}, which does not wait for it");
            }
        }
        // Timers.
        for (tk, timer) in &self.timers {
            let ok = match *timer {
                Timer::Request(rid) => self
                    .requests
                    .get(rid.0)
                    .is_some_and(|r| r.timer == Some(*tk)),
                Timer::Conn(conn) => self.conns.get(conn.0).is_some_and(|c| c.timer == Some(*tk)),
            };
            ensure!(ok, "orphan timer {timer:?}");
        }
        ensure!(
            self.first_timer == self.timers.keys().next().copied(),
            "first timer {:?} != {:?}",
            self.first_timer,
            self.timers.keys().next()
        );
        ensure!(
            self.reported == self.next_deadline(),
            "reported deadline {:?} != {:?}",
            self.reported,
            self.next_deadline()
        );
        if self.shut_down {
            ensure!(
                self.requests.len() == 0
                    && self.lookups.len() == 0
                    && self.lru.is_empty()
                    && self.connecting == 0
                    && self.timers.is_empty(),
                "work left after shutdown"
            );
        }
        Ok(())
    }

    // -- internals ------------------------------------------------------------------------

    fn tick(&mut self, now: Duration) -> Duration {
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    fn next_seq(&mut self) -> u64 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn open(&self) -> usize {
        self.in_use + self.connecting + self.lru.len()
    }

    fn arm(&mut self, at: Duration, timer: Timer) -> TimerKey {
        let key = (at, self.next_seq());
        self.timers.insert(key, timer);
        if self.first_timer.is_none_or(|f| key < f) {
            self.first_timer = Some(key);
        }
        key
    }

    fn disarm(&mut self, key: Option<TimerKey>) {
        if let Some(key) = key {
            self.timer_remove(&key);
        }
    }

    /// Removes a timer, keeping [`first_timer`](Pool::first_timer) in step.
    fn timer_remove(&mut self, key: &TimerKey) {
        if self.timers.remove(key).is_some() && self.first_timer == Some(*key) {
            self.first_timer = self.timers.keys().next().copied();
        }
    }

    fn gauge(&mut self, h: HostId, gauge: Gauge, up: bool) {
        fn step(x: &mut usize, up: bool) {
            if up {
                *x = x.saturating_add(1);
            } else {
                debug_assert!(*x > 0, "gauge underflow");
                *x = x.saturating_sub(1);
            }
        }
        if let Some(host) = self.hosts.get_mut(h.0) {
            step(
                match gauge {
                    Gauge::InUse => &mut host.in_use,
                    Gauge::Connecting => &mut host.connecting,
                    Gauge::Resolving => &mut host.resolving,
                },
                up,
            );
        }
        step(
            match gauge {
                Gauge::InUse => &mut self.in_use,
                Gauge::Connecting => &mut self.connecting,
                Gauge::Resolving => &mut self.resolving,
            },
            up,
        );
    }

    fn count(&mut self, h: HostId, f: impl Fn(&mut Counters)) {
        if let Some(host) = self.hosts.get_mut(h.0) {
            f(&mut host.counters);
        }
        f(&mut self.counters);
    }

    fn intern(&mut self, key: &Arc<PoolKey>) -> HostId {
        // A caller that shares its keys (`Request::for_key`) asks for the same key again
        // and again: the last key interned is known by its address, without hashing.
        if let Some(h) = self.last_host {
            if self
                .hosts
                .get(h.0)
                .is_some_and(|host| Arc::ptr_eq(&host.key, key))
            {
                return h;
            }
        }
        if let Some(&h) = self.host_by_key.get(&**key) {
            self.last_host = Some(h);
            return h;
        }
        let key = Arc::clone(key);
        let h = HostId(self.hosts.insert(Host {
            key: Arc::clone(&key),
            in_use: 0,
            connecting: 0,
            resolving: 0,
            idle: IdleList::default(),
            waiters: BTreeMap::new(),
            runnable: None,
            counters: Counters::default(),
        }));
        self.host_by_key.insert(key, h);
        self.last_host = Some(h);
        h
    }

    /// Recomputes the key's place in the runnable set.
    fn refresh(&mut self, h: HostId) {
        let max = self.settings.max_per_host;
        let Some(host) = self.hosts.get_mut(h.0) else {
            return;
        };
        let want = if host.busy() < max {
            host.waiters.keys().next().copied()
        } else {
            None
        };
        if host.runnable != want {
            let old = std::mem::replace(&mut host.runnable, want);
            if let Some(old) = old {
                self.runnable.remove(&old);
            }
            if let Some(new) = want {
                self.runnable.insert(new, h);
            }
        }
    }

    /// Refreshes the key's runnable mark and drops its entry if nothing refers to it.
    fn touch(&mut self, h: HostId) {
        self.refresh(h);
        let empty = self.hosts.get(h.0).is_some_and(|host| {
            host.busy() == 0
                && host.resolving == 0
                && host.idle.is_empty()
                && host.waiters.is_empty()
        });
        if empty {
            if let Some(host) = self.hosts.remove(h.0) {
                if let Some(seq) = host.runnable {
                    self.runnable.remove(&seq);
                }
                self.host_by_key.remove(&*host.key);
            }
        }
    }

    /// Whether no request waits, of key `h` or for room under any key: then touching the
    /// key and pumping ([`Pool::settle`]) would do nothing.
    fn nothing_waits(&self, h: HostId) -> bool {
        self.runnable.is_empty()
            && self
                .hosts
                .get(h.0)
                .is_some_and(|host| host.waiters.is_empty() && host.runnable.is_none())
    }

    /// The end of every call that may have freed room: touch the key, start what can
    /// start, report the timer.
    fn settle(&mut self, h: HostId, now: Duration, out: &mut Vec<Action>) {
        self.touch(h);
        self.pump(now, out);
        self.report_timer(out);
    }

    fn report_timer(&mut self, out: &mut Vec<Action>) {
        if let Some(at) = self.timer_change() {
            out.push(Action::SetTimer { at });
        }
    }

    /// The earliest deadline, if it differs from the one last reported (which it now is).
    fn timer_change(&mut self) -> Option<Option<Duration>> {
        let next = self.next_deadline();
        (next != self.reported).then(|| {
            self.reported = next;
            next
        })
    }

    /// Takes the most recently freed idle socket of the key that passes `check`, closing
    /// those that fail it (their actions go to `out`, or to the spare list if `None`). The
    /// socket is returned in use.
    fn take_idle(
        &mut self,
        h: HostId,
        check: &mut dyn FnMut(ConnId) -> bool,
        mut out: Option<&mut Vec<Action>>,
    ) -> Option<ConnId> {
        loop {
            let conn = ConnId(self.hosts.get(h.0)?.idle.last()?);
            self.unpark(conn);
            if check(conn) {
                if let Some(c) = self.conns.get_mut(conn.0) {
                    c.state = CState::InUse;
                    c.uses = c.uses.saturating_add(1);
                }
                self.gauge(h, Gauge::InUse, true);
                return Some(conn);
            }
            self.drop_conn(conn.0);
            self.count(h, |c| c.stale_discards += 1);
            let close = Action::Close {
                conn,
                reason: CloseReason::Stale,
            };
            match out.as_deref_mut() {
                Some(out) => out.push(close),
                None => self.spare.push(close),
            }
        }
    }

    /// Removes a socket's record and its timer.
    fn drop_conn(&mut self, index: Key) -> Option<Conn> {
        let c = self.conns.remove(index)?;
        self.disarm(c.timer);
        Some(c)
    }

    /// Takes an idle socket out of the idle lists. Its state becomes `InUse` (the caller
    /// hands it out or removes it); its keep-alive timer stays, to serve its next idle
    /// spell (see [`park`](Self::park)).
    fn unpark(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn.0) else {
            return;
        };
        let CState::Idle(_) = c.state else {
            return;
        };
        c.state = CState::InUse;
        let h = c.host;
        self.lru.remove(&mut self.conns, conn.0, lru_link);
        if let Some(host) = self.hosts.get_mut(h.0) {
            host.idle.remove(&mut self.conns, conn.0, key_link);
        }
    }

    /// The next random number (xorshift64).
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// `d` shortened by a random part of up to `jitter_percent`.
    fn jittered(&mut self, d: Duration) -> Duration {
        let pct = u64::from(self.settings.jitter_percent);
        if pct == 0 {
            return d;
        }
        let cut = self.random() % (pct * 100 + 1); // in hundredths of a percent
        let nanos = d.as_nanos();
        let kept = nanos - nanos * u128::from(cut) / 10_000;
        Duration::from_nanos(u64::try_from(kept).unwrap_or(u64::MAX)).max(Duration::from_nanos(1))
    }

    /// `n` lowered by a random part of up to `jitter_percent`, at least 1.
    fn jittered_count(&mut self, n: u32) -> u32 {
        let most = u64::from(n) * u64::from(self.settings.jitter_percent) / 100;
        let cut = if most == 0 {
            0
        } else {
            self.random() % (most + 1)
        };
        (u64::from(n) - cut).max(1) as u32
    }

    /// Pools a socket that was in use (its in-use count already released).
    fn park(&mut self, conn: ConnId, now: Duration, out: &mut Vec<Action>) {
        let seq = self.next_seq();
        let keep_alive = self.settings.keep_alive;
        let Some(c) = self.conns.get_mut(conn.0) else {
            // No socket: nothing to pool (the timer it would have had takes its number).
            self.next_seq();
            return;
        };
        let life = c.idle_limit.map_or(keep_alive, |l| l.min(keep_alive));
        let mut until = now.saturating_add(life);
        if let Some(e) = c.expires {
            until = until.min(e.max(now));
        }
        // A socket handed out and given back within its keep-alive keeps the timer of its
        // last idle spell: it fires early, finds the socket idle until later, and is set
        // again then. A request served on a pooled socket so costs no timer operation (a
        // removal and an insertion in the timer map each time otherwise).
        let c = match c.timer {
            Some(tk) if tk.0 <= until => c,
            old => {
                c.timer = None;
                self.disarm(old);
                let timer = self.arm(until, Timer::Conn(conn));
                let Some(c) = self.conns.get_mut(conn.0) else {
                    self.timer_remove(&timer);
                    return;
                };
                c.timer = Some(timer);
                c
            }
        };
        c.state = CState::Idle(seq);
        c.idle_until = until;
        let h = c.host;
        self.lru.push_back(&mut self.conns, conn.0, lru_link);
        if let Some(host) = self.hosts.get_mut(h.0) {
            host.idle.push_back(&mut self.conns, conn.0, key_link);
        }
        out.push(Action::WatchIdle { conn });
    }

    /// Answers and retires a request (already detached from its stage).
    fn respond(
        &mut self,
        rid: RequestId,
        stage: RequestStage,
        outcome: Outcome,
        out: &mut Vec<Action>,
    ) {
        if let Some(req) = self.requests.remove(rid.0) {
            self.disarm(req.timer);
        }
        out.push(Action::Respond {
            request: rid,
            stage,
            outcome,
        });
    }

    fn queue_wait(&self, rid: RequestId, now: Duration) -> Duration {
        match self.requests.get(rid.0).map(|r| r.stage) {
            Some(ReqStage::Queued { since, .. }) => now.saturating_sub(since),
            _ => Duration::ZERO,
        }
    }

    /// Takes a request out of whatever it waits in (lookup, queue, connect), releasing what
    /// it held, and reports the stage it was in. The request record stays.
    fn detach(&mut self, rid: RequestId, out: &mut Vec<Action>) -> RequestStage {
        let Some(req) = self.requests.get_mut(rid.0) else {
            return RequestStage::Allocating;
        };
        let (h, seq) = (req.host, req.seq);
        let stage = std::mem::replace(&mut req.stage, ReqStage::Allocating);
        match stage {
            ReqStage::Allocating => RequestStage::Allocating,
            ReqStage::Resolving(lid) => {
                let mut orphaned = false;
                if let Some(l) = self.lookups.get_mut(lid.0) {
                    l.waiters.remove(&seq);
                    orphaned = l.waiters.is_empty();
                }
                if orphaned {
                    if let Some(l) = self.lookups.remove(lid.0) {
                        self.lookup_by_host.remove(&l.host);
                    }
                    out.push(Action::CancelResolve { lookup: lid });
                }
                self.gauge(h, Gauge::Resolving, false);
                RequestStage::Resolving
            }
            ReqStage::Queued { .. } => {
                if let Some(host) = self.hosts.get_mut(h.0) {
                    host.waiters.remove(&seq);
                }
                self.queued = self.queued.saturating_sub(1);
                RequestStage::Queued
            }
            ReqStage::Connecting(conn) => {
                self.drop_conn(conn.0);
                self.gauge(h, Gauge::Connecting, false);
                out.push(Action::AbortConnect { conn });
                RequestStage::Connecting
            }
        }
    }

    fn time_out(&mut self, rid: RequestId, out: &mut Vec<Action>) {
        let Some(h) = self.requests.get(rid.0).map(|r| r.host) else {
            return;
        };
        let stage = self.detach(rid, out);
        self.count(h, |c| c.timeouts += 1);
        self.respond(rid, stage, Outcome::Failed(Failure::timeout()), out);
        self.touch(h);
    }

    /// Puts a request in its key's lookup, starting the lookup if nobody shares it.
    fn start_lookup(&mut self, rid: RequestId, out: &mut Vec<Action>) {
        let Some(req) = self.requests.get(rid.0) else {
            return;
        };
        let (h, seq) = (req.host, req.seq);
        let Some(addr) = self.hosts.get(h.0).map(|host| host.key.addr.clone()) else {
            return;
        };
        let lid = match self.lookup_by_host.get(&addr) {
            Some(&lid) => lid,
            None => {
                let lid = LookupId(self.lookups.insert(Lookup {
                    host: addr.clone(),
                    waiters: BTreeMap::new(),
                }));
                self.lookup_by_host.insert(addr.clone(), lid);
                out.push(Action::Resolve {
                    lookup: lid,
                    host: addr,
                });
                lid
            }
        };
        if let Some(l) = self.lookups.get_mut(lid.0) {
            l.waiters.insert(seq, rid);
        }
        if let Some(req) = self.requests.get_mut(rid.0) {
            req.stage = ReqStage::Resolving(lid);
        }
        self.gauge(h, Gauge::Resolving, true);
    }

    fn finish_lookup(
        &mut self,
        lookup: LookupId,
        result: Result<IpAddr, Failure>,
        now: Duration,
        check: &mut dyn FnMut(ConnId) -> bool,
    ) -> Result<Vec<Action>, CallError> {
        let l = self
            .lookups
            .remove(lookup.0)
            .ok_or(CallError::UnknownLookup(lookup))?;
        self.lookup_by_host.remove(&l.host);
        let now = self.tick(now);
        let mut out = std::mem::take(&mut self.spare);
        for rid in l.waiters.into_values() {
            let Some(req) = self.requests.get_mut(rid.0) else {
                continue;
            };
            let h = req.host;
            req.stage = ReqStage::Allocating;
            self.gauge(h, Gauge::Resolving, false);
            match &result {
                Ok(ip) => self.enqueue(rid, *ip, now, check, &mut out),
                Err(failure) => {
                    self.count(h, |c| c.resolve_failures += 1);
                    let outcome = Outcome::Failed(failure.clone());
                    self.respond(rid, RequestStage::Resolving, outcome, &mut out);
                }
            }
            self.touch(h);
        }
        self.pump(now, &mut out);
        self.report_timer(&mut out);
        Ok(out)
    }

    /// A resolved request takes an idle socket of its key or joins its key's queue.
    fn enqueue(
        &mut self,
        rid: RequestId,
        ip: IpAddr,
        now: Duration,
        check: &mut dyn FnMut(ConnId) -> bool,
        out: &mut Vec<Action>,
    ) {
        let Some(req) = self.requests.get(rid.0) else {
            return;
        };
        let (h, seq, fresh) = (req.host, req.seq, req.fresh);
        let idle = if fresh {
            None
        } else {
            self.take_idle(h, check, Some(out))
        };
        if let Some(conn) = idle {
            self.count(h, |c| c.deferred += 1);
            let outcome = Outcome::Connected {
                conn,
                origin: Origin::Deferred,
            };
            self.respond(rid, RequestStage::Queued, outcome, out);
            return;
        }
        if let Some(req) = self.requests.get_mut(rid.0) {
            req.stage = ReqStage::Queued { since: now, ip };
        }
        if let Some(host) = self.hosts.get_mut(h.0) {
            host.waiters.insert(seq, rid);
        }
        self.queued += 1;
        self.refresh(h);
    }

    /// Serves runnable keys, oldest waiter first, while there is room under `max_open`,
    /// evicting least recently freed idle sockets to make room.
    fn pump(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.shut_down {
            return;
        }
        while let Some((&head, &h)) = self.runnable.first_key_value() {
            if self.open() >= self.settings.max_open {
                let Some(victim) = self.lru.first().map(ConnId) else {
                    break;
                };
                let vh = self.conns.get(victim.0).map(|c| c.host);
                self.unpark(victim);
                self.drop_conn(victim.0);
                out.push(Action::Close {
                    conn: victim,
                    reason: CloseReason::Evicted,
                });
                if let Some(vh) = vh {
                    self.count(vh, |c| c.evictions += 1);
                    self.touch(vh);
                }
                continue;
            }
            let next = self
                .hosts
                .get_mut(h.0)
                .and_then(|host| host.waiters.pop_first());
            let Some((_, rid)) = next else {
                // A stale mark (cannot happen while the invariants hold): drop it.
                self.runnable.remove(&head);
                if let Some(host) = self.hosts.get_mut(h.0) {
                    host.runnable = None;
                }
                continue;
            };
            self.queued = self.queued.saturating_sub(1);
            if self.requests.get(rid.0).is_some_and(|r| r.fresh) {
                self.evict_for_fresh(h, out);
            }
            self.start_connect(rid, h, now, out);
            self.refresh(h);
        }
    }

    /// Before a request that wants a new connection connects: closes the key's least
    /// recently freed idle sockets while they would take its room under `max_per_host`.
    fn evict_for_fresh(&mut self, h: HostId, out: &mut Vec<Action>) {
        let max = self.settings.max_per_host;
        loop {
            let victim = match self.hosts.get(h.0) {
                Some(host) if host.busy() + host.idle.len() >= max => host.idle.first().map(ConnId),
                _ => None,
            };
            let Some(victim) = victim else {
                return;
            };
            self.unpark(victim);
            self.drop_conn(victim.0);
            self.count(h, |c| c.evictions += 1);
            out.push(Action::Close {
                conn: victim,
                reason: CloseReason::Evicted,
            });
        }
    }

    fn start_connect(&mut self, rid: RequestId, h: HostId, now: Duration, out: &mut Vec<Action>) {
        let Some(req) = self.requests.get(rid.0) else {
            return;
        };
        let ReqStage::Queued { since, ip } = req.stage else {
            return;
        };
        let Some(key) = self.hosts.get(h.0).map(|host| Arc::clone(&host.key)) else {
            return;
        };
        let conn = ConnId(self.conns.insert(Conn {
            host: h,
            state: CState::Connecting(rid),
            timer: None,
            idle_until: Duration::ZERO,
            lru_link: Link::default(),
            key_link: Link::default(),
            idle_limit: None,
            expires: None,
            uses: 0,
            max_uses: None,
        }));
        if let Some(limit) = self.settings.connect_timeout {
            let timer = self.arm(now.saturating_add(limit), Timer::Conn(conn));
            if let Some(c) = self.conns.get_mut(conn.0) {
                c.timer = Some(timer);
            }
        }
        if let Some(req) = self.requests.get_mut(rid.0) {
            req.stage = ReqStage::Connecting(conn);
        }
        self.gauge(h, Gauge::Connecting, true);
        let wait = now.saturating_sub(since);
        self.count(h, |c| {
            c.connects += 1;
            c.record_wait(wait);
        });
        out.push(Action::Connect {
            conn,
            request: rid,
            key,
            ip,
        });
    }

    fn connecting_conn(&self, conn: ConnId) -> Result<(HostId, RequestId), CallError> {
        let c = self.conns.get(conn.0).ok_or(CallError::UnknownConn(conn))?;
        match c.state {
            CState::Connecting(rid) => Ok((c.host, rid)),
            other => Err(CallError::WrongState {
                conn,
                expected: ConnState::Connecting,
                actual: other.public(),
            }),
        }
    }
}

fn host_stats(h: &Host) -> HostStats {
    HostStats {
        key: Arc::clone(&h.key),
        gauges: Gauges {
            in_use: h.in_use,
            idle: h.idle.len(),
            connecting: h.connecting,
            queued: h.waiters.len(),
            resolving: h.resolving,
        },
        counters: h.counters.clone(),
    }
}

/// The pool's rules, exactly and exhaustively: the upstream tests' scheduling, the Perl
/// module's bugs (B1-B16) as fixed behaviour, and properties over random call sequences.
#[cfg(test)]
mod tests;
