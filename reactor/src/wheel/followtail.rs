//! `FollowTail`: follows the end of a growing file, as `tail -f` does (POE's
//! `POE::Wheel::FollowTail`).

use super::{Wheel, WheelError, WheelHandle, WheelId};
use crate::errno::EPERM;
use crate::error::{Error, Result};
use crate::filter::{ByteFilter, Filter, Line};
use crate::kernel::wheels::WheelAt;
use crate::value::IntoArgs;
use crate::{EventId, Kernel, Mode, Seconds, SessionId};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, IsTerminal, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bytes per read (POE's `POE::Driver::SysRW` default).
const DEFAULT_BLOCK: usize = 65536;

/// How far before the end a tail starts without `Seek` or `SeekBack` (POE's default): it
/// reads from there to the end and throws the records away, so the first record it
/// delivers is a whole one.
const DEFAULT_SEEK_BACK: i64 = 4096;

/// The names of a FollowTail wheel's events, for [`FollowTail::event`] and
/// [`FollowTailBuilder::event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailEvent {
    /// `InputEvent` (required): `ARG0` = one record (`Vec<u8>`), `ARG1` = wheel id.
    Input,
    /// `ErrorEvent`: `ARG0` = the [`WheelError`] (operation `"read"`, `"stat"`, `"open"`
    /// or `"seek"`), `ARG1` = wheel id. The tail stops following after it.
    Error,
    /// `ResetEvent`: `ARG0` = wheel id. The file was rotated, truncated or (by name)
    /// appeared; the tail reads it from its start.
    Reset,
    /// `IdleEvent`: `ARG0` = wheel id. A poll found nothing new.
    Idle,
}

/// What POE compares between two polls to tell that the file was reset: `stat`'s device,
/// inode, link count, size and, for device files, device number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    dev: u64,
    ino: u64,
    nlink: u64,
    size: u64,
    rdev: u64,
    device: bool,
}

impl Stat {
    fn of(m: &Metadata) -> Stat {
        let t = m.file_type();
        Stat {
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
            size: m.size(),
            rdev: m.rdev(),
            device: t.is_block_device() || t.is_char_device(),
        }
    }
}

/// Whether the file went from `last` to `now` by a reset (POE's test): another inode or
/// file system, another device number (device files only), another link count, or a
/// smaller size. `None` is a file that is not there. (The caller makes `last`'s size at
/// least the position read up to.)
fn was_reset(last: Option<Stat>, now: Option<Stat>) -> bool {
    match (last, now) {
        (None, None) => false,
        (Some(l), Some(n)) => {
            n.ino != l.ino
                || n.dev != l.dev
                || (n.device && n.rdev != l.rdev)
                || n.nlink != l.nlink
                || n.size < l.size
        }
        _ => true,
    }
}

/// Opens `path` for following, as POE does: FIFOs for reading and writing (so they
/// never report end of file, and opening them does not wait for a writer), everything
/// else read-only. Anything but a regular file is made non-blocking, so a read never
/// holds the kernel up.
fn open_file(path: &Path) -> io::Result<(File, Metadata)> {
    let fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    let f = OpenOptions::new().read(true).write(fifo).open(path)?;
    let m = f.metadata()?;
    if !m.is_file() {
        rustix::io::ioctl_fionbio(&f, true)?;
    }
    Ok((f, m))
}

/// How a [`FollowTail`] learns that its file changed, for
/// [`FollowTailBuilder::watch`] and [`FollowTail::watching`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TailWatch {
    /// Polls every `PollInterval`, as POE does (the default).
    #[default]
    Poll,
    /// Linux's inotify: the wheel polls as soon as the file is written to, truncated,
    /// renamed or deleted, or a file of its name appears, and keeps polling every
    /// `PollInterval` for whatever inotify does not report. Where inotify cannot be set
    /// up (another system, no inotify, no watch left), the wheel polls as with
    /// [`Poll`](TailWatch::Poll). See [`FollowTail`], "Watching with inotify".
    Inotify,
}

/// `PollInterval` by default (POE's).
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// `PollInterval` by default while inotify watches the file: the polls only catch what
/// inotify does not report (a file on a network file system written to elsewhere).
const INOTIFY_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// What the inotify descriptor had to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
enum News {
    /// Nothing about the followed file.
    Nothing,
    /// The file, or its name in its directory, changed: time for a poll.
    Changed,
    /// The watches can no longer be trusted (the directory went away, or reading the
    /// descriptor failed): back to polling.
    Lost,
}

/// The inotify watches of a tail: the directory of its name (by name only), for a file
/// that appears there or is renamed or deleted, and the open file, for what is written to
/// it.
#[cfg(target_os = "linux")]
mod notify {
    use super::News;
    use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
    use mio::unix::SourceFd;
    use mio::{Interest, Registry, Token};
    use std::ffi::OsString;
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::path::{Path, PathBuf};

    /// What is watched on the open file: appends, truncation, link count, and the file
    /// renamed or deleted.
    fn file_mask() -> WatchMask {
        WatchMask::MODIFY
            | WatchMask::ATTRIB
            | WatchMask::CLOSE_WRITE
            | WatchMask::MOVE_SELF
            | WatchMask::DELETE_SELF
    }

    /// What is watched on the directory: names made, removed, or renamed in or out, and
    /// the directory itself going away.
    fn dir_mask() -> WatchMask {
        WatchMask::CREATE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::DELETE
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF
            | WatchMask::ONLYDIR
    }

    /// One inotify instance and its watches.
    pub(super) struct Notifier {
        inotify: Inotify,
        /// The watch on the directory and the file's name in it (a tail by name).
        dir: Option<(WatchDescriptor, OsString)>,
        /// The watch on the open file.
        file: Option<WatchDescriptor>,
        /// Registered with the poller.
        registered: bool,
    }

    impl Notifier {
        /// An instance watching the directory of `path` (a tail by name), or nothing yet
        /// (a tail of a handle).
        pub(super) fn new(path: Option<&Path>) -> io::Result<Notifier> {
            let inotify = Inotify::init()?;
            let dir = match path {
                Some(p) => {
                    let name = p.file_name().ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidInput, "the path names no file")
                    })?;
                    let dir = match p.parent() {
                        Some(d) if !d.as_os_str().is_empty() => d,
                        _ => Path::new("."),
                    };
                    let wd = inotify.watches().add(dir, dir_mask())?;
                    Some((wd, name.to_owned()))
                }
                None => None,
            };
            Ok(Notifier {
                inotify,
                dir,
                file: None,
                registered: false,
            })
        }

        /// Watches the open file `f` (instead of the one watched before): the file
        /// itself, through `/proc/self/fd`, so that the watch is on what the tail reads
        /// even if the name was taken by another file meanwhile; by `path` where `/proc`
        /// is not there.
        pub(super) fn watch_file(&mut self, f: &File, path: Option<&Path>) -> io::Result<()> {
            self.unwatch_file();
            let by_fd = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
            let wd = match self.inotify.watches().add(by_fd, file_mask()) {
                Ok(wd) => wd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => match path {
                    Some(p) => self.inotify.watches().add(p, file_mask())?,
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            };
            self.file = Some(wd);
            Ok(())
        }

        /// Stops watching the file (it is being closed).
        pub(super) fn unwatch_file(&mut self) {
            if let Some(wd) = self.file.take() {
                // Gone already if the file was deleted: nothing to do then.
                let _ = self.inotify.watches().remove(wd);
            }
        }

        /// Reads every event queued (the descriptor is edge-triggered) and says what
        /// they mean for the tail.
        pub(super) fn read(&mut self) -> News {
            let mut buf = [0u8; 4096];
            let mut news = News::Nothing;
            loop {
                let events = match self.inotify.read_events(&mut buf) {
                    Ok(events) => events,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return news,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        log::debug!("FollowTail: reading inotify failed ({e}): polling");
                        return News::Lost;
                    }
                };
                for e in events {
                    let seen = if e.mask.contains(EventMask::Q_OVERFLOW) {
                        // Events were dropped: one poll finds out what they said.
                        News::Changed
                    } else {
                        match &self.dir {
                            Some((wd, name)) if e.wd == *wd => {
                                if e.mask.intersects(
                                    EventMask::IGNORED
                                        | EventMask::DELETE_SELF
                                        | EventMask::MOVE_SELF
                                        | EventMask::UNMOUNT,
                                ) {
                                    News::Lost
                                } else if e.name == Some(name.as_os_str()) {
                                    News::Changed
                                } else {
                                    News::Nothing
                                }
                            }
                            // A file's watch taken away (unwatch_file) says nothing new.
                            _ if e.mask == EventMask::IGNORED => News::Nothing,
                            _ => News::Changed,
                        }
                    };
                    news = match (news, seen) {
                        (News::Lost, _) | (_, News::Lost) => News::Lost,
                        (News::Changed, _) | (_, News::Changed) => News::Changed,
                        _ => News::Nothing,
                    };
                }
            }
        }

        /// Registers the instance's descriptor with the poller, readable with `token`.
        pub(super) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
            registry.register(
                &mut SourceFd(&self.inotify.as_raw_fd()),
                token,
                Interest::READABLE,
            )?;
            self.registered = true;
            Ok(())
        }

        /// Deregisters it.
        pub(super) fn deregister(&mut self, registry: &Registry) {
            if self.registered {
                let _ = registry.deregister(&mut SourceFd(&self.inotify.as_raw_fd()));
                self.registered = false;
            }
        }
    }
}

/// Where there is no inotify: a notifier cannot be made, and the tail polls.
#[cfg(not(target_os = "linux"))]
mod notify {
    use super::News;
    use mio::{Registry, Token};
    use std::fs::File;
    use std::io;
    use std::path::Path;

    /// Never made.
    pub(super) enum Notifier {}

    impl Notifier {
        pub(super) fn new(_: Option<&Path>) -> io::Result<Notifier> {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "inotify is Linux's",
            ))
        }
        pub(super) fn watch_file(&mut self, _: &File, _: Option<&Path>) -> io::Result<()> {
            match *self {}
        }
        pub(super) fn unwatch_file(&mut self) {
            match *self {}
        }
        pub(super) fn read(&mut self) -> News {
            match *self {}
        }
        pub(super) fn register(&mut self, _: &Registry, _: Token) -> io::Result<()> {
            match *self {}
        }
        pub(super) fn deregister(&mut self, _: &Registry) {
            match *self {}
        }
    }
}

use notify::Notifier;

/// Follows the end of a file and delivers each new record to the session that built it,
/// as `tail -f` does (POE's `POE::Wheel::FollowTail`).
///
/// Built with [`FollowTail::filename`] (POE's `Filename`) or [`FollowTail::handle`]
/// (POE's `Handle`). Events (see [`TailEvent`]): `InputEvent` with each record,
/// `ResetEvent` when the file was rotated or truncated, `IdleEvent` when a poll finds
/// nothing new, `ErrorEvent` with a [`WheelError`].
///
/// ```no_run
/// use reactor::wheel::{FollowTail, WheelHandle};
/// use reactor::{Ctx, HandlerError, Kernel, Session};
///
/// let mut kernel = Kernel::new()?;
/// kernel.create(
///     Session::new(None::<WheelHandle>)
///         .on("_start", |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
///             let tail = FollowTail::filename("/var/log/syslog")
///                 .input_event("got_line")
///                 .reset_event("got_rollover")
///                 .build(ctx)?;
///             *ctx.heap() = Some(tail);
///             Ok(())
///         })
///         .on("got_line", |ctx: &mut Ctx<'_, Option<WheelHandle>>| -> Result<(), HandlerError> {
///             println!("Log: {}", String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?));
///             Ok(())
///         })
///         .on("got_rollover", |_: &mut Ctx<'_, Option<WheelHandle>>| println!("Log rolled over.")),
/// )?;
/// kernel.run()?;
/// # Ok::<(), reactor::Error>(())
/// ```
///
/// ## How it follows
///
/// A regular file is polled, as under POE: every [`poll_interval`](FollowTailBuilder::poll_interval)
/// (1 s by default) the wheel reads what was appended, one block per timeslice until the
/// end, and delivers the records. At the end it compares the file with what it saw at the
/// last poll: by name ([`FollowTail::filename`]) it `stat`s the path, so a new file there
/// (rotation by rename, or a file deleted and made again) or a shorter one (truncation:
/// shorter than at the last poll, or than the place the wheel has read up to, which POE
/// does not check, so it misses a truncation that comes right after new data was read)
/// is a reset: it closes the old file and opens the new one at its start, emitting
/// `ResetEvent` when it does. A handle ([`FollowTail::handle`]) cannot be reopened: a
/// truncated one is read again from its start, after `ResetEvent`.
///
/// A file named with [`FollowTail::filename`] that does not exist yet is waited for: each
/// poll tries to open it (emitting `IdleEvent` while it is missing), and when it appears
/// the wheel emits `ResetEvent` and reads it from its start. A file that goes away is
/// waited for again in the same way.
///
/// Anything else (a pipe, a FIFO, a socket, a terminal) is read when the poller reports
/// it readable, and `PollInterval`, `Seek` and `SeekBack` do not apply. At its end (a
/// pipe's writers all gone) the wheel emits `IdleEvent`, or `ErrorEvent` with
/// [`WheelError::eof`] for a socket or a terminal, and stops.
///
/// The polls are [wake-ups](Kernel::wheel_wake) from the kernel's queue, ordered among
/// the session's timers as POE's `delay` on the wheel's own state is, but invisible to
/// `alarm_remove_all`.
///
/// ## Watching with inotify
///
/// With [`watch(TailWatch::Inotify)`](FollowTailBuilder::watch), on Linux, a regular file
/// is still read by polls, but a poll comes as soon as inotify reports a change rather
/// than at the next `PollInterval`: the wheel watches the open file (written to,
/// truncated, its attributes or link count changed, closed after writing, renamed or
/// deleted) and, by name, the file's directory (a file of its name made, renamed there
/// or away, or deleted). Each report makes the wheel poll in the same timeslice, which
/// reads what was appended and looks for a reset exactly as above; events are the same
/// as when polling (an `IdleEvent` may come after a report that changed nothing, such as
/// a writer closing the file). When the wheel opens another file after a reset, it
/// watches that one.
///
/// The polls every `PollInterval` go on, as a fallback for what inotify does not
/// report: a file on a network file system written to from another machine, a change
/// in the directory a symbolic link points into. Without an explicit
/// [`poll_interval`](FollowTailBuilder::poll_interval) they come every 10 s while
/// inotify watches the file.
///
/// Where inotify cannot be set up (another system, inotify missing, no instance or watch
/// left: `EMFILE`, `ENOSPC`; the file's directory not there), the wheel polls as with
/// [`TailWatch::Poll`], every `PollInterval` (1 s by default), and says why with
/// `log::debug!`; this is not an error. So it does if inotify stops working later (the
/// directory deleted or renamed, the file system unmounted, a watch refused for a new
/// file). [`FollowTail::watching`] tells which is in force.
///
/// ## Lifetime
///
/// While it follows, the wheel keeps its session alive. An `ErrorEvent`, or the end of a
/// pipe or socket, stops it: from then on it emits nothing and no longer keeps the
/// session alive (as under POE); drop it. Dropping the [`WheelHandle`] stops it at once
/// and closes the file.
///
/// ## Differences from POE
///
/// - A file named with `Filename` that cannot be opened for a reason other than not
///   existing (permissions, a path through a file, a symlink loop) is an `ErrorEvent`
///   with operation `"open"` that stops the tail; POE retries silently for ever.
/// - `Driver` is built in; its `BlockSize` is [`block_size`](FollowTailBuilder::block_size).
/// - POE's warnings (`SeekBack` or `PollInterval` given for a special file) are logged
///   with `log::warn!`; POE's `croak`s are [`Error::InvalidArgument`] from
///   [`build`](FollowTailBuilder::build).
pub struct FollowTail {
    /// `Filename`: the path, reopened after a reset. `None` for a `Handle`.
    path: Option<PathBuf>,
    /// The open file; `None` while a named file is missing.
    file: Option<File>,
    filter: ByteFilter,
    /// `PollInterval`, if given; see [`FollowTail::interval`].
    interval: Option<Duration>,
    input: EventId,
    /// `ErrorEvent`, `ResetEvent`, `IdleEvent`.
    error: Option<EventId>,
    reset: Option<EventId>,
    idle: Option<EventId>,
    id: WheelId,
    /// Followed by the poller's readiness (a pipe, a socket...) rather than by polls.
    select: bool,
    /// Still following: not stopped by an error or an end of file.
    following: bool,
    /// The file as the last poll saw it.
    last: Option<Stat>,
    /// Readable, by the poller (select mode).
    ready: bool,
    /// The poller saw the writer close: read on to end of file.
    closed: bool,
    /// Registered with the poller.
    registered: bool,
    /// A socket or terminal: its end of file is an error (POE).
    eof_is_error: bool,
    block_size: usize,
    /// The inotify watches, while they work ([`TailWatch::Inotify`]).
    notifier: Option<Notifier>,
    /// The inotify descriptor reported readable.
    notified: bool,
}

impl std::fmt::Debug for FollowTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowTail")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("interval", &self.interval)
            .field("following", &self.following)
            .finish_non_exhaustive()
    }
}

/// Where a tail reads: POE's `Filename` or `Handle`.
enum Target {
    Path(PathBuf),
    Handle(File),
}

/// Configures a [`FollowTail`] wheel (POE's constructor parameters).
pub struct FollowTailBuilder {
    target: Target,
    filter: Option<ByteFilter>,
    interval: Option<Duration>,
    interval_invalid: bool,
    seek: Option<i64>,
    seek_back: Option<i64>,
    input: Option<EventId>,
    error: Option<EventId>,
    reset: Option<EventId>,
    idle: Option<EventId>,
    block_size: usize,
    watch: TailWatch,
}

impl std::fmt::Debug for FollowTailBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowTailBuilder")
            .field("interval", &self.interval)
            .field("seek", &self.seek)
            .field("seek_back", &self.seek_back)
            .field("block_size", &self.block_size)
            .finish_non_exhaustive()
    }
}

impl FollowTail {
    /// A tail of the file at `path` (POE's `Filename`): reopened when it is rotated or
    /// truncated, and waited for when it does not exist.
    pub fn filename(path: impl Into<PathBuf>) -> FollowTailBuilder {
        Self::with(Target::Path(path.into()))
    }

    /// A tail of a file already open (POE's `Handle`): a [`File`], or any other owned
    /// descriptor (a pipe's read end, a socket). It cannot follow a rotation (the wheel
    /// cannot reopen it); a truncated regular file is read again from its start.
    pub fn handle(handle: impl Into<OwnedFd>) -> FollowTailBuilder {
        Self::with(Target::Handle(File::from(handle.into())))
    }

    fn with(target: Target) -> FollowTailBuilder {
        FollowTailBuilder {
            target,
            filter: None,
            interval: None,
            interval_invalid: false,
            seek: None,
            seek_back: None,
            input: None,
            error: None,
            reset: None,
            idle: None,
            block_size: DEFAULT_BLOCK,
            watch: TailWatch::Poll,
        }
    }

    /// The wheel's ID (POE's `ID`), as [`WheelHandle::id`] gives it.
    #[doc(alias = "ID")]
    pub fn id(&self) -> WheelId {
        self.id
    }

    /// The position in the file (POE's `tell`): what a later tail's
    /// [`seek`](FollowTailBuilder::seek) resumes from. `None` while no file is open, or for
    /// a handle that has no position (a pipe or socket).
    pub fn tell(&self) -> Option<u64> {
        let mut f = self.file.as_ref()?;
        f.stream_position().ok()
    }

    /// Whether the wheel still follows its file: `false` once an error or the end of a
    /// pipe or socket stopped it.
    pub fn is_following(&self) -> bool {
        self.following
    }

    /// How the wheel learns of changes now: [`TailWatch::Inotify`] while inotify watches
    /// the file, [`TailWatch::Poll`] otherwise (asked for, or fallen back to because
    /// inotify could not be set up or stopped working). A stopped wheel polls nothing and
    /// says `Poll`.
    pub fn watching(&self) -> TailWatch {
        if self.notifier.is_some() {
            TailWatch::Inotify
        } else {
            TailWatch::Poll
        }
    }

    /// The time between polls: `PollInterval` if given, else 1 s, or
    /// [`INOTIFY_POLL_INTERVAL`] while inotify watches the file.
    fn interval(&self) -> Duration {
        self.interval.unwrap_or(if self.notifier.is_some() {
            INOTIFY_POLL_INTERVAL
        } else {
            DEFAULT_POLL_INTERVAL
        })
    }

    /// Makes `f` the open file, watched by inotify if it is in use. Returns `false` if
    /// the notifier could not watch it (then it should be dropped: see
    /// [`unnotify`](Self::unnotify)).
    fn set_file(&mut self, f: File) -> bool {
        let watched = match self.notifier.as_mut() {
            Some(n) => match n.watch_file(&f, self.path.as_deref()) {
                Ok(()) => true,
                Err(e) => {
                    log::debug!("FollowTail: inotify cannot watch the file ({e}): polling");
                    false
                }
            },
            None => true,
        };
        self.file = Some(f);
        watched
    }

    /// Closes the open file (a reset), and stops watching it.
    fn close_file(&mut self) {
        if let Some(n) = self.notifier.as_mut() {
            n.unwatch_file();
        }
        self.file = None;
    }

    /// Drops the notifier, closing its descriptor: the tail polls from now on.
    fn drop_notifier(&mut self, registry: &Registry) {
        if let Some(mut n) = self.notifier.take() {
            n.deregister(registry);
        }
        self.notified = false;
    }

    /// Gives up inotify for wheel `id`: it polls from now on, every `PollInterval` (1 s
    /// by default).
    fn unnotify(kernel: &mut Kernel, id: WheelId) {
        if let Some((w, registry)) = kernel.wheel_and_registry::<FollowTail>(id) {
            w.drop_notifier(registry);
        }
    }

    /// The filter itself: its [`get_pending`](Filter::get_pending) shows a partial record
    /// read and not yet delivered.
    #[doc(alias = "get_filter")]
    pub fn filter(&self) -> &dyn Filter<Raw = Vec<u8>, Record = Vec<u8>> {
        &*self.filter
    }

    /// Renames an event, or with `None` (or `""`) stops emitting it (POE's `event`).
    /// `InputEvent` cannot be removed: that is an [`Error::InvalidArgument`], and the
    /// wheel keeps its name (POE warns and ignores it).
    pub fn event(&mut self, which: TailEvent, name: Option<&str>) -> Result<()> {
        let id = name.filter(|n| !n.is_empty()).map(EventId::of);
        match which {
            TailEvent::Input => {
                self.input =
                    id.ok_or(Error::InvalidArgument("InputEvent requires an event name"))?;
            }
            TailEvent::Error => self.error = id,
            TailEvent::Reset => self.reset = id,
            TailEvent::Idle => self.idle = id,
        }
        Ok(())
    }

    /// Stops following: no more polls or reads, and the session is let go.
    fn stop(kernel: &mut Kernel, id: WheelId) {
        kernel.wheel_wake_clear(id);
        if let Some((w, registry)) = kernel.wheel_and_registry::<FollowTail>(id) {
            w.following = false;
            w.ready = false;
            w.deregister_source(registry);
            w.drop_notifier(registry);
        }
    }

    fn deregister_source(&mut self, registry: &Registry) {
        if self.registered {
            if let Some(f) = &self.file {
                let _ = registry.deregister(&mut SourceFd(&f.as_raw_fd()));
            }
            self.registered = false;
        }
    }

    /// Stops, then emits `ErrorEvent` with `error`.
    fn fail(kernel: &mut Kernel, id: WheelId, owner: SessionId, error: WheelError) {
        Self::stop(kernel, id);
        if let Some(ev) = kernel.wheel_ref::<FollowTail>(id).and_then(|w| w.error) {
            kernel.wheel_call(owner, ev, (error, id).into_args());
        }
    }

    /// Emits the event `which` picks (reset or idle), with the wheel id, if it is set.
    fn emit(
        kernel: &mut Kernel,
        at: WheelAt,
        owner: SessionId,
        id: WheelId,
        which: fn(&FollowTail) -> Option<EventId>,
    ) {
        if let Some(ev) = kernel.wheel_at::<FollowTail>(at).and_then(|w| which(w)) {
            kernel.wheel_call(owner, ev, (id,).into_args());
        }
    }

    /// Asks for the next poll `after` from now (if the wheel is still there and follows).
    fn again(kernel: &mut Kernel, at: WheelAt, id: WheelId, after: Duration) {
        if kernel
            .wheel_at::<FollowTail>(at)
            .is_some_and(|w| w.following)
        {
            let _ = kernel.wheel_wake(id, after, Self::poll);
        }
    }

    /// Reads one block from the file. `Ok(None)` is the end of the file (or, for a
    /// non-blocking handle, nothing to read now).
    fn read_block(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let Some(f) = self.file.as_mut() else {
            return Ok(None);
        };
        if buf.len() < self.block_size {
            buf.resize(self.block_size, 0);
        }
        loop {
            return match f.read(&mut buf[..self.block_size]) {
                Ok(0) => Ok(None),
                Ok(n) => Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// Hands `n` bytes of the read buffer to the filter and delivers the records it makes.
    /// Returns whether the wheel is still there and following.
    fn take_in(
        kernel: &mut Kernel,
        at: WheelAt,
        owner: SessionId,
        id: WheelId,
        chunk: Vec<u8>,
    ) -> bool {
        let Some(w) = kernel.wheel_at::<FollowTail>(at) else {
            return false;
        };
        if let Err(e) = w.filter.get_one_start_chunk(chunk) {
            Self::fail(kernel, id, owner, WheelError::filter("read", e));
            return false;
        }
        loop {
            let Some(w) = kernel.wheel_at::<FollowTail>(at) else {
                return false;
            };
            if !w.following {
                return false;
            }
            // Most filters give one record at a time (Map may give more): the first goes
            // in a slot on the stack.
            let mut first = None;
            let mut more = Vec::new();
            let got = w.filter.get_one_with(&mut |rec| match first {
                None => first = Some(rec),
                Some(_) => more.push(rec),
            });
            match got {
                Ok(0) => return true,
                Ok(_) => {
                    for rec in first.into_iter().chain(more) {
                        // Read the name each time: a handler may rename the event.
                        let Some(ev) = kernel.wheel_at::<FollowTail>(at).map(|w| w.input) else {
                            return false;
                        };
                        kernel.wheel_call(owner, ev, (rec, id).into_args());
                    }
                }
                Err(e) => {
                    Self::fail(kernel, id, owner, WheelError::filter("read", e));
                    return false;
                }
            }
        }
    }

    /// One poll of a followed file (POE's timer state): open the file if it is not open,
    /// read one block and deliver its records, or at the end look for a reset.
    fn poll(kernel: &mut Kernel, id: WheelId) {
        let Some((at, owner)) = kernel.wheel_locate(id) else {
            return;
        };
        let Some(w) = kernel.wheel_at::<FollowTail>(at) else {
            return;
        };
        if !w.following || w.select {
            return;
        }
        if w.file.is_none() {
            let Some(path) = w.path.clone() else {
                return;
            };
            match open_file(&path) {
                Ok((f, m)) => {
                    w.last = Some(Stat::of(&m));
                    if !w.set_file(f) {
                        Self::unnotify(kernel, id);
                    }
                    Self::emit(kernel, at, owner, id, |w| w.reset);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Not there (yet).
                    Self::emit(kernel, at, owner, id, |w| w.idle);
                    Self::again_later(kernel, at, id);
                    return;
                }
                Err(e) => {
                    Self::fail(kernel, id, owner, WheelError::io("open", &e));
                    return;
                }
            }
        }

        // Read one block: one per timeslice, as POE's `delay 0` loop does.
        let mut buf = std::mem::take(kernel.wheel_read_buffer());
        let Some(w) = kernel.wheel_at::<FollowTail>(at) else {
            *kernel.wheel_read_buffer() = buf;
            return;
        };
        if !w.following {
            *kernel.wheel_read_buffer() = buf;
            return;
        }
        let read = w.read_block(&mut buf);
        let chunk = match read {
            Ok(Some(n)) => Some(buf[..n].to_vec()),
            Ok(None) => None,
            Err(e) => {
                *kernel.wheel_read_buffer() = buf;
                Self::fail(kernel, id, owner, WheelError::io("read", &e));
                return;
            }
        };
        *kernel.wheel_read_buffer() = buf;
        if let Some(chunk) = chunk {
            if Self::take_in(kernel, at, owner, id, chunk) {
                Self::again(kernel, at, id, Duration::ZERO);
            }
            return;
        }

        // The end of the file: has it been reset?
        let Some(w) = kernel.wheel_at::<FollowTail>(at) else {
            return;
        };
        let now = match (&w.path, &w.file) {
            (Some(path), _) => match std::fs::metadata(path) {
                Ok(m) => Some(Stat::of(&m)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => {
                    Self::fail(kernel, id, owner, WheelError::io("stat", &e));
                    return;
                }
            },
            (None, Some(f)) => match f.metadata() {
                Ok(m) => Some(Stat::of(&m)),
                Err(e) => {
                    Self::fail(kernel, id, owner, WheelError::io("stat", &e));
                    return;
                }
            },
            (None, None) => return,
        };
        // The size last seen may be older than what was read since: a file now shorter
        // than where the tail reads was truncated, even if it is not shorter than at the
        // last look (POE compares the sizes only, and misses a truncation that comes right
        // after new data was read).
        let position = w.file.as_mut().and_then(|f| f.stream_position().ok());
        let last = w.last.map(|mut l| {
            if let Some(p) = position {
                l.size = l.size.max(p);
            }
            l
        });
        let reset = was_reset(last, now);
        w.last = now;
        if reset {
            if w.path.is_some() {
                // Close it; the next poll opens the new file (and emits ResetEvent).
                w.close_file();
                Self::again(kernel, at, id, Duration::ZERO);
                return;
            }
            Self::emit(kernel, at, owner, id, |w| w.reset);
            if let Some(f) = kernel
                .wheel_at::<FollowTail>(at)
                .and_then(|w| w.file.as_mut())
            {
                if let Err(e) = f.seek(SeekFrom::Start(0)) {
                    Self::fail(kernel, id, owner, WheelError::io("seek", &e));
                    return;
                }
            }
            if kernel
                .wheel_at::<FollowTail>(at)
                .is_some_and(|w| w.notifier.is_some())
            {
                // What was written since the truncation was reported already: read it
                // now rather than at the next PollInterval, as polling does.
                Self::again(kernel, at, id, Duration::ZERO);
                return;
            }
        } else {
            Self::emit(kernel, at, owner, id, |w| w.idle);
        }
        Self::again_later(kernel, at, id);
    }

    /// Asks for the next poll in `PollInterval` (see [`interval`](Self::interval)).
    fn again_later(kernel: &mut Kernel, at: WheelAt, id: WheelId) {
        if let Some(after) = kernel.wheel_at::<FollowTail>(at).map(|w| w.interval()) {
            Self::again(kernel, at, id, after);
        }
    }

    /// A read dispatch of the inotify descriptor: if what it reports concerns the file,
    /// a poll at once (in this timeslice's event phase), in place of the one waiting for
    /// `PollInterval`. If the watches stopped working, the tail polls from now on.
    fn inotify_read(kernel: &mut Kernel, id: WheelId) {
        let Some((w, registry)) = kernel.wheel_and_registry::<FollowTail>(id) else {
            return;
        };
        w.notified = false;
        if !w.following {
            return;
        }
        let Some(n) = w.notifier.as_mut() else {
            return;
        };
        let news = n.read();
        if news == News::Lost {
            w.drop_notifier(registry);
        }
        if news != News::Nothing {
            // The poll sets the next wake-up, at the interval now in force.
            let _ = kernel.wheel_wake(id, Duration::ZERO, Self::poll);
        }
    }

    /// A read dispatch of a followed pipe, FIFO or socket (POE's select state).
    fn select_read(kernel: &mut Kernel, id: WheelId) {
        let Some((at, owner)) = kernel.wheel_locate(id) else {
            return;
        };
        let mut buf = std::mem::take(kernel.wheel_read_buffer());
        let Some(w) = kernel.wheel_at::<FollowTail>(at) else {
            *kernel.wheel_read_buffer() = buf;
            return;
        };
        if !w.following || !w.ready {
            *kernel.wheel_read_buffer() = buf;
            return;
        }
        let read = match w.file.as_mut() {
            Some(f) => {
                if buf.len() < w.block_size {
                    buf.resize(w.block_size, 0);
                }
                f.read(&mut buf[..w.block_size])
            }
            None => Ok(0),
        };
        let outcome = match read {
            Ok(0) => Err(None),
            Ok(n) => {
                if n < w.block_size && !w.closed {
                    // Drained: the next arrival raises a new edge.
                    w.ready = false;
                }
                Ok(Some(buf[..n].to_vec()))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                w.ready = false;
                Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(Some(e)),
        };
        let eof_is_error = w.eof_is_error;
        *kernel.wheel_read_buffer() = buf;
        match outcome {
            Ok(Some(chunk)) => {
                Self::take_in(kernel, at, owner, id, chunk);
            }
            Ok(None) => {}
            Err(Some(e)) => Self::fail(kernel, id, owner, WheelError::io("read", &e)),
            // The end: an error for a socket or a terminal, idleness for a pipe (POE).
            Err(None) if eof_is_error => Self::fail(kernel, id, owner, WheelError::eof()),
            Err(None) => {
                Self::stop(kernel, id);
                Self::emit(kernel, at, owner, id, |w| w.idle);
            }
        }
    }
}

impl FollowTailBuilder {
    /// The filter that turns the file's bytes into records (POE's `Filter`; default
    /// [`Line`]).
    pub fn filter(mut self, f: impl Filter<Raw = Vec<u8>, Record = Vec<u8>> + 'static) -> Self {
        self.filter = Some(Box::new(f));
        self
    }

    /// Seconds between polls of a regular file (POE's `PollInterval`; default 1, or 10
    /// while inotify watches the file, see [`watch`](Self::watch)). Zero polls in every
    /// timeslice; a negative interval is refused by [`build`](Self::build).
    pub fn poll_interval(mut self, secs: impl Seconds) -> Self {
        let nanos = secs.nanos();
        match u64::try_from(nanos) {
            Ok(n) => {
                self.interval = Some(Duration::from_nanos(n));
                self.interval_invalid = false;
            }
            Err(_) => self.interval_invalid = true,
        }
        self
    }

    /// Where to start in a regular file (POE's `Seek`): a positive offset from the start
    /// (the end if the file is shorter), a negative one from the end (the start if the
    /// file is shorter), 0 for the start. With neither `Seek` nor `SeekBack` the tail
    /// starts at the end.
    pub fn seek(mut self, offset: i64) -> Self {
        self.seek = Some(offset);
        self
    }

    /// Where to start in a regular file, counted back from its end (POE's `SeekBack`):
    /// `seek_back(n)` is `seek(-n)`, and `seek_back(0)` starts at the end. Not with
    /// [`seek`](Self::seek).
    pub fn seek_back(mut self, octets: i64) -> Self {
        self.seek_back = Some(octets);
        self
    }

    /// Names an event; an empty name leaves it unset.
    pub fn event(mut self, which: TailEvent, name: &str) -> Self {
        let id = (!name.is_empty()).then(|| EventId::of(name));
        match which {
            TailEvent::Input => self.input = id,
            TailEvent::Error => self.error = id,
            TailEvent::Reset => self.reset = id,
            TailEvent::Idle => self.idle = id,
        }
        self
    }

    /// `InputEvent` (required): `ARG0` is one record (`Vec<u8>`), `ARG1` the [`WheelId`].
    pub fn input_event(self, name: &str) -> Self {
        self.event(TailEvent::Input, name)
    }

    /// `ErrorEvent`: `ARG0` is the [`WheelError`](super::WheelError) (operation `"read"`,
    /// `"stat"`, `"open"`, ...), `ARG1` the [`WheelId`].
    pub fn error_event(self, name: &str) -> Self {
        self.event(TailEvent::Error, name)
    }

    /// `ResetEvent`: `ARG0` is the [`WheelId`]; the file was rotated or truncated.
    pub fn reset_event(self, name: &str) -> Self {
        self.event(TailEvent::Reset, name)
    }

    /// `IdleEvent`: `ARG0` is the [`WheelId`]; a poll found nothing new.
    pub fn idle_event(self, name: &str) -> Self {
        self.event(TailEvent::Idle, name)
    }

    /// Bytes per read (POE's `Driver => POE::Driver::SysRW->new(BlockSize => N)`; default
    /// 65536).
    pub fn block_size(mut self, n: usize) -> Self {
        self.block_size = n;
        self
    }

    /// How the tail learns that a regular file changed: [`TailWatch::Poll`] (the default,
    /// POE's), or [`TailWatch::Inotify`], which polls as soon as inotify reports a change
    /// and keeps polling every `PollInterval` (10 s unless given) as a fallback; see
    /// [`FollowTail`], "Watching with inotify". Not POE's: an addition. It has no effect
    /// on pipes, FIFOs, sockets and terminals, which are read when the poller reports
    /// them readable.
    ///
    /// ```no_run
    /// # use reactor::wheel::{FollowTail, TailWatch};
    /// # fn f(kernel: &mut reactor::Kernel) -> reactor::Result<()> {
    /// let tail = FollowTail::filename("/var/log/syslog")
    ///     .watch(TailWatch::Inotify)
    ///     .input_event("got_line")
    ///     .build(kernel)?;
    /// # Ok(()) }
    /// ```
    pub fn watch(mut self, how: TailWatch) -> Self {
        self.watch = how;
        self
    }

    /// Checks the configuration, opens the file and puts the wheel into the kernel, owned
    /// by the active session. The first poll comes in the next timeslice.
    ///
    /// Fails (where POE croaks) with [`Error::InvalidArgument`] without `InputEvent`, with
    /// both `Seek` and `SeekBack`, with a zero block size or a negative poll interval, and
    /// for a directory; with [`Error::Io`] if the handle cannot be examined or positioned;
    /// with [`Error::Filter`] if the filter refuses what is skipped at the start. A named
    /// file that cannot be opened is not an error here: it is waited for, or reported
    /// with `ErrorEvent` (see [`FollowTail`]).
    pub fn build(self, kernel: &mut Kernel) -> Result<WheelHandle> {
        let input = self
            .input
            .ok_or(Error::InvalidArgument("InputEvent required"))?;
        if self.seek.is_some() && self.seek_back.is_some() {
            return Err(Error::InvalidArgument(
                "can't have Seek and SeekBack at the same time",
            ));
        }
        if self.block_size == 0 {
            return Err(Error::InvalidArgument("BlockSize must be greater than 0"));
        }
        if self.interval_invalid {
            return Err(Error::InvalidArgument("PollInterval must not be negative"));
        }
        let mut filter = self.filter.unwrap_or_else(|| Box::new(Line::new()));
        let (path, file) = match self.target {
            // A file that cannot be opened now is the first poll's business.
            Target::Path(p) => {
                let f = open_file(&p).ok().map(|(f, _)| f);
                (Some(p), f)
            }
            Target::Handle(f) => (None, Some(f)),
        };
        let mut select = false;
        let mut last = None;
        let mut eof_is_error = false;
        if let Some(f) = &file {
            let m = f.metadata()?;
            last = Some(Stat::of(&m));
            if m.is_dir() {
                return Err(Error::InvalidArgument(
                    "FollowTail does not tail directories",
                ));
            }
            if m.is_file() {
                Self::position(f, self.seek, self.seek_back, self.block_size, &mut filter)?;
            } else {
                if self.seek_back.is_some_and(|n| n != 0) {
                    log::warn!("FollowTail can't SeekBack special files");
                }
                rustix::io::ioctl_fionbio(f, true).map_err(io::Error::from)?;
                eof_is_error = m.file_type().is_socket() || f.is_terminal();
                select = true;
            }
        }
        let notifier = match self.watch {
            TailWatch::Inotify if !select => Self::notifier(path.as_deref(), file.as_ref()),
            _ => None,
        };
        let handle = kernel.wheel_insert(FollowTail {
            path,
            file,
            filter,
            interval: self.interval,
            input,
            error: self.error,
            reset: self.reset,
            idle: self.idle,
            id: WheelId(0),
            select,
            following: true,
            last,
            ready: false,
            closed: false,
            registered: false,
            eof_is_error,
            block_size: self.block_size,
            notifier,
            notified: false,
        })?;
        let id = handle.id();
        let select = match kernel.wheel_mut::<FollowTail>(id) {
            Some(w) => {
                w.id = id;
                w.select
            }
            None => false,
        };
        if select {
            if self.interval.is_some() {
                log::warn!("FollowTail does not need PollInterval for special files");
            }
        } else {
            kernel.wheel_wake(id, Duration::ZERO, FollowTail::poll)?;
        }
        Ok(handle)
    }

    /// The inotify watches of a tail of `path` or of `file` (a regular file), or `None`
    /// if they cannot be set up: then the tail polls.
    fn notifier(path: Option<&Path>, file: Option<&File>) -> Option<Notifier> {
        let made = Notifier::new(path).and_then(|mut n| {
            if let Some(f) = file {
                n.watch_file(f, path)?;
            }
            Ok(n)
        });
        match made {
            Ok(n) => Some(n),
            Err(e) => {
                log::debug!("FollowTail: no inotify ({e}): polling");
                None
            }
        }
    }

    /// Moves a regular file to where the tail starts (POE's `Seek`/`SeekBack` rules). With
    /// neither, it starts [`DEFAULT_SEEK_BACK`] octets before the end and passes what is
    /// there through the filter, throwing the records away: the partial record at the
    /// end, if any, stays in the filter and is completed by what is appended next.
    fn position(
        f: &File,
        seek: Option<i64>,
        seek_back: Option<i64>,
        block_size: usize,
        filter: &mut ByteFilter,
    ) -> Result<()> {
        let mut f = f;
        let end = f.seek(SeekFrom::End(0))?;
        let offset = match (seek, seek_back) {
            (Some(s), _) => s,
            (None, Some(b)) => b.saturating_neg(),
            (None, None) => -DEFAULT_SEEK_BACK,
        };
        let to = if offset < 0 {
            if end < offset.unsigned_abs() {
                SeekFrom::Start(0)
            } else {
                SeekFrom::End(offset)
            }
        } else if offset > 0 {
            if offset.unsigned_abs() > end {
                SeekFrom::End(0)
            } else {
                SeekFrom::Start(offset.unsigned_abs())
            }
        } else if seek.is_some() {
            SeekFrom::Start(0)
        } else {
            SeekFrom::End(0)
        };
        f.seek(to)?;
        if seek.is_none() && seek_back.is_none() {
            let mut buf = vec![0; block_size];
            loop {
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        filter
                            .get_one_start_chunk(buf[..n].to_vec())
                            .map_err(Error::Filter)?;
                        while filter.get_one_with(&mut drop).map_err(Error::Filter)? > 0 {}
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // As POE's driver: a read error ends the skipping; the first poll
                    // meets it again and reports it.
                    Err(_) => break,
                }
            }
        }
        Ok(())
    }
}

impl Wheel for FollowTail {
    fn register(&mut self, registry: &Registry, tokens: [Token; 2]) -> io::Result<()> {
        if !self.select {
            // A polled file: its inotify descriptor, if any, is the second source.
            if let Some(n) = self.notifier.as_mut() {
                if let Err(e) = n.register(registry, tokens[1]) {
                    log::debug!("FollowTail: cannot poll the inotify descriptor ({e}): polling");
                    self.drop_notifier(registry);
                }
            }
            return Ok(());
        }
        let Some(f) = &self.file else {
            return Ok(());
        };
        match registry.register(&mut SourceFd(&f.as_raw_fd()), tokens[0], Interest::READABLE) {
            Ok(()) => {
                self.registered = true;
                Ok(())
            }
            // The poller refuses it (a character device such as /dev/null): poll it.
            Err(e) if e.raw_os_error() == Some(EPERM) => {
                self.select = false;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn deregister(&mut self, registry: &Registry) {
        self.deregister_source(registry);
        self.drop_notifier(registry);
    }

    fn note_ready(&mut self, which: usize, readable: bool, _writable: bool) {
        if which == 1 {
            self.notified |= readable;
        } else {
            self.ready |= readable;
        }
    }

    fn note_closed(&mut self, which: usize) {
        if which == 0 {
            self.closed = true;
            self.ready = true;
        }
    }

    fn holds_session(&self) -> bool {
        self.following
    }

    fn pending(&self) -> (bool, bool) {
        let read = if self.select {
            self.ready
        } else {
            self.notified
        };
        (self.following && read, false)
    }

    fn dispatch(kernel: &mut Kernel, id: WheelId, mode: Mode) {
        if mode != Mode::Read {
            return;
        }
        let select = kernel.wheel_ref::<FollowTail>(id).is_some_and(|w| w.select);
        if select {
            Self::select_read(kernel, id);
        } else {
            Self::inotify_read(kernel, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{was_reset, Stat};

    fn stat(ino: u64, nlink: u64, size: u64) -> Stat {
        Stat {
            dev: 1,
            ino,
            nlink,
            size,
            rdev: 0,
            device: false,
        }
    }

    #[test]
    fn a_reset_is_what_poe_calls_one() {
        let s = stat(7, 1, 100);
        assert!(!was_reset(Some(s), Some(s)));
        assert!(!was_reset(Some(s), Some(stat(7, 1, 150))), "grown");
        assert!(was_reset(Some(s), Some(stat(7, 1, 99))), "truncated");
        assert!(was_reset(Some(s), Some(stat(8, 1, 100))), "another inode");
        assert!(
            was_reset(Some(s), Some(stat(7, 2, 100))),
            "another link count"
        );
        assert!(
            was_reset(Some(s), Some(Stat { dev: 2, ..s })),
            "another device"
        );
        assert!(was_reset(Some(s), None), "gone");
        assert!(was_reset(None, Some(s)), "appeared");
        assert!(!was_reset(None, None), "still missing");
        // rdev counts for device files only.
        assert!(!was_reset(Some(s), Some(Stat { rdev: 5, ..s })));
        let dev = Stat { device: true, ..s };
        assert!(was_reset(Some(dev), Some(Stat { rdev: 5, ..dev })));
    }
}
