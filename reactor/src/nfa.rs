//! State machines: POE's `POE::NFA`, a session whose handlers come in banks, one bank per
//! named state, swapped as the machine moves from state to state.
//!
//! A machine is built with [`Nfa`] (POE's `POE::NFA->spawn(inline_states => {...})`),
//! spawned into a kernel, and set going with [`Machine::goto_state`]. Its handlers get an
//! [`NfaCtx`] (POE's `@_` for a machine: `MACHINE`, `KERNEL`, `RUNSTATE`, `EVENT`, `STATE`,
//! `ARG0..`), which dereferences to the [`Kernel`] as a session's [`Ctx`](crate::Ctx)
//! does: `post`, `yield_`, `delay`, aliases, signals, I/O watchers and wheels work the same
//! from a machine's handlers.
//!
//! ```
//! use reactor::nfa::{Nfa, NfaCtx};
//! use reactor::{HandlerError, Kernel};
//!
//! // A light and its push button; the light pushes the button itself, and stops once it
//! // has been on three times.
//! let mut kernel = Kernel::new()?;
//! let light = Nfa::new(0u32) // the runstate: how many times the light went on
//!     .on("off", "enter", |m: &mut NfaCtx<'_, u32>| -> Result<(), HandlerError> {
//!         if *m.runstate() < 3 {
//!             m.yield_("push", ())?;
//!         } else {
//!             m.stop()?;
//!         }
//!         Ok(())
//!     })
//!     .on("off", "push", |m: &mut NfaCtx<'_, u32>| m.goto_state("on", "enter", ()))
//!     .on("on", "enter", |m: &mut NfaCtx<'_, u32>| {
//!         *m.runstate() += 1;
//!         m.yield_("push", ())
//!     })
//!     .on("on", "push", |m: &mut NfaCtx<'_, u32>| m.goto_state("off", "enter", ()))
//!     .spawn(&mut kernel)?;
//! // A machine in no state yet makes its first transition at once.
//! light.goto_state(&mut kernel, "off", "enter", ())?;
//! assert_eq!(light.current_state(), Some("off"));
//! assert_eq!(light.runstate(&mut kernel), Some(&mut 0));
//! kernel.run()?;
//! assert_eq!(light.current_state(), Some("off"));
//! assert_eq!(light.runstate(&mut kernel), None); // stopped
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## How a machine handles an event
//!
//! As `POE::NFA` 1.370 does:
//!
//! - An event goes to the current state's handler for it; else to a handler added at run
//!   time with [`NfaCtx::state`] (POE's `$kernel->state` on a machine, as POE's wheels do);
//!   else to the current state's `_default`, with `ARG0` the event's name and `ARG1` its
//!   arguments as [`Args`]; else the handler fails ([`NfaError::Unhandled`]): POE's machine
//!   dies there, and the failure becomes a `DIE` signal like any other.
//! - `_start` and `_stop` are never delivered to a machine's handlers; `_child`,
//!   `_parent` and signal events are ordinary events of the current state.
//! - [`goto_state`](NfaCtx::goto_state) posts the transition: events queued before it are
//!   handled in the old state, events queued after it in the new one. When the transition
//!   is dispatched, the old state's `leave` handler runs (if that state has one), the
//!   machine enters the new state, and the entry event, if one was named, is handled there
//!   at once, with the entry arguments, the machine itself as `SENDER` and no caller
//!   state. A machine in no state yet (just spawned) and one with
//!   [`immediate`](NfaOptions::immediate) set make the transition at once, as a `call`.
//! - [`call_state`](NfaCtx::call_state) is `goto_state` that first pushes the current
//!   state and a return event on the machine's stack; [`return_state`](NfaCtx::return_state)
//!   pops it and goes back, delivering the return event with the return arguments. Both
//!   go through the queue unless `immediate` is set.
//! - [`stop`](NfaCtx::stop) posts a request that stops the machine when it is dispatched:
//!   what was queued before it is handled, what comes after is discarded.
//! - The runstate (POE's `RUNSTATE`) is the machine's heap: one value for the machine's
//!   whole life, kept across transitions (nothing resets it), typed here.
//!
//! The machine's own events are `poe_nfa_goto_state`, `poe_nfa_push_state`,
//! `poe_nfa_pop_state` and `poe_nfa_stop`, as in POE; names beginning with `poe_nfa_` are
//! refused for handlers ([`NfaError::ReservedEvent`]).
//!
//! One difference from POE, where a typed error serves better than a late `die`:
//! `goto_state` and `call_state` check the target state and the entry event when they are
//! called and return an [`NfaError`] (nothing is queued then), where POE dies later, when
//! the transition is dispatched; a handler that propagates the error with `?` fails as
//! POE's would, one event earlier. A return event is checked when `return_state` is
//! dispatched, as in POE (the state it returns to is only known then).
//!
//! ## How it is built
//!
//! A machine is an ordinary session of the kernel, nothing more: its heap is the runstate,
//! and its handler table holds, for every event some state handles, one dispatcher that
//! indexes that event's handlers by the current state's number; `_default` catches the
//! rest. The kernel's dispatch is untouched, so ordinary sessions pay nothing for
//! machines; a machine's event costs one more indirect call and an array index.

use crate::error::Error;
use crate::kernel::session::{Handler, Invocation};
use crate::kernel::{args_of, EventId, EV_DEFAULT, EV_NONE, EV_START, EV_STOP};
use crate::value::{ArgError, Args, HandlerError, IntoArgs, Outcome, Value};
use crate::{Callback, Kernel, Postback, Session, SessionId, SessionOptions, KERNEL};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

/// The prefix of the machine's own event names.
const RESERVED_PREFIX: &str = "poe_nfa_";
const EN_GOTO_STATE: &str = "poe_nfa_goto_state";
const EN_PUSH_STATE: &str = "poe_nfa_push_state";
const EN_POP_STATE: &str = "poe_nfa_pop_state";
const EN_STOP: &str = "poe_nfa_stop";
/// The event a state's handler gets when the machine leaves that state.
const EN_LEAVE: &str = "leave";
/// What POE calls the current state of a machine that has none yet.
const NO_STATE: &str = "(undef)";

/// A machine's handler as the machine keeps it.
type NfaHandler<R> = Rc<dyn Fn(&mut NfaCtx<'_, R>) -> Result<Value, HandlerError>>;

/// A method handler for [`Nfa::object_states`]: gets the object (POE's `OBJECT`) and the
/// context.
pub type NfaObjectMethod<O, R, Out> = fn(&O, &mut NfaCtx<'_, R>) -> Out;

/// A function handler for [`Nfa::package_states`]: gets the package name (POE's `OBJECT`
/// for package states) and the context.
pub type NfaPackageMethod<R, Out> = fn(&'static str, &mut NfaCtx<'_, R>) -> Out;

fn erase<R: 'static, Out: Outcome + 'static>(
    f: impl Fn(&mut NfaCtx<'_, R>) -> Out + 'static,
) -> NfaHandler<R> {
    Rc::new(move |ctx: &mut NfaCtx<'_, R>| f(ctx).into_outcome())
}

// ------------------------------------------------------------------------------ options

/// A machine's options (POE's `option` on a machine, and its `immediate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NfaOptions {
    /// Log every event the machine handles at `info` level, and every redirection to
    /// `_default` (POE's `trace`).
    pub trace: bool,
    /// Warn when [`NfaCtx::state`] replaces a handler (POE's `debug`).
    pub debug: bool,
    /// Kept for parity with sessions (POE's `default`); a machine's event with no handler
    /// always fails, whatever this says.
    pub default: bool,
    /// Make transitions at once, as a `call`, instead of through the queue (POE's
    /// `immediate`): `goto_state`, `call_state` and `return_state` run the transition
    /// before they return.
    pub immediate: bool,
}

// ------------------------------------------------------------------------------- errors

/// Why a machine could not be built, make a transition or handle an event: what
/// `POE::NFA` croaks or dies with.
#[derive(Debug)]
#[non_exhaustive]
pub enum NfaError {
    /// [`Nfa::spawn`] was given no state (POE: "requires at least one of the following
    /// parameters").
    NoStates,
    /// A handler was given for one of the machine's own events (names beginning with
    /// `poe_nfa_`).
    ReservedEvent(String),
    /// A transition named a state the machine does not have.
    NoSuchState {
        /// The machine.
        machine: SessionId,
        /// The state named.
        state: String,
    },
    /// A transition named an entry (or return) event the target state has no handler for.
    NoSuchEntryEvent {
        /// The machine.
        machine: SessionId,
        /// The target state.
        state: String,
        /// The event named.
        event: String,
    },
    /// `return_state` was dispatched with no `call_state` to return from.
    EmptyStack {
        /// The machine.
        machine: SessionId,
    },
    /// An event reached a machine whose current state has neither a handler for it nor a
    /// `_default`, and no handler was added for it at run time.
    Unhandled {
        /// The machine.
        machine: SessionId,
        /// The event.
        event: String,
        /// The machine's state then (`None` before its first transition).
        state: Option<String>,
        /// Source file of the post or call that sent the event.
        file: &'static str,
        /// Source line of the post or call that sent the event.
        line: u32,
    },
    /// A kernel call failed: the machine is gone ([`Error::NoSuchSession`]), or a
    /// transition made at once (a `call`) failed ([`Error::Died`]).
    Kernel(Error),
}

impl fmt::Display for NfaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NfaError::NoStates => f.write_str("a state machine needs at least one state"),
            NfaError::ReservedEvent(e) => write!(
                f,
                "event '{e}' is reserved: names beginning with '{RESERVED_PREFIX}' are the machine's own"
            ),
            NfaError::NoSuchState { machine, state } => {
                write!(f, "machine {machine} tried to enter nonexistent state '{state}'")
            }
            NfaError::NoSuchEntryEvent {
                machine,
                state,
                event,
            } => write!(
                f,
                "machine {machine} tried to invoke nonexistent enter event '{event}' in state '{state}'"
            ),
            NfaError::EmptyStack { machine } => {
                write!(f, "machine {machine} tried to pop a state from an empty stack")
            }
            NfaError::Unhandled {
                machine,
                event,
                state,
                file,
                line,
            } => write!(
                f,
                "a '{event}' event was sent from {file} at {line} to machine {machine}, but machine \
                 {machine} has neither a handler for it nor one for _default in its current \
                 state, '{}'",
                state.as_deref().unwrap_or(NO_STATE)
            ),
            NfaError::Kernel(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for NfaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NfaError::Kernel(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for NfaError {
    fn from(e: Error) -> Self {
        NfaError::Kernel(e)
    }
}

// ------------------------------------------------------------------------------ builder

/// A state machine to spawn (POE's `POE::NFA->spawn(...)`): its runstate, its states and
/// each state's handlers, its options.
///
/// States are named by the handlers given for them; [`state`](Nfa::state) adds one with
/// no handlers. A later handler for the same state and event replaces an earlier one.
pub struct Nfa<R> {
    runstate: R,
    /// States in the order first named, each with its handlers in the order given.
    states: Vec<(String, StateHandlers<R>)>,
    options: NfaOptions,
}

/// One state's handlers as given: event names and handlers.
type StateHandlers<R> = Vec<(String, NfaHandler<R>)>;

impl<R> fmt::Debug for Nfa<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (state, handlers) in &self.states {
            let events: Vec<&str> = handlers.iter().map(|(e, _)| e.as_str()).collect();
            m.entry(state, &events);
        }
        m.finish()
    }
}

impl<R: Clone> Clone for Nfa<R> {
    fn clone(&self) -> Self {
        Nfa {
            runstate: self.runstate.clone(),
            states: self.states.clone(),
            options: self.options,
        }
    }
}

impl<R: 'static> Nfa<R> {
    /// A machine with this runstate (POE's `runstate`) and no states yet.
    pub fn new(runstate: R) -> Self {
        Nfa {
            runstate,
            states: Vec::new(),
            options: NfaOptions::default(),
        }
    }

    fn handlers_of(&mut self, state: &str) -> &mut StateHandlers<R> {
        let i = match self.states.iter().position(|(s, _)| s == state) {
            Some(i) => i,
            None => {
                self.states.push((state.to_owned(), Vec::new()));
                self.states.len() - 1
            }
        };
        &mut self.states[i].1
    }

    /// Adds a state, with no handlers yet (POE's `state => {}`).
    pub fn state(mut self, state: &str) -> Self {
        self.handlers_of(state);
        self
    }

    /// Adds a handler for `event` in `state` (POE's `inline_states => { state => { event
    /// => handler } }`).
    #[doc(alias = "inline_states")]
    pub fn on<Out: Outcome + 'static>(
        mut self,
        state: &str,
        event: &str,
        handler: impl Fn(&mut NfaCtx<'_, R>) -> Out + 'static,
    ) -> Self {
        let h = erase(handler);
        self.handlers_of(state).push((event.to_owned(), h));
        self
    }

    /// Maps events of `state` to methods of a shared object (POE's `object_states => {
    /// state => [ $object => {...} ] }`). Each method gets the object (POE's `OBJECT`) and
    /// the context.
    pub fn object_states<O: 'static, Out: Outcome + 'static>(
        mut self,
        state: &str,
        object: Rc<O>,
        events: &[(&str, NfaObjectMethod<O, R, Out>)],
    ) -> Self {
        let handlers = self.handlers_of(state);
        for &(event, method) in events {
            let obj = Rc::clone(&object);
            handlers.push((event.to_owned(), erase(move |ctx| method(&obj, ctx))));
        }
        self
    }

    /// Maps events of `state` to plain functions (POE's `package_states => { state => [
    /// 'Package' => {...} ] }`); `package` is the name the functions receive as `OBJECT`.
    pub fn package_states<Out: Outcome + 'static>(
        mut self,
        state: &str,
        package: &'static str,
        events: &[(&str, NfaPackageMethod<R, Out>)],
    ) -> Self {
        let handlers = self.handlers_of(state);
        for &(event, func) in events {
            handlers.push((event.to_owned(), erase(move |ctx| func(package, ctx))));
        }
        self
    }

    /// The machine's options (POE's `options`).
    pub fn options(mut self, options: NfaOptions) -> Self {
        self.options = options;
        self
    }

    /// Creates the machine as a child of the active session (POE's `spawn`). It is in no
    /// state until its first transition, which [`Machine::goto_state`] then makes at once.
    ///
    /// Fails with [`NfaError::NoStates`] if no state was given, and
    /// [`NfaError::ReservedEvent`] for a handler of an event beginning with `poe_nfa_`.
    /// Handlers for `_start` and `_stop` are accepted and never called, as in POE.
    pub fn spawn(self, kernel: &mut Kernel) -> Result<Machine<R>, NfaError> {
        let Nfa {
            runstate,
            states,
            options,
        } = self;
        if states.is_empty() {
            return Err(NfaError::NoStates);
        }
        let n = states.len();
        let mut names = Vec::with_capacity(n);
        let mut index = HashMap::default();
        let mut tables: Vec<HashMap<EventId, NfaHandler<R>>> = Vec::with_capacity(n);
        // Every event some state handles, in the order first seen.
        let mut events: Vec<EventId> = Vec::new();
        for (i, (state, handlers)) in states.into_iter().enumerate() {
            let mut table = HashMap::default();
            for (event, h) in handlers {
                if event.starts_with(RESERVED_PREFIX) {
                    return Err(NfaError::ReservedEvent(event));
                }
                let ev = kernel.intern(&event);
                if ev == EV_START || ev == EV_STOP {
                    log::warn!(
                        "state '{state}' has a handler for '{event}', which a state machine never gets"
                    );
                }
                if !events.contains(&ev) {
                    events.push(ev);
                }
                table.insert(ev, h);
            }
            index.insert(state.clone(), i);
            names.push(state);
            tables.push(table);
        }
        let machine = Machine {
            shape: Rc::new(Shape {
                id: Cell::new(KERNEL),
                events: tables.iter().map(|t| t.keys().copied().collect()).collect(),
                names: names.into_boxed_slice(),
                index,
                current: Cell::new(None),
                stack: RefCell::new(Vec::new()),
                options: Cell::new(options),
            }),
            _runstate: PhantomData,
        };
        let core = Rc::new(Core {
            machine: machine.clone(),
            tables: tables.into_boxed_slice(),
            internals: RefCell::new(HashMap::default()),
            dispatched: RefCell::new(HashSet::default()),
            ev_leave: kernel.intern(EN_LEAVE),
        });

        let noop: Handler = Rc::new(|_: &mut Kernel, _: Invocation| Ok(Value::none()));
        let mut handlers: Vec<(String, Handler)> = vec![
            ("_start".to_owned(), Rc::clone(&noop)),
            ("_stop".to_owned(), noop),
            ("_default".to_owned(), default_dispatcher(Rc::clone(&core))),
            (EN_GOTO_STATE.to_owned(), goto_handler(Rc::clone(&core))),
            (EN_PUSH_STATE.to_owned(), push_handler(Rc::clone(&core))),
            (EN_POP_STATE.to_owned(), pop_handler(Rc::clone(&core))),
            (EN_STOP.to_owned(), stop_handler()),
        ];
        for ev in events {
            if ev == EV_START || ev == EV_STOP || ev == EV_DEFAULT {
                continue;
            }
            let by_state = core.tables.iter().map(|t| t.get(&ev).cloned()).collect();
            handlers.push((
                kernel.event_name(ev).to_owned(),
                event_dispatcher(Rc::clone(&core), by_state),
            ));
            core.dispatched.borrow_mut().insert(ev);
        }
        let session = Session {
            heap: runstate,
            handlers,
            shared: None,
            args: Args::new(),
            options: SessionOptions::default(),
        };
        let id = kernel.create(session)?;
        machine.shape.id.set(id);
        Ok(machine)
    }
}

// ------------------------------------------------------------------------------ machine

/// What a machine is besides its handlers: its states' names and events, where it is,
/// its stack and options. Shared by the machine's handle and its dispatchers.
struct Shape {
    id: Cell<SessionId>,
    names: Box<[String]>,
    index: HashMap<String, usize>,
    /// The events each state has a handler for: entry events must be one of them.
    events: Box<[HashSet<EventId>]>,
    current: Cell<Option<usize>>,
    /// `call_state`'s returns: the state to go back to and the event to deliver there.
    stack: RefCell<Vec<(Option<usize>, Option<EventId>)>>,
    options: Cell<NfaOptions>,
}

impl Shape {
    fn current_name(&self) -> Option<&str> {
        self.current.get().map(|s| self.names[s].as_str())
    }
}

/// A spawned state machine (POE's `MACHINE`): a handle that names it and drives it.
///
/// Cloning the handle does not clone the machine. The handle does not keep the machine
/// alive: once it has stopped, the transitions fail with [`Error::NoSuchSession`].
pub struct Machine<R> {
    shape: Rc<Shape>,
    _runstate: PhantomData<fn() -> R>,
}

impl<R> Clone for Machine<R> {
    fn clone(&self) -> Self {
        Machine {
            shape: Rc::clone(&self.shape),
            _runstate: PhantomData,
        }
    }
}

impl<R> fmt::Debug for Machine<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine")
            .field("id", &self.shape.id.get())
            .field("state", &self.shape.current_name())
            .finish()
    }
}

/// A transition on its way through the queue: the target state and entry event, already
/// checked, and the entry arguments.
#[derive(Clone)]
struct Goto {
    state: usize,
    entry: Option<EventId>,
    args: Args,
}

/// A `call_state` on its way: the return event, then the transition.
#[derive(Clone)]
struct Push {
    ret: Option<EventId>,
    goto: Goto,
}

impl<R: 'static> Machine<R> {
    /// The machine's session ID (POE's `ID`): post to it, alias it, watch it like any
    /// session.
    #[doc(alias = "ID")]
    pub fn id(&self) -> SessionId {
        self.shape.id.get()
    }

    /// The name of the machine's current state, `None` before its first transition (POE's
    /// `current_state`, which says `(undef)`).
    #[doc(alias = "get_current_state")]
    pub fn current_state(&self) -> Option<&str> {
        self.shape.current_name()
    }

    /// The machine's options.
    pub fn options(&self) -> NfaOptions {
        self.shape.options.get()
    }

    /// Sets the machine's options and returns the previous ones (POE's `option`).
    #[doc(alias = "option")]
    pub fn set_options(&self, options: NfaOptions) -> NfaOptions {
        self.shape.options.replace(options)
    }

    /// The machine's runstate (POE's `runstate`), `None` once the machine has stopped.
    /// Inside the machine's handlers, [`NfaCtx::runstate`] is the short way.
    #[doc(alias = "get_runstate")]
    pub fn runstate<'k>(&self, kernel: &'k mut Kernel) -> Option<&'k mut R> {
        let key = kernel.key_of(self.id())?;
        Some(kernel.heap_of::<R>(key))
    }

    /// Checks a transition's target state and entry event.
    fn resolve(
        &self,
        kernel: &mut Kernel,
        state: &str,
        entry: Option<&str>,
        args: Args,
    ) -> Result<Goto, NfaError> {
        let shape = &self.shape;
        let Some(&to) = shape.index.get(state) else {
            return Err(NfaError::NoSuchState {
                machine: self.id(),
                state: state.to_owned(),
            });
        };
        let entry = match entry {
            None => None,
            Some(event) => {
                let ev = kernel.intern(event);
                if !shape.events[to].contains(&ev) {
                    return Err(NfaError::NoSuchEntryEvent {
                        machine: self.id(),
                        state: state.to_owned(),
                        event: event.to_owned(),
                    });
                }
                Some(ev)
            }
        };
        Ok(Goto {
            state: to,
            entry,
            args,
        })
    }

    /// Posts `event` to the machine, or calls it when `now`.
    #[track_caller]
    fn send(
        &self,
        kernel: &mut Kernel,
        now: bool,
        event: &str,
        args: Args,
    ) -> Result<(), NfaError> {
        if now {
            kernel.call(self.id(), event, args)?;
        } else {
            kernel.post(self.id(), event, args)?;
        }
        Ok(())
    }

    /// Moves the machine to `state`, then delivers `entry` (if not `None`) there with
    /// `args` (POE's `goto_state(NEW_STATE, ENTRY_EVENT, ARGS)`).
    ///
    /// The transition goes through the queue, behind the events already posted; a machine
    /// in no state yet, or with [`NfaOptions::immediate`], makes it before this returns.
    /// Fails with [`NfaError::NoSuchState`] or [`NfaError::NoSuchEntryEvent`] (and queues
    /// nothing), or with the kernel's error.
    #[track_caller]
    pub fn goto_state<'e>(
        &self,
        kernel: &mut Kernel,
        state: &str,
        entry: impl Into<Option<&'e str>>,
        args: impl IntoArgs,
    ) -> Result<(), NfaError> {
        let goto = self.resolve(kernel, state, entry.into(), args.into_args())?;
        let now = self.shape.current.get().is_none() || self.shape.options.get().immediate;
        self.send(kernel, now, EN_GOTO_STATE, args_of((goto,)))
    }

    /// Pushes the current state and `return_event` on the machine's stack, then moves to
    /// `state` as [`goto_state`](Machine::goto_state) does (POE's `call_state(RETURN_EVENT,
    /// NEW_STATE, ENTRY_EVENT, ARGS)`). A later [`return_state`](Machine::return_state)
    /// comes back.
    ///
    /// Goes through the queue unless [`NfaOptions::immediate`] is set. Fails as
    /// `goto_state` does.
    #[track_caller]
    pub fn call_state<'e>(
        &self,
        kernel: &mut Kernel,
        return_event: impl Into<Option<&'e str>>,
        state: &str,
        entry: impl Into<Option<&'e str>>,
        args: impl IntoArgs,
    ) -> Result<(), NfaError> {
        let goto = self.resolve(kernel, state, entry.into(), args.into_args())?;
        let ret = return_event.into().map(|e| kernel.intern(e));
        let now = self.shape.options.get().immediate;
        self.send(kernel, now, EN_PUSH_STATE, args_of((Push { ret, goto },)))
    }

    /// Returns to the state the last [`call_state`](Machine::call_state) left, delivering
    /// its return event there (if it named one) with `args` (POE's `return_state(ARGS)`).
    ///
    /// Goes through the queue unless [`NfaOptions::immediate`] is set. When it is
    /// dispatched, an empty stack ([`NfaError::EmptyStack`]) or a return event the state
    /// has no handler for ([`NfaError::NoSuchEntryEvent`]) makes that dispatch fail (a
    /// `DIE`), as POE dies there.
    #[track_caller]
    pub fn return_state(&self, kernel: &mut Kernel, args: impl IntoArgs) -> Result<(), NfaError> {
        let now = self.shape.options.get().immediate;
        self.send(kernel, now, EN_POP_STATE, args.into_args())
    }

    /// Stops the machine when the request, posted now, is dispatched (POE's `stop`): its
    /// resources are released and events queued after the request are discarded.
    #[track_caller]
    pub fn stop(&self, kernel: &mut Kernel) -> Result<(), NfaError> {
        self.send(kernel, false, EN_STOP, Args::new())
    }

    /// A postback to the machine (POE's `$machine->postback(EVENT, ARGS)`).
    pub fn postback(&self, kernel: &mut Kernel, event: &str, args: impl IntoArgs) -> Postback {
        kernel.postback(self.id(), event, args.into_args())
    }

    /// A callback to the machine (POE's `$machine->callback(EVENT, ARGS)`).
    pub fn callback(&self, kernel: &mut Kernel, event: &str, args: impl IntoArgs) -> Callback {
        kernel.callback(self.id(), event, args.into_args())
    }
}

// ----------------------------------------------------------------------------- dispatch

/// Everything a machine's dispatchers share: the handle, every state's handlers, and the
/// handlers added at run time.
struct Core<R> {
    machine: Machine<R>,
    /// Each state's handlers, by state number.
    tables: Box<[HashMap<EventId, NfaHandler<R>>]>,
    /// Handlers added with [`NfaCtx::state`] (POE's `SELF_INTERNALS`): consulted when the
    /// current state has no handler, before its `_default`.
    internals: RefCell<HashMap<EventId, NfaHandler<R>>>,
    /// The events the session's table has a dispatcher for.
    dispatched: RefCell<HashSet<EventId>>,
    ev_leave: EventId,
}

impl<R> Core<R> {
    fn shape(&self) -> &Shape {
        &self.machine.shape
    }

    fn unhandled(&self, inv: &Invocation, event: String) -> HandlerError {
        HandlerError::from(NfaError::Unhandled {
            machine: inv.session,
            event,
            state: self.shape().current_name().map(str::to_owned),
            file: inv.caller.file(),
            line: inv.caller.line(),
        })
    }
}

/// Runs one of the machine's handlers.
fn invoke<R: 'static>(
    core: &Rc<Core<R>>,
    kernel: &mut Kernel,
    inv: Invocation,
    h: &NfaHandler<R>,
) -> Result<Value, HandlerError> {
    if core.shape().options.get().trace {
        log::info!(
            "{} -> {} (state '{}')",
            inv.session,
            kernel.event_name(inv.state),
            core.shape().current_name().unwrap_or(NO_STATE)
        );
    }
    let mut ctx = NfaCtx { kernel, inv, core };
    let out = h(&mut ctx);
    let NfaCtx { kernel: k, inv, .. } = ctx;
    inv.args
        .recycle(&mut k.arg_lists, &mut k.record_boxes, &mut k.input_args);
    out
}

/// The session handler for an event some state handles: the current state's handler, or
/// the fallbacks.
fn event_dispatcher<R: 'static>(
    core: Rc<Core<R>>,
    by_state: Box<[Option<NfaHandler<R>>]>,
) -> Handler {
    Rc::new(move |kernel: &mut Kernel, inv: Invocation| {
        match core
            .shape()
            .current
            .get()
            .and_then(|s| by_state[s].as_ref())
        {
            Some(h) => invoke(&core, kernel, inv, h),
            None => fallback(&core, kernel, inv),
        }
    })
}

/// An event the current state has no handler for: a handler added at run time, else the
/// state's `_default`, else a failure.
fn fallback<R: 'static>(
    core: &Rc<Core<R>>,
    kernel: &mut Kernel,
    mut inv: Invocation,
) -> Result<Value, HandlerError> {
    let ev = inv.state;
    let internal = core.internals.borrow().get(&ev).cloned();
    if let Some(h) = internal {
        return invoke(core, kernel, inv, &h);
    }
    let name = kernel.event_name(ev).to_owned();
    let default = core
        .shape()
        .current
        .get()
        .and_then(|s| core.tables[s].get(&EV_DEFAULT));
    let Some(h) = default else {
        return Err(core.unhandled(&inv, name));
    };
    if core.shape().options.get().trace {
        log::info!(
            "{} -> {name} redirected to _default in state '{}'",
            inv.session,
            core.shape().current_name().unwrap_or(NO_STATE)
        );
    }
    let args = std::mem::take(&mut inv.args);
    inv.args = args_of((name, args));
    inv.state = EV_DEFAULT;
    invoke(core, kernel, inv, h)
}

/// The session's `_default`: the kernel hands it events no dispatcher names, as `ARG0`
/// the name and `ARG1` the arguments, which is what a state's `_default` gets too.
fn default_dispatcher<R: 'static>(core: Rc<Core<R>>) -> Handler {
    Rc::new(move |kernel: &mut Kernel, inv: Invocation| {
        let current = core.shape().current.get();
        if let Some(h) = current.and_then(|s| core.tables[s].get(&EV_DEFAULT)) {
            if core.shape().options.get().trace {
                if let Ok(name) = inv.args.get::<String>(0) {
                    log::info!(
                        "{} -> {name} redirected to _default in state '{}'",
                        inv.session,
                        core.shape().current_name().unwrap_or(NO_STATE)
                    );
                }
            }
            return invoke(&core, kernel, inv, h);
        }
        let redirected = inv.args.len() == 2 && inv.args.is::<String>(0) && inv.args.is::<Args>(1);
        if !redirected {
            // `_default` itself was sent, and the state has no handler for it.
            let internal = core.internals.borrow().get(&EV_DEFAULT).cloned();
            if let Some(h) = internal {
                return invoke(&core, kernel, inv, &h);
            }
            return Err(core.unhandled(&inv, "_default".to_owned()));
        }
        let name = inv.args.get::<String>(0)?.clone();
        Err(core.unhandled(&inv, name))
    })
}

/// Leaves the current state (its `leave` handler), enters `goto.state`, and delivers the
/// entry event there.
fn transition<R: 'static>(
    core: &Rc<Core<R>>,
    kernel: &mut Kernel,
    inv: &Invocation,
    goto: Goto,
) -> Result<(), HandlerError> {
    let shape = core.shape();
    let Goto { state, entry, args } = goto;
    if let Some(ev) = entry {
        if !core.tables[state].contains_key(&ev) {
            return Err(HandlerError::from(NfaError::NoSuchEntryEvent {
                machine: inv.session,
                state: shape.names[state].clone(),
                event: kernel.event_name(ev).to_owned(),
            }));
        }
    }
    let own = |ev: EventId, args: Args| Invocation {
        key: inv.key,
        session: inv.session,
        state: ev,
        sender: inv.session,
        caller_state: EV_NONE,
        caller: inv.caller,
        args,
    };
    if let Some(cur) = shape.current.get() {
        if let Some(h) = core.tables[cur].get(&core.ev_leave) {
            invoke(core, kernel, own(core.ev_leave, Args::new()), h)?;
        }
    }
    shape.current.set(Some(state));
    if let Some(ev) = entry {
        let h = &core.tables[state][&ev];
        invoke(core, kernel, own(ev, args), h)?;
    }
    Ok(())
}

/// Handles `poe_nfa_goto_state`.
fn goto_handler<R: 'static>(core: Rc<Core<R>>) -> Handler {
    Rc::new(move |kernel: &mut Kernel, inv: Invocation| {
        let goto = inv.args.get::<Goto>(0)?.clone();
        transition(&core, kernel, &inv, goto)?;
        Ok(Value::none())
    })
}

/// Handles `poe_nfa_push_state`.
fn push_handler<R: 'static>(core: Rc<Core<R>>) -> Handler {
    Rc::new(move |kernel: &mut Kernel, inv: Invocation| {
        let Push { ret, goto } = inv.args.get::<Push>(0)?.clone();
        let shape = core.shape();
        shape.stack.borrow_mut().push((shape.current.get(), ret));
        transition(&core, kernel, &inv, goto)?;
        Ok(Value::none())
    })
}

/// Handles `poe_nfa_pop_state`.
fn pop_handler<R: 'static>(core: Rc<Core<R>>) -> Handler {
    Rc::new(move |kernel: &mut Kernel, mut inv: Invocation| {
        let popped = core.shape().stack.borrow_mut().pop();
        let Some((state, ret)) = popped else {
            return Err(HandlerError::from(NfaError::EmptyStack {
                machine: inv.session,
            }));
        };
        let Some(state) = state else {
            // `call_state` before the first transition: POE pushes "(undef)" and fails
            // to enter it when it comes back.
            return Err(HandlerError::from(NfaError::NoSuchState {
                machine: inv.session,
                state: NO_STATE.to_owned(),
            }));
        };
        let args = std::mem::take(&mut inv.args);
        let goto = Goto {
            state,
            entry: ret,
            args,
        };
        transition(&core, kernel, &inv, goto)?;
        Ok(Value::none())
    })
}

/// Handles `poe_nfa_stop`.
fn stop_handler() -> Handler {
    Rc::new(|kernel: &mut Kernel, inv: Invocation| {
        kernel.stop_session(inv.session);
        Ok(Value::none())
    })
}

// ---------------------------------------------------------------------------------- ctx

/// The context a machine's handler runs in: POE's `@_` for a machine (`MACHINE`,
/// `KERNEL`, `RUNSTATE`, `EVENT`, `SENDER`, `STATE`, `CALLER_STATE`, `ARG0..`).
///
/// Like a session's [`Ctx`](crate::Ctx), it dereferences to the [`Kernel`], so every
/// kernel call reads as in POE (`m.post(..)`, `m.yield_(..)`, `m.delay(..)`, wheels built
/// with `.build(m)`), and the runstate is reached with [`runstate`](NfaCtx::runstate),
/// never across a kernel call.
pub struct NfaCtx<'a, R> {
    kernel: &'a mut Kernel,
    inv: Invocation,
    core: &'a Rc<Core<R>>,
}

impl<R> fmt::Debug for NfaCtx<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NfaCtx")
            .field("session", &self.inv.session)
            .field("event", &self.inv.state.name())
            .finish_non_exhaustive()
    }
}

impl<R: 'static> NfaCtx<'_, R> {
    /// The machine's runstate (POE's `RUNSTATE`, or `$_[MACHINE]->runstate`).
    #[doc(alias = "RUNSTATE")]
    #[doc(alias = "get_runstate")]
    pub fn runstate(&mut self) -> &mut R {
        self.kernel.heap_of::<R>(self.inv.key)
    }

    /// The machine (POE's `MACHINE`).
    #[doc(alias = "MACHINE")]
    pub fn machine(&self) -> &Machine<R> {
        &self.core.machine
    }

    /// The kernel (POE's `KERNEL`); the context also dereferences to it.
    pub fn kernel(&mut self) -> &mut Kernel {
        self.kernel
    }

    /// The name of the event being handled (POE's `EVENT`): `_default` when the state's
    /// `_default` handles another event (whose name is then `ARG0`).
    #[doc(alias = "EVENT")]
    pub fn event(&self) -> &str {
        self.kernel.event_name(self.inv.state)
    }

    /// The name of the machine's current state (POE's `STATE`): during a `leave` handler
    /// the state being left, during an entry event the state entered.
    #[doc(alias = "STATE")]
    #[doc(alias = "get_current_state")]
    pub fn current_state(&self) -> &str {
        self.core.shape().current_name().unwrap_or(NO_STATE)
    }

    /// The session that sent the event (POE's `SENDER`); the machine itself for entry,
    /// return and `leave` events.
    pub fn sender(&self) -> SessionId {
        self.inv.sender
    }

    /// The event that was running when this one was sent (POE's `CALLER_STATE`); empty for
    /// entry, return and `leave` events.
    #[doc(alias = "CALLER_STATE")]
    pub fn caller_state(&self) -> &str {
        self.kernel.event_name(self.inv.caller_state)
    }

    /// Source file of the `post`/`call`/`yield` (or transition) that sent the event (POE's
    /// `CALLER_FILE`).
    pub fn caller_file(&self) -> &'static str {
        self.inv.caller.file()
    }

    /// Source line of the `post`/`call`/`yield` (or transition) that sent the event (POE's
    /// `CALLER_LINE`).
    pub fn caller_line(&self) -> u32 {
        self.inv.caller.line()
    }

    /// All arguments (POE's `@_[ARG0..$#_]`).
    pub fn args(&self) -> &Args {
        &self.inv.args
    }

    /// Argument `i` as a `T` (POE's `$_[ARG0 + i]`).
    pub fn arg<T: Any>(&self, i: usize) -> Result<&T, ArgError> {
        self.inv.args.get::<T>(i)
    }

    /// Takes argument `i` out as an owned `T`.
    pub fn take_arg<T: Any>(&mut self, i: usize) -> Result<T, ArgError> {
        self.inv.args.take::<T>(i)
    }

    /// [`Machine::goto_state`] for this machine.
    #[track_caller]
    pub fn goto_state<'e>(
        &mut self,
        state: &str,
        entry: impl Into<Option<&'e str>>,
        args: impl IntoArgs,
    ) -> Result<(), NfaError> {
        let machine = &self.core.machine;
        machine.goto_state(self.kernel, state, entry, args)
    }

    /// [`Machine::call_state`] for this machine.
    #[track_caller]
    pub fn call_state<'e>(
        &mut self,
        return_event: impl Into<Option<&'e str>>,
        state: &str,
        entry: impl Into<Option<&'e str>>,
        args: impl IntoArgs,
    ) -> Result<(), NfaError> {
        let machine = &self.core.machine;
        machine.call_state(self.kernel, return_event, state, entry, args)
    }

    /// [`Machine::return_state`] for this machine.
    #[track_caller]
    pub fn return_state(&mut self, args: impl IntoArgs) -> Result<(), NfaError> {
        let machine = &self.core.machine;
        machine.return_state(self.kernel, args)
    }

    /// [`Machine::stop`] for this machine.
    #[track_caller]
    pub fn stop(&mut self) -> Result<(), NfaError> {
        let machine = &self.core.machine;
        machine.stop(self.kernel)
    }

    /// The machine's options.
    pub fn options(&self) -> NfaOptions {
        self.core.machine.options()
    }

    /// Sets the machine's options and returns the previous ones (POE's
    /// `$_[MACHINE]->option`).
    #[doc(alias = "option")]
    pub fn set_options(&mut self, options: NfaOptions) -> NfaOptions {
        self.core.machine.set_options(options)
    }

    /// A postback to this machine: posts `event` with `ARG0` = `args` and `ARG1` = the
    /// postback's own arguments, and keeps the machine alive until dropped.
    pub fn postback(&mut self, event: &str, args: impl IntoArgs) -> Postback {
        let sid = self.inv.session;
        self.kernel.postback(sid, event, args.into_args())
    }

    /// A callback to this machine: like [`postback`](NfaCtx::postback) but the event is
    /// `call`ed and the handler's value returned.
    pub fn callback(&mut self, event: &str, args: impl IntoArgs) -> Callback {
        let sid = self.inv.session;
        self.kernel.callback(sid, event, args.into_args())
    }

    /// Adds or replaces a handler of the machine for `event`, whatever its state (POE's
    /// `$kernel->state(EVENT => \&code)` on a machine, which POE keeps apart from the
    /// states): the current state's own handler for `event`, if it has one, still comes
    /// first; this one comes before the state's `_default`.
    pub fn state<Out: Outcome + 'static>(
        &mut self,
        event: &str,
        handler: impl Fn(&mut NfaCtx<'_, R>) -> Out + 'static,
    ) -> Result<(), NfaError> {
        self.set_internal(event, Some(erase(handler)))
    }

    /// [`state`](NfaCtx::state) with a method of a shared object (POE's
    /// `$kernel->state(EVENT, $object, $method)`).
    #[doc(alias = "state")]
    pub fn object_state<O: 'static, Out: Outcome + 'static>(
        &mut self,
        event: &str,
        object: Rc<O>,
        method: NfaObjectMethod<O, R, Out>,
    ) -> Result<(), NfaError> {
        self.state(event, move |ctx: &mut NfaCtx<'_, R>| method(&object, ctx))
    }

    /// [`state`](NfaCtx::state) with a function of a package (POE's
    /// `$kernel->state(EVENT, 'Package', $function)`).
    #[doc(alias = "state")]
    pub fn package_state<Out: Outcome + 'static>(
        &mut self,
        event: &str,
        package: &'static str,
        func: NfaPackageMethod<R, Out>,
    ) -> Result<(), NfaError> {
        self.state(event, move |ctx: &mut NfaCtx<'_, R>| func(package, ctx))
    }

    /// Removes a handler added with [`state`](NfaCtx::state) (POE's `$kernel->state(EVENT)`);
    /// the states' own handlers stay.
    pub fn remove_state(&mut self, event: &str) -> Result<(), NfaError> {
        self.set_internal(event, None)
    }

    fn set_internal(&mut self, event: &str, h: Option<NfaHandler<R>>) -> Result<(), NfaError> {
        if event.is_empty() {
            return Err(Error::InvalidArgument("empty event name").into());
        }
        if event.starts_with(RESERVED_PREFIX) {
            return Err(NfaError::ReservedEvent(event.to_owned()));
        }
        let ev = self.kernel.intern(event);
        let Some(h) = h else {
            self.core.internals.borrow_mut().remove(&ev);
            return Ok(());
        };
        let replaced = self.core.internals.borrow_mut().insert(ev, h).is_some();
        if replaced && self.options().debug {
            log::warn!(
                "machine {} redefined handler for '{event}'",
                self.inv.session
            );
        }
        let own_handler = ev == EV_START || ev == EV_STOP || ev == EV_DEFAULT;
        if !own_handler && self.core.dispatched.borrow_mut().insert(ev) {
            // No state handles it: a dispatcher that always falls back to this handler.
            let by_state = vec![None; self.core.tables.len()].into_boxed_slice();
            let d = event_dispatcher(Rc::clone(self.core), by_state);
            self.kernel.set_handler(self.inv.key, event, Some(d))?;
        }
        Ok(())
    }
}

impl<R> Deref for NfaCtx<'_, R> {
    type Target = Kernel;
    fn deref(&self) -> &Kernel {
        self.kernel
    }
}

impl<R> DerefMut for NfaCtx<'_, R> {
    fn deref_mut(&mut self) -> &mut Kernel {
        self.kernel
    }
}
