//! # poe-keepalive: a keep-alive connection pool, and an HTTP client on it, for the POE-style kernel
//!
//! A port of Perl's `POE::Component::Client::Keepalive` and
//! `POE::Component::Connection::Keepalive` to the [`reactor`] kernel
//! ([poe-reactor](https://docs.rs/poe-reactor)): a session asks the manager
//! ([`Keepalive`]) for a connection to a scheme, host and port, gets it as an event
//! ([`Response`]), talks over it through a [`reactor::wheel::ReadWrite`] wheel
//! ([`Connection::start`]), and drops it to give the socket back to the pool, where the
//! next request for the same host reuses it. Limits per host and in all, idle timeouts,
//! request timeouts, lookups off the event loop and https (rustls) are handled for you.
//!
//! # Getting started
//!
//! ```toml
//! [dependencies]
//! poe-keepalive = "0.1"
//! ```
//!
//! The library is called `keepalive` and re-exports the kernel as `keepalive::reactor`, so
//! one dependency is enough. Below, a session asks for a connection to a line server (a
//! plain thread here), sends a line, prints the answer and gives the connection back.
//!
//! ```
//! use keepalive::reactor::wheel::ReadWrite;
//! use keepalive::reactor::{Ctx, HandlerError, Kernel, Session};
//! use keepalive::{Connection, Keepalive, Request, Response};
//! use std::io::{BufRead, BufReader, Write};
//!
//! // A one-line server to talk to.
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let port = listener.local_addr()?.port();
//! std::thread::spawn(move || -> std::io::Result<()> {
//!     let (socket, _) = listener.accept()?;
//!     let mut line = String::new();
//!     BufReader::new(&socket).read_line(&mut line)?;
//!     (&socket).write_all(format!("you said {line}").as_bytes())
//! });
//!
//! let mut kernel = Kernel::new()?;
//! let cm = Keepalive::builder().max_per_host(4).build(&mut kernel)?;
//! let (ask, done) = (cm.clone(), cm.clone());
//! kernel.create(
//!     Session::new(None::<Connection>)
//!         .on("_start", move |ctx: &mut Ctx<'_, Option<Connection>>| {
//!             let request = Request::new("http", "127.0.0.1", port, "got_conn");
//!             ask.allocate(ctx, request).map(|_| ())
//!         })
//!         .on("got_conn", |ctx: &mut Ctx<'_, Option<Connection>>| -> Result<(), HandlerError> {
//!             let r: Response = ctx.take_arg(0)?;
//!             let mut conn = r.connection?; // a Failure says what went wrong
//!             let wheel = conn.start(ctx, |w| w.input_event("got_line"))?;
//!             if let Some(rw) = ctx.wheel_mut::<ReadWrite>(wheel) {
//!                 rw.put_one("hello")?; // the Line filter adds CRLF
//!             }
//!             *ctx.heap() = Some(conn);
//!             Ok(())
//!         })
//!         .on("got_line", move |ctx: &mut Ctx<'_, Option<Connection>>| -> Result<(), HandlerError> {
//!             let line: Vec<u8> = ctx.take_arg(0)?;
//!             assert_eq!(line, b"you said hello");
//!             *ctx.heap() = None; // dropped: the socket goes back to the pool (checked)
//!             done.shutdown(ctx); // and the manager ends, so run() returns
//!             Ok(())
//!         }),
//! )?;
//! kernel.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The answer to every [`Keepalive::allocate`] is one [`Response`] event, even when a
//! pooled socket is handed out at once: `connection` is a `Result<Connection, Failure>`
//! (a [`Failure`] is Perl's error triple: `function`, `errnum`, `errstr`),
//! [`Response::from_cache`] says whether the socket was reused ([`Origin`]), and the
//! request's context (any type) comes back in `context`. [`Keepalive::deallocate`] cancels
//! a request in any stage, and [`Keepalive::shutdown`] answers everything still pending
//! and closes every socket.
//!
//! # The HTTP client
//!
//! [`HttpClient`] (`POE::Component::Client::HTTP`) is what most programs use: a session
//! (alias `"weeble"` by default) that takes [`http::Request`](::http::Request)s and answers
//! each one with exactly one event carrying a [`RequestPacket`] (the request and its tag)
//! and the [`http::Response`](::http::Response), errors included (POE's status codes,
//! `X-PCCH-Errmsg`, and the typed [`ClientError`] in the response's extensions). It reads
//! responses with [`http::ResponseParser`] (heads by `httparse`): every body framing,
//! interim `1xx` responses skipped, no body after `HEAD`, 204 and 304, `Connection: close`
//! and HTTP/1.0 honoured. It retries an idempotent request that failed on a reused socket
//! before any response byte, shortens a socket's idle life to a server's `Keep-Alive:
//! timeout` minus a second, follows redirects, decodes gzip and deflate, streams, keeps
//! cookies and goes through proxies (https by `CONNECT`). See its docs and the table in
//! `docs/porting.md`.
//!
//! # Threads and platforms
//!
//! The manager is a session of one kernel and lives on its thread, like everything of the
//! kernel's: [`Keepalive`], [`Connection`] and [`Response`] are not `Send`. Host-name
//! lookups run on a few worker threads of their own (or your [`ResolverKind::Custom`]),
//! so they never block the kernel. The errors ([`Error`], [`Failure`]) are
//! `Send + Sync`. It runs on Linux, where it is tested (against nginx among others);
//! other Unix systems may work but are untested, and Windows is not supported.
//!
//! # Features
//!
//! - `tls` (on by default): `https` through rustls with the webpki roots
//!   (`KeepaliveBuilder::tls_config` for your own). Without it an `https` request is
//!   answered with a `Failure` whose function is `"sslify"`.
//!
//! # Idle connections can close at any moment
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
//! # Differences from the Perl module
//!
//! The scheduling fixes (B1-B16 of the Perl module: cancels in every stage, no
//! head-of-line stall, LIFO hand-out and LRU eviction, shutdown that answers everything and
//! closes everything) are listed in [`design`], with how the pool schedules requests. At the API:
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
//!
//! How it works inside is in [`design`].

#![cfg_attr(docsrs, feature(doc_cfg))]

mod answer_event;
mod client;
pub mod design;
pub mod http;
mod manager;
mod pool;
pub mod resolver;
mod stream;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;

pub use client::{
    ClientError, ClientStats, CookieJar, HttpClient, HttpClientBuilder, Progress, Redirects, ReqId,
    RequestPacket, Submit, Trailers,
};
pub use manager::{Connection, Error, Keepalive, KeepaliveBuilder, Request, Response};
pub use pool::{
    AllocateError, CallError, ConnId, Counters, Failure, Gauges, HostStats, Origin, PoolKey,
    RequestId, RequestStage, Settings, SettingsError, Stats,
};
pub use reactor;
pub use resolver::ResolverKind;
pub use stream::Stream;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
