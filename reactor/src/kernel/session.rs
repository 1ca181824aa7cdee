//! Sessions as a program builds them ([`Session`], [`States`], options) and the
//! designators that name them.

pub use super::ctx::Ctx;
pub(crate) use super::ctx::{erase, Handler, Invocation};
use super::Kernel;
pub use crate::ids::{SessionId, KERNEL};
use crate::value::{Args, IntoArgs, Outcome};
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;

/// Anything that names a session: a [`SessionId`], or a string that is a numeric ID or an
/// alias (POE's session designators, resolved in that order when the call is made).
pub trait Designator {
    /// Resolves against the kernel's tables.
    fn resolve(&self, k: &Kernel) -> Option<SessionId>;
}

impl Designator for SessionId {
    fn resolve(&self, k: &Kernel) -> Option<SessionId> {
        k.session_exists(*self).then_some(*self)
    }
}

impl Designator for &SessionId {
    fn resolve(&self, k: &Kernel) -> Option<SessionId> {
        (*self).resolve(k)
    }
}

impl Designator for str {
    fn resolve(&self, k: &Kernel) -> Option<SessionId> {
        if let Ok(n) = self.parse::<u64>() {
            let id = SessionId(n);
            if k.session_exists(id) {
                return Some(id);
            }
        }
        k.alias_lookup(self)
    }
}

impl Designator for &str {
    fn resolve(&self, k: &Kernel) -> Option<SessionId> {
        (**self).resolve(k)
    }
}

impl Designator for String {
    fn resolve(&self, k: &Kernel) -> Option<SessionId> {
        self.as_str().resolve(k)
    }
}

impl Designator for &String {
    fn resolve(&self, k: &Kernel) -> Option<SessionId> {
        self.as_str().resolve(k)
    }
}

/// A method handler for [`Session::object_states`]: gets the object (POE's `OBJECT`) and the
/// context.
pub type ObjectMethod<O, H, R> = fn(&O, &mut Ctx<'_, H>) -> R;

/// A function handler for [`Session::package_states`]: gets the package name (POE's
/// `OBJECT` for package states) and the context.
pub type PackageMethod<H, R> = fn(&'static str, &mut Ctx<'_, H>) -> R;

/// Per-session options (POE's `option`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionOptions {
    /// Log every dispatch to this session at `info` level (POE's `trace`).
    pub trace: bool,
    /// Warn when an event has neither a handler nor a `_default` (POE's `default`), even
    /// an event whose name starts with `_`. The kernel warns about the others anyway
    /// unless it was built with [`KernelBuilder::warn_unhandled`](crate::KernelBuilder::warn_unhandled) off.
    pub default: bool,
    /// Warn when a handler is redefined (POE's `debug`).
    pub debug: bool,
}

/// A session ready to be created: heap, handlers and `_start` arguments
/// (POE's `POE::Session->create(...)`).
///
/// ```
/// use reactor::{Kernel, Session};
/// let mut k = Kernel::new().unwrap();
/// k.create(
///     Session::new(0u32)
///         .on("_start", |ctx| ctx.yield_("count", ()))
///         .on("count", |ctx| {
///             *ctx.heap() += 1;
///             if *ctx.heap() < 3 {
///                 ctx.yield_("count", ())?;
///             }
///             Ok::<(), reactor::HandlerError>(())
///         }),
/// )
/// .unwrap();
/// k.run().unwrap();
/// ```
pub struct Session<H> {
    pub(crate) heap: H,
    pub(crate) handlers: Vec<(String, Handler)>,
    pub(crate) shared: Option<Rc<StatesInner>>,
    pub(crate) args: Args,
    pub(crate) options: SessionOptions,
}

impl<H> fmt::Debug for Session<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let events: Vec<&str> = self
            .handlers
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        f.debug_struct("Session")
            .field("heap", &std::any::type_name::<H>())
            .field("events", &events)
            .field("shares_states", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// Handlers built once for many sessions: every session created with
/// [`Session::from_states`] from the same `States` shares one handler table in the kernel,
/// as POE sessions created from one package share its methods.
///
/// A server that starts a session per connection (as [`ServerTcp`](crate::component::ServerTcp)
/// does) then has one table however many connections it holds, and dispatching an event to
/// any of them reads the same few cache lines. A session that changes its handlers with
/// [`Ctx::state`] or [`Ctx::remove_state`] gets its own copy first; the others keep the
/// shared one.
///
/// ```
/// use reactor::{Ctx, Kernel, Session, States};
///
/// let states = States::new()
///     .on("_start", |ctx: &mut Ctx<'_, u32>| ctx.yield_("count", ()))
///     .on("count", |ctx: &mut Ctx<'_, u32>| *ctx.heap() += 1);
/// let mut k = Kernel::new().unwrap();
/// for n in 0..3 {
///     k.create(Session::from_states(n, &states)).unwrap();
/// }
/// k.run().unwrap();
/// ```
pub struct States<H> {
    inner: Rc<StatesInner>,
    _heap: PhantomData<fn() -> H>,
}

/// What [`States`] holds: the handlers by name, and the table a kernel made of them.
pub(crate) struct StatesInner {
    pub(crate) handlers: Vec<(String, Handler)>,
    /// (kernel serial, table): event ids are per kernel.
    pub(crate) table: std::cell::RefCell<Option<(u64, Rc<super::sessions::Handlers>)>>,
}

impl<H> Clone for States<H> {
    fn clone(&self) -> Self {
        States {
            inner: Rc::clone(&self.inner),
            _heap: PhantomData,
        }
    }
}

impl<H> fmt::Debug for States<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .inner
            .handlers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        f.debug_struct("States").field("events", &names).finish()
    }
}

impl<H: 'static> Default for States<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: 'static> States<H> {
    /// No handlers yet.
    pub fn new() -> Self {
        States {
            inner: Rc::new(StatesInner {
                handlers: Vec::new(),
                table: std::cell::RefCell::new(None),
            }),
            _heap: PhantomData,
        }
    }

    /// Adds a handler for `event`, as [`Session::on`] does. Adding to states that a session
    /// was already created from gives new states; that session keeps the old ones.
    pub fn on<R: Outcome + 'static>(
        self,
        event: &str,
        handler: impl Fn(&mut Ctx<'_, H>) -> R + 'static,
    ) -> Self {
        self.on_handler(event, erase::<H, R>(handler))
    }

    /// Adds a handler already made into the kernel's form ([`erase`]), as
    /// [`on`](States::on) does: for components that wrap a program's closure in a
    /// handler of their own.
    pub(crate) fn on_handler(mut self, event: &str, h: Handler) -> Self {
        match Rc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.handlers.push((event.to_owned(), h));
                *inner.table.get_mut() = None;
            }
            None => {
                let mut handlers = self.inner.handlers.clone();
                handlers.push((event.to_owned(), h));
                self.inner = Rc::new(StatesInner {
                    handlers,
                    table: std::cell::RefCell::new(None),
                });
            }
        }
        self
    }
}

impl<H: Default + 'static> Default for Session<H> {
    fn default() -> Self {
        Self::new(H::default())
    }
}

impl<H: 'static> Session<H> {
    /// A session with this heap and no handlers yet.
    pub fn new(heap: H) -> Self {
        Session {
            heap,
            handlers: Vec::new(),
            shared: None,
            args: Args::new(),
            options: SessionOptions::default(),
        }
    }

    /// A session with this heap and the shared handlers `states` (see [`States`]).
    /// Handlers added with [`on`](Session::on) and the like go on top of them, in a table
    /// of this session's own.
    pub fn from_states(heap: H, states: &States<H>) -> Self {
        Session {
            shared: Some(Rc::clone(&states.inner)),
            ..Session::new(heap)
        }
    }

    /// Adds a handler for `event` (POE's `inline_states`). A later handler for the same
    /// event replaces an earlier one.
    #[doc(alias = "inline_states")]
    pub fn on<R: Outcome + 'static>(
        mut self,
        event: &str,
        handler: impl Fn(&mut Ctx<'_, H>) -> R + 'static,
    ) -> Self {
        self.handlers
            .push((event.to_owned(), erase::<H, R>(handler)));
        self
    }

    /// Maps events to methods of a shared object (POE's `object_states`). Each method gets
    /// the object (POE's `OBJECT`) and the context.
    pub fn object_states<O: 'static, R: Outcome + 'static>(
        mut self,
        object: Rc<O>,
        states: &[(&str, ObjectMethod<O, H, R>)],
    ) -> Self {
        for &(event, method) in states {
            let obj = Rc::clone(&object);
            self.handlers.push((
                event.to_owned(),
                erase::<H, R>(move |ctx| method(&obj, ctx)),
            ));
        }
        self
    }

    /// Maps events to plain functions of a type (POE's `package_states`); `package` is the
    /// class name the functions receive as `OBJECT`.
    pub fn package_states<R: Outcome + 'static>(
        mut self,
        package: &'static str,
        states: &[(&str, PackageMethod<H, R>)],
    ) -> Self {
        for &(event, func) in states {
            self.handlers.push((
                event.to_owned(),
                erase::<H, R>(move |ctx| func(package, ctx)),
            ));
        }
        self
    }

    /// Arguments for `_start` (POE's `args`).
    pub fn args(mut self, args: impl IntoArgs) -> Self {
        self.args = args.into_args();
        self
    }

    /// Session options (POE's `options`).
    pub fn options(mut self, options: SessionOptions) -> Self {
        self.options = options;
        self
    }
}
