//! The kernel: sessions, the event queue, dispatch, garbage collection and the run loop.

use crate::clock::{Clock, SystemClock, Time};
use crate::error::{Error, Result};
use crate::io::Io;
use crate::queue::{ItemId, Queue};
use crate::session::Designator;
use crate::session::{Handler, Invocation, Session, SessionId, SessionOptions, KERNEL};
use crate::signals::SignalState;
use crate::value::{Args, HandlerError, IntoArgs, Value};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use slab::Slab;
use std::any::Any;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::rc::Rc;

/// An interned event name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct EventId(pub(crate) u32);

pub(crate) const EV_START: EventId = EventId(0);
pub(crate) const EV_STOP: EventId = EventId(1);
pub(crate) const EV_CHILD: EventId = EventId(2);
pub(crate) const EV_PARENT: EventId = EventId(3);
pub(crate) const EV_DEFAULT: EventId = EventId(4);
pub(crate) const EV_NONE: EventId = EventId(5);
pub(crate) const EV_IDLE: EventId = EventId(6);
pub(crate) const EV_ZOMBIE: EventId = EventId(7);
pub(crate) const EV_DIE: EventId = EventId(8);
const RESERVED: [&str; 9] = [
    "_start", "_stop", "_child", "_parent", "_default", "", "IDLE", "ZOMBIE", "DIE",
];

/// Every event name any kernel has used, each stored once for the life of the process, like
/// a program's symbols: a name is a `&'static str` that kernels and [`EventName`]s share
/// with no reference counting. Kernels come and go (tests make hundreds) without adding
/// anything once their names are known; a program that invents new names without end grows
/// this set, as it grows a kernel's own table of names.
///
/// [`EventName`]: crate::EventName
static INTERNED: std::sync::Mutex<Option<std::collections::HashSet<&'static str>>> =
    std::sync::Mutex::new(None);

/// `s` as an interned `&'static str` (see [`INTERNED`]).
pub(crate) fn intern_static(s: &str) -> &'static str {
    let mut set = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    let set = set.get_or_insert_with(Default::default);
    if let Some(&name) = set.get(s) {
        return name;
    }
    let name: &'static str = Box::leak(Box::from(s));
    set.insert(name);
    name
}

/// A kernel's table of event names: each name it has seen gets a small [`EventId`].
#[derive(Default)]
pub(crate) struct Names {
    map: HashMap<&'static str, EventId>,
    names: Vec<&'static str>,
    /// The last name interned: programs post the same few names in their hot loops.
    last: Option<EventId>,
}

impl Names {
    fn new() -> Self {
        let mut n = Names::default();
        for r in RESERVED {
            n.intern(r);
        }
        n
    }
    #[inline]
    fn intern(&mut self, s: &str) -> EventId {
        if let Some(last) = self.last {
            let name = self.names[last.0 as usize];
            // Wheels name their events with interned strings: the same pointer, no compare.
            if std::ptr::eq(name, s) || name == s {
                return last;
            }
        }
        self.intern_lookup(s)
    }

    fn intern_lookup(&mut self, s: &str) -> EventId {
        if let Some(&id) = self.map.get(s) {
            self.last = Some(id);
            return id;
        }
        // Queue entries keep an event id in EVENT_BITS bits: half a billion names, which
        // would take tens of gigabytes of names first.
        assert!(
            self.names.len() < 1 << EVENT_BITS,
            "more than 2^29 distinct event names"
        );
        let id = EventId(self.names.len() as u32);
        let name = intern_static(s);
        self.names.push(name);
        self.map.insert(name, id);
        id
    }
    pub(crate) fn get(&self, s: &str) -> Option<EventId> {
        self.map.get(s).copied()
    }
    pub(crate) fn name(&self, id: EventId) -> &'static str {
        self.names[id.0 as usize]
    }
    pub(crate) fn shared(&self, id: EventId) -> crate::api::EventName {
        crate::api::EventName(self.names[id.0 as usize])
    }
}

/// What a queued item is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ItemKind {
    Post = 0,
    Timer = 1,
    Signal = 2,
    Gc = 3,
}

/// What the queue orders and what cancelling and dispatching decide on, in 8 bytes, so a
/// queue entry (with its sequence number and time) is 24: the destination's slab key and,
/// packed in one word, the event, the item's kind and whether it has arguments. The rest
/// of an item, needed only to dispatch it, waits in [`ItemExtra`] beside the queue: with a
/// million timers a cancel touches one small entry, not the arguments, the caller and the
/// sender it never looks at.
#[derive(Clone, Copy)]
pub(crate) struct Item {
    /// Slab key of the destination ([`NO_KEY`] for the kernel). Items to or from a session
    /// are removed when it is freed, so this (and the sender's key in [`ItemExtra`]) names
    /// the same session for as long as the item waits, and ids need not be stored.
    pub(crate) dest_key: u32,
    /// The event id (low [`EVENT_BITS`] bits), the kind (two bits) and `has_args` (top bit).
    bits: u32,
}

/// Bits of [`Item::bits`] that hold the event id: a kernel names at most 2^29 events.
pub(crate) const EVENT_BITS: u32 = 29;

impl Item {
    #[inline]
    pub(crate) fn new(kind: ItemKind, has_args: bool, dest_key: u32, event: EventId) -> Item {
        debug_assert!(event.0 < 1 << EVENT_BITS);
        Item {
            dest_key,
            bits: event.0 | (kind as u32) << EVENT_BITS | u32::from(has_args) << 31,
        }
    }
    #[inline]
    pub(crate) fn event(self) -> EventId {
        EventId(self.bits & ((1 << EVENT_BITS) - 1))
    }
    #[inline]
    pub(crate) fn kind(self) -> ItemKind {
        match (self.bits >> EVENT_BITS) & 3 {
            0 => ItemKind::Post,
            1 => ItemKind::Timer,
            2 => ItemKind::Signal,
            _ => ItemKind::Gc,
        }
    }
    /// Whether the item's [`ItemExtra`] holds arguments to take (or drop) when it leaves.
    #[inline]
    pub(crate) fn has_args(self) -> bool {
        self.bits >> 31 != 0
    }
    /// A timer of the session with slab key `key`.
    #[inline]
    pub(crate) fn is_timer_of(self, key: u32) -> bool {
        self.kind() == ItemKind::Timer && self.dest_key == key
    }
}

/// The part of a queued item that only its dispatch reads, kept in [`Kernel::extras`] at
/// the item's queue slot. Its arguments are taken out whenever the item leaves the queue
/// ([`Kernel::item_left`], [`Kernel::take_args`]), so they are dropped then, never later
/// when the slot is reused.
pub(crate) struct ItemExtra {
    /// The arguments ([`Args::into_boxed`]); empty unless the slot's item `has_args`.
    pub(crate) args: Box<[crate::value::Arg]>,
    pub(crate) caller: &'static Location<'static>,
    pub(crate) caller_state: EventId,
    /// Slab key of the sender ([`NO_KEY`] for the kernel); a timer's is its destination's.
    pub(crate) sender_key: u32,
}

impl ItemExtra {
    fn vacant() -> Self {
        ItemExtra {
            args: Box::default(),
            caller: Location::caller(),
            caller_state: EventId(0),
            sender_key: NO_KEY,
        }
    }
}

/// How a dispatch came about; decides what a handler failure becomes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Normal,
    Call,
    Start,
    Stop,
    Lifecycle,
    Signal,
    SigDie,
}

/// A session's handlers, sorted by event id: sessions have a handful, and a binary search
/// over a few integers beats hashing. Sessions created from the same [`States`] share one
/// table (behind an `Rc`) until one of them changes its own with `state()`.
///
/// [`States`]: crate::States
#[derive(Default, Clone)]
pub(crate) struct Handlers(Vec<(EventId, Handler)>);

/// A number no other kernel of this process has.
fn next_kernel_serial() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Handlers {
    #[inline]
    fn get(&self, ev: EventId) -> Option<&Handler> {
        self.0
            .binary_search_by_key(&ev, |e| e.0)
            .ok()
            .map(|i| &self.0[i].1)
    }
    fn insert(&mut self, ev: EventId, h: Handler) {
        match self.0.binary_search_by_key(&ev, |e| e.0) {
            Ok(i) => self.0[i].1 = h,
            Err(i) => self.0.insert(i, (ev, h)),
        }
    }
    fn remove(&mut self, ev: &EventId) {
        if let Ok(i) = self.0.binary_search_by_key(ev, |e| e.0) {
            self.0.remove(i);
        }
    }
}

pub(crate) struct SessionRec {
    pub(crate) id: SessionId,
    pub(crate) parent: SessionId,
    pub(crate) children: Vec<SessionId>,
    heap: Box<dyn Any>,
    handlers: Rc<Handlers>,
    refcount: i64,
    pub(crate) events_to: u32,
    posts_from: u32,
    pub(crate) aliases: Vec<String>,
    pub(crate) timers: u32,
    extrefs: HashMap<String, u64>,
    depth: u32,
    freed: bool,
    /// Marked for collection at the next sweep (POE's `%kr_marked_for_gc`).
    marked: bool,
    pub(crate) options: SessionOptions,
}

#[derive(Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) session: SessionId,
    pub(crate) key: Option<usize>,
    pub(crate) event: EventId,
}

pub(crate) const NO_KEY: u32 = u32::MAX;

const KERNEL_FRAME: Frame = Frame {
    session: KERNEL,
    key: None,
    event: EV_NONE,
};

/// What the `DIE` signal carries as `ARG1` when a handler fails (POE's exception hash).
#[derive(Debug, Clone)]
pub struct DieInfo {
    /// The failure message (`$@`).
    pub error_str: String,
    /// The session whose handler failed.
    pub dest_session: SessionId,
    /// The event that was being handled.
    pub event: String,
    /// The session that sent that event.
    pub source_session: SessionId,
    /// The event active when that event was sent.
    pub from_state: String,
    /// Source file of the post/call that sent the event.
    pub file: &'static str,
    /// Source line of the post/call that sent the event.
    pub line: u32,
}

/// Released handles (postbacks, callbacks) report here; the kernel drains it after each
/// dispatch. `pending` lets the kernel skip the queue with one load when nothing happened.
#[derive(Default)]
pub(crate) struct Releases {
    pub(crate) pending: std::cell::Cell<bool>,
    pub(crate) queue: RefCell<ReleaseQueue>,
}

/// What [`Releases`] holds.
#[derive(Default)]
pub(crate) struct ReleaseQueue {
    pub(crate) extref_drops: Vec<(SessionId, String)>,
    pub(crate) posts: Vec<(SessionId, String, Args)>,
    pub(crate) wheel_drops: Vec<crate::wheel::WheelId>,
}

/// Builds a [`Kernel`] with a chosen clock and exception policy.
pub struct KernelBuilder {
    clock: Option<Rc<dyn Clock>>,
    catch_exceptions: bool,
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

    /// Makes the kernel.
    pub fn build(self) -> Result<Kernel> {
        let clock = self.clock.unwrap_or_else(|| Rc::new(SystemClock::new()));
        Ok(Kernel {
            serial: next_kernel_serial(),
            sessions: Slab::new(),
            by_id: HashMap::default(),
            next_sid: 1,
            kernel_children: Vec::new(),
            names: Names::new(),
            queue: Queue::new(),
            extras: Vec::new(),
            arg_lists: Vec::new(),
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
            extref_sessions: 0,
            stopping_all: false,
            releases: Rc::new(Releases::default()),
            io: Io::new()?,
            wheels: Default::default(),
            signals: SignalState::default(),
        })
    }
}

/// The event kernel: POE's `$poe_kernel`. One per thread; it owns every session, the
/// queue of pending events and timers, the I/O watchers and the signal state.
pub struct Kernel {
    /// Tells kernels apart (event ids are per kernel): see [`crate::States`].
    pub(crate) serial: u64,
    pub(crate) sessions: Slab<SessionRec>,
    pub(crate) by_id: HashMap<u64, usize>,
    next_sid: u64,
    pub(crate) kernel_children: Vec<SessionId>,
    pub(crate) names: Names,
    pub(crate) queue: Queue<Item>,
    /// The rest of each queued item, at its queue slot ([`ItemExtra`]).
    pub(crate) extras: Vec<ItemExtra>,
    /// Empty argument lists for wheels' events, given back when handlers return
    /// ([`Args`](crate::Args)).
    pub(crate) arg_lists: Vec<Vec<crate::value::Arg>>,
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
    pub(crate) extref_sessions: usize,
    stopping_all: bool,
    pub(crate) releases: Rc<Releases>,
    pub(crate) io: Io,
    pub(crate) wheels: crate::wheel::Wheels,
    pub(crate) signals: SignalState,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("sessions", &self.by_id.len())
            .field("queued", &self.queue.len())
            .finish()
    }
}

fn panic_message(p: Box<dyn Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "handler panicked".to_owned()
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
        }
    }

    // ----------------------------------------------------------------- names and time

    /// Interns an event name.
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

    /// The wall-clock time of timeline point `t`.
    #[inline]
    pub(crate) fn wall_at(&self, t: Time) -> std::time::SystemTime {
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

    // ----------------------------------------------------------------- session table

    pub(crate) fn key_of(&self, id: SessionId) -> Option<usize> {
        self.by_id.get(&id.0).copied()
    }

    /// The session at slab key `key` as an item names it: [`KERNEL`] for [`NO_KEY`].
    #[inline]
    pub(crate) fn session_of_key(&self, key: u32) -> SessionId {
        if key == NO_KEY {
            KERNEL
        } else {
            self.sessions[key as usize].id
        }
    }

    pub(crate) fn session_exists(&self, id: SessionId) -> bool {
        id.is_kernel() || self.by_id.contains_key(&id.0)
    }

    pub(crate) fn heap_of<H: 'static>(&mut self, key: usize) -> &mut H {
        self.sessions[key]
            .heap
            .downcast_mut::<H>()
            .expect("a context's heap type is the session's heap type")
    }

    /// Resolves a designator (ID, numeric string or alias) to a live session
    /// (POE's `alias_resolve`).
    pub fn resolve(&self, dest: impl Designator) -> Result<SessionId> {
        dest.resolve(self).ok_or(Error::NoSuchSession)
    }

    /// The session whose handler is running, or [`KERNEL`] outside handlers
    /// (POE's `get_active_session`).
    pub fn get_active_session(&self) -> SessionId {
        self.active.session
    }

    /// The event being handled, or `""` outside handlers (POE's `get_active_event`).
    pub fn get_active_event(&self) -> &str {
        self.event_name(self.active.event)
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.by_id.len()
    }

    /// Number of pending events and timers (POE's `get_event_count`).
    pub fn get_event_count(&self) -> usize {
        self.queue.len()
    }

    /// When the next pending item is due, as wall-clock time (POE's `get_next_event_time`).
    pub fn get_next_event_time(&self) -> Option<std::time::SystemTime> {
        self.queue.next_time().map(|t| self.wall_at(t))
    }

    /// The parent of a session ([`KERNEL`] for top-level sessions).
    pub fn parent_of(&self, id: SessionId) -> Result<SessionId> {
        let key = self.key_of(id).ok_or(Error::NoSuchSession)?;
        Ok(self.sessions[key].parent)
    }

    /// The children of a session, in creation order.
    pub fn children_of(&self, id: SessionId) -> Result<Vec<SessionId>> {
        if id.is_kernel() {
            return Ok(self.kernel_children.clone());
        }
        let key = self.key_of(id).ok_or(Error::NoSuchSession)?;
        Ok(self.sessions[key].children.clone())
    }

    /// The session with this number (POE's `ID_id_to_session`).
    #[doc(alias = "ID_id_to_session")]
    pub fn id_to_session(&self, id: u64) -> Result<SessionId> {
        SessionId(id).resolve(self).ok_or(Error::NoSuchSession)
    }

    /// The number of a session (POE's `ID_session_to_id`).
    #[doc(alias = "ID_session_to_id")]
    pub fn session_to_id(&self, dest: impl Designator) -> Result<u64> {
        Ok(self.resolve(dest)?.0)
    }

    fn children_mut(&mut self, id: SessionId) -> &mut Vec<SessionId> {
        if id.is_kernel() {
            &mut self.kernel_children
        } else {
            let key = self.by_id[&id.0];
            &mut self.sessions[key].children
        }
    }

    // ----------------------------------------------------------------- reference counts

    pub(crate) fn ref_inc(&mut self, id: SessionId) {
        if let Some(key) = self.key_of(id) {
            self.ref_inc_key(key);
        }
    }

    pub(crate) fn ref_dec(&mut self, id: SessionId) {
        if let Some(key) = self.key_of(id) {
            self.ref_dec_key(key);
        }
    }

    #[inline]
    fn ref_inc_key(&mut self, key: usize) {
        let r = &mut self.sessions[key];
        r.refcount += 1;
        if r.refcount > 0 && r.marked {
            r.marked = false;
            // A session that lost its last reference and got one back before the sweep
            // (an event dispatched, then one posted by its handler) is usually the last
            // mark: take it back, so the sweep has nothing to look at.
            if self.marked.last() == Some(&(r.id, key)) {
                self.marked.pop();
            }
        }
    }

    #[inline]
    pub(crate) fn ref_dec_key(&mut self, key: usize) {
        let r = &mut self.sessions[key];
        r.refcount -= 1;
        debug_assert!(
            r.refcount >= 0,
            "refcount of session {} went below zero",
            r.id
        );
        if r.refcount < 1 && !r.freed {
            r.marked = true;
            let id = r.id;
            self.marked.push((id, key));
        }
    }

    pub(crate) fn key_or_none(&self, id: SessionId) -> u32 {
        if id == self.active.session {
            if let Some(k) = self.active.key {
                return k as u32;
            }
        }
        self.key_of(id).map_or(NO_KEY, |k| k as u32)
    }

    pub(crate) fn ev_ref_inc(&mut self, dest_key: u32, sender_key: u32) {
        if dest_key != NO_KEY {
            let r = &mut self.sessions[dest_key as usize];
            r.events_to += 1;
            if r.events_to == 1 {
                self.ref_inc_key(dest_key as usize);
            }
        }
        if sender_key != dest_key && sender_key != NO_KEY {
            let r = &mut self.sessions[sender_key as usize];
            r.posts_from += 1;
            if r.posts_from == 1 {
                self.ref_inc_key(sender_key as usize);
            }
        }
    }

    #[inline]
    pub(crate) fn ev_ref_dec(&mut self, dest_key: u32, sender_key: u32) {
        if dest_key != NO_KEY {
            let r = &mut self.sessions[dest_key as usize];
            r.events_to -= 1;
            if r.events_to == 0 {
                self.ref_dec_key(dest_key as usize);
            }
        }
        if sender_key != dest_key && sender_key != NO_KEY {
            let r = &mut self.sessions[sender_key as usize];
            r.posts_from -= 1;
            if r.posts_from == 0 {
                self.ref_dec_key(sender_key as usize);
            }
        }
    }

    /// Adds an external reference to a session under `tag`; returns the tag's new count
    /// (POE's `refcount_increment`). While any tag is nonzero the session stays alive and
    /// the kernel never goes idle.
    pub fn refcount_increment(&mut self, id: SessionId, tag: &str) -> Result<u64> {
        let key = self.key_of(id).ok_or(Error::NoSuchSession)?;
        let r = &mut self.sessions[key];
        let was_empty = r.extrefs.is_empty();
        let c = r.extrefs.entry(tag.to_owned()).or_insert(0);
        *c += 1;
        let n = *c;
        if n == 1 {
            if was_empty {
                self.extref_sessions += 1;
            }
            self.ref_inc(id);
        }
        Ok(n)
    }

    /// Removes an external reference (POE's `refcount_decrement`); returns the tag's new
    /// count. A count already at zero stays there: the count never underflows.
    pub fn refcount_decrement(&mut self, id: SessionId, tag: &str) -> Result<u64> {
        let key = self.key_of(id).ok_or(Error::NoSuchSession)?;
        let r = &mut self.sessions[key];
        let Some(c) = r.extrefs.get_mut(tag) else {
            return Ok(0);
        };
        *c -= 1;
        let n = *c;
        if n == 0 {
            r.extrefs.remove(tag);
            if r.extrefs.is_empty() {
                self.extref_sessions -= 1;
            }
            self.ref_dec(id);
        }
        Ok(n)
    }

    #[inline]
    pub(crate) fn drain_releases(&mut self) {
        if self.releases.pending.get() {
            self.drain_releases_slow();
        }
    }

    #[cold]
    fn drain_releases_slow(&mut self) {
        while self.releases.pending.get() {
            let (drops, wheels) = {
                let mut q = self.releases.queue.borrow_mut();
                (
                    std::mem::take(&mut q.extref_drops),
                    std::mem::take(&mut q.wheel_drops),
                )
            };
            if self.releases.queue.borrow().posts.is_empty() {
                self.releases.pending.set(false);
            }
            if drops.is_empty() && wheels.is_empty() {
                return;
            }
            for id in wheels {
                self.wheel_remove(id);
            }
            for (sid, tag) in drops {
                let _ = self.refcount_decrement(sid, &tag);
            }
        }
    }

    // ----------------------------------------------------------------- sessions

    /// The handler table of `states`, interned by this kernel: made by the first session
    /// created from them, shared by the next ones.
    fn shared_table(&mut self, states: &crate::session::StatesInner) -> Rc<Handlers> {
        if let Some((serial, table)) = &*states.table.borrow() {
            if *serial == self.serial {
                return Rc::clone(table);
            }
        }
        let mut map = Handlers::default();
        for (name, h) in &states.handlers {
            let ev = self.intern(name);
            map.insert(ev, Rc::clone(h));
        }
        let table = Rc::new(map);
        *states.table.borrow_mut() = Some((self.serial, Rc::clone(&table)));
        table
    }

    /// Creates a session as a child of the active session (POE's
    /// `POE::Session->create`). Its `_start` runs before this returns, then its parent's
    /// `_child` with `create`. Fails with [`Error::NoStartState`] if there is no `_start`.
    pub fn create<H: 'static>(&mut self, session: Session<H>) -> Result<SessionId> {
        let Session {
            heap,
            handlers,
            shared,
            args,
            options,
        } = session;
        let has_start = |hs: &[(String, Handler)]| hs.iter().any(|(n, _)| n == "_start");
        if !has_start(&handlers) && !shared.as_ref().is_some_and(|s| has_start(&s.handlers)) {
            log::warn!("discarding session - no '_start' state");
            return Err(Error::NoStartState);
        }
        let map = match shared {
            // The shared table, interned once per kernel.
            Some(states) if handlers.is_empty() => self.shared_table(&states),
            shared => {
                let mut map = Handlers::default();
                let base = shared.iter().flat_map(|s| s.handlers.iter().cloned());
                for (name, h) in base.chain(handlers) {
                    let ev = self.intern(&name);
                    map.insert(ev, h);
                }
                Rc::new(map)
            }
        };
        let id = SessionId(self.next_sid);
        self.next_sid += 1;
        let parent = self.active.session;
        let key = self.sessions.insert(SessionRec {
            id,
            parent,
            children: Vec::new(),
            heap: Box::new(heap),
            handlers: map,
            refcount: 0,
            events_to: 0,
            posts_from: 0,
            aliases: Vec::new(),
            timers: 0,
            extrefs: HashMap::default(),
            depth: 0,
            freed: false,
            marked: false,
            options,
        });
        self.by_id.insert(id.0, key);
        self.children_mut(parent).push(id);
        self.ref_inc(parent);
        log::debug!("session {id} created by {parent}");

        let caller = Location::caller();
        let ret = self
            .dispatch(
                key,
                id,
                parent,
                EV_START,
                args,
                self.active.event,
                caller,
                Kind::Start,
            )
            .unwrap_or_default();
        if self.session_exists(id) {
            let p = self.sessions[key].parent;
            self.lifecycle(p, EV_CHILD, args_of(("create".to_owned(), id, ret)));
            let t = self.now_fifo();
            self.enqueue(ItemKind::Gc, id, id, EV_NONE, Args::new(), t, caller);
        }
        Ok(id)
    }

    pub(crate) fn set_handler(
        &mut self,
        key: usize,
        event: &str,
        h: Option<Handler>,
    ) -> Result<()> {
        if event.is_empty() {
            return Err(Error::InvalidArgument("empty event name"));
        }
        let ev = self.intern(event);
        let r = &mut self.sessions[key];
        match h {
            Some(h) => {
                if r.options.debug && r.handlers.get(ev).is_some() {
                    log::warn!("session {} redefined state '{}'", r.id, event);
                }
                Rc::make_mut(&mut r.handlers).insert(ev, h);
            }
            None => {
                Rc::make_mut(&mut r.handlers).remove(&ev);
            }
        }
        Ok(())
    }

    /// Gets or sets a session option of the active session (POE's `$session->option`);
    /// returns the previous options.
    pub fn set_options(&mut self, options: SessionOptions) -> Result<SessionOptions> {
        let key = self.active.key.ok_or(Error::NoActiveSession)?;
        Ok(std::mem::replace(&mut self.sessions[key].options, options))
    }

    /// The options of the active session.
    pub fn options(&self) -> Result<SessionOptions> {
        let key = self.active.key.ok_or(Error::NoActiveSession)?;
        Ok(self.sessions[key].options)
    }

    // ----------------------------------------------------------------- the queue

    /// The priority of a new post: "now", FIFO after every earlier post. During a batch
    /// "now" is the batch's snapshot (the kernel reads the clock once per timeslice, as
    /// libev and libuv do); the post then runs in the next timeslice.
    pub(crate) fn now_fifo(&mut self) -> Time {
        let mut p = match self.batch_now {
            Some(b) => b + 1,
            None => self.clock.now(),
        };
        if p <= self.last_fifo {
            p = self.last_fifo + 1;
        }
        self.last_fifo = p;
        p
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn enqueue(
        &mut self,
        kind: ItemKind,
        dest: SessionId,
        sender: SessionId,
        event: EventId,
        args: Args,
        time: Time,
        caller: &'static Location<'static>,
    ) -> ItemId {
        self.flush_postbacks();
        let dest_key = self.key_or_none(dest);
        let sender_key = self.key_or_none(sender);
        self.ev_ref_inc(dest_key, sender_key);
        if kind == ItemKind::Timer {
            self.timer_items += 1;
            if dest_key != NO_KEY {
                self.sessions[dest_key as usize].timers += 1;
            }
        }
        let caller_state = self.active.event;
        self.queue_item(
            time,
            kind,
            dest_key,
            sender_key,
            event,
            args.into_boxed(),
            caller_state,
            caller,
        )
    }

    /// Queues an item whose reference counts are already taken.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn queue_item(
        &mut self,
        time: Time,
        kind: ItemKind,
        dest_key: u32,
        sender_key: u32,
        event: EventId,
        args: Box<[crate::value::Arg]>,
        caller_state: EventId,
        caller: &'static Location<'static>,
    ) -> ItemId {
        let has_args = !args.is_empty();
        let id = self
            .queue
            .enqueue(time, Item::new(kind, has_args, dest_key, event));
        let slot = id.slot();
        if slot >= self.extras.len() {
            // The queue's slab grows one slot at a time, so this is a push.
            self.extras.resize_with(slot, ItemExtra::vacant);
            self.extras.push(ItemExtra {
                args,
                caller,
                caller_state,
                sender_key,
            });
        } else {
            let x = &mut self.extras[slot];
            x.caller = caller;
            x.caller_state = caller_state;
            x.sender_key = sender_key;
            if has_args {
                x.args = args;
            }
        }
        id
    }

    /// The arguments of item `id`, which has just left the queue (empty if it had none).
    /// Every way out of the queue calls this (most through [`Kernel::item_left`]), so
    /// arguments are dropped when their item goes.
    #[inline]
    pub(crate) fn take_args(&mut self, id: ItemId, it: Item) -> Box<[crate::value::Arg]> {
        if it.has_args() {
            std::mem::take(&mut self.extras[id.slot()].args)
        } else {
            Box::default()
        }
    }

    /// Arguments `args` in a list from the pool ([`Args`](crate::Args)).
    #[inline]
    pub(crate) fn pooled_args<const N: usize>(&mut self, args: [crate::value::Arg; N]) -> Args {
        let mut v = self
            .arg_lists
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(crate::value::POOLED_CAPACITY));
        v.extend(args);
        Args::from(v)
    }

    /// Item `id` has left the queue: releases what it held (its sessions' counts) and
    /// returns its arguments.
    pub(crate) fn item_left(&mut self, id: ItemId, it: Item) -> Box<[crate::value::Arg]> {
        let sender_key = self.extras[id.slot()].sender_key;
        let args = self.take_args(id, it);
        if it.kind() == ItemKind::Timer {
            self.timer_items -= 1;
            if it.dest_key != NO_KEY {
                self.sessions[it.dest_key as usize].timers -= 1;
            }
        }
        self.ev_ref_dec(it.dest_key, sender_key);
        args
    }

    /// Whether the active session may send: a session that has been stopped (its `_stop`
    /// already ran) sends nothing, as in POE where its queued events are discarded.
    pub(crate) fn sender_alive(&self) -> bool {
        match self.active.key {
            None => true,
            Some(k) => !self.sessions[k].freed,
        }
    }

    /// Posts `event` to a session (POE's `post`): it is queued and dispatched in order.
    /// The pending event keeps both the destination and the sender alive.
    #[track_caller]
    pub fn post(&mut self, dest: impl Designator, event: &str, args: impl IntoArgs) -> Result<()> {
        let caller = Location::caller();
        let dest = dest.resolve(self).ok_or(Error::NoSuchSession)?;
        if event.is_empty() {
            return Err(Error::InvalidArgument("empty event name"));
        }
        if !self.sender_alive() {
            return Ok(());
        }
        let ev = self.intern(event);
        let t = self.now_fifo();
        let sender = self.active.session;
        self.enqueue(
            ItemKind::Post,
            dest,
            sender,
            ev,
            args.into_args(),
            t,
            caller,
        );
        Ok(())
    }

    /// Posts `event` to the active session (POE's `yield`).
    #[doc(alias = "yield")]
    #[track_caller]
    pub fn yield_(&mut self, event: &str, args: impl IntoArgs) -> Result<()> {
        let caller = Location::caller();
        let me = self.active.session;
        if me.is_kernel() {
            return Err(Error::NoActiveSession);
        }
        if event.is_empty() {
            return Err(Error::InvalidArgument("empty event name"));
        }
        if !self.sender_alive() {
            return Ok(());
        }
        let ev = self.intern(event);
        let t = self.now_fifo();
        self.enqueue(ItemKind::Post, me, me, ev, args.into_args(), t, caller);
        Ok(())
    }

    /// Runs `f` with `session` as the active session, without an event: a component's
    /// method, called from another session's handler, acts as its own session (its timers,
    /// watchers and posts are its own, and its posts name it as the sender), as after a
    /// `call` into it, without the cost of dispatching an event. Fails with
    /// [`Error::NoSuchSession`] if the session is gone.
    pub fn run_as<R>(&mut self, session: SessionId, f: impl FnOnce(&mut Kernel) -> R) -> Result<R> {
        let key = self.key_of(session).ok_or(Error::NoSuchSession)?;
        if self.sessions[key].freed {
            return Err(Error::NoSuchSession);
        }
        let saved = self.active;
        self.active = Frame {
            session,
            key: Some(key),
            event: saved.event,
        };
        self.sessions[key].depth += 1;
        let r = f(self);
        self.active = saved;
        let rec = &mut self.sessions[key];
        rec.depth -= 1;
        if rec.freed && rec.depth == 0 {
            self.sessions.remove(key);
        }
        Ok(r)
    }

    /// Dispatches `event` to a session now and returns its handler's value (POE's `call`).
    ///
    /// A call to the active session runs the handler directly, as POE does: a failure comes
    /// back to the caller as [`Error::Died`] and no `DIE` signal is raised. A call to another
    /// session that fails raises `DIE` for that session and returns [`Error::Died`].
    #[track_caller]
    pub fn call(
        &mut self,
        dest: impl Designator,
        event: &str,
        args: impl IntoArgs,
    ) -> Result<Value> {
        let caller = Location::caller();
        let dest = dest.resolve(self).ok_or(Error::NoSuchSession)?;
        if event.is_empty() {
            return Err(Error::InvalidArgument("empty event name"));
        }
        let ev = self.intern(event);
        self.call_id(dest, ev, args.into_args(), caller)
    }

    pub(crate) fn call_id(
        &mut self,
        dest: SessionId,
        ev: EventId,
        args: Args,
        caller: &'static Location<'static>,
    ) -> Result<Value> {
        if dest.is_kernel() {
            return Ok(Value::none());
        }
        let key = self.key_of(dest).ok_or(Error::NoSuchSession)?;
        if self.active.session == dest {
            // POE invokes the handler directly: no new frame, no exception trap.
            let Some((h, state, args)) = self.find_handler(key, ev, args) else {
                return Ok(Value::none());
            };
            let inv = Invocation {
                key,
                session: dest,
                state,
                sender: dest,
                caller_state: self.active.event,
                caller,
                args,
            };
            let r = h(self, inv);
            self.drain_releases();
            return r.map_err(Error::Died);
        }
        let sender = self.active.session;
        let caller_state = self.active.event;
        self.dispatch(
            key,
            dest,
            sender,
            ev,
            args,
            caller_state,
            caller,
            Kind::Call,
        )
        .map_err(Error::Died)
    }

    fn find_handler(
        &mut self,
        key: usize,
        ev: EventId,
        args: Args,
    ) -> Option<(Handler, EventId, Args)> {
        let r = &self.sessions[key];
        if let Some(h) = r.handlers.get(ev) {
            return Some((Rc::clone(h), ev, args));
        }
        if let Some(h) = r.handlers.get(EV_DEFAULT) {
            let name = self.names.name(ev).to_owned();
            return Some((Rc::clone(h), EV_DEFAULT, args_of((name, args))));
        }
        if r.options.default && self.names.name(ev) != "_signal" {
            log::warn!(
                "a '{}' event was sent to session {} but session {} has neither a handler for it nor one for _default",
                self.names.name(ev),
                r.id,
                r.id
            );
        }
        None
    }

    /// Runs one handler in a new frame. A failure is turned into a DIE signal or the kernel
    /// exception as POE does, and also returned.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dispatch(
        &mut self,
        key: usize,
        session: SessionId,
        sender: SessionId,
        ev: EventId,
        args: Args,
        caller_state: EventId,
        caller: &'static Location<'static>,
        kind: Kind,
    ) -> std::result::Result<Value, HandlerError> {
        if self.sessions[key].freed {
            return Ok(Value::none());
        }
        let Some((h, state, args)) = self.find_handler(key, ev, args) else {
            return Ok(Value::none());
        };
        if self.sessions[key].options.trace {
            log::info!(
                "{} -> {} (from {}:{})",
                session,
                self.names.name(state),
                caller.file(),
                caller.line()
            );
        }
        log::trace!(
            "dispatching '{}' to session {} from {}",
            self.names.name(state),
            session,
            sender
        );
        let saved = self.active;
        self.active = Frame {
            session,
            key: Some(key),
            event: ev,
        };
        self.sessions[key].depth += 1;
        let inv = Invocation {
            key,
            session,
            state,
            sender,
            caller_state,
            caller,
            args,
        };
        // A panic is a failure like a returned error; `handler_failed` decides, from
        // `catch_exceptions`, whether it becomes DIE or ends the run.
        let result = match catch_unwind(AssertUnwindSafe(|| h(self, inv))) {
            Ok(r) => r,
            Err(p) => Err(HandlerError::new(panic_message(p))),
        };
        self.flush_postbacks();
        self.active = saved;
        let r = &mut self.sessions[key];
        r.depth -= 1;
        if r.freed && r.depth == 0 {
            self.sessions.remove(key);
        }
        self.drain_releases();
        if let Err(e) = &result {
            self.handler_failed(e, session, sender, ev, caller_state, caller, kind);
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn handler_failed(
        &mut self,
        e: &HandlerError,
        session: SessionId,
        sender: SessionId,
        ev: EventId,
        caller_state: EventId,
        caller: &'static Location<'static>,
        kind: Kind,
    ) {
        log::debug!(
            "session {} failed in '{}': {}",
            session,
            self.names.name(ev),
            e
        );
        let fatal = !self.catch_exceptions || matches!(kind, Kind::Stop | Kind::SigDie);
        if fatal {
            self.exception = Some(e.clone());
            return;
        }
        if !self.session_exists(session) {
            return;
        }
        let info = DieInfo {
            error_str: e.message().to_owned(),
            dest_session: session,
            event: self.names.name(ev).to_owned(),
            source_session: sender,
            from_state: self.names.name(caller_state).to_owned(),
            file: caller.file(),
            line: caller.line(),
        };
        let t = self.now_fifo();
        self.enqueue(
            ItemKind::Signal,
            session,
            KERNEL,
            EV_DIE,
            args_of((info,)),
            t,
            caller,
        );
    }
}

/// Shorthand used inside the crate to build argument lists.
pub(crate) fn args_of(a: impl IntoArgs) -> Args {
    a.into_args()
}

// The rest of the kernel (lifecycle, GC, run loop, postbacks) is below.
impl Kernel {
    // ----------------------------------------------------------------- stopping

    /// Dispatches a lifecycle event (`_child`, `_parent`) from the kernel to `to`, if it
    /// still exists.
    pub(crate) fn lifecycle(&mut self, to: SessionId, ev: EventId, args: Args) {
        if let Some(key) = self.key_of(to) {
            let caller = Location::caller();
            let _ = self.dispatch(key, to, KERNEL, ev, args, EV_NONE, caller, Kind::Lifecycle);
        }
    }

    /// Stops a session now: its children move to its parent (`_child gain`, `_parent`),
    /// it gets `_stop`, its parent gets `_child lose`, and everything it held is released.
    pub(crate) fn stop_session(&mut self, id: SessionId) {
        if id.is_kernel() || !self.stopping.insert(id.0) {
            return;
        }
        let Some(key) = self.key_of(id) else {
            self.stopping.remove(&id.0);
            return;
        };
        let caller = Location::caller();
        let parent = self.sessions[key].parent;
        let children = self.sessions[key].children.clone();
        for child in children {
            self.lifecycle(parent, EV_CHILD, args_of(("gain".to_owned(), child)));
            if let Some(ck) = self.key_of(child) {
                let old = self.sessions[ck].parent;
                self.lifecycle(child, EV_PARENT, args_of((old, parent)));
            }
        }
        let sender = self.active.session;
        let ret = self
            .dispatch(
                key,
                id,
                sender,
                EV_STOP,
                Args::new(),
                EV_NONE,
                caller,
                Kind::Stop,
            )
            .unwrap_or_default();
        let parent = self.sessions[key].parent;
        self.lifecycle(parent, EV_CHILD, args_of(("lose".to_owned(), id, ret)));
        self.free_session(id, key);
        self.stopping.remove(&id.0);
    }

    fn free_session(&mut self, id: SessionId, key: usize) {
        log::debug!("session {id} freed");
        let parent = self.sessions[key].parent;
        if self.session_exists(parent) {
            self.children_mut(parent).retain(|&c| c != id);
            self.ref_dec(parent);
        }
        let children = std::mem::take(&mut self.sessions[key].children);
        for child in children {
            if let Some(ck) = self.key_of(child) {
                self.sessions[ck].parent = parent;
                if self.session_exists(parent) {
                    self.children_mut(parent).push(child);
                    self.ref_inc(parent);
                }
            }
        }
        self.signals_clear_session(id);
        for alias in std::mem::take(&mut self.sessions[key].aliases) {
            self.aliases.remove(&alias);
        }
        if !self.sessions[key].extrefs.is_empty() {
            self.sessions[key].extrefs.clear();
            self.extref_sessions -= 1;
        }
        self.io_clear_session(id);
        self.wheels_clear_session(id);
        let r = &self.sessions[key];
        if r.events_to > 0 || r.posts_from > 0 {
            let extras = &self.extras;
            let key = key as u32;
            let gone = self.queue.remove_matching_ids(|id, it| {
                it.dest_key == key || extras[id.slot()].sender_key == key
            });
            for (_, id, it) in gone {
                // Releases the other party's count too.
                self.item_left(id, it);
            }
        }
        self.by_id.remove(&id.0);
        let r = &mut self.sessions[key];
        r.marked = false;
        r.freed = true;
        if r.depth == 0 {
            self.sessions.remove(key);
        }
    }

    /// Stops every session, leaf first, each with `_stop` and its parent's `_child lose`
    /// (POE's `stop`); `run()` then returns.
    pub fn stop(&mut self) {
        let order = self.bfs(KERNEL);
        let saved = self.active;
        self.active = KERNEL_FRAME;
        self.stopping_all = true;
        for id in order.into_iter().rev() {
            if !id.is_kernel() && self.session_exists(id) {
                self.stop_session(id);
            }
        }
        self.stopping_all = false;
        self.active = saved;
        self.gc_sweep();
    }

    /// The session tree below `root` in breadth-first order, `root` first.
    pub(crate) fn bfs(&self, root: SessionId) -> Vec<SessionId> {
        let mut out = vec![root];
        let mut i = 0;
        while i < out.len() {
            let id = out[i];
            if id.is_kernel() {
                out.extend(self.kernel_children.iter().copied());
            } else if let Some(k) = self.key_of(id) {
                out.extend(self.sessions[k].children.iter().copied());
            }
            i += 1;
        }
        out
    }

    /// Stops every session marked for collection, the most recently marked first (POE's
    /// `_data_ses_gc_sweep`), until no marks remain.
    #[inline]
    pub(crate) fn gc_sweep(&mut self) {
        if !self.marked.is_empty() {
            self.gc_sweep_slow();
        }
    }

    #[cold]
    fn gc_sweep_slow(&mut self) {
        while !self.marked.is_empty() {
            let mut todo = std::mem::take(&mut self.marked);
            for &(id, key) in todo.iter().rev() {
                // The key may have been freed and reused since the mark: check the id.
                let Some(r) = self.sessions.get_mut(key) else {
                    continue;
                };
                if r.id != id {
                    continue;
                }
                if std::mem::take(&mut r.marked) {
                    self.stop_session(id);
                }
            }
            todo.clear();
            if self.marked.is_empty() {
                // Keep the allocation for the next sweep.
                self.marked = todo;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{EventId, Item, ItemKind, EVENT_BITS};

    /// Queued items stay small: with a million timers their size decides what setting and
    /// cancelling one costs (see docs/benchmarks.md).
    #[test]
    fn a_queued_item_fits_in_8_bytes() {
        assert_eq!(std::mem::size_of::<Item>(), 8);
    }

    #[test]
    fn items_pack_and_unpack() {
        for kind in [
            ItemKind::Post,
            ItemKind::Timer,
            ItemKind::Signal,
            ItemKind::Gc,
        ] {
            for has_args in [false, true] {
                for ev in [0, 1, 12345, (1 << EVENT_BITS) - 1] {
                    let it = Item::new(kind, has_args, 7, EventId(ev));
                    assert_eq!(it.kind(), kind);
                    assert_eq!(it.has_args(), has_args);
                    assert_eq!(it.event(), EventId(ev));
                    assert_eq!(it.dest_key, 7);
                    assert_eq!(it.is_timer_of(7), kind == ItemKind::Timer);
                    assert!(!it.is_timer_of(8));
                }
            }
        }
    }
}
