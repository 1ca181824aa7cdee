//! Signals: soft signals between sessions, OS signals through the loop, DIE, CHLD.
//!
//! A signal goes to a session and its descendants (to every session when sent to the
//! kernel); `DIE` also goes to the ancestors. Watchers are dispatched deepest first. A
//! terminal signal (`QUIT INT KILL TERM HUP IDLE DIE`) that no watcher handled with
//! [`Kernel::sig_handled`] stops every session it touched; a nonmaskable one (`ZOMBIE`,
//! `UIDESTROY`) stops them regardless.
//!
//! OS signals are caught by `signal-hook` only while some session watches them, written to
//! a pipe that the poller watches, and queued as ordinary signals to the kernel, so they
//! are dispatched in order with every other event; two arrivals are two events. While no
//! session in the process watches a signal whose default action ends the process, that
//! default action is taken, as it would be under POE.

use super::session::{SessionId, KERNEL};
use super::{args_of, EventId, ItemKind, Kernel, Kind, EV_DIE, EV_IDLE, EV_NONE, EV_ZOMBIE};
use crate::error::{Error, Result};
use crate::value::{Args, IntoArgs};
use mio::net::UnixStream;
use mio::Interest;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One OS signal this kernel catches: signal-hook writes a byte per arrival to `reader`.
struct OsSignal {
    num: i32,
    reader: UnixStream,
    id: signal_hook::SigId,
    /// Whether this kernel holds a process-wide vote against the signal's default action.
    holds_default: bool,
}

#[derive(Default)]
pub(crate) struct SignalState {
    watchers: HashMap<EventId, BTreeMap<SessionId, (EventId, Args)>>,
    handled: u32,
    os: Vec<OsSignal>,
    /// `sig_child` watches: per child, each watching session's event (POE lets every
    /// session watch the same child).
    child_watch: HashMap<i32, BTreeMap<SessionId, (EventId, Args)>>,
    /// Children left to the kernel ([`super::children::ChildGuard`]): reaped when they
    /// exit unless a `sig_child` watch waits for them.
    pub(crate) orphans: Vec<i32>,
}

impl Drop for SignalState {
    fn drop(&mut self) {
        for s in self.os.drain(..) {
            signal_hook::low_level::unregister(s.id);
            if s.holds_default {
                release_default(s.num);
            }
        }
    }
}

/// Signals whose default action ends the process. While no kernel in the process watches
/// one of them, signal-hook performs that default action, as a process without POE would.
fn default_terminates(n: i32) -> bool {
    use signal_hook::consts::*;
    matches!(
        n,
        SIGINT | SIGTERM | SIGHUP | SIGQUIT | SIGUSR1 | SIGUSR2 | SIGALRM
    )
}

/// Per signal number: the flag signal-hook reads ("take the default action") and how many
/// kernels in the process watch the signal.
static DEFAULTS: Mutex<Vec<(i32, Arc<AtomicBool>, usize)>> = Mutex::new(Vec::new());

fn hold_default(n: i32) -> std::io::Result<()> {
    let mut d = DEFAULTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = d.iter_mut().find(|e| e.0 == n) {
        e.2 += 1;
        e.1.store(false, Ordering::SeqCst);
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register_conditional_default(n, Arc::clone(&flag))?;
    d.push((n, flag, 1));
    Ok(())
}

fn release_default(n: i32) {
    let mut d = DEFAULTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = d.iter_mut().find(|e| e.0 == n) {
        e.2 = e.2.saturating_sub(1);
        if e.2 == 0 {
            e.1.store(true, Ordering::SeqCst);
        }
    }
}

impl SignalState {
    pub(crate) fn child_watches(&self) -> usize {
        self.child_watch.values().map(BTreeMap::len).sum()
    }
}

fn os_signal_number(name: &str) -> Option<i32> {
    use signal_hook::consts::*;
    Some(match name {
        "INT" => SIGINT,
        "TERM" => SIGTERM,
        "HUP" => SIGHUP,
        "QUIT" => SIGQUIT,
        "USR1" => SIGUSR1,
        "USR2" => SIGUSR2,
        "CHLD" | "CLD" => SIGCHLD,
        "PIPE" => SIGPIPE,
        "ALRM" => SIGALRM,
        "WINCH" => SIGWINCH,
        "CONT" => SIGCONT,
        "TSTP" => SIGTSTP,
        _ => return None,
    })
}

fn os_signal_name(n: i32) -> &'static str {
    use signal_hook::consts::*;
    match n {
        SIGINT => "INT",
        SIGTERM => "TERM",
        SIGHUP => "HUP",
        SIGQUIT => "QUIT",
        SIGUSR1 => "USR1",
        SIGUSR2 => "USR2",
        SIGCHLD => "CHLD",
        SIGPIPE => "PIPE",
        SIGALRM => "ALRM",
        SIGWINCH => "WINCH",
        SIGCONT => "CONT",
        SIGTSTP => "TSTP",
        _ => "UNKNOWN",
    }
}

fn canonical(name: &str) -> &str {
    if name == "CLD" {
        "CHLD"
    } else {
        name
    }
}

fn is_terminal(name: &str) -> bool {
    matches!(
        name,
        "QUIT" | "INT" | "KILL" | "TERM" | "HUP" | "IDLE" | "DIE"
    )
}

fn is_nonmaskable(name: &str) -> bool {
    matches!(name, "ZOMBIE" | "UIDESTROY")
}

impl Kernel {
    /// Watches signal `name` in the active session: when it arrives, `event` is dispatched
    /// with `ARG0` = the signal name, then the signal's own arguments, then `args` (POE's
    /// `sig`). Re-registering replaces. Watching does not keep the session alive.
    pub fn sig(&mut self, name: &str, event: &str, args: impl IntoArgs) -> Result<()> {
        let me = self.active.session;
        if me.is_kernel() {
            return Err(Error::NoActiveSession);
        }
        if name.is_empty() || event.is_empty() {
            return Err(Error::InvalidArgument("empty signal or event name"));
        }
        let name = canonical(name);
        if let Some(n) = os_signal_number(name) {
            self.os_signal_watch(n)?;
        }
        let sig = self.intern(name);
        let ev = self.intern(event);
        self.signals
            .watchers
            .entry(sig)
            .or_default()
            .insert(me, (ev, args.into_args()));
        Ok(())
    }

    /// Stops watching signal `name` in the active session (POE's `sig(NAME)`).
    pub fn sig_clear(&mut self, name: &str) -> Result<()> {
        let me = self.active.session;
        if me.is_kernel() {
            return Err(Error::NoActiveSession);
        }
        if let Some(sig) = self.names.get(canonical(name)) {
            if let Some(w) = self.signals.watchers.get_mut(&sig) {
                w.remove(&me);
                if w.is_empty() {
                    self.signals.watchers.remove(&sig);
                }
            }
            self.os_signal_unwatched(sig);
        }
        Ok(())
    }

    /// Marks the signal being dispatched as handled, so a terminal signal stops no one
    /// (POE's `sig_handled`). A handler's return value never handles a signal.
    pub fn sig_handled(&mut self) {
        self.signals.handled += 1;
    }

    /// Sends signal `name` to a session and its descendants, or to every session when
    /// `dest` is [`KERNEL`] (POE's `signal`). It is queued like a post.
    #[track_caller]
    pub fn signal(
        &mut self,
        dest: impl super::session::Designator,
        name: &str,
        args: impl IntoArgs,
    ) -> Result<()> {
        let caller = Location::caller();
        let dest = dest.resolve(self).ok_or(Error::NoSuchSession)?;
        if name.is_empty() {
            return Err(Error::InvalidArgument("empty signal name"));
        }
        let sig = self.intern(canonical(name));
        let t = self.now_fifo();
        let sender = self.active.session;
        self.enqueue(
            ItemKind::Signal,
            dest,
            sender,
            sig,
            args.into_args(),
            t,
            caller,
        );
        Ok(())
    }

    /// Watches child process `pid`: when it exits, `event` gets `ARG0` = "CHLD", `ARG1` =
    /// pid, `ARG2` = wait status, then `args` (POE's `sig_child`). The watch keeps the
    /// session alive until it fires.
    pub fn sig_child(&mut self, pid: u32, event: &str, args: impl IntoArgs) -> Result<()> {
        let me = self.active.session;
        if me.is_kernel() {
            return Err(Error::NoActiveSession);
        }
        let pid = i32::try_from(pid).map_err(|_| Error::InvalidArgument("pid out of range"))?;
        self.os_signal_watch(signal_hook::consts::SIGCHLD)?;
        let ev = self.intern(event);
        let replaced = self
            .signals
            .child_watch
            .entry(pid)
            .or_default()
            .insert(me, (ev, args.into_args()))
            .is_some();
        if !replaced {
            self.ref_inc(me);
        }
        // A child may already have exited before we watched.
        self.reap_children();
        Ok(())
    }

    /// Stops the active session watching child process `pid` (POE's `sig_child(PID)`).
    pub fn sig_child_clear(&mut self, pid: u32) -> Result<()> {
        let me = self.active.session;
        let Ok(pid) = i32::try_from(pid) else {
            return Ok(());
        };
        let Some(w) = self.signals.child_watch.get_mut(&pid) else {
            return Ok(());
        };
        if w.remove(&me).is_some() {
            if w.is_empty() {
                self.signals.child_watch.remove(&pid);
            }
            self.ref_dec(me);
        }
        Ok(())
    }

    pub(crate) fn os_signal_watch(&mut self, n: i32) -> Result<()> {
        if let Some(s) = self.signals.os.iter_mut().find(|s| s.num == n) {
            if !s.holds_default && default_terminates(n) {
                hold_default(n)?;
                s.holds_default = true;
            }
            return Ok(());
        }
        if self.signals.os.len() >= super::token::MAX_SIGNALS {
            return Err(Error::InvalidArgument("too many OS signals watched"));
        }
        let (reader, writer) = std::os::unix::net::UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        let mut reader = UnixStream::from_std(reader);
        let token = super::token::signal(self.signals.os.len());
        self.io
            .registry()
            .register(&mut reader, token, Interest::READABLE)?;
        self.io.signal_registered = true;
        let id = signal_hook::low_level::pipe::register(n, writer)?;
        let holds_default = default_terminates(n);
        if holds_default {
            hold_default(n)?;
        }
        self.signals.os.push(OsSignal {
            num: n,
            reader,
            id,
            holds_default,
        });
        Ok(())
    }

    /// After a watcher of signal `sig` went away: if nobody in this kernel watches it any
    /// more, give up this kernel's vote against the default action.
    fn os_signal_unwatched(&mut self, sig: EventId) {
        if self
            .signals
            .watchers
            .get(&sig)
            .is_some_and(|w| !w.is_empty())
        {
            return;
        }
        let Some(n) = os_signal_number(self.event_name(sig)) else {
            return;
        };
        if let Some(s) = self.signals.os.iter_mut().find(|s| s.num == n) {
            if s.holds_default {
                s.holds_default = false;
                release_default(n);
            }
        }
    }

    /// A signal pipe is readable: one signal per byte.
    pub(crate) fn os_signal_ready(&mut self, idx: usize) {
        let Some(s) = self.signals.os.get_mut(idx) else {
            return;
        };
        let n = s.num;
        let mut count = 0usize;
        let mut buf = [0u8; 64];
        loop {
            match s.reader.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => count += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        if n == signal_hook::consts::SIGCHLD {
            if count > 0 {
                self.reap_children();
            }
            return;
        }
        let name = os_signal_name(n);
        for _ in 0..count {
            log::debug!("OS signal {name}");
            let watched = self
                .names
                .get(name)
                .and_then(|s| self.signals.watchers.get(&s))
                .is_some_and(|w| !w.is_empty());
            if watched {
                let _ = self.signal(KERNEL, name, ());
            }
        }
    }

    fn reap_children(&mut self) {
        let chld_watched = self
            .names
            .get("CHLD")
            .and_then(|s| self.signals.watchers.get(&s))
            .is_some_and(|w| !w.is_empty());
        if !chld_watched && self.signals.child_watch.is_empty() {
            self.reap_orphans();
            return;
        }
        use rustix::process::{wait, waitpid, Pid, WaitOptions};
        if chld_watched {
            // POE reaps every child, in any process group (`waitpid(-1)`; rustix's
            // `waitpid(None)` is only our own group): one CHLD broadcast per exit.
            loop {
                match wait(WaitOptions::NOHANG) {
                    Ok(Some((pid, status))) => {
                        self.child_exited(pid.as_raw_nonzero().get(), status.as_raw(), true)
                    }
                    Ok(None) => break,
                    Err(_) => {
                        // No children at all: nobody watched can still exit.
                        self.drop_child_watches(self.signals.child_watch.keys().copied().collect());
                        break;
                    }
                }
            }
        } else {
            // Reap only the children someone waits for; leave the rest to their owners.
            let pids: Vec<i32> = self.signals.child_watch.keys().copied().collect();
            let mut not_ours = Vec::new();
            for pid in pids {
                let Some(p) = Pid::from_raw(pid) else {
                    continue;
                };
                match waitpid(Some(p), WaitOptions::NOHANG) {
                    Ok(Some((_, status))) => self.child_exited(pid, status.as_raw(), false),
                    Ok(None) => {}
                    Err(_) => not_ours.push(pid),
                }
            }
            self.drop_child_watches(not_ours);
        }
        self.reap_orphans();
    }

    /// Reaps the children left to the kernel that have exited, except those a `sig_child`
    /// watch still waits for (the watch reaps them and reports the status).
    pub(crate) fn reap_orphans(&mut self) {
        if self.signals.orphans.is_empty() {
            return;
        }
        use rustix::process::{waitpid, Pid, WaitOptions};
        let watch = &self.signals.child_watch;
        self.signals.orphans.retain(|&pid| {
            if watch.contains_key(&pid) {
                return true;
            }
            let Some(p) = Pid::from_raw(pid) else {
                return false;
            };
            // Still running: keep waiting. Exited (reaped now) or not ours: done.
            matches!(waitpid(Some(p), WaitOptions::NOHANG), Ok(None))
        });
    }

    /// A watched or reaped child exited: its `sig_child` watcher gets the event, and with
    /// `broadcast` every `sig(CHLD)` watcher too.
    fn child_exited(&mut self, pid: i32, status: i32, broadcast: bool) {
        for (s, (ev, args)) in self.signals.child_watch.remove(&pid).unwrap_or_default() {
            let mut a = args_of(("CHLD".to_owned(), pid as u32, status));
            a.extend(&args);
            let t = self.now_fifo();
            self.enqueue(ItemKind::Post, s, KERNEL, ev, a, t, Location::caller());
            self.ref_dec(s);
        }
        if broadcast {
            let _ = self.signal(KERNEL, "CHLD", (pid as u32, status));
        }
    }

    /// Watches of processes that are not (or no longer) our children can never fire: they
    /// stop holding their sessions, so the kernel can go idle (POE: rt23181).
    fn drop_child_watches(&mut self, pids: Vec<i32>) {
        for pid in pids {
            for s in self
                .signals
                .child_watch
                .remove(&pid)
                .unwrap_or_default()
                .into_keys()
            {
                self.ref_dec(s);
            }
        }
    }

    pub(crate) fn signals_clear_session(&mut self, id: SessionId) {
        let mut emptied = Vec::new();
        self.signals.watchers.retain(|&sig, w| {
            if w.remove(&id).is_some() && w.is_empty() {
                emptied.push(sig);
            }
            !w.is_empty()
        });
        for sig in emptied {
            self.os_signal_unwatched(sig);
        }
        self.signals.child_watch.retain(|_, w| {
            w.remove(&id);
            !w.is_empty()
        });
    }

    /// Dispatches one signal item: POE's `_dispatch_signal_event`.
    pub(crate) fn dispatch_signal(&mut self, dest: SessionId, sig: EventId, args: Args) {
        let name = self.event_name(sig).to_owned();
        let mut targets = self.bfs(dest);
        if sig == EV_DIE {
            let mut p = self.key_of(dest).map(|k| self.sessions[k].parent);
            while let Some(pid) = p {
                if pid.is_kernel() {
                    break;
                }
                targets.insert(0, pid);
                p = self.key_of(pid).map(|k| self.sessions[k].parent);
            }
        }
        let saved_handled = std::mem::replace(&mut self.signals.handled, 0);
        let kind = if sig == EV_DIE {
            Kind::SigDie
        } else {
            Kind::Signal
        };
        let caller = Location::caller();
        let mut touched = Vec::with_capacity(targets.len());
        for &t in targets.iter().rev() {
            touched.push(t);
            if t.is_kernel() {
                if sig == EV_IDLE && self.queue.is_empty() && self.io.watched_fds() == 0 {
                    let now = self.now_fifo();
                    self.enqueue(
                        ItemKind::Signal,
                        KERNEL,
                        KERNEL,
                        EV_ZOMBIE,
                        Args::new(),
                        now,
                        caller,
                    );
                }
                continue;
            }
            let Some((ev, wargs)) = self
                .signals
                .watchers
                .get(&sig)
                .and_then(|w| w.get(&t))
                .cloned()
            else {
                continue;
            };
            let Some(key) = self.key_of(t) else { continue };
            let mut a = args_of((name.clone(),));
            a.extend(&args);
            a.extend(&wargs);
            let _ = self.dispatch(key, t, KERNEL, ev, a, EV_NONE, caller, kind);
        }
        let handled = self.signals.handled > 0;
        self.signals.handled = saved_handled;
        if is_nonmaskable(&name) || (is_terminal(&name) && !handled) {
            for t in touched {
                if !t.is_kernel() && self.session_exists(t) {
                    self.stop_session(t);
                }
            }
        }
        if sig == EV_DIE && !handled {
            let die = args.opt::<super::DieInfo>(0);
            let msg = die.map(|d| d.error_str.clone()).unwrap_or_default();
            let at = die.map(|d| (d.dest_session, EventId::of(&d.event).name()));
            let mut exception = match (self.exception.take(), die) {
                (Some(prev), _) => crate::value::HandlerError::new(format!(
                    "{msg}Additional error thrown in handler for previous error:\n{}",
                    prev.message()
                )),
                // The failure itself, its source kept.
                (None, Some(d)) if d.error.message() == msg => d.error.clone(),
                (None, _) => crate::value::HandlerError::new(msg),
            };
            if let Some((session, event)) = at {
                exception = exception.at(session, event);
            }
            self.exception = Some(exception);
        }
    }
}
