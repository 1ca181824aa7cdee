//! `ServerTcp`: a simplified TCP server (POE's `POE::Component::Server::TCP`, 1.370).
//!
//! One *listener* session owns a listening [`SocketFactory`]. For every accepted
//! connection it either calls the program's `Acceptor`, or (with `ClientInput`) creates a
//! *connection* session, a child of the listener, whose heap is a [`ConnHeap`] holding the
//! connection's [`ReadWrite`] wheel (POE's `$_[HEAP]{client}`), the peer's address and the
//! shutdown flags. The `Client*` callbacks run in that session.
//!
//! ## Events
//!
//! Listener session (post them to the `Alias` or to [`ServerHandle::session`]):
//! - `shutdown`: stops listening and removes the alias. Connections carry on; the listener
//!   session ends after its last connection.
//! - `set_concurrency(N)`: changes the connection limit, pausing or resuming accepts at
//!   once. `ARG0` is an integer (POE's `-1` means no limit) or an `Option<usize>`.
//! - `disconnected`: one connection fewer (connection sessions send it from `_stop`;
//!   `Acceptor` sessions must send it themselves, as in POE).
//!
//! Connection session: `shutdown` (`ctx.yield_("shutdown", ())` from a callback) sets
//! [`ConnHeap::shutdown`] and closes the connection once its output is flushed, calling
//! `ClientDisconnected` first. So "put a reply, yield shutdown" sends the reply. A peer that
//! does not read it within the drain deadline
//! ([`ServerTcpBuilder::client_drain_deadline`], 5 s by default) is closed anyway.
//!
//! ## Callback arguments
//!
//! Every callback gets the context of the event that runs it, with POE's arguments:
//! - `ClientConnected`: `ARG0`.. = `ClientArgs` (it runs inside the connection's `_start`).
//! - `ClientInput`: `ARG0` = the record (`Vec<u8>`), `ARG1` = the wheel id.
//! - `ClientError`: `ARG0` = the [`WheelError`] ("read"/"write"; end of file is
//!   [`WheelError::is_eof`]), `ARG1` = wheel id.
//! - `ClientFlushed`, `ClientHigh`, `ClientLow`: `ARG0` = wheel id.
//! - `ClientDisconnected`: the arguments of the event that closed the connection
//!   (`shutdown` or the flush).
//! - `Acceptor`: `ARG0` = the accepted `mio::net::TcpStream` (a `mio::net::UnixStream` for
//!   a server on a UNIX path; take it with [`Ctx::take_arg`]), `ARG1` = peer address
//!   (`Option<IpAddr>`, `None` for UNIX), `ARG2` = peer port (`u16`), `ARG3` = the
//!   listener's wheel id.
//! - `Error`: `ARG0` = the [`WheelError`] (operation "bind", "listen", "accept"...),
//!   `ARG1` = wheel id.
//! - `Started`, `Stopped`: `ARG0`.. = `ListenerArgs` (`Started` runs inside the listener's
//!   `_start`, right after the listening socket was made).
//!
//! ## UNIX sockets
//!
//! [`ServerTcpBuilder::unix_path`] (or POE's `Domain => AF_UNIX` with the path as
//! `Address`: `.domain(Domain::Unix).address(path)`) listens at a UNIX socket path instead
//! of a port; a path whose first byte is NUL is a Linux abstract name. Everything else is
//! the same, limits included; a connection's [`ConnHeap::remote_ip`] is `"LOCAL"` and its
//! `remote_port` 0, as in POE. The socket file is left behind when the server stops, as POE
//! leaves it: a server that starts again at the same path removes it first (binding to a
//! path that exists fails with `EADDRINUSE`, reported to `Error`).
//!
//! ## Deviations from POE
//!
//! - Running out of descriptors or memory while accepting (`EMFILE`, `ENFILE`, `ENOBUFS`,
//!   `ENOMEM`) pauses accepting and retries after a growing pause (5 ms to 1 s), with a
//!   warning; POE reports it as an `Error`, whose default drops the listener for good.
//!   [`ServerTcpBuilder::survive_exhaustion`]`(false)` restores POE's behaviour.
//! - `new` returns the listener's session ID; [`ServerTcpBuilder::build`] returns a
//!   [`ServerHandle`] with that ID and the bound address (POE programs read it with
//!   `$_[HEAP]{listener}->getsockname` in `Started`; [`ListenerHeap::local_addr`] does that
//!   here too).
//! - Filters are given as closures that make a fresh filter for each connection (POE takes a
//!   class name, `[Class, args]` or an object it clones).
//! - `ClientPreConnect` is a closure `(ctx, socket) -> Option<socket>`; `ARG0`.. of its
//!   context are the `ClientArgs` (POE passes the socket as `ARG0`). `None` leaves the
//!   connection session without a wheel, so it ends, as in POE.
//! - The reserved connection states (`_start`, `_stop`, `_child`, `shutdown`,
//!   `tcp_server_got_*`) are refused with [`ComponentError::ReservedState`] always; POE
//!   checks only under `ASSERT_USAGE`.
//! - `InlineStates`/`ObjectStates`/`PackageStates` without `ClientInput` are ignored with a
//!   warning, as POE's "doesn't recognize" carp; type errors POE checks at run time
//!   (non-hash `InlineStates`, non-array `ClientArgs`, non-code callbacks) cannot happen.
//! - `SessionType`/`SessionParams` and `Hostname` (use `address`, which resolves names) are
//!   not supported; IPv6 is ([`Domain::Inet6`]), and so is POE's "unofficial" `AF_UNIX`
//!   (above). `ClientPreConnect` takes and returns a `TcpStream`: with a UNIX path, `build`
//!   refuses it ([`ComponentError::TcpOnly`]).
//! - Warnings (default `Error`/`ClientError`, excessive `disconnected`) go to the `log`
//!   crate at `warn` level rather than to STDERR.

use super::{callback, filter_factory, int_arg, run_cb, Callback, ComponentError, FilterFactory};
use crate::errno::{ECONNABORTED, ECONNRESET, EMFILE, ENFILE, ENOBUFS, ENOMEM};
use crate::filter::Filter;
use crate::kernel::{erase, Handler};
use crate::value::{Args, HandlerError, IntoArgs, Outcome, Value};
use crate::wheel::{Domain, ReadWrite, RwEvent, SocketFactory, WheelError, WheelHandle, WheelId};
use crate::Kernel;
use crate::{Ctx, ObjectMethod, PackageMethod, Session, SessionId, States};
use mio::net::{TcpStream, UnixStream};
use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// Names of the connection session's own states, which user states may not replace.
const RESERVED: &[&str] = &[
    "_child",
    "_start",
    "_stop",
    "shutdown",
    "tcp_server_got_error",
    "tcp_server_got_flush",
    "tcp_server_got_high",
    "tcp_server_got_input",
    "tcp_server_got_low",
];

/// Entry point: `ServerTcp::builder()` (POE's `POE::Component::Server::TCP->new`).
#[derive(Debug)]
pub struct ServerTcp;

impl ServerTcp {
    /// A builder whose connection heaps carry no program data (`ConnHeap<()>`). Use
    /// [`ServerTcpBuilder::new`] for a heap with a data field of your own.
    pub fn builder() -> ServerTcpBuilder<()> {
        ServerTcpBuilder::new()
    }
}

/// The listener session's heap (POE's listener `$_[HEAP]`).
#[derive(Debug)]
pub struct ListenerHeap {
    /// The `Alias`, if one was given.
    pub alias: Option<String>,
    /// The connection limit (POE's `concurrency`, where `-1` means none).
    pub concurrency: Option<usize>,
    /// Connections accepted and not yet disconnected.
    pub connections: i64,
    /// The listening [`SocketFactory`] (POE's `$_[HEAP]{listener}`); `None` once shut
    /// down. Setting it to `None` stops listening.
    pub listener: Option<WheelHandle>,
    local_addr: Option<SocketAddr>,
    /// The pause after the last accept that ran out of descriptors or memory, until an
    /// accept works again (see [`ServerTcpBuilder::survive_exhaustion`]).
    exhausted: Option<Duration>,
    /// Accepting is paused for that pause.
    exhausted_waiting: bool,
}

impl ListenerHeap {
    /// The bound local address (POE's `$_[HEAP]{listener}->getsockname`), `None` when
    /// binding failed. With port 0 this is how the port is learned.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }
}

impl Ctx<'_, ListenerHeap> {
    /// The listening wheel (`$_[HEAP]{listener}`), e.g. to `pause_accept`; `None` after
    /// `shutdown`.
    pub fn listener(&mut self) -> Option<&mut SocketFactory> {
        let id = self.heap().listener.as_ref()?.id();
        self.wheel_mut::<SocketFactory>(id)
    }
}

/// A connection's peer address as POE's `$_[HEAP]{remote_ip}` holds it: the IP address,
/// or none for a UNIX socket, where POE says `"LOCAL"`. It prints as POE's string and
/// compares with text (`heap.remote_ip == "127.0.0.1"`), and takes no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RemoteIp(Option<IpAddr>);

impl RemoteIp {
    /// The peer's IP address; `None` on a UNIX socket.
    pub fn addr(self) -> Option<IpAddr> {
        self.0
    }

    /// Whether the peer is on a UNIX socket (POE's `"LOCAL"`).
    pub fn is_local(self) -> bool {
        self.0.is_none()
    }
}

impl std::fmt::Display for RemoteIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("LOCAL"),
        }
    }
}

impl PartialEq<str> for RemoteIp {
    fn eq(&self, other: &str) -> bool {
        match self.0 {
            Some(ip) => other.parse::<IpAddr>() == Ok(ip),
            None => other == "LOCAL",
        }
    }
}

impl PartialEq<&str> for RemoteIp {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl PartialEq<String> for RemoteIp {
    fn eq(&self, other: &String) -> bool {
        *self == *other.as_str()
    }
}

/// A connection session's heap (POE's per-connection `$_[HEAP]`), with the program's own
/// data in [`data`](ConnHeap::data).
#[derive(Debug)]
pub struct ConnHeap<U = ()> {
    /// The connection's [`ReadWrite`] wheel (`$_[HEAP]{client}`); `None` once the
    /// connection is closed. Reach the wheel with [`Ctx::client`].
    pub client: Option<WheelHandle>,
    /// The peer's address (`$_[HEAP]{remote_ip}`): prints, and compares with text, as
    /// POE's string does (`"LOCAL"` on a UNIX socket); [`RemoteIp::addr`] gives the
    /// `IpAddr`.
    pub remote_ip: RemoteIp,
    /// The peer's port (`$_[HEAP]{remote_port}`); 0 on a UNIX socket.
    pub remote_port: u16,
    /// Set by the `shutdown` event; input is ignored from then on, and a flush closes the
    /// connection. Programs may set it themselves, as POE programs do.
    pub shutdown: bool,
    /// `ClientShutdownOnError`: an error yields `shutdown`.
    pub shutdown_on_error: bool,
    /// An I/O error happened: `shutdown` closes at once instead of waiting for a flush.
    pub got_an_error: bool,
    /// The program's data, `U::default()` at the start of each connection.
    pub data: U,
}

/// An accepted connection, until the connection session's wheel takes it.
#[derive(Debug)]
enum Accepted {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl<U> ConnHeap<U> {
    /// The id of the connection's wheel, while it is open.
    pub fn client_id(&self) -> Option<WheelId> {
        self.client.as_ref().map(WheelHandle::id)
    }
}

impl<U: 'static> Ctx<'_, ConnHeap<U>> {
    /// The connection's wheel (`$_[HEAP]{client}`), to `put` records and so on; `None`
    /// once the connection is closed.
    #[inline]
    pub fn client(&mut self) -> Option<&mut ReadWrite> {
        // In the input handler, the wheel read with `shutdown` if the heap was not handed
        // out since.
        let id = match self.own_wheel {
            Some(id) => id,
            None => self.heap().client_id()?,
        };
        self.kernel.wheel_mut::<ReadWrite>(id)
    }
}

/// What [`ServerTcpBuilder::build`] returns: the listener session and where it listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHandle {
    session: SessionId,
    local_addr: Option<SocketAddr>,
}

impl ServerHandle {
    /// The listener session (what POE's `new` returns).
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The bound address, `None` if binding failed (the failure then reaches the `Error`
    /// callback) or the server listens at a UNIX path.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }
}

type PreConnect<U> = Rc<dyn Fn(&mut Ctx<'_, ConnHeap<U>>, TcpStream) -> Option<TcpStream>>;

/// Everything a connection session needs, shared by all of them.
struct ConnConfig<U> {
    /// `ClientInput`, made into the connection sessions' `tcp_server_got_input` handler
    /// itself (the `shutdown` check and the program's closure in one handler), so a
    /// record reaches the program's code through one dynamic call, not two.
    input: Option<Handler>,
    connected: Option<Callback<ConnHeap<U>>>,
    disconnected: Option<Callback<ConnHeap<U>>>,
    error: Option<Callback<ConnHeap<U>>>,
    flushed: Option<Callback<ConnHeap<U>>>,
    high: Option<Callback<ConnHeap<U>>>,
    low: Option<Callback<ConnHeap<U>>>,
    pre_connect: Option<PreConnect<U>>,
    high_mark: Option<usize>,
    low_mark: Option<usize>,
    backpressure: Option<(usize, usize)>,
    drain_deadline: Option<Duration>,
    filter: Option<FilterFactory>,
    input_filter: Option<FilterFactory>,
    output_filter: Option<FilterFactory>,
    args: Args,
    shutdown_on_error: bool,
    states: Vec<(String, Callback<ConnHeap<U>>)>,
    /// The accepted socket of the connection session being created: its `_start` (which
    /// runs inside `create`) takes it. Kept here rather than in every connection's heap.
    accepted: std::cell::RefCell<Option<Accepted>>,
}

/// Configures a [`ServerTcp`] (POE's constructor parameters). `U` is the type of
/// [`ConnHeap::data`].
///
/// # Examples
///
/// A server with a per-connection counter in its heap, a greeting, a limit on
/// connections, and its address read back; posting `shutdown` to its alias stops it.
///
/// ```
/// use reactor::component::{ConnHeap, ServerTcpBuilder};
/// use reactor::{Ctx, HandlerError, Kernel};
///
/// let mut kernel = Kernel::new()?;
/// let server = ServerTcpBuilder::<u32>::new() // ConnHeap<u32>: a counter per connection
///     .address("127.0.0.1")
///     .port(0)
///     .alias("counter")
///     .concurrency(Some(100))
///     .client_connected(|ctx: &mut Ctx<'_, ConnHeap<u32>>| -> Result<(), HandlerError> {
///         if let Some(client) = ctx.client() {
///             client.put_one("hello: every line you send is counted")?;
///         }
///         Ok(())
///     })
///     .client_input(|ctx: &mut Ctx<'_, ConnHeap<u32>>| -> Result<(), HandlerError> {
///         ctx.heap().data += 1;
///         let reply = format!("{} lines", ctx.heap().data);
///         if let Some(client) = ctx.client() {
///             client.put_one(reply)?;
///         }
///         Ok(())
///     })
///     .build(&mut kernel)?;
/// assert!(server.local_addr().is_some());
/// kernel.post("counter", "shutdown", ())?;
/// kernel.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ServerTcpBuilder<U = ()> {
    address: Option<String>,
    port: u16,
    domain: Domain,
    unix_path: Option<PathBuf>,
    alias: Option<String>,
    concurrency: Option<usize>,
    reuse_port: bool,
    survive_exhaustion: bool,
    acceptor: Option<Callback<ListenerHeap>>,
    error: Option<Callback<ListenerHeap>>,
    started: Option<Callback<ListenerHeap>>,
    stopped: Option<Callback<ListenerHeap>>,
    listener_args: Args,
    conn: ConnConfig<U>,
    /// `Client*` parameters given, for "not permitted without ClientInput".
    client_params: Vec<&'static str>,
    /// Whether connection states were given (ignored without ClientInput).
    has_states: bool,
}

impl<U> std::fmt::Debug for ServerTcpBuilder<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTcpBuilder")
            .field("address", &self.address)
            .field("port", &self.port)
            .field("unix_path", &self.unix_path)
            .field("alias", &self.alias)
            .field("concurrency", &self.concurrency)
            .field("survive_exhaustion", &self.survive_exhaustion)
            .finish_non_exhaustive()
    }
}

impl<U: Default + 'static> Default for ServerTcpBuilder<U> {
    fn default() -> Self {
        Self::new()
    }
}

impl<U: Default + 'static> ServerTcpBuilder<U> {
    /// A builder with POE's defaults: port 0, every address, no alias, no limit.
    pub fn new() -> Self {
        ServerTcpBuilder {
            address: None,
            port: 0,
            domain: Domain::Inet,
            unix_path: None,
            alias: None,
            concurrency: None,
            reuse_port: false,
            survive_exhaustion: true,
            acceptor: None,
            error: None,
            started: None,
            stopped: None,
            listener_args: Args::new(),
            conn: ConnConfig {
                input: None,
                connected: None,
                disconnected: None,
                error: None,
                flushed: None,
                high: None,
                low: None,
                pre_connect: None,
                backpressure: Some(super::DEFAULT_BACKPRESSURE),
                drain_deadline: Some(super::DEFAULT_DRAIN_DEADLINE),
                high_mark: None,
                low_mark: None,
                filter: None,
                input_filter: None,
                output_filter: None,
                args: Args::new(),
                shutdown_on_error: true,
                states: Vec::new(),
                accepted: std::cell::RefCell::new(None),
            },
            client_params: Vec::new(),
            has_states: false,
        }
    }

    fn client_param(&mut self, name: &'static str) {
        if !self.client_params.contains(&name) {
            self.client_params.push(name);
        }
    }

    /// The address to bind (`Address`, or `Hostname`: names are resolved); default every
    /// address.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The port to bind (`Port`; 0, the default, lets the system pick).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The address family (`Domain`; default IPv4). With [`Domain::Unix`] the `Address` is
    /// the socket's path (see [`unix_path`](Self::unix_path)).
    pub fn domain(mut self, domain: Domain) -> Self {
        self.domain = domain;
        self
    }

    /// Listens at the UNIX socket `path` rather than on a port (POE's `Domain => AF_UNIX`
    /// with `Address => $path`). A path whose first byte is NUL is a Linux abstract name.
    /// Connections are `mio::net::UnixStream`s; `remote_ip` is `"LOCAL"`.
    pub fn unix_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.domain = Domain::Unix;
        self.unix_path = Some(path.into());
        self
    }

    /// An alias for the listener session (`Alias`).
    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.alias = Some(alias.into());
        self
    }

    /// Binds with `SO_REUSEPORT` (default off; no POE name), so servers in other kernels
    /// (one per thread, see [`crate::group`]) or other processes can listen on the same
    /// address and port, each with its own listener; the system spreads connections
    /// across them ([`SocketFactoryBuilder::reuse_port`](crate::wheel::SocketFactoryBuilder::reuse_port)).
    /// Give the first server port 0 or a port, and the others the port it bound.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// The most connections open at once (`Concurrency`); `None`, the default, is no
    /// limit (POE's `-1`). At the limit the listener pauses accepting until one
    /// disconnects.
    #[doc(alias = "Concurrency")]
    pub fn concurrency(mut self, limit: Option<usize>) -> Self {
        self.concurrency = limit;
        self
    }

    /// Arguments for the listener's `_start`, seen by `Started` (`ListenerArgs`).
    pub fn listener_args(mut self, args: impl IntoArgs) -> Self {
        self.listener_args = args.into_args();
        self
    }

    /// Called in the listener's `_start` once the listening socket exists (`Started`):
    /// `ARG0`.. are the [`listener_args`](ServerTcpBuilder::listener_args).
    pub fn started<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ListenerHeap>) -> R + 'static,
    ) -> Self {
        self.started = Some(callback(f));
        self
    }

    /// Called in the listener's `_stop` (`Stopped`): `ARG0`.. are the `listener_args`.
    pub fn stopped<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ListenerHeap>) -> R + 'static,
    ) -> Self {
        self.stopped = Some(callback(f));
        self
    }

    /// Whether running out of descriptors or memory while accepting (`EMFILE`, `ENFILE`,
    /// `ENOBUFS`, `ENOMEM`) pauses accepting and retries (default on).
    ///
    /// POE reports such an error as any other (`Error`, whose default drops the listener),
    /// so a server that ran out of descriptors once refuses every client from then on.
    /// With this on, the listener pauses accepting, logs a warning, and accepts again after
    /// a pause that starts at 5 ms and doubles up to 1 s while accepts keep failing (as
    /// Go's and tokio's accept loops do); the first accept that works resets it. The
    /// `Error` callback does not see these errors. `survive_exhaustion(false)` keeps POE's
    /// behaviour.
    pub fn survive_exhaustion(mut self, on: bool) -> Self {
        self.survive_exhaustion = on;
        self
    }

    /// Handles listener failures (`Error`); the default logs
    /// "PID: Server N got OP error ERRNO (MESSAGE)" and drops the listener. `ARG0` is the
    /// [`WheelError`] (operation `"bind"`, `"listen"`, `"accept"`, ...), `ARG1` the
    /// [`WheelId`].
    pub fn error<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ListenerHeap>) -> R + 'static,
    ) -> Self {
        self.error = Some(callback(f));
        self
    }

    /// Handles each accepted connection in the listener session instead of creating a
    /// connection session (`Acceptor`; excludes `ClientInput`). `ARG0` is the accepted
    /// `mio::net::TcpStream` (`mio::net::UnixStream` on a UNIX path; take it with
    /// [`Ctx::take_arg`]), `ARG1` the peer address (`Option<std::net::IpAddr>`), `ARG2`
    /// the peer port (`u16`), `ARG3` the listener's [`WheelId`].
    pub fn acceptor<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ListenerHeap>) -> R + 'static,
    ) -> Self {
        self.acceptor = Some(callback(f));
        self
    }

    /// Handles each record a client sends (`ClientInput`; excludes `Acceptor`): `ARG0` is
    /// the record (`Vec<u8>` with the default line filter, without its newline; take it
    /// with `ctx.take_arg::<Vec<u8>>(0)`), `ARG1` the connection's [`WheelId`]. Answer
    /// through [`Ctx::client`].
    ///
    /// ```
    /// use reactor::component::{ConnHeap, ServerTcp};
    /// use reactor::{Ctx, HandlerError};
    ///
    /// let builder = ServerTcp::builder().client_input(
    ///     |ctx: &mut Ctx<'_, ConnHeap>| -> Result<(), HandlerError> {
    ///         let line: Vec<u8> = ctx.take_arg(0)?;
    ///         let reply = format!("{} octets", line.len());
    ///         if let Some(client) = ctx.client() {
    ///             client.put_one(reply)?;
    ///         }
    ///         Ok(())
    ///     },
    /// );
    /// # let _ = builder;
    /// ```
    pub fn client_input<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ConnHeap<U>>) -> R + 'static,
    ) -> Self {
        self.conn.input = Some(erase::<ConnHeap<U>, _>(
            move |ctx: &mut Ctx<'_, ConnHeap<U>>| -> Result<Value, HandlerError> {
                // POE: `return if $heap->{shutdown};`. The wheel is read in the same look,
                // for `ctx.client()`.
                let heap = ctx.heap();
                if heap.shutdown {
                    return Ok(Value::none());
                }
                ctx.own_wheel = heap.client_id();
                f(ctx).into_outcome()
            },
        ));
        self
    }

    /// Called when a connection session starts, after its wheel exists
    /// (`ClientConnected`): `ARG0`.. are the [`client_args`](ServerTcpBuilder::client_args).
    pub fn client_connected<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ConnHeap<U>>) -> R + 'static,
    ) -> Self {
        self.client_param("ClientConnected");
        self.conn.connected = Some(callback(f));
        self
    }

    /// Called when the connection is closed by `shutdown` (`ClientDisconnected`), with the
    /// arguments of the event that closed it.
    pub fn client_disconnected<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ConnHeap<U>>) -> R + 'static,
    ) -> Self {
        self.client_param("ClientDisconnected");
        self.conn.disconnected = Some(callback(f));
        self
    }

    /// Called on a read or write error, EOF included (`ClientError`); the default logs
    /// everything but EOF and `ECONNRESET` on read. `ARG0` is the [`WheelError`]
    /// (operation `"read"` or `"write"`; end of file is [`WheelError::is_eof`]), `ARG1` the
    /// [`WheelId`].
    pub fn client_error<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ConnHeap<U>>) -> R + 'static,
    ) -> Self {
        self.client_param("ClientError");
        self.conn.error = Some(callback(f));
        self
    }

    /// Called each time the connection's output buffer empties (`ClientFlushed`): `ARG0`
    /// is the [`WheelId`].
    pub fn client_flushed<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ConnHeap<U>>) -> R + 'static,
    ) -> Self {
        self.client_param("ClientFlushed");
        self.conn.flushed = Some(callback(f));
        self
    }

    /// Replaces the accepted socket before the wheel is made, or with `None` drops the
    /// connection (`ClientPreConnect`). TCP servers only: with a UNIX path `build` refuses
    /// it.
    pub fn client_pre_connect(
        mut self,
        f: impl Fn(&mut Ctx<'_, ConnHeap<U>>, TcpStream) -> Option<TcpStream> + 'static,
    ) -> Self {
        self.client_param("ClientPreConnect");
        self.conn.pre_connect = Some(Rc::new(f));
        self
    }

    /// Holds each connection's input back while more than `high` octets of its output wait,
    /// until they are down to `low` (see
    /// [`ReadWriteBuilder::backpressure`](crate::wheel::ReadWriteBuilder::backpressure));
    /// `None` reads on whatever the output (POE's behaviour). Default
    /// [`DEFAULT_BACKPRESSURE`](super::DEFAULT_BACKPRESSURE).
    pub fn client_backpressure(mut self, marks: Option<(usize, usize)>) -> Self {
        self.conn.backpressure = marks;
        self
    }

    /// How long a connection that was told to `shutdown` may take to flush its output
    /// before it is closed anyway (default
    /// [`DEFAULT_DRAIN_DEADLINE`](super::DEFAULT_DRAIN_DEADLINE)). `None` waits for as long
    /// as the peer takes to read, as POE does: then one client that never reads keeps a
    /// server that is shutting down alive for ever.
    pub fn client_drain_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.conn.drain_deadline = deadline;
        self
    }

    /// The filter for both directions of each connection (`ClientFilter`; default
    /// [`Line`](crate::filter::Line) with `MaxLength` and `MaxBuffer` of
    /// [`DEFAULT_LINE_LIMIT`](super::DEFAULT_LINE_LIMIT), where POE's `Line` takes 64 and
    /// 512 MiB): a closure making a fresh filter per connection, e.g. `Line::new` for
    /// POE's limits.
    pub fn client_filter<F, M>(mut self, make: M) -> Self
    where
        F: Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static,
        M: Fn() -> F + 'static,
    {
        self.client_param("ClientFilter");
        self.conn.filter = Some(filter_factory(make));
        self
    }

    /// The input filter of each connection (`ClientInputFilter`; needs
    /// `ClientOutputFilter`).
    pub fn client_input_filter<F, M>(mut self, make: M) -> Self
    where
        F: Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static,
        M: Fn() -> F + 'static,
    {
        self.client_param("ClientInputFilter");
        self.conn.input_filter = Some(filter_factory(make));
        self
    }

    /// The output filter of each connection (`ClientOutputFilter`; needs
    /// `ClientInputFilter`).
    pub fn client_output_filter<F, M>(mut self, make: M) -> Self
    where
        F: Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static,
        M: Fn() -> F + 'static,
    {
        self.client_param("ClientOutputFilter");
        self.conn.output_filter = Some(filter_factory(make));
        self
    }

    /// Arguments for `ClientConnected` (`ClientArgs`), shared by every connection.
    pub fn client_args(mut self, args: impl IntoArgs) -> Self {
        self.client_param("ClientArgs");
        self.conn.args = args.into_args();
        self
    }

    /// Whether an I/O error shuts the connection down (`ClientShutdownOnError`, default
    /// on).
    pub fn client_shutdown_on_error(mut self, on: bool) -> Self {
        self.client_param("ClientShutdownOnError");
        self.conn.shutdown_on_error = on;
        self
    }

    /// The output buffer size that raises `ClientHigh` (`HighMark`).
    pub fn high_mark(mut self, octets: usize) -> Self {
        self.conn.high_mark = Some(octets);
        self
    }

    /// The output buffer size that raises `ClientLow` after `ClientHigh` (`LowMark`).
    pub fn low_mark(mut self, octets: usize) -> Self {
        self.conn.low_mark = Some(octets);
        self
    }

    /// Called when the output buffer reaches `HighMark` (`ClientHigh`): `ARG0` is the
    /// [`WheelId`].
    pub fn client_high<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ConnHeap<U>>) -> R + 'static,
    ) -> Self {
        self.conn.high = Some(callback(f));
        self
    }

    /// Called when the output buffer drains to `LowMark` (`ClientLow`): `ARG0` is the
    /// [`WheelId`].
    pub fn client_low<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ConnHeap<U>>) -> R + 'static,
    ) -> Self {
        self.conn.low = Some(callback(f));
        self
    }

    /// Adds a handler to every connection session (`InlineStates`), e.g. an event other
    /// sessions post to a connection by its session ID.
    pub fn inline_state<R: Outcome + 'static>(
        mut self,
        event: &str,
        f: impl Fn(&mut Ctx<'_, ConnHeap<U>>) -> R + 'static,
    ) -> Self {
        self.has_states = true;
        self.conn.states.push((event.to_owned(), callback(f)));
        self
    }

    /// Maps connection events to methods of a shared object (`ObjectStates`).
    #[allow(clippy::type_complexity)] // The same shape as `Session::object_states`.
    pub fn object_states<O: 'static, R: Outcome + 'static>(
        mut self,
        object: Rc<O>,
        states: &[(&str, ObjectMethod<O, ConnHeap<U>, R>)],
    ) -> Self {
        self.has_states |= !states.is_empty();
        self.conn
            .states
            .extend(super::object_callbacks(&object, states));
        self
    }

    /// Maps connection events to functions that receive `package` as POE's `OBJECT`
    /// (`PackageStates`).
    pub fn package_states<R: Outcome + 'static>(
        mut self,
        package: &'static str,
        states: &[(&str, PackageMethod<ConnHeap<U>, R>)],
    ) -> Self {
        self.has_states |= !states.is_empty();
        self.conn
            .states
            .extend(super::package_callbacks(package, states));
        self
    }

    /// Checks the configuration as POE's constructor does and creates the listener
    /// session, a child of the active session.
    pub fn build(self, kernel: &mut Kernel) -> Result<ServerHandle, ComponentError> {
        let c = &self.conn;
        let marks = [
            c.high_mark.is_some(),
            c.low_mark.is_some(),
            c.high.is_some(),
            c.low.is_some(),
        ]
        .iter()
        .filter(|&&b| b)
        .count();
        if marks != 0 && marks != 4 {
            return Err(ComponentError::PartialWatermarks);
        }
        if self.domain == Domain::Unix {
            if self.unix_path.is_none() && self.address.is_none() {
                return Err(ComponentError::MissingUnixPath);
            }
            if c.pre_connect.is_some() {
                return Err(ComponentError::TcpOnly("ClientPreConnect"));
            }
        }
        if self.acceptor.is_some() == c.input.is_some() {
            return Err(ComponentError::AcceptorOrClientInput);
        }
        if c.input.is_none() {
            if let Some(&p) = self.client_params.first() {
                return Err(ComponentError::NotPermittedWithoutClientInput(p));
            }
            if self.has_states {
                log::warn!("ServerTcp: connection states are ignored without ClientInput");
            }
        }
        if c.input_filter.is_some() != c.output_filter.is_some() {
            return Err(ComponentError::InputFilterWithoutOutputFilter);
        }
        if c.filter.is_some() && c.input_filter.is_some() {
            log::warn!("ClientFilter ignored with ClientInputFilter and ClientOutputFilter");
        }
        if c.input.is_some() {
            let bad: Vec<&str> = c
                .states
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| RESERVED.contains(n))
                .collect();
            if !bad.is_empty() {
                return Err(ComponentError::ReservedState(bad.join(" ")));
            }
        }
        self.create(kernel)
    }

    fn create(self, kernel: &mut Kernel) -> Result<ServerHandle, ComponentError> {
        let ServerTcpBuilder {
            address,
            port,
            domain,
            unix_path,
            alias,
            concurrency,
            reuse_port,
            survive_exhaustion,
            acceptor,
            error,
            started,
            stopped,
            listener_args,
            conn,
            ..
        } = self;
        let shared = Rc::new(Shared {
            listener: Cell::new(None),
            local_addr: Cell::new(None),
        });
        let acceptor: Callback<ListenerHeap> = match acceptor {
            Some(a) => a,
            None => {
                let conn = Rc::new(conn);
                let states = conn_states(&conn, &shared);
                Rc::new(move |ctx: &mut Ctx<'_, ListenerHeap>| {
                    spawn_connection(&conn, &states, ctx).map(|()| crate::Value::none())
                })
            }
        };
        let error = error.unwrap_or_else(|| callback(default_server_error));
        let sh = Rc::clone(&shared);
        let session = Session::new(ListenerHeap {
            alias: None,
            concurrency,
            connections: 0,
            listener: None,
            local_addr: None,
            exhausted: None,
            exhausted_waiting: false,
        })
        .args(listener_args)
        .on(
            "_start",
            move |ctx: &mut Ctx<'_, ListenerHeap>| -> Result<(), HandlerError> {
                if let Some(a) = &alias {
                    ctx.heap().alias = Some(a.clone());
                    if let Err(e) = ctx.alias_set(a) {
                        log::warn!("ServerTcp: alias {a:?}: {e}");
                    }
                }
                let mut f = match (domain, &unix_path) {
                    (Domain::Unix, Some(path)) => SocketFactory::unix(path.clone()),
                    // POE: no BindPort for a UNIX socket; the Address is its path.
                    (Domain::Unix, None) => SocketFactory::listen().domain(domain),
                    _ => SocketFactory::listen()
                        .bind_port(port)
                        .domain(domain)
                        .reuse(true)
                        .reuse_port(reuse_port),
                }
                .success_event("tcp_server_got_connection")
                .failure_event("tcp_server_got_error");
                if let (Some(a), None) = (&address, &unix_path) {
                    f = f.bind_address(a.clone());
                }
                let w = f.build(ctx)?;
                let local = ctx
                    .wheel_ref::<SocketFactory>(w.id())
                    .and_then(SocketFactory::getsockname);
                let h = ctx.heap();
                h.listener = Some(w);
                h.local_addr = local;
                sh.local_addr.set(local);
                run_cb(&started, ctx)
            },
        )
        .on(
            "tcp_server_got_error",
            move |ctx: &mut Ctx<'_, ListenerHeap>| -> Result<(), HandlerError> {
                if survive_exhaustion && accept_exhausted(ctx) {
                    return pause_exhausted(ctx);
                }
                error(ctx).map(drop)
            },
        )
        .on(
            "tcp_server_resume_accept",
            |ctx: &mut Ctx<'_, ListenerHeap>| {
                let h = ctx.heap();
                h.exhausted_waiting = false;
                if below_limit(h) {
                    if let Some(l) = ctx.listener() {
                        l.resume_accept();
                    }
                }
            },
        )
        .on(
            "tcp_server_got_connection",
            move |ctx: &mut Ctx<'_, ListenerHeap>| {
                let h = ctx.heap();
                h.exhausted = None;
                h.connections += 1;
                if h.listener.is_some() && !below_limit(h) {
                    if let Some(l) = ctx.listener() {
                        l.pause_accept();
                    }
                }
                acceptor(ctx)
            },
        )
        .on("disconnected", |ctx: &mut Ctx<'_, ListenerHeap>| {
            let (file, line) = (ctx.caller_file(), ctx.caller_line());
            let h = ctx.heap();
            h.connections -= 1;
            if h.connections < 0 {
                log::warn!("Excessive 'disconnected' event from {file} at line {line}");
                h.connections = 0;
            }
            let reopened = h
                .concurrency
                .is_some_and(|limit| usize::try_from(h.connections + 1) == Ok(limit));
            if reopened && h.listener.is_some() && !h.exhausted_waiting {
                if let Some(l) = ctx.listener() {
                    l.resume_accept();
                }
            }
        })
        .on("set_concurrency", |ctx: &mut Ctx<'_, ListenerHeap>| {
            let limit = match ctx.args().opt::<Option<usize>>(0) {
                Some(limit) => *limit,
                None => match int_arg(ctx.args(), 0) {
                    Some(-1) => None,
                    Some(n) => match usize::try_from(n) {
                        Ok(n) => Some(n),
                        Err(_) => {
                            log::warn!("ServerTcp: set_concurrency needs -1 or a count, not {n}");
                            return;
                        }
                    },
                    None => {
                        log::warn!("ServerTcp: set_concurrency needs an integer ARG0");
                        return;
                    }
                },
            };
            let h = ctx.heap();
            h.concurrency = limit;
            if limit.is_some() && h.listener.is_some() {
                let pause = !below_limit(h) || h.exhausted_waiting;
                if let Some(l) = ctx.listener() {
                    if pause {
                        l.pause_accept();
                    } else {
                        l.resume_accept();
                    }
                }
            }
        })
        .on("shutdown", |ctx: &mut Ctx<'_, ListenerHeap>| {
            let _ = ctx.alarm_clear("tcp_server_resume_accept");
            let h = ctx.heap();
            h.listener = None;
            if let Some(a) = h.alias.clone() {
                let _ = ctx.alias_remove(&a);
            }
        })
        .on("_stop", {
            let sh = Rc::clone(&shared);
            move |ctx: &mut Ctx<'_, ListenerHeap>| -> Result<(), HandlerError> {
                let r = run_cb(&stopped, ctx);
                sh.listener.set(None);
                r
            }
        })
        .on("_child", |_: &mut Ctx<'_, ListenerHeap>| {});
        let id = kernel.create(session)?;
        shared.listener.set(Some(id));
        Ok(ServerHandle {
            session: id,
            local_addr: shared.local_addr.get(),
        })
    }
}

/// State the listener and its connections share: POE's `$accept_session_id` closure
/// variable.
struct Shared {
    listener: Cell<Option<SessionId>>,
    local_addr: Cell<Option<SocketAddr>>,
}

/// Whether the failure being handled is an accept that ran out of descriptors or memory.
fn accept_exhausted(ctx: &Ctx<'_, ListenerHeap>) -> bool {
    ctx.arg::<WheelError>(0).is_ok_and(|e| {
        e.operation == "accept" && matches!(e.errno, EMFILE | ENFILE | ENOBUFS | ENOMEM)
    })
}

/// Pauses accepting after an exhausted accept and schedules the retry, each pause twice
/// the last, from 5 ms up to 1 s.
fn pause_exhausted(ctx: &mut Ctx<'_, ListenerHeap>) -> Result<(), HandlerError> {
    const FIRST: Duration = Duration::from_millis(5);
    const MOST: Duration = Duration::from_secs(1);
    let pause = match ctx.heap().exhausted {
        None => FIRST,
        Some(last) => (last * 2).min(MOST),
    };
    let h = ctx.heap();
    h.exhausted = Some(pause);
    h.exhausted_waiting = true;
    if let Some(l) = ctx.listener() {
        l.pause_accept();
    }
    let e = ctx.arg::<WheelError>(0)?.clone();
    log::warn!(
        "ServerTcp {}: {e}; accepting again in {} ms",
        ctx.session(),
        pause.as_millis()
    );
    ctx.delay("tcp_server_resume_accept", pause, ())?;
    Ok(())
}

/// Whether the connection limit lets the listener accept.
fn below_limit(h: &ListenerHeap) -> bool {
    match h.concurrency {
        None => true,
        Some(limit) => usize::try_from(h.connections).map_or(true, |n| n < limit),
    }
}

fn default_server_error(ctx: &mut Ctx<'_, ListenerHeap>) {
    if let Ok(e) = ctx.arg::<WheelError>(0) {
        log::warn!("{}: Server {} got {e}", std::process::id(), ctx.session());
    }
    ctx.heap().listener = None;
}

fn default_client_error<U: 'static>(ctx: &mut Ctx<'_, ConnHeap<U>>) {
    if let Ok(e) = ctx.arg::<WheelError>(0) {
        if !(e.operation == "read" && (e.errno == 0 || e.errno == ECONNRESET)) {
            log::warn!(
                "{}: Client session {} got {e}",
                std::process::id(),
                ctx.session()
            );
        }
    }
}

/// The handlers of every connection session, made once per server: the sessions share
/// them (see [`States`]).
fn conn_states<U: Default + 'static>(
    conn: &Rc<ConnConfig<U>>,
    shared: &Rc<Shared>,
) -> States<ConnHeap<U>> {
    let c = Rc::clone(conn);
    let mut s = States::new().on(
        "_start",
        move |ctx: &mut Ctx<'_, ConnHeap<U>>| -> Result<(), HandlerError> {
            let Some(socket) = c.accepted.borrow_mut().take() else {
                return Ok(());
            };
            let mut b = match socket {
                Accepted::Tcp(s) => {
                    let s = match &c.pre_connect {
                        Some(pre) => match pre(ctx, s) {
                            Some(s) => s,
                            None => return Ok(()),
                        },
                        None => s,
                    };
                    ReadWrite::builder(s)
                }
                Accepted::Unix(s) => ReadWrite::builder(s),
            };
            b = match (&c.input_filter, &c.output_filter, &c.filter) {
                (Some(i), Some(o), _) => b.input_filter(i()).output_filter(o()),
                (_, _, Some(f)) => b.filter(f()),
                _ => b.filter(super::default_line()),
            };
            b = b
                .input_event("tcp_server_got_input")
                .error_event("tcp_server_got_error");
            // A flush is only worth an event when someone listens for it; `shutdown` asks
            // for one while output is still buffered.
            if c.flushed.is_some() {
                b = b.flushed_event("tcp_server_got_flush");
            }
            if let Some((high, low)) = c.backpressure {
                b = b.backpressure(high, low);
            }
            if let (Some(h), Some(l)) = (c.high_mark, c.low_mark) {
                b = b
                    .watermarks(h, l)
                    .event(RwEvent::High, "tcp_server_got_high")
                    .event(RwEvent::Low, "tcp_server_got_low");
            }
            let w = b.build(ctx)?;
            ctx.heap().client = Some(w);
            run_cb(&c.connected, ctx)
        },
    );
    let c = Rc::clone(conn);
    s = s.on("tcp_server_got_high", move |ctx| run_cb(&c.high, ctx));
    let c = Rc::clone(conn);
    s = s.on("tcp_server_got_low", move |ctx| run_cb(&c.low, ctx));
    s = s.on("_child", |_: &mut Ctx<'_, ConnHeap<U>>| {});
    if let Some(input) = &conn.input {
        s = s.on_handler("tcp_server_got_input", Rc::clone(input));
    }
    let c = Rc::clone(conn);
    s = s.on(
        "tcp_server_got_error",
        move |ctx: &mut Ctx<'_, ConnHeap<U>>| -> Result<(), HandlerError> {
            let accept_aborted = ctx
                .arg::<WheelError>(0)
                .is_ok_and(|e| e.operation == "accept" && e.errno == ECONNABORTED);
            if accept_aborted {
                return Ok(());
            }
            match &c.error {
                Some(f) => {
                    f(ctx)?;
                }
                None => default_client_error(ctx),
            }
            if ctx.heap().shutdown_on_error {
                ctx.heap().got_an_error = true;
                ctx.yield_("shutdown", ())?;
            }
            Ok(())
        },
    );
    let c = Rc::clone(conn);
    s = s.on(
        "tcp_server_got_flush",
        move |ctx: &mut Ctx<'_, ConnHeap<U>>| -> Result<(), HandlerError> {
            run_cb(&c.flushed, ctx)?;
            if ctx.heap().shutdown {
                let _ = ctx.alarm_clear("tcp_server_drain_deadline");
                run_cb(&c.disconnected, ctx)?;
                ctx.heap().client = None;
            }
            Ok(())
        },
    );
    let c = Rc::clone(conn);
    s = s.on(
        "shutdown",
        move |ctx: &mut Ctx<'_, ConnHeap<U>>| -> Result<(), HandlerError> {
            ctx.heap().shutdown = true;
            if ctx.heap().client.is_some() {
                let buffered = ctx.client().map_or(0, |w| w.driver_out_octets());
                if ctx.heap().got_an_error || buffered == 0 {
                    run_cb(&c.disconnected, ctx)?;
                    ctx.heap().client = None;
                } else {
                    if let Some(w) = ctx.client() {
                        w.event(RwEvent::Flushed, Some("tcp_server_got_flush"));
                    }
                    if let Some(d) = c.drain_deadline {
                        ctx.delay("tcp_server_drain_deadline", d, ())?;
                    }
                }
            }
            Ok(())
        },
    );
    let c = Rc::clone(conn);
    s = s.on(
        "tcp_server_drain_deadline",
        move |ctx: &mut Ctx<'_, ConnHeap<U>>| -> Result<(), HandlerError> {
            if ctx.heap().client.is_some() {
                let left = ctx.client().map_or(0, |w| w.driver_out_octets());
                log::warn!(
                    "ServerTcp connection {}: closed with {left} octets unsent, the drain deadline passed",
                    ctx.session()
                );
                run_cb(&c.disconnected, ctx)?;
                ctx.heap().client = None;
            }
            Ok(())
        },
    );
    let sh = Rc::clone(shared);
    s = s.on("_stop", move |ctx: &mut Ctx<'_, ConnHeap<U>>| {
        if let Some(listener) = sh.listener.get() {
            let _ = ctx.call(listener, "disconnected", ());
        }
    });
    for (name, f) in &conn.states {
        let f = Rc::clone(f);
        s = s.on(name, move |ctx| f(ctx));
    }
    s
}

/// POE's default `Acceptor`: a connection session for the accepted socket.
fn spawn_connection<U: Default + 'static>(
    conn: &Rc<ConnConfig<U>>,
    states: &States<ConnHeap<U>>,
    ctx: &mut Ctx<'_, ListenerHeap>,
) -> Result<(), HandlerError> {
    let socket = if ctx.args().is::<UnixStream>(0) {
        Accepted::Unix(ctx.take_arg::<UnixStream>(0)?)
    } else {
        Accepted::Tcp(ctx.take_arg::<TcpStream>(0)?)
    };
    let ip = RemoteIp(*ctx.arg::<Option<IpAddr>>(1)?);
    let port = *ctx.arg::<u16>(2)?;
    let heap = ConnHeap {
        client: None,
        remote_ip: ip,
        remote_port: port,
        shutdown: false,
        shutdown_on_error: conn.shutdown_on_error,
        got_an_error: false,
        data: U::default(),
    };
    // The session's `_start` takes the socket; if it never runs, the socket is closed here.
    *conn.accepted.borrow_mut() = Some(socket);
    let created = ctx.create(Session::from_states(heap, states).args(conn.args.clone()));
    drop(conn.accepted.borrow_mut().take());
    created?;
    Ok(())
}

#[cfg(test)]
mod remote_ip_tests {
    use super::RemoteIp;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn a_remote_ip_prints_and_compares_as_poes_string() {
        let ip = RemoteIp(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(ip.to_string(), "127.0.0.1");
        assert!(ip == "127.0.0.1" && ip != "127.0.0.2" && ip != "LOCAL");
        let local = RemoteIp(None);
        assert_eq!(local.to_string(), "LOCAL");
        assert!(local == "LOCAL" && local.is_local() && local.addr().is_none());
        assert_eq!(ip, "127.0.0.1".to_owned());
    }
}

#[cfg(test)]
mod size_tests {
    /// Every connection has its heap in an allocation of its own: 40 bytes fit a 48-byte
    /// malloc chunk (the accepted socket waits for `_start` in the server's shared
    /// configuration, not in the heap).
    #[test]
    fn a_connection_heap_stays_small() {
        assert!(std::mem::size_of::<super::ConnHeap<()>>() <= 40);
    }
}
