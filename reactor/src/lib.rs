//! # poe-reactor: Perl POE's event model on mio
//!
//! An event kernel for network servers and clients, written the way
//! [POE](https://metacpan.org/pod/POE) programs are: **sessions** hold some state (the
//! heap) and handle **named events**; they send each other events (`post`, `yield_`,
//! `call`), set timers (`delay`, `alarm`), watch signals and sockets, and end when nothing
//! can reach them any more. Buffered sockets, child processes and file tails are
//! **wheels**; bytes become records (lines, blocks) through **filters**; and TCP, UDP and
//! UNIX-socket servers and clients come ready-made as **components**. A POE program ports
//! handler by handler, and prints what the Perl one prints.
//!
//! # Getting started
//!
//! Add the dependency (the package is `poe-reactor`, the library `reactor`):
//!
//! ```toml
//! [dependencies]
//! poe-reactor = "0.1"
//! ```
//!
//! ## A timer
//!
//! A [`Kernel`] runs [`Session`]s. A session is its heap (here a counter) and a handler
//! per event; every handler gets a [`Ctx`], POE's `@_`: the kernel (`ctx` dereferences to
//! it), the heap, and the event's arguments. `_start` runs when the session is created;
//! [`Kernel::run`] returns when no session is left.
//!
//! ```
//! use reactor::{Ctx, HandlerError, Kernel, Session};
//!
//! let mut kernel = Kernel::new()?;
//! kernel.create(
//!     Session::new(0u32)
//!         .on("_start", |ctx: &mut Ctx<'_, u32>| ctx.yield_("tick", ()))
//!         .on("tick", |ctx: &mut Ctx<'_, u32>| -> Result<(), HandlerError> {
//!             *ctx.heap() += 1;
//!             if *ctx.heap() < 3 {
//!                 ctx.delay("tick", 0.001, ())?; // again in 1 ms
//!             }
//!             Ok(())
//!         }),
//! )?;
//! kernel.run()?;
//! # Ok::<(), reactor::Error>(())
//! ```
//!
//! ## A server
//!
//! [`component::ServerTcp`] listens, and gives every connection a session of its own with
//! a line-buffered socket; `client_input` runs for each line. Here the server shuts itself
//! down after the first line so that the example ends; a real one runs until told to stop.
//!
//! ```
//! use reactor::component::{ConnHeap, ServerTcp};
//! use reactor::{Ctx, HandlerError, Kernel};
//! use std::io::{BufRead, BufReader, Write};
//!
//! let mut kernel = Kernel::new()?;
//! let server = ServerTcp::builder()
//!     .address("127.0.0.1")
//!     .port(0) // the system picks a free port
//!     .alias("echo")
//!     .client_input(|ctx: &mut Ctx<'_, ConnHeap>| -> Result<(), HandlerError> {
//!         let line: Vec<u8> = ctx.take_arg(0)?; // ARG0: the line, without its newline
//!         if let Some(client) = ctx.client() {
//!             client.put_one(line)?; // sent back, with CRLF
//!         }
//!         ctx.yield_("shutdown", ())?; // this connection: close once flushed
//!         ctx.post("echo", "shutdown", ())?; // the listener: stop accepting
//!         Ok(())
//!     })
//!     .build(&mut kernel)?;
//! let addr = server.local_addr().expect("listening");
//!
//! // A blocking client on another thread.
//! let client = std::thread::spawn(move || -> std::io::Result<String> {
//!     let mut socket = std::net::TcpStream::connect(addr)?;
//!     socket.write_all(b"hello\n")?;
//!     let mut answer = String::new();
//!     BufReader::new(socket).read_line(&mut answer)?;
//!     Ok(answer)
//! });
//! kernel.run()?;
//! assert_eq!(client.join().expect("client thread")?, "hello\r\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## A client
//!
//! [`component::ClientTcp`] connects, and calls `server_input` for each line the server
//! sends; [`component`] shows a server and a client in one kernel. Below them,
//! [`wheel::SocketFactory`] connects or listens and [`wheel::ReadWrite`] buffers a socket
//! through a [`filter`], for protocols the components do not fit.
//!
//! ```no_run
//! use reactor::component::{ClientHeap, ClientTcp};
//! use reactor::{Ctx, HandlerError, Kernel};
//!
//! let mut kernel = Kernel::new()?;
//! ClientTcp::builder("127.0.0.1", 7000)
//!     .connected(|ctx: &mut Ctx<'_, ClientHeap>| -> Result<(), HandlerError> {
//!         ctx.server().expect("connected").put_one("hello")?;
//!         Ok(())
//!     })
//!     .server_input(|ctx: &mut Ctx<'_, ClientHeap>| -> Result<(), HandlerError> {
//!         let line: Vec<u8> = ctx.take_arg(0)?;
//!         println!("{}", String::from_utf8_lossy(&line));
//!         ctx.yield_("shutdown", ())?;
//!         Ok(())
//!     })
//!     .build(&mut kernel)?;
//! kernel.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Threads and platforms
//!
//! A kernel, its sessions, their heaps and their connections live on the thread that made
//! them: [`Kernel`], [`Ctx`], [`Postback`] and the wheels are not `Send`, handlers are
//! plain closures (`Fn`, not `Send`), and nothing is locked. Other threads reach a kernel
//! through a [`Poster`] ([`Kernel::poster`], `Send + Sync + Clone`): a post from any thread
//! is dispatched in the kernel's next timeslice. Blocking work goes to a
//! [`component::WorkerPool`], whose results come back as events. To use more cores, run
//! one kernel per core: [`group::Group`] starts N kernels on N threads and stops them
//! together, and servers share a port with `reuse_port`. Errors ([`Error`] and the others)
//! are `Send + Sync`, so they can leave the thread.
//!
//! It runs on Linux, where the whole test suite runs (including POE's own tests against
//! the Perl implementation). It uses mio and Unix APIs (signals, `fork`-free child
//! processes, UNIX sockets), so other Unix systems may work but are untested; Windows is
//! not supported.
//!
//! # Events and their arguments
//!
//! An event's arguments are POE's `ARG0`, `ARG1`, ...: read them with [`Ctx::arg`] (a
//! reference) or [`Ctx::take_arg`] (the value, moved out), naming the Rust type; a wrong
//! type or a missing argument is an [`ArgError`] that says which. Send them as `()` (none),
//! one value, or a tuple: `ctx.post(dest, "event", (a, b))`; see [`IntoArgs`].
//!
//! What the kernel, wheels and components send is documented with each event, with its
//! types: the lifecycle events on [`Session`] (`_start`, `_stop`, `_child`, `_parent`,
//! `_default`), signals on [`Kernel::sig`], each wheel's events on the builder method that
//! names them (e.g. [`wheel::ReadWriteBuilder::input_event`]: `ARG0` is a `Vec<u8>`, `ARG1`
//! the [`WheelId`]), and the components' callbacks in [`component::server_tcp`] and
//! [`component::client_tcp`].
//!
//! An event that no handler takes (and no `_default`) is logged at `warn` and dropped, so
//! a misspelt event name shows at once with `RUST_LOG=warn`
//! ([`KernelBuilder::warn_unhandled`]). A handler's failure (an `Err` or a panic) is POE's
//! `die`: it becomes a `DIE` signal, and if nothing handles that, [`Kernel::run`] returns
//! [`Error::Exception`], naming the session and the event.
//!
//! # Coming from POE
//!
//! | POE | here |
//! |---|---|
//! | `POE::Session->create(inline_states => {...}, heap => ...)` | [`Kernel::create`]`(`[`Session::new`]`(heap).on("event", handler))` |
//! | `$_[KERNEL]`, `$_[HEAP]`, `$_[SESSION]`, `$_[SENDER]`, `$_[STATE]` | `ctx` (derefs to [`Kernel`]), [`Ctx::heap`], [`Ctx::session`], [`Ctx::sender`], [`Ctx::event`] |
//! | `$_[ARG0]` | [`Ctx::arg`]`::<T>(0)`, [`Ctx::take_arg`] |
//! | `$kernel->yield(...)`, `post`, `call` | [`Kernel::yield_`], [`Kernel::post`], [`Kernel::call`] |
//! | `delay`, `alarm`, `delay_set`, `alarm_remove`, ... | the same names on [`Kernel`] |
//! | `die` in a handler | return `Err(...)`: a [`HandlerError`] |
//! | `POE::Wheel::ReadWrite`, `SocketFactory`, `ListenAccept`, `Run`, `FollowTail` | [`wheel`] |
//! | `POE::Filter::Line`, `Stream`, `Block`, ... | [`filter`] |
//! | `POE::Component::Server::TCP`, `Client::TCP` | [`component`] |
//! | `POE::NFA` | [`nfa`] |
//! | `get_active_session`, `get_runstate`, ... | `active_session`, `runstate`, ... (Rust's getters drop `get_`; POE's names are search aliases) |
//!
//! The repository's `docs/porting.md` is a guide to porting a whole program, and its
//! `examples/` are ports of POE's own examples. How the kernel works inside (dispatch,
//! the queue, interning, I/O readiness) is in [`design`].
//!
//! # Features
//!
//! - `regex` (off by default): `LineBuilder::input_regexp_pattern`, POE's
//!   `InputRegexp => STRING`. A compiled matcher ([`filter::LineBuilder::input_regexp`])
//!   needs no feature.
//!
//! # Limits by default
//!
//! A server built on [`component::ServerTcp`] faces clients it does not trust, so its
//! defaults bound what one client can cost, where POE's bound nothing (each is a builder
//! option, and POE's behaviour is one call away):
//!
//! | what | default | POE's | option |
//! |---|---|---|---|
//! | running out of descriptors or memory while accepting | pause, retry after 5 ms to 1 s | the listener is dropped | `survive_exhaustion` |
//! | output waiting for a client that does not read | input held back above 256 KiB, until 64 KiB | unbounded | `client_backpressure` |
//! | one line, or the input buffer | 1 MiB, then the client is disconnected | 64 MiB / 512 MiB | `client_filter` |
//! | a connection told to shut down | closed after 5 s if its output is not read | waits for ever | `client_drain_deadline` |
//!
//! Across connections, [`KernelBuilder::output_budget`] (off by default) bounds the output
//! all wheels hold together: past it, the connections holding output stop reading.
//!
//! [`component::ClientTcp`] has the same backpressure, line limits and drain deadline. The
//! chaos suite (`tests/chaos.rs`) holds a server to them: descriptor exhaustion, a client
//! that never reads, a line without end, SIGTERM with a client that never drains, 5,000
//! idle connections (under 1 KiB each), garbage, resets and half-closes.
//!
//! # Deviations from POE
//!
//! - Calls that take an optional event to mean "remove" in POE have a separate name here:
//!   `alarm(NAME)`/`delay(NAME)` is [`Kernel::alarm_clear`], `sig(NAME)` is
//!   [`Kernel::sig_clear`], `select_read(FH)` is [`Kernel::select_read_clear`].
//! - `alarm_remove_all` reports the real due time of `delay` timers (POE reports 0).
//! - `alarm_remove` only removes timers (POE removes any queued item by id).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
pub mod component;
pub mod design;
pub mod errno;
mod error;
pub mod filter;
pub mod group;
mod ids;
mod kernel;
pub mod nfa;
pub mod pipe;
mod queue;
mod value;
pub mod wheel;

pub use clock::{Clock, ManualClock, SystemClock, Time};
pub use error::{Error, Result};
pub use kernel::{
    epoch_secs, AlarmId, Budget, Callback, ChildGuard, Ctx, Designator, DieInfo, Epoch, EventId,
    EventName, Kernel, KernelBuilder, Mode, ObjectMethod, PackageMethod, PostBatch, PostError,
    Postback, Poster, Recipient, RemoteEvent, RemovedAlarm, Seconds, Session, SessionId,
    SessionOptions, Share, States, KERNEL, POSTER_TAG, POSTS_PER_TIMESLICE,
};
pub use value::{Arg, ArgError, ArgProblem, Args, HandlerError, IntoArgs, Outcome, Value};
pub use wheel::{WheelHandle, WheelId};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
