//! `ClientTcp`: a simplified TCP client (POE's `POE::Component::Client::TCP`, 1.370).
//!
//! One session connects with a [`SocketFactory`], then talks to the server through a
//! [`ReadWrite`] wheel kept in [`ClientHeap::server`] (POE's `$_[HEAP]{server}`). When the
//! connection fails or ends the session ends too, unless a callback schedules more work;
//! the usual idiom is `ctx.delay("reconnect", secs, ())` in `ConnectError` or
//! `Disconnected`.
//!
//! ## Lifecycle
//!
//! `_start` sets the alias, yields `reconnect` and calls `Started`. `reconnect` makes a new
//! `SocketFactory` (dropping any old wheel) and arms the `ConnectTimeout`. On success the
//! timeout is removed, `PreConnect` may replace the socket, the `ReadWrite` wheel replaces
//! the factory, [`ClientHeap::connected`] is set and `Connected` runs. On failure or timeout
//! `ConnectError` runs and the factory is dropped.
//!
//! ## Events
//!
//! - `connect(ADDRESS?, PORT?)`: a new target (`String` or `&'static str` address, integer
//!   port; either may be absent), then `reconnect`.
//! - `reconnect`: connect again to the current target.
//! - `shutdown`: closes the connection once its output is flushed (`Disconnected` runs
//!   then), cancels a connection in progress, and removes the alias.
//!
//! ## Callback arguments
//!
//! - `Started`: `ARG0`.. = `Args`.
//! - `Connected`: `ARG0` = `()` (POE: the socket, which is in the wheel here), `ARG1` = peer
//!   address (`Option<IpAddr>`), `ARG2` = peer port (`u16`), `ARG3` = the factory's wheel id.
//! - `ConnectError`: `ARG0` = the [`WheelError`] (operation "connect", "resolve",
//!   "bind"...; errno [`ETIMEDOUT`] for `ConnectTimeout`), `ARG1` = the factory's wheel id
//!   (none for `ConnectTimeout`).
//! - `ServerInput`: `ARG0` = record (`Vec<u8>`), `ARG1` = wheel id.
//! - `ServerError`: `ARG0` = the [`WheelError`] ("read"/"write"; end of file is
//!   [`WheelError::is_eof`]), `ARG1` = wheel id.
//! - `ServerFlushed`, `ServerHigh`, `ServerLow`: `ARG0` = wheel id.
//! - `Disconnected`: the arguments of the event that closed the connection.
//!
//! ## UNIX sockets
//!
//! [`ClientTcp::unix`] (or POE's `Domain => AF_UNIX` with the path as `RemoteAddress`:
//! `.domain(Domain::Unix).remote_address(path)`) connects to a UNIX socket path; a path
//! whose first byte is NUL is a Linux abstract name. `RemotePort` means nothing there
//! (`unix` sets it to 0; POE requires one all the same), `Connected` gets `None` and 0 as
//! the peer, and `BindAddress`, if given, is the client socket's own path. The `connect`
//! event takes a new path as its address. Everything else is the same, limits included.
//!
//! ## Deviations from POE
//!
//! - `RemoteAddress` and `RemotePort` are still required ([`ClientTcp::builder`] takes
//!   both); an empty builder from [`ClientTcpBuilder::new`] reports the missing one.
//! - `Filter` is a closure making a fresh filter per connection.
//! - `PreConnect` is a closure `(ctx, socket) -> Option<socket>`. When it returns `None` the
//!   spent factory is dropped as well: in POE it holds nothing, here a wheel keeps its
//!   session alive, so keeping it would keep the session forever. It takes a `TcpStream`:
//!   with [`Domain::Unix`], `build` refuses it ([`ComponentError::TcpOnly`]).
//! - `ConnectTimeout` is measured from `reconnect` with the kernel's clock, in fractional
//!   seconds (POE arms `alarm_set(time + ConnectTimeout)` with whole-second `time`).
//! - Type errors POE checks at run time (non-array `Args`, non-hash `InlineStates`,
//!   `SessionParams`, odd parameter lists, non-code callbacks) cannot happen;
//!   `SessionType`/`SessionParams` are not supported.
//! - Default warnings go to the `log` crate at `warn` level rather than to STDERR.

use super::{callback, filter_factory, int_arg, run_cb, Callback, ComponentError, FilterFactory};
use crate::errno::{ECONNRESET, ETIMEDOUT};
use crate::filter::Filter;
use crate::value::{Args, HandlerError, IntoArgs, Outcome};
use crate::wheel::{Domain, ReadWrite, RwEvent, SocketFactory, WheelError, WheelHandle, WheelId};
use crate::AlarmId;
use crate::Kernel;
use crate::{Ctx, ObjectMethod, PackageMethod, Session, SessionId};
use mio::net::{TcpStream, UnixStream};
use std::path::Path;
use std::rc::Rc;

/// Entry point: `ClientTcp::builder(address, port)` (POE's
/// `POE::Component::Client::TCP->new`).
#[derive(Debug)]
pub struct ClientTcp;

impl ClientTcp {
    /// A builder for a client of `address` (an IP address or a host name) on `port`,
    /// whose heap carries no program data. Use [`ClientTcpBuilder::new`] for a heap with
    /// data of your own.
    pub fn builder(address: impl Into<String>, port: u16) -> ClientTcpBuilder<()> {
        ClientTcpBuilder::new()
            .remote_address(address)
            .remote_port(port)
    }

    /// A builder for a client of the UNIX socket at `path` (a path whose first byte is NUL
    /// is a Linux abstract name): `Domain => AF_UNIX, RemoteAddress => $path`.
    pub fn unix(path: impl AsRef<Path>) -> ClientTcpBuilder<()> {
        ClientTcpBuilder::new().unix_path(path)
    }
}

/// The client session's heap (POE's `$_[HEAP]`), with the program's own data in
/// [`data`](ClientHeap::data).
#[derive(Debug)]
pub struct ClientHeap<U = ()> {
    /// The connecting [`SocketFactory`], then the connection's [`ReadWrite`] wheel
    /// (`$_[HEAP]{server}`). Reach the `ReadWrite` with [`Ctx::server`].
    pub server: Option<WheelHandle>,
    /// Connected and not shut down.
    pub connected: bool,
    /// Set by `shutdown`: input is ignored and a flush closes the connection.
    pub shutdown: bool,
    /// An I/O error yields `shutdown` (always on, as in POE; programs may clear it).
    pub shutdown_on_error: bool,
    /// An I/O error happened: `shutdown` closes at once.
    pub got_an_error: bool,
    /// The pending `ConnectTimeout` timer.
    pub ctimeout_id: Option<AlarmId>,
    /// The program's data.
    pub data: U,
    address: String,
    port: u16,
}

impl<U> ClientHeap<U> {
    /// The id of the `server` wheel, while there is one.
    pub fn server_id(&self) -> Option<WheelId> {
        self.server.as_ref().map(WheelHandle::id)
    }

    /// The address being connected to (changed by the `connect` event).
    pub fn remote_address(&self) -> &str {
        &self.address
    }

    /// The port being connected to (changed by the `connect` event).
    pub fn remote_port(&self) -> u16 {
        self.port
    }
}

impl<U: 'static> Ctx<'_, ClientHeap<U>> {
    /// The connection's wheel (`$_[HEAP]{server}` once connected), to `put` records and so
    /// on; `None` while connecting or after the connection closed.
    pub fn server(&mut self) -> Option<&mut ReadWrite> {
        let id = self.heap().server_id()?;
        self.wheel_mut::<ReadWrite>(id)
    }
}

type PreConnect<U> = Rc<dyn Fn(&mut Ctx<'_, ClientHeap<U>>, TcpStream) -> Option<TcpStream>>;

/// Configures a [`ClientTcp`] (POE's constructor parameters). `U` is the type of
/// [`ClientHeap::data`].
pub struct ClientTcpBuilder<U = ()> {
    address: Option<String>,
    port: Option<u16>,
    alias: Option<String>,
    domain: Option<Domain>,
    bind_address: Option<String>,
    bind_port: Option<u16>,
    connect_timeout: Option<f64>,
    args: Args,
    filter: Option<FilterFactory>,
    started: Option<Callback<ClientHeap<U>>>,
    pre_connect: Option<PreConnect<U>>,
    connected: Option<Callback<ClientHeap<U>>>,
    connect_error: Option<Callback<ClientHeap<U>>>,
    disconnected: Option<Callback<ClientHeap<U>>>,
    server_input: Option<Callback<ClientHeap<U>>>,
    server_error: Option<Callback<ClientHeap<U>>>,
    server_flushed: Option<Callback<ClientHeap<U>>>,
    server_high: Option<Callback<ClientHeap<U>>>,
    server_low: Option<Callback<ClientHeap<U>>>,
    high_mark: Option<usize>,
    backpressure: Option<(usize, usize)>,
    drain_deadline: Option<std::time::Duration>,
    low_mark: Option<usize>,
    states: Vec<(String, Callback<ClientHeap<U>>)>,
    data: U,
}

impl<U> std::fmt::Debug for ClientTcpBuilder<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTcpBuilder")
            .field("address", &self.address)
            .field("port", &self.port)
            .field("alias", &self.alias)
            .field("bind_address", &self.bind_address)
            .field("bind_port", &self.bind_port)
            .field("connect_timeout", &self.connect_timeout)
            .field("backpressure", &self.backpressure)
            .field("drain_deadline", &self.drain_deadline)
            .finish_non_exhaustive()
    }
}

impl<U: Default + 'static> Default for ClientTcpBuilder<U> {
    fn default() -> Self {
        Self::new()
    }
}

impl<U: Default + 'static> ClientTcpBuilder<U> {
    /// An empty builder: `remote_address`, `remote_port` and `server_input` must be given
    /// before [`build`](ClientTcpBuilder::build).
    pub fn new() -> Self {
        ClientTcpBuilder {
            address: None,
            port: None,
            alias: None,
            domain: None,
            bind_address: None,
            bind_port: None,
            connect_timeout: None,
            args: Args::new(),
            filter: None,
            started: None,
            pre_connect: None,
            connected: None,
            connect_error: None,
            disconnected: None,
            server_input: None,
            server_error: None,
            server_flushed: None,
            server_high: None,
            server_low: None,
            high_mark: None,
            backpressure: Some(super::DEFAULT_BACKPRESSURE),
            drain_deadline: Some(super::DEFAULT_DRAIN_DEADLINE),
            low_mark: None,
            states: Vec::new(),
            data: U::default(),
        }
    }
}

impl<U: 'static> ClientTcpBuilder<U> {
    /// The server's address (`RemoteAddress`): an IP address or a host name.
    pub fn remote_address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The server's port (`RemotePort`).
    pub fn remote_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// An alias for the session (`Alias`), set again on each `reconnect` and removed by
    /// `shutdown`.
    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.alias = Some(alias.into());
        self
    }

    /// The address family (`Domain`). With [`Domain::Unix`] the `RemoteAddress` is the
    /// socket's path.
    pub fn domain(mut self, domain: Domain) -> Self {
        self.domain = Some(domain);
        self
    }

    /// Connects to the UNIX socket at `path` ([`Domain::Unix`], `RemoteAddress => $path`;
    /// `RemotePort` defaults to 0, which means nothing here). A path whose first byte is NUL
    /// is a Linux abstract name.
    pub fn unix_path(mut self, path: impl AsRef<Path>) -> Self {
        self.domain = Some(Domain::Unix);
        self.address = Some(path.as_ref().to_string_lossy().into_owned());
        self.port = self.port.or(Some(0));
        self
    }

    /// The local address to bind (`BindAddress`).
    pub fn bind_address(mut self, address: impl Into<String>) -> Self {
        self.bind_address = Some(address.into());
        self
    }

    /// The local port to bind (`BindPort`).
    pub fn bind_port(mut self, port: u16) -> Self {
        self.bind_port = Some(port);
        self
    }

    /// Gives up connecting after this many seconds (`ConnectTimeout`): `ConnectError`
    /// then gets `("connect", ETIMEDOUT, "Connection timed out")`.
    pub fn connect_timeout(mut self, secs: f64) -> Self {
        self.connect_timeout = Some(secs);
        self
    }

    /// Arguments for `_start` and `Started` (`Args`).
    pub fn args(mut self, args: impl IntoArgs) -> Self {
        self.args = args.into_args();
        self
    }

    /// The program's data in the heap.
    pub fn data(mut self, data: U) -> Self {
        self.data = data;
        self
    }

    /// Holds the connection's input back while more than `high` octets of output wait,
    /// until they are down to `low` (see
    /// [`ReadWriteBuilder::backpressure`](crate::wheel::ReadWriteBuilder::backpressure));
    /// `None` reads on whatever the output (POE's behaviour). Default
    /// [`DEFAULT_BACKPRESSURE`](super::DEFAULT_BACKPRESSURE).
    pub fn server_backpressure(mut self, marks: Option<(usize, usize)>) -> Self {
        self.backpressure = marks;
        self
    }

    /// How long `shutdown` waits for the connection's output to be flushed before closing
    /// it anyway (default [`DEFAULT_DRAIN_DEADLINE`](super::DEFAULT_DRAIN_DEADLINE));
    /// `None` waits for as long as the server takes to read, as POE does.
    pub fn drain_deadline(mut self, deadline: Option<std::time::Duration>) -> Self {
        self.drain_deadline = deadline;
        self
    }

    /// The connection's filter (`Filter`; default [`Line`](crate::filter::Line) with `MaxLength` and
    /// `MaxBuffer` of [`DEFAULT_LINE_LIMIT`](super::DEFAULT_LINE_LIMIT), where POE's `Line`
    /// takes 64 and 512 MiB): a closure making a fresh one per connection, e.g.
    /// `Line::new` for POE's limits.
    pub fn filter<F, M>(mut self, make: M) -> Self
    where
        F: Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static,
        M: Fn() -> F + 'static,
    {
        self.filter = Some(filter_factory(make));
        self
    }

    /// Called in `_start`, after `reconnect` was yielded (`Started`): `ARG0`.. are the
    /// builder's `args`.
    pub fn started<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ClientHeap<U>>) -> R + 'static,
    ) -> Self {
        self.started = Some(callback(f));
        self
    }

    /// Replaces the connected socket before the wheel is made, or with `None` abandons it
    /// (`PreConnect`).
    pub fn pre_connect(
        mut self,
        f: impl Fn(&mut Ctx<'_, ClientHeap<U>>, TcpStream) -> Option<TcpStream> + 'static,
    ) -> Self {
        self.pre_connect = Some(Rc::new(f));
        self
    }

    /// Called once connected, after the wheel exists (`Connected`): `ARG0` is `()` (POE's
    /// socket, which is in the wheel here), `ARG1` the peer address
    /// (`Option<std::net::IpAddr>`), `ARG2` the peer port (`u16`), `ARG3` the factory's
    /// [`WheelId`]. Send through [`Ctx::server`].
    pub fn connected<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ClientHeap<U>>) -> R + 'static,
    ) -> Self {
        self.connected = Some(callback(f));
        self
    }

    /// Called when connecting fails or times out (`ConnectError`); the default logs it.
    /// The factory is dropped afterwards. `ARG0` is the [`WheelError`] (operation
    /// `"connect"`, `"resolve"`, `"bind"`, ...), `ARG1` the factory's
    /// [`WheelId`].
    pub fn connect_error<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ClientHeap<U>>) -> R + 'static,
    ) -> Self {
        self.connect_error = Some(callback(f));
        self
    }

    /// Called when `shutdown` closes the connection (`Disconnected`), with the arguments
    /// of the event that closed it.
    pub fn disconnected<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ClientHeap<U>>) -> R + 'static,
    ) -> Self {
        self.disconnected = Some(callback(f));
        self
    }

    /// Handles each record from the server (`ServerInput`; required): `ARG0` is the record
    /// (`Vec<u8>` with the default line filter; take it with `ctx.take_arg::<Vec<u8>>(0)`),
    /// `ARG1` the [`WheelId`].
    pub fn server_input<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ClientHeap<U>>) -> R + 'static,
    ) -> Self {
        self.server_input = Some(callback(f));
        self
    }

    /// Called on a read or write error, EOF included (`ServerError`); the default logs
    /// "Client N got OP error ERRNO (MESSAGE)" and yields `shutdown`. `ARG0` is the
    /// [`WheelError`] (`"read"` or `"write"`; end of file is [`WheelError::is_eof`]),
    /// `ARG1` the [`WheelId`].
    pub fn server_error<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ClientHeap<U>>) -> R + 'static,
    ) -> Self {
        self.server_error = Some(callback(f));
        self
    }

    /// Called each time the output buffer empties (`ServerFlushed`): `ARG0` is the
    /// [`WheelId`].
    pub fn server_flushed<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ClientHeap<U>>) -> R + 'static,
    ) -> Self {
        self.server_flushed = Some(callback(f));
        self
    }

    /// The output buffer size that raises `ServerHigh` (`HighMark`).
    pub fn high_mark(mut self, octets: usize) -> Self {
        self.high_mark = Some(octets);
        self
    }

    /// The output buffer size that raises `ServerLow` after `ServerHigh` (`LowMark`).
    pub fn low_mark(mut self, octets: usize) -> Self {
        self.low_mark = Some(octets);
        self
    }

    /// Called when the output buffer reaches `HighMark` (`ServerHigh`): `ARG0` is the
    /// [`WheelId`].
    pub fn server_high<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ClientHeap<U>>) -> R + 'static,
    ) -> Self {
        self.server_high = Some(callback(f));
        self
    }

    /// Called when the output buffer drains to `LowMark` (`ServerLow`): `ARG0` is the
    /// [`WheelId`].
    pub fn server_low<R: Outcome + 'static>(
        mut self,
        f: impl Fn(&mut Ctx<'_, ClientHeap<U>>) -> R + 'static,
    ) -> Self {
        self.server_low = Some(callback(f));
        self
    }

    /// Adds a handler to the session (`InlineStates`). As in POE, it may replace one of
    /// the component's own.
    pub fn inline_state<R: Outcome + 'static>(
        mut self,
        event: &str,
        f: impl Fn(&mut Ctx<'_, ClientHeap<U>>) -> R + 'static,
    ) -> Self {
        self.states.push((event.to_owned(), callback(f)));
        self
    }

    /// Maps events to methods of a shared object (`ObjectStates`).
    #[allow(clippy::type_complexity)] // The same shape as `Session::object_states`.
    pub fn object_states<O: 'static, R: Outcome + 'static>(
        mut self,
        object: Rc<O>,
        states: &[(&str, ObjectMethod<O, ClientHeap<U>, R>)],
    ) -> Self {
        self.states.extend(super::object_callbacks(&object, states));
        self
    }

    /// Maps events to functions that receive `package` as POE's `OBJECT`
    /// (`PackageStates`).
    pub fn package_states<R: Outcome + 'static>(
        mut self,
        package: &'static str,
        states: &[(&str, PackageMethod<ClientHeap<U>, R>)],
    ) -> Self {
        self.states
            .extend(super::package_callbacks(package, states));
        self
    }

    /// Checks the configuration as POE's constructor does and creates the client session,
    /// a child of the active session. Returns its ID.
    pub fn build(self, kernel: &mut Kernel) -> Result<SessionId, ComponentError> {
        let session = self.into_session()?;
        Ok(kernel.create(session)?)
    }

    /// POE's constructor checks, then the session: its heap, and its handlers, which
    /// share the configuration.
    fn into_session(self) -> Result<Session<ClientHeap<U>>, ComponentError> {
        let address = self.address.ok_or(ComponentError::MissingRemoteAddress)?;
        let port = self.port.ok_or(ComponentError::MissingRemotePort)?;
        let marks = [
            self.high_mark.is_some(),
            self.low_mark.is_some(),
            self.server_high.is_some(),
            self.server_low.is_some(),
        ]
        .iter()
        .filter(|&&b| b)
        .count();
        if marks != 0 && marks != 4 {
            return Err(ComponentError::PartialWatermarks);
        }
        let input = self
            .server_input
            .ok_or(ComponentError::MissingServerInput)?;
        if self.domain == Some(Domain::Unix) && self.pre_connect.is_some() {
            return Err(ComponentError::TcpOnly("PreConnect"));
        }
        let cfg = Rc::new(Config {
            alias: self.alias,
            domain: self.domain,
            bind_address: self.bind_address,
            bind_port: self.bind_port,
            connect_timeout: self.connect_timeout,
            filter: self.filter,
            started: self.started,
            pre_connect: self.pre_connect,
            connected: self.connected,
            connect_error: self
                .connect_error
                .unwrap_or_else(|| callback(default_connect_error::<U>)),
            disconnected: self.disconnected,
            input,
            server_error: self
                .server_error
                .unwrap_or_else(|| callback(default_io_error::<U>)),
            flushed: self.server_flushed,
            high: self.server_high,
            low: self.server_low,
            marks: self.high_mark.zip(self.low_mark),
            backpressure: self.backpressure,
            drain_deadline: self.drain_deadline,
        });
        let heap = ClientHeap {
            server: None,
            connected: false,
            shutdown: false,
            shutdown_on_error: false,
            got_an_error: false,
            ctimeout_id: None,
            data: self.data,
            address,
            port,
        };
        let on = |s: Session<ClientHeap<U>>, event: &str, handler: Handler<U>| {
            let c = Rc::clone(&cfg);
            s.on(event, move |ctx| handler(&c, ctx))
        };
        let mut s = Session::new(heap).args(self.args);
        s = on(s, "_start", start);
        s = s.on("_stop", |_: &mut Ctx<'_, ClientHeap<U>>| {});
        s = s.on("_child", |_: &mut Ctx<'_, ClientHeap<U>>| {});
        s = on(s, "reconnect", reconnect);
        s = s.on("connect", connect_to::<U>);
        s = on(s, "got_connect_success", connect_success);
        s = on(s, "got_high", |c, ctx| run_cb(&c.high, ctx));
        s = on(s, "got_low", |c, ctx| run_cb(&c.low, ctx));
        s = on(s, "got_connect_error", connect_failed);
        s = on(s, "got_connect_timeout", connect_failed);
        s = on(s, "got_server_error", server_error);
        s = on(s, "got_server_input", server_input);
        s = on(s, "got_server_flush", server_flushed);
        s = on(s, "shutdown", shutdown);
        s = on(s, "got_drain_deadline", drain_deadline_passed);
        for (name, f) in self.states {
            s = s.on(&name, move |ctx| f(ctx));
        }
        Ok(s)
    }
}

/// A handler of the client session, given the shared configuration.
type Handler<U> = fn(&Config<U>, &mut Ctx<'_, ClientHeap<U>>) -> Result<(), HandlerError>;

/// `_start`: the alias, the first connection attempt, `Started`.
fn start<U: 'static>(c: &Config<U>, ctx: &mut Ctx<'_, ClientHeap<U>>) -> Result<(), HandlerError> {
    ctx.heap().shutdown_on_error = true;
    set_alias(c, ctx);
    ctx.yield_("reconnect", ())?;
    run_cb(&c.started, ctx)
}

/// `connect`: a new address and port (either may be left out), then `reconnect`.
fn connect_to<U: 'static>(ctx: &mut Ctx<'_, ClientHeap<U>>) -> Result<(), HandlerError> {
    let args = ctx.args();
    let address = args
        .opt::<String>(0)
        .cloned()
        .or_else(|| args.opt::<&'static str>(0).map(|s| (*s).to_owned()))
        .or_else(|| args.opt::<Option<String>>(0).cloned().flatten());
    let port = int_arg(args, 1)
        .and_then(|p| u16::try_from(p).ok())
        .or_else(|| args.opt::<Option<u16>>(1).copied().flatten());
    let h = ctx.heap();
    if let Some(a) = address {
        h.address = a;
    }
    if let Some(p) = port {
        h.port = p;
    }
    ctx.yield_("reconnect", ())?;
    Ok(())
}

/// The factory connected: `PreConnect` may replace or refuse the socket, then the
/// connection's `ReadWrite` and `Connected`.
fn connect_success<U: 'static>(
    c: &Config<U>,
    ctx: &mut Ctx<'_, ClientHeap<U>>,
) -> Result<(), HandlerError> {
    remove_timeout(ctx);
    let mut b = if ctx.args().is::<UnixStream>(0) {
        ReadWrite::builder(ctx.take_arg::<UnixStream>(0)?)
    } else {
        let mut socket = ctx.take_arg::<TcpStream>(0)?;
        if let Some(pre) = &c.pre_connect {
            match pre(ctx, socket) {
                Some(s) => socket = s,
                None => {
                    ctx.heap().connected = false;
                    ctx.heap().server = None;
                    return Ok(());
                }
            }
        }
        ReadWrite::builder(socket)
    };
    b = match &c.filter {
        Some(f) => b.filter(f()),
        None => b.filter(super::default_line()),
    };
    b = b
        .input_event("got_server_input")
        .error_event("got_server_error")
        .flushed_event("got_server_flush");
    if let Some((high, low)) = c.backpressure {
        b = b.backpressure(high, low);
    }
    if let Some((h, l)) = c.marks {
        b = b
            .watermarks(h, l)
            .event(RwEvent::High, "got_high")
            .event(RwEvent::Low, "got_low");
    }
    let w = b.build(ctx)?;
    ctx.heap().server = Some(w);
    ctx.heap().connected = true;
    run_cb(&c.connected, ctx)
}

/// The connection failed or timed out: `ConnectError`, and the factory goes.
fn connect_failed<U: 'static>(
    c: &Config<U>,
    ctx: &mut Ctx<'_, ClientHeap<U>>,
) -> Result<(), HandlerError> {
    remove_timeout(ctx);
    ctx.heap().connected = false;
    (c.connect_error)(ctx)?;
    ctx.heap().server = None;
    Ok(())
}

/// `ServerError`, then a shutdown (POE shuts down on any error once started).
fn server_error<U: 'static>(
    c: &Config<U>,
    ctx: &mut Ctx<'_, ClientHeap<U>>,
) -> Result<(), HandlerError> {
    (c.server_error)(ctx)?;
    if ctx.heap().shutdown_on_error {
        ctx.yield_("shutdown", ())?;
        ctx.heap().got_an_error = true;
    }
    Ok(())
}

/// `ServerInput`, unless shutting down.
fn server_input<U: 'static>(
    c: &Config<U>,
    ctx: &mut Ctx<'_, ClientHeap<U>>,
) -> Result<(), HandlerError> {
    if ctx.heap().shutdown {
        return Ok(());
    }
    (c.input)(ctx).map(drop)
}

/// `ServerFlushed`; a shutdown waiting for the flush then closes the connection.
fn server_flushed<U: 'static>(
    c: &Config<U>,
    ctx: &mut Ctx<'_, ClientHeap<U>>,
) -> Result<(), HandlerError> {
    run_cb(&c.flushed, ctx)?;
    if ctx.heap().shutdown {
        let _ = ctx.alarm_clear("got_drain_deadline");
        ctx.heap().server = None;
        run_cb(&c.disconnected, ctx)?;
    }
    Ok(())
}

/// The output was not flushed within the drain deadline: close anyway.
fn drain_deadline_passed<U: 'static>(
    c: &Config<U>,
    ctx: &mut Ctx<'_, ClientHeap<U>>,
) -> Result<(), HandlerError> {
    if ctx.heap().server.is_some() {
        log::warn!(
            "ClientTcp {}: closed with output unsent, the drain deadline passed",
            ctx.session()
        );
        ctx.heap().server = None;
        run_cb(&c.disconnected, ctx)?;
    }
    Ok(())
}

/// `shutdown`: closes the connection now, or once its output is flushed (at most the
/// drain deadline later).
fn shutdown<U: 'static>(
    c: &Config<U>,
    ctx: &mut Ctx<'_, ClientHeap<U>>,
) -> Result<(), HandlerError> {
    ctx.heap().shutdown = true;
    remove_timeout(ctx);
    if ctx.heap().connected {
        ctx.heap().connected = false;
        if ctx.heap().server.is_some() {
            let buffered = ctx.server().map_or(0, |w| w.driver_out_octets());
            if ctx.heap().got_an_error || buffered == 0 {
                ctx.heap().server = None;
                run_cb(&c.disconnected, ctx)?;
            } else if let Some(d) = c.drain_deadline {
                ctx.delay("got_drain_deadline", d, ())?;
            }
        }
    } else {
        ctx.heap().server = None;
    }
    if let Some(a) = &c.alias {
        let _ = ctx.alias_remove(a);
    }
    Ok(())
}

/// The parts of the configuration the handlers share.
struct Config<U> {
    alias: Option<String>,
    domain: Option<Domain>,
    bind_address: Option<String>,
    bind_port: Option<u16>,
    connect_timeout: Option<f64>,
    filter: Option<FilterFactory>,
    started: Option<Callback<ClientHeap<U>>>,
    pre_connect: Option<PreConnect<U>>,
    connected: Option<Callback<ClientHeap<U>>>,
    connect_error: Callback<ClientHeap<U>>,
    disconnected: Option<Callback<ClientHeap<U>>>,
    input: Callback<ClientHeap<U>>,
    server_error: Callback<ClientHeap<U>>,
    flushed: Option<Callback<ClientHeap<U>>>,
    high: Option<Callback<ClientHeap<U>>>,
    low: Option<Callback<ClientHeap<U>>>,
    marks: Option<(usize, usize)>,
    backpressure: Option<(usize, usize)>,
    drain_deadline: Option<std::time::Duration>,
}

fn set_alias<U: 'static>(c: &Config<U>, ctx: &mut Ctx<'_, ClientHeap<U>>) {
    if let Some(a) = &c.alias {
        // POE ignores the result, e.g. an alias still held by another session.
        if let Err(e) = ctx.alias_set(a) {
            log::warn!("ClientTcp: alias {a:?}: {e}");
        }
    }
}

fn remove_timeout<U: 'static>(ctx: &mut Ctx<'_, ClientHeap<U>>) {
    if let Some(id) = ctx.heap().ctimeout_id.take() {
        let _ = ctx.alarm_remove(id);
    }
}

fn reconnect<U: 'static>(
    c: &Config<U>,
    ctx: &mut Ctx<'_, ClientHeap<U>>,
) -> Result<(), HandlerError> {
    let h = ctx.heap();
    h.shutdown = false;
    h.connected = false;
    let (address, port) = (h.address.clone(), h.port);
    set_alias(c, ctx);
    let mut f = SocketFactory::connect(address, port)
        .success_event("got_connect_success")
        .failure_event("got_connect_error");
    if let Some(d) = c.domain {
        f = f.domain(d);
    }
    if let Some(a) = &c.bind_address {
        f = f.bind_address(a.clone());
    }
    if let Some(p) = c.bind_port {
        f = f.bind_port(p);
    }
    let w = f.build(ctx)?;
    ctx.heap().server = Some(w);
    remove_timeout(ctx);
    if let Some(secs) = c.connect_timeout {
        let args = (WheelError::new(
            "connect",
            ETIMEDOUT,
            "Connection timed out",
        ),);
        let id = ctx.delay_set("got_connect_timeout", secs, args)?;
        ctx.heap().ctimeout_id = Some(id);
    }
    Ok(())
}

fn default_connect_error<U: 'static>(ctx: &mut Ctx<'_, ClientHeap<U>>) {
    if let Ok(e) = ctx.arg::<WheelError>(0) {
        if !(e.operation == "read" && (e.errno == 0 || e.errno == ECONNRESET)) {
            log::warn!("Client {} got {e}", ctx.session());
        }
    }
    ctx.heap().server = None;
}

fn default_io_error<U: 'static>(ctx: &mut Ctx<'_, ClientHeap<U>>) -> Result<(), HandlerError> {
    if let Ok(e) = ctx.arg::<WheelError>(0) {
        if e.errno == 0 {
            log::warn!(
                "Client {} got {} error 0 (Normal disconnection)",
                ctx.session(),
                e.operation
            );
        } else {
            log::warn!("Client {} got {e}", ctx.session());
        }
    }
    ctx.yield_("shutdown", ())?;
    Ok(())
}
