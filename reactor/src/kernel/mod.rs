//! The kernel: everything that is POE's `$poe_kernel`, one idea a file.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the [`Kernel`] itself, its builder, its clock |
//! | `names.rs` | event names: numbered once per process, cached per kernel |
//! | `items.rs` | queued items (posts, timers, signals) and how they enter and leave the queue |
//! | `dispatch.rs` | `post`, `yield`, `call`, running a handler, handler failures |
//! | `sessions.rs` | the session table and tree: create, detach, stop, garbage collection |
//! | `refcount.rs` | what keeps a session alive; external references |
//! | `session.rs` | what a program builds: [`Session`], [`States`], options, designators |
//! | `ctx.rs` | the handler's [`Ctx`] (POE's `@_`), and how handlers are stored and run |
//! | `timers.rs` | the delay and alarm family |
//! | `aliases.rs` | aliases |
//! | `postback.rs` | postbacks, callbacks, and the releases dropped handles leave |
//! | `poster.rs` | posting from other threads: [`Poster`], the inbox and the kernel's waker |
//! | `select.rs` | I/O watchers (`select_read`, `select_write`) and the poll |
//! | `signals.rs` | soft and OS signals, `DIE`, `sig_child` |
//! | `wheels.rs` | the [`Wheel`](crate::wheel::Wheel) trait and the wheel table |
//! | `wakes.rs` | wheels' wake-ups: a wheel called back after a delay, from the queue |
//! | `token.rs` | how poller tokens name watchers, wheels and signal pipes |
//! | `budget.rs` | the kernel-wide byte budget wheels share |
//! | `run.rs` | the run loop: POE's timeslice |
//!
//! Nothing here imports a concrete wheel, filter or component: outside this folder the
//! kernel uses only the pure foundations ([`crate::queue`], [`crate::clock`], values and
//! errors).

mod aliases;
mod budget;
mod children;
mod ctx;
mod dispatch;
mod items;
mod names;
mod postback;
mod poster;
mod refcount;
mod run;
pub(crate) mod select;
pub(crate) mod session;
mod sessions;
pub(crate) mod signals;
mod timers;
mod token;
pub(crate) mod wakes;
pub(crate) mod wheels;

pub use budget::{Budget, Share};
pub use children::ChildGuard;
pub use dispatch::DieInfo;
pub(crate) use dispatch::{args_of, Kind};
pub(crate) use items::{Item, ItemExtra, ItemKind};
pub use names::EventId;
pub use names::EventName;
pub(crate) use names::Names;
pub(crate) use names::{
    EV_CHILD, EV_DEFAULT, EV_DIE, EV_IDLE, EV_NONE, EV_PARENT, EV_START, EV_STOP, EV_ZOMBIE,
};
pub(crate) use postback::Releases;
pub use postback::{Callback, Postback};
pub(crate) use poster::KernelFn;
pub use poster::{
    PostBatch, PostError, Poster, Recipient, RemoteEvent, POSTER_TAG, POSTS_PER_TIMESLICE,
};
pub use select::Mode;
pub(crate) use session::{erase, Handler};
pub use session::{
    Ctx, Designator, ObjectMethod, PackageMethod, Session, SessionId, SessionOptions, States,
    KERNEL,
};
pub(crate) use sessions::SessionRec;
pub use timers::{epoch_secs, AlarmId, Epoch, RemovedAlarm, Seconds};

use crate::clock::{Clock, SystemClock, Time};
use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::value::HandlerError;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use select::{Io, POLL_EVENTS};
use signals::SignalState;
use slab::Slab;
use std::rc::Rc;

/// A number no other kernel of this process has.
fn next_kernel_serial() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The running handler's session, its slot and event: saved and restored around every
/// handler, so kept in 16 bytes (the slot as a `u32`, [`NO_KEY`] for none).
#[derive(Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) session: SessionId,
    slot: u32,
    pub(crate) event: EventId,
}

impl Frame {
    /// A frame of `session` at slot `key`, handling `event`.
    #[inline]
    pub(crate) fn new(session: SessionId, key: usize, event: EventId) -> Frame {
        Frame {
            session,
            slot: key as u32,
            event,
        }
    }

    /// The session's slot in the session table; `None` outside handlers.
    #[inline]
    pub(crate) fn key(&self) -> Option<usize> {
        (self.slot != NO_KEY).then_some(self.slot as usize)
    }

    /// [`Frame::key`] as a `u32`, [`NO_KEY`] for none.
    #[inline]
    pub(crate) fn slot(&self) -> u32 {
        self.slot
    }
}

pub(crate) const NO_KEY: u32 = u32::MAX;

const KERNEL_FRAME: Frame = Frame {
    session: KERNEL,
    slot: NO_KEY,
    event: EV_NONE,
};

/// Builds a [`Kernel`] with a chosen clock, exception policy and write timing.
pub struct KernelBuilder {
    clock: Option<Rc<dyn Clock>>,
    catch_exceptions: bool,
    early_writes: bool,
    output_budget: Option<usize>,
    warn_unhandled: bool,
    events_per_poll: usize,
}

impl std::fmt::Debug for KernelBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelBuilder")
            .field("clock", &self.clock.as_ref().map(|_| ".."))
            .field("catch_exceptions", &self.catch_exceptions)
            .field("early_writes", &self.early_writes)
            .field("output_budget", &self.output_budget)
            .field("warn_unhandled", &self.warn_unhandled)
            .field("events_per_poll", &self.events_per_poll)
            .finish()
    }
}

impl KernelBuilder {
    /// Uses `clock` instead of the system clock (a [`ManualClock`](crate::clock::ManualClock)
    /// in tests).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Rc::new(clock));
        self
    }

    /// Whether handler failures become `DIE` signals (POE's `CATCH_EXCEPTIONS`, default on).
    /// With it off, the first failure stops every session and `run()` returns it.
    pub fn catch_exceptions(mut self, on: bool) -> Self {
        self.catch_exceptions = on;
        self
    }

    /// Whether wheels write output queued by I/O handlers in the same I/O phase, before
    /// the next poll (default off: POE's order).
    ///
    /// POE writes a wheel's output when a poll made after the `put` reports the handle
    /// writable, and so does this kernel by default: the timeslice after a read that
    /// answers polls once more before writing. With early writes on, an answer put by an
    /// input handler leaves in the same I/O phase, which saves that poll when a server has
    /// little else to do (a few connections, each waiting for its answer). What a program
    /// can observe changes: `FlushedEvent` comes in the I/O phase, before the events the
    /// input handler posted, and a peer socket in the same process reads the answer one
    /// timeslice earlier. Servers whose peers are other processes see no difference.
    pub fn early_writes(mut self, on: bool) -> Self {
        self.early_writes = on;
        self
    }

    /// A limit on the output all `ReadWrite` wheels of the kernel may hold between them
    /// (default none). Past it, every wheel that holds output stops reading until the total
    /// is back under three quarters of the limit; wheels that hold none read on, so the
    /// clients that read their answers keep being served while the ones that do not are
    /// held. Per connection, [`ReadWriteBuilder::backpressure`](crate::wheel::ReadWriteBuilder::backpressure)
    /// bounds each one.
    pub fn output_budget(mut self, bytes: usize) -> Self {
        self.output_budget = Some(bytes);
        self
    }

    /// Whether an event that reaches a session with neither a handler for it nor a
    /// `_default` is logged at `warn` before it is dropped (default on, so a misspelt event
    /// name shows at once). Events whose names start with `_` (the kernel's own: `_child`,
    /// `_parent`, ...) and signals are dropped quietly, as in POE. Off, only sessions with
    /// [`SessionOptions::default`](crate::SessionOptions::default) warn, as POE's do.
    pub fn warn_unhandled(mut self, on: bool) -> Self {
        self.warn_unhandled = on;
        self
    }

    /// The most readiness events one poll takes in (default 64, at least 1). More wait
    /// with the poller for the next timeslice's poll, after the events due by then.
    ///
    /// POE's select loop takes every ready handle at once; this kernel's order is POE's
    /// as long as no more than this many handles are ready together. The default is small
    /// on purpose: a wheel's answer leaves after the next poll (POE's write timing), so
    /// between a socket's read and its write a busy server serves up to twice this many
    /// other sockets, and with 1,024 a server at 5,000 connections found each socket cold
    /// in the CPU's caches again by its write (docs/benchmarks.md, "System calls per
    /// message at 5,000 connections"). A program that must see POE's order with many
    /// handles ready at once sets it above the number of handles it watches.
    pub fn events_per_poll(mut self, n: usize) -> Self {
        self.events_per_poll = n.max(1);
        self
    }

    /// Makes the kernel.
    pub fn build(self) -> Result<Kernel> {
        let clock = self.clock.unwrap_or_else(|| Rc::new(SystemClock::new()));
        Ok(Kernel {
            serial: next_kernel_serial(),
            sessions: Slab::new(),
            by_id: HashMap::default(),
            next_sid: 1,
            kernel_children: sessions::Children::default(),
            names: Names::new(),
            queue: Queue::new(),
            extras: Vec::new(),
            item_args: Vec::new(),
            arg_lists: Vec::new(),
            record_boxes: Vec::new(),
            id_box: None,
            input_args: None,
            last_handler: None,
            last_fifo: Time::MIN,
            batch_prev: Time::MIN,
            timer_items: 0,
            batch_now: None,
            wall_origin: clock.wall_origin(),
            clock,
            aliases: HashMap::default(),
            marked: Vec::new(),
            stopping: HashSet::default(),
            active: KERNEL_FRAME,
            exception: None,
            catch_exceptions: self.catch_exceptions,
            warn_unhandled: self.warn_unhandled,
            early_writes: self.early_writes,
            output_budget: self.output_budget.map(|n| Rc::new(Budget::new(n))),
            extref_sessions: 0,
            stopping_all: false,
            releases: Rc::new(Releases::default()),
            io: Io::new(self.events_per_poll)?,
            wheels: Default::default(),
            wheel_wakes: Default::default(),
            signals: SignalState::default(),
            posts: Default::default(),
        })
    }
}

/// The event kernel: POE's `$poe_kernel`. One per thread; it owns every session, the
/// queue of pending events and timers, the I/O watchers and the signal state.
///
/// Make one with [`Kernel::new`] (or [`Kernel::builder`] for another clock or policy),
/// [`create`](Kernel::create) sessions, then [`run`](Kernel::run) it: `run` returns once no
/// session is left. Handlers reach it through their [`Ctx`], which dereferences to it.
///
/// # Examples
///
/// Events can be posted from outside any handler too (the sender is the kernel):
///
/// ```
/// use reactor::{Ctx, Error, Kernel, Session};
///
/// let mut kernel = Kernel::new()?;
/// kernel.create(
///     Session::new(Vec::<String>::new())
///         // An alias keeps a session alive while it waits, and names it.
///         .on("_start", |ctx: &mut Ctx<'_, Vec<String>>| ctx.alias_set("log"))
///         .on("note", |ctx: &mut Ctx<'_, Vec<String>>| -> Result<(), Error> {
///             let text: String = ctx.take_arg(0)?;
///             ctx.heap().push(text);
///             ctx.alias_remove("log") // nothing else can reach it: it ends
///         }),
/// )?;
/// kernel.post("log", "note", String::from("hello"))?;
/// kernel.run()?;
/// # Ok::<(), Error>(())
/// ```
pub struct Kernel {
    /// Tells kernels apart (event ids are per kernel): see [`crate::States`].
    pub(crate) serial: u64,
    pub(crate) sessions: Slab<SessionRec>,
    pub(crate) by_id: HashMap<u64, usize>,
    next_sid: u64,
    pub(crate) kernel_children: sessions::Children,
    pub(crate) names: Names,
    pub(crate) queue: Queue<Item>,
    /// The rest of each queued item, at its queue slot ([`ItemExtra`]).
    pub(crate) extras: Vec<ItemExtra>,
    /// The arguments of queued items that have some, at their queue slots; no longer
    /// than the last such slot.
    pub(crate) item_args: Vec<Box<[crate::value::Arg]>>,
    /// Empty argument lists for wheels' events, given back when handlers return
    /// ([`Args`](crate::Args)).
    pub(crate) arg_lists: Vec<Vec<crate::value::Arg>>,
    /// Boxes of byte records whose bytes a handler took, for wheels' next records
    /// ([`Kernel::record_arg`]).
    pub(crate) record_boxes: Vec<Rc<Vec<u8>>>,
    /// The wheel id argument of the last wheel event, reused for the next one once the
    /// handler let go of it ([`Kernel::wheel_id_arg`]).
    pub(crate) id_box: Option<Rc<crate::ids::WheelId>>,
    /// The box the last record a wheel delivered came in, with its wheel id, given back
    /// by its handler: the next record and id are written into it
    /// ([`Kernel::wheel_input_args`]). `None` while a handler holds it.
    pub(crate) input_args: Option<Box<crate::value::WheelInput>>,
    /// The handler found last, with the table and the event it was found for: the events
    /// of a stream (a wheel's records, to one session or to sessions sharing
    /// [`States`]) find it without a search. Cleared when a session is freed.
    pub(crate) last_handler: Option<(Rc<sessions::Handlers>, EventId, session::Handler)>,
    pub(crate) last_fifo: Time,
    /// The snapshot of the last batch.
    pub(crate) batch_prev: Time,
    /// Timers waiting in the queue.
    pub(crate) timer_items: usize,
    pub(crate) batch_now: Option<Time>,
    pub(crate) clock: Rc<dyn Clock>,
    /// The clock's [`Clock::wall_origin`], read once.
    wall_origin: std::time::SystemTime,
    pub(crate) aliases: HashMap<String, SessionId>,
    marked: Vec<(SessionId, usize)>,
    stopping: HashSet<u64>,
    pub(crate) active: Frame,
    pub(crate) exception: Option<HandlerError>,
    catch_exceptions: bool,
    /// [`KernelBuilder::warn_unhandled`].
    pub(crate) warn_unhandled: bool,
    /// [`KernelBuilder::early_writes`].
    early_writes: bool,
    /// [`KernelBuilder::output_budget`].
    output_budget: Option<Rc<Budget>>,
    pub(crate) extref_sessions: usize,
    stopping_all: bool,
    pub(crate) releases: Rc<Releases>,
    pub(crate) io: Io,
    pub(crate) wheels: wheels::Wheels,
    /// Wheels' pending wake-ups ([`Kernel::wheel_wake`]).
    pub(crate) wheel_wakes: wakes::Wakes,
    pub(crate) signals: SignalState,
    /// The inbox of posts from other threads ([`Kernel::poster`]).
    posts: poster::Posts,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("sessions", &self.by_id.len())
            .field("queued", &self.queue.len())
            .finish()
    }
}

impl Kernel {
    /// A kernel on the system clock, catching handler failures.
    pub fn new() -> Result<Kernel> {
        Self::builder().build()
    }

    /// A builder for a kernel with another clock or exception policy.
    pub fn builder() -> KernelBuilder {
        KernelBuilder {
            clock: None,
            catch_exceptions: true,
            early_writes: false,
            output_budget: None,
            warn_unhandled: true,
            events_per_poll: POLL_EVENTS,
        }
    }

    // ----------------------------------------------------------------- names and time

    /// Interns an event name.
    #[inline]
    pub(crate) fn intern(&mut self, name: &str) -> EventId {
        self.names.intern(name)
    }

    pub(crate) fn event_name(&self, id: EventId) -> &str {
        self.names.name(id)
    }

    /// The kernel's "now" for new items: the clock, but always after the snapshot of the
    /// batch being dispatched, as real time is in POE.
    pub(crate) fn now(&self) -> Time {
        let c = self.clock.now();
        match self.batch_now {
            Some(b) if c <= b => b + 1,
            _ => c,
        }
    }

    /// The base of relative timers: "now", but never before the last post, so a zero
    /// delay made after a post runs after it even when the clock has not moved.
    pub(crate) fn timer_base(&self) -> Time {
        self.now().max(self.last_fifo)
    }

    /// The current wall-clock time by the kernel's clock (POE's `time()`).
    pub fn time(&self) -> std::time::SystemTime {
        self.wall_at(self.clock.now())
    }

    /// The wall-clock time of point `t` on the kernel's timeline ([`Kernel::monotime`]):
    /// for instance the due time of an alarm [`Kernel::alarm_remove`] took out
    /// ([`RemovedAlarm::due`]).
    #[inline]
    pub fn wall_at(&self, t: Time) -> std::time::SystemTime {
        crate::clock::wall_at(self.wall_origin, t)
    }

    /// The timeline point of wall-clock time `wall`.
    pub(crate) fn time_of(&self, wall: std::time::SystemTime) -> Time {
        crate::clock::time_of(self.wall_origin, wall)
    }

    /// The current point on the kernel's monotonic timeline.
    pub fn monotime(&self) -> Time {
        self.clock.now()
    }

    /// The active session; outside handlers, [`Error::NoActiveSession`].
    pub(super) fn require_active_session(&self) -> Result<SessionId> {
        let s = self.active.session;
        if s.is_kernel() {
            Err(Error::NoActiveSession)
        } else {
            Ok(s)
        }
    }

    /// The active session's slab key, as queued items carry it.
    pub(super) fn active_key(&self) -> Result<u32> {
        match self.active.key() {
            Some(k) if !self.active.session.is_kernel() => Ok(k as u32),
            _ => Err(Error::NoActiveSession),
        }
    }

    /// The kernel-wide output budget ([`KernelBuilder::output_budget`]), for wheels to
    /// share.
    pub fn output_budget(&self) -> Option<Rc<Budget>> {
        self.output_budget.clone()
    }
}
