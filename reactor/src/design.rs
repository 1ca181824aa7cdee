//! How the kernel works inside: the design notes behind the API, for contributors and for
//! anyone who wants to know what a call costs. Nothing here is needed to use the crate;
//! the [crate documentation](crate) is the user's guide.
//!
//! # Design
//!
//!
//! **Who owns the heap.** Sessions live in a [`slab`](https://docs.rs/slab) inside the [`Kernel`](crate::Kernel); each keeps its
//! heap there, as `Box<dyn Any>`. Handlers are shared closures (`Rc<dyn Fn>`) that receive a
//! [`Ctx`](crate::Ctx), which holds `&mut Kernel` and dereferences to it. The heap is reached through
//! the context ([`Ctx::heap`](crate::Ctx::heap)), so the borrow checker forbids holding a heap reference
//! across a kernel call. That is exactly what makes POE's re-entrancy safe without
//! `RefCell`: a handler may `call` itself, A may call B which calls A, a handler may create
//! or stop sessions, and nothing can observe a heap in the middle of a mutation. A session
//! stopped while one of its handlers is still on the stack keeps its record (and heap) until
//! that handler returns, so [`Ctx::heap`](crate::Ctx::heap) never fails.
//!
//! **Names and arguments.** Event names are interned once into small integers; dispatch
//! compares integers, while `_default` and messages still see the names. Arguments are
//! `Rc<dyn Any>` values with typed accessors ([`Args::get`](crate::Args::get)) that fail with an
//! [`ArgError`](crate::ArgError) naming the position and type; one signal's arguments reach every watcher
//! without copies. A wheel's record and id (`ARG0`, `ARG1` of a `ReadWrite`'s input
//! event) are the exception: they reach the handler as they are, in a box the kernel keeps
//! for the next record, and `take_arg::<Vec<u8>>(0)` and `arg::<WheelId>(1)` read them
//! with no type test at run time; only a handler that asks for them as shared values
//! ([`Args::arg`](crate::Args::arg), [`Args::iter`](crate::Args::iter)) has them made
//! into such. Handler return values are [`Value`](crate::Value)s.
//!
//! **Shared handler tables.** Each session's handlers are a small table sorted by event id,
//! behind an `Rc`: sessions created from the same [`States`](crate::States) (a server's per-connection
//! sessions) share one table, so dispatching to any of a thousand of them reads the same
//! cache lines. A session that changes its handlers with `state` copies the table first.
//!
//! **Reads and writes without lists.** POE's filter interface passes lists of chunks and
//! records; the wheels use the provided methods [`filter::Filter::get_one_start_chunk`](crate::filter::Filter::get_one_start_chunk),
//! [`filter::Filter::get_one_with`](crate::filter::Filter::get_one_with) and [`filter::Filter::put_one_with`](crate::filter::Filter::put_one_with) instead, so a line
//! read, delivered and echoed allocates no list, and `Line` hands a whole buffered line
//! over rather than copying it.
//!
//! **When I/O happens: POE's timeslice.** A timeslice polls, dispatches the I/O that is
//! ready (all reads, then all writes), reads the clock, then dispatches every event due by
//! that reading, as POE's select loop does. So an event posted or yielded by an I/O handler
//! runs in the same timeslice, after the I/O. A wheel writes output when a poll made after
//! the output was queued reports the handle writable (POE watches a handle for writing
//! only while output waits): output queued by any handler, I/O or event, is written after
//! the next poll returns, and `FlushedEvent` is called there. The peer of a socket in the
//! same process therefore reads it one timeslice later, exactly as under POE. That next
//! poll does not wait while output waits, so this adds no latency; it costs one poll that
//! finds nothing when the process had nothing else to do. `tests/order_perl.rs` pins the
//! order against the real POE. The wheel table visits each listed wheel once in the read
//! pass (arming it with what it held at the poll, and dispatching it if it has input) and
//! once in the write pass; a wheel whose read dispatch left it no write due is passed by
//! there and stays listed, so a message costs one dynamic call per pass and wheel, not
//! more. A poll takes in at most 64 readiness events; more wait
//! with the poller for the next timeslice's poll, so that a busy server writes a socket
//! while its state from the read is still in the CPU's caches (POE's select loop takes
//! every ready handle at once; the order differs only when more than 64 are ready, and
//! [`KernelBuilder::events_per_poll`](crate::KernelBuilder::events_per_poll) sets the number).
//!
//! **Failures.** A handler that returns `Err` or panics is POE's `die`: with exception
//! catching on (the default) it becomes a `DIE` signal to the failed session, its
//! descendants and ancestors; unhandled, it stops every session and [`Kernel::run`](crate::Kernel::run) returns
//! [`Error::Exception`](crate::Error::Exception). The process never aborts because of a handler. Kernel calls fail
//! with typed [`Error`](crate::Error)s that keep POE's errno meaning ([`Error::errno`](crate::Error::errno)).
//!
//! **One queue.** Posts, timers and signals share one time-ordered queue (`queue.rs`) (a
//! 4-ary heap of small nodes over a slab, with lazy removal: set, cancel and re-time are
//! O(log n) amortized; once the heap is large, new nodes wait unsorted beside it until the
//! head is next needed, and a timeslice that finds many items due takes them out in one
//! sorted batch); equal times are FIFO. Posts take "now", strictly after the
//! snapshot of the batch being dispatched, so an event posted during a batch runs in the
//! next timeslice, as under POE. A queue entry is 24 bytes: what ordering, cancelling and
//! dispatching decide on (sequence, time, the destination's slab key, and the event, kind
//! and has-arguments packed in one word). The arguments, the caller and the sender wait
//! beside the queue at the entry's slot and are taken out whenever the item leaves it.
//! With a million timers a cancel is bound by memory, not instructions, so what it touches
//! decides its cost: one entry and one word.
//!
//! **Event names.** A name is numbered once per process, like a symbol: its [`EventId`](crate::EventId)
//! is the same in every kernel, and its text a `&'static str` handed back as an
//! [`EventName`](crate::EventName) with no reference count to keep. Handler tables and queue entries hold
//! ids. A program's string names (`post(dest, "tick", ..)`) go through the kernel's own
//! cache of ids, with no lock; what emits the same events again and again resolves them
//! once, when it is built: sessions their handlers, wheels their events ([`EventId::of`](crate::EventId::of),
//! [`Kernel::wheel_call`](crate::Kernel::wheel_call)), postbacks and callbacks their event.
//!
//! **Time.** The queue runs on a monotonic timeline read from a [`Clock`](crate::Clock). `alarm` epochs
//! and the times `alarm_remove`/`alarm_adjust` return are wall-clock: point `t` is the
//! clock's [`Clock::wall_origin`](crate::Clock::wall_origin) plus `t`, converted at the API boundary.
//! [`ManualClock`](crate::ManualClock) makes timer tests exact and instant.
//!
//! **Level-triggered I/O on mio.** A `select_read` or `select_write` watcher's handler runs
//! in every timeslice while its descriptor stays ready, as under POE's select loop. mio
//! reports a readiness edge once; after each dispatch the kernel re-arms the registration
//! (one `epoll_ctl(MOD)`), so the poller reports the descriptor again at the next poll if
//! the handler left data unread or the socket is still writable, and not otherwise. Wheels
//! instead keep a ready flag per direction, cleared only by `WouldBlock` or a short read,
//! so an echoed message costs one `read` and one `write` and no re-registration.
//!
//! **Wheels that work by time: tails.** A regular file cannot be watched by the poller
//! (epoll refuses it), so [`wheel::FollowTail`](crate::wheel::FollowTail) polls it, as POE's does with a `delay` on a
//! state of its own. Here a wheel asks the kernel for a wake-up ([`Kernel::wheel_wake`](crate::Kernel::wheel_wake)): a
//! timer addressed to the kernel in the one queue, ordered among the session's timers as
//! that `delay` is, which calls the wheel back in the event phase. It is not a timer of the
//! session (its handlers and `alarm_remove_all` never see it), a wheel has at most one,
//! and removing the wheel cancels it. A tail keeps its session alive while it follows
//! ([`wheel::Wheel::holds_session`](crate::wheel::Wheel::holds_session)); a pipe or socket given to it is followed by
//! readiness, as any wheel's handle.
//!
//! **Components act as their session.** [`Kernel::run_as`](crate::Kernel::run_as) runs a component's method,
//! called from another session's handler, as the component's own session (its watchers,
//! timers and posts are its own), as a `call` into it would, without dispatching an event.
//!
//! **Children.** [`wheel::Run`](crate::wheel::Run) starts a child with `std::process::Command` (and
//! `pty-process` for a pty), since no Rust code may run between `fork` and `exec` without
//! `unsafe`; POE's `Program => sub {...}` starts the program itself again and runs an entry
//! point there ([`wheel::child_main`](crate::wheel::child_main)). Stdout and stderr share one poller token: an edge on
//! it makes both read until `WouldBlock`, so three descriptors fit the two sources a wheel
//! has. As in POE the wheel does not wait for its child: [`Kernel::sig_child`](crate::Kernel::sig_child) reports the
//! exit, and [`Kernel::adopt_child`](crate::Kernel::adopt_child) hands the child of a dropped wheel to the kernel, which
//! reaps it (`SIGCHLD`, `waitpid` on that pid only) unless a `sig_child` watch waits for it.
//!
//! **State machines are sessions.** [`nfa`](crate::nfa) (POE's `POE::NFA`) builds a session whose heap
//! is the machine's runstate and whose handler table holds, for each event the machine's
//! states name, one dispatcher that indexes that event's handlers by the current state's
//! number; the session's `_default` takes the rest (a state's `_default`, or the failure
//! POE's machine dies with). Transitions are the machine's own events, posted like any
//! other, so they keep their place in the queue. The kernel knows nothing of machines: its
//! dispatch is unchanged and ordinary sessions pay nothing for them.
//!
//! **Sockets handed from wheel to wheel.** [`Kernel::wheel_park`](crate::Kernel::wheel_park) takes a wheel out and
//! keeps its socket's poller registration, with the readiness reported meanwhile, for the
//! next wheel on the same socket ([`wheel::ReadWriteBuilder::parked`](crate::wheel::ReadWriteBuilder::parked)): a connection pool
//! hands a socket to a new `ReadWrite` per request without a system call.
//!
//! **Datagrams.** As in POE, a [`wheel::SocketFactory`](crate::wheel::SocketFactory) with `SocketProtocol => 'udp'`
//! ([`wheel::Protocol::Udp`](crate::wheel::Protocol::Udp)) neither listens nor connects: the bound socket is yielded to
//! the session at once, a `mio::net::UdpSocket` in `SuccessEvent`'s `ARG0` (with a remote
//! address, the connected socket comes when the poller reports it writable, with its
//! peer). A POE program's way of reading it works unchanged: `select_read` on the socket,
//! whose level-triggered handler calls `recv_from` once per timeslice while datagrams
//! wait. The [`wheel::Udp`](crate::wheel::Udp) wheel does that work instead (CPAN's `POE::Wheel::UDP`): an
//! event per datagram with its payload and sender, read a few at a time; datagrams to send
//! wait in a queue bounded at 1 MiB (POE's `send` on a full buffer just fails), and a
//! failed `recv` or `send` is a [`wheel::WheelError`](crate::wheel::WheelError). UNIX datagram sockets
//! ([`wheel::SocketType::Datagram`](crate::wheel::SocketType::Datagram)) are read with `select_read`; on Linux a UNIX path whose
//! first byte is NUL is an abstract name, for datagram and stream sockets alike, the
//! components included.
//!
//! **Other threads post through one waker.** A kernel is single-threaded, as POE's is;
//! [`Kernel::poster`](crate::Kernel::poster) gives the one way in from other threads, a
//! [`Poster`](crate::Poster) (`Send + Sync + Clone`). A post pushes a message (destination, event name, `Send` arguments) onto an
//! inbox behind a mutex, shared with the kernel, and only the first post after the kernel
//! emptied the inbox writes the kernel's `mio::Waker`: one wake-up per batch, however
//! many posts it holds. The kernel empties the inbox at the start of each timeslice when
//! a flag says it holds something (in a kernel without posters that is one branch, and
//! one load while the inbox is empty), and when the waker interrupts its poll; each
//! message becomes an ordinary post from the kernel, queued in the order the messages
//! arrived, so one thread's posts keep their order. The arguments become [`Args`](crate::Args) on the
//! kernel's thread. A poster does not keep the kernel running unless it holds a session
//! ([`Kernel::poster_holding`](crate::Kernel::poster_holding)), and a post to a session that is gone is dropped, as
//! POE drops one. [`component::WorkerPool`](crate::component::WorkerPool) runs blocking closures on a bounded pool of
//! threads and posts their values back this way; the keep-alive manager's resolver does
//! the same with its answers.
//!
//! **More than one core: more than one kernel.** Kernels share nothing on the hot path
//! (event names are numbered process-wide once, then cached per kernel), so a program
//! that outgrows one core runs one kernel per core: [`group::Group`](crate::group::Group) starts N kernels on N
//! threads, sets each up with a closure, and stops them all on SIGINT or SIGTERM (caught
//! by a kernel of the calling thread, which tells the others through their posters). A
//! server gives every kernel its own listener on the same port
//! ([`component::ServerTcpBuilder::reuse_port`](crate::component::ServerTcpBuilder::reuse_port), `SO_REUSEPORT`) and the system spreads
//! the connections; each connection then lives on one kernel, with no locks between them.
//!
//! **Drop-driven release.** [`Postback`](crate::Postback)s and [`Callback`](crate::Callback)s hold an external reference on
//! their session; dropping the last clone pushes a release onto a queue the kernel shares
//! with them and drains right after the running handler returns.
//!
//!
//! # Layout
//!
//! The structure follows the design: the kernel is one folder, `kernel/`, one idea a file
//! (dispatch, the session table and its collection, reference counts, timers, aliases,
//! postbacks, I/O watchers, signals, the wheel trait and table, wheels' wake-ups, poller
//! tokens, the run loop); its only imports from outside are the pure foundations: the queue (`queue.rs`), the clock,
//! values, ids and errors. It knows wheels only through its own [`wheel::Wheel`](crate::wheel::Wheel) trait.
//! `wheel/` holds the concrete wheels, `filter/` the filters (pure bytes-to-records code),
//! `component/` the TCP components built on both, `nfa.rs` POE's state machines (built on
//! the kernel's sessions), and `pipe.rs` POE's pipes. Each public type has one path: the
//! kernel's types at the crate root, the others in their module.
//!
