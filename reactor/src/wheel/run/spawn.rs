//! Starting the child: the conduit's descriptors, the command, and what the child is
//! given in place of POE's work between `fork` and `exec`.
//!
//! POE forks and then, in the child, calls `setpgrp` (or `setsid` and takes the pty as
//! its controlling terminal), adjusts the priority and the user and group, and redirects
//! stdio. Rust can run no code of ours in a forked child without `unsafe`, so each step is
//! done another way: `std::process::Command` redirects stdio, sets the process group and
//! the user and group ids; `pty-process` makes the child a session leader on its pty; the
//! priority is adjusted by the parent right after the child starts.

use super::entry::ENTRY_VAR;
use super::{Conduit, Program, Redirect};
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Everything the child is started with.
pub(super) struct Plan {
    pub program: Program,
    pub args: Vec<OsString>,
    pub conduit: Conduit,
    pub winsize: Option<[u16; 4]>,
    pub no_setpgrp: bool,
    pub priority: i32,
    pub user: Option<u32>,
    pub group: Option<u32>,
    pub env: Vec<(OsString, Option<OsString>)>,
    pub cwd: Option<std::path::PathBuf>,
    /// The parent keeps a handle on the child's stdin / stdout / stderr.
    pub want_stdin: bool,
    pub want_stdout: bool,
    pub want_stderr: bool,
    pub redirect_stdin: Option<Redirect>,
    pub redirect_stdout: Option<Redirect>,
    pub redirect_stderr: Option<Redirect>,
    /// POE's `RedirectOutput`: stdout and stderr to one place.
    pub redirect_output: Option<Redirect>,
}

/// The parent's ends of a started child's stdio.
pub(super) struct Started {
    pub pid: u32,
    /// Where input for the child is written; `None` with `NoStdin`, a redirected stdin,
    /// or when stdin shares the stdout descriptor (`shared_stdin`).
    pub stdin: Option<OwnedFd>,
    /// Stdin is written through the stdout descriptor (a pty or a socketpair).
    pub shared_stdin: bool,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Which step failed, with the error: "pipe", "open", "pty", "exec"...
pub(super) type SpawnError = (&'static str, io::Error);

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| ("pipe", e.into()))
}

fn nonblocking(fd: &OwnedFd) -> Result<(), SpawnError> {
    rustix::io::ioctl_fionbio(fd, true).map_err(|e| ("fcntl", e.into()))
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, SpawnError> {
    fd.try_clone().map_err(|e| ("dup", e))
}

/// A redirection as the child's descriptor: a file opened for reading (stdin) or
/// created and truncated for writing (POE's `<` and `>`), or a descriptor given.
fn redirect(r: &Redirect, write: bool) -> Result<OwnedFd, SpawnError> {
    match r {
        Redirect::Path(p) => {
            let f = if write {
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(p)
            } else {
                OpenOptions::new().read(true).open(p)
            };
            f.map(OwnedFd::from).map_err(|e| ("open", e))
        }
        Redirect::Fd(fd) => dup(fd),
    }
}

fn command(plan: &Plan) -> Result<Command, SpawnError> {
    let mut cmd = match &plan.program {
        Program::Exec(argv) => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
        Program::Shell(line) => {
            let mut c = Command::new("/bin/sh");
            let mut text = OsString::from(line);
            for a in &plan.args {
                text.push(" ");
                text.push(a);
            }
            c.arg("-c").arg(text);
            // The arguments went into the command line, as POE's `exec(SCALAR)` joins them.
            return Ok(finish(c, plan));
        }
        Program::Code(name) => {
            let exe = std::env::current_exe().map_err(|e| ("exec", e))?;
            let mut c = Command::new(exe);
            c.env(ENTRY_VAR, name);
            c
        }
    };
    cmd.args(&plan.args);
    Ok(finish(cmd, plan))
}

fn finish(mut cmd: Command, plan: &Plan) -> Command {
    for (k, v) in &plan.env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    if let Some(d) = &plan.cwd {
        cmd.current_dir(d);
    }
    if let Some(u) = plan.user {
        cmd.uid(u);
    }
    if let Some(g) = plan.group {
        cmd.gid(g);
    }
    cmd
}

/// Starts the child as `plan` says.
pub(super) fn spawn(plan: &Plan) -> Result<Started, SpawnError> {
    let mut cmd = command(plan)?;
    let mut started = Started {
        pid: 0,
        stdin: None,
        shared_stdin: false,
        stdout: None,
        stderr: None,
    };
    let any_io = plan.want_stdin || plan.want_stdout || plan.want_stderr;
    let pty = matches!(plan.conduit, Conduit::Pty | Conduit::PtyPipe) && any_io;

    // Redirections first: POE opens them before making any conduit.
    if let Some(r) = &plan.redirect_stdin {
        cmd.stdin(Stdio::from(redirect(r, false)?));
    }
    if let Some(r) = &plan.redirect_output {
        let fd = redirect(r, true)?;
        cmd.stderr(Stdio::from(dup(&fd)?));
        cmd.stdout(Stdio::from(fd));
    } else {
        if let Some(r) = &plan.redirect_stdout {
            cmd.stdout(Stdio::from(redirect(r, true)?));
        }
        if let Some(r) = &plan.redirect_stderr {
            cmd.stderr(Stdio::from(redirect(r, true)?));
        }
    }

    let child = if pty {
        let (master, pts) = pty_process::blocking::open().map_err(|e| ("pty", pty_error(e)))?;
        // Raw mode, as POE sets the slave: no echo, no line editing, bytes as written.
        let mut t = rustix::termios::tcgetattr(&pts).map_err(|e| ("pty", e.into()))?;
        t.make_raw();
        rustix::termios::tcsetattr(&pts, rustix::termios::OptionalActions::Now, &t)
            .map_err(|e| ("pty", e.into()))?;
        if let Some([rows, cols, x, y]) = plan.winsize {
            master
                .resize(pty_process::Size::new_with_pixel(rows, cols, x, y))
                .map_err(|e| ("pty", pty_error(e)))?;
        }
        // The child's stdio defaults to the pty: it becomes a session leader with the pty
        // as its controlling terminal.
        let mut pcmd = pty_process::blocking::Command::from(cmd);
        if plan.conduit == Conduit::PtyPipe && plan.want_stderr {
            let (r, w) = pipe()?;
            pcmd = pcmd.stderr(Stdio::from(w));
            started.stderr = Some(r);
        }
        let child = pcmd.spawn(pts).map_err(|e| ("exec", pty_error(e)))?;
        let master = OwnedFd::from(master);
        nonblocking(&master)?;
        started.stdout = Some(master);
        started.shared_stdin = true;
        child
    } else {
        if !plan.no_setpgrp {
            cmd.process_group(0);
        }
        if plan.conduit == Conduit::Socketpair && (plan.want_stdin || plan.want_stdout) {
            // One socket carries stdin and stdout; each direction can be shut down alone.
            let (mine, theirs) =
                std::os::unix::net::UnixStream::pair().map_err(|e| ("socketpair", e))?;
            let mine = OwnedFd::from(mine);
            let theirs = OwnedFd::from(theirs);
            if plan.want_stdin {
                cmd.stdin(Stdio::from(dup(&theirs)?));
            }
            if plan.want_stdout {
                cmd.stdout(Stdio::from(dup(&theirs)?));
            }
            nonblocking(&mine)?;
            if plan.want_stdout {
                started.stdout = Some(mine);
                started.shared_stdin = plan.want_stdin;
            } else {
                started.stdin = Some(mine);
            }
        } else {
            if plan.want_stdout {
                let (r, w) = pipe()?;
                cmd.stdout(Stdio::from(w));
                nonblocking(&r)?;
                started.stdout = Some(r);
            }
            if plan.want_stdin {
                let (r, w) = pipe()?;
                cmd.stdin(Stdio::from(r));
                nonblocking(&w)?;
                started.stdin = Some(w);
            }
        }
        if plan.want_stderr {
            let (r, w) = pipe()?;
            cmd.stderr(Stdio::from(w));
            nonblocking(&r)?;
            started.stderr = Some(r);
        }
        let child = cmd.spawn();
        // The child's ends go with the command: the parent holds only its own.
        drop(cmd);
        child.map_err(|e| ("exec", e))?
    };
    if let Some(e) = &started.stderr {
        nonblocking(e)?;
    }
    started.pid = child.id();
    // Dropping a `Child` neither waits nor kills; the kernel reaps it.
    drop(child);
    if plan.priority != 0 {
        // POE adjusts the priority in the child and fails quietly; here the parent does it
        // as soon as the child exists.
        if let Some(pid) = rustix::process::Pid::from_raw(started.pid as i32) {
            if let Ok(p) = rustix::process::getpriority_process(Some(pid)) {
                let _ = rustix::process::setpriority_process(Some(pid), p + plan.priority);
            }
        }
    }
    Ok(started)
}

fn pty_error(e: pty_process::Error) -> io::Error {
    #[allow(unreachable_patterns)]
    match e {
        pty_process::Error::Io(e) => e,
        pty_process::Error::Rustix(e) => e.into(),
        other => io::Error::other(other.to_string()),
    }
}
