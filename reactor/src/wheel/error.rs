//! What a wheel reports when an operation fails: [`WheelError`].

use crate::filter::FilterError;
use std::fmt;
use std::io;
use std::sync::Arc;

/// A failed wheel operation, as `ARG0` of a wheel's error event (`ReadWrite`'s
/// `ErrorEvent`, `SocketFactory`'s `FailureEvent`, `ListenAccept`'s and `Udp`'s
/// `ErrorEvent`; `ARG1` is the wheel id) and of the TCP components' error callbacks.
///
/// POE passes the same facts as three arguments, `($operation, $errnum, $errstr)`:
///
/// | POE | here |
/// |---|---|
/// | `$_[ARG0]`, the operation | [`operation`](WheelError::operation): `"read"`, `"write"`, `"connect"`, `"accept"`, `"socket"`, `"bind"`, `"listen"`, `"resolve"`, `"recv"`, `"send"` |
/// | `$_[ARG1]`, `$!` as a number (0 at end of file) | [`errno`](WheelError::errno), comparable with [`crate::errno`] |
/// | `$_[ARG2]`, `$!` as text (`""` at end of file) | [`message`](WheelError::message) |
/// | (none) | [`kind`](WheelError::kind): the [`io::ErrorKind`] ([`io::ErrorKind::UnexpectedEof`] at end of file) |
///
/// ```
/// # use reactor::wheel::WheelError;
/// # use reactor::{Ctx, HandlerError};
/// fn got_error(ctx: &mut Ctx<'_, ()>) -> Result<(), HandlerError> {
///     let e = ctx.arg::<WheelError>(0)?;
///     if e.is_eof() {
///         println!("the peer closed the connection");
///     } else {
///         println!("{} error {}: {}", e.operation, e.errno, e.message);
///     }
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WheelError {
    /// What the wheel was doing.
    pub operation: &'static str,
    /// The errno (Linux numbering); 0 at end of file.
    pub errno: i32,
    /// The kind of I/O error.
    pub kind: io::ErrorKind,
    /// The error as POE's `$!` gives it ("Connection refused", without Rust's
    /// " (os error 111)"); empty at end of file.
    pub message: String,
    /// The filter's own error when the filter refused the input (errno `EINVAL`): a line
    /// over `MaxLength` ([`FilterError::LineTooLong`]), a buffer over `MaxBuffer`
    /// ([`FilterError::BufferTooLarge`]), ...
    pub filter: Option<Arc<FilterError>>,
}

/// Two errors are equal when what POE reports of them is (operation, errno, message) and
/// their kinds are.
impl PartialEq for WheelError {
    fn eq(&self, other: &Self) -> bool {
        (self.operation, self.errno, self.kind, &self.message)
            == (other.operation, other.errno, other.kind, &other.message)
    }
}

impl Eq for WheelError {}

impl WheelError {
    /// `operation` failed with `e`.
    pub fn io(operation: &'static str, e: &io::Error) -> Self {
        WheelError {
            operation,
            errno: e.raw_os_error().unwrap_or(0),
            kind: e.kind(),
            message: super::errstr(e),
            filter: None,
        }
    }

    /// The filter refused what was read (POE's filters `die`): errno `EINVAL`.
    pub fn filter(operation: &'static str, e: FilterError) -> Self {
        WheelError {
            operation,
            errno: crate::errno::EINVAL,
            kind: io::ErrorKind::InvalidData,
            message: e.to_string(),
            filter: Some(Arc::new(e)),
        }
    }

    /// `operation` failed with errno `errno` and this message (a failure the wheel or
    /// component found itself, such as a connect timeout or a filter refusing input).
    pub fn new(operation: &'static str, errno: i32, message: impl Into<String>) -> Self {
        WheelError {
            operation,
            errno,
            kind: io::Error::from_raw_os_error(errno).kind(),
            message: message.into(),
            filter: None,
        }
    }

    /// A read found end of file: POE's `("read", 0, "")`.
    pub fn eof() -> Self {
        WheelError {
            operation: "read",
            errno: 0,
            kind: io::ErrorKind::UnexpectedEof,
            message: String::new(),
            filter: None,
        }
    }

    /// Whether this is end of file rather than an error.
    pub fn is_eof(&self) -> bool {
        self.errno == 0 && self.operation == "read"
    }
}

impl fmt::Display for WheelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_eof() {
            f.write_str("read: end of file")
        } else {
            write!(
                f,
                "{} error {}: {}",
                self.operation, self.errno, self.message
            )
        }
    }
}

impl std::error::Error for WheelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.filter
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::WheelError;
    use std::io;

    #[test]
    fn a_wheel_error_keeps_what_poe_reports() {
        let e = WheelError::io("connect", &io::Error::from_raw_os_error(111));
        assert_eq!((e.operation, e.errno), ("connect", 111));
        assert_eq!(e.kind, io::ErrorKind::ConnectionRefused);
        assert_eq!(e.message, "Connection refused");
        assert_eq!(e.to_string(), "connect error 111: Connection refused");
        assert!(!e.is_eof());
        let eof = WheelError::eof();
        assert!(eof.is_eof());
        assert_eq!((eof.errno, eof.message.as_str()), (0, ""));
        assert_eq!(
            WheelError::new("connect", 110, "Connection timed out").kind,
            io::ErrorKind::TimedOut
        );
    }
}
