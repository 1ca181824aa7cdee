//! Dispatch: `post`, `yield`, `call`, running a handler in its frame, and what a
//! handler's failure becomes.

use super::session::{Designator, Handler, Invocation, SessionId, KERNEL};
use super::{EventId, Frame, ItemKind, Kernel, EV_DEFAULT, EV_DIE};
use crate::error::{Error, Result};
use crate::value::{Args, HandlerError, IntoArgs, Value};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::rc::Rc;
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
    /// The failure itself, with the error it was made from.
    pub error: HandlerError,
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
    /// Whether the active session may send: a session that has been stopped (its `_stop`
    /// already ran) sends nothing, as in POE where its queued events are discarded.
    #[inline]
    pub(crate) fn sender_alive(&self) -> bool {
        match self.active.key() {
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
        self.post_from_active(dest, event, args.into_args(), caller)
    }

    /// [`post`](Kernel::post) to a session by id with the event already resolved
    /// ([`EventId::of`]): for a component that answers with the same few events again and
    /// again, no name to look up per post.
    #[track_caller]
    pub fn post_event(&mut self, dest: SessionId, ev: EventId, args: impl IntoArgs) -> Result<()> {
        let caller = Location::caller();
        let args = args.into_args();
        // One lookup of the destination serves the check and the queueing.
        // (An error made only when needed: one made and dropped on the way costs a call.)
        let dest_key = if dest.is_kernel() {
            super::NO_KEY
        } else {
            let Some(key) = self.key_of(dest) else {
                return Err(Error::NoSuchSession);
            };
            key as u32
        };
        if !self.sender_alive() {
            return Ok(());
        }
        let t = self.now_fifo();
        let sender = self.active.session;
        self.flush_postbacks();
        let args = args.into_boxed();
        self.enqueue_to_key(ItemKind::Post, dest, dest_key, sender, ev, args, t, caller);
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
        match self.active.key() {
            Some(key) if !self.releases.pending.get() => {
                self.yield_keyed(key, event, args.into_args().into_boxed(), caller)
            }
            _ => self.post_from_active(me, event, args.into_args(), caller),
        }
    }

    /// What [`Kernel::yield_`] does when the active session's slab key is known and no
    /// postback waits to be queued first: [`Kernel::post_from_active`] and
    /// [`Kernel::enqueue`] with the sender and the destination one record, looked at once
    /// (is it stopped? its count of events taken), the same steps in the same order.
    #[inline]
    fn yield_keyed(
        &mut self,
        key: usize,
        event: &str,
        args: Box<[crate::value::Arg]>,
        caller: &'static Location<'static>,
    ) -> Result<()> {
        if event.is_empty() {
            return Err(Error::InvalidArgument("empty event name"));
        }
        let r = &mut self.sessions[key];
        if r.freed {
            return Ok(());
        }
        super::refcount::rec_event_to(r, key, &mut self.marked);
        let ev = self.intern(event);
        let t = self.now_fifo();
        let caller_state = self.active.event;
        self.queue_item(
            t,
            ItemKind::Post,
            key as u32,
            key as u32,
            ev,
            args,
            caller_state,
            caller,
        );
        Ok(())
    }

    /// Queues `event` for `dest`, sent by the active session: what `post` and `yield` do
    /// once they know the destination. A session already stopped sends nothing.
    #[inline]
    fn post_from_active(
        &mut self,
        dest: SessionId,
        event: &str,
        args: Args,
        caller: &'static Location<'static>,
    ) -> Result<()> {
        if event.is_empty() {
            return Err(Error::InvalidArgument("empty event name"));
        }
        let ev = self.intern(event);
        self.post_id_from_active(dest, ev, args, caller);
        Ok(())
    }

    /// [`Kernel::post_from_active`] with the event resolved: queues it unless the active
    /// session is already stopped (which sends nothing).
    #[inline]
    fn post_id_from_active(
        &mut self,
        dest: SessionId,
        ev: EventId,
        args: Args,
        caller: &'static Location<'static>,
    ) {
        if !self.sender_alive() {
            return;
        }
        let t = self.now_fifo();
        let sender = self.active.session;
        self.enqueue(ItemKind::Post, dest, sender, ev, args, t, caller);
    }

    /// Runs `f` with `session` as the active session, without an event: a component's
    /// method, called from another session's handler, acts as its own session (its timers,
    /// watchers and posts are its own, and its posts name it as the sender), as after a
    /// `call` into it, without the cost of dispatching an event. Fails with
    /// [`Error::NoSuchSession`] if the session is gone.
    pub fn run_as<R>(&mut self, session: SessionId, f: impl FnOnce(&mut Kernel) -> R) -> Result<R> {
        let Some(key) = self.key_of(session) else {
            return Err(Error::NoSuchSession);
        };
        if self.sessions[key].freed {
            return Err(Error::NoSuchSession);
        }
        let saved = self.active;
        self.active = Frame::new(session, key, saved.event);
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

    /// [`call`](Kernel::call) with the event already resolved ([`EventId::of`]).
    #[track_caller]
    pub fn call_event(&mut self, dest: SessionId, ev: EventId, args: Args) -> Result<Value> {
        self.call_id(dest, ev, args, Location::caller())
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
            let Some((h, state)) = self.find_handler(key, ev) else {
                return Ok(Value::none());
            };
            let args = self.handler_args(ev, state, args);
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

    /// The handler session `key` runs for `ev`, and the state it runs as: `ev`, or
    /// `_default` (whose arguments are then the event's name and its arguments:
    /// [`Kernel::handler_args`]). The arguments do not go through here: on the common path
    /// they are moved once, into the invocation. The handler found last is kept for the
    /// next event of the same name to the same table (a changed table is a copy, so a kept
    /// handler is never a stale one).
    #[inline(always)]
    fn find_handler(&mut self, key: usize, ev: EventId) -> Option<(Handler, EventId)> {
        let table = Rc::as_ptr(&self.sessions[key].handlers);
        self.find_handler_in(key, table, ev)
    }

    /// [`Kernel::find_handler`] with the address of session `key`'s table already read
    /// (by a caller that has the session's record at hand).
    #[inline(always)]
    fn find_handler_in(
        &mut self,
        key: usize,
        table: *const super::sessions::Handlers,
        ev: EventId,
    ) -> Option<(Handler, EventId)> {
        if let Some(h) = self.cached_handler(table, ev) {
            return Some((h, ev));
        }
        self.search_handler(key, ev)
    }

    /// The handler kept by [`Kernel::find_handler`], if it is the one the table at
    /// `table` runs for `ev`: a comparison of the event and of the table's address,
    /// inlined where events are dispatched.
    #[inline(always)]
    fn cached_handler(
        &self,
        table: *const super::sessions::Handlers,
        ev: EventId,
    ) -> Option<Handler> {
        match &self.last_handler {
            Some((kept, last_ev, h)) if *last_ev == ev && std::ptr::eq(Rc::as_ptr(kept), table) => {
                Some(Rc::clone(h))
            }
            _ => None,
        }
    }

    /// [`Kernel::find_handler`] past its cache: the table's search, which then keeps what
    /// it found.
    #[inline(never)]
    fn search_handler(&mut self, key: usize, ev: EventId) -> Option<(Handler, EventId)> {
        let r = &self.sessions[key];
        match r.handlers.get(ev) {
            Some(h) => {
                let h = Rc::clone(h);
                self.last_handler = Some((Rc::clone(&r.handlers), ev, Rc::clone(&h)));
                Some((h, ev))
            }
            None => self.find_default(key, ev),
        }
    }

    /// The arguments a handler found by [`Kernel::find_handler`] gets for `ev`.
    #[inline]
    fn handler_args(&self, ev: EventId, state: EventId, mut args: Args) -> Args {
        if state != ev {
            self.default_args(ev, &mut args);
        }
        args
    }

    /// [`Kernel::handler_args`] in place, for `_default`: the event's name, then `args`.
    #[cold]
    #[inline(never)]
    fn default_args(&self, ev: EventId, args: &mut Args) {
        *args = args_of((self.names.name(ev).to_owned(), std::mem::take(args)));
    }

    #[cold]
    #[inline(never)]
    fn find_default(&self, key: usize, ev: EventId) -> Option<(Handler, EventId)> {
        let r = &self.sessions[key];
        if let Some(h) = r.handlers.get(EV_DEFAULT) {
            return Some((Rc::clone(h), EV_DEFAULT));
        }
        let name = self.names.name(ev);
        if name != "_signal"
            && (r.options.default || (self.warn_unhandled && !name.starts_with('_')))
        {
            log::warn!(
                "session {} has no handler for event '{name}' (and no _default): the event is dropped",
                r.id,
            );
        }
        None
    }

    /// [`Kernel::dispatch`] for a queued event, whose handler's value and failure nobody
    /// waits for: nothing comes back through memory on the way out of every post's
    /// dispatch. The arguments come as the queue kept them, a boxed slice: two words in
    /// registers, where an `Args` (three) is passed through memory and read back wider
    /// than it was written.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(crate) fn dispatch_queued(
        &mut self,
        key: usize,
        session: SessionId,
        sender: SessionId,
        ev: EventId,
        args: Box<[crate::value::Arg]>,
        caller_state: EventId,
        caller: &'static Location<'static>,
    ) {
        let _ = self.dispatch_in(
            key,
            session,
            sender,
            ev,
            Args::from_boxed(args),
            caller_state,
            caller,
            Kind::Normal,
        );
    }

    /// [`Kernel::dispatch`] for a wheel's call into its owner (the session is its own
    /// sender) whose value the wheel does not use: nothing comes back through memory.
    /// A failure is handled as for any call.
    #[inline(never)]
    pub(crate) fn dispatch_unanswered(
        &mut self,
        key: usize,
        session: SessionId,
        ev: EventId,
        args: Args,
        caller_state: EventId,
        caller: &'static Location<'static>,
    ) {
        let _ = self.dispatch_in(
            key,
            session,
            session,
            ev,
            args,
            caller_state,
            caller,
            Kind::Call,
        );
    }

    /// Runs one handler in a new frame. A failure is turned into a DIE signal or the kernel
    /// exception as POE does, and also returned.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
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
        self.dispatch_in(key, session, sender, ev, args, caller_state, caller, kind)
    }

    /// What [`Kernel::dispatch`] and [`Kernel::dispatch_queued`] do.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn dispatch_in(
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
        // One look at the session's record before the handler: whether it is gone, its
        // trace option, and its depth, counted now (and given back if there is no
        // handler).
        let r = &mut self.sessions[key];
        if r.freed {
            return Ok(Value::none());
        }
        let trace = r.options.trace;
        r.depth += 1;
        let table = Rc::as_ptr(&r.handlers);
        let Some((h, state)) = self.find_handler_in(key, table, ev) else {
            self.sessions[key].depth -= 1;
            return Ok(Value::none());
        };
        // `_default`'s arguments are made in place: the arguments are moved once, into
        // the invocation (`handler_args`, which returns them, costs a move more here).
        let mut args = args;
        if state != ev {
            self.default_args(ev, &mut args);
        }
        if trace {
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
        self.active = Frame::new(session, key, ev);
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
            self.exception = Some(e.clone().at(session, ev.name()));
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
            error: e.clone(),
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
