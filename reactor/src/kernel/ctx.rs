//! The context a handler runs in ([`Ctx`], POE's `@_`), and how the kernel stores and
//! invokes handlers.

use super::session::{ObjectMethod, PackageMethod, SessionId};
use super::{EventId, Kernel};
use crate::error::Result;
use crate::ids::WheelId;
use crate::value::{ArgError, Args, HandlerError, IntoArgs, Outcome, Value};
use std::any::Any;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::rc::Rc;

/// What the kernel knows about the event being handled.
pub(crate) struct Invocation {
    pub(crate) key: usize,
    pub(crate) session: SessionId,
    pub(crate) state: EventId,
    pub(crate) sender: SessionId,
    pub(crate) caller_state: EventId,
    pub(crate) caller: &'static Location<'static>,
    pub(crate) args: Args,
}

/// A type-erased handler as the kernel stores it.
pub(crate) type Handler =
    Rc<dyn Fn(&mut Kernel, Invocation) -> std::result::Result<Value, HandlerError>>;

/// The context a handler runs in: POE's `@_` (KERNEL, HEAP, SESSION, SENDER, STATE,
/// CALLER_STATE, ARG0..).
///
/// It dereferences to the [`Kernel`], so every kernel call reads as in POE:
/// `ctx.post(..)`, `ctx.yield_(..)`, `ctx.delay(..)`. The heap is reached with
/// [`heap`](Ctx::heap); the borrow checker will not let a heap reference live across a
/// kernel call, which is what makes re-entrant `call`s (A calls B calls A) safe.
///
/// # Examples
///
/// ```
/// use reactor::{Ctx, HandlerError, Kernel, Session};
///
/// /// A handler as a plain function: heap `u64`, `ARG0` a `u64`.
/// fn add(ctx: &mut Ctx<'_, u64>) -> Result<(), HandlerError> {
///     let n: u64 = *ctx.arg(0)?; // ARG0, typed; a wrong type is an ArgError
///     *ctx.heap() += n; // HEAP
///     if *ctx.heap() < 10 {
///         ctx.yield_("add", n * 2)?; // the kernel's methods, through the context
///     }
///     let total = *ctx.heap();
///     println!("{total} in '{}' of session {}", ctx.event(), ctx.session());
///     Ok(())
/// }
///
/// let mut kernel = Kernel::new()?;
/// kernel.create(
///     Session::new(0u64)
///         .on("_start", |ctx: &mut Ctx<'_, u64>| ctx.yield_("add", 1u64))
///         .on("add", add),
/// )?;
/// kernel.run()?;
/// # Ok::<(), reactor::Error>(())
/// ```
pub struct Ctx<'k, H> {
    pub(crate) kernel: &'k mut Kernel,
    /// The invocation the handler was called with, where the kernel put it: a copy into
    /// the context would read back with wide loads what the kernel has just written field
    /// by field, which the store buffer cannot forward.
    pub(crate) inv: &'k mut Invocation,
    /// The wheel the heap named as the session's own when last looked at for that (a
    /// `ServerTcp` connection's `client`, read with its `shutdown` before the program's
    /// input handler runs), while that look holds: whatever hands out the heap or the
    /// kernel mutably forgets it. `Ctx::client` then needs no second look at the heap.
    pub(crate) own_wheel: Option<WheelId>,
    pub(crate) _heap: PhantomData<fn() -> H>,
}

impl<H> std::fmt::Debug for Ctx<'_, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("session", &self.inv.session)
            .field("sender", &self.inv.sender)
            .field("event", &self.inv.state.name())
            .finish_non_exhaustive()
    }
}

impl<H: 'static> Ctx<'_, H> {
    /// The session's heap (POE's `HEAP`).
    pub fn heap(&mut self) -> &mut H {
        self.own_wheel = None;
        self.kernel.heap_of::<H>(self.inv.key)
    }

    /// The kernel (POE's `KERNEL`); the context also dereferences to it.
    pub fn kernel(&mut self) -> &mut Kernel {
        self.own_wheel = None;
        self.kernel
    }

    /// The session handling the event (POE's `SESSION`).
    pub fn session(&self) -> SessionId {
        self.inv.session
    }

    /// The session that sent the event (POE's `SENDER`); the kernel for signals and
    /// lifecycle events, the session itself for yields and timers.
    pub fn sender(&self) -> SessionId {
        self.inv.sender
    }

    /// The name of the event being handled (POE's `STATE`).
    #[doc(alias = "STATE")]
    pub fn event(&self) -> &str {
        self.kernel.event_name(self.inv.state)
    }

    /// The event that was running when this one was posted or called (POE's
    /// `CALLER_STATE`).
    #[doc(alias = "CALLER_STATE")]
    pub fn caller_state(&self) -> &str {
        self.kernel.event_name(self.inv.caller_state)
    }

    /// Source file of the `post`/`call`/`yield` that sent the event (POE's `CALLER_FILE`).
    pub fn caller_file(&self) -> &'static str {
        self.inv.caller.file()
    }

    /// Source line of the `post`/`call`/`yield` that sent the event (POE's `CALLER_LINE`).
    pub fn caller_line(&self) -> u32 {
        self.inv.caller.line()
    }

    /// All arguments (POE's `@_[ARG0..$#_]`).
    pub fn args(&self) -> &Args {
        &self.inv.args
    }

    /// Argument `i` as a `T` (POE's `$_[ARG0 + i]`).
    pub fn arg<T: Any>(&self, i: usize) -> std::result::Result<&T, ArgError> {
        self.inv.args.get::<T>(i)
    }

    /// Takes argument `i` out as an owned `T` (e.g. the socket of a `SuccessEvent`).
    pub fn take_arg<T: Any>(&mut self, i: usize) -> std::result::Result<T, ArgError> {
        self.inv.args.take::<T>(i)
    }

    /// Adds or replaces a handler of this session at run time (POE's `$kernel->state`).
    pub fn state<R: Outcome + 'static>(
        &mut self,
        event: &str,
        handler: impl Fn(&mut Ctx<'_, H>) -> R + 'static,
    ) -> Result<()> {
        let h = erase::<H, R>(handler);
        self.kernel.set_handler(self.inv.key, event, Some(h))
    }

    /// Adds or replaces a handler that is a method of a shared object, at run time (POE's
    /// `$kernel->state(EVENT, $object, $method)`): `method` gets the object (POE's
    /// `OBJECT`) and the context, as with [`Session::object_states`](crate::Session::object_states).
    #[doc(alias = "state")]
    pub fn object_state<O: 'static, R: Outcome + 'static>(
        &mut self,
        event: &str,
        object: Rc<O>,
        method: ObjectMethod<O, H, R>,
    ) -> Result<()> {
        self.state(event, move |ctx: &mut Ctx<'_, H>| method(&object, ctx))
    }

    /// Adds or replaces a handler that is a function of a package, at run time (POE's
    /// `$kernel->state(EVENT, 'Package', $function)`): `func` gets the package name (POE's
    /// `OBJECT`) and the context, as with [`Session::package_states`](crate::Session::package_states).
    #[doc(alias = "state")]
    pub fn package_state<R: Outcome + 'static>(
        &mut self,
        event: &str,
        package: &'static str,
        func: PackageMethod<H, R>,
    ) -> Result<()> {
        self.state(event, move |ctx: &mut Ctx<'_, H>| func(package, ctx))
    }

    /// Removes a handler of this session (POE's `$kernel->state(EVENT)`).
    pub fn remove_state(&mut self, event: &str) -> Result<()> {
        self.kernel.set_handler(self.inv.key, event, None)
    }

    /// A postback: a closure that posts `event` to this session with `ARG0` = `args` and
    /// `ARG1` = the closure's own arguments. It keeps the session alive until dropped.
    pub fn postback(&mut self, event: &str, args: impl IntoArgs) -> super::Postback {
        let sid = self.inv.session;
        self.kernel.postback(sid, event, args.into_args())
    }

    /// A callback: like [`postback`](Ctx::postback) but the event is `call`ed and the
    /// handler's value returned.
    pub fn callback(&mut self, event: &str, args: impl IntoArgs) -> super::Callback {
        let sid = self.inv.session;
        self.kernel.callback(sid, event, args.into_args())
    }
}

impl<H> Deref for Ctx<'_, H> {
    type Target = Kernel;
    fn deref(&self) -> &Kernel {
        self.kernel
    }
}

impl<H> DerefMut for Ctx<'_, H> {
    fn deref_mut(&mut self) -> &mut Kernel {
        self.own_wheel = None;
        self.kernel
    }
}

pub(crate) fn erase<H: 'static, R: Outcome + 'static>(
    f: impl Fn(&mut Ctx<'_, H>) -> R + 'static,
) -> Handler {
    Rc::new(move |kernel: &mut Kernel, mut inv: Invocation| {
        let mut ctx = Ctx {
            kernel: &mut *kernel,
            inv: &mut inv,
            own_wheel: None,
            _heap: PhantomData,
        };
        let out = f(&mut ctx);
        // The arguments are done with: moved out to be kept or dropped in one place. The
        // handler's value is converted after, straight into the kernel's form.
        let k = kernel;
        inv.args
            .recycle(&mut k.arg_lists, &mut k.record_boxes, &mut k.input_args);
        out.into_outcome()
    })
}
