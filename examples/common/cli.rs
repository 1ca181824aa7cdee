//! The examples' command lines, parsed with `lexopt`: `--help` (or `-h`) prints the usage
//! on standard output and exits 0; an unknown or malformed argument prints one line saying
//! what is wrong, and how to get help, on standard error and exits 2. Logs go through
//! `env_logger`, so `RUST_LOG=debug` shows the kernel's.
//!
//! An example includes it with `#[path = "common/cli.rs"] mod cli;`.
#![allow(dead_code)] // not every example uses every helper

pub use lexopt::prelude::*;
pub use lexopt::{Error, Parser};
use std::fmt::Display;
use std::process::exit;
use std::str::FromStr;

/// Starts logging, then parses the command line with `parse`, which reads arguments from
/// the parser and returns `Err(arg.unexpected())` for one it does not know. On a parse
/// error the process exits with status 2.
pub fn parse<T>(usage: &str, parse: impl FnOnce(&mut Parser) -> Result<T, Error>) -> T {
    env_logger::init();
    let mut parser = Parser::from_env();
    match parse(&mut parser) {
        Ok(t) => t,
        Err(e) => fail(usage, &e),
    }
}

/// For a program that takes no arguments: starts logging, answers `--help`, and refuses
/// anything else.
pub fn no_args(usage: &str) {
    parse(usage, |p| {
        if let Some(arg) = p.next()? {
            match arg {
                Short('h') | Long("help") => help(usage),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(())
    })
}

/// The usage on standard output, and exit 0: what `--help` does.
pub fn help(usage: &str) -> ! {
    println!("{}", usage.trim_end());
    exit(0)
}

/// The value of the option just read, parsed as a `T`: `--port abc` fails with
/// "invalid value 'abc' for --port: ...".
pub fn value<T>(parser: &mut Parser, option: &str) -> Result<T, Error>
where
    T: FromStr,
    T::Err: Display,
{
    let raw = parser.value()?;
    let text = raw.to_string_lossy();
    text.parse()
        .map_err(|e| Error::from(format!("invalid value '{text}' for {option}: {e}")))
}

/// A positional argument as text.
pub fn text(value: std::ffi::OsString) -> String {
    value.to_string_lossy().into_owned()
}

/// One line on standard error, and exit 2. lexopt's own messages put some values in Debug
/// quotes; these do not.
fn fail(usage: &str, e: &Error) -> ! {
    let program = std::env::args()
        .next()
        .and_then(|p| {
            std::path::Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "example".to_owned());
    let message = match e {
        Error::UnexpectedArgument(value) => {
            format!("unexpected argument '{}'", value.to_string_lossy())
        }
        Error::UnexpectedValue { option, value } => format!(
            "option '{option}' takes no value (got '{}')",
            value.to_string_lossy()
        ),
        Error::ParsingFailed { value, error } => format!("invalid value '{value}': {error}"),
        Error::NonUnicodeValue(value) => {
            format!("argument is not valid UTF-8: '{}'", value.to_string_lossy())
        }
        other => other.to_string(),
    };
    let synopsis = usage.lines().next().unwrap_or_default();
    eprintln!("{program}: {message}\n{synopsis}\nTry '{program} --help' for more.");
    exit(2)
}
