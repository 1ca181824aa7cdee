//! Children the kernel reaps: a process started by a wheel (or by a program) is handed to
//! the kernel with [`Kernel::adopt_child`]; once its [`ChildGuard`] is dropped, the kernel
//! reaps it when it exits, so no child is left a zombie.
//!
//! While the guard lives nothing changes: the child's exit status waits for whoever
//! watches it (`sig_child`), as under POE, even when the watch is made after the exit.
//! Once the guard is dropped (the wheel that started the child is gone), the kernel
//! reaps the child as soon as it has exited, at the next `SIGCHLD`, unless a `sig_child`
//! watch still waits for it: that watch reaps it and reports the status.

use super::Kernel;
use crate::error::Result;
use std::fmt;
use std::rc::Weak;

/// The kernel's promise to reap a child process once this guard is dropped
/// ([`Kernel::adopt_child`]). Dropping it does not signal the child.
pub struct ChildGuard {
    pid: i32,
    releases: Weak<super::Releases>,
}

impl ChildGuard {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }
}

impl fmt::Debug for ChildGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChildGuard({})", self.pid)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(q) = self.releases.upgrade() {
            q.queue.borrow_mut().child_drops.push(self.pid);
            q.pending.set(true);
        }
    }
}

impl Kernel {
    /// Takes child process `pid` into the kernel's care: when the returned guard is
    /// dropped, the kernel reaps the child once it exits (unless a
    /// [`sig_child`](Kernel::sig_child) watch waits for it), so it never lingers as a
    /// zombie. Catches `SIGCHLD` from now on; does not keep the kernel running.
    pub fn adopt_child(&mut self, pid: u32) -> Result<ChildGuard> {
        let pid = i32::try_from(pid)
            .map_err(|_| crate::error::Error::InvalidArgument("pid out of range"))?;
        self.os_signal_watch(signal_hook::consts::SIGCHLD)?;
        Ok(ChildGuard {
            pid,
            releases: std::rc::Rc::downgrade(&self.releases),
        })
    }
}
