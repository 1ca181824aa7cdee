//! Timers, aliases, detaching, postbacks and callbacks.

use crate::clock::{duration_to_time, secs_to_time, Time};
use crate::error::{Error, Result};
use crate::kernel::{args_of, ItemKind, Kernel, Releases, EV_CHILD, EV_PARENT};
use crate::queue::{ItemId, QueueError};
use crate::session::{Designator, SessionId, KERNEL};
use crate::value::{Args, IntoArgs, Value};
use std::panic::Location;
use std::rc::{Rc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An alarm's id (POE's alarm id): returned by `alarm_set` and `delay_set`.
pub type AlarmId = ItemId;

/// A number of seconds, as POE takes them: `f64`, integers or a [`Duration`]. Negative
/// values are allowed for delays and adjustments.
pub trait Seconds {
    /// The signed length in nanoseconds.
    fn nanos(self) -> Time;
}

impl Seconds for f64 {
    fn nanos(self) -> Time {
        secs_to_time(self)
    }
}
impl Seconds for i32 {
    fn nanos(self) -> Time {
        i64::from(self) * 1_000_000_000
    }
}
impl Seconds for i64 {
    fn nanos(self) -> Time {
        self.saturating_mul(1_000_000_000)
    }
}
impl Seconds for u32 {
    fn nanos(self) -> Time {
        i64::from(self) * 1_000_000_000
    }
}
impl Seconds for u64 {
    fn nanos(self) -> Time {
        i64::try_from(self)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000_000)
    }
}
impl Seconds for Duration {
    fn nanos(self) -> Time {
        duration_to_time(self)
    }
}

/// A wall-clock time, as POE takes them: a [`SystemTime`] or epoch seconds (`f64`).
pub trait Epoch {
    /// As a [`SystemTime`].
    fn system_time(self) -> SystemTime;
}

impl Epoch for SystemTime {
    fn system_time(self) -> SystemTime {
        self
    }
}

impl Epoch for f64 {
    fn system_time(self) -> SystemTime {
        let d = Duration::try_from_secs_f64(self.abs()).unwrap_or(Duration::MAX);
        if self >= 0.0 {
            UNIX_EPOCH.checked_add(d).unwrap_or(UNIX_EPOCH)
        } else {
            UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
        }
    }
}

/// Epoch seconds of a wall-clock time (POE's representation of alarm times).
pub fn epoch_secs(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// An event name from the kernel's table of names: names are stored once for the life of
/// the process, so an `EventName` is a plain `&'static str` and copying it copies no text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventName(pub(crate) &'static str);

impl EventName {
    /// The name.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl std::ops::Deref for EventName {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl std::fmt::Debug for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0, f)
    }
}

impl std::fmt::Display for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl PartialEq<str> for EventName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for EventName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<EventName> for String {
    fn from(n: EventName) -> String {
        n.0.to_owned()
    }
}

/// An alarm taken out of the queue: its name, due time and arguments.
#[derive(Debug, Clone)]
pub struct RemovedAlarm {
    /// The event name the alarm would have fired.
    pub name: EventName,
    /// When it was due (wall clock).
    pub time: SystemTime,
    /// Its arguments.
    pub args: Args,
}

impl Kernel {
    fn active_session(&self) -> Result<SessionId> {
        let s = self.active.session;
        if s.is_kernel() {
            Err(Error::NoActiveSession)
        } else {
            Ok(s)
        }
    }

    /// The active session's slab key, as queued items carry it.
    fn active_key(&self) -> Result<u32> {
        match self.active.key {
            Some(k) if !self.active.session.is_kernel() => Ok(k as u32),
            _ => Err(Error::NoActiveSession),
        }
    }

    fn timer_name(&mut self, name: &str) -> Result<crate::kernel::EventId> {
        if name.is_empty() {
            return Err(Error::InvalidArgument("undefined event name"));
        }
        Ok(self.intern(name))
    }

    fn clear_named(&mut self, me: SessionId, ev: crate::kernel::EventId) {
        let Some(key) = self.key_of(me) else { return };
        if self.sessions[key].timers == 0 {
            return;
        }
        let gone = self
            .queue
            .remove_matching(|it| it.is_timer_of(key as u32) && it.event() == ev);
        for (_, id, it) in gone {
            self.item_left(id, it);
        }
    }

    fn add_timer(
        &mut self,
        ev: crate::kernel::EventId,
        t: Time,
        args: Args,
        caller: &'static Location<'static>,
    ) -> Result<AlarmId> {
        let me = self.active_session()?;
        if !self.sender_alive() {
            return Err(Error::NoActiveSession);
        }
        Ok(self.enqueue(ItemKind::Timer, me, me, ev, args, t, caller))
    }

    /// Sets the alarm `name` to fire at `when`, clearing every other alarm of that name in
    /// the active session (POE's `alarm(NAME, EPOCH, ARGS)`).
    #[track_caller]
    pub fn alarm(&mut self, name: &str, when: impl Epoch, args: impl IntoArgs) -> Result<()> {
        let caller = Location::caller();
        let me = self.active_session()?;
        let ev = self.timer_name(name)?;
        self.clear_named(me, ev);
        let t = self.time_of(when.system_time());
        self.add_timer(ev, t, args.into_args(), caller).map(drop)
    }

    /// Clears every alarm named `name` in the active session (POE's `alarm(NAME)` and
    /// `delay(NAME)` without a time).
    pub fn alarm_clear(&mut self, name: &str) -> Result<()> {
        let me = self.active_session()?;
        let ev = self.timer_name(name)?;
        self.clear_named(me, ev);
        Ok(())
    }

    /// Adds an alarm without clearing others of the same name (POE's `alarm_add`).
    #[track_caller]
    pub fn alarm_add(&mut self, name: &str, when: impl Epoch, args: impl IntoArgs) -> Result<()> {
        self.alarm_set(name, when, args).map(drop)
    }

    /// Adds an alarm and returns its id (POE's `alarm_set`).
    #[track_caller]
    pub fn alarm_set(
        &mut self,
        name: &str,
        when: impl Epoch,
        args: impl IntoArgs,
    ) -> Result<AlarmId> {
        let caller = Location::caller();
        self.active_session()?;
        let ev = self.timer_name(name)?;
        let t = self.time_of(when.system_time());
        self.add_timer(ev, t, args.into_args(), caller)
    }

    /// Sets `name` to fire `secs` from now, clearing other alarms of that name (POE's
    /// `delay(NAME, SECONDS, ARGS)`).
    #[track_caller]
    pub fn delay(&mut self, name: &str, secs: impl Seconds, args: impl IntoArgs) -> Result<()> {
        let caller = Location::caller();
        let me = self.active_session()?;
        let ev = self.timer_name(name)?;
        self.clear_named(me, ev);
        let t = self.timer_base().saturating_add(secs.nanos());
        self.add_timer(ev, t, args.into_args(), caller).map(drop)
    }

    /// Adds a delayed event without clearing others of that name (POE's `delay_add`).
    #[track_caller]
    pub fn delay_add(&mut self, name: &str, secs: impl Seconds, args: impl IntoArgs) -> Result<()> {
        self.delay_set(name, secs, args).map(drop)
    }

    /// Adds a delayed event and returns its id (POE's `delay_set`).
    #[track_caller]
    pub fn delay_set(
        &mut self,
        name: &str,
        secs: impl Seconds,
        args: impl IntoArgs,
    ) -> Result<AlarmId> {
        let caller = Location::caller();
        self.active_session()?;
        let ev = self.timer_name(name)?;
        let t = self.timer_base().saturating_add(secs.nanos());
        self.add_timer(ev, t, args.into_args(), caller)
    }

    /// Removes one alarm of the active session and returns what it was (POE's
    /// `alarm_remove`). Fails with [`Error::NoSuchAlarm`] (ESRCH) or [`Error::NotOwner`]
    /// (EPERM).
    #[inline]
    pub fn alarm_remove(&mut self, id: AlarmId) -> Result<RemovedAlarm> {
        let me = self.active_key()?;
        let (t, it) = self
            .queue
            .remove_if(id, |it| it.is_timer_of(me))
            .map_err(|e| self.timer_refusal(id, e))?;
        // Timers are set by their session for itself: `me` is both keys, and the release
        // is `item_left`'s, done here on the one session record.
        debug_assert!(it.dest_key == me && self.extras[id.slot()].sender_key == me);
        self.timer_items -= 1;
        let r = &mut self.sessions[me as usize];
        r.timers -= 1;
        r.events_to -= 1;
        if r.events_to == 0 {
            self.ref_dec_key(me as usize);
        }
        let args = self.take_args(id, it);
        Ok(RemovedAlarm {
            name: self.names.shared(it.event()),
            time: self.wall_at(t),
            args: Args::from_boxed(args),
        })
    }

    /// Removes every alarm of the active session (POE's `alarm_remove_all`).
    pub fn alarm_remove_all(&mut self) -> Result<Vec<RemovedAlarm>> {
        let me = self.active_key()?;
        let gone = self.queue.remove_matching(|it| it.is_timer_of(me));
        let mut out = Vec::with_capacity(gone.len());
        for (t, id, it) in gone {
            let args = self.item_left(id, it);
            out.push(RemovedAlarm {
                name: self.names.shared(it.event()),
                time: self.wall_at(t),
                args: Args::from_boxed(args),
            });
        }
        Ok(out)
    }

    /// Moves an alarm by `delta` seconds (may be negative); returns its new due time (POE's
    /// `alarm_adjust`).
    pub fn alarm_adjust(&mut self, id: AlarmId, delta: impl Seconds) -> Result<SystemTime> {
        let me = self.active_key()?;
        let d = delta.nanos();
        let t = self
            .queue
            .retime_if(id, |it| it.is_timer_of(me), |t| t.saturating_add(d))
            .map_err(|e| self.timer_refusal(id, e))?;
        Ok(self.wall_at(t))
    }

    /// Re-times an alarm to fire `secs` from now; returns its new due time (POE's
    /// `delay_adjust`).
    pub fn delay_adjust(&mut self, id: AlarmId, secs: impl Seconds) -> Result<SystemTime> {
        let me = self.active_key()?;
        let t = self.timer_base().saturating_add(secs.nanos());
        let t = self
            .queue
            .retime_if(id, |it| it.is_timer_of(me), |_| t)
            .map_err(|e| self.timer_refusal(id, e))?;
        Ok(self.wall_at(t))
    }

    fn timer_refusal(&self, id: AlarmId, e: QueueError) -> Error {
        match e {
            QueueError::NotFound => Error::NoSuchAlarm,
            QueueError::Refused => match self.queue.get(id) {
                Some((_, it)) if it.kind() == ItemKind::Timer => Error::NotOwner,
                _ => Error::NoSuchAlarm,
            },
        }
    }
}

// --------------------------------------------------------------------- aliases

impl Kernel {
    pub(crate) fn alias_lookup(&self, name: &str) -> Option<SessionId> {
        self.aliases.get(name).copied()
    }

    /// Gives the active session an alias (POE's `alias_set`). Setting an alias the session
    /// already has succeeds; one held by another session fails with [`Error::AliasInUse`].
    /// Each alias keeps its session alive, but not the kernel busy. Called outside every
    /// handler, it gives the alias to the kernel itself, as POE does: the alias then names
    /// [`KERNEL`](crate::KERNEL) until the kernel removes it.
    pub fn alias_set(&mut self, name: &str) -> Result<()> {
        // Outside every handler the kernel itself takes the alias, as in POE.
        let me = self.active.session;
        if name.is_empty() {
            return Err(Error::InvalidArgument("empty alias"));
        }
        match self.aliases.get(name) {
            Some(&owner) if owner == me => return Ok(()),
            Some(_) => return Err(Error::AliasInUse),
            None => {}
        }
        if me.is_kernel() {
            self.aliases.insert(name.to_owned(), me);
            return Ok(());
        }
        let key = self.key_of(me).ok_or(Error::NoSuchSession)?;
        self.aliases.insert(name.to_owned(), me);
        self.sessions[key].aliases.push(name.to_owned());
        self.ref_inc(me);
        Ok(())
    }

    /// Removes an alias of the active session, or outside every handler one of the
    /// kernel's own (POE's `alias_remove`).
    pub fn alias_remove(&mut self, name: &str) -> Result<()> {
        let me = self.active.session;
        match self.aliases.get(name) {
            None => Err(Error::NoSuchAlias),
            Some(&owner) if owner != me => Err(Error::NotOwner),
            Some(_) => {
                self.aliases.remove(name);
                if let Some(key) = self.key_of(me) {
                    self.sessions[key].aliases.retain(|a| a != name);
                    self.ref_dec(me);
                }
                Ok(())
            }
        }
    }

    /// Resolves a designator to a session (POE's `alias_resolve`).
    pub fn alias_resolve(&self, dest: impl Designator) -> Result<SessionId> {
        self.resolve(dest)
    }

    /// The aliases of a session, sorted (POE's `alias_list`).
    pub fn alias_list(&self, dest: impl Designator) -> Result<Vec<String>> {
        let id = self.resolve(dest)?;
        let Some(key) = self.key_of(id) else {
            let mut v: Vec<String> = (self.aliases.iter())
                .filter(|(_, &owner)| owner == id)
                .map(|(name, _)| name.clone())
                .collect();
            v.sort();
            return Ok(v);
        };
        let mut v = self.sessions[key].aliases.clone();
        v.sort();
        Ok(v)
    }

    /// The aliases of the active session, sorted.
    pub fn my_aliases(&self) -> Vec<String> {
        self.alias_list(self.active.session).unwrap_or_default()
    }
}

// --------------------------------------------------------------------- detaching

impl Kernel {
    fn detach(&mut self, child: SessionId, notify_parent: bool) {
        let Some(ck) = self.key_of(child) else { return };
        let old = self.sessions[ck].parent;
        if notify_parent {
            self.lifecycle(
                old,
                EV_CHILD,
                args_of(("lose".to_owned(), child, Value::none())),
            );
        }
        self.lifecycle(child, EV_PARENT, args_of((old, KERNEL)));
        let Some(ck) = self.key_of(child) else { return };
        let old = self.sessions[ck].parent;
        self.sessions[ck].parent = KERNEL;
        if let Some(pk) = self.key_of(old) {
            self.sessions[pk].children.retain(|&c| c != child);
            self.ref_dec(old);
        }
        self.kernel_children.push(child);
        self.gc_sweep();
    }

    /// Moves the active session under the kernel (POE's `detach_myself`). Its parent gets
    /// `_child lose` (not when called from `_start`), then the session gets `_parent`.
    pub fn detach_myself(&mut self) -> Result<()> {
        let me = self.active_session()?;
        let key = self.key_of(me).ok_or(Error::NoSuchSession)?;
        if self.sessions[key].parent.is_kernel() {
            return Err(Error::AlreadyDetached);
        }
        let in_start = self.active.event == crate::kernel::EV_START;
        self.detach(me, !in_start);
        Ok(())
    }

    /// Moves a child of the active session under the kernel (POE's `detach_child`).
    pub fn detach_child(&mut self, child: impl Designator) -> Result<()> {
        let me = self.active_session()?;
        let child = self.resolve(child)?;
        let ck = self.key_of(child).ok_or(Error::NoSuchSession)?;
        if self.sessions[ck].parent != me {
            return Err(Error::NotChild);
        }
        self.detach(child, true);
        Ok(())
    }
}

// --------------------------------------------------------------------- postbacks

struct AnonRef {
    session: SessionId,
    releases: Weak<Releases>,
}

impl Drop for AnonRef {
    fn drop(&mut self) {
        if let Some(q) = self.releases.upgrade() {
            q.queue
                .borrow_mut()
                .extref_drops
                .push((self.session, "anon_event".to_owned()));
            q.pending.set(true);
        }
    }
}

/// A closure-like handle that posts an event back to a session (POE's `postback`).
///
/// Calling [`post`](Postback::post) queues the event with `ARG0` = the postback's creation
/// arguments and `ARG1` = the call's arguments, both as [`Args`]. The session stays alive
/// while any clone of the postback exists.
#[derive(Clone)]
pub struct Postback {
    event: Rc<str>,
    args: Args,
    anon: Rc<AnonRef>,
}

impl std::fmt::Debug for Postback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Postback({} -> {})", self.event, self.anon.session)
    }
}

impl Postback {
    /// Posts the event with these arguments as `ARG1`.
    pub fn post(&self, args: impl IntoArgs) {
        if let Some(q) = self.anon.releases.upgrade() {
            let args = args_of((self.args.clone(), args.into_args()));
            q.queue
                .borrow_mut()
                .posts
                .push((self.anon.session, self.event.to_string(), args));
            q.pending.set(true);
        }
    }

    /// The postback as a plain closure.
    pub fn into_fn(self) -> impl Fn(Args) {
        move |a| self.post(a)
    }

    /// The session the postback posts to.
    pub fn session(&self) -> SessionId {
        self.anon.session
    }
}

/// A handle that calls an event of a session synchronously and returns its value (POE's
/// `callback`). It keeps the session alive while it exists.
#[derive(Clone)]
pub struct Callback {
    event: Rc<str>,
    args: Args,
    anon: Rc<AnonRef>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Callback({} -> {})", self.event, self.anon.session)
    }
}

impl Callback {
    /// Calls the event with these arguments as `ARG1`; returns the handler's value.
    #[track_caller]
    pub fn call(&self, kernel: &mut Kernel, args: impl IntoArgs) -> Result<Value> {
        let a = args_of((self.args.clone(), args.into_args()));
        kernel.call(self.anon.session, &self.event, a)
    }

    /// The callback as a plain closure taking the kernel.
    pub fn into_fn(self) -> impl Fn(&mut Kernel, Args) -> Result<Value> {
        move |k, a| self.call(k, a)
    }

    /// The session the callback calls.
    pub fn session(&self) -> SessionId {
        self.anon.session
    }
}

impl Kernel {
    fn anon_ref(&mut self, session: SessionId) -> Rc<AnonRef> {
        let _ = self.refcount_increment(session, "anon_event");
        Rc::new(AnonRef {
            session,
            releases: Rc::downgrade(&self.releases),
        })
    }

    /// A postback to `session` (POE's `$session->postback(EVENT, ARGS)`).
    pub fn postback(&mut self, session: SessionId, event: &str, args: Args) -> Postback {
        Postback {
            event: Rc::from(event),
            args,
            anon: self.anon_ref(session),
        }
    }

    /// A callback to `session` (POE's `$session->callback(EVENT, ARGS)`).
    pub fn callback(&mut self, session: SessionId, event: &str, args: Args) -> Callback {
        Callback {
            event: Rc::from(event),
            args,
            anon: self.anon_ref(session),
        }
    }

    /// Turns postback invocations into queued posts, in the order they were made.
    #[inline]
    pub(crate) fn flush_postbacks(&mut self) {
        if self.releases.pending.get() {
            self.flush_postbacks_slow();
        }
    }

    #[cold]
    fn flush_postbacks_slow(&mut self) {
        let posts = std::mem::take(&mut self.releases.queue.borrow_mut().posts);
        if posts.is_empty() {
            return;
        }
        for (sid, event, args) in posts {
            if self.session_exists(sid) && !sid.is_kernel() && self.sender_alive() {
                let ev = self.intern(&event);
                let t = self.now_fifo();
                let sender = self.active.session;
                let (dest_key, sender_key) = (self.key_or_none(sid), self.key_or_none(sender));
                self.ev_ref_inc(dest_key, sender_key);
                let caller_state = self.active.event;
                self.queue_item(
                    t,
                    ItemKind::Post,
                    dest_key,
                    sender_key,
                    ev,
                    args.into_boxed(),
                    caller_state,
                    Location::caller(),
                );
            }
        }
    }
}
