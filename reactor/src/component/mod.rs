//! Components: ready-made sessions for common jobs (POE's `POE::Component::*`).
//!
//! - [`ServerTcp`] is `POE::Component::Server::TCP`: a listener session that accepts
//!   connections and, by default, gives each one a session of its own with a
//!   [`ReadWrite`](crate::wheel::ReadWrite) wheel and the `Client*` callbacks.
//! - [`ClientTcp`] is `POE::Component::Client::TCP`: one session that connects (with an
//!   optional timeout), talks to the server through a `ReadWrite` wheel, and can reconnect.
//! - [`WorkerPool`] stands for `POE::Component::Pool::Thread` and `POE::Component::JobQueue`:
//!   blocking closures run on a bounded pool of threads, their values come back as events.
//!
//! Both also work on UNIX sockets, as POE's `Domain => AF_UNIX` does
//! ([`ServerTcpBuilder::unix_path`], [`ClientTcp::unix`]).
//!
//! Both are builders that create sessions on the kernel, as POE's `new` does: the listener
//! or client session is a child of the session active when `build` is called (or of the
//! kernel). Callbacks are closures over a [`Ctx`] of the component's heap type
//! and see exactly the arguments POE passes (`ARG0`.. through [`Ctx::arg`]).
//!
//! ```
//! use reactor::component::{ClientTcp, ServerTcp};
//! use reactor::Kernel;
//!
//! let mut kernel = Kernel::new()?;
//! // A line echo server on a port the system picks.
//! let server = ServerTcp::builder()
//!     .address("127.0.0.1")
//!     .alias("echo")
//!     .client_input(|ctx| -> Result<(), reactor::HandlerError> {
//!         let line = ctx.arg::<Vec<u8>>(0)?.clone();
//!         if let Some(client) = ctx.client() {
//!             client.put_one(line)?;
//!         }
//!         Ok(())
//!     })
//!     .build(&mut kernel)?;
//! let port = server.local_addr().expect("bound").port();
//! // A client that says one thing, prints the echo and hangs up; the server goes too.
//! ClientTcp::builder("127.0.0.1", port)
//!     .connected(|ctx| -> Result<(), reactor::HandlerError> {
//!         ctx.server().expect("connected").put_one("hello")?;
//!         Ok(())
//!     })
//!     .server_input(|ctx| -> Result<(), reactor::Error> {
//!         assert_eq!(ctx.arg::<Vec<u8>>(0)?, b"hello");
//!         ctx.yield_("shutdown", ())?;
//!         ctx.post("echo", "shutdown", ())
//!     })
//!     .build(&mut kernel)?;
//! kernel.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod client_tcp;
pub mod server_tcp;
pub mod worker_pool;

pub use client_tcp::{ClientHeap, ClientTcp, ClientTcpBuilder};
pub use server_tcp::{ConnHeap, ListenerHeap, RemoteIp, ServerHandle, ServerTcp, ServerTcpBuilder};
pub use worker_pool::{JobError, JobId, PoolError, WorkerPool, WorkerPoolBuilder};

use crate::filter::{ByteFilter, Filter};
use crate::value::{HandlerError, Outcome, Value};
use crate::Ctx;
use std::fmt;
use std::rc::Rc;

/// `MaxLength` and `MaxBuffer` of the components' default `Line` filter: 1 MiB. A client
/// that sends a longer line, or a megabyte without a newline, is disconnected with a
/// [`WheelError`](crate::wheel::WheelError) whose `filter` says which limit it broke.
/// POE's defaults (64 MiB and 512 MiB) are a `client_filter(Line::new)` away.
pub const DEFAULT_LINE_LIMIT: usize = 1024 * 1024;

/// The components' default [`backpressure`](crate::wheel::ReadWriteBuilder::backpressure)
/// marks, (high, low): a connection stops reading while more than 256 KiB of its output
/// wait, until they are down to 64 KiB.
pub const DEFAULT_BACKPRESSURE: (usize, usize) = (256 * 1024, 64 * 1024);

/// How long the components wait for a connection told to shut down to flush its output,
/// before closing it anyway: 5 seconds.
pub const DEFAULT_DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// The components' default filter: `Line` with [`DEFAULT_LINE_LIMIT`].
pub(crate) fn default_line() -> crate::filter::Line {
    crate::filter::Line::builder()
        .max_length(DEFAULT_LINE_LIMIT)
        .max_buffer(DEFAULT_LINE_LIMIT)
        .build()
        .unwrap_or_default()
}

/// A component callback as stored: a shared closure over a context of heap type `H`.
pub(crate) type Callback<H> = Rc<dyn Fn(&mut Ctx<'_, H>) -> Result<Value, HandlerError>>;

/// Erases a user closure into a [`Callback`].
pub(crate) fn callback<H: 'static, R: Outcome + 'static>(
    f: impl Fn(&mut Ctx<'_, H>) -> R + 'static,
) -> Callback<H> {
    Rc::new(move |ctx: &mut Ctx<'_, H>| f(ctx).into_outcome())
}

/// Callbacks for `ObjectStates`: each event calls a method of the shared object.
pub(crate) fn object_callbacks<O: 'static, H: 'static, R: Outcome + 'static>(
    object: &Rc<O>,
    states: &[(&str, crate::ObjectMethod<O, H, R>)],
) -> Vec<(String, Callback<H>)> {
    states
        .iter()
        .map(|&(event, method)| {
            let obj = Rc::clone(object);
            (
                event.to_owned(),
                callback(move |ctx: &mut Ctx<'_, H>| method(&obj, ctx)),
            )
        })
        .collect()
}

/// Callbacks for `PackageStates`: each event calls a function given the package name.
pub(crate) fn package_callbacks<H: 'static, R: Outcome + 'static>(
    package: &'static str,
    states: &[(&str, crate::PackageMethod<H, R>)],
) -> Vec<(String, Callback<H>)> {
    states
        .iter()
        .map(|&(event, func)| {
            (
                event.to_owned(),
                callback(move |ctx: &mut Ctx<'_, H>| func(package, ctx)),
            )
        })
        .collect()
}

/// Runs an optional callback; `Ok(())` when there is none.
pub(crate) fn run_cb<H: 'static>(
    cb: &Option<Callback<H>>,
    ctx: &mut Ctx<'_, H>,
) -> Result<(), HandlerError> {
    match cb {
        Some(f) => f(ctx).map(drop),
        None => Ok(()),
    }
}

/// Makes a fresh byte filter for each connection: filters keep buffers, so every
/// connection needs its own (POE clones a filter object, or calls `Class->new(@args)`).
pub(crate) type FilterFactory = Rc<dyn Fn() -> ByteFilter>;

/// Erases a filter-making closure into a [`FilterFactory`].
pub(crate) fn filter_factory<F, M>(make: M) -> FilterFactory
where
    F: Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static,
    M: Fn() -> F + 'static,
{
    Rc::new(move || Box::new(make()) as ByteFilter)
}

/// A component's constructor refused its configuration (POE's `croak`s in `new`), or the
/// kernel refused to create its session.
#[derive(Debug)]
#[non_exhaustive]
pub enum ComponentError {
    /// Client::TCP without `RemoteAddress` ("needs a RemoteAddress parameter").
    MissingRemoteAddress,
    /// Client::TCP without `RemotePort` ("needs a RemotePort parameter").
    MissingRemotePort,
    /// Client::TCP without `ServerInput` ("requires a ServerInput parameter").
    MissingServerInput,
    /// Server::TCP needs exactly one of `Acceptor` and `ClientInput` ("needs either an
    /// Acceptor or a ClientInput but not both").
    AcceptorOrClientInput,
    /// A `Client*` parameter of Server::TCP was given without `ClientInput` ("X not
    /// permitted without ClientInput").
    NotPermittedWithoutClientInput(&'static str),
    /// Some but not all of the four watermark parameters were given ("If you use the Mark
    /// settings, you must define all four").
    PartialWatermarks,
    /// `ClientInputFilter` without `ClientOutputFilter` or the reverse ("ClientInputFilter
    /// must be used with ClientOutputFilter").
    InputFilterWithoutOutputFilter,
    /// A Server::TCP connection state would replace one the component needs (`_start`,
    /// `_stop`, `_child`, `shutdown`, `tcp_server_got_*`): "These InlineStates aren't
    /// allowed".
    ReservedState(String),
    /// `Domain::Unix` without a path: neither `unix_path` nor an `Address` was given.
    MissingUnixPath,
    /// An option that works on TCP connections only was given for a UNIX socket (the
    /// option's POE name): `PreConnect`/`ClientPreConnect` take a `TcpStream`.
    TcpOnly(&'static str),
    /// The kernel refused to create the session.
    Kernel(crate::Error),
}

impl fmt::Display for ComponentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentError::MissingRemoteAddress => f.write_str("needs a RemoteAddress parameter"),
            ComponentError::MissingRemotePort => f.write_str("needs a RemotePort parameter"),
            ComponentError::MissingServerInput => f.write_str("requires a ServerInput parameter"),
            ComponentError::AcceptorOrClientInput => {
                f.write_str("needs either an Acceptor or a ClientInput but not both")
            }
            ComponentError::NotPermittedWithoutClientInput(p) => {
                write!(f, "{p} not permitted without ClientInput")
            }
            ComponentError::PartialWatermarks => {
                f.write_str("If you use the Mark settings, you must define all four")
            }
            ComponentError::InputFilterWithoutOutputFilter => {
                f.write_str("ClientInputFilter must be used with ClientOutputFilter")
            }
            ComponentError::ReservedState(s) => {
                write!(f, "These InlineStates aren't allowed: {s}")
            }
            ComponentError::MissingUnixPath => {
                f.write_str("Domain::Unix needs a socket path (unix_path or Address)")
            }
            ComponentError::TcpOnly(what) => {
                write!(f, "{what} works on TCP connections, not on a UNIX socket")
            }
            ComponentError::Kernel(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ComponentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ComponentError::Kernel(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::Error> for ComponentError {
    fn from(e: crate::Error) -> Self {
        ComponentError::Kernel(e)
    }
}

/// Reads an integer argument that may have been sent as any common integer type.
pub(crate) fn int_arg(args: &crate::Args, i: usize) -> Option<i64> {
    if let Some(v) = args.opt::<i64>(i) {
        return Some(*v);
    }
    if let Some(v) = args.opt::<i32>(i) {
        return Some(i64::from(*v));
    }
    if let Some(v) = args.opt::<u32>(i) {
        return Some(i64::from(*v));
    }
    if let Some(v) = args.opt::<u16>(i) {
        return Some(i64::from(*v));
    }
    if let Some(v) = args.opt::<u64>(i) {
        return i64::try_from(*v).ok();
    }
    if let Some(v) = args.opt::<usize>(i) {
        return i64::try_from(*v).ok();
    }
    if let Some(v) = args.opt::<isize>(i) {
        return i64::try_from(*v).ok();
    }
    None
}
