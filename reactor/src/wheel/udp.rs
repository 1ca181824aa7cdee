//! `Udp`: a UDP socket's datagrams as events, and datagrams sent from a queue (CPAN's
//! `POE::Wheel::UDP`).
//!
//! POE itself has no datagram wheel: its programs take the socket `SocketFactory` made with
//! `SocketProtocol => 'udp'`, watch it with `select_read` and call `recv` and `send`, which
//! works here too ([`Kernel::select_read`] on a `mio::net::UdpSocket`). This wheel does that
//! work: one event per datagram, with the payload and the sender's address, and output
//! that waits in a bounded queue while the socket's send buffer is full.

use super::{Wheel, WheelError, WheelHandle, WheelId};
use crate::errno::{ECONNREFUSED, ECONNRESET, EHOSTUNREACH, ENETUNREACH};
use crate::error::{Error, Result};
use crate::value::IntoArgs;
use crate::{EventId, Kernel, Mode};
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

/// The events a [`Udp`] wheel emits, to rename them with [`Udp::event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpEvent {
    /// `InputEvent`: one datagram arrived.
    Input = 0,
    /// `ErrorEvent`: a `recv` or `send` failed.
    Error = 1,
    /// `FlushedEvent`: the output queue became empty.
    Flushed = 2,
}

/// A datagram wheel on a UDP socket (CPAN's `POE::Wheel::UDP`): every datagram that
/// arrives becomes an `InputEvent`, and [`put`](Udp::put) queues datagrams to send.
///
/// - `InputEvent`: `ARG0` = the payload (`Vec<u8>`), `ARG1` = the sender's address
///   (`std::net::SocketAddr`), `ARG2` = wheel id. (POE::Wheel::UDP passes the wheel id
///   first and a hash `{ payload, addr, port }`.)
/// - `ErrorEvent`: `ARG0` = the [`WheelError`] (operation `"recv"` or `"send"`), `ARG1` =
///   wheel id. A failed send drops that datagram; the wheel goes on, as UDP does. An ICMP
///   answer to an earlier datagram (`ECONNREFUSED`, `EHOSTUNREACH`, ...) is reported by
///   the next `recv` or `send` of a connected socket.
/// - `FlushedEvent`: `ARG0` = wheel id, when the output queue becomes empty.
///
/// Datagrams are read up to 64 KiB (the largest a UDP datagram can be), a few per
/// timeslice; queued datagrams are sent when the poll after the `put` reports the socket
/// writable, as [`ReadWrite`](super::ReadWrite) writes. The queue holds at most
/// [`max_queued`](UdpBuilder::max_queued) octets (default [`DEFAULT_MAX_QUEUED`]): a `put`
/// past that is refused with [`QueueFull`], which hands the datagram back.
///
/// ```
/// use mio::net::UdpSocket;
/// use reactor::wheel::{Udp, UdpEvent};
/// use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle, WheelId};
/// use std::net::SocketAddr;
///
/// let mut kernel = Kernel::new()?;
/// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// let to = peer.local_addr()?;
/// kernel.create(
///     Session::new(None::<WheelHandle>)
///         .on("_start", move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
///             let socket = UdpSocket::bind("127.0.0.1:0".parse()?)?;
///             let w = Udp::builder(socket).input_event("got_datagram").build(ctx)?;
///             ctx.wheel_mut::<Udp>(w.id()).ok_or("no wheel")?.put("ping", to)?;
///             *ctx.heap() = Some(w);
///             Ok(())
///         })
///         .on("got_datagram", |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
///             assert_eq!(ctx.arg::<Vec<u8>>(0)?, b"pong");
///             let _from = *ctx.arg::<SocketAddr>(1)?;
///             *ctx.heap() = None; // drop the wheel: the session ends
///             Ok(())
///         }),
/// )?;
/// // The peer answers from a thread of its own.
/// let answer = std::thread::spawn(move || -> std::io::Result<()> {
///     let mut buf = [0; 16];
///     let (n, from) = peer.recv_from(&mut buf)?;
///     assert_eq!(&buf[..n], b"ping");
///     peer.send_to(b"pong", from).map(drop)
/// });
/// kernel.run()?;
/// answer.join().expect("the peer")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Udp {
    socket: UdpSocket,
    events: [Option<EventId>; 3],
    out: VecDeque<(Vec<u8>, Option<SocketAddr>)>,
    out_octets: usize,
    max_queued: usize,
    read_ready: bool,
    write_ready: bool,
    /// Output was queued when the last poll returned (see [`Wheel::arm`]).
    write_armed: bool,
    paused: bool,
    /// The wheel id as an event argument, made once.
    id_arg: Option<crate::value::Arg>,
}

/// How many octets of datagrams a [`Udp`] wheel queues by default: 1 MiB.
pub const DEFAULT_MAX_QUEUED: usize = 1024 * 1024;

/// The largest datagram read: the largest a UDP datagram can carry.
const MAX_DATAGRAM: usize = 65536;

/// Datagrams read in one dispatch, at most: the wheel yields to the others between
/// batches.
const READS_PER_DISPATCH: usize = 16;

/// Configures a [`Udp`] wheel.
pub struct UdpBuilder {
    socket: UdpSocket,
    events: [Option<EventId>; 3],
    max_queued: usize,
}

impl fmt::Debug for UdpBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpBuilder")
            .field("socket", &self.socket)
            .field("max_queued", &self.max_queued)
            .finish_non_exhaustive()
    }
}

/// A datagram [`Udp::put`] refused because the output queue is full; it is handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueFull {
    /// The datagram that was not queued.
    pub payload: Vec<u8>,
    /// Its destination (`None` for [`Udp::put_connected`]).
    pub addr: Option<SocketAddr>,
    /// The octets waiting in the queue.
    pub queued: usize,
}

impl fmt::Display for QueueFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "datagram of {} octets refused: {} octets already wait to be sent",
            self.payload.len(),
            self.queued
        )
    }
}

impl std::error::Error for QueueFull {}

impl Udp {
    /// A wheel on `socket`, bound (and perhaps connected): the socket a
    /// [`SocketFactory`](super::SocketFactory) with [`Protocol::Udp`](super::Protocol::Udp)
    /// hands over, or one made with `mio::net::UdpSocket::bind`.
    pub fn builder(socket: UdpSocket) -> UdpBuilder {
        UdpBuilder {
            socket,
            events: [None; 3],
            max_queued: DEFAULT_MAX_QUEUED,
        }
    }

    /// Queues a datagram for `addr`. It is sent when the socket is writable; a failure is
    /// an `ErrorEvent`.
    pub fn put(
        &mut self,
        payload: impl Into<Vec<u8>>,
        addr: SocketAddr,
    ) -> std::result::Result<(), QueueFull> {
        self.queue(payload.into(), Some(addr))
    }

    /// Queues a datagram for the peer of a connected socket (`send` rather than
    /// `send_to`). On a socket that is not connected, the send fails with
    /// `EDESTADDRREQ`.
    pub fn put_connected(
        &mut self,
        payload: impl Into<Vec<u8>>,
    ) -> std::result::Result<(), QueueFull> {
        self.queue(payload.into(), None)
    }

    fn queue(
        &mut self,
        payload: Vec<u8>,
        addr: Option<SocketAddr>,
    ) -> std::result::Result<(), QueueFull> {
        if self.out_octets + payload.len() > self.max_queued {
            return Err(QueueFull {
                payload,
                addr,
                queued: self.out_octets,
            });
        }
        self.out_octets += payload.len();
        self.out.push_back((payload, addr));
        Ok(())
    }

    /// Stops reading (POE's `pause_input`): datagrams wait in the socket, and past its
    /// receive buffer the system drops them.
    pub fn pause_input(&mut self) {
        self.paused = true;
    }

    /// Reads again (POE's `resume_input`).
    pub fn resume_input(&mut self) {
        self.paused = false;
    }

    /// Whether input is paused.
    pub fn is_input_paused(&self) -> bool {
        self.paused
    }

    /// Octets of datagrams waiting to be sent (as ReadWrite's `driver_out_octets`).
    #[doc(alias = "get_driver_out_octets")]
    pub fn driver_out_octets(&self) -> usize {
        self.out_octets
    }

    /// Datagrams waiting to be sent (as ReadWrite's `driver_out_messages`).
    #[doc(alias = "get_driver_out_messages")]
    pub fn driver_out_messages(&self) -> usize {
        self.out.len()
    }

    /// Renames an event, or with `None` stops emitting it (POE's `event`). Without an
    /// input event nothing is read.
    pub fn event(&mut self, which: UdpEvent, name: Option<&str>) {
        self.events[which as usize] = name.map(EventId::of);
    }

    /// The socket, e.g. for its `local_addr` or socket options.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The socket's own address (`getsockname`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Takes the socket back out of a wheel taken from the kernel with
    /// [`Kernel::wheel_take`]; queued datagrams are dropped.
    pub fn into_socket(self) -> UdpSocket {
        self.socket
    }

    fn id_arg(&mut self, id: WheelId) -> crate::value::Arg {
        Rc::clone(
            self.id_arg
                .get_or_insert_with(|| Rc::new(id) as crate::value::Arg),
        )
    }

    fn read_dispatch(kernel: &mut Kernel, id: WheelId) {
        let Some((at, owner)) = kernel.wheel_locate(id) else {
            return;
        };
        let mut shared = std::mem::take(kernel.wheel_read_buffer());
        if shared.len() < MAX_DATAGRAM {
            shared.resize(MAX_DATAGRAM, 0);
        }
        for _ in 0..READS_PER_DISPATCH {
            // A handler may drop the wheel, pause it or rename its events: look again.
            let Some(w) = kernel.wheel_at::<Udp>(at) else {
                break;
            };
            let Some(input) = w.events[UdpEvent::Input as usize] else {
                break;
            };
            if !w.read_ready || w.paused {
                break;
            }
            match w.socket.recv_from(&mut shared[..MAX_DATAGRAM]) {
                Ok((n, from)) => {
                    let id_arg = w.id_arg(id);
                    let payload = shared[..n].to_vec();
                    let args = kernel.pooled_args([Rc::new(payload), Rc::new(from), id_arg]);
                    kernel.wheel_call(owner, input, args);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    w.read_ready = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // An ICMP answer to an earlier datagram is consumed by the call that
                    // reports it: read on. Any other error waits for the next edge.
                    if !is_icmp(&e) {
                        w.read_ready = false;
                    }
                    let ev = w.events[UdpEvent::Error as usize];
                    if let Some(ev) = ev {
                        kernel.wheel_call(owner, ev, (WheelError::io("recv", &e), id).into_args());
                    }
                }
            }
        }
        *kernel.wheel_read_buffer() = shared;
    }

    fn write_dispatch(kernel: &mut Kernel, id: WheelId) {
        let Some((at, owner)) = kernel.wheel_locate(id) else {
            return;
        };
        let Some(w) = kernel.wheel_at::<Udp>(at) else {
            return;
        };
        if !w.write_armed || w.out.is_empty() {
            return;
        }
        w.write_armed = false;
        let mut errors = Vec::new();
        while let Some((payload, addr)) = w.out.front() {
            let r = match addr {
                Some(a) => w.socket.send_to(payload, *a),
                None => w.socket.send(payload),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    w.write_ready = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => errors.push(WheelError::io("send", &e)),
                Ok(_) => {}
            }
            if let Some((payload, _)) = w.out.pop_front() {
                w.out_octets -= payload.len();
            }
        }
        let emptied = w.out.is_empty();
        let (error_ev, flushed_ev) = (
            w.events[UdpEvent::Error as usize],
            w.events[UdpEvent::Flushed as usize],
        );
        let id_arg = w.id_arg(id);
        if let Some(ev) = error_ev {
            for e in errors {
                kernel.wheel_call(owner, ev, (e, id).into_args());
            }
        }
        if let (true, Some(ev)) = (emptied, flushed_ev) {
            let args = kernel.pooled_args([id_arg]);
            kernel.wheel_call(owner, ev, args);
        }
    }
}

/// Whether `e` reports an ICMP answer to an earlier datagram.
fn is_icmp(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(ECONNREFUSED | ECONNRESET | EHOSTUNREACH | ENETUNREACH)
    )
}

impl UdpBuilder {
    /// Names an event (`InputEvent => ..`, ...). Without an input event nothing is read.
    pub fn event(mut self, which: UdpEvent, name: &str) -> Self {
        self.events[which as usize] = Some(EventId::of(name));
        self
    }
    /// `InputEvent`, one per datagram: `ARG0` is the payload (`Vec<u8>`), `ARG1` the
    /// sender (`std::net::SocketAddr`), `ARG2` the [`WheelId`].
    pub fn input_event(self, name: &str) -> Self {
        self.event(UdpEvent::Input, name)
    }
    /// `ErrorEvent`: `ARG0` is the [`WheelError`] (operation `"recv"` or `"send"`), `ARG1`
    /// the [`WheelId`].
    pub fn error_event(self, name: &str) -> Self {
        self.event(UdpEvent::Error, name)
    }
    /// `FlushedEvent`: `ARG0` is the [`WheelId`]; the output queue became empty.
    pub fn flushed_event(self, name: &str) -> Self {
        self.event(UdpEvent::Flushed, name)
    }
    /// The most octets of datagrams the output queue holds (default
    /// [`DEFAULT_MAX_QUEUED`]); a `put` past it is refused with [`QueueFull`].
    pub fn max_queued(mut self, octets: usize) -> Self {
        self.max_queued = octets;
        self
    }

    /// Puts the wheel into the kernel, owned by the active session. It keeps the session
    /// alive until it is dropped.
    pub fn build(self, kernel: &mut Kernel) -> Result<WheelHandle> {
        if self.max_queued == 0 {
            return Err(Error::InvalidArgument("max_queued must be greater than 0"));
        }
        kernel.wheel_insert(Udp {
            socket: self.socket,
            events: self.events,
            out: VecDeque::new(),
            out_octets: 0,
            max_queued: self.max_queued,
            read_ready: false,
            write_ready: false,
            write_armed: false,
            paused: false,
            id_arg: None,
        })
    }
}

impl Wheel for Udp {
    fn register(&mut self, registry: &Registry, tokens: [Token; 2]) -> io::Result<()> {
        registry.register(
            &mut self.socket,
            tokens[0],
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.socket);
    }

    fn note_ready(&mut self, _which: usize, readable: bool, writable: bool) {
        self.read_ready |= readable;
        self.write_ready |= writable;
    }

    fn pending(&self) -> (bool, bool) {
        let reading =
            self.read_ready && !self.paused && self.events[UdpEvent::Input as usize].is_some();
        (reading, self.write_ready && !self.out.is_empty())
    }

    fn arm(&mut self) {
        self.write_armed = !self.out.is_empty();
    }

    fn dispatch(kernel: &mut Kernel, id: WheelId, mode: Mode) {
        match mode {
            Mode::Read => Self::read_dispatch(kernel, id),
            Mode::Write => Self::write_dispatch(kernel, id),
        }
    }
}

impl fmt::Debug for Udp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Udp")
            .field("local_addr", &self.socket.local_addr().ok())
            .field("queued", &self.out.len())
            .field("paused", &self.paused)
            .finish_non_exhaustive()
    }
}
