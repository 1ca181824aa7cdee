//! The keep-alive manager ([`Keepalive`]) and its connections ([`Connection`]): the socket
//! layer around the [`pool`](crate::pool) bookkeeping, running as a session in a
//! [`reactor::Kernel`].

use crate::answer_event::AnswerEvent;
use crate::pool::ECONNREFUSED;
use crate::pool::{
    Action, AllocateError, Allocation, CallError, ConnId, Failure, LookupId, Origin, Outcome, Pool,
    PoolKey, RequestId, RequestSpec, RequestStage, Settings, SettingsError, Stats,
};
use crate::resolver::{Resolver, ResolverKind};
use crate::stream::Stream;
#[cfg(feature = "tls")]
use crate::tls::{Handshake, TlsStream};
use reactor::errno::EINPROGRESS;
use reactor::wheel::ReadWrite;
use reactor::wheel::{errstr, Parking, ReadWriteBuilder};
use reactor::{Args, Ctx, Kernel, Postback, Session, SessionId, WheelHandle, WheelId};
use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// How long a pooled socket waits before it is watched while idle (see `watch_idle`).
const WATCH_GRACE: Duration = Duration::from_millis(10);

/// The refcount tag a pending request holds on its requester (as in Perl).
const REQUESTER_TAG: &str = "poco-client-keepalive";
/// The reference the manager holds on its own session while lookups are pending.
const DNS_TAG: &str = "poco-client-keepalive-dns";

// ---------------------------------------------------------------------------------------------
// Errors.

/// Why a manager call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Invalid settings (a zero limit or duration).
    Settings(SettingsError),
    /// The request was refused (a missing field, or the manager is shut down).
    Allocate(AllocateError),
    /// The request, socket or lookup named is not pending.
    Call(CallError),
    /// `allocate` was called outside any session: there is nobody to answer.
    NoRequester,
    /// The request names no event to answer with.
    NoEvent,
    /// The kernel refused (e.g. the manager's session could not be created).
    Kernel(reactor::Error),
    /// An I/O setup failure.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Settings(e) => e.fmt(f),
            Error::Allocate(e) => e.fmt(f),
            Error::Call(CallError::UnknownRequest(_)) => {
                f.write_str("deallocate() requires a request ID")
            }
            Error::Call(e) => e.fmt(f),
            Error::NoRequester => f.write_str("allocate() needs an active session to answer"),
            Error::NoEvent => f.write_str("allocate() needs an 'event'"),
            Error::Kernel(e) => e.fmt(f),
            Error::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Settings(e) => Some(e),
            Error::Allocate(e) => Some(e),
            Error::Call(e) => Some(e),
            Error::Kernel(e) => Some(e),
            Error::Io(e) => Some(e),
            Error::NoRequester | Error::NoEvent => None,
        }
    }
}

impl From<SettingsError> for Error {
    fn from(e: SettingsError) -> Self {
        Error::Settings(e)
    }
}

impl From<AllocateError> for Error {
    fn from(e: AllocateError) -> Self {
        Error::Allocate(e)
    }
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        Error::Call(e)
    }
}

impl From<reactor::Error> for Error {
    fn from(e: reactor::Error) -> Self {
        Error::Kernel(e)
    }
}

fn io_failure(function: &str, e: &io::Error) -> Failure {
    Failure::new(function, e.raw_os_error(), errstr(e))
}

// ---------------------------------------------------------------------------------------------
// Requests and responses.

/// One `allocate` request: Perl's `allocate(scheme, addr, port, event, context, timeout,
/// for_scheme, for_addr, for_port)`.
pub struct Request {
    key: Arc<PoolKey>,
    event: Rc<str>,
    context: Box<dyn Any>,
    timeout: Option<Duration>,
    fresh: bool,
}

impl Request {
    /// A request for a connection to `addr`:`port` (a host name or an IP literal) under
    /// `scheme` (`"https"` means TLS); the answer arrives as `event` in the calling session.
    pub fn new(scheme: &str, addr: &str, port: u16, event: &str) -> Request {
        Request {
            key: Arc::new(PoolKey::new(scheme, addr, port)),
            event: Rc::from(event),
            context: Box::new(()),
            timeout: None,
            fresh: false,
        }
    }

    /// A request for a key and event name built once and shared by many requests: the
    /// same as [`new`](Request::new) without building the strings again.
    pub fn for_key(key: Arc<PoolKey>, event: Rc<str>) -> Request {
        Request {
            key,
            event,
            context: Box::new(()),
            timeout: None,
            fresh: false,
        }
    }

    /// The pool key asked for.
    pub fn key(&self) -> &Arc<PoolKey> {
        &self.key
    }

    /// Any value, handed back intact in the [`Response`] (Perl's `context`).
    pub fn context<T: Any>(mut self, context: T) -> Self {
        self.context = Box::new(context);
        self
    }

    /// Asks for a new connection only: no pooled socket is handed out for this request.
    ///
    /// A server may close an idle keep-alive connection at any moment, and the close can
    /// cross a request sent on it. Callers retry an idempotent request once when it fails
    /// on a reused connection before any response byte, as Go's, hyper's and curl's
    /// clients do; the retry asks for a fresh connection, so it cannot fail the same way
    /// on another socket that sat idle as long.
    pub fn fresh_connection(mut self) -> Self {
        self.fresh = true;
        self
    }

    /// This request's timeout (default: the manager's): it covers the lookup, the wait in
    /// the queue and the connect.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The origin the connection is for (Perl's `for_scheme`, `for_addr`, `for_port`, for
    /// proxies): part of the pool key, so each origin gets its own sockets.
    pub fn for_origin(mut self, scheme: &str, addr: &str, port: u16) -> Self {
        self.key = Arc::new((*self.key).clone().with_origin(scheme, addr, port));
        self
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("key", &self.key)
            .field("event", &self.event)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The one answer to a request, delivered as `ARG0` of its event (take it with
/// `ctx.take_arg::<Response>(0)`). Perl's response hash.
pub struct Response {
    /// The request answered.
    pub request: RequestId,
    /// What was asked for: scheme, addr, port and the `for_*` origin.
    pub key: Arc<PoolKey>,
    /// The request's context, handed back intact.
    pub context: Box<dyn Any>,
    /// The connection, or Perl's error triple (function, errnum, errstr).
    pub connection: Result<Connection, Failure>,
    /// Where the connection came from (`None` on an error).
    pub origin: Option<Origin>,
    /// The stage the request was in when answered.
    pub stage: RequestStage,
}

impl Response {
    /// Perl's `from_cache`: `None` for a new connection (or an error), and for a reused one
    /// whether it was [`Origin::Immediate`] or [`Origin::Deferred`]
    /// ([`Origin::as_str`] gives Perl's string).
    pub fn from_cache(&self) -> Option<Origin> {
        self.origin.filter(|o| o.is_reused())
    }

    /// The context as a `T`, if it is one.
    pub fn context_ref<T: Any>(&self) -> Option<&T> {
        self.context.downcast_ref()
    }

    /// The scheme asked for.
    pub fn scheme(&self) -> &str {
        &self.key.scheme
    }

    /// The address asked for.
    pub fn addr(&self) -> &str {
        &self.key.addr
    }

    /// The port asked for.
    pub fn port(&self) -> u16 {
        self.key.port
    }

    /// The error, if there is no connection.
    pub fn error(&self) -> Option<&Failure> {
        self.connection.as_ref().err()
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("request", &self.request)
            .field("key", &self.key)
            .field("connection", &self.connection)
            .field("origin", &self.origin)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Connection.

/// A socket handed out by the manager (POE::Component::Connection::Keepalive).
///
/// It owns the socket, and the [`ReadWrite`] wheel once [`start`](Connection::start)ed.
/// Dropping it gives the socket back to the manager, which pools it if it is clean (open,
/// nothing unread, nothing unsent) and closes it otherwise. After [`close`](Connection::close)
/// the socket is never reused.
///
/// # Examples
///
/// In the handler that receives the [`Response`]: start a wheel on the connection, send a
/// request, and keep the connection (here in the heap) while the answer comes; the
/// [crate documentation](crate) has the whole round trip.
///
/// ```
/// use keepalive::reactor::wheel::ReadWrite;
/// use keepalive::reactor::{Ctx, HandlerError};
/// use keepalive::{Connection, Response};
///
/// fn got_conn(ctx: &mut Ctx<'_, Option<Connection>>) -> Result<(), HandlerError> {
///     let r: Response = ctx.take_arg(0)?;
///     let mut conn = r.connection?;
///     let wheel = conn.start(ctx, |w| w.input_event("got_line").error_event("got_error"))?;
///     if let Some(rw) = ctx.wheel_mut::<ReadWrite>(wheel) {
///         rw.put_one("QUIT")?;
///     }
///     *ctx.heap() = Some(conn); // `*ctx.heap() = None` later gives it back
///     Ok(())
/// }
/// # let _ = got_conn;
/// ```
pub struct Connection {
    conn: ConnId,
    key: Arc<PoolKey>,
    stream: Option<Stream>,
    /// The poller registration the socket's last wheel left (see `Kernel::wheel_park`).
    parking: Option<Parking>,
    wheel: Option<WheelHandle>,
    /// The wheel holds the socket as a bare `TcpStream` (see [`stream_of`]).
    bare: bool,
    closed: bool,
    idle_limit: Option<Duration>,
    peer: Option<SocketAddr>,
    home: Rc<Shared>,
    reclaim: Postback,
}

impl Connection {
    /// Builds a [`ReadWrite`] wheel on the socket (Perl's `start(%args)`: the Handle is
    /// always the connection's socket). `configure` sets the wheel's events and filters; the
    /// events go to the session calling `start`. A wheel started before is replaced (its
    /// buffered output is lost, the socket stays). Returns the new wheel's id.
    pub fn start(
        &mut self,
        kernel: &mut Kernel,
        configure: impl FnOnce(ReadWriteBuilder) -> ReadWriteBuilder,
    ) -> Result<WheelId, reactor::Error> {
        if let Some(h) = self.wheel.take() {
            if let Some((rw, p)) = kernel.wheel_park::<ReadWrite>(h) {
                self.stream = stream_of(rw, self.bare);
                self.parking = Some(p);
            }
        }
        let Some(stream) = self.stream.take() else {
            return Err(reactor::Error::InvalidArgument("connection is closed"));
        };
        let (mut b, bare) = match stream {
            Stream::Tcp(tcp) => (configure(ReadWrite::builder(tcp)), true),
            #[cfg(feature = "tls")]
            tls @ Stream::Tls(_) => (configure(ReadWrite::builder(tls)), false),
        };
        self.bare = bare;
        if let Some(p) = self.parking.take() {
            b = b.parked(p);
        }
        let handle = b.build(kernel)?;
        let id = handle.id();
        self.wheel = Some(handle);
        Ok(id)
    }

    /// The wheel built by [`start`](Connection::start), if any. Reach it with
    /// `ctx.wheel_mut::<ReadWrite>(id)`.
    pub fn wheel(&self) -> Option<WheelId> {
        self.wheel.as_ref().map(WheelHandle::id)
    }

    /// Shuts the socket down both ways and closes it (Perl's `close()`): the peer sees the
    /// end at once, and the socket is not reused when the connection is dropped.
    pub fn close(&mut self, kernel: &mut Kernel) {
        self.closed = true;
        if let Some(p) = self.parking.take() {
            kernel.wheel_unpark(p);
        }
        if let Some(h) = self.wheel.take() {
            self.stream = kernel
                .wheel_take::<ReadWrite>(h)
                .and_then(|rw| stream_of(rw, self.bare));
        }
        if let Some(mut s) = self.stream.take() {
            s.close_notify();
            let _ = s.tcp().shutdown(std::net::Shutdown::Both);
        }
    }

    /// The socket, while no wheel holds it (before [`start`](Connection::start)).
    pub fn stream(&mut self) -> Option<&mut Stream> {
        self.stream.as_mut()
    }

    /// The pool key the socket belongs to.
    pub fn key(&self) -> &PoolKey {
        &self.key
    }

    /// The address the socket is connected to (the proxy's, through a proxy), as the
    /// manager connected it: no system call.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The socket's id in the manager.
    pub fn id(&self) -> ConnId {
        self.conn
    }

    /// Shortens how long the socket may stay idle in the pool after this use (at most the
    /// manager's `keep_alive`): for a server's `Keep-Alive: timeout=N` hint, pass N minus
    /// a second, so the socket is dropped before the server closes it. Zero keeps it out
    /// of the pool.
    pub fn set_idle_timeout(&mut self, limit: Duration) {
        self.idle_limit = Some(limit);
    }

    /// Gives the socket back now (Perl's `free`); the same as dropping the connection.
    pub fn free(self) {}
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("conn", &self.conn)
            .field("key", &self.key)
            .field("wheel", &self.wheel())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.home.returns.borrow_mut().push(TakenBack {
            conn: self.conn,
            parking: self.parking.take(),
            stream: self.stream.take(),
            wheel: self.wheel.take(),
            bare: self.bare,
            idle_limit: self.idle_limit,
            clean: !self.closed,
            unread: false,
        });
        if !self.home.housekeeping.replace(true) {
            self.reclaim.post(());
        }
    }
}

/// The socket back out of its wheel. A plain TCP socket is given to its wheel as the bare
/// `TcpStream` (`bare`), which the wheel keeps inline: no box to allocate for each wheel
/// and free at each give-back, no dynamic call for each read and write.
fn stream_of(rw: ReadWrite, bare: bool) -> Option<Stream> {
    if bare {
        rw.into_handle::<mio::net::TcpStream>().map(Stream::Tcp)
    } else {
        rw.into_handle::<Stream>()
    }
}

/// A connection given back: what its drop leaves, then, in the same place, its socket out
/// of its wheel and looked at, until the manager frees it (see
/// [`Shared::drain_returns`]).
struct TakenBack {
    conn: ConnId,
    parking: Option<Parking>,
    stream: Option<Stream>,
    /// The connection's wheel, until the give-back parks it.
    wheel: Option<WheelHandle>,
    /// The wheel holds the socket as a bare `TcpStream` (see [`stream_of`]).
    bare: bool,
    idle_limit: Option<Duration>,
    /// Fit for the pool so far (not closed, to begin with).
    clean: bool,
    /// Data came that nobody read: the close resets.
    unread: bool,
}

/// The look at free, Perl's `select`: a socket with unread data, end-of-file or an error,
/// even if it came after the last poll, is kept out of the pool. Plain TCP sockets given
/// back together (the responses one poll brought in, say) are looked at with one `poll`
/// system call for all of them, rather than a `recv(MSG_PEEK)` each; a lone one, and a
/// TLS one (whose records must be read to tell data from a session ticket), are peeked at.
fn check_quiet(taken: &mut [TakenBack]) {
    /// Still fit, and plain TCP: one that the batch's `poll` looks at.
    fn pollable(t: &TakenBack) -> bool {
        t.clean && t.stream.as_ref().is_some_and(|s| !s.is_tls())
    }
    let mut polled = false;
    let count = taken.iter().filter(|t| pollable(t)).count();
    if count > 1 {
        let fds = taken
            .iter()
            .filter(|t| pollable(t))
            .filter_map(|t| t.stream.as_ref())
            .map(AsFd::as_fd);
        let mut quiet = [false; POLL_BATCH];
        let mut more = Vec::new();
        let answers: &mut [bool] = if count <= POLL_BATCH {
            &mut quiet[..count]
        } else {
            more.resize(count, false);
            &mut more
        };
        if poll_quiet(fds, answers) {
            let mut answers = answers.iter();
            for t in taken.iter_mut().filter(|t| pollable(t)) {
                if !answers.next().copied().unwrap_or(false) {
                    t.clean = false;
                    t.unread = true;
                }
            }
            polled = true;
        }
    }
    for t in taken.iter_mut().filter(|t| t.clean) {
        let Some(s) = t.stream.as_mut() else {
            continue;
        };
        if polled && !s.is_tls() {
            continue;
        }
        if !s.is_quiet() {
            t.clean = false;
            t.unread = true;
        }
    }
}

/// How many sockets [`poll_quiet`] looks at from lists on the stack; more (more responses
/// than that in one poll) take lists on the heap.
const POLL_BATCH: usize = 16;

/// One `poll` with no wait for the sockets `fds` (as many as `quiet` has room for):
/// `quiet[i]` says whether the `i`th has nothing to report (no data, end-of-file or error).
/// False if the system call failed.
fn poll_quiet<'a>(fds: impl Iterator<Item = BorrowedFd<'a>>, quiet: &mut [bool]) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let flags = PollFlags::IN | PollFlags::RDHUP;
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let n = quiet.len();
    let mut fds = fds.map(|fd| PollFd::from_borrowed_fd(fd, flags));
    let mut answer = |list: &mut [PollFd<'a>]| -> bool {
        if poll(list, Some(&zero)).is_err() {
            return false;
        }
        for (q, f) in quiet.iter_mut().zip(list.iter()) {
            *q = f.revents().is_empty();
        }
        true
    };
    if n <= POLL_BATCH {
        let Some(first) = fds.next() else {
            return false;
        };
        // The places after the `n` sockets hold copies of the first, and are not polled.
        let mut list: [PollFd<'a>; POLL_BATCH] = std::array::from_fn(|i| match i {
            0 => first.clone(),
            _ => fds.next().unwrap_or_else(|| first.clone()),
        });
        answer(&mut list[..n])
    } else {
        let mut list: Vec<PollFd<'a>> = fds.take(n).collect();
        answer(&mut list)
    }
}

// ---------------------------------------------------------------------------------------------
// The manager.

/// Configures a [`Keepalive`] manager (Perl's `new(%args)`).
#[derive(Clone, Debug)]
pub struct KeepaliveBuilder {
    settings: Settings,
    bind_address: Option<IpAddr>,
    resolver: ResolverKind,
    resolver_threads: usize,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
    nodelay: bool,
    refused_backoff: Option<(Duration, Duration)>,
    attempt_delay: Option<Duration>,
}

impl Default for KeepaliveBuilder {
    fn default() -> Self {
        KeepaliveBuilder {
            settings: Settings::default(),
            bind_address: None,
            resolver: ResolverKind::System,
            resolver_threads: 4,
            #[cfg(feature = "tls")]
            tls: None,
            nodelay: true,
            refused_backoff: Some((Duration::from_millis(50), Duration::from_secs(2))),
            attempt_delay: Some(Duration::from_millis(250)),
        }
    }
}

impl KeepaliveBuilder {
    /// All limits and timers at once.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Most sockets per pool key in use or connecting (default 4).
    pub fn max_per_host(mut self, n: usize) -> Self {
        self.settings.max_per_host = n;
        self
    }

    /// Most sockets in all: in use, connecting and idle (default 128).
    pub fn max_open(mut self, n: usize) -> Self {
        self.settings.max_open = n;
        self
    }

    /// How long a freed socket stays pooled (default 15 s).
    pub fn keep_alive(mut self, d: Duration) -> Self {
        self.settings.keep_alive = d;
        self
    }

    /// The default request timeout (default 120 s): lookup, queue and connect.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.settings.timeout = d;
        self
    }

    /// The longest a socket is used, from its connect (default: no limit): past it, the
    /// socket is closed when freed, or when it reaches it idle. Each socket's limit is
    /// shortened at random by up to [`lifetime_jitter`](Self::lifetime_jitter) percent, so
    /// sockets opened together are renewed apart.
    pub fn max_lifetime(mut self, d: Duration) -> Self {
        self.settings.max_lifetime = Some(d);
        self
    }

    /// The most requests a socket serves (default: no limit), jittered as
    /// [`max_lifetime`](Self::max_lifetime).
    pub fn max_uses(mut self, n: u32) -> Self {
        self.settings.max_uses = Some(n);
        self
    }

    /// The jitter of `max_lifetime` and `max_uses`, in percent (default 10, at most 100).
    pub fn lifetime_jitter(mut self, percent: u8) -> Self {
        self.settings.jitter_percent = percent;
        self
    }

    /// A bound on each connect alone (default: none beyond the request timeout).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.settings.connect_timeout = Some(d);
        self
    }

    /// The local address new sockets bind to (port chosen by the system).
    pub fn bind_address(mut self, ip: IpAddr) -> Self {
        self.bind_address = Some(ip);
        self
    }

    /// What resolves host names (default: getaddrinfo on worker threads).
    pub fn resolver(mut self, kind: ResolverKind) -> Self {
        self.resolver = kind;
        self
    }

    /// Most lookups running at once (default 4).
    pub fn resolver_threads(mut self, n: usize) -> Self {
        self.resolver_threads = n.max(1);
        self
    }

    /// The TLS configuration for `https` (default: the webpki roots, certificates
    /// verified, SNI sent). Needs the `tls` feature (on by default).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Whether new sockets set TCP_NODELAY (default true).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// How connects to an address that refused one wait: `Some((first, most))` (default
    /// 50 ms and 2 s) makes connects to it wait `first` after a refusal, twice as long
    /// after each further one, at most `most`, until a connect to it works; `None` connects
    /// at once every time, as Perl's does. Requests keep their own timeouts meanwhile. So
    /// a program that asks again as soon as it is refused (the demo during a server restart)
    /// makes a few connects a second, not tens of thousands.
    pub fn refused_backoff(mut self, backoff: Option<(Duration, Duration)>) -> Self {
        self.refused_backoff = backoff;
        self
    }

    /// Happy Eyeballs (RFC 8305): when a host has several addresses, a connect that has
    /// not completed after `delay` (default 250 ms; Go waits 300, curl 200) is joined by
    /// one to the next address, families alternating, and so on; the first to connect is
    /// used and the others are closed. A failed attempt starts the next at once. `None`
    /// connects to the first address only.
    pub fn connection_attempt_delay(mut self, delay: Option<Duration>) -> Self {
        self.attempt_delay = delay;
        self
    }

    /// Creates the manager and its session in `kernel`.
    pub fn build(self, kernel: &mut Kernel) -> Result<Keepalive, Error> {
        let mut settings = self.settings.clone();
        if settings.jitter_seed == 0 {
            // Each process (and manager) its own jitter.
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            settings.jitter_seed = h.finish();
        }
        let pool = Pool::new(settings)?;
        let shared = Rc::new(Shared {
            inner: RefCell::new(Inner {
                pool,
                config: self,
                session: None,
                origin: kernel.monotime(),
                reqs: Vec::new(),
                socks: Vec::new(),
                resolver: None,
                dns_held: false,
                lookups: HashMap::new(),
                reclaim: None,
                out: 0,
                timer: None,
                to_watch: Vec::new(),
                spare_returns: Vec::new(),
                refused: HashMap::new(),
                lookup_hosts: HashMap::new(),
                addrs: HashMap::new(),
                answer_event: AnswerEvent::default(),
            }),
            returns: RefCell::new(Vec::new()),
            housekeeping: std::cell::Cell::new(false),
        });
        let ka = Keepalive { shared };
        ka.ensure_session(kernel)?;
        Ok(ka)
    }
}

/// The keep-alive connection manager (POE::Component::Client::Keepalive).
///
/// A cheap handle (clone it freely) on a manager that runs as a session of the kernel it
/// was built in. [`allocate`](Keepalive::allocate) asks for a connection; the answer, a
/// [`Response`], arrives as the named event in the session that asked. See the
/// [crate documentation](crate) for the model and the differences from Perl.
///
/// # Examples
///
/// ```
/// use keepalive::reactor::Kernel;
/// use keepalive::Keepalive;
/// use std::time::Duration;
///
/// let mut kernel = Kernel::new()?;
/// let cm = Keepalive::builder()
///     .max_per_host(4) // sockets per scheme, host and port
///     .max_open(128) // sockets in all
///     .keep_alive(Duration::from_secs(15)) // how long an idle socket is kept
///     .timeout(Duration::from_secs(30)) // lookup, queue and connect of a request
///     .build(&mut kernel)?;
/// assert_eq!(cm.settings().max_per_host, 4);
/// // Give it to the sessions that need connections (it is a cheap clone), then:
/// kernel.run()?;
/// # Ok::<(), keepalive::Error>(())
/// ```
#[derive(Clone)]
pub struct Keepalive {
    shared: Rc<Shared>,
}

impl fmt::Debug for Keepalive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.shared.inner.borrow();
        f.debug_struct("Keepalive")
            .field("session", &inner.session)
            .field("gauges", &inner.pool.gauges())
            .finish_non_exhaustive()
    }
}

struct Shared {
    inner: RefCell<Inner>,
    returns: RefCell<Vec<TakenBack>>,
    /// A `ka_housekeeping` event is on its way (returns to take, idle sockets to watch).
    housekeeping: std::cell::Cell<bool>,
}

struct ReqMeta {
    id: RequestId,
    key: Arc<PoolKey>,
    session: SessionId,
    event: Rc<str>,
    context: Box<dyn Any>,
    /// The requester's refcount is held (the request was not answered at once).
    held: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
enum Watch {
    None,
    /// Connecting: waiting for writability.
    Connect,
    /// TLS handshake: waiting for readability or writability.
    TlsRead,
    TlsWrite,
    /// Waiting to connect: the address refused a connection a moment ago
    /// ([`KeepaliveBuilder::refused_backoff`]); `ka_deferred_connect` starts it.
    Deferred,
    /// Idle, a watch is due (registered at the next `ka_housekeeping`).
    IdlePending,
    /// Idle and watched for readability.
    Idle,
    /// Through a proxy: `CONNECT` sent, its answer awaited (readability).
    Tunnel,
}

struct Sock {
    id: ConnId,
    stream: Option<Stream>,
    /// The poller registration the stream's last wheel left.
    parking: Option<Parking>,
    watch: Watch,
    /// The address connected to.
    addr: SocketAddr,
    /// The timer of a deferred connect.
    deferred: Option<reactor::AlarmId>,
    /// Happy Eyeballs: the other addresses, and the attempts racing the first.
    race: Option<Box<Race>>,
    /// The proxy's answer to `CONNECT`, as it arrives.
    tunnel: Vec<u8>,
    /// The [`look_mark`] of the look at free that found the socket quiet (0: not known
    /// quiet). A socket given back and handed out again with no poll between (the common
    /// "response, then the next request") is not looked at again: no readiness was taken
    /// in meanwhile, and the look at free is as fresh as the one the hand-out would make,
    /// whose answer is itself used only after the `connected` event is dispatched.
    quiet_at: u64,
    /// When the socket was last pooled (set with [`Watch::IdlePending`]): of the entries
    /// `to_watch` may hold for it, only the one of this spell counts.
    pooled_at: Duration,
}

/// A connect racing others to the same host (RFC 8305): the attempts after the first, one
/// more each connection attempt delay (or at once when one fails); the first that
/// connects wins and the others are closed.
struct Race {
    /// Addresses not tried yet, in the order to try them (families alternating).
    rest: std::collections::VecDeque<SocketAddr>,
    /// Attempts in flight besides the socket's own stream, by number.
    racers: Vec<(u32, mio::net::TcpStream, SocketAddr)>,
    next_id: u32,
    /// The timer that starts the next attempt.
    timer: Option<reactor::AlarmId>,
}

struct Inner {
    pool: Pool,
    config: KeepaliveBuilder,
    session: Option<SessionId>,
    origin: reactor::Time,
    reqs: Vec<Option<ReqMeta>>,
    socks: Vec<Option<Sock>>,
    resolver: Option<Resolver>,
    dns_held: bool,
    lookups: HashMap<u64, LookupId>,
    /// Template of the postback each connection carries: held while connections are out
    /// or the pool holds anything (see [`Shared::release_reclaim`]).
    reclaim: Option<Postback>,
    out: usize,
    timer: Option<(reactor::AlarmId, Duration)>,
    /// Idle sockets to watch, with when they were pooled.
    to_watch: Vec<(ConnId, Duration)>,
    /// Empty lists kept for the next give-back (see [`Shared::drain_returns`]).
    spare_returns: Vec<TakenBack>,
    /// Addresses that refused a connection: until when connects to them wait, and the
    /// pause that led there.
    refused: HashMap<SocketAddr, (Duration, Duration)>,
    /// The host of each lookup in flight, and every address of each host's last answer
    /// (the pool connects to the first; Happy Eyeballs races the others).
    lookup_hosts: HashMap<u64, String>,
    addrs: HashMap<String, Vec<IpAddr>>,
    /// The event of the last answer, posted by id when the same shared name (as a
    /// client that makes its requests with [`Request::for_key`] passes) comes again.
    answer_event: AnswerEvent,
}

fn lookup_key(l: LookupId) -> u64 {
    (l.generation() << 32) ^ l.index() as u64
}

impl Keepalive {
    /// A manager with the default settings (Perl's `new()`).
    pub fn new(kernel: &mut Kernel) -> Result<Keepalive, Error> {
        Self::builder().build(kernel)
    }

    /// Configures a manager.
    pub fn builder() -> KeepaliveBuilder {
        KeepaliveBuilder::default()
    }

    /// The manager's session, while it exists. It ends when the manager has nothing to do
    /// (as in POE) and is created again by the next call that needs it.
    pub fn session(&self) -> Option<SessionId> {
        self.shared.inner.borrow().session
    }

    /// The settings in force.
    pub fn settings(&self) -> Settings {
        self.shared.inner.borrow().pool.settings().clone()
    }

    /// A snapshot of the numbers: per key and in total, in use, idle, connecting, queued;
    /// reuse hits, stale discards, queue waits.
    pub fn stats(&self) -> Stats {
        self.shared.inner.borrow().pool.stats()
    }

    /// Whether [`shutdown`](Keepalive::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shared.inner.borrow().pool.is_shut_down()
    }

    /// Asks for a connection. The active session gets exactly one [`Response`] as
    /// `request`'s event, unless it [`deallocate`](Keepalive::deallocate)s the request
    /// first. A pooled socket is handed out at once (`from_cache` `"immediate"`, still
    /// delivered as an event); otherwise the request waits for a lookup, a free slot or a
    /// connect. Returns the request's id.
    pub fn allocate(&self, kernel: &mut Kernel, request: Request) -> Result<RequestId, Error> {
        self.allocate_at(kernel, request, None)
    }

    /// [`allocate`](Self::allocate) with the kernel's clock already read by the caller in
    /// the same handler (`now`, from [`Kernel::monotime`]): the give-back and the hand-out
    /// use that reading instead of taking another.
    pub(crate) fn allocate_at(
        &self,
        kernel: &mut Kernel,
        request: Request,
        now: Option<reactor::Time>,
    ) -> Result<RequestId, Error> {
        let requester = kernel.active_session();
        if requester.is_kernel() {
            return Err(Error::NoRequester);
        }
        // One look at the manager's state: shut down, and its session if it has one.
        let session = {
            let inner = self.shared.inner.borrow();
            if inner.pool.is_shut_down() {
                return Err(AllocateError::ShutDown.into());
            }
            inner.session
        };
        if request.event.is_empty() {
            return Err(Error::NoEvent);
        }
        self.exec_in(kernel, session, move |k| {
            self.shared.allocate(k, requester, request, now)
        })?
    }

    /// Cancels a pending request in any stage (lookup, queue, connect): no response
    /// follows. An unknown or already answered id is an error (Perl: "deallocate()
    /// requires a request ID").
    pub fn deallocate(&self, kernel: &mut Kernel, request: RequestId) -> Result<(), Error> {
        self.exec(kernel, move |k, sh| sh.deallocate(k, request))?
    }

    /// Shuts the manager down: every pending request gets an error response (function
    /// `"shutdown"`), connects in flight are aborted, lookups cancelled, idle sockets closed
    /// at once; connections still out are closed when dropped. Later `allocate`s fail.
    pub fn shutdown(&self, kernel: &mut Kernel) {
        if self.is_shut_down() {
            return;
        }
        let _ = self.exec(kernel, |k, sh| sh.shutdown(k));
    }

    fn ensure_session(&self, kernel: &mut Kernel) -> Result<SessionId, Error> {
        let session = self.shared.inner.borrow().session;
        self.session_or_new(kernel, session)
    }

    /// `session` (the manager's, as last looked at), or a new one if it has none.
    #[inline]
    fn session_or_new(
        &self,
        kernel: &mut Kernel,
        session: Option<SessionId>,
    ) -> Result<SessionId, Error> {
        match session {
            Some(sid) => Ok(sid),
            None => self.new_session(kernel),
        }
    }

    /// The manager's session, created (at the first call that needs it, and again after
    /// it ended).
    #[cold]
    fn new_session(&self, kernel: &mut Kernel) -> Result<SessionId, Error> {
        Ok(kernel.create(manager_session(self.shared.clone()))?)
    }

    /// Runs `f` as the manager's session (as POE components `call` into their session).
    fn exec<R>(
        &self,
        kernel: &mut Kernel,
        f: impl FnOnce(&mut Kernel, &Rc<Shared>) -> R,
    ) -> Result<R, Error> {
        let session = self.shared.inner.borrow().session;
        self.exec_in(kernel, session, |k| f(k, &self.shared))
    }

    /// [`exec`](Self::exec) with the manager's session already looked at (`session`).
    #[inline]
    fn exec_in<R>(
        &self,
        kernel: &mut Kernel,
        session: Option<SessionId>,
        f: impl FnOnce(&mut Kernel) -> R,
    ) -> Result<R, Error> {
        let sid = self.session_or_new(kernel, session)?;
        if kernel.active_session() == sid {
            return Ok(f(kernel));
        }
        Ok(kernel.run_as(sid, f)?)
    }
}

/// A handler of the manager's session that reaches the manager's state.
fn with(
    sh: &Rc<Shared>,
    f: impl Fn(&Rc<Shared>, &mut Ctx<'_, ()>) + 'static,
) -> impl Fn(&mut Ctx<'_, ()>) + 'static {
    let sh = sh.clone();
    move |ctx| f(&sh, ctx)
}

/// The handler of a socket watcher (`select_read`/`select_write`): `ARG2`, after the fd
/// and the mode, is the socket's id.
fn watcher(
    sh: &Rc<Shared>,
    f: fn(&Rc<Shared>, &mut Kernel, ConnId),
) -> impl Fn(&mut Ctx<'_, ()>) + 'static {
    with(sh, move |sh, ctx| {
        if let Ok(&conn) = ctx.arg::<ConnId>(2) {
            f(sh, ctx.kernel(), conn);
        }
    })
}

fn manager_session(sh: Rc<Shared>) -> Session<()> {
    Session::new(())
        .on(
            "_start",
            with(&sh, |sh, ctx| {
                let me = ctx.session();
                sh.inner.borrow_mut().session = Some(me);
                let alias = format!("POE::Component::Client::Keepalive::{}", me.get());
                let _ = ctx.alias_set(&alias);
                log::debug!("keepalive manager session {} started", me.get());
            }),
        )
        .on("_stop", with(&sh, |sh, ctx| sh.stopped(ctx.session())))
        .on(
            "ka_housekeeping",
            with(&sh, |sh, ctx| {
                {
                    let mut inner = sh.inner.borrow_mut();
                    sh.drain_returns(ctx.kernel(), &mut inner, None);
                }
                sh.housekeeping.set(false);
                sh.watch_idle(ctx.kernel());
            }),
        )
        .on("ka_conn_ready", watcher(&sh, Shared::connect_ready))
        .on("ka_tls", watcher(&sh, Shared::tls_step))
        .on("ka_tunnel", watcher(&sh, Shared::tunnel_input))
        .on("ka_idle", watcher(&sh, Shared::idle_activity))
        .on(
            "ka_conn_failed",
            with(&sh, |sh, ctx| {
                if let (Ok(&conn), Ok(f)) = (ctx.arg::<ConnId>(0), ctx.arg::<Failure>(1)) {
                    let f = f.clone();
                    sh.connect_failed(ctx.kernel(), conn, f);
                }
            }),
        )
        .on(
            "ka_deferred_connect",
            with(&sh, |sh, ctx| {
                if let Ok(&conn) = ctx.arg::<ConnId>(0) {
                    sh.deferred_connect(ctx.kernel(), conn);
                }
            }),
        )
        .on("ka_dns", with(&sh, |sh, ctx| sh.dns(ctx.kernel())))
        .on(
            "ka_race",
            with(&sh, |sh, ctx| {
                if let Ok(&conn) = ctx.arg::<ConnId>(0) {
                    sh.race_next(ctx.kernel(), conn, true);
                }
            }),
        )
        .on(
            "ka_race_ready",
            with(&sh, |sh, ctx| {
                if let (Ok(&conn), Ok(&id)) = (ctx.arg::<ConnId>(2), ctx.arg::<u32>(3)) {
                    sh.racer_ready(ctx.kernel(), conn, id);
                }
            }),
        )
        .on("ka_timer", with(&sh, |sh, ctx| sh.on_timer(ctx.kernel())))
}

impl Shared {
    fn now(inner: &Inner, k: &Kernel) -> Duration {
        Self::since_origin(inner, k.monotime())
    }

    /// A reading of the kernel's clock as the manager counts time (from its origin).
    fn since_origin(inner: &Inner, t: reactor::Time) -> Duration {
        Duration::from_nanos(u64::try_from(t - inner.origin).unwrap_or(0))
    }

    fn stopped(&self, me: SessionId) {
        let mut inner = self.inner.borrow_mut();
        if inner.session == Some(me) {
            inner.session = None;
        }
        // Watchers and timers went with the session; nothing registered is left.
        inner.timer = None;
        inner.dns_held = false;
        self.housekeeping.set(false);
        for s in inner.socks.iter_mut().flatten() {
            if s.watch == Watch::Idle {
                s.watch = Watch::IdlePending;
            }
        }
        log::debug!("keepalive manager session {} stopped", me.get());
    }

    fn allocate(
        self: &Rc<Self>,
        k: &mut Kernel,
        requester: SessionId,
        request: Request,
        now: Option<reactor::Time>,
    ) -> Result<RequestId, Error> {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        // One reading of the clock serves the give-back and the hand-out (the caller's,
        // when it read the clock in the same handler).
        let now = match now {
            Some(t) => Self::since_origin(inner, t),
            None => Self::now(inner, k),
        };
        self.drain_returns(k, inner, Some(now));
        let Request {
            key,
            event,
            context,
            timeout,
            fresh,
        } = request;
        let mut spec = RequestSpec::new(key.clone());
        if let Some(t) = timeout {
            spec = spec.with_timeout(t);
        }
        if fresh {
            spec = spec.fresh_connection();
        }
        let Inner { pool, socks, .. } = inner;
        let fresh = look_mark(k);
        let allocation = pool.request(spec, now, |c| check_idle(socks, c, fresh))?;
        let rid = match &allocation {
            Allocation::Immediate { request, .. } | Allocation::Actions(request, _) => *request,
        };
        let meta = ReqMeta {
            id: rid,
            key,
            session: requester,
            event,
            context,
            held: false,
        };
        let actions = match allocation {
            Allocation::Immediate { conn, timer, .. } => {
                // A pooled socket handed out at once, and nothing else to do but maybe the
                // timer: the answer, then the timer, as the pool's two actions would be.
                let outcome = Outcome::Connected {
                    conn,
                    origin: Origin::Immediate,
                };
                self.respond(k, inner, rid, Some(meta), RequestStage::Allocating, outcome);
                if let Some(at) = timer {
                    self.set_timer(k, inner, at);
                }
                Self::release_reclaim(inner);
                log::trace!("allocate {rid} for session {}", requester.get());
                return Ok(rid);
            }
            Allocation::Actions(_, actions) => actions,
        };
        // Answered among these actions (a pooled socket handed out at once): the answer
        // takes the request's record from here, not stored and taken back. Otherwise the
        // record waits for the answer where every later action finds it.
        let answered = actions
            .iter()
            .any(|a| matches!(a, Action::Respond { request, .. } if *request == rid));
        if answered {
            self.perform_with(k, inner, actions, Some(now), Some(meta));
            log::trace!("allocate {rid} for session {}", requester.get());
            return Ok(rid);
        }
        let i = rid.index();
        if inner.reqs.len() <= i {
            inner.reqs.resize_with(i + 1, || None);
        }
        inner.reqs[i] = Some(meta);
        self.perform_at(k, inner, actions, Some(now));
        if let Some(Some(m)) = inner.reqs.get_mut(i) {
            if m.id == rid && !m.held {
                m.held = true;
                let _ = k.refcount_increment(requester, REQUESTER_TAG);
            }
        }
        log::trace!("allocate {rid} for session {}", requester.get());
        Ok(rid)
    }

    fn deallocate(self: &Rc<Self>, k: &mut Kernel, request: RequestId) -> Result<(), Error> {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let now = Self::now(inner, k);
        let actions = inner.pool.deallocate(request, now)?;
        if let Some(m) = inner.reqs.get_mut(request.index()).and_then(Option::take) {
            if m.held {
                let _ = k.refcount_decrement(m.session, REQUESTER_TAG);
            }
        }
        self.perform(k, inner, actions);
        log::debug!("deallocated {request}");
        Ok(())
    }

    fn shutdown(self: &Rc<Self>, k: &mut Kernel) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        self.drain_returns(k, inner, None);
        let now = Self::now(inner, k);
        let actions = inner.pool.shutdown(now);
        self.perform(k, inner, actions);
        if inner.dns_held {
            if let Some(me) = inner.session {
                let _ = k.refcount_decrement(me, DNS_TAG);
            }
            inner.dns_held = false;
        }
        inner.resolver = None;
        inner.lookups.clear();
        if let Some((id, _)) = inner.timer.take() {
            let _ = k.alarm_remove(id);
        }
        for alias in k.my_aliases() {
            let _ = k.alias_remove(&alias);
        }
        log::debug!("keepalive manager shut down");
    }

    /// Takes back the sockets of dropped connections. `now` is the caller's reading of the
    /// clock, if it has one (else the clock is read once, if anything was given back).
    fn drain_returns(self: &Rc<Self>, k: &mut Kernel, inner: &mut Inner, now: Option<Duration>) {
        // Until nothing more is given back; with nothing, the lists stay where they are.
        while !self.returns.borrow().is_empty() {
            // The lists change hands instead of being allocated for each batch: the batch
            // taken here leaves the empty one of the last batch for the next returns.
            let mut batch = std::mem::take(&mut inner.spare_returns);
            std::mem::swap(&mut batch, &mut *self.returns.borrow_mut());
            let now = now.unwrap_or_else(|| Self::now(inner, k));
            // Each socket is taken back in its place in the list, not moved to another.
            for t in &mut batch {
                Self::take_back(k, inner, t);
            }
            check_quiet(&mut batch);
            // The frees of a batch share one list of actions, carried out once.
            let mut actions = inner.pool.action_list();
            for t in batch.drain(..) {
                self.reclaim(k, inner, t, now, &mut actions);
            }
            inner.spare_returns = batch;
            self.perform_at(k, inner, actions, Some(now));
        }
    }

    /// A returned socket's first steps: its wheel parked, and what the wheel knows of it.
    fn take_back(k: &mut Kernel, inner: &mut Inner, t: &mut TakenBack) {
        inner.out = inner.out.saturating_sub(1);
        if let Some(limit) = t.idle_limit {
            if limit.is_zero() {
                t.clean = false;
            }
            let _ = inner.pool.set_idle_limit(t.conn, limit);
        }
        if let Some(h) = t.wheel.take() {
            match k.wheel_park::<ReadWrite>(h) {
                Some((rw, p)) => {
                    t.parking = Some(p);
                    // Input the wheel read and did not deliver, a shut-down direction or
                    // unsent output make the socket unfit without a look at it.
                    t.unread = rw.input_pending_octets() > 0;
                    if t.unread || rw.is_shut_down() || rw.driver_out_octets() > 0 {
                        t.clean = false;
                    }
                    t.stream = stream_of(rw, t.bare);
                }
                None => t.clean = false,
            }
        }
        if t.stream.is_none() {
            t.clean = false;
        }
    }

    /// A returned socket, looked at (see [`check_quiet`]), goes back to the pool or is
    /// closed.
    fn reclaim(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        t: TakenBack,
        now: Duration,
        actions: &mut Vec<Action>,
    ) {
        let TakenBack {
            conn,
            parking,
            stream,
            clean,
            unread,
            ..
        } = t;
        if unread {
            if let Some(s) = &stream {
                s.reset_on_close();
            }
        }
        log::trace!("{conn}: given back (reusable: {clean})");
        let fresh = look_mark(k);
        match inner.pool.free_into(conn, clean, now, actions) {
            Ok(()) => {
                if let Some(Some(s)) = inner.socks.get_mut(conn.index()) {
                    if s.id == conn {
                        s.stream = stream;
                        s.parking = parking;
                        s.quiet_at = if clean { fresh } else { 0 };
                    } else if let Some(p) = parking {
                        k.wheel_unpark(p);
                    }
                }
            }
            Err(e) => {
                log::debug!("free of {conn}: {e}");
                if let Some(p) = parking {
                    k.wheel_unpark(p);
                }
            }
        }
    }

    /// Watches the sockets pooled at least [`WATCH_GRACE`] ago that are still idle; the
    /// others are looked at again when their grace is over. A socket handed out again
    /// within its grace (the usual case under load: the next request comes a moment after
    /// the last response) costs no watch and unwatch, two system calls. An entry of an
    /// earlier idle spell (the socket was handed out and pooled again since) is dropped:
    /// the grace runs from the last pooling, which has an entry of its own.
    fn watch_idle(self: &Rc<Self>, k: &mut Kernel) {
        let mut inner = self.inner.borrow_mut();
        let now = Self::now(&inner, k);
        // The entries that wait longer stay in the list, which keeps its capacity.
        let mut list = std::mem::take(&mut inner.to_watch);
        let socks = &mut inner.socks;
        list.retain(|&(conn, since)| {
            let Some(Some(s)) = socks.get_mut(conn.index()) else {
                return false;
            };
            let still_idle = s.id == conn && s.watch == Watch::IdlePending && s.pooled_at == since;
            if !still_idle {
                return false;
            }
            if now < since + WATCH_GRACE {
                return true;
            }
            if let Some(st) = &s.stream {
                // The watch takes the registration over.
                if let Some(p) = s.parking.take() {
                    k.wheel_unpark(p);
                }
                log::trace!("{conn}: watched while idle");
                if k.select_read(&st.as_raw_fd(), "ka_idle", (conn,)).is_ok() {
                    s.watch = Watch::Idle;
                }
            }
            false
        });
        let first = list.iter().map(|&(_, t)| t).min();
        debug_assert!(inner.to_watch.is_empty());
        inner.to_watch = list;
        if let Some(first) = first {
            if !self.housekeeping.replace(true) {
                let wait = (first + WATCH_GRACE).saturating_sub(now);
                if k.delay_set("ka_housekeeping", wait, ()).is_err() {
                    self.housekeeping.set(false);
                }
            }
        }
    }

    fn idle_activity(self: &Rc<Self>, k: &mut Kernel, conn: ConnId) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let Some(Some(s)) = inner.socks.get_mut(conn.index()) else {
            return;
        };
        if s.id != conn {
            return;
        }
        // TLS records without application data (session tickets) are not activity.
        if let Some(st) = s.stream.as_mut() {
            if st.is_tls() && st.is_quiet() {
                return;
            }
        }
        let now = Self::now(inner, k);
        match inner.pool.idle_activity(conn, now) {
            Ok(actions) => self.perform(k, inner, actions),
            Err(e) => log::debug!("idle activity on {conn}: {e}"),
        }
    }

    fn dns(self: &Rc<Self>, k: &mut Kernel) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let answers = match inner.resolver.as_mut() {
            Some(r) => r.drain(),
            None => return,
        };
        for (id, result) in answers {
            let host = inner.lookup_hosts.remove(&id);
            let Some(lookup) = inner.lookups.remove(&id) else {
                continue;
            };
            let now = Self::now(inner, k);
            let actions = match result {
                Ok(addrs) => {
                    if let Some(h) = host {
                        if addrs.len() > 1 {
                            inner.addrs.insert(h, addrs.clone());
                        } else {
                            inner.addrs.remove(&h);
                        }
                    }
                    let Inner { pool, socks, .. } = &mut *inner;
                    let fresh = look_mark(k);
                    pool.resolved(lookup, &addrs, now, |c| check_idle(socks, c, fresh))
                }
                Err(msg) => inner.pool.resolve_failed(lookup, &msg, now),
            };
            if let Ok(actions) = actions {
                self.perform(k, inner, actions);
            }
        }
        self.dns_unwatch_if_idle(k, inner);
    }

    fn dns_unwatch_if_idle(&self, k: &mut Kernel, inner: &mut Inner) {
        if inner.dns_held && inner.lookups.is_empty() {
            if let Some(me) = inner.session {
                let _ = k.refcount_decrement(me, DNS_TAG);
            }
            inner.dns_held = false;
        }
    }

    fn on_timer(self: &Rc<Self>, k: &mut Kernel) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let due = inner.timer.take().map(|(_, at)| at);
        // The kernel fires at or after the deadline; rounding must not make it look early.
        let now = Self::now(inner, k).max(due.unwrap_or_default());
        let actions = inner.pool.advance(now);
        self.perform(k, inner, actions);
        // The alarm may have been early (it is moved only earlier, see `set_timer`).
        if inner.timer.is_none() {
            let next = inner.pool.next_deadline();
            self.set_timer(k, inner, next);
        }
    }

    /// Keeps one kernel alarm at or before the pool's earliest deadline. It is moved only
    /// to an earlier time: a later deadline, or none, leaves it where it is (it fires,
    /// finds nothing due and is set again), which saves a cancel and a set per hand-out.
    /// It is removed when the pool holds nothing, so it never keeps the kernel running.
    fn set_timer(&self, k: &mut Kernel, inner: &mut Inner, at: Option<Duration>) {
        match at {
            Some(at) if inner.timer.is_some_and(|(_, armed)| armed <= at) => {}
            Some(at) => {
                if let Some((id, _)) = inner.timer.take() {
                    let _ = k.alarm_remove(id);
                }
                let now = Self::now(inner, k);
                if let Ok(id) = k.delay_set("ka_timer", at.saturating_sub(now), ()) {
                    inner.timer = Some((id, at));
                }
            }
            None => {
                let g = inner.pool.gauges();
                if g.open() == 0 && g.queued == 0 && g.resolving == 0 {
                    if let Some((id, _)) = inner.timer.take() {
                        let _ = k.alarm_remove(id);
                    }
                }
            }
        }
    }

    fn connect_ready(self: &Rc<Self>, k: &mut Kernel, conn: ConnId) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let now = Self::now(inner, k);
        // A deadline that passed before the socket became ready wins, as if its timer
        // had run first.
        let due = inner.pool.advance(now);
        if !due.is_empty() {
            self.perform(k, inner, due);
        }
        let Some(Some(s)) = inner.socks.get_mut(conn.index()) else {
            return;
        };
        if s.id != conn || s.watch != Watch::Connect {
            return;
        }
        let Some(Stream::Tcp(tcp)) = s.stream.as_ref() else {
            return;
        };
        let fd = tcp.as_raw_fd();
        let result = match tcp.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match tcp.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Err(e),
            },
        };
        let _ = k.select_write_clear(&fd);
        s.watch = Watch::None;
        let addr = s.addr;
        match result {
            Err(e) => {
                s.stream = None;
                let racing = s
                    .race
                    .as_ref()
                    .is_some_and(|r| !r.racers.is_empty() || !r.rest.is_empty());
                if e.raw_os_error() == Some(ECONNREFUSED) {
                    Self::note_refused(inner, addr, now);
                }
                if racing {
                    // Other attempts carry on (the next one starts now).
                    drop(guard);
                    self.race_next(k, conn, false);
                    return;
                }
                if let Ok(actions) = inner
                    .pool
                    .connect_failed(conn, io_failure("connect", &e), now)
                {
                    self.perform(k, inner, actions);
                }
            }
            Ok(()) => {
                if let Some(race) = s.race.take() {
                    end_race(k, *race);
                }
                inner.refused.remove(&addr);
                let key = inner.pool.conn_key(conn).cloned();
                let Some(key) = key.filter(|key| key.scheme == "https") else {
                    if let Ok(actions) = inner.pool.connected(conn, now) {
                        self.perform(k, inner, actions);
                    }
                    return;
                };
                drop(guard);
                if key.addr != key.for_addr || key.port != key.for_port {
                    self.begin_tunnel(k, conn);
                } else {
                    self.begin_tls(k, conn);
                }
            }
        }
    }

    /// Wraps socket `conn` in TLS for its origin (`for_addr`, the name certificates are
    /// checked against and sent as SNI) and starts the handshake.
    fn begin_tls(self: &Rc<Self>, k: &mut Kernel, conn: ConnId) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let now = Self::now(inner, k);
        let Some(key) = inner.pool.conn_key(conn).cloned() else {
            return;
        };
        #[cfg(not(feature = "tls"))]
        {
            let _ = key;
            if let Some(Some(s)) = inner.socks.get_mut(conn.index()) {
                if s.id == conn {
                    s.stream = None;
                }
            }
            let f = Failure::new("sslify", None, "https needs the `tls` feature");
            if let Ok(actions) = inner.pool.connect_failed(conn, f, now) {
                self.perform(k, inner, actions);
            }
        }
        #[cfg(feature = "tls")]
        self.begin_tls_with(k, conn, guard, key, now);
    }

    /// [`begin_tls`](Shared::begin_tls) once the origin is known.
    #[cfg(feature = "tls")]
    fn begin_tls_with(
        self: &Rc<Self>,
        k: &mut Kernel,
        conn: ConnId,
        mut guard: std::cell::RefMut<'_, Inner>,
        key: Arc<crate::pool::PoolKey>,
        now: Duration,
    ) {
        let inner = &mut *guard;
        let config = inner
            .config
            .tls
            .get_or_insert_with(crate::tls::default_client_config)
            .clone();
        let Some(Some(s)) = inner.socks.get_mut(conn.index()) else {
            return;
        };
        if s.id != conn {
            return;
        }
        let Some(Stream::Tcp(tcp)) = s.stream.take() else {
            return;
        };
        match TlsStream::new(tcp, config, &key.for_addr) {
            Ok(t) => {
                s.stream = Some(Stream::Tls(Box::new(t)));
                drop(guard);
                self.tls_step(k, conn);
            }
            Err(msg) => {
                let f = Failure::new("sslify", None, msg);
                if let Ok(actions) = inner.pool.connect_failed(conn, f, now) {
                    self.perform(k, inner, actions);
                }
            }
        }
    }

    /// An https connection through a proxy: asks the proxy (connected to) for a tunnel to
    /// the origin with `CONNECT`; its answer comes as `ka_tunnel`.
    fn begin_tunnel(self: &Rc<Self>, k: &mut Kernel, conn: ConnId) {
        use std::io::Write;
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let now = Self::now(inner, k);
        let Some(key) = inner.pool.conn_key(conn).cloned() else {
            return;
        };
        let Some(Some(s)) = inner.socks.get_mut(conn.index()) else {
            return;
        };
        let Some(Stream::Tcp(tcp)) = s.stream.as_mut().filter(|_| s.id == conn) else {
            return;
        };
        let host = if key.for_addr.contains(':') && !key.for_addr.starts_with('[') {
            format!("[{}]", key.for_addr)
        } else {
            key.for_addr.clone()
        };
        let authority = format!("{host}:{}", key.for_port);
        let req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        let fd = tcp.as_raw_fd();
        let failure = match tcp.write(req.as_bytes()) {
            Ok(n) if n == req.len() => {
                if k.select_read(&fd, "ka_tunnel", (conn,)).is_ok() {
                    s.watch = Watch::Tunnel;
                    s.tunnel.clear();
                    return;
                }
                Failure::new("proxy", None, "cannot watch the proxy connection")
            }
            Ok(_) => Failure::new("proxy", None, "CONNECT request not sent whole"),
            Err(e) => io_failure("proxy", &e),
        };
        s.stream = None;
        if let Ok(actions) = inner.pool.connect_failed(conn, failure, now) {
            self.perform(k, inner, actions);
        }
    }

    /// The proxy answered (part of) `CONNECT`: on a 2xx head, TLS to the origin over it.
    fn tunnel_input(self: &Rc<Self>, k: &mut Kernel, conn: ConnId) {
        use std::io::Read;
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let now = Self::now(inner, k);
        let Some(Some(s)) = inner.socks.get_mut(conn.index()) else {
            return;
        };
        if s.id != conn || s.watch != Watch::Tunnel {
            return;
        }
        let Some(Stream::Tcp(tcp)) = s.stream.as_mut() else {
            return;
        };
        let fd = tcp.as_raw_fd();
        let mut buf = [0u8; 2048];
        let mut failure = None;
        let mut eof = false;
        loop {
            match tcp.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    s.tunnel.extend_from_slice(&buf[..n]);
                    if s.tunnel.len() > 16 * 1024 {
                        failure = Some(Failure::new("proxy", None, "proxy answer too long"));
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(io_failure("proxy", &e));
                    break;
                }
            }
        }
        if failure.is_none() {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut head = httparse::Response::new(&mut headers);
            match head.parse(&s.tunnel) {
                Ok(httparse::Status::Partial) if !eof => return,
                Ok(httparse::Status::Partial) => {
                    failure = Some(Failure::new(
                        "proxy",
                        None,
                        "the proxy closed the connection",
                    ));
                }
                Ok(httparse::Status::Complete(n)) => {
                    let code = head.code.unwrap_or(0);
                    if !(200..300).contains(&code) {
                        failure = Some(Failure::new(
                            "proxy",
                            None,
                            format!("CONNECT refused: {code} {}", head.reason.unwrap_or("")),
                        ));
                    } else if n != s.tunnel.len() || eof {
                        failure = Some(Failure::new(
                            "proxy",
                            None,
                            "bytes after the proxy's answer",
                        ));
                    }
                }
                Err(e) => {
                    failure = Some(Failure::new(
                        "proxy",
                        None,
                        format!("bad proxy answer: {e}"),
                    ))
                }
            }
        }
        let _ = k.select_read_clear(&fd);
        s.watch = Watch::None;
        s.tunnel = Vec::new();
        match failure {
            None => {
                drop(guard);
                self.begin_tls(k, conn);
            }
            Some(f) => {
                s.stream = None;
                if let Ok(actions) = inner.pool.connect_failed(conn, f, now) {
                    self.perform(k, inner, actions);
                }
            }
        }
    }

    /// Without TLS no handshake is ever watched.
    #[cfg(not(feature = "tls"))]
    fn tls_step(self: &Rc<Self>, _k: &mut Kernel, _conn: ConnId) {}

    #[cfg(feature = "tls")]
    fn tls_step(self: &Rc<Self>, k: &mut Kernel, conn: ConnId) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let now = Self::now(inner, k);
        // A deadline that passed before the socket became ready wins, as if its timer
        // had run first.
        let due = inner.pool.advance(now);
        if !due.is_empty() {
            self.perform(k, inner, due);
        }
        let Some(Some(s)) = inner.socks.get_mut(conn.index()) else {
            return;
        };
        if s.id != conn {
            return;
        }
        let Some(Stream::Tls(t)) = s.stream.as_mut() else {
            return;
        };
        let fd = t.tcp().as_raw_fd();
        let step = t.handshake();
        match s.watch {
            Watch::TlsRead => {
                let _ = k.select_read_clear(&fd);
            }
            Watch::TlsWrite => {
                let _ = k.select_write_clear(&fd);
            }
            _ => {}
        }
        s.watch = Watch::None;
        match step {
            Ok(Handshake::Done) => {
                if let Ok(actions) = inner.pool.connected(conn, now) {
                    self.perform(k, inner, actions);
                }
            }
            Ok(Handshake::WantRead) => {
                if k.select_read(&fd, "ka_tls", (conn,)).is_ok() {
                    s.watch = Watch::TlsRead;
                }
            }
            Ok(Handshake::WantWrite) => {
                if k.select_write(&fd, "ka_tls", (conn,)).is_ok() {
                    s.watch = Watch::TlsWrite;
                }
            }
            Err(e) => {
                s.stream = None;
                let f = Failure::new("sslify", e.raw_os_error(), errstr(&e));
                if let Ok(actions) = inner.pool.connect_failed(conn, f, now) {
                    self.perform(k, inner, actions);
                }
            }
        }
    }

    fn connect_failed(self: &Rc<Self>, k: &mut Kernel, conn: ConnId, f: Failure) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let racing = match inner.socks.get(conn.index()) {
            Some(Some(s)) if s.id == conn => s
                .race
                .as_ref()
                .is_some_and(|r| !r.racers.is_empty() || !r.rest.is_empty()),
            _ => false,
        };
        if racing {
            drop(guard);
            self.race_next(k, conn, false);
            return;
        }
        let now = Self::now(inner, k);
        if let Ok(actions) = inner.pool.connect_failed(conn, f, now) {
            self.perform(k, inner, actions);
        }
    }

    /// Sets up Happy Eyeballs for socket `conn`, whose first attempt goes to `first`: the
    /// host's other addresses, families alternating, one more every attempt delay.
    fn start_race(
        &self,
        k: &mut Kernel,
        inner: &mut Inner,
        conn: ConnId,
        host: &str,
        first: SocketAddr,
    ) {
        let Some(delay) = inner.config.attempt_delay else {
            return;
        };
        let Some(all) = inner.addrs.get(host) else {
            return;
        };
        let port = first.port();
        let others: Vec<IpAddr> = all.iter().copied().filter(|ip| *ip != first.ip()).collect();
        if others.is_empty() {
            return;
        }
        // The other family first, then alternating (RFC 8305, 4).
        let (mut same, mut other): (
            std::collections::VecDeque<IpAddr>,
            std::collections::VecDeque<IpAddr>,
        ) = others
            .iter()
            .partition(|ip| ip.is_ipv4() == first.is_ipv4());
        let mut rest = std::collections::VecDeque::new();
        loop {
            match (other.pop_front(), same.pop_front()) {
                (None, None) => break,
                (a, b) => {
                    rest.extend(a.map(|ip| SocketAddr::new(ip, port)));
                    rest.extend(b.map(|ip| SocketAddr::new(ip, port)));
                }
            }
        }
        let Some(Some(s)) = inner.socks.get_mut(conn.index()) else {
            return;
        };
        if s.id != conn {
            return;
        }
        let timer = k.delay_set("ka_race", delay, (conn,)).ok();
        s.race = Some(Box::new(Race {
            rest,
            racers: Vec::new(),
            next_id: 1,
            timer,
        }));
    }

    /// Starts the next attempt of `conn`'s race (the attempt delay passed, or an attempt
    /// failed). When nothing is left to try and nothing is in flight, the connect fails.
    fn race_next(self: &Rc<Self>, k: &mut Kernel, conn: ConnId, from_timer: bool) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let delay = inner.config.attempt_delay.unwrap_or_default();
        loop {
            let Some(Some(s)) = inner.socks.get_mut(conn.index()) else {
                return;
            };
            if s.id != conn {
                return;
            }
            let main_alive = s.stream.is_some() && s.watch == Watch::Connect;
            let Some(race) = s.race.as_mut() else { return };
            if from_timer {
                race.timer = None;
            }
            let Some(addr) = race.rest.pop_front() else {
                if race.racers.is_empty() && !main_alive {
                    s.race = None;
                    let now = Self::now(inner, k);
                    let f = Failure::new(
                        "connect",
                        Some(reactor::errno::ETIMEDOUT),
                        "no address could be connected to",
                    );
                    if let Ok(actions) = inner.pool.connect_failed(conn, f, now) {
                        self.perform(k, inner, actions);
                    }
                }
                return;
            };
            let id = race.next_id;
            race.next_id += 1;
            match self.start_connect(inner, addr.ip(), addr.port()) {
                Ok(tcp) => {
                    let fd = tcp.as_raw_fd();
                    let Some(Some(s)) = inner.socks.get_mut(conn.index()) else {
                        return;
                    };
                    let Some(race) = s.race.as_mut() else { return };
                    if k.select_write(&fd, "ka_race_ready", (conn, id)).is_ok() {
                        race.racers.push((id, tcp, addr));
                    }
                    if !race.rest.is_empty() && race.timer.is_none() {
                        race.timer = k.delay_set("ka_race", delay, (conn,)).ok();
                    }
                    log::debug!("{conn}: racing a connect to {addr}");
                    return;
                }
                Err(f) => {
                    log::debug!("{conn}: connect to {addr} failed: {f}");
                    // Try the next one at once.
                }
            }
        }
    }

    /// Attempt `id` of `conn`'s race is writable: connected (it wins: it becomes the
    /// socket, the others are closed) or failed.
    fn racer_ready(self: &Rc<Self>, k: &mut Kernel, conn: ConnId, id: u32) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let now = Self::now(inner, k);
        let Some(Some(s)) = inner.socks.get_mut(conn.index()) else {
            return;
        };
        if s.id != conn {
            return;
        }
        let Some(race) = s.race.as_mut() else { return };
        let Some(pos) = race.racers.iter().position(|(i, ..)| *i == id) else {
            return;
        };
        let result = {
            let tcp = &race.racers[pos].1;
            match tcp.take_error() {
                Ok(Some(e)) | Err(e) => Err(e),
                Ok(None) => match tcp.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                    Err(e) => Err(e),
                },
            }
        };
        let (_, tcp, addr) = race.racers.remove(pos);
        let _ = k.select_write_clear(&tcp.as_raw_fd());
        match result {
            Err(e) => {
                if e.raw_os_error() == Some(ECONNREFUSED) {
                    Self::note_refused(inner, addr, now);
                }
                drop(tcp);
                drop(guard);
                self.race_next(k, conn, false);
            }
            Ok(()) => {
                log::debug!("{conn}: {addr} won the race");
                // The winner takes the socket's place; the first attempt and the others go.
                if let Some(old) = s.stream.take() {
                    if s.watch == Watch::Connect {
                        let _ = k.select_write_clear(&old.as_raw_fd());
                    }
                }
                if let Some(race) = s.race.take() {
                    end_race(k, *race);
                }
                let fd = tcp.as_raw_fd();
                s.stream = Some(Stream::Tcp(tcp));
                s.addr = addr;
                s.watch = Watch::None;
                // Through the usual path (TLS, then connected), at the next poll: the socket
                // is writable already.
                if k.select_write(&fd, "ka_conn_ready", (conn,)).is_ok() {
                    s.watch = Watch::Connect;
                }
            }
        }
    }

    /// Starts socket `conn`'s connect to `addr` now.
    fn connect_now(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        conn: ConnId,
        addr: SocketAddr,
    ) {
        let i = conn.index();
        match self.start_connect(inner, addr.ip(), addr.port()) {
            Ok(tcp) => {
                let fd = tcp.as_raw_fd();
                let watch = if k.select_write(&fd, "ka_conn_ready", (conn,)).is_ok() {
                    Watch::Connect
                } else {
                    Watch::None
                };
                inner.socks[i] = Some(Sock {
                    id: conn,
                    stream: Some(Stream::Tcp(tcp)),
                    parking: None,
                    watch,
                    addr,
                    deferred: None,
                    race: None,
                    tunnel: Vec::new(),
                    quiet_at: 0,
                    pooled_at: Duration::ZERO,
                });
                log::debug!("{conn}: connecting to {addr}");
            }
            Err(f) => {
                inner.socks[i] = Some(Sock {
                    id: conn,
                    stream: None,
                    parking: None,
                    watch: Watch::None,
                    addr,
                    deferred: None,
                    race: None,
                    tunnel: Vec::new(),
                    quiet_at: 0,
                    pooled_at: Duration::ZERO,
                });
                log::debug!("{conn}: connect to {addr} failed: {f}");
                if f.errnum == Some(ECONNREFUSED) {
                    let now = Self::now(inner, k);
                    Self::note_refused(inner, addr, now);
                }
                let _ = k.yield_("ka_conn_failed", (conn, f));
            }
        }
    }

    /// The pause after a refused connect is over: connect.
    fn deferred_connect(self: &Rc<Self>, k: &mut Kernel, conn: ConnId) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let addr = match inner.socks.get_mut(conn.index()) {
            Some(Some(s)) if s.id == conn && s.watch == Watch::Deferred => {
                s.deferred = None;
                s.addr
            }
            _ => return,
        };
        self.connect_now(k, inner, conn, addr);
    }

    /// `addr` refused a connection: connects to it wait, first for the shortest pause, then
    /// twice as long each time it refuses again, up to the longest; a connect that works
    /// forgets it.
    fn note_refused(inner: &mut Inner, addr: SocketAddr, now: Duration) {
        let Some((first, most)) = inner.config.refused_backoff else {
            return;
        };
        let pause = match inner.refused.get(&addr) {
            Some(&(_, last)) => (last * 2).min(most),
            None => first,
        };
        log::debug!("{addr} refused: connects wait {pause:?}");
        inner.refused.insert(addr, (now + pause, pause));
    }

    /// Starts a non-blocking connect. `Err` is a failure reported asynchronously.
    fn start_connect(
        &self,
        inner: &Inner,
        ip: IpAddr,
        port: u16,
    ) -> Result<mio::net::TcpStream, Failure> {
        use socket2::{Domain, Protocol, Socket, Type};
        let addr = SocketAddr::new(ip, port);
        let sock = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )
        .map_err(|e| io_failure("socket", &e))?;
        if inner.config.nodelay {
            sock.set_nodelay(true)
                .map_err(|e| io_failure("setsockopt", &e))?;
        }
        if let Some(b) = inner.config.bind_address {
            sock.bind(&SocketAddr::new(b, 0).into())
                .map_err(|e| io_failure("bind", &e))?;
        }
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(io_failure("connect", &e)),
        }
        Ok(mio::net::TcpStream::from_std(sock.into()))
    }

    /// Performs what the pool asked for, in order.
    fn perform(self: &Rc<Self>, k: &mut Kernel, inner: &mut Inner, actions: Vec<Action>) {
        self.perform_at(k, inner, actions, None);
    }

    /// [`perform`](Shared::perform) with the caller's reading of the clock, if it has one
    /// (else the clock is read when an action needs it, once).
    fn perform_at(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        actions: Vec<Action>,
        now: Option<Duration>,
    ) {
        self.perform_with(k, inner, actions, now, None);
    }

    /// [`perform_at`](Shared::perform_at) with, in hand, the record of a request that the
    /// actions answer (`answering`, not stored in `reqs`).
    fn perform_with(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        mut actions: Vec<Action>,
        mut now: Option<Duration>,
        mut answering: Option<ReqMeta>,
    ) {
        for a in actions.drain(..) {
            match a {
                Action::Resolve { lookup, host } => self.do_resolve(k, inner, lookup, &host),
                Action::CancelResolve { lookup } => {
                    let key = lookup_key(lookup);
                    if inner.lookups.remove(&key).is_some() {
                        if let Some(r) = inner.resolver.as_mut() {
                            r.cancel(key);
                        }
                    }
                    self.dns_unwatch_if_idle(k, inner);
                }
                Action::Connect {
                    conn,
                    request: _,
                    key,
                    ip,
                } => {
                    let i = conn.index();
                    if inner.socks.len() <= i {
                        inner.socks.resize_with(i + 1, || None);
                    }
                    let addr = SocketAddr::new(ip, key.port);
                    let now = *now.get_or_insert_with(|| Self::now(inner, k));
                    match inner.refused.get(&addr) {
                        Some(&(until, _)) if until > now => {
                            // The address refused a moment ago: wait before trying again.
                            let timer = k
                                .delay_set("ka_deferred_connect", until - now, (conn,))
                                .ok();
                            log::debug!("{conn}: connect to {addr} deferred by {:?}", until - now);
                            inner.socks[i] = Some(Sock {
                                id: conn,
                                stream: None,
                                parking: None,
                                watch: Watch::Deferred,
                                addr,
                                deferred: timer,
                                race: None,
                                tunnel: Vec::new(),
                                quiet_at: 0,
                                pooled_at: Duration::ZERO,
                            });
                        }
                        _ => {
                            self.connect_now(k, inner, conn, addr);
                            self.start_race(k, inner, conn, &key.addr, addr);
                        }
                    }
                }
                Action::AbortConnect { conn } | Action::Close { conn, .. } => {
                    if let Action::Close { reason, .. } = &a {
                        log::debug!("{conn}: closed ({reason:?})");
                    } else {
                        log::debug!("{conn}: connect aborted");
                    }
                    if let Some(s) = inner.socks.get_mut(conn.index()).and_then(Option::take) {
                        if s.id == conn {
                            close_sock(k, s);
                        } else {
                            inner.socks[conn.index()] = Some(s);
                        }
                    }
                }
                Action::WatchIdle { conn } => {
                    let now = *now.get_or_insert_with(|| Self::now(inner, k));
                    if let Some(Some(s)) = inner.socks.get_mut(conn.index()) {
                        if s.id == conn {
                            s.watch = Watch::IdlePending;
                            s.pooled_at = now;
                            inner.to_watch.push((conn, now));
                            if !self.housekeeping.replace(true) {
                                let _ = k.yield_("ka_housekeeping", ());
                            }
                        }
                    }
                }
                Action::SetTimer { at } => self.set_timer(k, inner, at),
                Action::Respond {
                    request,
                    stage,
                    outcome,
                } => {
                    let meta = match answering.take() {
                        Some(m) if m.id == request => Some(m),
                        other => {
                            answering = other;
                            inner
                                .reqs
                                .get_mut(request.index())
                                .and_then(Option::take)
                                .filter(|m| m.id == request)
                        }
                    };
                    self.respond(k, inner, request, meta, stage, outcome);
                }
            }
        }
        inner.pool.recycle(actions);
        Self::release_reclaim(inner);
    }

    /// Lets the connections' postback template go when no connection is out and the pool
    /// holds nothing: then nothing of the manager's keeps its session alive. While the pool
    /// holds sockets its alarm keeps the session anyway, and keeping the template saves
    /// making a new postback at the next hand-out (each time all connections are back at
    /// once: one hand-out in nine at 8 in flight).
    fn release_reclaim(inner: &mut Inner) {
        if inner.out == 0 && inner.reclaim.is_some() {
            let g = inner.pool.gauges();
            if g.open() == 0 && g.queued == 0 && g.resolving == 0 {
                inner.reclaim = None;
            }
        }
    }

    fn do_resolve(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        lookup: LookupId,
        host: &str,
    ) {
        if inner.resolver.is_none() {
            // Workers post `ka_dns` to the manager's session when answers are ready.
            let made = k.poster().map_err(io::Error::other).and_then(|poster| {
                let me = k.active_session();
                Resolver::new(
                    inner.config.resolver.clone(),
                    inner.config.resolver_threads,
                    move || {
                        let _ = poster.post(me, "ka_dns", ());
                    },
                )
            });
            match made {
                Ok(r) => inner.resolver = Some(r),
                Err(e) => {
                    let now = Self::now(inner, k);
                    if let Ok(actions) = inner.pool.resolve_failed(lookup, &errstr(&e), now) {
                        self.perform(k, inner, actions);
                    }
                    return;
                }
            }
        }
        let key = lookup_key(lookup);
        inner.lookups.insert(key, lookup);
        inner.lookup_hosts.insert(key, host.to_owned());
        let r = inner.resolver.as_mut().expect("made above");
        r.start(key, host);
        // Pending lookups keep the manager's session alive, as a watched descriptor would.
        if !inner.dns_held {
            if let Some(me) = inner.session {
                if k.refcount_increment(me, DNS_TAG).is_ok() {
                    inner.dns_held = true;
                }
            }
        }
        log::debug!("resolving {host}");
    }

    /// Delivers a request's answer; `meta` is its record, if it is still pending.
    fn respond(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        request: RequestId,
        meta: Option<ReqMeta>,
        stage: RequestStage,
        outcome: Outcome,
    ) {
        let Some(meta) = meta else {
            log::debug!("response to unknown {request} dropped");
            return;
        };
        if meta.held {
            let _ = k.refcount_decrement(meta.session, REQUESTER_TAG);
        }
        let (connection, origin) = match outcome {
            Outcome::Failed(f) => {
                log::debug!("{request}: {f}");
                (Err(f), None)
            }
            Outcome::Connected { conn, origin } => {
                log::trace!("{conn}: handed out to {request} ({origin:?})");
                let mut stream = None;
                let mut parking = None;
                let mut peer = None;
                if let Some(Some(s)) = inner.socks.get_mut(conn.index()) {
                    if s.id == conn {
                        peer = Some(s.addr);
                        if s.watch == Watch::Idle {
                            if let Some(st) = &s.stream {
                                let _ = k.select_read_clear(&st.as_raw_fd());
                            }
                        }
                        s.watch = Watch::None;
                        parking = s.parking.take();
                        stream = s.stream.take();
                    }
                }
                let reclaim = match &inner.reclaim {
                    Some(p) => p.clone(),
                    None => {
                        let me = k.active_session();
                        let p = k.postback(me, "ka_housekeeping", Args::new());
                        inner.reclaim = Some(p.clone());
                        p
                    }
                };
                inner.out += 1;
                let ckey = inner
                    .pool
                    .conn_key(conn)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(PoolKey::new("", "", 0)));
                (
                    Ok(Connection {
                        conn,
                        key: ckey,
                        stream,
                        parking,
                        wheel: None,
                        bare: false,
                        closed: false,
                        idle_limit: None,
                        peer,
                        home: self.clone(),
                        reclaim,
                    }),
                    Some(origin),
                )
            }
        };
        let response = Response {
            request,
            key: meta.key,
            context: meta.context,
            connection,
            origin,
            stage,
        };
        let posted = inner
            .answer_event
            .post(k, meta.session, &meta.event, (response,));
        if let Err(e) = posted {
            log::debug!("{request}: response not delivered: {e}");
        }
    }
}

/// What a look at a socket is stamped with: the kernel's [`poll_count`](Kernel::poll_count)
/// plus one (never 0). Two looks with the same mark had no poll between them.
fn look_mark(k: &Kernel) -> u64 {
    k.poll_count() + 1
}

/// Whether pooled socket `c` may be handed out: it was found quiet when given back with no
/// poll since (`fresh` is [`look_mark`]; see [`Sock::quiet_at`]), or a peek finds it quiet
/// now.
fn check_idle(socks: &mut [Option<Sock>], c: ConnId, fresh: u64) -> bool {
    match socks.get_mut(c.index()) {
        Some(Some(s)) if s.id == c => {
            (s.quiet_at == fresh && s.stream.is_some())
                || s.stream.as_mut().is_some_and(Stream::is_quiet)
        }
        _ => false,
    }
}

/// Closes a race's other attempts and stops its timer.
fn end_race(k: &mut Kernel, race: Race) {
    if let Some(t) = race.timer {
        let _ = k.alarm_remove(t);
    }
    for (_, tcp, _) in race.racers {
        let _ = k.select_write_clear(&tcp.as_raw_fd());
    }
}

/// Stops watching a socket and closes it.
fn close_sock(k: &mut Kernel, mut s: Sock) {
    if let Some(t) = s.deferred.take() {
        let _ = k.alarm_remove(t);
    }
    if let Some(race) = s.race.take() {
        end_race(k, *race);
    }
    if let Some(p) = s.parking.take() {
        k.wheel_unpark(p);
    }
    if let Some(st) = s.stream.as_mut() {
        let fd = st.as_raw_fd();
        match s.watch {
            Watch::Connect | Watch::TlsWrite => {
                let _ = k.select_write_clear(&fd);
            }
            Watch::TlsRead | Watch::Idle | Watch::Tunnel => {
                let _ = k.select_read_clear(&fd);
            }
            Watch::None | Watch::IdlePending | Watch::Deferred => {}
        }
        st.close_notify();
    }
}

#[cfg(test)]
mod tests {
    use super::{check_quiet, ConnId, Stream, TakenBack};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    /// A connected pair on loopback: our side as a `Stream`, the server's side.
    fn pair(l: &TcpListener) -> (Stream, TcpStream) {
        let ours = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (theirs, _) = l.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Stream::Tcp(mio::net::TcpStream::from_std(ours)), theirs)
    }

    fn taken(stream: Stream, clean: bool) -> TakenBack {
        TakenBack {
            conn: ConnId::test_new(0),
            parking: None,
            stream: Some(stream),
            wheel: None,
            bare: true,
            idle_limit: None,
            clean,
            unread: false,
        }
    }

    /// Waits (bounded) until the kernel has the bytes or the FIN the peer sent: a peek on a
    /// copy of the socket sees them.
    fn arrived(s: &Stream) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut b = [0u8; 1];
        while matches!(s.tcp().peek(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
            assert!(Instant::now() < deadline, "the peer's bytes never arrived");
            std::thread::yield_now();
        }
    }

    /// Sockets given back together are looked at with one `poll`: the quiet ones stay fit
    /// for the pool; one with unread data and one the server closed do not (and are marked
    /// unread, so their close resets); one already unfit is not looked at.
    #[test]
    fn a_batch_is_looked_at_once_and_each_answer_goes_to_its_socket() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let (quiet1, _keep1) = pair(&l);
        let (data, mut data_peer) = pair(&l);
        let (quiet2, _keep2) = pair(&l);
        let (closed, closed_peer) = pair(&l);
        let (unfit, mut unfit_peer) = pair(&l);
        data_peer.write_all(b"x").unwrap();
        drop(closed_peer);
        unfit_peer.write_all(b"y").unwrap();
        arrived(&data);
        arrived(&closed);
        arrived(&unfit);
        let mut batch = vec![
            taken(quiet1, true),
            taken(data, true),
            taken(quiet2, true),
            taken(closed, true),
            taken(unfit, false),
        ];
        check_quiet(&mut batch);
        let verdicts: Vec<(bool, bool)> = batch.iter().map(|t| (t.clean, t.unread)).collect();
        assert_eq!(
            verdicts,
            vec![
                (true, false),
                (false, true),
                (true, false),
                (false, true),
                (false, false),
            ]
        );
    }

    /// Batches as large as the list on the stack and larger (the list on the heap): every
    /// answer still goes to its own socket, the last ones included.
    #[test]
    fn large_batches_are_looked_at_with_answers_in_order() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        for size in [super::POLL_BATCH, super::POLL_BATCH + 5] {
            let mut peers = Vec::new();
            let mut batch = Vec::new();
            for i in 0..size {
                let (ours, mut theirs) = pair(&l);
                // Every third socket, and the last, has unread data.
                let busy = i % 3 == 1 || i == size - 1;
                if busy {
                    theirs.write_all(b"x").unwrap();
                    arrived(&ours);
                }
                batch.push(taken(ours, true));
                peers.push((theirs, busy));
            }
            check_quiet(&mut batch);
            for (i, (t, (_, busy))) in batch.iter().zip(&peers).enumerate() {
                assert_eq!((t.clean, t.unread), (!busy, *busy), "socket {i} of {size}");
            }
        }
    }

    /// An idle socket is watched when the grace of its last pooling is over, not of an
    /// earlier one: the list of sockets to watch may still hold the entry of an idle spell
    /// that ended with a hand-out (under load, sockets are pooled and handed out many times
    /// within one grace), and that entry must not start a watch on the socket pooled again.
    #[test]
    fn a_watch_waits_for_the_grace_of_the_last_pooling() {
        use super::{Keepalive, Shared, Sock, Watch, WATCH_GRACE};
        use std::os::fd::AsRawFd;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut k = reactor::Kernel::new().unwrap();
        let ka = Keepalive::new(&mut k).unwrap();
        let conn = ConnId::test_new(0);
        // `entries`: the list's entries, each of the earlier pooling (true: its grace is
        // over) or of the last one (false: just now); `pooled_old`: when the socket was
        // last pooled. Returns the socket's watch after the housekeeping's look.
        let mut run = |entries: &[bool], pooled_old: bool| -> Watch {
            let (stream, peer) = pair(&l);
            let addr = peer.local_addr().unwrap();
            ka.exec(&mut k, |k, sh| {
                {
                    let mut inner = sh.inner.borrow_mut();
                    inner.origin -= 1_000_000_000; // a second of history
                    let now = Shared::now(&inner, k);
                    let at = |old: bool| if old { now - 2 * WATCH_GRACE } else { now };
                    inner.socks = vec![Some(Sock {
                        id: conn,
                        stream: Some(stream),
                        parking: None,
                        watch: Watch::IdlePending,
                        addr,
                        deferred: None,
                        race: None,
                        tunnel: Vec::new(),
                        quiet_at: 0,
                        pooled_at: at(pooled_old),
                    })];
                    inner.to_watch = entries.iter().map(|&old| (conn, at(old))).collect();
                }
                sh.watch_idle(k);
                let mut inner = sh.inner.borrow_mut();
                let s = inner.socks[0].take().unwrap();
                if let (Watch::Idle, Some(st)) = (s.watch, &s.stream) {
                    let _ = k.select_read_clear(&st.as_raw_fd());
                }
                inner.to_watch.clear();
                s.watch
            })
            .unwrap()
        };
        // Pooled again just now: the earlier entry does not count, the new one waits.
        assert_eq!(run(&[true, false], false), Watch::IdlePending);
        assert_eq!(run(&[true], false), Watch::IdlePending);
        // Pooled long enough ago: watched.
        assert_eq!(run(&[true], true), Watch::Idle);
    }

    /// A lone socket is peeked at, with the same verdicts.
    #[test]
    fn a_lone_socket_is_peeked_at() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let (quiet, _keep) = pair(&l);
        let mut one = vec![taken(quiet, true)];
        check_quiet(&mut one);
        assert!(one[0].clean && !one[0].unread);
        let (data, mut peer) = pair(&l);
        peer.write_all(b"x").unwrap();
        arrived(&data);
        let mut one = vec![taken(data, true)];
        check_quiet(&mut one);
        assert!(!one[0].clean && one[0].unread);
    }
}
