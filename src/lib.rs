//! Keep-alive connection manager: a Rust port of `POE::Component::Client::Keepalive` and
//! `POE::Component::Connection::Keepalive`, on the [`reactor`] kernel.
//!
//! ```no_run
//! use keepalive::reactor::{Kernel, Session};
//! use keepalive::{Keepalive, Request, Response};
//!
//! let mut kernel = Kernel::new()?;
//! let cm = Keepalive::builder().max_per_host(4).build(&mut kernel)?;
//! kernel.create(
//!     Session::new(())
//!         .on("_start", move |ctx| {
//!             cm.allocate(ctx, Request::new("http", "127.0.0.1", 8080, "got_conn"))
//!                 .expect("a valid request");
//!         })
//!         .on("got_conn", |ctx| {
//!             let r: Response = ctx.take_arg(0).unwrap();
//!             match r.connection {
//!                 Ok(_conn) => println!("connected, from_cache={:?}", r.origin),
//!                 Err(f) => println!("{f}"),
//!             }
//!             // The connection is dropped here: its socket goes back to the pool.
//!         }),
//! )?;
//! kernel.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Idle connections can close at any moment
//!
//! A server may close an idle keep-alive connection whenever it likes (nginx after
//! `keepalive_timeout`, most servers after some number of requests), and its close can cross
//! the next request sent on that connection: the request then fails before any byte of the
//! response arrives. The pool checks a socket before handing it out, but no check can see a
//! close that is still on the wire. So, as Go's, hyper's and curl's clients do, retry an
//! idempotent request once when it failed on a reused connection (`Response::from_cache` was
//! `Some`) before any response byte, and ask for the retry with
//! [`Request::fresh_connection`]: it is never handed a pooled socket, so it cannot fail the
//! same way on another socket that sat idle as long. `examples/demo.rs` does exactly this.
//!
//! ## Design
//!
//! **Two layers.** [`pool::Pool`] is the bookkeeping as a pure state machine (keys, limits,
//! queues, lookups shared by host, deadlines) that answers every call with a list of
//! [`pool::Action`]s; it has no sockets and no clock, so its rules are tested exactly and
//! exhaustively (`tests/pool.rs`). The manager ([`Keepalive`]) is the socket layer that
//! performs those actions on the kernel: non-blocking connects (socket2, bound to
//! `bind_address` if set), lookups, TLS handshakes, idle watching, one timer, responses.
//!
//! **A session, as in POE.** Each manager runs as a session of the kernel it was built in,
//! with the alias `POE::Component::Client::Keepalive::<id>`. Its methods are called from
//! other sessions' handlers and act as the manager's session for their duration
//! ([`reactor::Kernel::run_as`], the cheap form of POE's `call` into a component), so the
//! manager's watchers and timers are its own and its responses name it as the sender. The
//! session ends when the manager has nothing left (no socket, request, lookup or
//! connection out), as Perl's does, and is created again by the next call that needs it.
//!
//! **One answer per request, as an event.** The answer is a [`Response`] posted to the
//! session that called `allocate`, as `ARG0` of the named event, even when a pooled socket
//! is handed out at once. While a request is pending the requester holds an extra reference
//! (tag `poco-client-keepalive`), so it lives to get its answer; `deallocate` and
//! `shutdown` release it exactly once.
//!
//! **Drop gives the socket back.** A [`Connection`] owns its socket and, once started, its
//! [`reactor::wheel::ReadWrite`] wheel. Dropping it (Perl's `DESTROY`) queues the socket for the
//! manager and posts one `ka_housekeeping` event; a later `allocate` takes queued sockets
//! back first, so "drop the connection, then ask again" reuses it at once, as in Perl. The
//! wheel is taken out with [`reactor::Kernel::wheel_park`]: the socket keeps its poller
//! registration and the readiness seen meanwhile, and the next connection on it starts
//! without a system call.
//!
//! **A socket is checked twice.** At free, a socket whose wheel holds undelivered input or
//! unsent output or had a direction shut down, one closed with [`Connection::close`], and
//! one that a peek (`recv(MSG_PEEK)`, Perl's `select` at free) finds readable (data,
//! end-of-file, an error) is closed, never pooled; a socket freed with unread data is
//! reset, as Perl does. At hand-out every pooled socket is peeked at again: one the server
//! closed, or that received anything, since it was freed is discarded and the next one, or
//! a new connect, is used. Idle sockets are
//! also watched (from the next housekeeping event) and closed on any activity, and closed
//! after `keep_alive`, restarted at each free.
//!
//! **Time.** Deadlines (request timeouts, connect timeouts, keep-alive) live in the pool on
//! the kernel's clock; the manager keeps one kernel alarm at or before the earliest and
//! only moves it earlier, so handing sockets out and back costs no timer operations.
//!
//! **Lookups** run getaddrinfo on a small pool of worker threads
//! ([`resolver::Resolver`]), whose answers come back as an event posted to the manager's
//! session through the kernel's [`Poster`](reactor::Poster); IPv4 addresses come first, lookups of one host are shared, IP literals skip them, and a cancelled lookup's
//! answer is dropped. [`ResolverKind::Custom`] plugs in any other resolver.
//!
//! **https** is rustls ([`tls`]): certificates verified against the webpki roots by
//! default (or [`KeepaliveBuilder::tls_config`]), SNI sent, the handshake driven by the
//! manager without blocking before the connection is handed out; a failed handshake is an
//! error response (function `"sslify"`) and releases its slot.
//!
//! ## Differences from the Perl module
//!
//! The scheduling fixes (B1-B16 of the Perl module: cancels in every stage, no
//! head-of-line stall, LIFO hand-out and LRU eviction, shutdown that answers everything and
//! closes everything) are listed in the [`pool`] docs. At the API:
//!
//! - `allocate` returns a [`RequestId`] even for an immediate hit (Perl returned nothing),
//!   and that answer is an event like any other.
//! - The context is optional and of any type; `port` 0 and empty fields are typed errors
//!   ([`Error`]), as are zero limits (Perl took 0 to mean "the default").
//! - Responses always carry the `for_*` fields (Perl left them out of immediate ones).
//! - The request timeout covers lookup, queue and connect as in Perl; a separate
//!   `connect_timeout` can bound the connect alone.
//! - [`Connection::start`] takes a closure that configures the [`reactor::wheel::ReadWrite`]
//!   builder (the handle is always the connection's socket), and `close` needs the kernel.
//! - There is no process-wide state: request ids, resolvers and limits belong to one
//!   manager.

pub mod http;
mod manager;
pub mod pool;
pub mod resolver;
mod stream;
pub mod tls;

pub use manager::{Connection, Error, Keepalive, KeepaliveBuilder, Request, Response};
pub use pool::{Failure, Origin, PoolKey, RequestId, Settings, Stats};
pub use reactor;
pub use resolver::ResolverKind;
pub use stream::Stream;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
