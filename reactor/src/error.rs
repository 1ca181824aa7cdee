//! Typed failures of kernel calls, keeping POE's errno meanings.

use crate::errno::{EEXIST, EINVAL, EPERM, ESRCH};
use crate::value::{ArgError, HandlerError};
use std::fmt;
use std::io;

/// Why a kernel call failed. [`Error::errno`] gives the `$!` value POE sets in that case,
/// so ported error checks keep their meaning.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The session designator resolves to no live session (`ESRCH`).
    NoSuchSession,
    /// No such alias (`ESRCH`).
    NoSuchAlias,
    /// No such pending alarm or queue item (`ESRCH`).
    NoSuchAlarm,
    /// The alias belongs to another session (`EEXIST`).
    AliasInUse,
    /// The alarm or alias belongs to another session (`EPERM`).
    NotOwner,
    /// The session is not a child of the caller (`EPERM`).
    NotChild,
    /// The session's parent is already the kernel (`EPERM`).
    AlreadyDetached,
    /// The call needs an active session and none is running (`ESRCH`).
    NoActiveSession,
    /// An argument is invalid, e.g. an empty event name (`EINVAL`).
    InvalidArgument(&'static str),
    /// A session was created without a `_start` handler (`EINVAL`).
    NoStartState,
    /// A file descriptor is already watched in that mode by another session (`EEXIST`).
    HandleInUse,
    /// A `call`ed handler failed; the DIE signal has been queued for its session.
    Died(HandlerError),
    /// An unhandled exception ended `run()`: POE's `run()` dying with `$@`
    /// ([`HandlerError::message`]). It names the session and event that failed
    /// ([`HandlerError::session`], [`HandlerError::event`]), and so does its message.
    Exception(HandlerError),
    /// An argument had the wrong type or was missing.
    Arg(ArgError),
    /// An operating-system error.
    Io(io::Error),
    /// A filter refused data.
    Filter(crate::filter::FilterError),
}

impl Error {
    /// The POE `$!` value for this failure (Linux numbering).
    pub fn errno(&self) -> i32 {
        match self {
            Error::NoSuchSession
            | Error::NoSuchAlias
            | Error::NoSuchAlarm
            | Error::NoActiveSession => ESRCH,
            Error::AliasInUse | Error::HandleInUse => EEXIST,
            Error::NotOwner | Error::NotChild | Error::AlreadyDetached => EPERM,
            Error::InvalidArgument(_) | Error::NoStartState | Error::Arg(_) => EINVAL,
            Error::Died(_) | Error::Exception(_) => 0,
            Error::Io(e) => e.raw_os_error().unwrap_or(0),
            Error::Filter(_) => EINVAL,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSuchSession => f.write_str("no such session"),
            Error::NoSuchAlias => f.write_str("no such alias"),
            Error::NoSuchAlarm => f.write_str("no such alarm"),
            Error::AliasInUse => f.write_str("alias is in use by another session"),
            Error::NotOwner => f.write_str("belongs to another session"),
            Error::NotChild => f.write_str("session is not a child of the active session"),
            Error::AlreadyDetached => f.write_str("session is already a child of the kernel"),
            Error::NoActiveSession => f.write_str("no session is active"),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::NoStartState => f.write_str("session has no '_start' state"),
            Error::HandleInUse => {
                f.write_str("two sessions were caught watching the same file descriptor")
            }
            Error::Died(e) => write!(f, "handler died: {e}"),
            Error::Exception(e) => match (e.session(), e.event()) {
                (Some(session), Some(event)) => write!(
                    f,
                    "unhandled failure in session {session}, event '{event}': {}",
                    e.message()
                ),
                _ => f.write_str(e.message()),
            },
            Error::Arg(e) => e.fmt(f),
            Error::Io(e) => e.fmt(f),
            Error::Filter(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Arg(e) => Some(e),
            Error::Io(e) => Some(e),
            Error::Filter(e) => Some(e),
            Error::Died(e) | Error::Exception(e) => {
                e.source().map(|s| s as &(dyn std::error::Error + 'static))
            }
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<ArgError> for Error {
    fn from(e: ArgError) -> Self {
        Error::Arg(e)
    }
}

/// Shorthand for `Result<T, Error>`.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::Error;
    use crate::value::HandlerError;
    use std::error::Error as _;
    use std::io;

    #[test]
    fn a_failure_keeps_the_error_it_was_made_from() {
        let cause = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        let died = Error::Died(HandlerError::from(cause));
        assert_eq!(died.to_string(), "handler died: refused");
        let source = died.source().expect("the io error is the source");
        let io = source.downcast_ref::<io::Error>().expect("an io::Error");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
        assert!(Error::Died(HandlerError::new("plain")).source().is_none());
    }
}
