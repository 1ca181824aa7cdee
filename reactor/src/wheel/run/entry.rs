//! Code run in a child process: POE's `Program => sub { ... }`.

use std::io::Write;

/// The environment variable that names the entry a child was started to run.
pub(super) const ENTRY_VAR: &str = "REACTOR_RUN_CHILD";

/// An entry point a child process can run: gets the wheel's `ProgramArgs`, returns the
/// exit status.
pub type ChildFn = fn(&[String]) -> i32;

/// Code run in a child process: POE's `Program => sub { ... }`.
///
/// POE forks and calls the code in the child. A forked child of a Rust program may only
/// do async-signal-safe work before it calls `exec` (another thread may have held the
/// allocator's lock when the process forked), so the code form here starts the current
/// program again and runs a named entry point in it: [`Run::code`](super::Run::code)
/// names the entry, and the program's `main` calls [`child_main`] first, which runs the
/// entry and exits when the process was started for one, and returns otherwise. The entry
/// runs in a fresh process with its stdio connected to the wheel, so it may do anything a
/// program may.
///
/// ```no_run
/// use std::io::Write;
///
/// fn shout(args: &[String]) -> i32 {
///     let mut line = String::new();
///     while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {
///         print!("{}", line.to_uppercase());
///         let _ = std::io::stdout().flush();
///         line.clear();
///     }
///     args.len() as i32
/// }
///
/// fn main() {
///     reactor::wheel::child_main(&[("shout", shout)]);
///     // ... the program proper: `Run::code("shout")` starts `shout` in a child.
/// }
/// ```
///
/// If this process was started by [`Run::code`](super::Run::code), runs the entry it
/// names and exits with its status (127 if no entry has that name); otherwise returns at
/// once. Call it first in `main`, before anything else runs.
pub fn child_main(entries: &[(&str, ChildFn)]) {
    let Some(name) = std::env::var_os(ENTRY_VAR) else {
        return;
    };
    // The entry's own children are not entries.
    std::env::remove_var(ENTRY_VAR);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = match entries
        .iter()
        .find(|(n, _)| std::ffi::OsStr::new(n) == name)
    {
        Some((_, f)) => f(&args),
        None => {
            eprintln!("no child entry named {name:?}");
            127
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(status);
}
