//! `Run`: a child process with its stdio as events (POE's `POE::Wheel::Run`).

mod entry;
mod spawn;

pub use entry::{child_main, ChildFn};

use super::out_queue::OutQueue;
use super::{Wheel, WheelError, WheelHandle, WheelId};
use crate::error::{Error, Result};
use crate::filter::{ByteFilter, Filter, Line};
use crate::kernel::ChildGuard;
use crate::value::{Arg, IntoArgs};
use crate::{EventId, Kernel, Mode};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;

/// Bytes per read: `POE::Driver::SysRW`'s default block size.
const BLOCK_SIZE: usize = 65536;

/// What the child runs (POE's `Program`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// A program and its first arguments, started without a shell (POE's
    /// `Program => [...]`).
    Exec(Vec<OsString>),
    /// A command line for `/bin/sh -c` (POE's `Program => "string"`, which Perl's
    /// `exec` hands to the shell); `ProgramArgs` are appended, separated by spaces.
    Shell(String),
    /// An entry point of the current program, run by [`child_main`] in a new process
    /// (POE's `Program => sub {...}`).
    Code(String),
}

/// How the parent and the child are connected (POE's `Conduit`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Conduit {
    /// A pipe for each of stdin, stdout and stderr (POE's `pipe`, the default).
    #[default]
    Pipe,
    /// One UNIX socket pair for stdin and stdout, a pipe for stderr (POE's `socketpair`).
    Socketpair,
    /// A pseudo-terminal for stdin and stdout; stderr goes to it too (POE's `pty`).
    Pty,
    /// A pseudo-terminal for stdin and stdout, a pipe for stderr (POE's `pty-pipe`).
    PtyPipe,
}

impl std::str::FromStr for Conduit {
    type Err = Error;

    /// POE's conduit names: `pipe`, `socketpair`, `pty`, `pty-pipe`; `inet` is accepted
    /// as POE 1.370 treats it, as pipes.
    fn from_str(s: &str) -> Result<Conduit> {
        Ok(match s {
            "pipe" | "inet" => Conduit::Pipe,
            "socketpair" => Conduit::Socketpair,
            "pty" => Conduit::Pty,
            "pty-pipe" => Conduit::PtyPipe,
            _ => return Err(Error::InvalidArgument("unknown Conduit type")),
        })
    }
}

/// Where a redirected stdio handle goes (POE's `RedirectStdin`, `RedirectStdout`,
/// `RedirectStderr`, `RedirectOutput`): a file, opened for reading (stdin) or created and
/// truncated (output), or a descriptor the program already has.
#[derive(Debug)]
pub enum Redirect {
    /// A file by name.
    Path(PathBuf),
    /// An open descriptor (duplicated for the child).
    Fd(OwnedFd),
}

impl From<PathBuf> for Redirect {
    fn from(p: PathBuf) -> Redirect {
        Redirect::Path(p)
    }
}

impl From<&str> for Redirect {
    fn from(p: &str) -> Redirect {
        Redirect::Path(p.into())
    }
}

impl From<OwnedFd> for Redirect {
    fn from(fd: OwnedFd) -> Redirect {
        Redirect::Fd(fd)
    }
}

/// The events of a [`Run`] wheel, for [`Run::event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEvent {
    /// `StdinEvent`: all input has been written to the child.
    Stdin = 0,
    /// `StdoutEvent`: a record from the child's stdout.
    Stdout = 1,
    /// `StderrEvent`: a record from the child's stderr.
    Stderr = 2,
    /// `ErrorEvent`.
    Error = 3,
    /// `CloseEvent`: the child's output handles have all ended.
    Close = 4,
}

/// Builds a [`Run`] wheel; POE's constructor parameters as methods.
#[derive(Debug)]
#[must_use = "a builder does nothing until built"]
pub struct RunBuilder {
    program: Program,
    args: Vec<OsString>,
    conduit: Conduit,
    winsize: Option<[u16; 4]>,
    events: [Option<EventId>; 5],
    stdin_filter: Option<ByteFilter>,
    stdout_filter: Option<ByteFilter>,
    stderr_filter: Option<ByteFilter>,
    redirect_stdin: Option<Redirect>,
    redirect_stdout: Option<Redirect>,
    redirect_stderr: Option<Redirect>,
    redirect_output: Option<Redirect>,
    no_stdin: bool,
    no_setpgrp: bool,
    priority: i32,
    user: Option<u32>,
    group: Option<u32>,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
}

impl std::fmt::Debug for dyn Filter<Raw = Vec<u8>, Record = Vec<u8>> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.filter_type())
    }
}

impl Run {
    /// A wheel for `program`, started without a shell: `Program => [program, ...]`.
    pub fn program(program: impl Into<OsString>) -> RunBuilder {
        RunBuilder::new(Program::Exec(vec![program.into()]))
    }

    /// A wheel for a shell command line: `Program => "string"`.
    pub fn shell(command_line: impl Into<String>) -> RunBuilder {
        RunBuilder::new(Program::Shell(command_line.into()))
    }

    /// A wheel running the entry point `name` of the current program in a child process
    /// (`Program => sub {...}`); the program's `main` must call [`child_main`] first.
    pub fn code(name: impl Into<String>) -> RunBuilder {
        RunBuilder::new(Program::Code(name.into()))
    }
}

impl RunBuilder {
    /// A builder for `program`.
    pub fn new(program: Program) -> RunBuilder {
        RunBuilder {
            program,
            args: Vec::new(),
            conduit: Conduit::Pipe,
            winsize: None,
            events: [None; 5],
            stdin_filter: None,
            stdout_filter: None,
            stderr_filter: None,
            redirect_stdin: None,
            redirect_stdout: None,
            redirect_stderr: None,
            redirect_output: None,
            no_stdin: false,
            no_setpgrp: false,
            priority: 0,
            user: None,
            group: None,
            env: Vec::new(),
            cwd: None,
        }
    }

    /// Arguments for the program (POE's `ProgramArgs`).
    pub fn program_args<A: Into<OsString>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// How the parent and child are connected (POE's `Conduit`).
    pub fn conduit(mut self, c: Conduit) -> Self {
        self.conduit = c;
        self
    }

    /// The pty's size: rows, columns, and pixel width and height (POE's `Winsize`); for
    /// the pty conduits only.
    pub fn winsize(mut self, rows: u16, cols: u16, xpixel: u16, ypixel: u16) -> Self {
        self.winsize = Some([rows, cols, xpixel, ypixel]);
        self
    }

    /// Names one of the events.
    pub fn event(mut self, which: RunEvent, name: &str) -> Self {
        self.events[which as usize] = Some(EventId::of(name));
        self
    }

    /// `StdinEvent`: `ARG0` is the [`WheelId`]; all queued input has been written.
    pub fn stdin_event(self, name: &str) -> Self {
        self.event(RunEvent::Stdin, name)
    }

    /// `StdoutEvent`: `ARG0` is a record from the child's stdout (`Vec<u8>` with the
    /// byte filters), `ARG1` the [`WheelId`].
    pub fn stdout_event(self, name: &str) -> Self {
        self.event(RunEvent::Stdout, name)
    }

    /// `StderrEvent`: `ARG0` is a record from the child's stderr (`Vec<u8>`), `ARG1` the
    /// [`WheelId`].
    pub fn stderr_event(self, name: &str) -> Self {
        self.event(RunEvent::Stderr, name)
    }

    /// `ErrorEvent`: `ARG0` is the [`WheelError`] (operation `"read"` or `"write"`),
    /// `ARG1` the [`WheelId`], `ARG2` the handle's name (`String`: `"STDIN"`, `"STDOUT"`,
    /// `"STDERR"`).
    pub fn error_event(self, name: &str) -> Self {
        self.event(RunEvent::Error, name)
    }

    /// `CloseEvent`: `ARG0` is the [`WheelId`]; the child's output handles have all ended (its
    /// exit status comes through [`Kernel::sig_child`](crate::Kernel::sig_child)).
    pub fn close_event(self, name: &str) -> Self {
        self.event(RunEvent::Close, name)
    }

    /// One filter for stdin and stdout (POE's `StdioFilter`; default `Line` with `"\n"`).
    pub fn stdio_filter(
        mut self,
        f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static,
    ) -> Self {
        self.stdin_filter = Some(f.clone_boxed());
        self.stdout_filter = Some(Box::new(f));
        self
    }

    /// The filter for stdin (POE's `StdinFilter`).
    pub fn stdin_filter(
        mut self,
        f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static,
    ) -> Self {
        self.stdin_filter = Some(Box::new(f));
        self
    }

    /// The filter for stdout (POE's `StdoutFilter`).
    pub fn stdout_filter(
        mut self,
        f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static,
    ) -> Self {
        self.stdout_filter = Some(Box::new(f));
        self
    }

    /// The filter for stderr (POE's `StderrFilter`; default `Line` with `"\n"`).
    pub fn stderr_filter(
        mut self,
        f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static,
    ) -> Self {
        self.stderr_filter = Some(Box::new(f));
        self
    }

    /// The child's stdin comes from here (POE's `RedirectStdin`).
    pub fn redirect_stdin(mut self, r: impl Into<Redirect>) -> Self {
        self.redirect_stdin = Some(r.into());
        self
    }

    /// The child's stdout goes here (POE's `RedirectStdout`).
    pub fn redirect_stdout(mut self, r: impl Into<Redirect>) -> Self {
        self.redirect_stdout = Some(r.into());
        self
    }

    /// The child's stderr goes here (POE's `RedirectStderr`).
    pub fn redirect_stderr(mut self, r: impl Into<Redirect>) -> Self {
        self.redirect_stderr = Some(r.into());
        self
    }

    /// The child's stdout and stderr both go here (POE's `RedirectOutput`).
    pub fn redirect_output(mut self, r: impl Into<Redirect>) -> Self {
        self.redirect_output = Some(r.into());
        self
    }

    /// No stdin handle: the child inherits the parent's stdin (POE's `NoStdin`).
    pub fn no_stdin(mut self, on: bool) -> Self {
        self.no_stdin = on;
        self
    }

    /// Leaves the child in the parent's process group (POE's `NoSetPgrp`).
    pub fn no_setpgrp(mut self, on: bool) -> Self {
        self.no_setpgrp = on;
        self
    }

    /// Accepted for POE's `NoSetSid`, which has no effect in POE 1.370 either: a pty
    /// child always becomes a session leader.
    pub fn no_setsid(self, _on: bool) -> Self {
        self
    }

    /// Accepted for POE's `CloseOnCall`: the child never inherits descriptors other than
    /// its stdio, since Rust opens every descriptor close-on-exec.
    pub fn close_on_call(self, _on: bool) -> Self {
        self
    }

    /// A niceness delta for the child (POE's `Priority`).
    pub fn priority(mut self, delta: i32) -> Self {
        self.priority = delta;
        self
    }

    /// The child's user id (POE's `User`).
    pub fn user(mut self, uid: u32) -> Self {
        self.user = Some(uid);
        self
    }

    /// The child's group id (POE's `Group`).
    pub fn group(mut self, gid: u32) -> Self {
        self.group = Some(gid);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Removes an environment variable for the child.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env.push((key.into(), None));
        self
    }

    /// The child's working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Checks the options (POE's constructor croaks): an empty program, a redirection of
    /// a handle that also has an event, a redirection with a pty, a size without a pty.
    fn check(&self) -> Result<()> {
        let ev = |e: RunEvent| self.events[e as usize].is_some();
        match &self.program {
            Program::Exec(argv) if argv.is_empty() || argv[0].is_empty() => {
                return Err(Error::InvalidArgument("Run needs a Program"))
            }
            Program::Shell(s) | Program::Code(s) if s.is_empty() => {
                return Err(Error::InvalidArgument("Run needs a Program"))
            }
            _ => {}
        }
        if (self.redirect_stdin.is_some() && ev(RunEvent::Stdin))
            || ((self.redirect_stdout.is_some() || self.redirect_output.is_some())
                && ev(RunEvent::Stdout))
            || ((self.redirect_stderr.is_some() || self.redirect_output.is_some())
                && ev(RunEvent::Stderr))
        {
            return Err(Error::InvalidArgument(
                "Redirect* and *Event stdio options are mutually exclusive",
            ));
        }
        let pty = matches!(self.conduit, Conduit::Pty | Conduit::PtyPipe);
        if pty
            && (self.redirect_stdin.is_some()
                || self.redirect_stdout.is_some()
                || self.redirect_stderr.is_some()
                || self.redirect_output.is_some())
        {
            return Err(Error::InvalidArgument(
                "Redirection with pty conduit is unsupported",
            ));
        }
        if self.winsize.is_some() && !pty {
            return Err(Error::InvalidArgument(
                "Winsize can only be specified for a pty Conduit",
            ));
        }
        if self.conduit == Conduit::Pty && ev(RunEvent::Stderr) {
            return Err(Error::InvalidArgument(
                "StderrEvent cannot be used with the pty Conduit (stderr goes to the pty)",
            ));
        }
        Ok(())
    }

    /// Starts the child and puts the wheel into the kernel, owned by the active session.
    /// Fails for bad options; a child that cannot be started is an `ErrorEvent`.
    pub fn build(self, kernel: &mut Kernel) -> Result<WheelHandle> {
        self.check()?;
        let ev = |e: RunEvent| self.events[e as usize].is_some();
        let line = || -> ByteFilter { Box::new(Line::new()) };
        let pty = self.conduit == Conduit::Pty;
        let plan = spawn::Plan {
            want_stdin: !self.no_stdin && self.redirect_stdin.is_none(),
            want_stdout: ev(RunEvent::Stdout),
            want_stderr: ev(RunEvent::Stderr) && !pty,
            program: self.program,
            args: self.args,
            conduit: self.conduit,
            winsize: self.winsize,
            no_setpgrp: self.no_setpgrp,
            priority: self.priority,
            user: self.user,
            group: self.group,
            env: self.env,
            cwd: self.cwd,
            redirect_stdin: self.redirect_stdin,
            redirect_stdout: self.redirect_stdout,
            redirect_stderr: self.redirect_stderr,
            redirect_output: self.redirect_output,
        };
        // A pty carries stdin and stdout whenever the child has any I/O with the parent.
        let plan = spawn::Plan {
            want_stdout: plan.want_stdout
                || (matches!(plan.conduit, Conduit::Pty | Conduit::PtyPipe)
                    && (plan.want_stdin || plan.want_stderr)),
            ..plan
        };
        let (started, failure) = match spawn::spawn(&plan) {
            Ok(s) => (Some(s), None),
            Err((op, e)) => (None, Some(WheelError::io(op, &e))),
        };
        let guard = match &started {
            Some(s) => Some(kernel.adopt_child(s.pid)?),
            None => None,
        };
        let mut wheel = Run {
            pid: started.as_ref().map(|s| s.pid),
            guard,
            conduit: plan.conduit,
            events: self.events,
            stdin: None,
            stdout: None,
            stderr: None,
            closing: Vec::new(),
            active: 0,
            id_arg: None,
        };
        if let Some(s) = started {
            let stdin_filter = self.stdin_filter.unwrap_or_else(line);
            if s.shared_stdin || s.stdin.is_some() {
                wheel.stdin = Some(Stdin {
                    fd: s.stdin,
                    filter: stdin_filter,
                    out: OutQueue::default(),
                    octets: 0,
                    ready: false,
                    armed: false,
                    registered: false,
                });
            }
            let reader = |fd: OwnedFd, f: ByteFilter, name: &'static str| Reader {
                fd,
                filter: f,
                ready: false,
                open: true,
                paused: false,
                parse_pending: false,
                name,
            };
            if let Some(fd) = s.stdout {
                wheel.stdout = Some(reader(
                    fd,
                    self.stdout_filter.unwrap_or_else(line),
                    "STDOUT",
                ));
            }
            if let Some(fd) = s.stderr {
                wheel.stderr = Some(reader(
                    fd,
                    self.stderr_filter.unwrap_or_else(line),
                    "STDERR",
                ));
            }
            wheel.count_active();
        }
        let handle = kernel.wheel_insert(wheel)?;
        if let Some(e) = failure {
            let id = handle.id();
            if let Some(ev) = self.events[RunEvent::Error as usize] {
                kernel.yield_(ev.name().as_str(), (e, id, String::new()))?;
            }
            if let Some(ev) = self.events[RunEvent::Close as usize] {
                kernel.yield_(ev.name().as_str(), (id,))?;
            }
        }
        Ok(handle)
    }
}

/// A handle the child writes to: stdout or stderr.
struct Reader {
    fd: OwnedFd,
    filter: ByteFilter,
    /// The poller said readable and no read has said `WouldBlock` since.
    ready: bool,
    /// Not yet at end of file or failed.
    open: bool,
    paused: bool,
    /// Records may wait in the filter.
    parse_pending: bool,
    name: &'static str,
}

/// The handle the child reads: stdin.
struct Stdin {
    /// `None` when stdin goes through the stdout descriptor (pty, socketpair).
    fd: Option<OwnedFd>,
    filter: ByteFilter,
    out: OutQueue,
    octets: usize,
    ready: bool,
    /// May write in this timeslice (see [`Wheel::arm`]).
    armed: bool,
    registered: bool,
}

/// `Run`: a child process with its stdin, stdout and stderr as events (POE's
/// `POE::Wheel::Run`).
///
/// ```no_run
/// use reactor::wheel::{Run, RunEvent};
/// use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle, WheelId};
///
/// let mut kernel = Kernel::new()?;
/// kernel.create(
///     Session::new(None::<WheelHandle>)
///         .on("_start", |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
///             let w = Run::program("ls")
///                 .program_args(["-1", "/"])
///                 .stdout_event("got_line")
///                 .close_event("done")
///                 .build(ctx)?;
///             let pid = ctx.wheel_ref::<Run>(w.id()).and_then(Run::pid).ok_or("no child")?;
///             ctx.sig_child(pid, "reaped", ())?;
///             *ctx.heap() = Some(w);
///             Ok(())
///         })
///         .on("got_line", |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
///             println!("{}", String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?));
///             Ok(())
///         })
///         .on("done", |ctx: &mut Ctx<'_, Option<WheelHandle>>| *ctx.heap() = None)
///         .on("reaped", |_: &mut Ctx<'_, Option<WheelHandle>>| {}),
/// )?;
/// kernel.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Events
///
/// | event | arguments |
/// |---|---|
/// | `StdoutEvent`, `StderrEvent` | the record (`Vec<u8>`), the [`WheelId`] |
/// | `StdinEvent` (all input written) | the [`WheelId`] |
/// | `ErrorEvent` | a [`WheelError`] (operation, errno, message), the [`WheelId`], the handle's name (`"STDIN"`, `"STDOUT"`, `"STDERR"`, or `""` when the child could not be started) as a `String` |
/// | `CloseEvent` (every output handle that has an event reached its end) | the [`WheelId`] |
///
/// End of file on stdout or stderr is an `ErrorEvent` with operation `"read"` and errno 0,
/// as in POE; the `CloseEvent` follows once both have ended. A child that cannot be
/// started (no such program, not permitted) is an `ErrorEvent` with operation `"exec"`,
/// followed by the `CloseEvent`: one end for every wheel.
///
/// # The child's exit
///
/// As in POE, the wheel does not wait for the child: watch it with
/// [`Kernel::sig_child`] to get its exit status. When the wheel is dropped, the kernel
/// takes the child over ([`Kernel::adopt_child`]) and reaps it once it exits, so no child
/// is left a zombie, whether or not anyone watched it. Dropping the wheel closes the
/// parent's ends of the conduit (the child reads end of file, and a write to its stdout
/// fails); it does not kill the child.
///
/// # How POE's options map
///
/// - `Program => [argv]` is [`Run::program`] with [`RunBuilder::program_args`]; a
///   `Program => "string"` runs through `/bin/sh -c` as Perl's `exec(STRING)` does
///   ([`Run::shell`]); `Program => sub {...}` is [`Run::code`] (see [`child_main`]).
/// - `Conduit`: [`Conduit::Pipe`] (the default), [`Conduit::Socketpair`] (stdin and stdout
///   on one socket; POE 1.370 silently makes pipes), [`Conduit::Pty`] (stderr goes to the
///   pty too) and [`Conduit::PtyPipe`]. The pty is put in raw mode, as POE does, and the
///   child becomes a session leader with the pty as its controlling terminal.
/// - `NoSetPgrp`: by default the child gets its own process group (POE's `setpgrp`);
///   `NoSetSid` is accepted and, as in POE, has no effect.
/// - `Priority` is a niceness delta, applied by the parent right after the child starts
///   (POE applies it in the child before `exec`).
/// - `CloseOnCall`: every descriptor Rust opens is close-on-exec, so the child gets its
///   stdio and nothing else whether it is set or not.
/// - `User`/`Group` set the child's ids; when that is not permitted the child cannot
///   start, which is an `ErrorEvent`.
pub struct Run {
    pid: Option<u32>,
    /// Hands the child to the kernel's reaper when the wheel goes.
    #[allow(dead_code)]
    guard: Option<ChildGuard>,
    conduit: Conduit,
    events: [Option<EventId>; 5],
    stdin: Option<Stdin>,
    stdout: Option<Reader>,
    stderr: Option<Reader>,
    /// Descriptors to deregister and close at the next dispatch (a shut-down stdin).
    closing: Vec<OwnedFd>,
    /// Output handles with an event that have not ended (POE's `IS_ACTIVE`).
    active: u8,
    id_arg: Option<Arg>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("pid", &self.pid)
            .field("conduit", &self.conduit)
            .finish_non_exhaustive()
    }
}

impl Run {
    /// The child's process id (POE's `PID`); `None` if it could not be started.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Queues records for the child's stdin, through the stdin filter (POE's `put`).
    /// Fails if stdin is closed or was never open.
    pub fn put<R: Into<Vec<u8>>>(&mut self, records: impl IntoIterator<Item = R>) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or(Error::InvalidArgument(
            "put() on a Run wheel without an open STDIN handle",
        ))?;
        for r in records {
            let (out, octets) = (&mut stdin.out, &mut stdin.octets);
            stdin
                .filter
                .put_one_with(r.into(), &mut |chunk: Vec<u8>| {
                    if !chunk.is_empty() {
                        *octets += chunk.len();
                        out.push_back(chunk);
                    }
                })
                .map_err(Error::Filter)?;
        }
        Ok(())
    }

    /// Queues one record for the child's stdin.
    pub fn put_one(&mut self, record: impl Into<Vec<u8>>) -> Result<()> {
        self.put([record.into()])
    }

    /// Closes the child's stdin: it reads end of file once queued input is dropped (POE's
    /// `shutdown_stdin`). On a socketpair only the direction to the child is shut; on a
    /// pty, as in POE, nothing is closed and further input is refused.
    pub fn shutdown_stdin(&mut self) {
        let Some(stdin) = self.stdin.take() else {
            return;
        };
        match (stdin.fd, self.conduit, &self.stdout) {
            (Some(fd), ..) => self.closing.push(fd),
            (None, Conduit::Socketpair, Some(out)) => {
                let _ = rustix::net::shutdown(&out.fd, rustix::net::Shutdown::Write);
            }
            _ => {}
        }
    }

    /// Sends the child a signal (POE's `kill`): a name such as `"TERM"` or `"SIGKILL"`,
    /// or a number such as `"9"`; POE's default is `"TERM"`.
    pub fn kill(&self, signal: &str) -> io::Result<()> {
        let pid = self
            .pid
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
            .ok_or_else(|| io::Error::from_raw_os_error(crate::errno::ESRCH))?;
        let sig = signal_number(signal)
            .and_then(rustix::process::Signal::from_named_raw)
            .ok_or_else(|| io::Error::from_raw_os_error(crate::errno::EINVAL))?;
        rustix::process::kill_process(pid, sig).map_err(io::Error::from)
    }

    /// Stops reading the child's stdout (POE's `pause_stdout`).
    pub fn pause_stdout(&mut self) {
        if let Some(r) = &mut self.stdout {
            r.paused = true;
        }
    }

    /// Resumes reading the child's stdout (POE's `resume_stdout`).
    pub fn resume_stdout(&mut self) {
        if let Some(r) = &mut self.stdout {
            r.paused = false;
        }
    }

    /// Stops reading the child's stderr (POE's `pause_stderr`).
    pub fn pause_stderr(&mut self) {
        if let Some(r) = &mut self.stderr {
            r.paused = true;
        }
    }

    /// Resumes reading the child's stderr (POE's `resume_stderr`).
    pub fn resume_stderr(&mut self) {
        if let Some(r) = &mut self.stderr {
            r.paused = false;
        }
    }

    /// Renames an event, or clears it with `None` (POE's `event`). A handle the wheel was
    /// built without (no event, so no handle) cannot be added later, as in POE.
    pub fn event(&mut self, which: RunEvent, name: Option<&str>) {
        self.events[which as usize] = name.map(EventId::of);
        self.count_active();
    }

    /// Octets of input waiting to be written (POE's `driver_out_octets`).
    #[doc(alias = "get_driver_out_octets")]
    pub fn driver_out_octets(&self) -> usize {
        self.stdin.as_ref().map_or(0, |s| s.octets)
    }

    /// Chunks of input waiting to be written (POE's `driver_out_messages`).
    #[doc(alias = "get_driver_out_messages")]
    pub fn driver_out_messages(&self) -> usize {
        self.stdin.as_ref().map_or(0, |s| s.out.len())
    }

    /// Whether the wheel has a stdin handle.
    pub fn has_stdin(&self) -> bool {
        self.stdin.is_some()
    }

    /// Whether the wheel has a stdout handle.
    pub fn has_stdout(&self) -> bool {
        self.stdout.is_some()
    }

    /// Whether the wheel has a stderr handle.
    pub fn has_stderr(&self) -> bool {
        self.stderr.is_some()
    }

    /// Replaces the stdin and stdout filters (POE's `set_stdio_filter`).
    pub fn set_stdio_filter(&mut self, f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static) {
        self.set_stdin_filter(f.clone_boxed());
        self.set_stdout_filter(f);
    }

    /// Replaces the stdin filter (POE's `set_stdin_filter`).
    pub fn set_stdin_filter(&mut self, f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static) {
        if let Some(s) = &mut self.stdin {
            s.filter = Box::new(f);
        }
    }

    /// Replaces the stdout filter; what the old one buffered goes to the new one (POE's
    /// `set_stdout_filter`).
    pub fn set_stdout_filter(&mut self, f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static) {
        if let Some(r) = &mut self.stdout {
            r.set_filter(Box::new(f));
        }
    }

    /// Replaces the stderr filter (POE's `set_stderr_filter`).
    pub fn set_stderr_filter(&mut self, f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static) {
        if let Some(r) = &mut self.stderr {
            r.set_filter(Box::new(f));
        }
    }

    /// The stdin filter (POE's `stdin_filter`).
    #[doc(alias = "get_stdin_filter")]
    pub fn stdin_filter(&self) -> Option<&dyn Filter<Raw = Vec<u8>, Record = Vec<u8>>> {
        self.stdin.as_ref().map(|s| &*s.filter)
    }

    /// The stdout filter (POE's `stdout_filter`).
    #[doc(alias = "get_stdout_filter")]
    pub fn stdout_filter(&self) -> Option<&dyn Filter<Raw = Vec<u8>, Record = Vec<u8>>> {
        self.stdout.as_ref().map(|s| &*s.filter)
    }

    /// The stderr filter (POE's `stderr_filter`).
    #[doc(alias = "get_stderr_filter")]
    pub fn stderr_filter(&self) -> Option<&dyn Filter<Raw = Vec<u8>, Record = Vec<u8>>> {
        self.stderr.as_ref().map(|s| &*s.filter)
    }

    fn ev(&self, which: RunEvent) -> Option<EventId> {
        self.events[which as usize]
    }

    /// POE's `IS_ACTIVE`: output handles with an event that are still open.
    fn count_active(&mut self) {
        let open = |r: &Option<Reader>, e: Option<EventId>| {
            u8::from(e.is_some() && r.as_ref().is_some_and(|r| r.open))
        };
        self.active = open(&self.stdout, self.ev(RunEvent::Stdout))
            + open(&self.stderr, self.ev(RunEvent::Stderr));
    }

    fn id_arg(&mut self, id: WheelId) -> Arg {
        Rc::clone(self.id_arg.get_or_insert_with(|| Rc::new(id)))
    }

    fn reader(&mut self, which: RunEvent) -> Option<&mut Reader> {
        match which {
            RunEvent::Stdout => self.stdout.as_mut(),
            _ => self.stderr.as_mut(),
        }
    }

    /// Whether a reader has a read or records for its event.
    fn reader_pending(&self, r: &Option<Reader>, which: RunEvent) -> bool {
        self.ev(which).is_some()
            && r.as_ref()
                .is_some_and(|r| !r.paused && ((r.ready && r.open) || r.parse_pending))
    }

    fn read_dispatch(kernel: &mut Kernel, id: WheelId) {
        let Some((at, owner)) = kernel.wheel_locate(id) else {
            return;
        };
        // A shut-down stdin: off the poller, then closed.
        if let Some((w, registry)) = kernel.wheel_and_registry::<Run>(id) {
            for fd in w.closing.drain(..) {
                let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
            }
        }
        for which in [RunEvent::Stdout, RunEvent::Stderr] {
            let mut buf = std::mem::take(kernel.wheel_read_buffer());
            let failure = {
                let Some(w) = kernel.wheel_at::<Run>(at) else {
                    *kernel.wheel_read_buffer() = buf;
                    return;
                };
                let Some(ev) = w.ev(which) else {
                    *kernel.wheel_read_buffer() = buf;
                    continue;
                };
                let _ = ev;
                match w.reader(which) {
                    Some(r) if r.ready && r.open && !r.paused => {
                        if buf.len() < BLOCK_SIZE {
                            buf.resize(BLOCK_SIZE, 0);
                        }
                        r.read_once(&mut buf[..BLOCK_SIZE])
                    }
                    _ => None,
                }
            };
            *kernel.wheel_read_buffer() = buf;
            if let Some(failure) = failure {
                Self::input_failed(kernel, id, at, owner, which, failure);
            }
            Self::deliver(kernel, id, at, owner, which);
        }
    }

    /// A read ended the handle: the error event (end of file included), then the close
    /// event once no handle with an event is left.
    fn input_failed(
        kernel: &mut Kernel,
        id: WheelId,
        at: crate::kernel::wheels::WheelAt,
        owner: crate::SessionId,
        which: RunEvent,
        failure: WheelError,
    ) {
        let Some(w) = kernel.wheel_at::<Run>(at) else {
            return;
        };
        let Some(r) = w.reader(which) else {
            return;
        };
        let name = r.name;
        let was_counted = w.ev(which).is_some();
        if let Some(r) = w.reader(which) {
            r.open = false;
            r.ready = false;
        }
        if was_counted {
            w.active = w.active.saturating_sub(1);
        }
        let closed = was_counted && w.active == 0;
        let (err, close) = (w.ev(RunEvent::Error), w.ev(RunEvent::Close));
        if let Some(ev) = err {
            kernel.wheel_call(owner, ev, (failure, id, name.to_owned()).into_args());
        }
        if closed {
            if let Some(ev) = close {
                kernel.wheel_call(owner, ev, (id,).into_args());
            }
        }
    }

    /// Hands the records waiting in a reader's filter to its event, one at a time: a
    /// handler may pause, rename or drop the wheel between two.
    fn deliver(
        kernel: &mut Kernel,
        id: WheelId,
        at: crate::kernel::wheels::WheelAt,
        owner: crate::SessionId,
        which: RunEvent,
    ) {
        loop {
            let Some(w) = kernel.wheel_at::<Run>(at) else {
                return;
            };
            let Some(ev) = w.ev(which) else {
                return;
            };
            let id_arg = w.id_arg(id);
            let Some(r) = w.reader(which) else {
                return;
            };
            if !r.parse_pending || r.paused {
                return;
            }
            let mut got = Vec::new();
            match r.filter.get_one_with(&mut |rec| got.push(rec)) {
                Ok(0) => {
                    r.parse_pending = false;
                    return;
                }
                Ok(_) => {
                    for rec in got {
                        let args = kernel.pooled_args2(Rc::new(rec), Rc::clone(&id_arg));
                        kernel.wheel_call(owner, ev, args);
                    }
                }
                Err(e) => {
                    r.parse_pending = false;
                    let name = r.name;
                    if let Some(err) = w.ev(RunEvent::Error) {
                        let args = (WheelError::filter("read", e), id, name.to_owned());
                        kernel.wheel_call(owner, err, args.into_args());
                    }
                    return;
                }
            }
        }
    }

    fn write_dispatch(kernel: &mut Kernel, id: WheelId) {
        let Some((at, owner)) = kernel.wheel_locate(id) else {
            return;
        };
        let Some(w) = kernel.wheel_at::<Run>(at) else {
            return;
        };
        let (result, emptied) = {
            let Run { stdin, stdout, .. } = &mut *w;
            let Some(Stdin {
                fd,
                out,
                octets,
                ready,
                armed,
                ..
            }) = stdin.as_mut()
            else {
                return;
            };
            let fd = match (fd.as_ref(), stdout.as_ref()) {
                (Some(fd), _) => fd,
                (None, Some(r)) => &r.fd,
                (None, None) => return,
            };
            if !*armed || out.is_empty() {
                return;
            }
            *armed = false;
            let r = write_out(fd, out, octets, ready);
            let emptied = out.is_empty();
            (r, emptied)
        };
        let error = result.err();
        if error.is_some() {
            // POE stops watching the handle; what was queued cannot be written.
            w.shutdown_stdin();
        }
        let (err_ev, stdin_ev) = (w.ev(RunEvent::Error), w.ev(RunEvent::Stdin));
        if let (Some(e), Some(ev)) = (error, err_ev) {
            kernel.wheel_call(owner, ev, (e, id, "STDIN".to_owned()).into_args());
        } else if let (true, Some(ev)) = (emptied, stdin_ev) {
            kernel.wheel_call(owner, ev, (id,).into_args());
        }
    }
}

/// Writes queued input until it is all out or the handle is full.
fn write_out(
    fd: &OwnedFd,
    out: &mut OutQueue,
    octets: &mut usize,
    ready: &mut bool,
) -> std::result::Result<(), WheelError> {
    while let Some(front) = out.front_mut() {
        match rustix::io::write(fd, front) {
            Ok(n) => {
                *octets -= n;
                if n == front.len() {
                    out.pop_front();
                } else {
                    front.drain(..n);
                    *ready = false;
                    return Ok(());
                }
            }
            Err(rustix::io::Errno::AGAIN) => {
                *ready = false;
                return Ok(());
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(WheelError::io("write", &io::Error::from(e))),
        }
    }
    Ok(())
}

impl Reader {
    /// One read (POE's driver reads once per dispatch): `Some` when the handle ended.
    fn read_once(&mut self, buf: &mut [u8]) -> Option<WheelError> {
        match rustix::io::read(&self.fd, &mut *buf) {
            Ok(0) => Some(WheelError::eof()),
            Ok(n) => match self.filter.get_one_start_chunk(buf[..n].to_vec()) {
                Ok(()) => {
                    self.parse_pending = true;
                    None
                }
                Err(e) => {
                    self.parse_pending = true;
                    Some(WheelError::filter("read", e))
                }
            },
            Err(rustix::io::Errno::AGAIN) => {
                self.ready = false;
                None
            }
            Err(rustix::io::Errno::INTR) => None,
            Err(e) => Some(WheelError::io("read", &io::Error::from(e))),
        }
    }

    fn set_filter(&mut self, f: ByteFilter) {
        let pending = self.filter.get_pending();
        self.filter = f;
        if let Some(chunks) = pending {
            let _ = self.filter.get_one_start(chunks);
            self.parse_pending = true;
        }
    }
}

/// A signal by name (`"TERM"`, `"SIGTERM"`) or number (`"15"`).
fn signal_number(s: &str) -> Option<i32> {
    use signal_hook::consts::*;
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let name = s.strip_prefix("SIG").unwrap_or(s);
    Some(match name {
        "" | "TERM" => SIGTERM,
        "KILL" => SIGKILL,
        "INT" => SIGINT,
        "HUP" => SIGHUP,
        "QUIT" => SIGQUIT,
        "USR1" => SIGUSR1,
        "USR2" => SIGUSR2,
        "ALRM" => SIGALRM,
        "STOP" => SIGSTOP,
        "CONT" => SIGCONT,
        "TSTP" => SIGTSTP,
        "PIPE" => SIGPIPE,
        "WINCH" => SIGWINCH,
        "ABRT" => SIGABRT,
        _ => return None,
    })
}

impl Wheel for Run {
    fn register(&mut self, registry: &Registry, tokens: [Token; 2]) -> io::Result<()> {
        // Stdout and stderr share the first token: a readable edge on it makes both try a
        // read, and the one with nothing says `WouldBlock`. Stdin has the second, or
        // shares the stdout descriptor (pty, socketpair) and its registration.
        let shared = self.stdin.as_ref().is_some_and(|s| s.fd.is_none());
        if let Some(r) = &self.stdout {
            let interest = if shared {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.register(&mut SourceFd(&r.fd.as_raw_fd()), tokens[0], interest)?;
        }
        if let Some(r) = &self.stderr {
            registry.register(
                &mut SourceFd(&r.fd.as_raw_fd()),
                tokens[0],
                Interest::READABLE,
            )?;
        }
        if let Some(s) = &mut self.stdin {
            if let Some(fd) = &s.fd {
                registry.register(
                    &mut SourceFd(&fd.as_raw_fd()),
                    tokens[1],
                    Interest::WRITABLE,
                )?;
            }
            s.registered = true;
        }
        Ok(())
    }

    fn deregister(&mut self, registry: &Registry) {
        for r in [&self.stdout, &self.stderr].into_iter().flatten() {
            let _ = registry.deregister(&mut SourceFd(&r.fd.as_raw_fd()));
        }
        if let Some(Stdin { fd: Some(fd), .. }) = &self.stdin {
            let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
        for fd in self.closing.drain(..) {
            let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
    }

    fn note_ready(&mut self, which: usize, readable: bool, writable: bool) {
        if which == 0 && readable {
            for r in [&mut self.stdout, &mut self.stderr].into_iter().flatten() {
                r.ready = true;
            }
        }
        if writable {
            if let Some(s) = &mut self.stdin {
                s.ready = true;
            }
        }
    }

    fn note_closed(&mut self, which: usize) {
        self.note_ready(which, which == 0, false);
    }

    fn holds_session(&self) -> bool {
        // POE: the wheel's select watchers keep the session, stdin's while it is open.
        self.stdin.is_some()
            || (self.ev(RunEvent::Stdout).is_some() && self.stdout.as_ref().is_some_and(|r| r.open))
            || (self.ev(RunEvent::Stderr).is_some() && self.stderr.as_ref().is_some_and(|r| r.open))
            || !self.closing.is_empty()
    }

    fn pending(&self) -> (bool, bool) {
        let read = self.reader_pending(&self.stdout, RunEvent::Stdout)
            || self.reader_pending(&self.stderr, RunEvent::Stderr)
            || !self.closing.is_empty();
        let write = self
            .stdin
            .as_ref()
            .is_some_and(|s| s.ready && !s.out.is_empty());
        (read, write)
    }

    fn arm(&mut self) {
        if let Some(s) = &mut self.stdin {
            s.armed = !s.out.is_empty();
        }
    }

    fn dispatch(kernel: &mut Kernel, id: WheelId, mode: Mode) {
        match mode {
            Mode::Read => Self::read_dispatch(kernel, id),
            Mode::Write => Self::write_dispatch(kernel, id),
        }
    }
}
