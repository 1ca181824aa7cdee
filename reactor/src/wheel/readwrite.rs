//! `ReadWrite`: buffered, filtered I/O on a stream (POE's `POE::Wheel::ReadWrite` with
//! `POE::Driver::SysRW` built in).

use super::filter_slot::FilterSlot;
use super::out_queue::OutQueue;
use super::{Parking, Readiness, Wheel, WheelError, WheelHandle, WheelId, WriteOut, WriteVisit};
use crate::errno::EPERM;
use crate::error::{Error, Result};
use crate::filter::{Filter, Line};
use crate::kernel::wheels::{keep_spare_buffer, spare_buffer_for};
use crate::value::IntoArgs;
use crate::EventId;
use crate::Kernel;
use crate::Mode;
use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::any::Any;
use std::io::{self, IoSlice, Read, Write};
use std::ops::ControlFlow;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Spare capacity of the copy of each read: room for a line terminator (CRLF) when the
/// record goes back out.
const READ_SLACK: usize = 8;

/// Queues a chunk of filtered output (empty ones are dropped) and counts its octets.
#[inline]
fn queue_chunk(out: &mut OutQueue, octets: &mut usize, chunk: Vec<u8>) {
    *octets += chunk.len();
    out.push_back(chunk);
}

/// A readable, pollable handle (POE's `InputHandle`): any `Read + mio Source + AsFd`.
pub trait ReadHandle: 'static {
    /// Reads into `buf`.
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// The handle as a mio source.
    fn read_source(&mut self) -> &mut dyn Source;
    /// The file descriptor.
    fn read_fd(&self) -> BorrowedFd<'_>;
}

impl<T: Read + Source + AsFd + 'static> ReadHandle for T {
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(buf)
    }
    fn read_source(&mut self) -> &mut dyn Source {
        self
    }
    fn read_fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

/// A writable, pollable handle (POE's `OutputHandle`): any `Write + mio Source + AsFd`.
pub trait WriteHandle: 'static {
    /// Writes some of `bufs`.
    fn write_some(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Writes some of `buf` (a plain `write`/`send`, cheaper than a one-slice `writev`).
    fn write_one(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Pushes out what the handle itself still buffers (`Write::flush`), once the wheel's
    /// own buffer is empty. `Err(WouldBlock)` keeps the wheel waiting for writability and
    /// holds back `FlushedEvent`; a plain socket has nothing to push (a TLS stream may).
    fn flush_out(&mut self) -> io::Result<()>;
    /// The handle as a mio source.
    fn write_source(&mut self) -> &mut dyn Source;
    /// The file descriptor.
    fn write_fd(&self) -> BorrowedFd<'_>;
}

impl<T: Write + Source + AsFd + 'static> WriteHandle for T {
    fn write_some(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored(bufs)
    }
    fn write_one(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write(buf)
    }
    fn flush_out(&mut self) -> io::Result<()> {
        self.flush()
    }
    fn write_source(&mut self) -> &mut dyn Source {
        self
    }
    fn write_fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

/// A handle for both directions (POE's `Handle`).
trait DuplexHandle: ReadHandle + WriteHandle {
    fn reader(&mut self) -> &mut dyn ReadHandle;
    fn writer(&mut self) -> &mut dyn WriteHandle;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: ReadHandle + WriteHandle> DuplexHandle for T {
    fn reader(&mut self) -> &mut dyn ReadHandle {
        self
    }
    fn writer(&mut self) -> &mut dyn WriteHandle {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// A TCP stream as a wheel keeps it: the standard library's stream, registered with the
/// poller by descriptor, so its reads and writes are the system calls' own wrappers with
/// no mio layer around them. It goes back to a mio stream when the wheel hands it back
/// ([`ReadWrite::into_handle`]).
struct Tcp(std::net::TcpStream);

impl Read for Tcp {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf)
    }
}

impl Write for Tcp {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.0).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&self.0).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Tcp {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Source for Tcp {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).register(registry, token, interests)
    }
    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).reregister(registry, token, interests)
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).deregister(registry)
    }
}

/// The wheel's handles. A TCP stream, what most wheels hold, is kept inline: no
/// allocation of its own, and its reads and writes are direct calls.
enum Handles {
    Tcp(Tcp),
    Duplex(Box<dyn DuplexHandle>),
    Split(Box<(Box<dyn ReadHandle>, Box<dyn WriteHandle>)>),
}

impl Handles {
    /// One handle for both directions, kept inline when it is a TCP stream.
    fn duplex<H: ReadHandle + WriteHandle>(handle: H) -> Handles {
        let mut slot = Some(handle);
        if let Some(tcp) = (&mut slot as &mut dyn Any).downcast_mut::<Option<mio::net::TcpStream>>()
        {
            if let Some(tcp) = tcp.take() {
                return Handles::Tcp(Tcp(tcp.into()));
            }
        }
        match slot {
            Some(h) => Handles::Duplex(Box::new(h)),
            None => unreachable!("the handle was taken only if it is a TCP stream"),
        }
    }

    fn reader(&mut self) -> &mut dyn ReadHandle {
        match self {
            Handles::Tcp(t) => t,
            Handles::Duplex(h) => h.reader(),
            Handles::Split(rw) => rw.0.as_mut(),
        }
    }
    fn writer(&mut self) -> &mut dyn WriteHandle {
        match self {
            Handles::Tcp(t) => t,
            Handles::Duplex(h) => h.writer(),
            Handles::Split(rw) => rw.1.as_mut(),
        }
    }

    /// One read: a direct call on a TCP stream, through the handle's trait otherwise.
    #[inline]
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Handles::Tcp(t) => t.read(buf),
            other => other.reader().read_some(buf),
        }
    }

    /// One plain write, as [`Handles::read_some`] reads.
    #[inline]
    fn write_one(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Handles::Tcp(t) => t.write(buf),
            other => other.writer().write_one(buf),
        }
    }

    /// [`WriteHandle::flush_out`]; a TCP stream buffers nothing of its own.
    #[inline]
    fn flush_out(&mut self) -> io::Result<()> {
        match self {
            Handles::Tcp(_) => Ok(()),
            other => other.writer().flush_out(),
        }
    }
}

/// What one parse of a `Line` input filter gave ([`ReadWrite::parse_line`]).
enum LineParse {
    /// A record, and whether the filter is drained (nothing left to parse).
    Record(Vec<u8>, bool),
    /// No whole record is buffered.
    Done,
    /// The filter refused its input.
    Failed(crate::filter::FilterError),
}

/// What one write of a wheel's armed output did ([`ReadWrite::write_armed_out`]).
enum Wrote {
    /// The one chunk waiting went out whole (the usual write): nothing is left to write.
    All,
    /// What the handle took went out; output may still wait.
    Some,
    /// The failure that closed the output (an `io::Error`, a pointer, until it is
    /// reported).
    Failed(io::Error),
}

/// The names of a ReadWrite wheel's events (POE's `InputEvent`, `ErrorEvent`, ...), for
/// [`ReadWrite::event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RwEvent {
    /// `InputEvent`: `ARG0` = one record (`Vec<u8>`), `ARG1` = wheel id.
    Input,
    /// `ErrorEvent`: `ARG0` = the [`WheelError`] (operation "read" or "write";
    /// [`WheelError::is_eof`] at end of file), `ARG1` = wheel id.
    Error,
    /// `FlushedEvent`: `ARG0` = wheel id, whenever the output buffer empties.
    Flushed,
    /// `HighEvent`: `ARG0` = wheel id.
    High,
    /// `LowEvent`: `ARG0` = wheel id.
    Low,
}

/// The wheel's event names, 4 bytes each ([`u32::MAX`]: none).
#[derive(Clone, Copy)]
struct Events([u32; 5]);

impl Events {
    const NONE: Events = Events([u32::MAX; 5]);

    #[inline]
    fn get(&self, which: RwEvent) -> Option<EventId> {
        let v = self.0[which as usize];
        (v != u32::MAX).then_some(EventId(v))
    }

    fn set(&mut self, which: RwEvent, ev: Option<EventId>) {
        self.0[which as usize] = ev.map_or(u32::MAX, |e| e.0);
    }
}

/// Buffered, filtered I/O on a stream, delivering records to the session that built it.
///
/// Built with [`ReadWrite::builder`] (one duplex handle) or [`ReadWrite::split`] (input and
/// output handles). Reach it from a handler with
/// `ctx.wheel_mut::<ReadWrite>(id)` to [`put`](ReadWrite::put) records, pause or resume
/// input, shut down a direction or switch filters.
///
/// # Examples
///
/// A line echo on one connected socket: the session keeps the wheel's handle in its heap
/// (dropping the handle removes the wheel), and each line arrives as `ARG0` of `got_line`.
///
/// ```
/// use mio::net::UnixStream;
/// use reactor::wheel::{ReadWrite, WheelError, WheelHandle};
/// use reactor::{Ctx, HandlerError, Kernel, Session, WheelId};
/// use std::io::{BufRead, BufReader, Write};
///
/// let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
/// ours.set_nonblocking(true)?;
/// // The handler is an `Fn`: it takes the socket out of a cell when it runs.
/// let socket = std::cell::Cell::new(Some(UnixStream::from_std(ours)));
///
/// let mut kernel = Kernel::new()?;
/// kernel.create(
///     Session::new(None::<WheelHandle>)
///         .on("_start", move |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
///             let socket = socket.take().ok_or("started twice")?;
///             let wheel = ReadWrite::builder(socket)
///                 .input_event("got_line") // the default filter: lines
///                 .error_event("got_error")
///                 .build(ctx)?;
///             *ctx.heap() = Some(wheel);
///             Ok(())
///         })
///         .on("got_line", |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
///             let line: Vec<u8> = ctx.take_arg(0)?;
///             let id: WheelId = *ctx.arg(1)?;
///             if let Some(rw) = ctx.wheel_mut::<ReadWrite>(id) {
///                 rw.put_one(line)?;
///             }
///             Ok(())
///         })
///         .on("got_error", |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
///             let error: &WheelError = ctx.arg(0)?;
///             assert!(error.is_eof()); // the peer hung up
///             *ctx.heap() = None; // drop the wheel; the session ends
///             Ok(())
///         }),
/// )?;
/// let peer = std::thread::spawn(move || -> std::io::Result<String> {
///     (&theirs).write_all(b"ping\n")?;
///     let mut answer = String::new();
///     BufReader::new(&theirs).read_line(&mut answer)?;
///     Ok(answer)
/// });
/// kernel.run()?;
/// assert_eq!(peer.join().expect("peer thread")?, "ping\r\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReadWrite {
    handles: Handles,
    /// The input filter, inside the wheel when it is a `Line` or a `Stream`.
    in_filter: FilterSlot,
    /// `None`: the input filter serves output too (POE's `Filter`). Boxed: a separate
    /// output filter is rare.
    out_filter: Option<Box<FilterSlot>>,
    /// Event names, interned (see [`crate::EventName`]): naming an event is a pointer copy.
    events: Events,
    read_ready: bool,
    write_ready: bool,
    /// The poller saw the peer close: read until end-of-file.
    peer_closed: bool,
    /// Reads go on to end-of-file, with no edge to wait for: the peer has closed, or the
    /// poller refused the input (a regular file, always ready). (Output the poller
    /// refuses is just writable from the start.)
    reads_to_eof: bool,
    /// Records may wait in the input filter (after a filter switch).
    parse_pending: bool,
    input_paused: bool,
    /// Input paused because unsent output passed the backpressure mark
    /// ([`ReadWriteBuilder::backpressure`]): (high, low).
    /// (high, low) in octets; high 0: off. (Marks past 4 GiB are taken as 4 GiB.)
    backpressure: (u32, u32),
    pressure_paused: bool,
    input_open: bool,
    output_open: bool,
    /// Input may be read once the handle is ready: open, paused neither by the program
    /// nor by backpressure (while output can drain), and with an input event to deliver
    /// to. One flag for the read pass's tests, set again wherever one of these changes
    /// ([`ReadWrite::regate`]); the output budget is asked at each test.
    read_gate: bool,
    /// The write pass may write this wheel's armed output without the kernel
    /// ([`Wheel::write_visit`]): output open, no one listens for a flush and no marks are
    /// set, so only a failure raises an event. Set again with `read_gate`.
    quiet_out: bool,
    /// The handle reported buffered output of its own (see [`WriteHandle::flush_out`]).
    handle_unflushed: bool,
    out: OutQueue,
    /// Output was queued when the last poll returned, so this timeslice's write pass may
    /// write (POE watches a handle for writing only while output waits, and writes when
    /// the poll reports it writable): see [`Wheel::arm`].
    write_armed: bool,
    out_octets: usize,
    /// The kernel's output budget ([`KernelBuilder::output_budget`](crate::KernelBuilder::output_budget))
    /// and how much of it this wheel's output holds.
    /// Boxed: most kernels have no budget.
    budget: Option<Box<crate::Share>>,
    /// POE's `HighMark` and `LowMark` in octets; 0: not set.
    high_mark: u32,
    low_mark: u32,
    high_state: bool,
    auto_flush: bool,
    /// The handle is probably still registered with the poller (built
    /// [`parked`](ReadWriteBuilder::parked)): try to take the registration over first.
    registered: bool,
    block_size: u32,
}

impl std::fmt::Debug for ReadWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadWrite")
            .field("input_paused", &self.input_paused)
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}

/// Configures a [`ReadWrite`] wheel (POE's constructor parameters).
pub struct ReadWriteBuilder {
    handles: Handles,
    filter: Option<FilterSlot>,
    in_filter: Option<FilterSlot>,
    out_filter: Option<FilterSlot>,
    events: Events,
    high_mark: Option<usize>,
    low_mark: Option<usize>,
    auto_flush: bool,
    block_size: usize,
    backpressure: Option<(usize, usize)>,
    registered: bool,
    parking: Option<Parking>,
}

impl std::fmt::Debug for ReadWriteBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadWriteBuilder")
            .field("high_mark", &self.high_mark)
            .field("low_mark", &self.low_mark)
            .field("auto_flush", &self.auto_flush)
            .field("block_size", &self.block_size)
            .field("backpressure", &self.backpressure)
            .finish_non_exhaustive()
    }
}

const DEFAULT_BLOCK: usize = 65536;

/// An octet count as the wheel keeps it: in 32 bits, larger ones taken as 4 GiB.
fn octets32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl ReadWrite {
    /// A wheel on one handle for both directions (POE's `Handle`).
    pub fn builder<H: ReadHandle + WriteHandle>(handle: H) -> ReadWriteBuilder {
        Self::with_handles(Handles::duplex(handle))
    }

    /// A wheel reading `input` and writing `output` (POE's `InputHandle`/`OutputHandle`),
    /// for instance the read end of one pipe and the write end of another:
    ///
    /// ```
    /// # use reactor::wheel::ReadWrite;
    /// let (to_child_rx, to_child_tx) = reactor::pipe::one_way()?;
    /// let (from_child_rx, from_child_tx) = reactor::pipe::one_way()?;
    /// # let _ = (to_child_rx, from_child_tx);
    /// let builder = ReadWrite::split(from_child_rx, to_child_tx).input_event("got_line");
    /// # let _ = builder;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[doc(alias = "InputHandle")]
    #[doc(alias = "OutputHandle")]
    pub fn split(input: impl ReadHandle, output: impl WriteHandle) -> ReadWriteBuilder {
        Self::with_handles(Handles::Split(Box::new((
            Box::new(input),
            Box::new(output),
        ))))
    }

    fn with_handles(handles: Handles) -> ReadWriteBuilder {
        ReadWriteBuilder {
            handles,
            filter: None,
            in_filter: None,
            out_filter: None,
            events: Events::NONE,
            high_mark: None,
            low_mark: None,
            auto_flush: false,
            block_size: DEFAULT_BLOCK,
            backpressure: None,
            registered: false,
            parking: None,
        }
    }
}

impl ReadWriteBuilder {
    /// The filter for both directions (POE's `Filter`; default `Line`).
    pub fn filter(mut self, f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static) -> Self {
        self.filter = Some(FilterSlot::new(f));
        self
    }
    /// The input filter (POE's `InputFilter`).
    pub fn input_filter(
        mut self,
        f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static,
    ) -> Self {
        self.in_filter = Some(FilterSlot::new(f));
        self
    }
    /// The output filter (POE's `OutputFilter`).
    pub fn output_filter(
        mut self,
        f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static,
    ) -> Self {
        self.out_filter = Some(FilterSlot::new(f));
        self
    }
    /// Names an event (POE's `InputEvent => ..`, `ErrorEvent => ..`, ...). Without an
    /// input event the input is not read at all.
    pub fn event(mut self, which: RwEvent, name: &str) -> Self {
        self.events.set(which, Some(EventId::of(name)));
        self
    }
    /// [`event`](Self::event) with the name already resolved by [`EventId::of`] (which
    /// takes a process-wide lock): a program that builds a wheel per request or per
    /// connection resolves its names once.
    pub fn event_id(mut self, which: RwEvent, event: EventId) -> Self {
        self.events.set(which, Some(event));
        self
    }
    /// `InputEvent`: `ARG0` is one record (`Vec<u8>` with the byte filters; take it with
    /// `ctx.take_arg::<Vec<u8>>(0)`), `ARG1` the [`WheelId`].
    ///
    /// ```
    /// use reactor::wheel::ReadWrite;
    /// use reactor::{Ctx, HandlerError};
    ///
    /// fn got_line(ctx: &mut Ctx<'_, ()>) -> Result<(), HandlerError> {
    ///     let line: Vec<u8> = ctx.take_arg(0)?;
    ///     let wheel: reactor::WheelId = *ctx.arg(1)?;
    ///     if let Some(rw) = ctx.wheel_mut::<ReadWrite>(wheel) {
    ///         rw.put_one(line)?; // echo it
    ///     }
    ///     Ok(())
    /// }
    /// # let _ = got_line;
    /// ```
    pub fn input_event(self, name: &str) -> Self {
        self.event(RwEvent::Input, name)
    }
    /// `ErrorEvent`: `ARG0` is the [`WheelError`](super::WheelError) (operation `"read"` or
    /// `"write"`; end of file is a read error with [`is_eof`](super::WheelError::is_eof)),
    /// `ARG1` the [`WheelId`].
    pub fn error_event(self, name: &str) -> Self {
        self.event(RwEvent::Error, name)
    }
    /// `FlushedEvent`: `ARG0` is the [`WheelId`]; the output buffer has just emptied.
    pub fn flushed_event(self, name: &str) -> Self {
        self.event(RwEvent::Flushed, name)
    }
    /// `HighMark` and `LowMark` (both > 0, low < high), with their events (`HighEvent`,
    /// `LowEvent`: `ARG0` is the [`WheelId`]).
    pub fn watermarks(mut self, high: usize, low: usize) -> Self {
        self.high_mark = Some(high);
        self.low_mark = Some(low);
        self
    }
    /// Stops reading while more than `high` octets of output wait to be written, until
    /// they are down to `low` (0 < low < high). A peer that sends and never reads then
    /// costs at most about `high` octets of output (plus one read's worth of answers), not
    /// everything it ever sent; its further input waits in the socket, and with it the
    /// peer. POE has no counterpart (its `HighMark` only reports); off by default, on in
    /// the TCP components.
    pub fn backpressure(mut self, high: usize, low: usize) -> Self {
        self.backpressure = Some((high, low));
        self
    }

    /// Writes synchronously when a put finds the buffer empty (POE's `AutoFlush`).
    pub fn auto_flush(mut self, on: bool) -> Self {
        self.auto_flush = on;
        self
    }
    /// Bytes per read (POE's `Driver => POE::Driver::SysRW->new(BlockSize => N)`).
    pub fn block_size(mut self, n: usize) -> Self {
        self.block_size = n;
        self
    }

    /// Builds the wheel into the slot a wheel on the same handle left with
    /// [`Kernel::wheel_park`]: it takes over the registration (no system call) and the
    /// readiness reported meanwhile. A stale parking means an ordinary build.
    pub fn parked(mut self, parking: Parking) -> Self {
        self.parking = Some(parking);
        self.registered = true;
        self
    }

    /// Checks the configuration and puts the wheel into the kernel, owned by the active
    /// session.
    pub fn build(self, kernel: &mut Kernel) -> Result<WheelHandle> {
        if self.block_size == 0 {
            return Err(Error::InvalidArgument("BlockSize must be greater than 0"));
        }
        if let Some((high, low)) = self.backpressure {
            if high == 0 || low >= high {
                return Err(Error::InvalidArgument("backpressure needs 0 < low < high"));
            }
        }
        match (self.high_mark, self.low_mark) {
            (Some(h), Some(l)) if h == 0 || l == 0 || l >= h => {
                return Err(Error::InvalidArgument(
                    "Water mark errors: need 0 < LowMark < HighMark",
                ))
            }
            _ => {}
        }
        let (high_ev, low_ev) = (
            self.events.get(RwEvent::High).is_some(),
            self.events.get(RwEvent::Low).is_some(),
        );
        if (high_ev || low_ev) && self.high_mark.is_none() {
            return Err(Error::InvalidArgument(
                "Water mark errors: HighEvent/LowEvent need HighMark and LowMark",
            ));
        }
        // POE: "LowMark and LowEvent parameters require each-other".
        if self.low_mark.is_some() != low_ev {
            return Err(Error::InvalidArgument(
                "Water mark errors: LowMark and LowEvent require each other",
            ));
        }
        let (in_filter, out_filter) = match (self.filter, self.in_filter, self.out_filter) {
            (_, Some(i), Some(o)) => (i, Some(o)),
            (Some(f), None, None) => (f, None),
            (Some(f), Some(i), None) => (i, Some(f)),
            (Some(f), None, Some(o)) => (f, Some(o)),
            (None, Some(i), None) => (i, Some(FilterSlot::Line(Line::new()))),
            (None, None, Some(o)) => (FilterSlot::Line(Line::new()), Some(o)),
            (None, None, None) => (FilterSlot::Line(Line::new()), None),
        };
        let out_filter = out_filter.map(Box::new);
        let mut w = ReadWrite {
            handles: self.handles,
            in_filter,
            out_filter,
            events: self.events,
            read_ready: false,
            write_ready: false,
            peer_closed: false,
            reads_to_eof: false,
            parse_pending: false,
            input_paused: false,
            backpressure: self
                .backpressure
                .map_or((0, 0), |(h, l)| (octets32(h), octets32(l))),
            pressure_paused: false,
            input_open: true,
            output_open: true,
            read_gate: false,
            quiet_out: false,
            handle_unflushed: false,
            out: OutQueue::default(),
            write_armed: false,
            out_octets: 0,
            budget: kernel
                .output_budget()
                .map(|b| Box::new(crate::Share::new(b))),
            high_mark: self.high_mark.map_or(0, octets32),
            low_mark: self.low_mark.map_or(0, octets32),
            high_state: false,
            auto_flush: self.auto_flush,
            registered: self.registered,
            block_size: octets32(self.block_size),
        };
        w.regate();
        match self.parking {
            Some(p) => kernel.wheel_insert_parked(w, p),
            None => kernel.wheel_insert(w),
        }
    }
}

impl ReadWrite {
    /// Filters and queues records for output; they are written when the handle is
    /// writable, in as few write calls as possible. Returns POE's high-water flag: `true`
    /// when a high mark is set and the buffered octets reach it.
    pub fn put<R: Into<Vec<u8>>>(&mut self, records: impl IntoIterator<Item = R>) -> Result<bool> {
        let recs: Vec<Vec<u8>> = records.into_iter().map(Into::into).collect();
        let filter = self
            .out_filter
            .as_deref_mut()
            .unwrap_or(&mut self.in_filter);
        let chunks = filter.as_dyn_mut().put(recs).map_err(Error::Filter)?;
        for c in chunks {
            queue_chunk(&mut self.out, &mut self.out_octets, c);
        }
        Ok(self.after_put())
    }

    /// What follows queueing output: AutoFlush, backpressure, and the high-water flag
    /// `put` returns.
    #[inline]
    fn after_put(&mut self) -> bool {
        if self.auto_flush {
            self.write_ready = true;
        }
        self.sync_budget();
        let (high, _) = self.backpressure;
        if high > 0 && self.out_octets >= high as usize {
            self.pressure_paused = true;
            self.regate();
        }
        if self.high_mark > 0 {
            self.high_state = self.out_octets >= self.high_mark as usize;
            self.high_state
        } else {
            false
        }
    }

    /// Queues one record; see [`put`](ReadWrite::put).
    #[inline]
    pub fn put_one(&mut self, record: impl Into<Vec<u8>>) -> Result<bool> {
        let filter = self
            .out_filter
            .as_deref_mut()
            .unwrap_or(&mut self.in_filter);
        let (out, octets) = (&mut self.out, &mut self.out_octets);
        // A `Line`'s chunk is queued here, with no sink to hand it to.
        if let Some(line) = filter.as_line() {
            queue_chunk(out, octets, line.terminated(record.into()));
        } else {
            filter
                .put_one_with(record.into(), |c| queue_chunk(out, octets, c))
                .map_err(Error::Filter)?;
        }
        Ok(self.after_put())
    }

    /// Stops reading (POE's `pause_input`).
    pub fn pause_input(&mut self) {
        self.input_paused = true;
        self.regate();
    }

    /// Reads again (POE's `resume_input`).
    pub fn resume_input(&mut self) {
        self.input_paused = false;
        self.regate();
    }

    /// Whether input is paused.
    pub fn is_input_paused(&self) -> bool {
        self.input_paused
    }

    /// Whether input waits for output to drain: this wheel's
    /// ([`ReadWriteBuilder::backpressure`]), or the kernel's while this wheel holds some
    /// ([`KernelBuilder::output_budget`](crate::KernelBuilder::output_budget)).
    pub fn is_held_back(&self) -> bool {
        self.output_open && (self.pressure_paused || self.budget_holds_back())
    }

    /// The kernel's output budget is spent and this wheel holds some of it (the budget's
    /// part of [`ReadWrite::is_held_back`]).
    #[inline]
    fn budget_holds_back(&self) -> bool {
        self.out_octets > 0 && self.budget.as_deref().is_some_and(crate::Share::over)
    }

    /// Output waits: the wheel's own, or the handle's buffer. Plain loads, tested with no
    /// branch.
    #[inline]
    fn output_waits(&self) -> bool {
        !self.out.is_empty() | self.handle_unflushed
    }

    /// Shuts the read side down (`shutdown(fd, SHUT_RD)`) and stops reading.
    pub fn shutdown_input(&mut self) {
        let _ = rustix::net::shutdown(self.handles.reader().read_fd(), rustix::net::Shutdown::Read);
        self.input_open = false;
        self.regate();
    }

    /// Shuts the write side down (`shutdown(fd, SHUT_WR)`) and stops writing.
    pub fn shutdown_output(&mut self) {
        let _ = rustix::net::shutdown(
            self.handles.writer().write_fd(),
            rustix::net::Shutdown::Write,
        );
        self.output_open = false;
        self.regate();
    }

    /// Moves the high-water mark (POE's `set_high_mark`): it must stay above the low mark,
    /// and marks must have been set when the wheel was built.
    pub fn set_high_mark(&mut self, octets: usize) -> Result<()> {
        match self.low_mark {
            low if low > 0 && octets > low as usize => {
                self.high_mark = octets32(octets);
                self.regate();
                Ok(())
            }
            _ => Err(Error::InvalidArgument(
                "HighMark must be greater than LowMark",
            )),
        }
    }

    /// Moves the low-water mark (POE's `set_low_mark`): 0 < low < high.
    pub fn set_low_mark(&mut self, octets: usize) -> Result<()> {
        match self.high_mark {
            high if octets > 0 && octets < high as usize => {
                self.low_mark = octets32(octets);
                self.regate();
                Ok(())
            }
            _ => Err(Error::InvalidArgument(
                "LowMark must be between 0 and HighMark",
            )),
        }
    }

    /// Octets waiting to be written (POE's `driver_out_octets`).
    #[doc(alias = "get_driver_out_octets")]
    pub fn driver_out_octets(&self) -> usize {
        self.out_octets
    }

    /// Chunks waiting to be written (POE's `driver_out_messages`).
    #[doc(alias = "get_driver_out_messages")]
    pub fn driver_out_messages(&self) -> usize {
        self.out.len()
    }

    /// Renames an event, or with `None` stops emitting it (POE's `event`). Clearing the
    /// input event stops reading.
    pub fn event(&mut self, which: RwEvent, name: Option<&str>) {
        self.events.set(which, name.map(EventId::of));
        self.regate();
    }

    /// Replaces both filters; input buffered in the old input filter is parsed again by the
    /// new one (POE's `set_filter`).
    pub fn set_filter(&mut self, f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static) {
        self.swap_input(FilterSlot::new(f));
        self.out_filter = None;
    }

    /// Replaces the input filter, carrying buffered input over (POE's `set_input_filter`).
    pub fn set_input_filter(&mut self, f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static) {
        if self.out_filter.is_none() {
            // The old shared filter keeps serving output.
            let old_out = self.in_filter.clone_empty();
            self.out_filter = Some(Box::new(old_out));
        }
        self.swap_input(FilterSlot::new(f));
    }

    /// Replaces the output filter; only later puts use it (POE's `set_output_filter`).
    pub fn set_output_filter(&mut self, f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static) {
        self.out_filter = Some(Box::new(FilterSlot::new(f)));
    }

    fn swap_input(&mut self, mut f: FilterSlot) {
        if let Some(pending) = self.in_filter.as_dyn().get_pending() {
            let _ = f.as_dyn_mut().get_one_start(pending);
            self.parse_pending = true;
        }
        self.in_filter = f;
    }

    /// The input filter itself (POE's `input_filter`): its
    /// [`get_pending`](Filter::get_pending) after an error, or its own methods through
    /// [`input_filter_mut`](ReadWrite::input_filter_mut).
    #[doc(alias = "get_input_filter")]
    pub fn input_filter(&self) -> &dyn Filter<Raw = Vec<u8>, Record = Vec<u8>> {
        self.in_filter.as_dyn()
    }

    /// The input filter, to change it in place: `downcast_mut::<Grep<Vec<u8>>>()` reaches
    /// a filter's own methods, as POE's `$wheel->input_filter->modify(...)` does.
    ///
    /// ```
    /// # use reactor::filter::{Filter, Grep};
    /// # fn f(w: &mut reactor::wheel::ReadWrite) {
    /// if let Some(grep) = w.input_filter_mut().downcast_mut::<Grep<Vec<u8>>>() {
    ///     grep.modify_get(|line: &Vec<u8>| !line.starts_with(b"#"));
    /// }
    /// # }
    /// ```
    #[doc(alias = "get_input_filter_mut")]
    pub fn input_filter_mut(&mut self) -> &mut dyn Filter<Raw = Vec<u8>, Record = Vec<u8>> {
        self.in_filter.as_dyn_mut()
    }

    /// The output filter itself (POE's `output_filter`): the input filter when one
    /// filter serves both directions.
    #[doc(alias = "get_output_filter")]
    pub fn output_filter(&self) -> &dyn Filter<Raw = Vec<u8>, Record = Vec<u8>> {
        self.out_filter
            .as_deref()
            .unwrap_or(&self.in_filter)
            .as_dyn()
    }

    /// The output filter, to change it in place (see
    /// [`input_filter_mut`](ReadWrite::input_filter_mut)).
    #[doc(alias = "get_output_filter_mut")]
    pub fn output_filter_mut(&mut self) -> &mut dyn Filter<Raw = Vec<u8>, Record = Vec<u8>> {
        self.out_filter
            .as_deref_mut()
            .unwrap_or(&mut self.in_filter)
            .as_dyn_mut()
    }

    /// The input filter's type (`ref($wheel->input_filter)`).
    pub fn input_filter_type(&self) -> &'static str {
        self.in_filter.as_dyn().filter_type()
    }

    /// The output filter's type (`ref($wheel->output_filter)`).
    pub fn output_filter_type(&self) -> &'static str {
        self.output_filter().filter_type()
    }

    /// `put` as POE's wheel does it, with the kernel at hand: with `AutoFlush` on and the
    /// buffer empty before, the records are written before this returns, and
    /// `FlushedEvent` is called first if they all left. Returns the high-water flag.
    pub fn put_in<R: Into<Vec<u8>>>(
        kernel: &mut Kernel,
        id: WheelId,
        records: impl IntoIterator<Item = R>,
    ) -> Result<bool> {
        let w = kernel
            .wheel_mut::<ReadWrite>(id)
            .ok_or(Error::InvalidArgument("no such wheel"))?;
        let was_empty = w.out.is_empty();
        let high = w.put(records)?;
        if w.auto_flush && was_empty {
            Self::flush(kernel, id);
        }
        Ok(high)
    }

    /// `set_filter` as POE's wheel does it, with the kernel at hand: input buffered in the
    /// old filter is parsed by the new one and its records delivered before this returns.
    pub fn set_filter_in(
        kernel: &mut Kernel,
        id: WheelId,
        f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static,
    ) -> Result<()> {
        let w = kernel
            .wheel_mut::<ReadWrite>(id)
            .ok_or(Error::InvalidArgument("no such wheel"))?;
        w.set_filter(f);
        if let Some((at, owner)) = kernel.wheel_locate(id) {
            Self::deliver_parsed(kernel, id, at, owner);
        }
        Ok(())
    }

    /// Writes what is buffered now rather than at the next I/O phase (POE's `flush`).
    pub fn flush(kernel: &mut Kernel, id: WheelId) {
        if let Some(w) = kernel.wheel_mut::<ReadWrite>(id) {
            w.write_ready = true;
            w.write_armed = true;
        }
        // Armed again: what is put after this goes out in this dispatch's write pass.
        kernel.wheel_rearmed(id);
        <ReadWrite as Wheel>::dispatch(kernel, id, Mode::Write);
    }

    fn event_id(&self, which: RwEvent) -> Option<EventId> {
        self.events.get(which)
    }

    fn read_dispatch(kernel: &mut Kernel, id: WheelId) {
        let Some((at, owner)) = kernel.wheel_locate(id) else {
            return;
        };
        // One read buffer serves every wheel of the kernel: reads copy out what they got,
        // into a buffer some wheel wrote out before if one fits.
        let Some((w, shared, spares)) = kernel.wheel_at_with_buffers::<ReadWrite>(at) else {
            return;
        };
        let Some(input) = w.events.get(RwEvent::Input) else {
            return;
        };
        if w.read_ready && w.reading_allowed() {
            match w.read_once(shared, spares) {
                // A `Line`'s first record, parsed by the read itself (the filter had
                // nothing buffered): handed on here, with no second look at the filter.
                Ok(Some(parsed)) => {
                    if Self::deliver_line(kernel, at, id, owner, input, parsed).is_continue() {
                        Self::deliver_parsed(kernel, id, at, owner);
                    }
                    return;
                }
                Ok(None) => {}
                Err(failure) => {
                    if let Some(ev) = w.event_id(RwEvent::Error) {
                        kernel.wheel_call(owner, ev, (failure, id).into_args());
                    }
                    // Records already parsed still go out.
                    return Self::deliver_parsed(kernel, id, at, owner);
                }
            }
        }
        // A `Line`'s first record is parsed with the wheel at hand; the delivery loop
        // finds the wheel again for the next ones (a handler may have changed or dropped
        // it).
        if w.parse_pending {
            if let Some(parsed) = w.parse_line() {
                if Self::deliver_line(kernel, at, id, owner, input, parsed).is_break() {
                    return;
                }
            }
        }
        Self::deliver_parsed(kernel, id, at, owner);
    }

    /// Hands on what one [`parse_line`](Self::parse_line) gave: a record to the input
    /// event, a failure to the error event. `Break` when delivery is over until new input
    /// comes; `Continue` after a record with more buffered.
    #[inline(always)]
    fn deliver_line(
        kernel: &mut Kernel,
        at: crate::kernel::wheels::WheelAt,
        id: WheelId,
        owner: crate::SessionId,
        ev: EventId,
        parsed: LineParse,
    ) -> ControlFlow<()> {
        match parsed {
            LineParse::Record(rec, drained) => {
                let args = kernel.wheel_input_args(rec, id);
                kernel.wheel_call_at(at, owner, ev, args);
                if drained {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
            LineParse::Done => ControlFlow::Break(()),
            LineParse::Failed(e) => {
                Self::parse_failed(kernel, at, id, owner, e);
                ControlFlow::Break(())
            }
        }
    }

    /// One parse of the input filter if it is a `Line` (`None` otherwise), which gives one
    /// record at a time: the record goes to the handler as it comes, with no list for
    /// more. `parse_pending` is cleared when nothing is left to parse.
    #[inline(always)]
    fn parse_line(&mut self) -> Option<LineParse> {
        let line = self.in_filter.as_line()?;
        let parsed = line.next_line();
        let more = line.may_have_record();
        Some(self.line_parsed(parsed, more))
    }

    /// What a `Line` parse gave, as [`LineParse`]; `more`: bytes are still buffered.
    /// `parse_pending` is cleared when nothing is left to parse.
    #[inline(always)]
    fn line_parsed(
        &mut self,
        parsed: std::result::Result<Option<Vec<u8>>, crate::filter::FilterError>,
        more: bool,
    ) -> LineParse {
        match parsed {
            Ok(Some(rec)) => {
                // With nothing left buffered, the next parse would find nothing: it is
                // skipped. (A handler that switches filters sets this again.)
                self.parse_pending = more;
                LineParse::Record(rec, !more)
            }
            Ok(None) => {
                self.parse_pending = false;
                LineParse::Done
            }
            Err(e) => {
                self.parse_pending = true;
                LineParse::Failed(e)
            }
        }
    }

    /// One read into `shared`; what it got is copied into a buffer of its size (from
    /// `spares` if one fits) and handed to the input filter. A `Line` with nothing
    /// buffered takes the bytes where they lie instead: its first line is copied out and
    /// parsed at once (`Ok(Some(_))`), and only what follows it is kept. `Err`: the
    /// failure that closed the input.
    fn read_once(
        &mut self,
        shared: &mut Vec<u8>,
        spares: &mut Vec<Vec<u8>>,
    ) -> std::result::Result<Option<LineParse>, WheelError> {
        let block = self.block_size as usize;
        // Grown to exactly `block` if short: either way the slice needs no bounds check.
        let buf: &mut [u8] = if shared.len() >= block {
            &mut shared[..block]
        } else {
            shared.resize(block, 0);
            shared
        };
        let failure = match self.handles.read_some(buf) {
            Ok(0) => WheelError::eof(),
            Ok(n) => {
                if n < buf.len() && !self.reads_to_eof {
                    // Drained: the next arrival raises a new edge. Once the peer has
                    // closed there is no edge to come: read on to end-of-file.
                    self.read_ready = false;
                }
                let bytes = &buf[..n];
                // The copies keep a few spare bytes: a line handed back for output
                // gets its terminator without reallocating.
                if let Some(line) = self.in_filter.as_line() {
                    let alloc = |len| spare_buffer_for(spares, len + READ_SLACK);
                    if let Some(parsed) = line.first_line_of(bytes, alloc) {
                        let more = line.may_have_record();
                        return Ok(Some(self.line_parsed(parsed, more)));
                    }
                }
                let mut chunk = spare_buffer_for(spares, n + READ_SLACK);
                chunk.extend_from_slice(bytes);
                match self.in_filter.get_one_start_chunk(chunk) {
                    Ok(()) => {
                        self.parse_pending = true;
                        return Ok(None);
                    }
                    Err(e) => WheelError::filter("read", e),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.read_ready = false;
                return Ok(None);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
            Err(e) => WheelError::io("read", &e),
        };
        self.read_ready = false;
        self.input_open = false;
        self.regate();
        Err(failure)
    }

    /// Delivers the records parsed and waiting in the input filter, one at a time: a
    /// handler may switch filters, pause input or drop the wheel between two records.
    fn deliver_parsed(
        kernel: &mut Kernel,
        id: WheelId,
        at: crate::kernel::wheels::WheelAt,
        owner: crate::SessionId,
    ) {
        loop {
            let Some(w) = kernel.wheel_at::<ReadWrite>(at) else {
                return;
            };
            if !w.parse_pending {
                return;
            }
            let Some(ev) = w.event_id(RwEvent::Input) else {
                return;
            };
            if let Some(parsed) = w.parse_line() {
                if Self::deliver_line(kernel, at, id, owner, ev, parsed).is_break() {
                    return;
                }
                continue;
            }
            // Filters give one record at a time (Map may give more): the first goes in a
            // slot on the stack, so the usual case needs no list.
            let mut first = None;
            let mut more = Vec::new();
            let got = w.in_filter.get_one_with(|rec| match first {
                None => first = Some(rec),
                Some(_) => more.push(rec),
            });
            match got {
                Ok(0) => {
                    w.parse_pending = false;
                    return;
                }
                Ok(_) => {
                    // With nothing left buffered, the next parse would find nothing: it is
                    // skipped. (A handler that switches filters sets this again.)
                    let drained = !w.in_filter.may_have_record();
                    if drained {
                        w.parse_pending = false;
                    }
                    for rec in first.into_iter().chain(more) {
                        let args = kernel.wheel_input_args(rec, id);
                        kernel.wheel_call_at(at, owner, ev, args);
                    }
                    if drained {
                        return;
                    }
                }
                Err(e) => return Self::parse_failed(kernel, at, id, owner, e),
            }
        }
    }

    /// The input filter failed: nothing more is parsed until new input comes, and the
    /// failure goes to the error event.
    #[cold]
    fn parse_failed(
        kernel: &mut Kernel,
        at: crate::kernel::wheels::WheelAt,
        id: WheelId,
        owner: crate::SessionId,
        e: crate::filter::FilterError,
    ) {
        let Some(w) = kernel.wheel_at::<ReadWrite>(at) else {
            return;
        };
        w.parse_pending = false;
        if let Some(err) = w.event_id(RwEvent::Error) {
            kernel.wheel_call(owner, err, (WheelError::filter("read", e), id).into_args());
        }
    }

    /// Work for a read dispatch: input to read, or records parsed and waiting. Readiness
    /// is asked first: it is the usual work, and the usual answer to a wheel that has
    /// none.
    #[inline]
    fn read_pending(&self) -> bool {
        (self.read_ready && self.reading_allowed())
            || (self.parse_pending && self.events.get(RwEvent::Input).is_some())
    }

    /// Work for a write dispatch: output (or the handle's own buffer) and a writable
    /// handle.
    #[inline]
    fn write_pending(&self) -> bool {
        self.write_ready && self.output_open && self.output_waits()
    }

    /// Whether input may be read now, the handle aside: `read_gate`, and the output
    /// budget does not hold this wheel back (as [`ReadWrite::is_held_back`] tells).
    #[inline]
    fn reading_allowed(&self) -> bool {
        self.read_gate && !(self.budget_holds_back() && self.output_open)
    }

    /// Sets `read_gate` and `quiet_out` again from the flags they sum up.
    fn regate(&mut self) {
        self.read_gate = self.input_open
            && !self.input_paused
            && !(self.output_open && self.pressure_paused)
            && self.events.get(RwEvent::Input).is_some();
        self.quiet_out = self.output_open
            && self.events.get(RwEvent::Flushed).is_none()
            && (self.high_mark == 0 || self.low_mark == 0);
    }

    /// Tells the kernel's output budget what this wheel's output holds now.
    #[inline]
    fn sync_budget(&mut self) {
        if let Some(share) = &mut self.budget {
            share.hold(self.out_octets);
        }
    }

    /// Writes what the handle takes; the last small chunk written out goes to `spares`
    /// for a later read. `first`: the result of a write of the one chunk waiting already
    /// made, and the chunk's length.
    fn write_out(
        &mut self,
        mut first: Option<(io::Result<usize>, usize)>,
        spares: &mut Vec<Vec<u8>>,
    ) -> Option<io::Error> {
        let mut error = None;
        while first.is_some() || !self.out.is_empty() {
            let (single, (result, wanted)) = match first.take() {
                Some(made) => (true, made),
                None if self.out.len() == 1 => {
                    let chunk = self.out.front().expect("one chunk waits");
                    (true, (self.handles.write_one(chunk), chunk.len()))
                }
                None => (false, self.write_vectored()),
            };
            match result {
                // The usual write: the one chunk, taken whole.
                Ok(written) if single && written == wanted => {
                    self.out_octets -= written;
                    if let Some(done) = self.out.pop_front() {
                        keep_spare_buffer(spares, done);
                    }
                }
                Ok(written) => {
                    let mut n = written;
                    self.out_octets -= n;
                    while n > 0 {
                        let front = self.out.front_mut().expect("written bytes were queued");
                        if n >= front.len() {
                            n -= front.len();
                            if let Some(done) = self.out.pop_front() {
                                keep_spare_buffer(spares, done);
                            }
                        } else {
                            front.drain(..n);
                            n = 0;
                        }
                    }
                    if written < wanted {
                        // A short write: the socket buffer is full; wait for an edge.
                        self.write_ready = false;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_ready = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    self.write_ready = false;
                    self.output_open = false;
                    self.regate();
                    break;
                }
            }
        }
        self.written_out();
        error
    }

    /// After a write: input paused by backpressure resumes once the output is down to the
    /// low mark, and the output budget hears what the wheel holds now.
    fn written_out(&mut self) {
        if self.pressure_paused && self.out_octets <= self.backpressure.1 as usize {
            self.pressure_paused = false;
            self.regate();
        }
        self.sync_budget();
    }

    /// Up to 64 queued chunks in one `writev`, from a stack array: (result, bytes offered).
    /// Out of line, so the single-chunk path does not set the array up.
    #[inline(never)]
    fn write_vectored(&mut self) -> (io::Result<usize>, usize) {
        let mut slices = [IoSlice::new(&[]); 64];
        let mut wanted = 0;
        let mut n = 0;
        for (slot, c) in slices.iter_mut().zip(self.out.iter()) {
            *slot = IoSlice::new(c);
            wanted += c.len();
            n += 1;
        }
        (self.handles.writer().write_some(&slices[..n]), wanted)
    }

    /// Once the wheel's own buffer is empty, pushes out what the handle buffers
    /// ([`WriteHandle::flush_out`]); returns the error that closed the output, if any.
    fn flush_handle(&mut self) -> Option<io::Error> {
        if !self.output_open {
            return None;
        }
        match self.handles.flush_out() {
            Ok(()) => {
                self.handle_unflushed = false;
                None
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.handle_unflushed = true;
                self.write_ready = false;
                None
            }
            Err(e) => {
                self.handle_unflushed = false;
                self.output_open = false;
                self.regate();
                Some(e)
            }
        }
    }

    /// Writes the armed output, then the handle's own buffer once the wheel's is empty.
    /// Always inlined: in the write visit, its usual caller, a call's saving of registers
    /// costs more than the code it would share.
    #[inline(always)]
    fn write_armed_out(&mut self, spares: &mut Vec<Vec<u8>>) -> Wrote {
        self.write_armed = false;
        // The usual write: the one chunk waiting, to a TCP stream, taken whole.
        let mut first = None;
        if let (Handles::Tcp(t), Some(chunk)) = (&mut self.handles, self.out.single()) {
            let wanted = chunk.len();
            let result = t.write(chunk);
            if matches!(result, Ok(n) if n == wanted) {
                self.out_octets -= wanted;
                keep_spare_buffer(spares, self.out.take_single());
                if self.pressure_paused || self.budget.is_some() {
                    self.written_out();
                }
                // A TCP stream buffers nothing of its own (see `flush_handle`).
                self.handle_unflushed = false;
                return Wrote::All;
            }
            first = Some((result, wanted));
        }
        match self.write_armed_rest(first, spares) {
            Some(error) => Wrote::Failed(error),
            None => Wrote::Some,
        }
    }

    /// [`ReadWrite::write_armed_out`] past its usual write.
    #[inline(never)]
    fn write_armed_rest(
        &mut self,
        first: Option<(io::Result<usize>, usize)>,
        spares: &mut Vec<Vec<u8>>,
    ) -> Option<io::Error> {
        let mut error = self.write_out(first, spares);
        if self.out.is_empty() && error.is_none() {
            error = self.flush_handle();
        }
        error
    }

    fn write_dispatch(kernel: &mut Kernel, id: WheelId) {
        let Some((at, owner)) = kernel.wheel_locate(id) else {
            return;
        };
        if let Some(error) = kernel.wheel_write_failure() {
            // The write of the table's write pass failed ([`Wheel::write_visit`]).
            if let Some(ev) = kernel
                .wheel_ref::<ReadWrite>(id)
                .and_then(|w| w.event_id(RwEvent::Error))
            {
                kernel.wheel_call(owner, ev, (*error, id).into_args());
            }
            return;
        }
        // Chunks written out are kept in the kernel for later reads.
        let Some((w, _, spares)) = kernel.wheel_at_with_buffers::<ReadWrite>(at) else {
            return;
        };
        if !w.write_armed || !w.output_open || !w.output_waits() {
            return;
        }
        let error = match w.write_armed_out(spares) {
            Wrote::Failed(error) => Some(error),
            Wrote::All | Wrote::Some => None,
        };
        let (high, low, emptied) = {
            let mut high = false;
            let mut low = false;
            if let (h @ 1.., l @ 1..) = (w.high_mark as usize, w.low_mark as usize) {
                if !w.high_state && w.out_octets >= h {
                    w.high_state = true;
                    high = true;
                } else if w.high_state && w.out_octets <= l {
                    w.high_state = false;
                    low = true;
                }
            }
            (high, low, !w.output_waits() && error.is_none())
        };
        let names = (
            w.event_id(RwEvent::Error),
            w.event_id(RwEvent::High),
            w.event_id(RwEvent::Low),
            w.event_id(RwEvent::Flushed),
        );
        // The usual write: no error and no mark crossed, and no one asked to hear of a
        // flush.
        if error.is_none() && !high && !low && (!emptied || names.3.is_none()) {
            return;
        }
        if let (Some(error), Some(ev)) = (error, names.0) {
            let error = WheelError::io("write", &error);
            kernel.wheel_call(owner, ev, (error, id).into_args());
        }
        for (happened, name) in [(high, names.1), (low, names.2), (emptied, names.3)] {
            if let (true, Some(ev)) = (happened, name) {
                let id_arg = kernel.wheel_id_arg(id);
                let args = kernel.pooled_args([id_arg]);
                kernel.wheel_call(owner, ev, args);
            }
        }
    }
}

impl Wheel for ReadWrite {
    fn register(&mut self, registry: &Registry, tokens: [Token; 2]) -> io::Result<()> {
        // A regular file cannot be polled (epoll says EPERM): it is always ready, as
        // select() reports it, and is read until end-of-file.
        let unpollable = |r: io::Result<()>| match r {
            Err(e) if e.raw_os_error() == Some(EPERM) => Ok(true),
            Err(e) => Err(e),
            Ok(()) => Ok(false),
        };
        let (mut in_unpollable, mut out_unpollable) = (false, false);
        match &mut self.handles {
            Handles::Tcp(_) | Handles::Duplex(_) => {
                // By descriptor, so a registration left by an earlier wheel on the same
                // socket can be taken over (see `ReadWriteBuilder::parked`).
                let fd = self.handles.reader().read_fd().as_raw_fd();
                let r = crate::kernel::select::register_fd(
                    registry,
                    &mut SourceFd(&fd),
                    tokens[0],
                    Interest::READABLE | Interest::WRITABLE,
                    self.registered,
                );
                if unpollable(r)? {
                    in_unpollable = true;
                    out_unpollable = true;
                }
            }
            Handles::Split(rw) => {
                let (r, w) = &mut **rw;
                in_unpollable =
                    unpollable(registry.register(r.read_source(), tokens[0], Interest::READABLE))?;
                out_unpollable =
                    unpollable(registry.register(w.write_source(), tokens[1], Interest::WRITABLE))?;
            }
        }
        self.reads_to_eof |= in_unpollable;
        self.read_ready |= in_unpollable;
        self.write_ready |= out_unpollable;
        Ok(())
    }

    fn deregister(&mut self, registry: &Registry) {
        match &mut self.handles {
            Handles::Tcp(_) | Handles::Duplex(_) => {
                let fd = self.handles.reader().read_fd().as_raw_fd();
                let _ = registry.deregister(&mut SourceFd(&fd));
            }
            Handles::Split(rw) => {
                let (r, w) = &mut **rw;
                let _ = registry.deregister(r.read_source());
                let _ = registry.deregister(w.write_source());
            }
        }
    }

    fn note_ready(&mut self, which: usize, readable: bool, writable: bool) {
        match (&self.handles, which) {
            (Handles::Tcp(_) | Handles::Duplex(_), _) => {
                self.read_ready |= readable;
                self.write_ready |= writable;
            }
            (Handles::Split(..), 0) => self.read_ready |= readable,
            (Handles::Split(..), _) => self.write_ready |= writable,
        }
    }

    fn note_closed(&mut self, which: usize) {
        if which == 0 {
            self.peer_closed = true;
            self.reads_to_eof = true;
            self.read_ready = true;
        }
    }

    fn readiness(&self) -> Readiness {
        Readiness {
            readable: self.read_ready,
            writable: self.write_ready,
            closed: self.peer_closed,
        }
    }

    fn adopt_readiness(&mut self, r: Readiness) {
        if let Handles::Tcp(_) | Handles::Duplex(_) = self.handles {
            self.read_ready |= r.readable;
            self.write_ready |= r.writable;
            self.peer_closed |= r.closed;
            self.reads_to_eof |= r.closed;
        }
    }

    fn pending(&self) -> (bool, bool) {
        (self.read_pending(), self.write_pending())
    }

    fn due(&self, mode: Mode) -> bool {
        match mode {
            Mode::Read => self.read_pending(),
            // A write dispatch writes only what was queued before the poll.
            Mode::Write => self.write_armed && self.write_pending(),
        }
    }

    fn arm(&mut self) {
        self.write_armed = self.output_waits();
    }

    #[inline]
    fn write_visit(&mut self, out: &mut WriteOut) -> WriteVisit {
        // `due(Mode::Write)`, with `quiet_out` asked before the open output it implies;
        // the flags are plain loads, ANDed with one branch.
        if self.write_armed & self.write_ready & self.output_waits() {
            if self.quiet_out {
                match self.write_armed_out(out.spares()) {
                    // Nothing waits to be written now: no need to look again.
                    Wrote::All => return WriteVisit::listed(self.read_pending()),
                    Wrote::Some => {}
                    // The error event is raised by the write dispatch the kernel makes now.
                    Wrote::Failed(error) => return out.fail(WheelError::io("write", &error)),
                }
            } else if self.output_open {
                return WriteVisit::Dispatch;
            }
        }
        WriteVisit::listed(self.write_pending() || self.read_pending())
    }

    fn dispatch(kernel: &mut Kernel, id: WheelId, mode: Mode) {
        match mode {
            Mode::Read => Self::read_dispatch(kernel, id),
            Mode::Write => Self::write_dispatch(kernel, id),
        }
    }
}

impl ReadWrite {
    /// Bytes per read.
    pub fn block_size(&self) -> usize {
        self.block_size as usize
    }

    /// Whether either direction was shut down (by [`shutdown_input`](Self::shutdown_input),
    /// [`shutdown_output`](Self::shutdown_output) or an error).
    pub fn is_shut_down(&self) -> bool {
        !self.input_open || !self.output_open
    }

    /// Input read from the handle but not yet delivered: bytes the input filter still
    /// buffers (a partial record). A pool uses it to refuse a socket with unread input.
    pub fn input_pending_octets(&self) -> usize {
        self.in_filter
            .as_dyn()
            .get_pending()
            .map_or(0, |chunks| chunks.iter().map(Vec::len).sum())
    }

    /// Takes the duplex handle back out of a wheel, e.g. to return a socket to a pool.
    /// `None` for a split wheel or a handle of another type.
    pub fn into_handle<H: 'static>(self) -> Option<H> {
        match self.handles {
            Handles::Tcp(t) => crate::value::cast_value(mio::net::TcpStream::from_std(t.0)),
            Handles::Duplex(h) => h.into_any().downcast::<H>().ok().map(|b| *b),
            Handles::Split(..) => None,
        }
    }
}

#[cfg(test)]
mod size_tests {
    /// What an idle connection's wheel costs: the struct is boxed in the wheel table, and
    /// a TCP stream, a `Line` or `Stream` filter, one chunk of output and the event names
    /// take no allocation of their own (a 192-byte malloc chunk in all).
    #[test]
    fn a_readwrite_wheel_stays_small() {
        assert!(std::mem::size_of::<super::ReadWrite>() <= 184);
        assert_eq!(std::mem::size_of::<super::Handles>(), 24);
        assert_eq!(std::mem::size_of::<super::FilterSlot>(), 48);
    }
}
