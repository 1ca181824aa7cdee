//! How the keep-alive manager works inside: the design behind the API, for contributors and
//! for anyone who wants to know what a call costs. Nothing here is needed to use the
//! crate; the [crate documentation](crate) is the user's guide.
//!
//! # Design
//!
//!
//! **Two layers.** `pool::Pool` is the bookkeeping as a pure state machine (keys, limits,
//! queues, lookups shared by host, deadlines) that answers every call with a list of
//! `pool::Action`s; it has no sockets and no clock, so its rules are tested exactly and
//! exhaustively (`tests/pool.rs`). The manager ([`Keepalive`](crate::Keepalive)) is the socket layer that
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
//! **One answer per request, as an event.** The answer is a [`Response`](crate::Response) posted to the
//! session that called `allocate`, as `ARG0` of the named event, even when a pooled socket
//! is handed out at once. While a request is pending the requester holds an extra reference
//! (tag `poco-client-keepalive`), so it lives to get its answer; `deallocate` and
//! `shutdown` release it exactly once.
//!
//! **Drop gives the socket back.** A [`Connection`](crate::Connection) owns its socket and, once started, its
//! [`reactor::wheel::ReadWrite`] wheel. Dropping it (Perl's `DESTROY`) queues the socket for the
//! manager and posts one `ka_housekeeping` event; a later `allocate` takes queued sockets
//! back first, so "drop the connection, then ask again" reuses it at once, as in Perl. The
//! wheel is taken out with [`reactor::Kernel::wheel_park`]: the socket keeps its poller
//! registration and the readiness seen meanwhile, and the next connection on it starts
//! without a system call.
//!
//! **A socket is checked twice.** At free, a socket whose wheel holds undelivered input or
//! unsent output or had a direction shut down, one closed with [`Connection::close`](crate::Connection::close), and
//! one that a peek (`recv(MSG_PEEK)`, Perl's `select` at free) finds readable (data,
//! end-of-file, an error) is closed, never pooled (plain sockets given back together are
//! looked at with one `poll()` for all of them); a socket freed with unread data is
//! reset, as Perl does. At hand-out every pooled socket is peeked at again: one the server
//! closed, or that received anything, since it was freed is discarded and the next one, or
//! a new connect, is used. A socket given back and handed out again with no poll between
//! (the usual "response, then the next request" in one handler) is not peeked at twice:
//! the look at free, a moment old, is the answer ([`reactor::Kernel::poll_count`] tells).
//! Idle sockets are
//! also watched (from the next housekeeping event) and closed on any activity, and closed
//! after `keep_alive`, restarted at each free (a socket reused within its keep-alive keeps
//! the timer of its last idle spell, which fires early and is set again then, so a request
//! on a pooled socket costs no timer operation).
//!
//! **Time.** Deadlines (request timeouts, connect timeouts, keep-alive) live in the pool on
//! the kernel's clock; the manager keeps one kernel alarm at or before the earliest and
//! only moves it earlier, so handing sockets out and back costs no timer operations.
//!
//! **Lookups** run getaddrinfo on a small pool of worker threads
//! ([`resolver::Resolver`](crate::resolver::Resolver)), whose answers come back as events posted to the manager's
//! session through the kernel's [`Poster`](reactor::Poster); IPv4 addresses come
//! first, lookups of one host are shared, IP literals skip them, and a cancelled lookup's
//! answer is dropped. [`ResolverKind::Custom`](crate::ResolverKind::Custom) plugs in any other resolver.
//!
//! **https** is rustls ([`tls`](crate::tls)): certificates verified against the webpki roots by
//! default (or [`KeepaliveBuilder::tls_config`](crate::KeepaliveBuilder::tls_config)), SNI sent, the handshake driven by the
//! manager without blocking before the connection is handed out; a failed handshake is an
//! error response (function `"sslify"`) and releases its slot.
//!
//!
//! **Racing connects.** A host with several addresses gets Happy Eyeballs v2 (RFC 8305):
//! the pool connects to the first address; if that has not connected after the connection
//! attempt delay (250 ms), the socket layer starts another attempt to the next address,
//! families alternating, and so on (at once after a failure); the first to connect becomes
//! the socket and the others are closed. The pool sees one connect.
//!
//! **Renewal.** `max_lifetime` and `max_uses` retire sockets when freed (or idle at their
//! lifetime), each socket's limit shortened at random by up to `lifetime_jitter` percent,
//! so a fleet that connected together does not reconnect together.
//!
//! # The pool's rules
//!
//! The bookkeeping (`pool.rs`, internal) is a pure state machine: the socket layer calls it
//! with the current time and performs the actions it returns (start or abort a connect,
//! start or cancel a lookup, deliver a response, watch or close a socket, re-arm the one
//! timer). Its rules:
//!
//! - A request first takes the most recently freed idle socket of its key (LIFO), checked at
//!   hand-out. Failing that it waits in its key's FIFO queue (ordered by allocation).
//! - `max_per_host` bounds a key's sockets in use plus connecting; idle sockets do not count
//!   (and `idle + in use + connecting <= max_per_host` holds per key anyway, because idle
//!   sockets only come from frees).
//! - `max_open` bounds all sockets: in use, connecting and idle. When it is reached, the least
//!   recently freed idle socket of any key is closed to make room (`CloseReason::Evicted`).
//! - A key blocked by `max_per_host` never delays other keys: only keys that could start a
//!   connect right now ("runnable" keys) compete for `max_open` room, oldest waiter first.
//!   Every operation is O(log n); nothing rescans a queue.
//! - A socket freed clean goes straight to the oldest waiter of its key (`Origin::Deferred`),
//!   unless an older request of another key waits for room under `max_open`: requests
//!   competing for `max_open` room are served in allocation order, so no key starves another.
//!
//! ## Differences from the Perl module (bugs fixed here)
//!
//! - **B1, B2, B3** `Pool::deallocate` works in every stage (resolving, queued,
//!   connecting): it never touches the idle pool, cancels a lookup nobody else waits for
//!   (`Action::CancelResolve`; a late answer for it is `CallError::UnknownLookup`),
//!   aborts a connect in flight (`Action::AbortConnect`) and no response follows.
//! - **B4, B5** No head-of-line stall, no dead queue entries: a timed-out or cancelled request
//!   leaves its queue at once, and every change that frees room starts the next runnable
//!   waiter.
//! - **B6, B7, B8** `Pool::shutdown` answers every pending request once with
//!   `Failure::shutdown`, aborts connects in flight, cancels lookups, closes idle sockets;
//!   sockets freed afterwards are closed, never pooled; nothing is delivered after it.
//! - **B9** A TLS failure is a `Pool::connect_failed` like any other: the key's slot is
//!   released and the next waiter starts.
//! - **B11** Zero limits are `SettingsError`s, not "use the default"; a zero port or an empty
//!   scheme or address is an `AllocateError`.
//! - **B12** Hand-out is LIFO (most recently freed) and eviction is LRU (least recently freed),
//!   instead of arbitrary and random.
//! - **B13** A timeout still reports Perl's `("connect", 110, "Connection timed out")` triple
//!   whatever the stage, but `Action::Respond` also says which `RequestStage` it was in.
//! - **B14** Idle sockets are checked when handed out, not only when freed.
//! - **B15** Request ids are per pool; constructing a pool consumes none.
//! - Every request gets an id, even one answered at once from the pool (Perl returned
//!   `undef` then), and every answer, immediate ones included, is an `Action::Respond`.
//!
//! - **B16** A resolver failure (`Pool::resolve_failed`) answers the requests waiting for
//!   the lookup; it never fails `Pool::allocate`.
//! - Any IPv4 or IPv6 literal skips the lookup (Perl: dotted quads only). Requests for the
//!   same host name share one lookup whatever their scheme or port, as in Perl.
//! - Lookups and connects of a request are bounded by its timeout; a connect can also be
//!   bounded alone (`Settings::connect_timeout`).
//!
