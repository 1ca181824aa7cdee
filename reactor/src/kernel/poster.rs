//! Posting from other threads: [`Poster`], the one way into a kernel from outside its
//! thread.
//!
//! A poster and the kernel share an inbox (a list behind a mutex) and the kernel's one
//! [`mio::Waker`]. A post pushes a message onto the list; the first post after the kernel
//! last emptied it also wakes the kernel, and the posts that follow, until the kernel
//! empties it again, only push: one wake-up per batch, however many posts it holds. The
//! kernel empties the inbox at the start of every timeslice when a flag says it holds
//! something (one load when it does not; none at all in a kernel that never made a
//! poster), and when the waker interrupts its poll. Each message becomes an ordinary post
//! from the kernel to its session, queued in the order the messages were pushed, so the
//! posts of one thread arrive in the order that thread made them.
//!
//! Arguments cross threads as they were given (they must be `Send`) and become [`Args`](crate::Args)
//! on the kernel's thread, where the reference counts of [`Args`](crate::Args) may live.

use super::session::{Designator, SessionId, KERNEL};
use super::{EventId, ItemKind, Kernel};
use crate::error::{Error, Result};
use crate::value::IntoArgs;
use mio::Waker;
use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The reference tag a [holding poster](Kernel::poster_holding) keeps its session alive
/// with ([`Kernel::refcount_increment`]).
pub const POSTER_TAG: &str = "poster";

/// Why a [`Poster`] could not post.
#[derive(Debug)]
#[non_exhaustive]
pub enum PostError {
    /// The kernel is gone (dropped): nothing will ever dispatch the event.
    KernelGone,
    /// The event name is empty.
    EmptyEvent,
    /// The event was queued, but waking the kernel failed; it is dispatched when the
    /// kernel next wakes for another reason.
    Wake(std::io::Error),
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::KernelGone => f.write_str("the kernel is gone"),
            PostError::EmptyEvent => f.write_str("invalid argument: empty event name"),
            PostError::Wake(e) => write!(f, "queued, but the kernel could not be woken: {e}"),
        }
    }
}

impl std::error::Error for PostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PostError::Wake(e) => Some(e),
            _ => None,
        }
    }
}

/// Who a [`Poster`] posts to: a session's id, or a string resolved as
/// [`Designator`]s are (an alias, or a numeric id), on the kernel's thread when the post
/// is delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// A session of the poster's kernel, by id.
    Id(SessionId),
    /// An alias (or a session id written as a number).
    Name(String),
}

impl From<SessionId> for Recipient {
    fn from(id: SessionId) -> Self {
        Recipient::Id(id)
    }
}

impl From<&str> for Recipient {
    fn from(s: &str) -> Self {
        Recipient::Name(s.to_owned())
    }
}

impl From<String> for Recipient {
    fn from(s: String) -> Self {
        Recipient::Name(s)
    }
}

impl From<&String> for Recipient {
    fn from(s: &String) -> Self {
        Recipient::Name(s.clone())
    }
}

/// The event a [`Poster`] posts: a `&'static str` (a literal, no allocation), an
/// [`EventId`], or an owned `String` for names made at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteEvent(EventRepr);

#[derive(Clone, Debug, PartialEq, Eq)]
enum EventRepr {
    Static(&'static str),
    Id(EventId),
    Owned(String),
}

impl RemoteEvent {
    fn is_empty(&self) -> bool {
        match &self.0 {
            EventRepr::Static(s) => s.is_empty(),
            EventRepr::Id(_) => false,
            EventRepr::Owned(s) => s.is_empty(),
        }
    }
}

impl From<&'static str> for RemoteEvent {
    fn from(s: &'static str) -> Self {
        RemoteEvent(EventRepr::Static(s))
    }
}

impl From<EventId> for RemoteEvent {
    fn from(id: EventId) -> Self {
        RemoteEvent(EventRepr::Id(id))
    }
}

impl From<String> for RemoteEvent {
    fn from(s: String) -> Self {
        RemoteEvent(EventRepr::Owned(s))
    }
}

/// Arguments on their way to the kernel's thread, not yet [`Args`](crate::Args).
trait SendArgs: Send {
    /// The arguments as the queue keeps them: a boxed slice comes back from the virtual
    /// call in two registers, where an `Args` would come back through memory and be read
    /// back wider than it was written on its way into the queue.
    fn into_boxed_args(self: Box<Self>) -> Box<[crate::value::Arg]>;
}

impl<T: IntoArgs + Send + 'static> SendArgs for T {
    fn into_boxed_args(self: Box<Self>) -> Box<[crate::value::Arg]> {
        (*self).into_args().into_boxed()
    }
}

/// Work for the kernel's thread, run in the order it was pushed.
pub(crate) type KernelFn = Box<dyn FnOnce(&mut Kernel) + Send>;

enum Message {
    Post {
        dest: Recipient,
        event: RemoteEvent,
        args: Box<dyn SendArgs>,
        caller: &'static Location<'static>,
    },
    /// Code to run on the kernel's thread, outside any session (the kernel is the active
    /// session): what holding posters' releases and the crate's components send.
    Run(KernelFn),
}

struct Inbox {
    messages: Vec<Message>,
    /// A wake-up was sent since the kernel last emptied the inbox.
    woken: bool,
    /// The kernel is gone.
    closed: bool,
    /// The kernel's waker; dropped (its descriptor closed) with the kernel, so posters
    /// that outlive the kernel hold no descriptor.
    waker: Option<Waker>,
}

struct Shared {
    inbox: Mutex<Inbox>,
    /// Mirrors "the inbox holds messages" for the kernel to read without the lock.
    pending: AtomicBool,
    /// Wake-ups written, for the tests of coalescing.
    #[cfg(test)]
    wakes: std::sync::atomic::AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Pushes `m`; returns whether the caller must wake the kernel (after unlocking).
    fn push(&self, inbox: &mut Inbox, m: Message) -> bool {
        inbox.messages.push(m);
        if inbox.woken {
            return false;
        }
        inbox.woken = true;
        self.pending.store(true, Ordering::Release);
        true
    }

    fn send(&self, m: Message) -> std::result::Result<(), PostError> {
        let wake = {
            let mut inbox = self.lock();
            if inbox.closed {
                return Err(PostError::KernelGone);
            }
            self.push(&mut inbox, m)
        };
        if wake {
            self.wake()?;
        }
        Ok(())
    }

    fn wake(&self) -> std::result::Result<(), PostError> {
        #[cfg(test)]
        self.wakes.fetch_add(1, Ordering::Relaxed);
        match &self.lock().waker {
            Some(w) => w.wake().map_err(PostError::Wake),
            None => Err(PostError::KernelGone),
        }
    }
}

/// Keeps a session alive for a holding poster and its clones; the last one dropped asks
/// the kernel to let go.
struct Hold {
    session: SessionId,
    shared: Arc<Shared>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let session = self.session;
        let _ = self
            .shared
            .send(Message::Run(Box::new(move |k: &mut Kernel| {
                let _ = k.refcount_decrement(session, POSTER_TAG);
            })));
    }
}

/// A handle through which any thread posts events to the sessions of one kernel.
///
/// `Send + Sync + Clone`: clone it into as many threads as need it. [`post`](Poster::post)
/// queues a named event with `Send` arguments for a session, by id or alias; the kernel
/// dispatches it in its next timeslice, from the kernel (`SENDER` is [`KERNEL`]), in the
/// order the posting thread made its posts. Posts from several threads interleave in the
/// order they reached the inbox.
///
/// The kernel is woken once per batch, not once per post: the first post after the kernel
/// emptied its inbox writes the kernel's [`mio::Waker`], the following ones only queue.
/// [`batch`](Poster::batch) posts many events under one lock. A kernel queues at most
/// [`POSTS_PER_TIMESLICE`] posts from other threads per timeslice; under a flood the rest
/// wait, in order, for the following timeslices, so I/O and timers keep their turns.
///
/// A poster does not keep its kernel running: with no session left, [`Kernel::run`]
/// returns, as it does without posters. A session that waits for posts keeps itself alive
/// as it would for anything else (an alias, a [reference count](Kernel::refcount_increment)),
/// or is given a [holding poster](Kernel::poster_holding). A post to a session that is gone
/// by the time the kernel reads it is dropped, as POE drops a post to a missing session
/// (`ESRCH`); a post to a kernel that has been dropped fails with
/// [`PostError::KernelGone`].
///
/// ```
/// use reactor::{Ctx, Kernel, Session};
///
/// let mut kernel = Kernel::new()?;
/// let poster = kernel.poster()?;
/// let worker = std::thread::spawn(move || {
///     for n in 0..3u32 {
///         poster.post("counter", "add", (n,)).unwrap();
///     }
///     poster.post("counter", "done", ()).unwrap();
/// });
/// kernel.create(
///     Session::new(0u32)
///         .on("_start", |ctx: &mut Ctx<'_, u32>| ctx.alias_set("counter"))
///         .on("add", |ctx: &mut Ctx<'_, u32>| {
///             let n: u32 = *ctx.arg(0)?;
///             *ctx.heap() += n;
///             Ok::<(), reactor::ArgError>(())
///         })
///         .on("done", |ctx: &mut Ctx<'_, u32>| {
///             assert_eq!(*ctx.heap(), 3);
///             ctx.alias_remove("counter")
///         }),
/// )?;
/// kernel.run()?;
/// worker.join().unwrap();
/// # Ok::<(), reactor::Error>(())
/// ```
#[derive(Clone)]
pub struct Poster {
    shared: Arc<Shared>,
    hold: Option<Arc<Hold>>,
}

impl fmt::Debug for Poster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poster")
            .field("open", &self.is_open())
            .field("holds", &self.hold.as_ref().map(|h| h.session))
            .finish()
    }
}

impl Poster {
    /// Posts `event` to `dest` with `args` (`()` or a tuple of `Send` values), to be
    /// dispatched in the kernel's next timeslice.
    ///
    /// # Errors
    ///
    /// [`PostError::KernelGone`] if the kernel has been dropped, [`PostError::EmptyEvent`]
    /// for an empty name, [`PostError::Wake`] if the event was queued but the kernel could
    /// not be woken.
    #[track_caller]
    pub fn post<A: IntoArgs + Send + 'static>(
        &self,
        dest: impl Into<Recipient>,
        event: impl Into<RemoteEvent>,
        args: A,
    ) -> std::result::Result<(), PostError> {
        let event = event.into();
        if event.is_empty() {
            return Err(PostError::EmptyEvent);
        }
        self.shared.send(Message::Post {
            dest: dest.into(),
            event,
            args: Box::new(args),
            caller: Location::caller(),
        })
    }

    /// Starts a batch: the posts made through it take the inbox's lock once, and wake the
    /// kernel at most once, when the batch ends (is dropped). The kernel cannot empty the
    /// inbox while a batch is open, so keep batches short.
    ///
    /// # Errors
    ///
    /// [`PostError::KernelGone`] if the kernel has been dropped.
    pub fn batch(&self) -> std::result::Result<PostBatch<'_>, PostError> {
        let inbox = self.shared.lock();
        if inbox.closed {
            return Err(PostError::KernelGone);
        }
        Ok(PostBatch {
            shared: &self.shared,
            inbox: Some(inbox),
            wake: false,
        })
    }

    /// Whether the kernel still exists (a post may still fail if it is dropped meanwhile).
    pub fn is_open(&self) -> bool {
        !self.shared.lock().closed
    }

    /// The session a [holding poster](Kernel::poster_holding) keeps alive.
    pub fn holds(&self) -> Option<SessionId> {
        self.hold.as_ref().map(|h| h.session)
    }

    /// Runs `f` on the kernel's thread in the kernel's next timeslice, in order with the
    /// posts, with the kernel as the active session.
    pub(crate) fn run(&self, f: KernelFn) -> std::result::Result<(), PostError> {
        self.shared.send(Message::Run(f))
    }
}

/// Posts made under one lock, with at most one wake-up ([`Poster::batch`]).
pub struct PostBatch<'a> {
    shared: &'a Shared,
    inbox: Option<MutexGuard<'a, Inbox>>,
    wake: bool,
}

impl fmt::Debug for PostBatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostBatch").finish_non_exhaustive()
    }
}

impl PostBatch<'_> {
    /// Queues `event` for `dest`, as [`Poster::post`] does; the kernel is woken when the
    /// batch ends.
    ///
    /// # Errors
    ///
    /// [`PostError::EmptyEvent`] for an empty name.
    #[track_caller]
    pub fn post<A: IntoArgs + Send + 'static>(
        &mut self,
        dest: impl Into<Recipient>,
        event: impl Into<RemoteEvent>,
        args: A,
    ) -> std::result::Result<(), PostError> {
        let event = event.into();
        if event.is_empty() {
            return Err(PostError::EmptyEvent);
        }
        let m = Message::Post {
            dest: dest.into(),
            event,
            args: Box::new(args),
            caller: Location::caller(),
        };
        if let Some(inbox) = self.inbox.as_mut() {
            self.wake |= self.shared.push(inbox, m);
        }
        Ok(())
    }

    /// Ends the batch and wakes the kernel if it needs waking, reporting a failed wake-up
    /// (dropping the batch does the same and ignores it).
    ///
    /// # Errors
    ///
    /// [`PostError::Wake`] if the posts were queued but the kernel could not be woken.
    pub fn finish(mut self) -> std::result::Result<(), PostError> {
        self.end()
    }

    fn end(&mut self) -> std::result::Result<(), PostError> {
        drop(self.inbox.take());
        if std::mem::take(&mut self.wake) {
            self.shared.wake()?;
        }
        Ok(())
    }
}

impl Drop for PostBatch<'_> {
    fn drop(&mut self) {
        let _ = self.end();
    }
}

/// At most this many posts from other threads are queued per timeslice; the rest wait
/// for the next timeslices, in order. A flood from other threads then cannot hold the
/// kernel's I/O back, and the queue stays small enough to stay in cache.
pub const POSTS_PER_TIMESLICE: usize = 1024;

/// The kernel's side: its inbox, once it has made a poster.
#[derive(Default)]
pub(crate) struct Posts {
    shared: Option<Arc<Shared>>,
    /// The list the inbox gets back when the kernel takes its messages, so the two swap
    /// allocations instead of making new ones.
    spare: Vec<Message>,
    /// Messages taken from the inbox and not yet delivered ([`POSTS_PER_TIMESLICE`]).
    backlog: VecDeque<Message>,
    /// The clock has been read for the posts of this drain.
    stamped: bool,
}

impl Drop for Posts {
    fn drop(&mut self) {
        if let Some(s) = &self.shared {
            let (left, waker) = {
                let mut inbox = s.lock();
                inbox.closed = true;
                (std::mem::take(&mut inbox.messages), inbox.waker.take())
            };
            drop(waker);
            // Arguments and closures are dropped outside the lock: a holding poster's
            // release, dropped here, takes it.
            drop(left);
        }
    }
}

impl Kernel {
    /// A [`Poster`]: a handle other threads post to this kernel's sessions through. The
    /// first call makes the kernel's waker; every poster of a kernel shares it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the waker cannot be made.
    pub fn poster(&mut self) -> Result<Poster> {
        Ok(Poster {
            shared: self.posts_shared()?,
            hold: None,
        })
    }

    /// A [`Poster`] that keeps `session` alive, and so the kernel running, while it or any
    /// of its clones exists: an external reference tagged [`POSTER_TAG`], taken now and
    /// released in the timeslice after the last clone is dropped, on whatever thread.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchSession`] if `session` does not resolve, [`Error::Io`] if the waker
    /// cannot be made.
    pub fn poster_holding(&mut self, session: impl Designator) -> Result<Poster> {
        let shared = self.posts_shared()?;
        let session = session.resolve(self).ok_or(Error::NoSuchSession)?;
        if session.is_kernel() {
            return Err(Error::NoSuchSession);
        }
        self.refcount_increment(session, POSTER_TAG)?;
        Ok(Poster {
            hold: Some(Arc::new(Hold {
                session,
                shared: Arc::clone(&shared),
            })),
            shared,
        })
    }

    fn posts_shared(&mut self) -> Result<Arc<Shared>> {
        if let Some(s) = &self.posts.shared {
            return Ok(Arc::clone(s));
        }
        let waker = Waker::new(self.io.registry(), super::token::poster())?;
        let s = Arc::new(Shared {
            inbox: Mutex::new(Inbox {
                messages: Vec::new(),
                woken: false,
                closed: false,
                waker: Some(waker),
            }),
            pending: AtomicBool::new(false),
            #[cfg(test)]
            wakes: Default::default(),
        });
        self.posts.shared = Some(Arc::clone(&s));
        Ok(s)
    }

    /// Queues what other threads posted: called at the start of every timeslice and when
    /// the waker interrupts the poll. Costs one branch in a kernel without posters, and two
    /// loads while the inbox is empty.
    #[inline]
    pub(crate) fn drain_posts(&mut self) {
        if let Some(s) = &self.posts.shared {
            if s.pending.load(Ordering::Acquire) || !self.posts.backlog.is_empty() {
                self.drain_posts_slow(false);
            }
        }
    }

    /// Queues what other threads posted, after the waker interrupted the poll: takes the
    /// inbox's lock without looking at the flag first.
    pub(crate) fn drain_posts_woken(&mut self) {
        if self.posts.shared.is_some() {
            self.drain_posts_slow(true);
        }
    }

    #[cold]
    #[inline(never)]
    fn drain_posts_slow(&mut self, woken: bool) {
        let Some(shared) = self.posts.shared.clone() else {
            return;
        };
        self.posts.stamped = false;
        if woken || shared.pending.load(Ordering::Acquire) {
            let mut batch = std::mem::take(&mut self.posts.spare);
            {
                let mut inbox = shared.lock();
                std::mem::swap(&mut inbox.messages, &mut batch);
                inbox.woken = false;
                shared.pending.store(false, Ordering::Release);
            }
            if self.posts.backlog.is_empty() && batch.len() <= POSTS_PER_TIMESLICE {
                // The usual case: everything goes now, straight from the list.
                for m in batch.drain(..) {
                    self.deliver_message(m);
                }
            } else {
                self.posts.backlog.extend(batch.drain(..));
            }
            if self.posts.spare.capacity() < batch.capacity() {
                self.posts.spare = batch;
            }
        }
        let mut queued = 0;
        while queued < POSTS_PER_TIMESLICE {
            let Some(m) = self.posts.backlog.pop_front() else {
                break;
            };
            queued += usize::from(self.deliver_message(m));
        }
        // With posts left over, this timeslice queued POSTS_PER_TIMESLICE of them, so the
        // next one will not wait in its poll, and takes the next share.
    }

    /// Delivers one message; returns whether it queued an event.
    fn deliver_message(&mut self, m: Message) -> bool {
        match m {
            Message::Post {
                dest,
                event,
                args,
                caller,
            } => self.deliver(dest, event, args.into_boxed_args(), caller),
            Message::Run(f) => {
                f(self);
                false
            }
        }
    }

    /// Queues one post from another thread, from the kernel; returns whether it did (the
    /// session may be gone).
    fn deliver(
        &mut self,
        dest: Recipient,
        event: RemoteEvent,
        args: Box<[crate::value::Arg]>,
        caller: &'static Location<'static>,
    ) -> bool {
        let to = match &dest {
            Recipient::Id(id) => id.resolve(self),
            Recipient::Name(name) => name.resolve(self),
        };
        let ev = match event.0 {
            EventRepr::Static(s) => self.intern(s),
            EventRepr::Id(id) => id,
            EventRepr::Owned(s) => self.intern(&s),
        };
        match to {
            Some(to) if !to.is_kernel() => {
                // One clock reading per drain: the posts that follow the first are FIFO
                // after it, as posts made in one handler are after its batch's time.
                let t = if self.posts.stamped {
                    self.last_fifo += 1;
                    self.last_fifo
                } else {
                    self.posts.stamped = true;
                    self.now_fifo()
                };
                self.enqueue_boxed(ItemKind::Post, to, KERNEL, ev, args, t, caller);
                true
            }
            _ => {
                log::debug!(
                    "post of {:?} from another thread to {dest:?}: no such session (ESRCH)",
                    self.event_name(ev)
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ctx, Session};
    use std::cell::RefCell;
    use std::rc::Rc;

    fn wakes(p: &Poster) -> usize {
        p.shared.wakes.load(Ordering::Relaxed)
    }

    /// A kernel with a session aliased "sink" that records every `n` it is posted.
    fn sink(k: &mut Kernel) -> Rc<RefCell<Vec<u32>>> {
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = Rc::clone(&got);
        k.create(
            Session::new(())
                .on("_start", |ctx: &mut Ctx<'_, ()>| ctx.alias_set("sink"))
                .on("n", move |ctx: &mut Ctx<'_, ()>| {
                    g.borrow_mut().push(*ctx.arg::<u32>(0).unwrap());
                }),
        )
        .unwrap();
        got
    }

    #[test]
    fn posts_until_the_kernel_drains_cost_one_wake_up() {
        let mut k = Kernel::new().unwrap();
        let got = sink(&mut k);
        let p = k.poster().unwrap();
        for n in 0..1000u32 {
            p.post("sink", "n", (n,)).unwrap();
        }
        assert_eq!(wakes(&p), 1);
        k.drain_posts();
        for n in 1000..1010u32 {
            p.post("sink", "n", (n,)).unwrap();
        }
        assert_eq!(wakes(&p), 2, "the first post after a drain wakes again");
        {
            let mut b = p.batch().unwrap();
            for n in 1010..1020u32 {
                b.post("sink", "n", (n,)).unwrap();
            }
        }
        assert_eq!(wakes(&p), 2, "a batch into a woken inbox does not wake");
        k.drain_posts();
        let mut b = p.batch().unwrap();
        for n in 1020..1030u32 {
            b.post("sink", "n", (n,)).unwrap();
        }
        b.finish().unwrap();
        assert_eq!(wakes(&p), 3, "one wake-up for the whole batch");
        k.run().unwrap();
        assert_eq!(*got.borrow(), (0..1030).collect::<Vec<u32>>());
    }

    #[test]
    fn a_flood_is_queued_a_share_per_timeslice_in_order() {
        let mut k = Kernel::new().unwrap();
        let got = sink(&mut k);
        let p = k.poster().unwrap();
        let n = 2 * POSTS_PER_TIMESLICE as u32 + 100;
        for i in 0..n {
            p.post("sink", "n", (i,)).unwrap();
        }
        let before = k.event_count();
        k.drain_posts();
        assert_eq!(k.event_count() - before, POSTS_PER_TIMESLICE);
        assert_eq!(wakes(&p), 1);
        k.run().unwrap();
        assert_eq!(*got.borrow(), (0..n).collect::<Vec<u32>>());
    }

    #[test]
    fn a_message_is_small() {
        // Each post crosses between cores as one of these: keep it to a cache line and a bit.
        assert!(
            std::mem::size_of::<Message>() <= 72,
            "{}",
            std::mem::size_of::<Message>()
        );
    }

    #[test]
    fn a_kernel_without_posts_never_takes_the_lock() {
        let mut k = Kernel::new().unwrap();
        let p = k.poster().unwrap();
        let guard = p.shared.lock();
        // Would deadlock if the drain took the lock with nothing pending.
        k.drain_posts();
        drop(guard);
    }
}
