//! The kernel's side of wheels: the [`Wheel`] trait, wheel ids and handles, and the wheel
//! table. Wheels are I/O state machines that live in the kernel and turn readiness into
//! named events for the session that made them (POE's `POE::Wheel::*`); the concrete ones
//! are in [`crate::wheel`].
//!
//! A wheel is stored in a [`slab`] inside the kernel; its session holds a [`WheelHandle`].
//! Dropping the handle (usually by dropping the heap field that holds it, as POE programs
//! `delete $heap->{wheel}`) queues a release that the kernel carries out right after the
//! running handler returns: the wheel's sources are deregistered, its socket closed, and no
//! event of it is dispatched afterwards. Wheel IDs count up from 1 and are never reused;
//! readiness for a removed wheel is recognised by a generation in the mio token and ignored.
//!
//! The kernel knows wheels only through the [`Wheel`] trait defined here; it never names a
//! concrete wheel.
//!
//! ## Level-triggered readiness on an edge-triggered poller
//!
//! A wheel registers its sources once, for every direction it may use, and keeps a ready
//! flag per direction. mio sets a flag; the wheel clears it only when an operation says so
//! (`WouldBlock`, or a short read, which means the socket buffer was drained and the next
//! arrival will raise a new edge). Each timeslice the kernel dispatches every wheel with
//! pending work: all reads first, then all writes, as POE's select loop does. There is no
//! re-registration per message, so an echoed message costs one `read` and one `write`.

use super::select::Mode;
use super::session::SessionId;
use super::{EventId, Kernel, Kind};
use crate::error::{Error, Result};
pub use crate::ids::WheelId;
use crate::value::{Args, Value};
use crate::wheel::WheelError;
use mio::{Registry, Token};
use std::any::Any;
use std::fmt;
use std::panic::Location;
use std::rc::Weak;

/// What the kernel needs of a wheel. Implemented by [`ReadWrite`](crate::wheel::ReadWrite),
/// [`SocketFactory`](crate::wheel::SocketFactory), [`ListenAccept`](crate::wheel::ListenAccept),
/// [`Run`](crate::wheel::Run), [`FollowTail`](crate::wheel::FollowTail) and
/// [`Udp`](crate::wheel::Udp); other crates may implement it for wheels of their own.
pub trait Wheel: Any {
    /// Registers the wheel's sources (at most two: input and output) with `tokens`.
    fn register(&mut self, registry: &Registry, tokens: [Token; 2]) -> std::io::Result<()>;

    /// Deregisters every source.
    fn deregister(&mut self, registry: &Registry);

    /// Records readiness reported by the poller for source `which` (0 or 1).
    fn note_ready(&mut self, which: usize, readable: bool, writable: bool);

    /// Records that the poller saw the peer close (or an error) on source `which`: the
    /// wheel should read on until end-of-file rather than wait for another edge.
    fn note_closed(&mut self, which: usize) {
        let _ = which;
    }

    /// Whether the wheel still watches something and so keeps its session alive (POE: a
    /// session lives while it has watchers). A factory whose connection was handed over, or
    /// whose construction failed, holds nothing.
    fn holds_session(&self) -> bool {
        true
    }

    /// Whether the wheel has work for a read dispatch and for a write dispatch now.
    fn pending(&self) -> (bool, bool);

    /// Whether a dispatch in `mode` would do anything now; the table dispatches only
    /// wheels that say so. By default what [`pending`](Wheel::pending) says for that
    /// direction. A wheel that writes only what it was armed with ([`Wheel::arm`]) may
    /// say no to a write pass it was not armed for: the output waits for the next poll
    /// either way, and the table saves a call that would find nothing to do.
    fn due(&self, mode: Mode) -> bool {
        let (r, w) = self.pending();
        match mode {
            Mode::Read => r,
            Mode::Write => w,
        }
    }

    /// The write pass's visit of the wheel, for a wheel whose usual write needs nothing of
    /// the kernel: [`WriteVisit::Done`] or [`WriteVisit::Listed`] when the visit is done
    /// (the wheel wrote, if a write dispatch was [`due`](Wheel::due)), as it has no work
    /// left or still has some ([`pending`](Wheel::pending)); [`WriteVisit::Dispatch`]
    /// when the kernel is to dispatch it in [`Mode::Write`] (to raise an event, say), at
    /// once. A write that failed is handed to that dispatch with [`WriteOut::fail`].
    /// `out` also keeps buffers written out, for later reads ([`WriteOut::keep`]). By
    /// default: `Dispatch` when due, else what `pending` says.
    fn write_visit(&mut self, out: &mut WriteOut) -> WriteVisit {
        let _ = out;
        if self.due(Mode::Write) {
            WriteVisit::Dispatch
        } else {
            let (r, w) = self.pending();
            WriteVisit::listed(r || w)
        }
    }

    /// A poll has just returned and the wheel is about to be dispatched: called once per
    /// timeslice for a listed wheel, at its read visit or, if that comes first, when a
    /// handler of the read pass reaches it through the kernel ([`Kernel::wheel_mut`]),
    /// so before any of this timeslice's handlers can change it. POE watches a handle
    /// for writing only while output waits, so output queued by now may be written in
    /// this timeslice's write pass, and output queued later (by this timeslice's
    /// handlers) waits for the next poll: a wheel that writes remembers here what it may
    /// write.
    fn arm(&mut self) {}

    /// The readiness the wheel has seen and not used up: (readable, writable, peer
    /// closed). Kept by [`Kernel::wheel_park`] for the next wheel on the same handle.
    fn readiness(&self) -> Readiness {
        Readiness::default()
    }

    /// Takes over readiness seen before the wheel existed (see
    /// [`Kernel::wheel_insert_parked`]).
    fn adopt_readiness(&mut self, readiness: Readiness) {
        let _ = readiness;
    }

    /// Does the work of one dispatch in `mode`, calling the owner's events through `kernel`.
    /// The wheel is reached again through [`Kernel::wheel_mut`] between events, since a
    /// handler may change or drop it.
    fn dispatch(kernel: &mut Kernel, id: WheelId, mode: Mode)
    where
        Self: Sized;
}

/// What a wheel's [`Wheel::write_visit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteVisit {
    /// The visit is done, and the wheel has no work left: it waits for an edge.
    Done,
    /// The visit is done, and the wheel still has work: it stays listed.
    Listed,
    /// The kernel is to dispatch the wheel in [`Mode::Write`] now.
    Dispatch,
}

impl WriteVisit {
    /// `Listed` if `work`, else `Done`.
    #[inline]
    pub fn listed(work: bool) -> WriteVisit {
        if work {
            WriteVisit::Listed
        } else {
            WriteVisit::Done
        }
    }
}

/// What the write pass lends a wheel's [`Wheel::write_visit`]: room for buffers written
/// out, which the kernel keeps for later reads, and for the failure of a write.
#[derive(Default)]
pub struct WriteOut {
    /// Small buffers written out, for the copies of the next reads: kept here, not in
    /// each wheel, so an idle wheel holds none.
    spares: Vec<Vec<u8>>,
    /// The failure of a write, for the write dispatch that follows the visit
    /// ([`Kernel::wheel_write_failure`]).
    failure: Option<Box<WheelError>>,
}

impl fmt::Debug for WriteOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteOut")
            .field("spares", &self.spares.len())
            .field("failure", &self.failure)
            .finish()
    }
}

impl WriteOut {
    /// Keeps a buffer written out for a later read, if it is small and there is room.
    #[inline]
    pub fn keep(&mut self, done: Vec<u8>) {
        keep_spare_buffer(&mut self.spares, done);
    }

    /// Hands the failure of the visit's write to the write dispatch that the returned
    /// [`WriteVisit::Dispatch`] asks for: [`Kernel::wheel_write_failure`] gives it back
    /// there.
    #[cold]
    pub fn fail(&mut self, failure: WheelError) -> WriteVisit {
        self.failure = Some(Box::new(failure));
        WriteVisit::Dispatch
    }

    /// The buffers kept.
    #[inline]
    pub(crate) fn spares(&mut self) -> &mut Vec<Vec<u8>> {
        &mut self.spares
    }
}

/// Readiness a wheel has seen and not used up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// The input side reported readable.
    pub readable: bool,
    /// The output side reported writable.
    pub writable: bool,
    /// The poller saw the peer close.
    pub closed: bool,
}

/// A handle's poller registration kept after its wheel was taken out
/// ([`Kernel::wheel_park`]), for the next wheel on the same handle
/// ([`Kernel::wheel_insert_parked`]). Generation-checked: a stale one is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parking {
    key: usize,
    gen: u32,
}

/// What a parked slot holds: the readiness reported while no wheel used the handle.
struct Parked(Readiness);

impl Wheel for Parked {
    fn register(&mut self, _: &Registry, _: [Token; 2]) -> std::io::Result<()> {
        Ok(())
    }
    fn deregister(&mut self, _: &Registry) {}
    fn note_ready(&mut self, _which: usize, readable: bool, writable: bool) {
        self.0.readable |= readable;
        self.0.writable |= writable;
    }
    fn note_closed(&mut self, _which: usize) {
        self.0.closed = true;
        self.0.readable = true;
    }
    fn holds_session(&self) -> bool {
        false
    }
    fn pending(&self) -> (bool, bool) {
        (false, false)
    }
    fn readiness(&self) -> Readiness {
        self.0
    }
    fn dispatch(_: &mut Kernel, _: WheelId, _: Mode) {}
}

/// The object-safe part of [`Wheel`], with a downcast.
pub(crate) trait WheelObj: Any {
    fn register(&mut self, registry: &Registry, tokens: [Token; 2]) -> std::io::Result<()>;
    fn deregister(&mut self, registry: &Registry);
    fn note_ready(&mut self, which: usize, readable: bool, writable: bool);
    fn note_closed(&mut self, which: usize);
    fn holds_session(&self) -> bool;
    /// After a read dispatch, in one dynamic call: [`Wheel::holds_session`], and whether a
    /// write dispatch is [`due`](Wheel::due) now.
    fn after_read(&self) -> (bool, bool);
    fn pending(&self) -> (bool, bool);
    /// The read pass's visit: [`Wheel::arm`] first if `arm`, then the wheel type's
    /// [`Wheel::dispatch`] if a read dispatch is [`due`](Wheel::due): all in one dynamic
    /// call.
    fn read_visit(&mut self, arm: bool) -> Option<fn(&mut Kernel, WheelId, Mode)>;
    /// [`Wheel::write_visit`].
    fn write_visit(&mut self, out: &mut WriteOut) -> WriteVisit;
    fn arm(&mut self);
    fn readiness(&self) -> Readiness;
    /// The wheel type's [`Wheel::dispatch`].
    fn dispatcher(&self) -> fn(&mut Kernel, WheelId, Mode);
}

/// A wheel object as `Any`, for downcasts: the object's `Any` vtable is found in its own
/// (trait upcasting), with no call.
impl dyn WheelObj {
    #[inline]
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    #[inline]
    fn as_any(&self) -> &dyn Any {
        self
    }
    #[inline]
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl<W: Wheel> WheelObj for W {
    fn register(&mut self, registry: &Registry, tokens: [Token; 2]) -> std::io::Result<()> {
        Wheel::register(self, registry, tokens)
    }
    fn deregister(&mut self, registry: &Registry) {
        Wheel::deregister(self, registry)
    }
    fn note_ready(&mut self, which: usize, readable: bool, writable: bool) {
        Wheel::note_ready(self, which, readable, writable)
    }
    fn note_closed(&mut self, which: usize) {
        Wheel::note_closed(self, which)
    }
    fn holds_session(&self) -> bool {
        Wheel::holds_session(self)
    }
    fn after_read(&self) -> (bool, bool) {
        (Wheel::holds_session(self), Wheel::due(self, Mode::Write))
    }
    fn pending(&self) -> (bool, bool) {
        Wheel::pending(self)
    }
    fn read_visit(&mut self, arm: bool) -> Option<fn(&mut Kernel, WheelId, Mode)> {
        if arm {
            Wheel::arm(self);
        }
        if Wheel::due(self, Mode::Read) {
            Some(W::dispatch)
        } else {
            None
        }
    }
    fn write_visit(&mut self, out: &mut WriteOut) -> WriteVisit {
        Wheel::write_visit(self, out)
    }
    fn arm(&mut self) {
        Wheel::arm(self)
    }
    fn readiness(&self) -> Readiness {
        Wheel::readiness(self)
    }
    fn dispatcher(&self) -> fn(&mut Kernel, WheelId, Mode) {
        W::dispatch
    }
}

/// A located wheel: slab key and id (see [`Kernel::wheel_locate`]).
#[derive(Clone, Copy)]
pub(crate) struct WheelAt {
    key: usize,
    id: WheelId,
    /// The owner's slot in the session table (see [`Kernel::wheel_call_at`]).
    owner_key: u32,
}

pub(crate) struct WheelSlot {
    id: WheelId,
    owner: SessionId,
    /// The owner's slot in the session table: the wheel's events reach it without a
    /// look-up by id (checked against `owner` when used).
    owner_key: u32,
    gen: u32,
    obj: Box<dyn WheelObj>,
    /// Listed in `Wheels::active` (may have pending work).
    active: bool,
    /// Holds a reference on its owner (see [`Wheel::holds_session`]).
    holding: bool,
    /// The table's dispatch ([`Wheels::epoch`]) in which the wheel was last armed
    /// ([`Wheel::arm`]), or in which it was put in the slot (it is first armed in the
    /// dispatch after that one).
    armed: u32,
    /// This dispatch's write pass passes the wheel by, keeping it listed: its read
    /// dispatch left it nothing to write in this pass ([`Wheel::due`] in
    /// [`Mode::Write`] said no), so the visit would only have said it is still listed.
    /// Cleared by [`Kernel::wheel_rearmed`] and by the pass.
    write_quiet: bool,
}

impl WheelSlot {
    /// Arms the wheel if the read pass of dispatch `epoch` is under way (`epoch` is not
    /// 0) and has not armed it yet: before a handler of that pass reaches the wheel, so
    /// that the wheel is armed with what it held at the poll, as if every listed wheel
    /// had been armed before the pass.
    #[inline(always)]
    fn arm_before_use(&mut self, epoch: u32) {
        if epoch != 0 && self.armed != epoch {
            self.armed = epoch;
            self.obj.arm();
        }
    }

    /// Lists the wheel at slab key `key` in `active` (the wheels that may have work), once.
    #[inline]
    fn enlist(&mut self, key: usize, active: &mut Vec<usize>) {
        if !self.active {
            self.active = true;
            active.push(key);
        }
    }
}

/// The kernel's wheel table.
#[derive(Default)]
pub(crate) struct Wheels {
    slots: slab::Slab<WheelSlot>,
    next_id: u64,
    next_gen: u32,
    /// Slab keys of wheels that may have work without a new poller event.
    active: Vec<usize>,
    /// The list a dispatch walks, kept empty between dispatches so that its storage
    /// serves the next one (see [`Kernel::wheels_dispatch`]).
    visiting: Vec<usize>,
    /// Wheels that hold their session (and keep the kernel from being idle).
    holding: usize,
    /// The count of dispatches ([`Kernel::wheels_dispatch`]; 0 before the first, and
    /// then never 0 again, see [`Kernel::wheels_next_epoch`]): a wheel is armed
    /// at its read visit, or when it is reached by a handler of the read pass before
    /// that visit, once per dispatch (see [`WheelSlot::armed`]).
    epoch: u32,
    /// `epoch` while the read pass runs, else 0: while it is not 0, a wheel reached
    /// through the kernel is armed first if this dispatch has not armed it yet.
    arming: u32,
    /// The read buffer every wheel borrows for one read.
    read_buf: Vec<u8>,
    /// What the write pass lends the wheels' [`Wheel::write_visit`]: the buffers they
    /// wrote out, kept for reads, and the failure of a write.
    out: WriteOut,
    /// Boxes of [`Parked`] left by wheels put into parkings, for the next parking: a
    /// socket parked and taken up again per request allocates none.
    parked_boxes: Vec<Box<dyn WheelObj>>,
}

/// The most written-out buffers the kernel keeps for reads: enough for as many
/// connections with a message in flight, so that in steady request/response traffic
/// every read finds one (at most 512 KiB).
const SPARES_MAX: usize = 512;

/// The most [`Parked`] boxes kept for reuse (they are empty: only the allocator's chunk).
const PARKED_BOXES_MAX: usize = 64;

/// The largest written-out buffer kept for a read: enough for the records of
/// request/response protocols.
const SPARE_BYTES_MAX: usize = 1024;

impl Wheels {
    /// The slot of wheel `id`, if it is still there: the id names its slot, and the slot
    /// still holds that wheel (a later wheel in the same slot has another id).
    #[inline]
    fn key_of(&self, id: WheelId) -> Option<usize> {
        let key = id.key();
        self.slots.get(key).filter(|s| s.id == id).map(|_| key)
    }

    /// Arms the wheels in slots `keys` ([`Wheel::arm`]).
    fn arm(&mut self, keys: &[usize]) {
        for &key in keys {
            if let Some(s) = self.slots.get_mut(key) {
                s.obj.arm();
                s.write_quiet = false;
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Readiness from the poller for source `which` of the wheel in slot `key` (of
    /// generation `gen`: a later wheel in the slot ignores it): noted in the wheel, which
    /// is listed. `closed`: the poller saw the peer close, or an error
    /// ([`Wheel::note_closed`]), which is noted out of line.
    #[inline]
    pub(crate) fn note_event(
        &mut self,
        key: usize,
        gen: u32,
        which: usize,
        readable: bool,
        writable: bool,
        closed: bool,
    ) {
        if closed {
            return self.note_closed_event(key, gen, which, readable, writable);
        }
        let Some(s) = self.slots.get_mut(key) else {
            return;
        };
        if s.gen != gen {
            return;
        }
        s.obj.note_ready(which, readable, writable);
        s.enlist(key, &mut self.active);
    }

    /// [`Wheels::note_event`] for a source the peer closed, or that failed.
    #[cold]
    #[inline(never)]
    fn note_closed_event(
        &mut self,
        key: usize,
        gen: u32,
        which: usize,
        readable: bool,
        writable: bool,
    ) {
        let Some(s) = self.slots.get_mut(key).filter(|s| s.gen == gen) else {
            return;
        };
        s.obj.note_ready(which, readable, writable);
        s.obj.note_closed(which);
        s.enlist(key, &mut self.active);
    }

    /// Wheels that still watch something.
    pub(crate) fn holding(&self) -> usize {
        self.holding
    }

    pub(crate) fn has_active(&self) -> bool {
        self.active.iter().any(|&k| {
            self.slots.get(k).is_some_and(|s| {
                let (r, w) = s.obj.pending();
                r || w
            })
        })
    }
}

/// The owner's handle on a wheel: dropping it removes the wheel (POE's
/// `delete $heap->{wheel}`).
pub struct WheelHandle {
    id: WheelId,
    releases: Weak<super::Releases>,
}

impl WheelHandle {
    /// The wheel's ID.
    pub fn id(&self) -> WheelId {
        self.id
    }
}

impl fmt::Debug for WheelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WheelHandle({})", self.id)
    }
}

impl Drop for WheelHandle {
    fn drop(&mut self) {
        if let Some(q) = self.releases.upgrade() {
            q.queue.borrow_mut().wheel_drops.push(self.id);
            q.pending.set(true);
        }
    }
}

impl Kernel {
    /// Puts a wheel into the kernel, owned by the active session, and registers its
    /// sources. Wheels call this from their `build`.
    pub fn wheel_insert<W: Wheel>(&mut self, wheel: W) -> Result<WheelHandle> {
        let owner = self.active.session;
        if owner.is_kernel() {
            return Err(Error::NoActiveSession);
        }
        let owner_key = self.active_slot();
        let w = &mut self.wheels;
        let entry = w.slots.vacant_entry();
        let key = entry.key();
        if key > WheelId::MAX_KEY {
            return Err(Error::InvalidArgument("too many wheels at once"));
        }
        w.next_id += 1;
        w.next_gen = (w.next_gen + 1) & super::token::GEN_MASK;
        let id = WheelId::new(w.next_id, key);
        let gen = w.next_gen;
        entry.insert(WheelSlot {
            id,
            owner,
            owner_key,
            gen,
            obj: Box::new(wheel),
            active: false,
            holding: false,
            armed: w.epoch,
            write_quiet: false,
        });
        let tokens = [
            super::token::wheel(key, gen, 0),
            super::token::wheel(key, gen, 1),
        ];
        if let Err(e) = self.wheels.slots[key]
            .obj
            .register(self.io.registry(), tokens)
        {
            self.wheels.slots.remove(key);
            return Err(Error::Io(e));
        }
        Ok(self.wheel_enlist(key, id, owner))
    }

    /// The last steps of putting a wheel in slot `key`: listed under its id, holding a
    /// reference on its owner until it watches nothing, activated; its handle.
    fn wheel_enlist(&mut self, key: usize, id: WheelId, owner: SessionId) -> WheelHandle {
        self.handles_add(owner, 1);
        self.wheels.slots[key].holding = true;
        self.wheels.holding += 1;
        self.ref_inc(owner);
        self.wheel_release_if_idle(key);
        self.wheel_activate(key);
        WheelHandle {
            id,
            releases: std::rc::Rc::downgrade(&self.releases),
        }
    }

    /// Drops the session reference of a wheel that no longer watches anything.
    fn wheel_release_if_idle(&mut self, key: usize) {
        if let Some(s) = self.wheels.slots.get(key) {
            if s.holding && !s.obj.holds_session() {
                self.wheel_release(key);
            }
        }
    }

    /// The wheel in slot `key` lets its session go: it no longer holds a reference on
    /// its owner.
    fn wheel_release(&mut self, key: usize) {
        if let Some(s) = self.wheels.slots.get_mut(key) {
            s.holding = false;
            let owner = s.owner;
            self.wheels.holding -= 1;
            self.ref_dec(owner);
        }
    }

    /// Wheel `id` worked outside the I/O phase (a wake-up, see `wakes.rs`): if it
    /// watches nothing now, it lets its session go.
    pub(crate) fn wheel_settle(&mut self, id: WheelId) {
        if let Some(key) = self.wheels.key_of(id) {
            self.wheel_release_if_idle(key);
        }
    }

    /// The active session's slot in the session table, as a wheel slot keeps its owner's
    /// (`u32::MAX` for none).
    fn active_slot(&self) -> u32 {
        self.active.slot()
    }

    fn wheel_activate(&mut self, key: usize) {
        if let Some(s) = self.wheels.slots.get_mut(key) {
            s.enlist(key, &mut self.wheels.active);
        }
    }

    /// The wheel `id` as a `W`, if it exists and is one. Changes made through it (a `put`,
    /// a resume) take effect at the next I/O phase.
    pub fn wheel_mut<W: Wheel>(&mut self, id: WheelId) -> Option<&mut W> {
        // One look-up: the slot is checked, armed if need be, activated and downcast in
        // place.
        let w = &mut self.wheels;
        let s = w.slots.get_mut(id.key()).filter(|s| s.id == id)?;
        s.arm_before_use(w.arming);
        s.enlist(id.key(), &mut w.active);
        s.obj.as_any_mut().downcast_mut::<W>()
    }

    /// The wheel and the poller's registry at once, for wheels that hand a source over.
    pub(crate) fn wheel_and_registry<W: Wheel>(
        &mut self,
        id: WheelId,
    ) -> Option<(&mut W, &Registry)> {
        let key = self.wheels.key_of(id)?;
        let s = &mut self.wheels.slots[key];
        s.arm_before_use(self.wheels.arming);
        let w = s.obj.as_any_mut().downcast_mut::<W>()?;
        Some((w, self.io.registry()))
    }

    /// In a wheel's write dispatch that follows its [`Wheel::write_visit`]: the failure
    /// of the write that visit made, once.
    pub fn wheel_write_failure(&mut self) -> Option<Box<WheelError>> {
        self.wheels.out.failure.take()
    }

    /// The read buffer wheels share: take it, read into it, put it back.
    pub fn wheel_read_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.wheels.read_buf
    }

    /// The wheel `id` as a `W`, read-only.
    pub fn wheel_ref<W: Wheel>(&self, id: WheelId) -> Option<&W> {
        let key = self.wheels.key_of(id)?;
        self.wheels.slots[key].obj.as_any().downcast_ref::<W>()
    }

    /// Finds a wheel once for a dispatch: its slot and owner. [`Kernel::wheel_at`] then
    /// reaches it without a lookup by id, and sees it gone if a handler dropped it.
    pub(crate) fn wheel_locate(&self, id: WheelId) -> Option<(WheelAt, SessionId)> {
        let key = self.wheels.key_of(id)?;
        let s = &self.wheels.slots[key];
        Some((
            WheelAt {
                key,
                id,
                owner_key: s.owner_key,
            },
            s.owner,
        ))
    }

    /// The wheel at a located slot, if it is still the same wheel.
    pub(crate) fn wheel_at<W: Wheel>(&mut self, at: WheelAt) -> Option<&mut W> {
        let w = &mut self.wheels;
        let s = w.slots.get_mut(at.key).filter(|s| s.id == at.id)?;
        s.arm_before_use(w.arming);
        s.obj.as_any_mut().downcast_mut::<W>()
    }

    /// [`Kernel::wheel_at`], with the kernel's shared read buffer and the buffers wheels
    /// have written out beside it (see `spare_buffer_for` and `keep_spare_buffer`): in
    /// a request and response exchange each record's buffer then serves the next read.
    #[allow(clippy::type_complexity)]
    pub(crate) fn wheel_at_with_buffers<W: Wheel>(
        &mut self,
        at: WheelAt,
    ) -> Option<(&mut W, &mut Vec<u8>, &mut Vec<Vec<u8>>)> {
        let Wheels {
            slots,
            read_buf,
            out,
            arming,
            ..
        } = &mut self.wheels;
        let s = slots.get_mut(at.key).filter(|s| s.id == at.id)?;
        s.arm_before_use(*arming);
        let w = s.obj.as_any_mut().downcast_mut::<W>()?;
        Some((w, read_buf, &mut out.spares))
    }

    /// The session that owns wheel `id`.
    pub fn wheel_owner(&self, id: WheelId) -> Option<SessionId> {
        let key = self.wheels.key_of(id)?;
        Some(self.wheels.slots[key].owner)
    }

    /// Removes a wheel: deregisters it and drops it (closing its handles).
    pub(crate) fn wheel_remove(&mut self, id: WheelId) {
        if self.wheel_unslot(id).is_some() {
            log::trace!("wheel {id} removed");
        }
    }

    /// Takes wheel `id` out of the table: deregistered, its reference on the owner
    /// released. What becomes of it (dropped, or handed back) is the caller's.
    fn wheel_unslot(&mut self, id: WheelId) -> Option<WheelSlot> {
        let key = self.wheels.key_of(id)?;
        self.wheel_wake_clear(id);
        let mut slot = self.wheels.slots.remove(key);
        slot.arm_before_use(self.wheels.arming);
        slot.obj.deregister(self.io.registry());
        self.handles_add(slot.owner, -1);
        if slot.holding {
            self.wheels.holding -= 1;
            self.ref_dec(slot.owner);
        }
        Some(slot)
    }

    /// Takes a wheel out of the kernel through its handle: deregisters it and returns it,
    /// without closing its handles, so its socket can be used again (a keep-alive pool
    /// takes a connection's socket back this way). `None` if the wheel is gone (its session
    /// was freed) or is not a `W`; the wheel is removed either way.
    pub fn wheel_take<W: Wheel>(&mut self, handle: WheelHandle) -> Option<W> {
        let id = handle.id;
        std::mem::forget(handle);
        let slot = self.wheel_unslot(id)?;
        log::trace!("wheel {id} taken");
        let any: Box<dyn Any> = slot.obj.into_any();
        any.downcast::<W>().ok().map(|b| *b)
    }

    /// Takes a wheel out like [`wheel_take`](Kernel::wheel_take), but keeps its handle's
    /// poller registration, with its slot, for the next wheel built on the same handle
    /// ([`ReadWriteBuilder::parked`](crate::wheel::ReadWriteBuilder::parked)): that wheel
    /// starts without a system call and with the readiness reported meanwhile. Release
    /// the parking with [`wheel_unpark`](Kernel::wheel_unpark) when the handle is closed
    /// or watched otherwise.
    pub fn wheel_park<W: Wheel>(&mut self, handle: WheelHandle) -> Option<(W, Parking)> {
        let id = handle.id;
        std::mem::forget(handle);
        let key = self.wheels.key_of(id)?;
        self.wheels.slots[key].arm_before_use(self.wheels.arming);
        let readiness = self.wheels.slots[key].obj.readiness();
        // Only `Parked` boxes are kept.
        let parked: Box<dyn WheelObj> = match self.wheels.parked_boxes.pop() {
            Some(mut b) => {
                if let Some(p) = b.as_any_mut().downcast_mut::<Parked>() {
                    p.0 = readiness;
                }
                b
            }
            None => Box::new(Parked(readiness)),
        };
        let slot = &mut self.wheels.slots[key];
        // No id names the slot while it is parked.
        slot.id = WheelId::PARKED;
        let obj = std::mem::replace(&mut slot.obj, parked);
        let (owner, owner_key, holding, gen) = (slot.owner, slot.owner_key, slot.holding, slot.gen);
        slot.owner = super::session::KERNEL;
        slot.holding = false;
        if holding {
            self.wheels.holding -= 1;
        }
        // The owner's handle count, and the reference the wheel held: the owner found by
        // the slot it had when the wheel was made (checked), else by id.
        let found = if self.owner_at(owner_key, owner) {
            Some(owner_key as usize)
        } else {
            self.key_of(owner)
        };
        if let Some(k) = found {
            let h = &mut self.sessions[k].handles;
            *h = h.saturating_sub(1);
            if holding {
                self.ref_dec_key(k);
            }
        }
        log::trace!("wheel {id} parked");
        match obj.into_any().downcast::<W>() {
            Ok(w) => Some((*w, Parking { key, gen })),
            Err(_) => {
                self.wheels.slots.remove(key);
                None
            }
        }
    }

    /// Forgets a parking (the handle is about to close, or is registered otherwise). A
    /// stale parking is ignored.
    pub fn wheel_unpark(&mut self, parking: Parking) {
        if self.parked_at(parking) {
            self.wheels.slots.remove(parking.key);
        }
    }

    fn parked_at(&self, p: Parking) -> bool {
        self.wheels
            .slots
            .get(p.key)
            .is_some_and(|s| s.gen == p.gen && s.obj.as_any().is::<Parked>())
    }

    /// Puts a wheel into the slot of a parking, owned by the active session, taking over
    /// the registration and readiness left there: no system call. A stale parking falls
    /// back to [`wheel_insert`](Kernel::wheel_insert).
    pub fn wheel_insert_parked<W: Wheel>(
        &mut self,
        mut wheel: W,
        parking: Parking,
    ) -> Result<WheelHandle> {
        let owner = self.active.session;
        if owner.is_kernel() {
            return Err(Error::NoActiveSession);
        }
        if !self.parked_at(parking) {
            return self.wheel_insert(wheel);
        }
        let key = parking.key;
        let readiness = self.wheels.slots[key].obj.readiness();
        wheel.adopt_readiness(readiness);
        let owner_key = self.active_slot();
        let w = &mut self.wheels;
        w.next_id += 1;
        let id = WheelId::new(w.next_id, key);
        let slot = &mut w.slots[key];
        slot.id = id;
        slot.owner = owner;
        slot.owner_key = owner_key;
        slot.armed = w.epoch;
        let parked = std::mem::replace(&mut slot.obj, Box::new(wheel));
        if w.parked_boxes.len() < PARKED_BOXES_MAX {
            w.parked_boxes.push(parked);
        }
        Ok(self.wheel_enlist(key, id, owner))
    }

    /// Removes every wheel of a session that is being freed.
    pub(crate) fn wheels_clear_session(&mut self, owner: SessionId) {
        let ids: Vec<WheelId> = self
            .wheels
            .slots
            .iter()
            .filter(|(_, s)| s.owner == owner)
            .map(|(_, s)| s.id)
            .collect();
        for id in ids {
            self.wheel_remove(id);
        }
    }

    /// Calls event `ev` in the wheel's owner synchronously, as POE's wheels do; the sender
    /// is the owner itself. Returns the handler's value. Wheels resolve their event names
    /// once ([`EventId::of`]), when they are built or renamed.
    pub fn wheel_call(&mut self, owner: SessionId, ev: EventId, args: Args) -> Value {
        let caller = Location::caller();
        let Some(key) = self.key_of(owner) else {
            return Value::none();
        };
        if self.active.session == owner {
            return self.call_id(owner, ev, args, caller).unwrap_or_default();
        }
        self.wheel_call_key(key, owner, ev, args, caller)
    }

    /// A wheel's call into its owner at session slot `key`, from another session's frame:
    /// the owner is its own sender, and the event that was being handled is the caller's.
    #[inline]
    fn wheel_call_key(
        &mut self,
        key: usize,
        owner: SessionId,
        ev: EventId,
        args: Args,
        caller: &'static Location<'static>,
    ) -> Value {
        let caller_state = self.active.event;
        self.dispatch(
            key,
            owner,
            owner,
            ev,
            args,
            caller_state,
            caller,
            Kind::Call,
        )
        .unwrap_or_default()
    }

    /// [`Kernel::wheel_call`] for a located wheel: its owner is found by slot, not by id.
    /// The handler's value is not asked for (a wheel's input event), so nothing comes
    /// back from the frame.
    #[inline(always)]
    pub(crate) fn wheel_call_at(&mut self, at: WheelAt, owner: SessionId, ev: EventId, args: Args) {
        if self.active.session == owner || !self.owner_at(at.owner_key, owner) {
            self.wheel_call(owner, ev, args);
            return;
        }
        let caller_state = self.active.event;
        self.dispatch_unanswered(
            at.owner_key as usize,
            owner,
            ev,
            args,
            caller_state,
            Location::caller(),
        );
    }

    /// Whether the session in slot `key` (the one a wheel recorded when it was made) is
    /// still its owner `owner`, alive: then the owner is found without a look-up by id.
    #[inline(always)]
    fn owner_at(&self, key: u32, owner: SessionId) -> bool {
        self.sessions
            .get(key as usize)
            .is_some_and(|r| r.id == owner && !r.freed)
    }

    /// The read pass's visit of the wheel in slot `key`: armed if this dispatch has not
    /// armed it yet, and dispatched in [`Mode::Read`] if it says that would do anything.
    #[inline]
    fn wheel_visit(&mut self, key: usize) {
        let epoch = self.wheels.epoch;
        let Some(s) = self.wheels.slots.get_mut(key) else {
            return;
        };
        let arm = s.armed != epoch;
        s.armed = epoch;
        if let Some(f) = s.obj.read_visit(arm) {
            let id = s.id;
            f(self, id, Mode::Read);
            self.wheel_after_read(key, id);
        }
    }

    /// After wheel `id`'s read dispatch: [`Kernel::wheel_release_if_idle`] for the wheel
    /// in slot `key`, and, if it is still `id` and has no write due, the write pass
    /// passes it by (see [`WheelSlot::write_quiet`]).
    #[inline]
    fn wheel_after_read(&mut self, key: usize, id: WheelId) {
        let Some(s) = self.wheels.slots.get_mut(key) else {
            return;
        };
        let (holds, write_due) = s.obj.after_read();
        s.write_quiet = s.id == id && !write_due;
        if s.holding && !holds {
            self.wheel_release(key);
        }
    }

    /// Wheel `id` was armed again during the read pass, after its read dispatch may have
    /// found no write due (as [`ReadWrite::flush`](crate::wheel::ReadWrite::flush) does):
    /// this dispatch's write pass visits it. A wheel whose [`Wheel::due`] can turn true
    /// in [`Mode::Write`] between its read dispatch and the write pass, other than by a
    /// poll, calls this when it does.
    pub fn wheel_rearmed(&mut self, id: WheelId) {
        if let Some(s) = self.wheels.slots.get_mut(id.key()).filter(|s| s.id == id) {
            s.write_quiet = false;
        }
    }

    /// The next dispatch's number ([`Wheels::epoch`]). At the wrap every slot is marked
    /// armed in dispatch 0, which no dispatch is: each is armed in the next one, as if it
    /// had been armed before.
    fn wheels_next_epoch(&mut self) -> u32 {
        let w = &mut self.wheels;
        w.epoch = w.epoch.wrapping_add(1);
        if w.epoch == 0 {
            w.epoch = 1;
            for (_, s) in w.slots.iter_mut() {
                s.armed = 0;
            }
        }
        w.epoch
    }

    /// The write pass's dispatch of the wheel in slot `key` in [`Mode::Write`], which its
    /// [`Wheel::write_visit`] asked for (with the failure of the write it made, if any,
    /// see [`WriteOut::fail`]); it stays listed while it has work.
    #[inline(never)]
    fn wheel_write_dispatch(&mut self, key: usize) {
        let Some(s) = self.wheels.slots.get(key) else {
            self.wheels.out.failure = None;
            return;
        };
        let (f, id) = (s.obj.dispatcher(), s.id);
        f(self, id, Mode::Write);
        // The failure is for this dispatch alone.
        self.wheels.out.failure = None;
        self.wheel_release_if_idle(key);
        let w = &mut self.wheels;
        // Unless a handler dropped the wheel (and another took its slot).
        if let Some(s) = w.slots.get_mut(key).filter(|s| s.id == id) {
            let (r, wr) = s.obj.pending();
            s.active = r || wr;
            if s.active {
                w.active.push(key);
            }
        }
    }

    /// Dispatches every wheel with pending work: reads, then writes.
    pub(crate) fn wheels_dispatch(&mut self) {
        if self.wheels.active.is_empty() {
            return;
        }
        // The listed wheels are walked from here; new listings go to the other vector.
        // Both keep their storage from one timeslice to the next.
        let spare = std::mem::take(&mut self.wheels.visiting);
        let mut list = std::mem::replace(&mut self.wheels.active, spare);
        // POE writes in this dispatch only what was queued before the poll: each listed
        // wheel is armed (`Wheel::arm`) at its read visit, or before a handler of the
        // read pass reaches it if that comes first (`WheelSlot::arm_before_use`); a
        // wheel put in a slot during the pass is not armed in it.
        self.wheels.arming = self.wheels_next_epoch();
        for &key in &list {
            self.wheel_visit(key);
        }
        self.wheels.arming = 0;
        if self.early_writes {
            // What the read pass queued may leave now (KernelBuilder::early_writes).
            self.wheels.arm(&list);
        }
        for &key in &list {
            // The wheel's last visit of the timeslice: it stays listed while it has work;
            // the others wait for an edge. A later handler that gives it work (a put from
            // another wheel's event) lists it again (see `wheel_mut`).
            let Wheels {
                slots, out, active, ..
            } = &mut self.wheels;
            let Some(s) = slots.get_mut(key) else {
                continue;
            };
            if s.write_quiet {
                // Its read dispatch left it nothing to write in this pass: it stays
                // listed, and its next read visit arms it with what it queued.
                s.write_quiet = false;
                s.active = true;
                active.push(key);
                continue;
            }
            // One dynamic call for the usual write; the kernel dispatches the rest.
            match s.obj.write_visit(out) {
                WriteVisit::Done => s.active = false,
                WriteVisit::Listed => {
                    s.active = true;
                    active.push(key);
                }
                WriteVisit::Dispatch => self.wheel_write_dispatch(key),
            }
        }
        list.clear();
        self.wheels.visiting = list;
    }
}

/// An empty buffer for a read of up to `len` bytes from `spares` (see
/// [`Kernel::wheel_at_with_buffers`]): the last one kept if it fits, and is not so much
/// bigger that the record handed to the session would waste memory; else a new one.
#[inline]
pub(crate) fn spare_buffer_for(spares: &mut Vec<Vec<u8>>, len: usize) -> Vec<u8> {
    match spares.last() {
        Some(b) if b.capacity() >= len && b.capacity() <= 2 * len + 64 => {
            spares.pop().unwrap_or_default()
        }
        _ => Vec::with_capacity(len),
    }
}

/// Keeps a written-out buffer in `spares` for a later read, if it is small and there is
/// room.
#[inline]
pub(crate) fn keep_spare_buffer(spares: &mut Vec<Vec<u8>>, mut done: Vec<u8>) {
    if done.capacity() <= SPARE_BYTES_MAX && spares.len() < SPARES_MAX {
        done.clear();
        spares.push(done);
    }
}

#[cfg(test)]
mod size_tests {
    /// A wheel's slot in the table: what an idle connection pays besides its wheel. The
    /// arming's dispatch number lives in what was padding.
    #[test]
    fn a_wheel_slot_stays_48_bytes() {
        assert_eq!(std::mem::size_of::<super::WheelSlot>(), 48);
    }
}
