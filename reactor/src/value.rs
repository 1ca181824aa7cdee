//! Event arguments, handler return values and handler errors.
//!
//! POE passes any Perl value as `ARG0..`; here an argument is any `'static` Rust value,
//! reference-counted so that one signal's arguments reach every watcher without copies.
//! Typed accessors fail with an [`ArgError`] that names the position and both types.

use crate::ids::SessionId;
use crate::ids::WheelId;
use crate::kernel::EventName;
use std::any::{type_name, Any, TypeId};
use std::fmt;
use std::rc::Rc;

/// One event argument.
pub type Arg = Rc<dyn Any>;

/// Lists of at most this many arguments are recycled (see [`Args`]).
pub(crate) const POOLED_CAPACITY: usize = 4;
/// At most this many empty lists wait for reuse, per kernel.
pub(crate) const POOL_SIZE: usize = 64;

/// The arguments of an event (POE's `@_[ARG0..$#_]`).
///
/// The lists a wheel builds for its events come from a small pool in the kernel, and go
/// back to it when the handler returns: the events a wheel hands its session, one after
/// another, cost no allocation for their argument list. An `Args` is as small as a `Vec`,
/// which matters where many wait or are returned in a hurry (timers, `alarm_remove`).
///
/// A byte record and its wheel's id (a `ReadWrite` wheel's `InputEvent`) come as they
/// are, in a box the kernel keeps for the next record: `ARG0` and `ARG1` are read or
/// taken with the same calls as any argument, and with no type test at run time when
/// asked for as `Vec<u8>` and [`WheelId`](crate::WheelId). Asked for as shared
/// arguments ([`Args::arg`], [`Args::iter`]), the two are made into such then.
#[derive(Clone, Default)]
pub struct Args(Repr);

/// What an [`Args`] holds.
#[derive(Clone)]
enum Repr {
    /// Any arguments, each shared.
    List(Vec<Arg>),
    /// A wheel's record and id.
    Input(Box<WheelInput>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::List(Vec::new())
    }
}

/// A wheel's record (`ARG0`) and id (`ARG1`) as its input handler gets them
/// ([`Args`]). The kernel keeps the box of the last one for the next record.
#[derive(Clone)]
pub(crate) struct WheelInput {
    record: Vec<u8>,
    id: WheelId,
    /// The two as shared arguments, made the first time they are asked for as such by
    /// reference; from then on the list is what `&mut` calls work on.
    shared: std::cell::OnceCell<Vec<Arg>>,
}

impl WheelInput {
    /// The two as shared arguments: the list made before, or a new one.
    fn into_list(self) -> Vec<Arg> {
        let WheelInput { record, id, shared } = self;
        shared
            .into_inner()
            .unwrap_or_else(|| vec![Rc::new(record) as Arg, Rc::new(id) as Arg])
    }

    /// The two as shared arguments, made now if not yet.
    fn shared(&self) -> &[Arg] {
        self.shared
            .get_or_init(|| vec![Rc::new(self.record.clone()) as Arg, Rc::new(self.id)])
    }
}

impl Args {
    /// A wheel's record and id as an input event's arguments (`ARG0`, `ARG1`), in `kept`
    /// (the box the last record came in) if there is one.
    #[inline(always)]
    pub(crate) fn wheel_input(kept: Option<Box<WheelInput>>, record: Vec<u8>, id: WheelId) -> Args {
        let b = match kept {
            Some(mut b) => {
                b.record = record;
                b.id = id;
                b
            }
            None => Box::new(WheelInput {
                record,
                id,
                shared: std::cell::OnceCell::new(),
            }),
        };
        Args(Repr::Input(b))
    }

    /// Whether the list is one the kernel keeps when its handler returns (see
    /// [`Args`]): a wheel's record and id, or any list of capacity four, the pool's own
    /// or not.
    #[cfg(test)]
    fn pooled(&self) -> bool {
        match &self.0 {
            Repr::List(v) => v.capacity() == POOLED_CAPACITY,
            Repr::Input(_) => true,
        }
    }

    /// Gives the arguments back when their handler has returned: a list of the pool's
    /// capacity (see [`Args`]) to `pool`, empty; the box of a byte record the handler
    /// took out as `ARG0` (where wheels put their records; [`Args::take`] leaves the
    /// box, emptied) to `records`, for the next records; a wheel's record and id in
    /// their box to `input`, if that is empty: the next record and id are written into
    /// it. Anything else is dropped.
    ///
    /// Taken by value, so what is kept is moved out once and nothing is written back to
    /// be read again when the rest is dropped. The record and id, a wheel's every record,
    /// are given back inlined where handlers return; the pool's lists out of line.
    #[inline(always)]
    pub(crate) fn recycle(
        self,
        pool: &mut Vec<Vec<Arg>>,
        records: &mut Vec<Rc<Vec<u8>>>,
        input: &mut Option<Box<WheelInput>>,
    ) {
        match self.0 {
            Repr::Input(mut b) => {
                if input.is_none() {
                    if b.shared.get().is_some() {
                        b.shared = std::cell::OnceCell::new();
                    }
                    *input = Some(b);
                }
            }
            Repr::List(v) => {
                if v.capacity() == POOLED_CAPACITY {
                    recycle_list(v, pool, records);
                }
            }
        }
    }

    /// Runs `f` on the arguments as shared ones, in place: a wheel's record and id
    /// become a list first.
    fn with_list<R>(&mut self, f: impl FnOnce(&mut Vec<Arg>) -> R) -> R {
        if let Repr::List(v) = &mut self.0 {
            return f(v);
        }
        let mut v = match std::mem::take(&mut self.0) {
            Repr::List(v) => v,
            Repr::Input(b) => b.into_list(),
        };
        let r = f(&mut v);
        self.0 = Repr::List(v);
        r
    }

    /// The arguments as shared ones, by reference: a wheel's record and id are made into
    /// such the first time.
    fn as_list(&self) -> &[Arg] {
        match &self.0 {
            Repr::List(v) => v,
            Repr::Input(b) => b.shared(),
        }
    }

    /// A wheel's record and id, if that is what this holds and they have not been made
    /// into shared arguments (see [`WheelInput::shared`]).
    #[inline(always)]
    fn input_mut(&mut self) -> Option<&mut WheelInput> {
        match &mut self.0 {
            Repr::Input(b) if b.shared.get().is_none() => Some(b),
            _ => None,
        }
    }
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Args(len={})", self.len())
    }
}

/// A typed argument access that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    /// Position of the argument (0 for `ARG0`).
    pub index: usize,
    /// The type that was asked for.
    pub expected: &'static str,
    /// What is wrong with it.
    pub problem: ArgProblem,
}

/// Why an argument could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgProblem {
    /// There is no argument at that position.
    Missing,
    /// The argument has another type.
    WrongType,
    /// The argument is shared (another recipient holds it), so it cannot be taken.
    Shared,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (i, t) = (self.index, self.expected);
        match self.problem {
            ArgProblem::WrongType => write!(f, "ARG{i} is not a {t}"),
            ArgProblem::Missing => write!(f, "ARG{i} is missing (expected a {t})"),
            ArgProblem::Shared => write!(f, "ARG{i} ({t}) is shared and cannot be taken"),
        }
    }
}

impl std::error::Error for ArgError {}

impl Args {
    /// No arguments.
    #[inline]
    pub fn new() -> Self {
        Args(Repr::List(Vec::new()))
    }

    /// The arguments as a boxed slice, 16 bytes: how queued items keep them (one
    /// allocation unless there are none).
    #[inline]
    pub(crate) fn into_boxed(self) -> Box<[Arg]> {
        match self.0 {
            // Lists from tuples are exactly as long as their allocation: no copy.
            Repr::List(v) if v.is_empty() => Box::default(),
            Repr::List(v) => v.into_boxed_slice(),
            Repr::Input(b) => b.into_list().into_boxed_slice(),
        }
    }

    /// Back from [`into_boxed`](Args::into_boxed), without copying.
    #[inline]
    pub(crate) fn from_boxed(args: Box<[Arg]>) -> Args {
        if args.is_empty() {
            Args::new()
        } else {
            Args(Repr::List(args.into_vec()))
        }
    }

    /// Appends a value.
    pub fn push<T: Any>(&mut self, v: T) {
        self.push_arg(Rc::new(v));
    }

    /// Appends an already shared argument.
    pub fn push_arg(&mut self, a: Arg) {
        self.with_list(|v| v.push(a));
    }

    /// Appends every argument of `other`.
    pub fn extend(&mut self, other: &Args) {
        let more = other.as_list();
        self.with_list(|v| v.extend(more.iter().cloned()));
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::List(v) => v.len(),
            Repr::Input(_) => 2,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Argument `i` as a `T`.
    pub fn get<T: Any>(&self, i: usize) -> Result<&T, ArgError> {
        let err = |problem| ArgError {
            index: i,
            expected: type_name::<T>(),
            problem,
        };
        if i >= self.len() {
            return Err(err(ArgProblem::Missing));
        }
        self.opt::<T>(i).ok_or(err(ArgProblem::WrongType))
    }

    /// Takes argument `i` out as an owned `T` (a socket handed over in an event, say),
    /// leaving `()` in its place (an empty `Vec<u8>` for a byte record, whose box serves
    /// the next record). Fails if it is missing, of another type, or shared (a shared
    /// [`WheelId`](crate::WheelId) is copied out instead, and stays in place).
    #[inline]
    pub fn take<T: Any>(&mut self, i: usize) -> Result<T, ArgError> {
        // The usual takes, a wheel's record as bytes and its id, inlined where they are
        // asked for: the type tests are decided when `take` is compiled for `T`. The
        // rest out of line.
        if let Some(w) = self.input_mut() {
            if i == 0 && TypeId::of::<T>() == TypeId::of::<Vec<u8>>() {
                // Moved out where it lies, an empty vector put back: a cast of the moved
                // vector would test it on the way (whether the cast made something).
                let record = (&mut w.record as &mut dyn Any).downcast_mut::<T>();
                if let (Some(record), Some(empty)) = (record, cast_value(Vec::<u8>::new())) {
                    return Ok(std::mem::replace(record, empty));
                }
            }
            if i == 1 && TypeId::of::<T>() == TypeId::of::<WheelId>() {
                if let Some(t) = cast_value(w.id) {
                    return Ok(t);
                }
            }
        } else if TypeId::of::<T>() == TypeId::of::<Vec<u8>>() {
            if let Repr::List(v) = &mut self.0 {
                if let Some(bytes) = v
                    .get_mut(i)
                    .and_then(Rc::get_mut)
                    .and_then(|a| a.downcast_mut::<Vec<u8>>())
                {
                    if let Some(t) = cast_value(std::mem::take(bytes)) {
                        return Ok(t);
                    }
                }
            }
        }
        self.take_any(i)
    }

    /// [`Args::take`] past its inlined cases.
    #[inline(never)]
    fn take_any<T: Any>(&mut self, i: usize) -> Result<T, ArgError> {
        let err = |problem| ArgError {
            index: i,
            expected: type_name::<T>(),
            problem,
        };
        if self.input_mut().is_some() {
            // A record or id asked for as another type, or a missing argument.
            return Err(err(match i {
                0 | 1 => ArgProblem::WrongType,
                _ => ArgProblem::Missing,
            }));
        }
        self.with_list(|v| {
            let slot = v.get_mut(i).ok_or(err(ArgProblem::Missing))?;
            if let Some(bytes) = Rc::get_mut(slot).and_then(|a| a.downcast_mut::<Vec<u8>>()) {
                // A record: its bytes leave, its box stays for the next one.
                let mut out = Some(std::mem::take(bytes));
                if let Some(t) = (&mut out as &mut dyn Any).downcast_mut::<Option<T>>() {
                    if let Some(t) = t.take() {
                        return Ok(t);
                    }
                }
                // Not asked for as bytes: put them back and fail below.
                if let (Some(b), Some(back)) = (
                    out,
                    Rc::get_mut(slot).and_then(|a| a.downcast_mut::<Vec<u8>>()),
                ) {
                    *back = b;
                }
            }
            if !slot.is::<T>() {
                return Err(err(ArgProblem::WrongType));
            }
            let rc = std::mem::replace(slot, placeholder());
            let typed = rc.downcast::<T>().map_err(|_| err(ArgProblem::WrongType))?;
            match Rc::try_unwrap(typed) {
                Ok(v) => Ok(v),
                Err(shared) => {
                    // A wheel shares one id argument among all its events: ids are plain
                    // values, so taking one copies it out.
                    let copied = (&*shared as &dyn Any)
                        .downcast_ref::<WheelId>()
                        .map(|&id| Box::new(id) as Box<dyn Any>)
                        .and_then(|b| b.downcast::<T>().ok());
                    *slot = shared;
                    match copied {
                        Some(v) => Ok(*v),
                        None => Err(err(ArgProblem::Shared)),
                    }
                }
            }
        })
    }

    /// Argument `i` as a `T`, or `None` if missing or of another type.
    pub fn opt<T: Any>(&self, i: usize) -> Option<&T> {
        match &self.0 {
            Repr::List(v) => v.get(i)?.downcast_ref::<T>(),
            Repr::Input(b) => match i {
                0 => (&b.record as &dyn Any).downcast_ref::<T>(),
                1 => (&b.id as &dyn Any).downcast_ref::<T>(),
                _ => None,
            },
        }
    }

    /// The shared argument `i` itself.
    pub fn arg(&self, i: usize) -> Option<&Arg> {
        self.as_list().get(i)
    }

    /// Whether argument `i` exists and is a `T`.
    pub fn is<T: Any>(&self, i: usize) -> bool {
        self.opt::<T>(i).is_some()
    }

    /// Iterates over the shared arguments.
    pub fn iter(&self) -> std::slice::Iter<'_, Arg> {
        self.as_list().iter()
    }

    /// The arguments from position `from` on.
    pub fn tail(&self, from: usize) -> Args {
        Args(Repr::List(
            self.as_list()
                .get(from..)
                .map(<[Arg]>::to_vec)
                .unwrap_or_default(),
        ))
    }
}

/// A list of the pool's capacity, given back ([`Args::recycle`]): to `pool`, empty,
/// unless it is full; a byte record taken out as `ARG0` leaves its box to `records`.
#[inline(never)]
fn recycle_list(mut v: Vec<Arg>, pool: &mut Vec<Vec<Arg>>, records: &mut Vec<Rc<Vec<u8>>>) {
    if pool.len() >= POOL_SIZE {
        return;
    }
    // Only a box no one else holds can be reused; its type is asked last.
    if records.len() < POOL_SIZE
        && v.first()
            .is_some_and(|a| Rc::strong_count(a) == 1 && Rc::weak_count(a) == 0)
    {
        if let Ok(r) = v.swap_remove(0).downcast::<Vec<u8>>() {
            if r.capacity() == 0 {
                records.push(r);
            }
        }
    }
    v.clear();
    pool.push(v);
}

/// `v` as a `T`, when `V` is `T` (decided when this is compiled for the two types, so it
/// costs nothing); `None`, with `v` dropped, when it is not. For a `V` already known to be
/// a `T`.
#[inline(always)]
pub(crate) fn cast_value<T: Any, V: Any>(v: V) -> Option<T> {
    let mut slot = Some(v);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
}

impl From<Vec<Arg>> for Args {
    fn from(v: Vec<Arg>) -> Self {
        Args(Repr::List(v))
    }
}

thread_local! {
    static PLACEHOLDER: Arg = Rc::new(());
}

/// What a taken argument leaves behind: one shared `()`, so taking allocates nothing.
fn placeholder() -> Arg {
    PLACEHOLDER.with(Rc::clone)
}

/// Values that can become event arguments: `()` (none), tuples of up to eight values,
/// [`Args`], and a single value of a standard type (numbers, `bool`, `char`, `String`,
/// `&'static str`, `Vec<T>`, `Option<T>`, `Box<T>`, `Duration`, `PathBuf`, socket and IP
/// addresses, [`SessionId`], [`WheelId`](crate::WheelId), [`Value`]) with no one-tuple
/// around it. [`impl_into_args!`](crate::impl_into_args) adds your own types to the last
/// list; `(value,)` works for any type.
///
/// ```
/// use reactor::{Kernel, Session};
///
/// let mut kernel = Kernel::new()?;
/// kernel.create(
///     Session::new(0u32)
///         .on("_start", |ctx| ctx.yield_("add", 5u32)) // ARG0 is 5u32
///         .on("add", |ctx| -> Result<(), reactor::Error> {
///             let n: u32 = *ctx.arg(0)?;
///             *ctx.heap() += n;
///             Ok(())
///         }),
/// )?;
/// kernel.run()?;
/// # Ok::<(), reactor::Error>(())
/// ```
pub trait IntoArgs {
    /// Converts into [`Args`].
    fn into_args(self) -> Args;
}

impl IntoArgs for Args {
    fn into_args(self) -> Args {
        self
    }
}

impl IntoArgs for () {
    fn into_args(self) -> Args {
        Args::new()
    }
}

macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<$($name: Any),+> IntoArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_args(self) -> Args {
                let ($($name,)+) = self;
                Args(Repr::List(vec![$(Rc::new($name) as Arg),+]))
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);
tuple_args!(A, B, C, D, E, F, G);
tuple_args!(A, B, C, D, E, F, G, H);

/// Lets values of your own types be passed as a single event argument without a one-tuple,
/// as the standard types are: `reactor::impl_into_args!(Order, Quote);` then
/// `ctx.yield_("fill", order)`. Without it, `(order,)` works for any type.
#[macro_export]
macro_rules! impl_into_args {
    ($($t:ty),+ $(,)?) => {
        $(
            impl $crate::IntoArgs for $t {
                fn into_args(self) -> $crate::Args {
                    let mut args = $crate::Args::new();
                    args.push(self);
                    args
                }
            }
        )+
    };
}

// One argument needs no one-tuple: `ctx.yield_("n", 5u32)` is `ctx.yield_("n", (5u32,))`.
macro_rules! single_args {
    ($($t:ty),+ $(,)?) => {
        $(
            impl IntoArgs for $t {
                fn into_args(self) -> Args {
                    Args(Repr::List(vec![Rc::new(self) as Arg]))
                }
            }
        )+
    };
}
single_args!(
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    &'static str,
    std::time::Duration,
    std::path::PathBuf,
    std::net::SocketAddr,
    std::net::IpAddr,
    crate::ids::SessionId,
    crate::ids::WheelId,
    Value,
);

impl<T: Any> IntoArgs for Vec<T> {
    fn into_args(self) -> Args {
        Args(Repr::List(vec![Rc::new(self) as Arg]))
    }
}

impl<T: Any> IntoArgs for Option<T> {
    fn into_args(self) -> Args {
        Args(Repr::List(vec![Rc::new(self) as Arg]))
    }
}

impl<T: Any> IntoArgs for Box<T> {
    fn into_args(self) -> Args {
        Args(Repr::List(vec![Rc::new(self) as Arg]))
    }
}

/// Builds [`Args`] from a list of expressions: `args![1, "two", 3.0]`.
#[macro_export]
macro_rules! args {
    () => { $crate::Args::new() };
    ($($e:expr),+ $(,)?) => {{
        let mut a = $crate::Args::new();
        $( a.push($e); )+
        a
    }};
}

/// A handler's return value: what `call` returns and `_child` receives from `_start` and
/// `_stop`. Empty is POE's `undef`.
#[derive(Default)]
pub struct Value(Option<Box<dyn Any>>);

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_some() {
            f.write_str("Value(..)")
        } else {
            f.write_str("Value(undef)")
        }
    }
}

impl Value {
    /// The empty value (`undef`).
    pub fn none() -> Self {
        Value(None)
    }

    /// Wraps `v`.
    pub fn new<T: Any>(v: T) -> Self {
        Value(Some(Box::new(v)))
    }

    /// Whether this is the empty value.
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// The value as a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_ref()?.downcast_ref::<T>()
    }

    /// Takes the value out as a `T`; gives the value back if it is not a `T`.
    pub fn take<T: Any>(self) -> Result<T, Value> {
        match self.0 {
            Some(b) => b.downcast::<T>().map(|b| *b).map_err(|b| Value(Some(b))),
            None => Err(Value(None)),
        }
    }

    /// The boxed value, if any.
    pub fn into_inner(self) -> Option<Box<dyn Any>> {
        self.0
    }
}

/// Why a handler failed: POE's `die`. Made from any [`std::error::Error`], a `String` or a
/// `&str`, so `?` works inside handlers; the error it was made from stays reachable as
/// [`HandlerError::source`]. Two failures are equal when their messages are.
///
/// Like `anyhow::Error`, it is the catch-all that `?` converts every error into, so it
/// does not implement [`std::error::Error`] itself (that would make `From<E>` overlap
/// with `From<HandlerError>`). It dereferences to `dyn Error + Send + Sync`, and converts
/// into `Box<dyn Error + Send + Sync>` (so `?` works in a `main` that returns one); the
/// kernel's [`Error::Died`](crate::Error::Died) and [`Error::Exception`](crate::Error::Exception),
/// which carry it, are ordinary errors with the same source chain.
///
/// ```
/// use reactor::HandlerError;
///
/// let e = HandlerError::from(std::io::Error::other("disk on fire"));
/// assert_eq!(e.message(), "disk on fire");
/// let source = e.source().expect("made from an io::Error");
/// assert!(source.downcast_ref::<std::io::Error>().is_some());
/// let boxed: Box<dyn std::error::Error> = e.into();
/// assert_eq!(boxed.to_string(), "disk on fire");
/// ```
///
/// The failure is boxed: a handler's `Result<Value, HandlerError>` is three words, so every
/// handler's return, successful or not, moves little.
#[derive(Clone)]
pub struct HandlerError(Box<Failed>);

/// The error behind a [`HandlerError`]: its message, what it was made from, and where the
/// kernel saw it. Boxed in the `HandlerError`, so that the `Result` every handler returns
/// is a few words, cheap to pass up through the dispatch when all went well.
#[derive(Clone)]
struct Failed {
    message: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>>,
    at: Option<(SessionId, EventName)>,
}

impl fmt::Debug for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.message, f)
    }
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl HandlerError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError(Box::new(Failed {
            message: message.into(),
            source: None,
            at: None,
        }))
    }

    /// The message (POE's `$@`).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The error the failure was made from, if it was made from one.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.0.source.as_deref()
    }

    /// The session whose handler failed, once the kernel has seen the failure.
    pub fn session(&self) -> Option<SessionId> {
        self.0.at.map(|(session, _)| session)
    }

    /// The event whose handler failed, once the kernel has seen the failure.
    pub fn event(&self) -> Option<EventName> {
        self.0.at.map(|(_, event)| event)
    }

    /// The failure as a boxed standard error (its source chain kept), e.g. to return it
    /// from a function whose error type is `Box<dyn Error + Send + Sync>`.
    pub fn into_boxed_error(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.0
    }

    /// The same failure, located in `session`'s handler for `event`.
    pub(crate) fn at(mut self, session: SessionId, event: EventName) -> Self {
        self.0.at = Some((session, event));
        self
    }
}

impl PartialEq for HandlerError {
    fn eq(&self, other: &Self) -> bool {
        self.0.message == other.0.message
    }
}

impl Eq for HandlerError {}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::ops::Deref for HandlerError {
    type Target = dyn std::error::Error + Send + Sync + 'static;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl AsRef<dyn std::error::Error + Send + Sync + 'static> for HandlerError {
    fn as_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl From<HandlerError> for Box<dyn std::error::Error + 'static> {
    fn from(e: HandlerError) -> Self {
        e.0
    }
}

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> From<E> for HandlerError {
    fn from(e: E) -> Self {
        let e: Box<dyn std::error::Error + Send + Sync> = e.into();
        HandlerError(Box::new(Failed {
            message: e.to_string(),
            source: Some(std::sync::Arc::from(e)),
            at: None,
        }))
    }
}

/// What a handler may return: `()`, a [`Value`], or a `Result` of either whose error
/// converts into a [`HandlerError`].
pub trait Outcome {
    /// Converts into the kernel's form.
    fn into_outcome(self) -> Result<Value, HandlerError>;
}

impl Outcome for () {
    fn into_outcome(self) -> Result<Value, HandlerError> {
        Ok(Value::none())
    }
}

impl Outcome for Value {
    fn into_outcome(self) -> Result<Value, HandlerError> {
        Ok(self)
    }
}

impl<T: Outcome, E: Into<HandlerError>> Outcome for Result<T, E> {
    fn into_outcome(self) -> Result<Value, HandlerError> {
        match self {
            Ok(v) => v.into_outcome(),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Arg, ArgProblem, Args, HandlerError, Value};
    use crate::ids::WheelId;
    use std::rc::Rc;

    /// What every handler returns stays small: it is moved on every dispatch (see
    /// docs/benchmarks.md).
    #[test]
    fn a_handler_result_is_three_words() {
        assert!(std::mem::size_of::<Result<Value, HandlerError>>() <= 24);
    }

    /// A wheel shares one id argument among its events: taking it copies it out, and
    /// leaves it for the other events; other shared values still cannot be taken.
    #[test]
    fn a_shared_wheel_id_is_copied_out() {
        let id: Arg = Rc::new(WheelId(7));
        let mut a = Args::from(vec![Rc::clone(&id)]);
        let mut b = Args::from(vec![Rc::clone(&id)]);
        assert_eq!(a.take::<WheelId>(0).unwrap(), WheelId(7));
        assert_eq!(b.take::<WheelId>(0).unwrap(), WheelId(7));
        assert_eq!(*a.get::<WheelId>(0).unwrap(), WheelId(7));
        let s: Arg = Rc::new(String::from("x"));
        let mut c = Args::from(vec![Rc::clone(&s)]);
        assert_eq!(c.take::<String>(0).unwrap_err().problem, ArgProblem::Shared);
        assert_eq!(c.get::<String>(0).unwrap(), "x");
    }

    /// Lists of capacity four go back to the pool, empty; others do not.
    #[test]
    fn small_lists_are_recycled() {
        let mut pool = Vec::new();
        let mut a = Args::from(Vec::with_capacity(4));
        a.push(1u8);
        assert!(a.pooled());
        a.recycle(&mut pool, &mut Vec::new(), &mut None);
        assert_eq!(pool.len(), 1);
        assert!(pool[0].is_empty() && pool[0].capacity() == 4);
        let b = Args::from(vec![Rc::new(1u8) as Arg]);
        assert!(!b.pooled());
        b.recycle(&mut pool, &mut Vec::new(), &mut None);
        assert_eq!(pool.len(), 1);
    }

    /// A wheel's record and id go back in their box, to an empty slot only, and are read
    /// and taken as any arguments.
    #[test]
    fn input_boxes_are_kept_whole() {
        let (mut pool, mut boxes, mut input) = (Vec::new(), Vec::new(), None);
        let mut a = Args::wheel_input(None, b"line".to_vec(), WheelId(3));
        assert!(a.pooled());
        assert_eq!((a.len(), a.is_empty()), (2, false));
        assert_eq!(a.get::<Vec<u8>>(0).unwrap(), b"line");
        assert_eq!(*a.get::<WheelId>(1).unwrap(), WheelId(3));
        assert_eq!(
            a.get::<String>(0).unwrap_err().problem,
            ArgProblem::WrongType
        );
        assert_eq!(a.get::<u8>(2).unwrap_err().problem, ArgProblem::Missing);
        assert_eq!(
            a.take::<String>(0).unwrap_err().problem,
            ArgProblem::WrongType
        );
        assert_eq!(a.take::<u8>(2).unwrap_err().problem, ArgProblem::Missing);
        assert_eq!(a.take::<Vec<u8>>(0).unwrap(), b"line");
        assert!(a.get::<Vec<u8>>(0).unwrap().is_empty());
        // An id is copied out and stays.
        assert_eq!(a.take::<WheelId>(1).unwrap(), WheelId(3));
        assert_eq!(*a.get::<WheelId>(1).unwrap(), WheelId(3));
        a.recycle(&mut pool, &mut boxes, &mut input);
        assert!(input.is_some() && pool.is_empty() && boxes.is_empty());
        // The slot is taken: a second one is dropped, the first stays.
        let b = Args::wheel_input(None, b"two".to_vec(), WheelId(4));
        b.recycle(&mut pool, &mut boxes, &mut input);
        assert_eq!(input.as_ref().map(|b| b.id), Some(WheelId(3)));
        // The kept box carries the next record and id.
        let c = Args::wheel_input(input.take(), b"three".to_vec(), WheelId(5));
        assert_eq!(c.get::<Vec<u8>>(0).unwrap(), b"three");
        assert_eq!(*c.get::<WheelId>(1).unwrap(), WheelId(5));
    }

    /// A record and id asked for as shared arguments become a list: what is read, taken,
    /// cloned, extended or queued after that is the same two values.
    #[test]
    fn input_args_serve_as_shared_arguments() {
        let mut a = Args::wheel_input(None, b"line".to_vec(), WheelId(9));
        assert_eq!(a.iter().count(), 2);
        assert_eq!(
            a.arg(0).and_then(|r| r.downcast_ref::<Vec<u8>>()).unwrap(),
            b"line"
        );
        // Shared by a copy, as any list's arguments: the bytes cannot be taken.
        let copy = a.clone();
        assert_eq!(
            a.take::<Vec<u8>>(0).unwrap_err().problem,
            ArgProblem::Shared
        );
        assert_eq!(a.take::<WheelId>(1).unwrap(), WheelId(9));
        assert_eq!(copy.get::<Vec<u8>>(0).unwrap(), b"line");
        drop(copy);
        let copy = a.clone();
        let mut d = Args::wheel_input(None, b"own".to_vec(), WheelId(8));
        assert_eq!(d.iter().count(), 2);
        assert_eq!(d.take::<Vec<u8>>(0).unwrap(), b"own");
        assert!(d.get::<Vec<u8>>(0).unwrap().is_empty());
        let tail = copy.tail(1);
        assert_eq!(
            (tail.len(), *tail.get::<WheelId>(0).unwrap()),
            (1, WheelId(9))
        );
        let mut b = Args::wheel_input(None, b"x".to_vec(), WheelId(1));
        b.push(7u32);
        assert_eq!((b.len(), *b.get::<u32>(2).unwrap()), (3, 7));
        assert_eq!(b.get::<Vec<u8>>(0).unwrap(), b"x");
        let mut c = Args::new();
        c.extend(&copy);
        assert_eq!(c.get::<Vec<u8>>(0).unwrap(), b"line");
        let boxed = Args::wheel_input(None, b"q".to_vec(), WheelId(2)).into_boxed();
        let back = Args::from_boxed(boxed);
        assert_eq!(back.get::<Vec<u8>>(0).unwrap(), b"q");
        assert_eq!(*back.get::<WheelId>(1).unwrap(), WheelId(2));
    }

    /// An `Args` stays the size of a `Vec`.
    #[test]
    fn args_are_three_words() {
        assert_eq!(std::mem::size_of::<Args>(), 24);
    }
}

#[cfg(test)]
mod record_box_tests {
    use super::{ArgProblem, Args, POOLED_CAPACITY};
    use std::rc::Rc;

    #[test]
    fn a_taken_byte_record_leaves_its_box_for_the_next_record() {
        let mut v = Vec::with_capacity(POOLED_CAPACITY);
        v.push(Rc::new(b"line".to_vec()) as super::Arg);
        v.push(Rc::new(7u32) as super::Arg);
        let mut args = Args::from(v);
        assert_eq!(
            args.take::<u32>(0).unwrap_err().problem,
            ArgProblem::WrongType
        );
        assert_eq!(
            args.get::<Vec<u8>>(0).unwrap(),
            b"line",
            "a failed take keeps the bytes"
        );
        assert_eq!(args.take::<Vec<u8>>(0).unwrap(), b"line");
        assert!(args.get::<Vec<u8>>(0).unwrap().is_empty());
        let (mut lists, mut boxes) = (Vec::new(), Vec::new());
        args.recycle(&mut lists, &mut boxes, &mut None);
        assert_eq!((lists.len(), boxes.len()), (1, 1));
        // A record still shared, or not taken, is not harvested.
        let kept = Rc::new(b"kept".to_vec()) as super::Arg;
        let mut v = Vec::with_capacity(POOLED_CAPACITY);
        v.push(Rc::clone(&kept));
        v.push(Rc::new(b"untaken".to_vec()) as super::Arg);
        Args::from(v).recycle(&mut lists, &mut boxes, &mut None);
        assert_eq!(boxes.len(), 1);
    }
}
