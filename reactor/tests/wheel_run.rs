//! Port of poe-test-loops `wheel_run.pm`: child processes through `Run`, over every
//! conduit, with the child as an external program and as code of this program.
//!
//! Each test session starts a child that reads `!`-terminated commands (`out X` answers
//! on stdout, `err X` on stderr, `pid` gives its pid, `bye` ends it), renames the wheel's
//! events (the first names would fail the test), watches the child with `sig_child`, and
//! walks a script of actions (a `put`, `pause_*`/`resume_*`, `kill`, `shutdown_stdin`) and
//! expected answers. It ends at the close event (or the child's exit, whichever comes
//! first) and checks then that no input waits, and at `_stop` that every `put` was
//! flushed once. The same assertions as upstream: response type and text, close, the
//! output counters, the flush count; the constructor's refusals; redirection to pipes;
//! no stdout/stderr handles without events, no stdin handle with `NoStdin`.
//!
//! What differs: the "string" child is the same Perl program run as `[perl, -we, ...]`,
//! and the "coderef" child is the same protocol written in Rust, run through
//! [`child_main`] (this test has its own `main` for that). POE alternates its filter with
//! one that has no `get_one`; every filter here has it. Of the constructor checks, "the
//! deprecated `Filter` cannot be mixed with `StdioFilter`" has no equivalent (there is no
//! `Filter` option); in its place, a `StderrEvent` with the pty conduit is refused (POE
//! ignores it with a warning) and a winsize without a pty (POE warns).

mod common;

use reactor::filter::Line;
use reactor::wheel::{child_main, Conduit, Run, RunBuilder, RunEvent};
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::rc::Rc;

const PERL_CHILD: &str = r#"
my $out = shift;
my $err = shift;
local $/ = q(!);
local $\ = q(!);
my $notify_eof_flag = 0;
select STDERR; $| = 1; select STDOUT; $| = 1;
my $eof_counter = 0;
OUTER: while (1) {
  $eof_counter++;
  CORE::exit if $eof_counter > 10;
  while (<STDIN>) {
    chomp;
    $eof_counter = 0;
    last OUTER if /^bye/;
    $notify_eof_flag = 1 if s/^notify eof/out/;
    print(STDOUT qq($out: $$)) if /^pid/;
    print(STDOUT qq($out: $_)) if s/^out //;
    print(STDERR qq($err: $_)) if s/^err //;
  }
}
if ($notify_eof_flag) {
  print(STDOUT qq($out: got eof));
  sleep 10;
}
CORE::exit 0
"#;

/// Reads `!`-terminated commands from stdin.
fn commands() -> impl Iterator<Item = String> {
    let mut input = std::io::stdin().lock();
    let mut pending = Vec::new();
    std::iter::from_fn(move || loop {
        if let Some(i) = pending.iter().position(|&b| b == b'!') {
            let cmd: Vec<u8> = pending.drain(..=i).collect();
            return Some(String::from_utf8_lossy(&cmd[..i]).into_owned());
        }
        let mut buf = [0u8; 4096];
        match input.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    })
}

fn say(to: &mut dyn Write, text: String) {
    let _ = to.write_all(format!("{text}!").as_bytes());
    let _ = to.flush();
}

/// The child program of upstream's coderef variant, in Rust.
fn rust_child(args: &[String]) -> i32 {
    let (out, err) = (&args[0], &args[1]);
    for cmd in commands() {
        if cmd.starts_with("bye") {
            break;
        }
        if cmd.starts_with("pid") {
            say(
                &mut std::io::stdout(),
                format!("{out}: {}", std::process::id()),
            );
        }
        if let Some(x) = cmd.strip_prefix("out ") {
            say(&mut std::io::stdout(), format!("{out}: {x}"));
        }
        if let Some(x) = cmd.strip_prefix("err ") {
            say(&mut std::io::stderr(), format!("{err}: {x}"));
        }
    }
    0
}

/// Upstream's `$shutdown_program`: reports the flag it was given once stdin ends.
fn shutdown_child(args: &[String]) -> i32 {
    let out = &args[0];
    let mut flag = String::from("0");
    for cmd in commands() {
        if let Some(f) = cmd.strip_prefix("flag ") {
            flag = f.to_owned();
        } else if let Some(x) = cmd.strip_prefix("out ") {
            say(&mut std::io::stdout(), format!("{out}: {x}"));
        }
    }
    say(&mut std::io::stdout(), format!("{out}: got eof {flag}"));
    std::thread::sleep(std::time::Duration::from_secs(1));
    0
}

/// Upstream's silent child: writes to its redirected stdout and stderr.
fn silent_child(_: &[String]) -> i32 {
    print!("CHILD:");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    eprint!("{}", line.trim_end());
    eprint!("DONE:");
    0
}

fn nothing(_: &[String]) -> i32 {
    0
}

#[derive(Clone, Copy)]
enum Child {
    Perl,
    Rust,
    Shutdown,
}

#[derive(Clone, Debug)]
enum Action {
    Put(&'static str),
    PauseStdout,
    ResumeStdout,
    PauseStderr,
    ResumeStderr,
    Kill,
    ShutdownStdin,
}

/// What comes back: an event, its text (`None`: the child's pid), its prefix.
#[derive(Clone, Debug)]
enum Expect {
    Out(&'static str, Option<&'static str>, &'static str),
    Close,
}

type Script = Vec<(Action, Option<Expect>)>;

#[derive(Default)]
struct Results {
    checks: usize,
    failures: Vec<String>,
    closed: Vec<String>,
}

impl Results {
    fn check(&mut self, ok: bool, what: String) {
        self.checks += 1;
        if !ok {
            self.failures.push(what);
        }
    }
}

struct Heap {
    label: String,
    wheel: Option<WheelHandle>,
    pid: u32,
    expected: VecDeque<(Action, Option<Expect>)>,
    flushes: usize,
    flushes_expected: usize,
    ignore_flushes: bool,
    results: Rc<RefCell<Results>>,
}

type C<'a> = Ctx<'a, Heap>;

fn builder(child: Child) -> RunBuilder {
    let me = std::process::id();
    let args = [format!("out{me}"), format!("err{me}")];
    match child {
        Child::Perl => Run::program("perl").program_args([
            "-we",
            &PERL_CHILD.split_whitespace().collect::<Vec<_>>().join(" "),
        ]),
        Child::Rust => Run::code("rust_child"),
        Child::Shutdown => Run::code("shutdown_child"),
    }
    .program_args(args)
}

fn perform(ctx: &mut C<'_>) -> Result<(), HandlerError> {
    loop {
        let Some((action, expect)) = ctx.heap().expected.front().cloned() else {
            return Ok(());
        };
        let id = ctx.heap().wheel.as_ref().ok_or("no wheel")?.id();
        let w = ctx.wheel_mut::<Run>(id).ok_or("wheel gone")?;
        match action {
            // As upstream: a put after shutdown_stdin fails, and that is ignored.
            Action::Put(text) => drop(w.put_one(text)),
            Action::PauseStdout => w.pause_stdout(),
            Action::ResumeStdout => w.resume_stdout(),
            Action::PauseStderr => w.pause_stderr(),
            Action::ResumeStderr => w.resume_stderr(),
            Action::Kill => w.kill("TERM")?,
            Action::ShutdownStdin => w.shutdown_stdin(),
        }
        if expect.is_some() {
            return Ok(());
        }
        ctx.heap().expected.pop_front();
    }
}

fn output(ctx: &mut C<'_>) -> Result<(), HandlerError> {
    let state = ctx.event().to_owned();
    let input = String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?;
    let h = ctx.heap();
    let Some((_, Some(expect))) = h.expected.front().cloned() else {
        let mut r = h.results.borrow_mut();
        r.check(false, format!("{}: unexpected {state} {input:?}", h.label));
        return Ok(());
    };
    let me = std::process::id();
    {
        let mut r = h.results.borrow_mut();
        match expect {
            Expect::Out(ty, text, prefix) => {
                let text = text.map_or(h.pid.to_string(), str::to_owned);
                r.check(
                    ty == state,
                    format!("{} response type: {state} != {ty}", h.label),
                );
                r.check(
                    input == format!("{prefix}{me}: {text}"),
                    format!("{} {state} response: {input:?}", h.label),
                );
            }
            Expect::Close => {
                r.check(
                    false,
                    format!("{}: {state} {input:?} where close was expected", h.label),
                );
                r.check(true, String::new());
            }
        }
    }
    ctx.heap().expected.pop_front();
    perform(ctx)
}

fn close(ctx: &mut C<'_>) -> Result<(), HandlerError> {
    let Some(id) = ctx.heap().wheel.as_ref().map(WheelHandle::id) else {
        return Ok(());
    };
    let (octets, messages) = ctx
        .wheel_ref::<Run>(id)
        .map(|w| (w.driver_out_octets(), w.driver_out_messages()))
        .unwrap_or_default();
    let h = ctx.heap();
    let is_close = matches!(h.expected.front(), Some((_, Some(Expect::Close))));
    let mut r = h.results.borrow_mut();
    r.check(
        is_close,
        format!("{} close: expected {:?}", h.label, h.expected.front()),
    );
    if !h.ignore_flushes {
        r.check(
            octets == 0,
            format!("{} driver_out_octets at close: {octets}", h.label),
        );
        r.check(
            messages == 0,
            format!("{} driver_out_messages at close: {messages}", h.label),
        );
    }
    r.closed.push(h.label.clone());
    drop(r);
    h.wheel = None;
    Ok(())
}

fn sigchld(ctx: &mut C<'_>) -> Result<(), HandlerError> {
    let pid = *ctx.arg::<u32>(1)?;
    if ctx.heap().wheel.is_some() && ctx.heap().pid == pid {
        // The child went before its output ended: that is the close.
        close(ctx)?;
    }
    Ok(())
}

fn nonexistent(ctx: &mut C<'_>) -> Result<(), HandlerError> {
    let (state, label) = (ctx.event().to_owned(), ctx.heap().label.clone());
    ctx.heap()
        .results
        .borrow_mut()
        .check(false, format!("{label}: {state} called"));
    Ok(())
}

fn test_session(
    k: &mut Kernel,
    results: &Rc<RefCell<Results>>,
    label: &str,
    child: Child,
    conduit: Option<Conduit>,
    script: Script,
    ignore_flushes: bool,
) {
    let flushes_expected = script
        .iter()
        .filter(|(a, e)| matches!(a, Action::Put(_)) && e.is_some())
        .count();
    let heap = Heap {
        label: label.to_owned(),
        wheel: None,
        pid: 0,
        expected: script.into(),
        flushes: 0,
        flushes_expected,
        ignore_flushes,
        results: Rc::clone(results),
    };
    k.create(
        Session::new(heap)
            .on(
                "_start",
                move |ctx: &mut C<'_>| -> Result<(), HandlerError> {
                    let pty = conduit == Some(Conduit::Pty);
                    let mut b = builder(child)
                        .stdio_filter(Line::with_literal("!")?)
                        .stdout_event("stdout_nonexistent")
                        .stdin_event("stdin_nonexistent")
                        .error_event("error_nonexistent")
                        .close_event("close_nonexistent");
                    if let Some(c) = conduit {
                        b = b.conduit(c);
                    }
                    if !pty {
                        b = b
                            .stderr_filter(Line::with_literal("!")?)
                            .stderr_event("stderr_nonexistent");
                    }
                    let handle = b.build(ctx)?;
                    let id = handle.id();
                    let w = ctx.wheel_mut::<Run>(id).ok_or("no wheel")?;
                    // Event changing.
                    w.event(RunEvent::Stdout, Some("stdout"));
                    if !pty {
                        w.event(RunEvent::Stderr, Some("stderr"));
                    }
                    w.event(RunEvent::Stdin, Some("stdin"));
                    w.event(RunEvent::Error, Some("error"));
                    w.event(RunEvent::Close, Some("close"));
                    let pid = w.pid().ok_or("the child did not start")?;
                    ctx.sig_child(pid, "sigchld", ())?;
                    let h = ctx.heap();
                    h.pid = pid;
                    h.wheel = Some(handle);
                    perform(ctx)
                },
            )
            .on("_stop", |ctx: &mut C<'_>| {
                let h = ctx.heap();
                // As upstream: "out delayed1" may be flushed apart from "out immediate2".
                if h.label == "string/pause_resume" && h.flushes == h.flushes_expected + 1 {
                    h.flushes_expected += 1;
                }
                if !h.ignore_flushes {
                    let (f, e) = (h.flushes, h.flushes_expected);
                    let what = format!("{} flush count: {f} != {e}", h.label);
                    h.results.borrow_mut().check(f == e, what);
                }
            })
            .on("stdin", |ctx: &mut C<'_>| ctx.heap().flushes += 1)
            .on("stdout", output)
            .on("stderr", output)
            .on("error", |_: &mut C<'_>| {})
            .on("close", close)
            .on("sigchld", sigchld)
            .on("stdout_nonexistent", nonexistent)
            .on("stderr_nonexistent", nonexistent)
            .on("stdin_nonexistent", nonexistent)
            .on("error_nonexistent", nonexistent)
            .on("close_nonexistent", nonexistent),
    )
    .unwrap();
}

fn out(text: &'static str) -> Option<Expect> {
    Some(Expect::Out("stdout", Some(text), "out"))
}

fn err_on(ty: &'static str, text: &'static str) -> Option<Expect> {
    Some(Expect::Out(ty, Some(text), "err"))
}

fn main() {
    child_main(&[
        ("rust_child", rust_child),
        ("shutdown_child", shutdown_child),
        ("silent_child", silent_child),
        ("nothing", nothing),
    ]);
    let _watchdog = common::timeout(60, "wheel_run");
    constructor_refusals();
    sessions();
    println!("wheel_run: ok");
}

/// Upstream's constructor session: options POE refuses are typed errors here.
fn constructor_refusals() {
    let mut k = Kernel::new().unwrap();
    k.create(Session::new(()).on("_start", |ctx: &mut Ctx<'_, ()>| {
        assert!(
            "wibble-magic-pipe".parse::<Conduit>().is_err(),
            "only valid conduits"
        );
        let needs_program = Run::program("").stdout_event("stdout_event").build(ctx);
        assert!(needs_program.is_err(), "Program is needed");
        let exclusive = Run::code("nothing")
            .stdout_event("stdout_nonexistent")
            .redirect_stdout("/non/existent")
            .build(ctx);
        assert!(
            exclusive.is_err(),
            "*Event and Redirect* are mutually exclusive"
        );
        let pty_stderr = Run::code("nothing")
            .conduit(Conduit::Pty)
            .stderr_event("stderr")
            .build(ctx);
        assert!(pty_stderr.is_err(), "no StderrEvent on a pty");
        let winsize = Run::code("nothing").winsize(25, 80, 720, 400).build(ctx);
        assert!(winsize.is_err(), "Winsize needs a pty");
    }))
    .unwrap();
    k.run().unwrap();
}

fn sessions() {
    let results: Rc<RefCell<Results>> = Rc::default();
    let mut k = Kernel::new().unwrap();
    let one_stream: Script = vec![
        (Action::Put("out test-out"), out("test-out")),
        (Action::Put("err test-err"), err_on("stdout", "test-err")), // std*out*
        (Action::Put("bye"), Some(Expect::Close)),
    ];
    let two_stream: Script = vec![
        (Action::Put("out test-out"), out("test-out")),
        (Action::Put("err test-err"), err_on("stderr", "test-err")),
        (Action::Put("bye"), Some(Expect::Close)),
    ];
    let pause_resume: Script = vec![
        (Action::Put("out init"), out("init")),
        (Action::PauseStdout, None),
        (Action::Put("out delayed1"), None),
        (
            Action::Put("err immediate1"),
            err_on("stderr", "immediate1"),
        ),
        (Action::PauseStderr, None),
        (Action::Put("err delayed2"), None),
        (Action::ResumeStdout, out("delayed1")),
        (Action::Put("out immediate2"), out("immediate2")),
        (Action::ResumeStderr, err_on("stderr", "delayed2")),
        (Action::Put("out immediate3"), out("immediate3")),
        (
            Action::Put("err immediate4"),
            err_on("stderr", "immediate4"),
        ),
        (Action::Put("bye"), Some(Expect::Close)),
    ];
    let killing: Script = vec![
        (Action::Put("out init"), out("init")),
        (Action::Put("pid"), Some(Expect::Out("stdout", None, "out"))),
        (Action::Kill, Some(Expect::Close)),
    ];
    let shutdown: Script = vec![
        (Action::Put("flag 1"), None),
        (Action::Put("out init"), out("init")),
        (Action::ShutdownStdin, None),
        (Action::Put("flag 2"), out("got eof 1")),
        (Action::Kill, Some(Expect::Close)),
    ];
    let r = &results;
    test_session(
        &mut k,
        r,
        "string/pause_resume",
        Child::Perl,
        None,
        pause_resume,
        false,
    );
    test_session(
        &mut k,
        r,
        "string/killing",
        Child::Perl,
        None,
        killing,
        false,
    );
    test_session(
        &mut k,
        r,
        "coderef/shutdown",
        Child::Shutdown,
        Some(Conduit::Pipe),
        shutdown,
        true,
    );
    for (name, child) in [("string", Child::Perl), ("coderef", Child::Rust)] {
        test_session(
            &mut k,
            r,
            &format!("{name}/default"),
            child,
            None,
            two_stream.clone(),
            false,
        );
        test_session(
            &mut k,
            r,
            &format!("{name}/pipe"),
            child,
            Some(Conduit::Pipe),
            two_stream.clone(),
            false,
        );
        test_session(
            &mut k,
            r,
            &format!("{name}/pty"),
            child,
            Some(Conduit::Pty),
            one_stream.clone(),
            false,
        );
        test_session(
            &mut k,
            r,
            &format!("{name}/pty-pipe"),
            child,
            Some(Conduit::PtyPipe),
            two_stream.clone(),
            false,
        );
        test_session(
            &mut k,
            r,
            &format!("{name}/socketpair"),
            child,
            Some(Conduit::Socketpair),
            two_stream.clone(),
            false,
        );
    }
    let silent = silent_session(&mut k);
    k.run().unwrap();
    let r = results.borrow();
    assert!(r.failures.is_empty(), "failed checks: {:#?}", r.failures);
    assert_eq!(r.closed.len(), 13, "sessions closed: {:?}", r.closed);
    // Per session: 2 checks a response, 3 at close, 1 flush count (unless ignored).
    assert!(r.checks >= 13 * 4, "only {} checks ran", r.checks);
    let s = silent.borrow();
    assert_eq!(s.stdout, "CHILD:PARENT:DONE:", "stdio/redirection");
    assert_eq!(
        s.handles,
        Some((false, false, true)),
        "no stdout/stderr without events; stdin kept"
    );
    assert_eq!(s.no_stdin, Some(false), "NoStdin discards stdin");
}

#[derive(Default)]
struct Silent {
    stdout: String,
    handles: Option<(bool, bool, bool)>,
    no_stdin: Option<bool>,
}

/// Upstream's silent session: the child's stdio redirected to pipes the test reads, and
/// wheels without events.
fn silent_session(k: &mut Kernel) -> Rc<RefCell<Silent>> {
    let seen: Rc<RefCell<Silent>> = Rc::default();
    let s = Rc::clone(&seen);
    let s2 = Rc::clone(&seen);
    type H = (Vec<WheelHandle>, Option<std::fs::File>);
    k.create(
        Session::new((Vec::new(), None) as H)
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, H>| -> Result<(), HandlerError> {
                    let (out_r, out_w) = reactor::pipe::one_way()?;
                    let (in_r, in_w) = reactor::pipe::one_way()?;
                    // The child's ends block, as a child's stdio does: O_NONBLOCK belongs
                    // to the open file, which every copy of the descriptor shares.
                    in_w.set_nonblocking(false)?;
                    out_r.set_nonblocking(false)?;
                    in_r.set_nonblocking(false)?;
                    out_w.set_nonblocking(false)?;
                    let mut in_w = std::fs::File::from(std::os::fd::OwnedFd::from(in_w));
                    let wheel = Run::code("silent_child")
                        .redirect_output(std::os::fd::OwnedFd::from(out_w))
                        .redirect_stdin(std::os::fd::OwnedFd::from(in_r))
                        .build(ctx)?;
                    in_w.write_all(b"PARENT:\n")?;
                    let pid = ctx
                        .wheel_ref::<Run>(wheel.id())
                        .and_then(Run::pid)
                        .ok_or("no pid")?;
                    ctx.sig_child(pid, "silent_sigchld", ())?;
                    let out_r = std::fs::File::from(std::os::fd::OwnedFd::from(out_r));
                    ctx.select_read(&out_r, "silent_got_stdout", ())?;
                    let no_stdio = Run::code("nothing").build(ctx)?;
                    {
                        let w = ctx.wheel_ref::<Run>(no_stdio.id()).ok_or("no wheel")?;
                        s.borrow_mut().handles =
                            Some((w.has_stdout(), w.has_stderr(), w.has_stdin()));
                        let pid = w.pid().ok_or("no pid")?;
                        ctx.sig_child(pid, "silent_sigchld", ())?;
                    }
                    let no_stdin = Run::code("nothing").no_stdin(true).build(ctx)?;
                    {
                        let w = ctx.wheel_ref::<Run>(no_stdin.id()).ok_or("no wheel")?;
                        s.borrow_mut().no_stdin = Some(w.has_stdin());
                        let pid = w.pid().ok_or("no pid")?;
                        ctx.sig_child(pid, "silent_sigchld", ())?;
                    }
                    let h = ctx.heap();
                    h.0.push(wheel);
                    h.1 = Some(out_r);
                    drop(in_w);
                    // The wheel without events keeps its stdin open: let it go.
                    drop(no_stdio);
                    Ok(())
                },
            )
            .on(
                "silent_got_stdout",
                move |ctx: &mut Ctx<'_, H>| -> Result<(), HandlerError> {
                    let mut buf = [0u8; 8192];
                    let n = ctx.heap().1.as_mut().ok_or("no pipe")?.read(&mut buf)?;
                    let mut s = s2.borrow_mut();
                    s.stdout.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if n == 0 || s.stdout.contains("DONE") {
                        let f = ctx.heap().1.take().ok_or("no pipe")?;
                        ctx.select_read_clear(&f)?;
                        ctx.heap().0.clear();
                    }
                    Ok(())
                },
            )
            .on("silent_sigchld", |_: &mut Ctx<'_, H>| {}),
    )
    .unwrap();
    seen
}
