//! Postbacks and callbacks (POE's `postback` and `callback`), and the queue of releases
//! that dropped handles leave for the kernel.

use super::session::SessionId;
use super::{args_of, EventId, ItemKind, Kernel};
use crate::error::Result;
use crate::value::{Args, IntoArgs, Value};
use std::cell::RefCell;
use std::panic::Location;
use std::rc::{Rc, Weak};
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
    pub(crate) posts: Vec<(SessionId, EventId, Args)>,
    pub(crate) wheel_drops: Vec<crate::ids::WheelId>,
    pub(crate) child_drops: Vec<i32>,
}

impl Kernel {
    #[inline]
    pub(crate) fn drain_releases(&mut self) {
        if self.releases.pending.get() {
            self.drain_releases_slow();
        }
    }

    #[cold]
    fn drain_releases_slow(&mut self) {
        while self.releases.pending.get() {
            let (drops, wheels, children) = {
                let mut q = self.releases.queue.borrow_mut();
                (
                    std::mem::take(&mut q.extref_drops),
                    std::mem::take(&mut q.wheel_drops),
                    std::mem::take(&mut q.child_drops),
                )
            };
            if self.releases.queue.borrow().posts.is_empty() {
                self.releases.pending.set(false);
            }
            if drops.is_empty() && wheels.is_empty() && children.is_empty() {
                return;
            }
            for id in wheels {
                self.wheel_remove(id);
            }
            if !children.is_empty() {
                self.signals.orphans.extend(children);
                self.reap_orphans();
            }
            for (sid, tag) in drops {
                let _ = self.refcount_decrement(sid, &tag);
            }
        }
    }
}

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

/// Where a postback or callback goes: the event, the arguments given when it was made,
/// and the reference that keeps the session alive while any clone exists.
#[derive(Clone)]
struct Target {
    event: EventId,
    args: Args,
    anon: Rc<AnonRef>,
}

impl Target {
    /// `ARG0` = the creation arguments, `ARG1` = the invocation's.
    fn args_with(&self, args: impl IntoArgs) -> Args {
        args_of((self.args.clone(), args.into_args()))
    }

    fn fmt(&self, kind: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{kind}({} -> {})", self.event.name(), self.anon.session)
    }
}

/// A closure-like handle that posts an event back to a session (POE's `postback`).
///
/// Calling [`post`](Postback::post) queues the event with `ARG0` = the postback's creation
/// arguments and `ARG1` = the call's arguments, both as [`Args`]. The session stays alive
/// while any clone of the postback exists.
#[derive(Clone)]
pub struct Postback(Target);

impl std::fmt::Debug for Postback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt("Postback", f)
    }
}

impl Postback {
    /// Posts the event with these arguments as `ARG1`.
    pub fn post(&self, args: impl IntoArgs) {
        let t = &self.0;
        if let Some(q) = t.anon.releases.upgrade() {
            let args = t.args_with(args);
            q.queue
                .borrow_mut()
                .posts
                .push((t.anon.session, t.event, args));
            q.pending.set(true);
        }
    }

    /// The postback as a plain closure.
    pub fn into_fn(self) -> impl Fn(Args) {
        move |a| self.post(a)
    }

    /// The session the postback posts to.
    pub fn session(&self) -> SessionId {
        self.0.anon.session
    }
}

/// A handle that calls an event of a session synchronously and returns its value (POE's
/// `callback`). It keeps the session alive while it exists.
#[derive(Clone)]
pub struct Callback(Target);

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt("Callback", f)
    }
}

impl Callback {
    /// Calls the event with these arguments as `ARG1`; returns the handler's value.
    #[track_caller]
    pub fn call(&self, kernel: &mut Kernel, args: impl IntoArgs) -> Result<Value> {
        let t = &self.0;
        kernel.call_event(t.anon.session, t.event, t.args_with(args))
    }

    /// The callback as a plain closure taking the kernel.
    pub fn into_fn(self) -> impl Fn(&mut Kernel, Args) -> Result<Value> {
        move |k, a| self.call(k, a)
    }

    /// The session the callback calls.
    pub fn session(&self) -> SessionId {
        self.0.anon.session
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

    fn target(&mut self, session: SessionId, event: &str, args: Args) -> Target {
        Target {
            event: self.intern(event),
            args,
            anon: self.anon_ref(session),
        }
    }

    /// A postback to `session` (POE's `$session->postback(EVENT, ARGS)`).
    pub fn postback(&mut self, session: SessionId, event: &str, args: Args) -> Postback {
        Postback(self.target(session, event, args))
    }

    /// A callback to `session` (POE's `$session->callback(EVENT, ARGS)`).
    pub fn callback(&mut self, session: SessionId, event: &str, args: Args) -> Callback {
        Callback(self.target(session, event, args))
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
        for (sid, ev, args) in posts {
            if self.session_exists(sid) && !sid.is_kernel() && self.sender_alive() {
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
