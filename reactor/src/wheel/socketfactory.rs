//! `SocketFactory` and `ListenAccept`: making connections and accepting them (POE's
//! `POE::Wheel::SocketFactory` and `POE::Wheel::ListenAccept`).

use super::{Wheel, WheelError, WheelHandle, WheelId};
use crate::errno::{ECONNABORTED, EINPROGRESS, EINTR, EPROTO};
use crate::error::{Error, Result};
use crate::value::IntoArgs;
use crate::Mode;
use crate::{EventId, Kernel};
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use socket2::{Domain as SockDomain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// The address family of a [`SocketFactory`] (POE's `SocketDomain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// IPv4 (`AF_INET`, the default).
    Inet,
    /// IPv6 (`AF_INET6`).
    Inet6,
    /// UNIX stream sockets (`AF_UNIX`).
    Unix,
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
}

/// Makes a client connection or a listening socket, and reports each result as
/// `SuccessEvent` or `FailureEvent` to the session that built it.
///
/// - `SuccessEvent`, connecting: `ARG0` = the connected, non-blocking stream
///   (`mio::net::TcpStream`, or `mio::net::UnixStream` for [`Domain::Unix`]; take it with
///   `ctx.take_arg`), `ARG1` = peer address (`Option<IpAddr>`, `None` for UNIX), `ARG2` =
///   peer port (`u16`), `ARG3` = wheel id.
/// - `SuccessEvent`, listening: the same, once per accepted connection.
/// - `FailureEvent`: `ARG0` = the [`WheelError`] (operation `"connect"`, `"bind"`,
///   `"listen"`, `"accept"`, `"socket"`, `"resolve"`...), `ARG1` = wheel id.
///   Failures while building are delivered like POE's, as an event after `build` returns.
///
/// TCP sockets it makes have `TCP_NODELAY` set unless [`nodelay`](SocketFactoryBuilder::nodelay)
/// says otherwise, so small writes never wait on Nagle.
pub struct SocketFactory {
    state: State,
    success: EventId,
    failure: EventId,
    nodelay: bool,
    local: Option<SocketAddr>,
    connect_ready: bool,
}

/// Configures a [`SocketFactory`] (POE's constructor parameters).
pub struct SocketFactoryBuilder {
    domain: Domain,
    remote: Option<(String, u16)>,
    path: Option<PathBuf>,
    bind_address: Option<String>,
    bind_port: u16,
    reuse: bool,
    reuse_port: bool,
    listen_queue: i32,
    nodelay: bool,
    success: Option<EventId>,
    failure: Option<EventId>,
}

impl SocketFactory {
    /// A factory that listens (no `RemoteAddress`): bind with
    /// [`bind_address`](SocketFactoryBuilder::bind_address) and
    /// [`bind_port`](SocketFactoryBuilder::bind_port).
    pub fn listen() -> SocketFactoryBuilder {
        SocketFactoryBuilder {
            domain: Domain::Inet,
            remote: None,
            path: None,
            bind_address: None,
            bind_port: 0,
            reuse: false,
            reuse_port: false,
            listen_queue: 1024,
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

    /// A factory for a UNIX stream socket at `path`: listening, or connecting with
    /// [`SocketFactoryBuilder::unix_connect`].
    pub fn unix(path: impl Into<PathBuf>) -> SocketFactoryBuilder {
        let mut b = Self::listen();
        b.domain = Domain::Unix;
        b.path = Some(path.into());
        b
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
    /// The listen backlog (POE's `ListenQueue`).
    pub fn listen_queue(mut self, n: i32) -> Self {
        self.listen_queue = n;
        self
    }
    /// `TCP_NODELAY` on the sockets made (default on).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }
    /// `SuccessEvent` (required).
    pub fn success_event(mut self, e: &str) -> Self {
        self.success = Some(EventId::of(e));
        self
    }
    /// `FailureEvent` (required).
    pub fn failure_event(mut self, e: &str) -> Self {
        self.failure = Some(EventId::of(e));
        self
    }

    /// Builds the socket and puts the wheel into the kernel. Only a missing event is an
    /// error here; socket failures arrive as `FailureEvent`.
    pub fn build(self, kernel: &mut Kernel) -> Result<WheelHandle> {
        let success = self
            .success
            .ok_or(Error::InvalidArgument("SuccessEvent required"))?;
        let failure = self
            .failure
            .ok_or(Error::InvalidArgument("FailureEvent required"))?;
        let nodelay = self.nodelay;
        let (state, local, fail) = match self.make() {
            Ok((state, local)) => (state, local, None),
            Err((op, e)) => (State::Failed, None, Some((op, e))),
        };
        let handle = kernel.wheel_insert(SocketFactory {
            state,
            success,
            failure,
            nodelay,
            local,
            connect_ready: false,
        })?;
        if let Some((op, e)) = fail {
            let id = handle.id();
            let args = (WheelError::io(op, &e), id);
            kernel.yield_(failure.name().as_str(), args)?;
        }
        Ok(handle)
    }

    fn make(&self) -> std::result::Result<(State, Option<SocketAddr>), (&'static str, io::Error)> {
        if self.domain == Domain::Unix {
            let path = self
                .path
                .clone()
                .ok_or(("socket", io::Error::from_raw_os_error(22)))?;
            return if self.remote.is_some() {
                let s = UnixStream::connect(&path).map_err(|e| ("connect", e))?;
                Ok((State::Connecting(Connecting::Unix(s)), None))
            } else {
                let l = UnixListener::bind(&path).map_err(|e| ("bind", e))?;
                Ok((
                    State::Listening {
                        listener: Listener::Unix(l),
                        ready: false,
                        paused: false,
                    },
                    None,
                ))
            };
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
        let sock =
            Socket::new(domain, Type::STREAM, Some(Protocol::TCP)).map_err(|e| ("socket", e))?;
        sock.set_nonblocking(true).map_err(|e| ("socket", e))?;
        if self.reuse {
            sock.set_reuse_address(true)
                .map_err(|e| ("setsockopt", e))?;
        }
        if self.reuse_port {
            sock.set_reuse_port(true).map_err(|e| ("setsockopt", e))?;
        }
        if self.bind_address.is_some() || self.bind_port != 0 || remote.is_none() {
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
        match remote {
            Some(addr) => {
                if self.nodelay {
                    sock.set_nodelay(true).map_err(|e| ("setsockopt", e))?;
                }
                match sock.connect(&SockAddr::from(addr)) {
                    Ok(()) => {}
                    Err(e)
                        if e.raw_os_error() == Some(EINPROGRESS)
                            || e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(("connect", e)),
                }
                let local = sock.local_addr().ok().and_then(|a| a.as_socket());
                let std: std::net::TcpStream = sock.into();
                Ok((
                    State::Connecting(Connecting::Tcp(TcpStream::from_std(std))),
                    local,
                ))
            }
            None => {
                sock.listen(self.listen_queue).map_err(|e| ("listen", e))?;
                let local = sock.local_addr().ok().and_then(|a| a.as_socket());
                let std: std::net::TcpListener = sock.into();
                Ok((
                    State::Listening {
                        listener: Listener::Tcp(TcpListener::from_std(std)),
                        ready: false,
                        paused: false,
                    },
                    local,
                ))
            }
        }
    }
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

fn accept_one(
    l: &Listener,
    nodelay: bool,
) -> io::Result<(Box<dyn std::any::Any>, Option<IpAddr>, u16)> {
    match l {
        Listener::Tcp(l) => {
            let (s, peer) = l.accept()?;
            if nodelay {
                let _ = s.set_nodelay(true);
            }
            Ok((Box::new(s), Some(peer.ip()), peer.port()))
        }
        Listener::Unix(l) => {
            let (s, _) = l.accept()?;
            Ok((Box::new(s), None, 0))
        }
    }
}

/// Calls `event` with an accepted or connected stream as `ARG0`.
fn deliver(
    kernel: &mut Kernel,
    id: WheelId,
    event: EventId,
    stream: Box<dyn std::any::Any>,
    ip: Option<IpAddr>,
    port: u16,
) {
    let Some(owner) = kernel.wheel_owner(id) else {
        return;
    };
    let mut args = crate::value::Args::new();
    match stream.downcast::<TcpStream>() {
        Ok(s) => args.push(*s),
        Err(other) => {
            if let Ok(s) = other.downcast::<UnixStream>() {
                args.push(*s)
            }
        }
    }
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
            State::Connecting(Connecting::Tcp(s)) => {
                registry.register(s, tokens[0], Interest::WRITABLE)
            }
            State::Connecting(Connecting::Unix(s)) => {
                registry.register(s, tokens[0], Interest::WRITABLE)
            }
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
            State::Connecting(Connecting::Tcp(s)) => registry.deregister(s),
            State::Connecting(Connecting::Unix(s)) => registry.deregister(s),
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
                // The stream leaves the wheel: it must not stay registered under its token.
                let _ = match &mut c {
                    Connecting::Tcp(s) => reg.deregister(s),
                    Connecting::Unix(s) => reg.deregister(s),
                };
                match c {
                    Connecting::Tcp(s) => match s.take_error() {
                        Ok(Some(e)) | Err(e) => fail(kernel, id, failure, "connect", &e),
                        Ok(None) => match s.peer_addr() {
                            Ok(peer) => deliver(
                                kernel,
                                id,
                                success,
                                Box::new(s),
                                Some(peer.ip()),
                                peer.port(),
                            ),
                            Err(e) => fail(kernel, id, failure, "connect", &e),
                        },
                    },
                    Connecting::Unix(s) => match s.take_error() {
                        Ok(Some(e)) | Err(e) => fail(kernel, id, failure, "connect", &e),
                        Ok(None) => deliver(kernel, id, success, Box::new(s), None, 0),
                    },
                }
            }
        }
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

    /// `ErrorEvent`.
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
