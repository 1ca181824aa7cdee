//! The session table: creating sessions, their handler tables, the session tree, and
//! stopping and collecting them.

use super::session::{Designator, Handler, Session, SessionId, SessionOptions, KERNEL};
use super::{
    args_of, EventId, ItemKind, Kernel, Kind, EV_CHILD, EV_NONE, EV_PARENT, EV_START, EV_STOP,
    KERNEL_FRAME, NO_KEY,
};
use crate::error::{Error, Result};
use crate::value::{Args, Value};
use rustc_hash::FxHashMap as HashMap;
use std::any::Any;
use std::collections::BTreeSet;
use std::panic::Location;
use std::rc::Rc;
/// A session's handlers, sorted by event id: sessions have a handful, and a binary search
/// over a few integers beats hashing. Sessions created from the same [`States`] share one
/// table (behind an `Rc`) until one of them changes its own with `state()`.
///
/// [`States`]: crate::States
#[derive(Default, Clone)]
pub(crate) struct Handlers(Vec<(EventId, Handler)>);

impl Handlers {
    #[inline]
    pub(super) fn get(&self, ev: EventId) -> Option<&Handler> {
        self.0
            .binary_search_by_key(&ev, |e| e.0)
            .ok()
            .map(|i| &self.0[i].1)
    }
    pub(super) fn insert(&mut self, ev: EventId, h: Handler) {
        match self.0.binary_search_by_key(&ev, |e| e.0) {
            Ok(i) => self.0[i].1 = h,
            Err(i) => self.0.insert(i, (ev, h)),
        }
    }
    pub(super) fn remove(&mut self, ev: &EventId) {
        if let Ok(i) = self.0.binary_search_by_key(ev, |e| e.0) {
            self.0.remove(i);
        }
    }
}

/// A session's children, in creation order (ids count up): a child leaves in O(log n), so
/// a server's connections come and go without a scan of all the others. Boxed, as most
/// sessions (a server's connections) have none: one word in every session record rather
/// than a `BTreeSet`'s three.
#[derive(Default)]
#[allow(clippy::box_collection)]
pub(crate) struct Children(Option<Box<BTreeSet<SessionId>>>);

impl Children {
    pub(crate) fn insert(&mut self, id: SessionId) {
        self.0.get_or_insert_with(Box::default).insert(id);
    }

    pub(crate) fn remove(&mut self, id: &SessionId) {
        if let Some(set) = &mut self.0 {
            set.remove(id);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &SessionId> {
        self.0.iter().flat_map(|set| set.iter())
    }
}

impl IntoIterator for Children {
    type Item = SessionId;
    type IntoIter = std::iter::Flatten<std::option::IntoIter<BTreeSet<SessionId>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.map(|set| *set).into_iter().flatten()
    }
}

/// What few sessions have: aliases and external references.
#[derive(Default)]
pub(crate) struct SessionExtras {
    /// The session's aliases.
    pub(crate) aliases: Vec<String>,
    /// External references by tag ([`Kernel::refcount_increment`]); a session with any
    /// counts in `extref_sessions`.
    pub(crate) extrefs: HashMap<String, u64>,
}

pub(crate) struct SessionRec {
    pub(crate) id: SessionId,
    pub(crate) parent: SessionId,
    pub(crate) children: Children,
    pub(super) heap: Box<dyn Any>,
    pub(super) handlers: Rc<Handlers>,
    /// What keeps the session alive (events, children, wheels, aliases, ...), in 32
    /// bits: a session record is small.
    pub(super) refcount: i32,
    pub(crate) events_to: u32,
    pub(super) posts_from: u32,
    pub(crate) timers: u32,
    /// Wheels and watched descriptors the session owns: freeing a session that owns none
    /// (a connection whose wheel is already gone) looks through neither table.
    pub(crate) handles: u32,
    /// Aliases and external references; boxed, as most sessions (a server's
    /// connections) have neither: one word in every session record.
    pub(crate) extras: Option<Box<SessionExtras>>,
    pub(super) depth: u32,
    pub(super) freed: bool,
    /// Marked for collection at the next sweep (POE's `%kr_marked_for_gc`).
    pub(super) marked: bool,
    pub(crate) options: SessionOptions,
}

impl Kernel {
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

    /// Counts a wheel or watched descriptor taken (`+1`) or let go (`-1`) by session `id`.
    pub(crate) fn handles_add(&mut self, id: SessionId, delta: i32) {
        if let Some(k) = self.key_of(id) {
            let h = &mut self.sessions[k].handles;
            *h = h.saturating_add_signed(delta);
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
    /// (POE's `active_session`).
    #[doc(alias = "get_active_session")]
    pub fn active_session(&self) -> SessionId {
        self.active.session
    }

    /// The event being handled, or `""` outside handlers (POE's `active_event`).
    #[doc(alias = "get_active_event")]
    pub fn active_event(&self) -> &str {
        self.event_name(self.active.event)
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.by_id.len()
    }

    /// Number of pending events and timers (POE's `event_count`).
    #[doc(alias = "get_event_count")]
    pub fn event_count(&self) -> usize {
        self.queue.len()
    }

    /// When the next pending item is due, as wall-clock time (POE's `next_event_time`).
    #[doc(alias = "get_next_event_time")]
    pub fn next_event_time(&self) -> Option<std::time::SystemTime> {
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
            return Ok(self.kernel_children.iter().copied().collect());
        }
        let key = self.key_of(id).ok_or(Error::NoSuchSession)?;
        Ok(self.sessions[key].children.iter().copied().collect())
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

    fn children_mut(&mut self, id: SessionId) -> &mut Children {
        if id.is_kernel() {
            &mut self.kernel_children
        } else {
            let key = self.by_id[&id.0];
            &mut self.sessions[key].children
        }
    }

    // ----------------------------------------------------------------- sessions

    /// The handler table of `states`, interned by this kernel: made by the first session
    /// created from them, shared by the next ones.
    fn shared_table(&mut self, states: &super::session::StatesInner) -> Rc<Handlers> {
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
            children: Children::default(),
            heap: Box::new(heap),
            handlers: map,
            refcount: 0,
            events_to: 0,
            posts_from: 0,
            timers: 0,
            handles: 0,
            extras: None,
            depth: 0,
            freed: false,
            marked: false,
            options,
        });
        self.by_id.insert(id.0, key);
        self.children_mut(parent).insert(id);
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
        let key = self.active.key().ok_or(Error::NoActiveSession)?;
        Ok(std::mem::replace(&mut self.sessions[key].options, options))
    }

    /// The options of the active session.
    pub fn options(&self) -> Result<SessionOptions> {
        let key = self.active.key().ok_or(Error::NoActiveSession)?;
        Ok(self.sessions[key].options)
    }
}

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
        let children: Vec<SessionId> = self.sessions[key].children.iter().copied().collect();
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
            self.children_mut(parent).remove(&id);
            self.ref_dec(parent);
        }
        let children = std::mem::take(&mut self.sessions[key].children);
        for child in children {
            if let Some(ck) = self.key_of(child) {
                self.sessions[ck].parent = parent;
                if self.session_exists(parent) {
                    self.children_mut(parent).insert(child);
                    self.ref_inc(parent);
                }
            }
        }
        self.signals_clear_session(id);
        if let Some(extras) = self.sessions[key].extras.take() {
            for alias in &extras.aliases {
                self.aliases.remove(alias);
            }
            if !extras.extrefs.is_empty() {
                self.extref_sessions -= 1;
            }
        }
        if self.sessions[key].handles > 0 {
            self.io_clear_session(id);
            self.wheels_clear_session(id);
        }
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
        // The handler cache must not keep a freed session's handlers (and what they hold).
        self.last_handler = None;
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
            self.sessions[pk].children.remove(&child);
            self.ref_dec(old);
        }
        self.kernel_children.insert(child);
        self.gc_sweep();
    }

    /// Moves the active session under the kernel (POE's `detach_myself`). Its parent gets
    /// `_child lose` (not when called from `_start`), then the session gets `_parent`.
    pub fn detach_myself(&mut self) -> Result<()> {
        let me = self.require_active_session()?;
        let key = self.key_of(me).ok_or(Error::NoSuchSession)?;
        if self.sessions[key].parent.is_kernel() {
            return Err(Error::AlreadyDetached);
        }
        let in_start = self.active.event == super::EV_START;
        self.detach(me, !in_start);
        Ok(())
    }

    /// Moves a child of the active session under the kernel (POE's `detach_child`).
    pub fn detach_child(&mut self, child: impl Designator) -> Result<()> {
        let me = self.require_active_session()?;
        let child = self.resolve(child)?;
        let ck = self.key_of(child).ok_or(Error::NoSuchSession)?;
        if self.sessions[ck].parent != me {
            return Err(Error::NotChild);
        }
        self.detach(child, true);
        Ok(())
    }
}

#[cfg(test)]
mod size_tests {
    /// Every session, a server's connections included, has a record in the session slab.
    #[test]
    fn a_session_record_stays_small() {
        assert!(std::mem::size_of::<super::SessionRec>() <= 88);
    }
}
