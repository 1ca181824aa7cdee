//! `SocketFactory` and `ListenAccept`: making connections, listening sockets and datagram
//! sockets, and accepting connections (POE's `POE::Wheel::SocketFactory` and
//! `POE::Wheel::ListenAccept`).

use super::{Wheel, WheelError, WheelHandle, WheelId};
use crate::errno::{ECONNABORTED, EINPROGRESS, EINTR, EINVAL, EPROTO};
use crate::error::{Error, Result};
use crate::value::{Args, IntoArgs};
use crate::Mode;
use crate::{EventId, Kernel};
use mio::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use socket2::{Domain as SockDomain, Protocol as SockProtocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The address family of a [`SocketFactory`] (POE's `SocketDomain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// IPv4 (`AF_INET`, the default).
    Inet,
    /// IPv6 (`AF_INET6`).
    Inet6,
    /// UNIX sockets (`AF_UNIX`): a path, or on Linux an abstract name (a path whose first
    /// byte is NUL, see [`SocketFactory::unix_abstract`]).
    Unix,
}

/// The protocol of an Internet [`SocketFactory`] (POE's `SocketProtocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// TCP (`"tcp"`, the default): streams, listening or connecting.
    #[default]
    Tcp,
    /// UDP (`"udp"`): a datagram socket (`mio::net::UdpSocket`), bound and handed over at
    /// once, or connected to a remote address.
    Udp,
}

/// The kind of socket (POE's `SocketType`). The default follows the protocol: streams for
/// TCP and UNIX sockets, datagrams for UDP; `Datagram` makes a UNIX datagram socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketType {
    /// `SOCK_STREAM`.
    Stream,
    /// `SOCK_DGRAM`.
    Datagram,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

enum State {
    /// Construction failed; the failure has been posted.
    Failed,
    Connecting(Connecting),
    Listening {
        listener: Listener,
        ready: bool,
        paused: bool,
    },
    /// The connection was handed over; nothing more to do.
    Done,
}

enum Connecting {
    Tcp(TcpStream),
    Unix(UnixStream),
    Udp(UdpSocket),
    UnixDatagram(UnixDatagram),
}

impl Connecting {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Connecting::Tcp(s) => s,
            Connecting::Unix(s) => s,
            Connecting::Udp(s) => s,
            Connecting::UnixDatagram(s) => s,
        }
    }
}

/// A socket handed to the session in `SuccessEvent`'s `ARG0`.
enum Handed {
    Tcp(TcpStream),
    Unix(UnixStream),
    Udp(UdpSocket),
    UnixDatagram(UnixDatagram),
}

impl Handed {
    fn push_into(self, args: &mut Args) {
        match self {
            Handed::Tcp(s) => args.push(s),
            Handed::Unix(s) => args.push(s),
            Handed::Udp(s) => args.push(s),
            Handed::UnixDatagram(s) => args.push(s),
        }
    }
}

/// What building made: a wheel state, or a datagram socket that neither listens nor
/// connects, handed over at once (POE yields `SuccessEvent` with it from `new`).
enum Made {
    State(State),
    Ready(Handed),
}

/// Makes a client connection, a listening socket or a datagram socket, and reports each
/// result as `SuccessEvent` or `FailureEvent` to the session that built it.
///
/// - `SuccessEvent`, connecting: `ARG0` = the connected, non-blocking socket (take it with
///   `ctx.take_arg`): `mio::net::TcpStream`, `mio::net::UnixStream` for [`Domain::Unix`],
///   `mio::net::UdpSocket` for [`Protocol::Udp`], `mio::net::UnixDatagram` for a UNIX
///   [`SocketType::Datagram`]; `ARG1` = peer address (`Option<IpAddr>`, `None` for UNIX),
///   `ARG2` = peer port (`u16`, 0 for UNIX), `ARG3` = wheel id.
/// - `SuccessEvent`, listening: the same, once per accepted connection.
/// - `SuccessEvent`, a datagram socket without a remote address: `ARG0` = the bound (or,
///   with no bind address, unbound) `mio::net::UdpSocket` or `mio::net::UnixDatagram`,
///   `ARG1` = `None`, `ARG2` = 0, `ARG3` = wheel id. As in POE, it comes right away: it is
///   yielded by `build`, and the wheel has nothing more to do. Read and write the socket
///   with `select_read` and `recv_from`/`send_to`, or hand it to a [`Udp`](super::Udp)
///   wheel.
/// - `FailureEvent`: `ARG0` = the [`WheelError`] (operation `"connect"`, `"bind"`,
///   `"listen"`, `"accept"`, `"socket"`, `"resolve"`...), `ARG1` = wheel id.
///   Failures while building are delivered like POE's, as an event after `build` returns.
///
/// TCP sockets it makes have `TCP_NODELAY` set unless [`nodelay`](SocketFactoryBuilder::nodelay)
/// says otherwise, so small writes never wait on Nagle.
///
/// # Datagram sockets
///
/// ```
/// use mio::net::UdpSocket;
/// use reactor::wheel::SocketFactory;
/// use reactor::{Ctx, HandlerError, Kernel, Session};
///
/// let mut kernel = Kernel::new()?;
/// kernel.create(
///     Session::new(None::<UdpSocket>)
///         .on("_start", |ctx: &mut Ctx<'_, Option<UdpSocket>>| -> reactor::Result<()> {
///             // SocketProtocol => 'udp', BindAddress => '127.0.0.1', BindPort => 0
///             SocketFactory::udp()
///                 .bind_address("127.0.0.1")
///                 .success_event("got_socket")
///                 .failure_event("got_error")
///                 .build(ctx)
///                 .map(drop)
///         })
///         .on("got_socket", |ctx: &mut Ctx<'_, Option<UdpSocket>>| -> Result<(), HandlerError> {
///             let socket = ctx.take_arg::<UdpSocket>(0)?;
///             assert_eq!(socket.local_addr()?.ip().to_string(), "127.0.0.1");
///             *ctx.heap() = Some(socket); // or ctx.select_read(&socket, "got_datagram", ())
///             Ok(())
///         })
///         .on("got_error", |_: &mut Ctx<'_, Option<UdpSocket>>| {}),
/// )?;
/// kernel.run()?;
/// # Ok::<(), reactor::Error>(())
/// ```
///
/// # UNIX sockets
///
/// [`SocketFactory::unix`] listens at a path, or connects to it with
/// [`unix_connect`](SocketFactoryBuilder::unix_connect); POE's spelling,
/// `.domain(Domain::Unix)` with the path as `bind_address` (listening) or as the address of
/// [`SocketFactory::connect`], works too. A path whose first byte is NUL is a Linux
/// abstract name, as in POE ([`SocketFactory::unix_abstract`] makes one): no file, gone with
/// the last socket. The factory does not remove a socket file it made (nor does POE).
///
/// UNIX datagram sockets are `.socket_type(SocketType::Datagram)`: bound at the path and
/// handed over at once, or connected to it (then a `bind_address` path, if any, is the
/// socket's own address, to which the peer answers).
///
/// # Deviations from POE
///
/// - A bound UNIX datagram socket is handed over like a UDP one; POE calls `listen` on it
///   and reports `("listen", EOPNOTSUPP)`.
/// - `Protocol::Udp` with [`Domain::Unix`] and `listen_queue` with a datagram socket are
///   refused by `build` with [`Error::InvalidArgument`]; POE warns and ignores the option
///   (making a UNIX stream socket in the first case).
/// - The peer of a connected UNIX socket is `None`; POE passes the path.
pub struct SocketFactory {
    state: State,
    success: EventId,
    failure: EventId,
    nodelay: bool,
    local: Option<SocketAddr>,
    connect_ready: bool,
}

impl std::fmt::Debug for SocketFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketFactory")
            .field("local", &self.local)
            .field("nodelay", &self.nodelay)
            .finish_non_exhaustive()
    }
}

/// Configures a [`SocketFactory`] (POE's constructor parameters).
pub struct SocketFactoryBuilder {
    domain: Domain,
    protocol: Protocol,
    socket_type: Option<SocketType>,
    remote: Option<(String, u16)>,
    path: Option<PathBuf>,
    bind_address: Option<String>,
    bind_port: u16,
    reuse: bool,
    reuse_port: bool,
    listen_queue: Option<i32>,
    nodelay: bool,
    success: Option<EventId>,
    failure: Option<EventId>,
}

impl std::fmt::Debug for SocketFactoryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketFactoryBuilder")
            .field("domain", &self.domain)
            .field("protocol", &self.protocol)
            .field("remote", &self.remote)
            .field("path", &self.path)
            .field("bind_address", &self.bind_address)
            .field("bind_port", &self.bind_port)
            .finish_non_exhaustive()
    }
}

impl SocketFactory {
    /// A factory that listens (no `RemoteAddress`): bind with
    /// [`bind_address`](SocketFactoryBuilder::bind_address) and
    /// [`bind_port`](SocketFactoryBuilder::bind_port).
    pub fn listen() -> SocketFactoryBuilder {
        SocketFactoryBuilder {
            domain: Domain::Inet,
            protocol: Protocol::Tcp,
            socket_type: None,
            remote: None,
            path: None,
            bind_address: None,
            bind_port: 0,
            reuse: false,
            reuse_port: false,
            listen_queue: None,
            nodelay: true,
            success: None,
            failure: None,
        }
    }

    /// A factory that connects to `address` (an IP address or a host name, resolved here
    /// as POE does) on `port` (POE's `RemoteAddress`/`RemotePort`).
    pub fn connect(address: impl Into<String>, port: u16) -> SocketFactoryBuilder {
        let mut b = Self::listen();
        b.remote = Some((address.into(), port));
        b
    }

    /// A factory for a UDP socket (POE's `SocketProtocol => 'udp'`), bound with
    /// [`bind_address`](SocketFactoryBuilder::bind_address) and
    /// [`bind_port`](SocketFactoryBuilder::bind_port) and handed over at once. For a
    /// connected one: `SocketFactory::connect(address, port).protocol(Protocol::Udp)`.
    pub fn udp() -> SocketFactoryBuilder {
        Self::listen().protocol(Protocol::Udp)
    }

    /// A factory for a UNIX stream socket at `path`: listening, or connecting with
    /// [`SocketFactoryBuilder::unix_connect`]. A path whose first byte is NUL is a Linux
    /// abstract name.
    pub fn unix(path: impl Into<PathBuf>) -> SocketFactoryBuilder {
        let mut b = Self::listen();
        b.domain = Domain::Unix;
        b.path = Some(path.into());
        b
    }

    /// A factory for a UNIX socket with the Linux abstract name `name` (no file; the name
    /// goes with the last socket that uses it): [`unix`](SocketFactory::unix) with the path
    /// `"\0name"`, which is how POE programs write it.
    pub fn unix_abstract(name: impl AsRef<[u8]>) -> SocketFactoryBuilder {
        Self::unix(abstract_path(name.as_ref()))
    }

    /// The bound local address (POE's `getsockname`); learn the port after binding to 0.
    pub fn getsockname(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Stops accepting (POE's `pause_accept`).
    pub fn pause_accept(&mut self) {
        if let State::Listening { paused, .. } = &mut self.state {
            *paused = true;
        }
    }

    /// Accepts again (POE's `resume_accept`).
    pub fn resume_accept(&mut self) {
        if let State::Listening { paused, .. } = &mut self.state {
            *paused = false;
        }
    }

    /// Renames the events (POE's `event`).
    pub fn event(&mut self, success: Option<&str>, failure: Option<&str>) {
        if let Some(s) = success {
            self.success = EventId::of(s);
        }
        if let Some(f) = failure {
            self.failure = EventId::of(f);
        }
    }
}

impl SocketFactoryBuilder {
    /// The address family (POE's `SocketDomain`).
    pub fn domain(mut self, d: Domain) -> Self {
        self.domain = d;
        self
    }
    /// The protocol of an Internet socket (POE's `SocketProtocol`; default
    /// [`Protocol::Tcp`]).
    pub fn protocol(mut self, p: Protocol) -> Self {
        self.protocol = p;
        self
    }
    /// The kind of socket (POE's `SocketType`; by default what the protocol calls for).
    /// [`SocketType::Datagram`] with [`Domain::Unix`] makes a UNIX datagram socket.
    pub fn socket_type(mut self, t: SocketType) -> Self {
        self.socket_type = Some(t);
        self
    }
    /// Connect instead of listen, for a [`SocketFactory::unix`] factory.
    pub fn unix_connect(mut self) -> Self {
        self.remote = Some((String::new(), 0));
        self
    }
    /// The local address to bind (POE's `BindAddress`).
    pub fn bind_address(mut self, a: impl Into<String>) -> Self {
        self.bind_address = Some(a.into());
        self
    }
    /// The local port to bind (POE's `BindPort`; 0 picks one).
    pub fn bind_port(mut self, p: u16) -> Self {
        self.bind_port = p;
        self
    }
    /// `SO_REUSEADDR` (POE's `Reuse`).
    pub fn reuse(mut self, on: bool) -> Self {
        self.reuse = on;
        self
    }
    /// `SO_REUSEPORT` (no POE name): several sockets, in this process or others, may bind
    /// the same address and port, and the system spreads incoming connections across the
    /// listening ones. One kernel per core, each with its own listener on the same port,
    /// is how a server uses more than one core. Every socket of the group must set it.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }
    /// The listen backlog (POE's `ListenQueue`; default 1024). A datagram socket does not
    /// listen: `build` refuses it there.
    pub fn listen_queue(mut self, n: i32) -> Self {
        self.listen_queue = Some(n);
        self
    }
    /// `TCP_NODELAY` on the sockets made (default on).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }
    /// `SuccessEvent` (required): `ARG0` is the socket (`mio::net::TcpStream`, or the
    /// stream or datagram type of the domain and protocol; take it with `ctx.take_arg`),
    /// `ARG1` the peer address (`Option<std::net::IpAddr>`), `ARG2` the peer port (`u16`),
    /// `ARG3` the [`WheelId`]. See [`SocketFactory`] for each case.
    pub fn success_event(mut self, e: &str) -> Self {
        self.success = Some(EventId::of(e));
        self
    }
    /// `FailureEvent` (required): `ARG0` is the [`WheelError`] (operation `"connect"`,
    /// `"bind"`, `"resolve"`, ...), `ARG1` the [`WheelId`].
    pub fn failure_event(mut self, e: &str) -> Self {
        self.failure = Some(EventId::of(e));
        self
    }

    /// Builds the socket and puts the wheel into the kernel. Only a missing event or a
    /// combination of options that makes no sense ([`Error::InvalidArgument`]) is an error
    /// here; socket failures arrive as `FailureEvent`.
    pub fn build(self, kernel: &mut Kernel) -> Result<WheelHandle> {
        let success = self
            .success
            .ok_or(Error::InvalidArgument("SuccessEvent required"))?;
        let failure = self
            .failure
            .ok_or(Error::InvalidArgument("FailureEvent required"))?;
        self.check()?;
        let nodelay = self.nodelay;
        let (made, fail) = match self.make() {
            Ok(made) => (made, None),
            Err((op, e)) => (Made::State(State::Failed), Some((op, e))),
        };
        let (state, ready) = match made {
            Made::State(state) => (state, None),
            Made::Ready(handed) => (State::Done, Some(handed)),
        };
        let local = match &state {
            State::Connecting(Connecting::Tcp(s)) => s.local_addr().ok(),
            State::Connecting(Connecting::Udp(s)) => s.local_addr().ok(),
            State::Listening {
                listener: Listener::Tcp(l),
                ..
            } => l.local_addr().ok(),
            _ => match &ready {
                Some(Handed::Udp(s)) => s.local_addr().ok(),
                _ => None,
            },
        };
        let handle = kernel.wheel_insert(SocketFactory {
            state,
            success,
            failure,
            nodelay,
            local,
            connect_ready: false,
        })?;
        let id = handle.id();
        if let Some((op, e)) = fail {
            let args = (WheelError::io(op, &e), id);
            kernel.yield_(failure.name().as_str(), args)?;
        }
        if let Some(handed) = ready {
            let mut args = Args::new();
            handed.push_into(&mut args);
            args.push(None::<IpAddr>);
            args.push(0u16);
            args.push(id);
            kernel.yield_(success.name().as_str(), args)?;
        }
        Ok(handle)
    }

    /// Whether this makes a datagram socket.
    fn datagram(&self) -> bool {
        match self.socket_type {
            Some(t) => t == SocketType::Datagram,
            None => self.domain != Domain::Unix && self.protocol == Protocol::Udp,
        }
    }

    /// Refuses combinations of options that cannot mean anything.
    fn check(&self) -> Result<()> {
        if self.domain == Domain::Unix && self.protocol == Protocol::Udp {
            return Err(Error::InvalidArgument(
                "SocketProtocol udp needs an Internet domain; a UNIX datagram socket is socket_type(SocketType::Datagram)",
            ));
        }
        if self.listen_queue.is_some() && self.datagram() {
            return Err(Error::InvalidArgument(
                "ListenQueue is for listening sockets; a datagram socket does not listen",
            ));
        }
        Ok(())
    }

    fn make(&self) -> std::result::Result<Made, (&'static str, io::Error)> {
        if self.domain == Domain::Unix {
            return self.make_unix();
        }
        let v6 = self.domain == Domain::Inet6;
        let remote = match &self.remote {
            Some((host, port)) => Some(resolve(host, *port, v6).map_err(|e| ("resolve", e))?),
            None => None,
        };
        let v6 = remote.map_or(v6, |a| a.is_ipv6());
        let domain = if v6 {
            SockDomain::IPV6
        } else {
            SockDomain::IPV4
        };
        let dgram = self.datagram();
        let ty = if dgram { Type::DGRAM } else { Type::STREAM };
        let protocol = match self.protocol {
            Protocol::Tcp => SockProtocol::TCP,
            Protocol::Udp => SockProtocol::UDP,
        };
        // A type the protocol does not have (TCP datagrams) fails here, as in POE.
        let sock = Socket::new(domain, ty, Some(protocol)).map_err(|e| ("socket", e))?;
        sock.set_nonblocking(true).map_err(|e| ("socket", e))?;
        if self.reuse {
            sock.set_reuse_address(true)
                .map_err(|e| ("setsockopt", e))?;
        }
        if self.reuse_port {
            sock.set_reuse_port(true).map_err(|e| ("setsockopt", e))?;
        }
        // A listening socket is bound to every address when no address is given; a
        // datagram socket only binds when asked to, as in POE.
        let listening = remote.is_none() && !dgram;
        if self.bind_address.is_some() || self.bind_port != 0 || listening {
            let ip = match &self.bind_address {
                Some(a) => resolve(a, self.bind_port, v6)
                    .map_err(|e| ("bind", e))?
                    .ip(),
                None if v6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            };
            sock.bind(&SockAddr::from(SocketAddr::new(ip, self.bind_port)))
                .map_err(|e| ("bind", e))?;
        }
        match (remote, dgram) {
            (Some(addr), false) => {
                if self.nodelay {
                    sock.set_nodelay(true).map_err(|e| ("setsockopt", e))?;
                }
                connect(&sock, &SockAddr::from(addr), false)?;
                let std: std::net::TcpStream = sock.into();
                Ok(Made::State(State::Connecting(Connecting::Tcp(
                    TcpStream::from_std(std),
                ))))
            }
            (Some(addr), true) => {
                connect(&sock, &SockAddr::from(addr), false)?;
                let std: std::net::UdpSocket = sock.into();
                Ok(Made::State(State::Connecting(Connecting::Udp(
                    UdpSocket::from_std(std),
                ))))
            }
            (None, false) => {
                sock.listen(self.listen_queue.unwrap_or(1024))
                    .map_err(|e| ("listen", e))?;
                let std: std::net::TcpListener = sock.into();
                Ok(Made::State(State::Listening {
                    listener: Listener::Tcp(TcpListener::from_std(std)),
                    ready: false,
                    paused: false,
                }))
            }
            (None, true) => {
                let std: std::net::UdpSocket = sock.into();
                Ok(Made::Ready(Handed::Udp(UdpSocket::from_std(std))))
            }
        }
    }

    /// A UNIX socket: its own address (`bind`) and the one it connects to.
    fn make_unix(&self) -> std::result::Result<Made, (&'static str, io::Error)> {
        let einval = || io::Error::from_raw_os_error(EINVAL);
        let connecting = self.remote.is_some();
        let named = |a: &Option<String>| a.as_deref().filter(|a| !a.is_empty()).map(PathBuf::from);
        let (bind, remote) = if connecting {
            let host = self.remote.as_ref().map(|(h, _)| h.clone());
            let remote = self.path.clone().or_else(|| named(&host));
            (
                named(&self.bind_address),
                Some(remote.ok_or(("socket", einval()))?),
            )
        } else {
            let bind = self.path.clone().or_else(|| named(&self.bind_address));
            (bind, None)
        };
        let dgram = self.datagram();
        if !dgram && !connecting && bind.is_none() {
            return Err(("socket", einval()));
        }
        let ty = if dgram { Type::DGRAM } else { Type::STREAM };
        let sock = Socket::new(SockDomain::UNIX, ty, None).map_err(|e| ("socket", e))?;
        sock.set_nonblocking(true).map_err(|e| ("socket", e))?;
        if let Some(path) = &bind {
            let addr = SockAddr::unix(path).map_err(|e| ("bind", e))?;
            sock.bind(&addr).map_err(|e| ("bind", e))?;
        }
        let made = match (remote, dgram) {
            (Some(path), false) => {
                connect(
                    &sock,
                    &SockAddr::unix(path).map_err(|e| ("connect", e))?,
                    true,
                )?;
                let std: std::os::unix::net::UnixStream = sock.into();
                Made::State(State::Connecting(Connecting::Unix(UnixStream::from_std(
                    std,
                ))))
            }
            (Some(path), true) => {
                connect(
                    &sock,
                    &SockAddr::unix(path).map_err(|e| ("connect", e))?,
                    true,
                )?;
                let std: std::os::unix::net::UnixDatagram = sock.into();
                Made::State(State::Connecting(Connecting::UnixDatagram(
                    UnixDatagram::from_std(std),
                )))
            }
            (None, false) => {
                sock.listen(self.listen_queue.unwrap_or(1024))
                    .map_err(|e| ("listen", e))?;
                let std: std::os::unix::net::UnixListener = sock.into();
                Made::State(State::Listening {
                    listener: Listener::Unix(UnixListener::from_std(std)),
                    ready: false,
                    paused: false,
                })
            }
            (None, true) => {
                let std: std::os::unix::net::UnixDatagram = sock.into();
                Made::Ready(Handed::UnixDatagram(UnixDatagram::from_std(std)))
            }
        };
        Ok(made)
    }
}

/// Starts a non-blocking connect: under way or done is success. (A UNIX socket connects
/// at once or not at all: there `EAGAIN` means the listener's backlog is full.)
fn connect(
    sock: &Socket,
    addr: &SockAddr,
    unix: bool,
) -> std::result::Result<(), (&'static str, io::Error)> {
    match sock.connect(addr) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && !unix => Ok(()),
        Err(e) => Err(("connect", e)),
    }
}

/// The path that stands for the Linux abstract name `name`: a NUL, then the name.
fn abstract_path(name: &[u8]) -> PathBuf {
    let mut bytes = Vec::with_capacity(name.len() + 1);
    bytes.push(0);
    bytes.extend_from_slice(name);
    Path::new(std::ffi::OsStr::from_bytes(&bytes)).to_path_buf()
}

fn resolve(host: &str, port: u16, prefer_v6: bool) -> io::Result<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv6() == prefer_v6)
        .or(addrs.first())
        .copied()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}")))
}

fn accept_one(l: &Listener, nodelay: bool) -> io::Result<(Handed, Option<IpAddr>, u16)> {
    match l {
        Listener::Tcp(l) => {
            let (s, peer) = l.accept()?;
            if nodelay {
                let _ = s.set_nodelay(true);
            }
            Ok((Handed::Tcp(s), Some(peer.ip()), peer.port()))
        }
        Listener::Unix(l) => {
            let (s, _) = l.accept()?;
            Ok((Handed::Unix(s), None, 0))
        }
    }
}

/// Calls `event` with an accepted or connected socket as `ARG0`.
fn deliver(
    kernel: &mut Kernel,
    id: WheelId,
    event: EventId,
    socket: Handed,
    ip: Option<IpAddr>,
    port: u16,
) {
    let Some(owner) = kernel.wheel_owner(id) else {
        return;
    };
    let mut args = Args::new();
    socket.push_into(&mut args);
    args.push(ip);
    args.push(port);
    args.push(id);
    kernel.wheel_call(owner, event, args);
}

fn fail(kernel: &mut Kernel, id: WheelId, event: EventId, op: &'static str, e: &io::Error) {
    let Some(owner) = kernel.wheel_owner(id) else {
        return;
    };
    let args = (WheelError::io(op, e), id).into_args();
    kernel.wheel_call(owner, event, args);
}

impl Wheel for SocketFactory {
    fn register(&mut self, registry: &Registry, tokens: [Token; 2]) -> io::Result<()> {
        match &mut self.state {
            State::Connecting(c) => registry.register(c.source(), tokens[0], Interest::WRITABLE),
            State::Listening {
                listener: Listener::Tcp(l),
                ..
            } => registry.register(l, tokens[0], Interest::READABLE),
            State::Listening {
                listener: Listener::Unix(l),
                ..
            } => registry.register(l, tokens[0], Interest::READABLE),
            State::Failed | State::Done => Ok(()),
        }
    }

    fn deregister(&mut self, registry: &Registry) {
        let _ = match &mut self.state {
            State::Connecting(c) => registry.deregister(c.source()),
            State::Listening {
                listener: Listener::Tcp(l),
                ..
            } => registry.deregister(l),
            State::Listening {
                listener: Listener::Unix(l),
                ..
            } => registry.deregister(l),
            State::Failed | State::Done => Ok(()),
        };
    }

    fn note_ready(&mut self, _which: usize, readable: bool, writable: bool) {
        match &mut self.state {
            State::Listening { ready, .. } => *ready |= readable,
            // The connect completed or failed: the next write dispatch tells which.
            State::Connecting(_) if writable || readable => self.connect_ready = true,
            _ => {}
        }
    }

    fn holds_session(&self) -> bool {
        matches!(self.state, State::Connecting(_) | State::Listening { .. })
    }

    fn pending(&self) -> (bool, bool) {
        match &self.state {
            State::Listening { ready, paused, .. } => (*ready && !*paused, false),
            State::Connecting(_) => (false, self.connect_ready),
            _ => (false, false),
        }
    }

    fn dispatch(kernel: &mut Kernel, id: WheelId, mode: Mode) {
        match mode {
            Mode::Read => {
                let Some(w) = kernel.wheel_mut::<SocketFactory>(id) else {
                    return;
                };
                let nodelay = w.nodelay;
                let (success, failure) = (w.success, w.failure);
                let State::Listening {
                    listener, ready, ..
                } = &mut w.state
                else {
                    return;
                };
                match accept_one(listener, nodelay) {
                    Ok((s, ip, port)) => deliver(kernel, id, success, s, ip, port),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => *ready = false,
                    Err(e) if matches!(e.raw_os_error(), Some(ECONNABORTED | EPROTO | EINTR)) => {}
                    Err(e) => fail(kernel, id, failure, "accept", &e),
                }
            }
            Mode::Write => {
                let Some((w, reg)) = kernel.wheel_and_registry::<SocketFactory>(id) else {
                    return;
                };
                w.connect_ready = false;
                let (success, failure) = (w.success, w.failure);
                let State::Connecting(mut c) = std::mem::replace(&mut w.state, State::Done) else {
                    return;
                };
                // The socket leaves the wheel: it must not stay registered under its token.
                let _ = reg.deregister(c.source());
                let done = match c {
                    Connecting::Tcp(s) => connected(s.take_error(), || s.peer_addr())
                        .map(|peer| (Handed::Tcp(s), Some(peer.ip()), peer.port())),
                    Connecting::Udp(s) => connected(s.take_error(), || s.peer_addr())
                        .map(|peer| (Handed::Udp(s), Some(peer.ip()), peer.port())),
                    Connecting::Unix(s) => connected(s.take_error(), || s.peer_addr())
                        .map(|_| (Handed::Unix(s), None, 0)),
                    Connecting::UnixDatagram(s) => connected(s.take_error(), || s.peer_addr())
                        .map(|_| (Handed::UnixDatagram(s), None, 0)),
                };
                match done {
                    Ok((s, ip, port)) => deliver(kernel, id, success, s, ip, port),
                    Err(e) => fail(kernel, id, failure, "connect", &e),
                }
            }
        }
    }
}

/// The outcome of a connect, from the socket's pending error and its peer's address
/// (POE's `SO_ERROR` and `getpeername`).
fn connected<A>(
    pending: io::Result<Option<io::Error>>,
    peer: impl FnOnce() -> io::Result<A>,
) -> io::Result<A> {
    match pending {
        Ok(Some(e)) | Err(e) => Err(e),
        Ok(None) => peer(),
    }
}

/// Accepts connections on a listening socket made elsewhere (POE's
/// `POE::Wheel::ListenAccept`).
///
/// `AcceptEvent`: `ARG0` = the accepted stream (`mio::net::TcpStream` or
/// `mio::net::UnixStream`), `ARG1` = peer address (`Option<IpAddr>`), `ARG2` = peer port,
/// `ARG3` = wheel id. `ErrorEvent`: `ARG0` = the [`WheelError`] (operation "accept"),
/// `ARG1` = wheel id.
pub struct ListenAccept {
    listener: Listener,
    ready: bool,
    paused: bool,
    accept: EventId,
    error: Option<EventId>,
}

impl std::fmt::Debug for ListenAccept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenAccept")
            .field("paused", &self.paused)
            .finish_non_exhaustive()
    }
}

impl ListenAccept {
    /// Accepts on a TCP listener (made non-blocking here).
    pub fn tcp(listener: std::net::TcpListener, accept_event: &str) -> io::Result<ListenAccept> {
        listener.set_nonblocking(true)?;
        Ok(Self::with(
            Listener::Tcp(TcpListener::from_std(listener)),
            accept_event,
        ))
    }

    /// Accepts on a UNIX listener (made non-blocking here).
    pub fn unix(
        listener: std::os::unix::net::UnixListener,
        accept_event: &str,
    ) -> io::Result<ListenAccept> {
        listener.set_nonblocking(true)?;
        Ok(Self::with(
            Listener::Unix(UnixListener::from_std(listener)),
            accept_event,
        ))
    }

    fn with(listener: Listener, accept: &str) -> ListenAccept {
        ListenAccept {
            listener,
            ready: false,
            paused: false,
            accept: EventId::of(accept),
            error: None,
        }
    }

    /// `ErrorEvent`: `ARG0` is the [`WheelError`] (operation `"accept"`), `ARG1` the
    /// [`WheelId`].
    pub fn error_event(mut self, e: &str) -> Self {
        self.error = Some(EventId::of(e));
        self
    }

    /// Puts the wheel into the kernel, owned by the active session.
    pub fn build(self, kernel: &mut Kernel) -> Result<WheelHandle> {
        kernel.wheel_insert(self)
    }

    /// Renames the events (POE's `event`); `None` leaves one as it is.
    pub fn event(&mut self, accept: Option<&str>, error: Option<&str>) {
        if let Some(a) = accept {
            self.accept = EventId::of(a);
        }
        if let Some(e) = error {
            self.error = Some(EventId::of(e));
        }
    }

    /// Stops accepting (POE's `pause_accept`).
    pub fn pause_accept(&mut self) {
        self.paused = true;
    }

    /// Accepts again (POE's `resume_accept`).
    pub fn resume_accept(&mut self) {
        self.paused = false;
    }
}

impl Wheel for ListenAccept {
    fn register(&mut self, registry: &Registry, tokens: [Token; 2]) -> io::Result<()> {
        match &mut self.listener {
            Listener::Tcp(l) => registry.register(l, tokens[0], Interest::READABLE),
            Listener::Unix(l) => registry.register(l, tokens[0], Interest::READABLE),
        }
    }

    fn deregister(&mut self, registry: &Registry) {
        let _ = match &mut self.listener {
            Listener::Tcp(l) => registry.deregister(l),
            Listener::Unix(l) => registry.deregister(l),
        };
    }

    fn note_ready(&mut self, _which: usize, readable: bool, _writable: bool) {
        self.ready |= readable;
    }

    fn pending(&self) -> (bool, bool) {
        (self.ready && !self.paused, false)
    }

    fn dispatch(kernel: &mut Kernel, id: WheelId, mode: Mode) {
        if mode != Mode::Read {
            return;
        }
        let Some(w) = kernel.wheel_mut::<ListenAccept>(id) else {
            return;
        };
        let (accept, error) = (w.accept, w.error);
        match accept_one(&w.listener, true) {
            Ok((s, ip, port)) => deliver(kernel, id, accept, s, ip, port),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => w.ready = false,
            Err(e) if matches!(e.raw_os_error(), Some(ECONNABORTED | EPROTO | EINTR)) => {}
            Err(e) => {
                if let Some(ev) = error {
                    fail(kernel, id, ev, "accept", &e);
                }
            }
        }
    }
}
