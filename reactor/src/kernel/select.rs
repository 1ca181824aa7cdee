//! I/O watchers: `select_read`, `select_write` and their pause/resume, on any file
//! descriptor, with POE's level-triggered meaning on top of mio's edge-triggered poller.
//!
//! A watcher's handler runs in every timeslice while its descriptor stays ready, as under
//! POE's select loop. mio reports a readiness edge once; after each dispatch the kernel
//! re-arms the registration (one `epoll_ctl(MOD)`), which makes the poller report the
//! descriptor again at the next poll if the handler left data unread or the socket is
//! still writable, and not otherwise.

use super::session::SessionId;
use super::token::{self, Target};
use super::{args_of, EventId, Kernel, Kind};
use crate::error::{Error, Result};
use crate::value::{Args, IntoArgs};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};

use crate::errno::{EEXIST, ENOENT};
use std::panic::Location;
use std::time::Duration;

/// Which readiness a watcher waits for (POE's mode numbers: 0 read, 1 write).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Readable (`select_read`).
    Read = 0,
    /// Writable (`select_write`).
    Write = 1,
}

#[derive(Clone)]
struct Watcher {
    event: EventId,
    args: Args,
    paused: bool,
}

struct FdRec {
    fd: RawFd,
    session: SessionId,
    gen: u32,
    read: Option<Watcher>,
    write: Option<Watcher>,
    registered: Option<Interest>,
}

impl FdRec {
    fn interest(&self) -> Option<Interest> {
        let r = self.read.as_ref().is_some_and(|w| !w.paused);
        let w = self.write.as_ref().is_some_and(|w| !w.paused);
        match (r, w) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }
}

/// The most readiness events one poll takes in by default
/// ([`KernelBuilder::events_per_poll`](super::KernelBuilder::events_per_poll)). More stay with the poller for the next
/// poll (epoll keeps them in its ready list, in order), after this timeslice's due events.
/// Small on purpose: a wheel's answer leaves after the next poll (POE's write timing), so
/// between a socket's read and its write the kernel reads and writes up to twice this many
/// other sockets; with 1,024 a busy server's sockets went cold in the CPU's caches between
/// the two system calls (about 1-2 µs of system time per message at 5,000 connections,
/// see docs/benchmarks.md, "System calls per message at 5,000 connections").
pub(crate) const POLL_EVENTS: usize = 64;

pub(crate) struct Io {
    poll: Poll,
    events: Events,
    fds: Slab<FdRec>,
    by_fd: HashMap<RawFd, usize>,
    next_gen: u32,
    pub(crate) signal_registered: bool,
    /// Scratch list of the last poll's readiness, kept to reuse its allocation.
    ready: Vec<(Token, bool, bool, bool)>,
    /// Polls made so far ([`Kernel::poll_count`]).
    polls: u64,
}

impl Io {
    pub(crate) fn new(events_per_poll: usize) -> Result<Io> {
        Ok(Io {
            poll: Poll::new()?,
            events: Events::with_capacity(events_per_poll),
            fds: Slab::new(),
            by_fd: HashMap::new(),
            next_gen: 0,
            signal_registered: false,
            ready: Vec::new(),
            polls: 0,
        })
    }

    pub(crate) fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    pub(crate) fn has_registrations(&self) -> bool {
        !self.fds.is_empty() || self.signal_registered
    }

    pub(crate) fn watched_fds(&self) -> usize {
        self.fds.len()
    }

    fn sync(&mut self, key: usize) -> std::io::Result<()> {
        let rec = &mut self.fds[key];
        let want = rec.interest();
        let token = super::token::watcher(key, rec.gen);
        let reg = self.poll.registry();
        // A descriptor may still be registered by a parked wheel (`Kernel::wheel_park`),
        // or no longer be registered after such a registration was taken over and ended:
        // `register_fd` corrects the guess either way.
        let fd = &mut SourceFd(&rec.fd);
        match (rec.registered, want) {
            (was, Some(i)) => register_fd(reg, fd, token, i, was.is_some())?,
            (Some(_), None) => match reg.deregister(fd) {
                Err(e) if e.raw_os_error() == Some(ENOENT) => {}
                r => r?,
            },
            (None, None) => {}
        }
        rec.registered = want;
        Ok(())
    }
}

/// Registers a descriptor with the poller, or takes over a registration it still has.
/// `likely_registered` says which to try first; a wrong guess costs one more system call
/// (epoll answers `EEXIST` or `ENOENT`).
pub(crate) fn register_fd(
    reg: &Registry,
    fd: &mut SourceFd<'_>,
    token: Token,
    interest: Interest,
    likely_registered: bool,
) -> std::io::Result<()> {
    if likely_registered {
        match reg.reregister(fd, token, interest) {
            Err(e) if e.raw_os_error() == Some(ENOENT) => reg.register(fd, token, interest),
            r => r,
        }
    } else {
        match reg.register(fd, token, interest) {
            Err(e) if e.raw_os_error() == Some(EEXIST) => reg.reregister(fd, token, interest),
            r => r,
        }
    }
}

/// What a poll event says: (readable, writable, closed). A closed or failed handle is
/// readable (a read then finds the end or the error). The usual event, an open handle's,
/// is told in a few tests; the others are read out of line.
#[inline]
fn readiness(e: &mio::event::Event) -> (bool, bool, bool) {
    if e.is_error() || e.is_read_closed() {
        return closed_readiness(e);
    }
    (
        e.is_readable(),
        e.is_writable() || e.is_write_closed(),
        false,
    )
}

/// [`readiness`] of a closed or failed handle.
#[cold]
#[inline(never)]
fn closed_readiness(e: &mio::event::Event) -> (bool, bool, bool) {
    (
        true,
        e.is_writable() || e.is_write_closed() || e.is_error(),
        true,
    )
}

impl Kernel {
    /// How many times this kernel has polled for I/O. Two equal readings bracket code
    /// during which no readiness was taken in and no I/O handler ran: what a program
    /// learned from a socket in between (that it was quiet, say) is as fresh as the
    /// current timeslice.
    pub fn poll_count(&self) -> u64 {
        self.io.polls
    }

    /// Watches `fd` for reading in the active session: while it is readable, `event` is
    /// dispatched in every timeslice with `ARG0` = the fd, `ARG1` = [`Mode::Read`], then
    /// `args` (POE's `select_read`). Watching an fd the session already watches only
    /// resumes it. The fd keeps the session alive until the watcher is removed.
    pub fn select_read(
        &mut self,
        fd: &impl AsRawFd,
        event: &str,
        args: impl IntoArgs,
    ) -> Result<()> {
        self.select_add(fd.as_raw_fd(), Mode::Read, event, args.into_args())
    }

    /// Watches `fd` for writing (POE's `select_write`).
    pub fn select_write(
        &mut self,
        fd: &impl AsRawFd,
        event: &str,
        args: impl IntoArgs,
    ) -> Result<()> {
        self.select_add(fd.as_raw_fd(), Mode::Write, event, args.into_args())
    }

    /// Stops watching `fd` for reading (POE's `select_read(FH)`).
    pub fn select_read_clear(&mut self, fd: &impl AsRawFd) -> Result<()> {
        self.select_remove(fd.as_raw_fd(), Mode::Read)
    }

    /// Stops watching `fd` for writing (POE's `select_write(FH)`).
    pub fn select_write_clear(&mut self, fd: &impl AsRawFd) -> Result<()> {
        self.select_remove(fd.as_raw_fd(), Mode::Write)
    }

    /// Pauses the read watcher without releasing it (POE's `select_pause_read`); returns
    /// whether the fd is watched for reading.
    pub fn select_pause_read(&mut self, fd: &impl AsRawFd) -> Result<bool> {
        self.select_pause(fd.as_raw_fd(), Mode::Read, true)
    }

    /// Resumes a paused read watcher (POE's `select_resume_read`).
    pub fn select_resume_read(&mut self, fd: &impl AsRawFd) -> Result<bool> {
        self.select_pause(fd.as_raw_fd(), Mode::Read, false)
    }

    /// Pauses the write watcher (POE's `select_pause_write`).
    pub fn select_pause_write(&mut self, fd: &impl AsRawFd) -> Result<bool> {
        self.select_pause(fd.as_raw_fd(), Mode::Write, true)
    }

    /// Resumes a paused write watcher (POE's `select_resume_write`).
    pub fn select_resume_write(&mut self, fd: &impl AsRawFd) -> Result<bool> {
        self.select_pause(fd.as_raw_fd(), Mode::Write, false)
    }

    fn select_add(&mut self, fd: RawFd, mode: Mode, event: &str, args: Args) -> Result<()> {
        let me = self.active.session;
        if me.is_kernel() {
            return Err(Error::NoActiveSession);
        }
        if event.is_empty() {
            return Err(Error::InvalidArgument("empty event name"));
        }
        let ev = self.intern(event);
        let key = match self.io.by_fd.get(&fd) {
            Some(&k) => {
                if self.io.fds[k].session != me {
                    return Err(Error::HandleInUse);
                }
                k
            }
            None => {
                self.io.next_gen = (self.io.next_gen + 1) & super::token::GEN_MASK;
                let k = self.io.fds.insert(FdRec {
                    fd,
                    session: me,
                    gen: self.io.next_gen,
                    read: None,
                    write: None,
                    registered: None,
                });
                self.io.by_fd.insert(fd, k);
                self.ref_inc(me);
                self.handles_add(me, 1);
                k
            }
        };
        let rec = &mut self.io.fds[key];
        let slot = match mode {
            Mode::Read => &mut rec.read,
            Mode::Write => &mut rec.write,
        };
        match slot {
            // Already watched: only resume, keep the event and args (as POE does).
            Some(w) => w.paused = false,
            None => {
                *slot = Some(Watcher {
                    event: ev,
                    args,
                    paused: false,
                })
            }
        }
        self.io.sync(key).map_err(Error::Io)
    }

    fn select_remove(&mut self, fd: RawFd, mode: Mode) -> Result<()> {
        let me = self.active.session;
        let Some(&key) = self.io.by_fd.get(&fd) else {
            return Ok(());
        };
        if self.io.fds[key].session != me {
            return Err(Error::NotOwner);
        }
        let rec = &mut self.io.fds[key];
        match mode {
            Mode::Read => rec.read = None,
            Mode::Write => rec.write = None,
        }
        // The fd may already be closed; deregistering it then fails harmlessly.
        let _ = self.io.sync(key);
        let rec = &self.io.fds[key];
        if rec.read.is_none() && rec.write.is_none() {
            self.io.fds.remove(key);
            self.io.by_fd.remove(&fd);
            self.handles_add(me, -1);
            self.ref_dec(me);
        }
        Ok(())
    }

    fn select_pause(&mut self, fd: RawFd, mode: Mode, paused: bool) -> Result<bool> {
        let Some(&key) = self.io.by_fd.get(&fd) else {
            return Ok(false);
        };
        let rec = &mut self.io.fds[key];
        let w = match mode {
            Mode::Read => rec.read.as_mut(),
            Mode::Write => rec.write.as_mut(),
        };
        let Some(w) = w else { return Ok(false) };
        w.paused = paused;
        self.io.sync(key).map_err(Error::Io)?;
        Ok(true)
    }

    pub(crate) fn io_clear_session(&mut self, id: SessionId) {
        let keys: Vec<usize> = self
            .io
            .fds
            .iter()
            .filter(|(_, r)| r.session == id)
            .map(|(k, _)| k)
            .collect();
        for k in keys {
            let rec = &mut self.io.fds[k];
            rec.read = None;
            rec.write = None;
            let _ = self.io.sync(k);
            let fd = self.io.fds.remove(k).fd;
            self.io.by_fd.remove(&fd);
        }
    }

    /// Polls for readiness and dispatches watchers: every readable one, then every
    /// writable one, then re-arms what was dispatched. Out of line: inlined, it takes
    /// registers from the timeslice's dispatch of due events, which runs without it when
    /// nothing is registered.
    #[inline(never)]
    pub(crate) fn poll_io(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.io.polls += 1;
        if let Err(e) = self.io.poll.poll(&mut self.io.events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::Io(e));
            }
        }
        if self.io.events.is_empty() {
            self.wheels_dispatch();
            return Ok(());
        }
        // Wheels' readiness, what a poll reports almost always, is noted straight from the
        // poll's list, in order, as long as only wheels are named: noting it touches the
        // wheel table alone. From the first event of another kind on (a signal, a post from
        // another thread, a raw watcher, whose handling may run handlers), the rest of the
        // list is copied and handled below, in order.
        let mut noted = 0;
        let mut rest = false;
        {
            let Kernel { io, wheels, .. } = &mut *self;
            for e in io.events.iter() {
                let Target::Wheel { key, gen, which } = token::decode(e.token()) else {
                    rest = true;
                    break;
                };
                let (r, w, closed) = readiness(e);
                wheels.note_event(key, gen, which, r, w, closed);
                noted += 1;
            }
        }
        if !rest {
            self.wheels_dispatch();
            return Ok(());
        }
        // One reused list of (token, readable, writable, closed): no allocation per poll.
        let mut ready = std::mem::take(&mut self.io.ready);
        ready.clear();
        ready.extend(self.io.events.iter().skip(noted).map(|e| {
            let (r, w, closed) = readiness(e);
            (e.token(), r, w, closed)
        }));
        // Raw watchers' passes run only when one of them was ready.
        let mut any_raw = false;
        for &(t, r, w, closed) in &ready {
            match token::decode(t) {
                Target::Signal(index) => self.os_signal_ready(index),
                Target::Wheel { key, gen, which } => {
                    self.wheels.note_event(key, gen, which, r, w, closed)
                }
                Target::Watcher { .. } => any_raw = true,
                Target::Poster => self.drain_posts_woken(),
            }
        }
        if any_raw {
            self.watchers_dispatch(&ready);
        }
        self.io.ready = ready;
        self.wheels_dispatch();
        Ok(())
    }

    /// The raw watchers' part of a poll's events (all of them are in `ready`: the list
    /// starts at the first event that did not name a wheel): POE's read pass, then its write pass, then
    /// each watched handle's registration brought up to date.
    fn watchers_dispatch(&mut self, ready: &[(Token, bool, bool, bool)]) {
        let is_raw = |t: Token| matches!(token::decode(t), Target::Watcher { .. });
        for mode in [Mode::Read, Mode::Write] {
            for &(token, r, w, _) in ready.iter().filter(|e| is_raw(e.0)) {
                let want = match mode {
                    Mode::Read => r,
                    Mode::Write => w,
                };
                if want {
                    self.dispatch_watcher(token, mode);
                }
            }
        }
        for &(t, ..) in ready {
            let Target::Watcher { key, gen } = token::decode(t) else {
                continue;
            };
            if self
                .io
                .fds
                .get(key)
                .is_some_and(|r| r.gen == gen && r.registered.is_some())
            {
                let _ = self.io.sync(key);
            }
        }
    }

    fn dispatch_watcher(&mut self, t: Token, mode: Mode) {
        let Target::Watcher { key, gen } = token::decode(t) else {
            return;
        };
        let Some(rec) = self.io.fds.get(key) else {
            return;
        };
        if rec.gen != gen {
            return;
        }
        let w = match mode {
            Mode::Read => rec.read.as_ref(),
            Mode::Write => rec.write.as_ref(),
        };
        let Some(w) = w.filter(|w| !w.paused) else {
            return;
        };
        let (sid, fd, ev) = (rec.session, rec.fd, w.event);
        let mut a = args_of((fd, mode));
        a.extend(&w.args);
        let Some(skey) = self.key_of(sid) else { return };
        let _ = self.dispatch(skey, sid, sid, ev, a, ev, Location::caller(), Kind::Normal);
    }
}
