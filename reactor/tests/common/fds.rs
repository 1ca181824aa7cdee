//! Descriptor-leak checks, shared by the reactor's tests and the root crate's (which
//! include this file by path).

/// The open file descriptors of this process, each with what it refers to
/// (`socket:[inode]`, a path, ...).
pub struct Fds(std::collections::BTreeSet<(String, String)>);

/// A snapshot of this process's open file descriptors.
pub fn open_fds() -> Fds {
    let set = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let target = std::fs::read_link(e.path()).ok()?;
                    Some((
                        e.file_name().to_string_lossy().into_owned(),
                        target.to_string_lossy().into_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Fds(set)
}

/// Fails if a descriptor is open now that was not open at `before`: a leak. Descriptors
/// closed meanwhile are not counted against the test: other tests of the binary run at the
/// same time and close their own. (The listing of `/proc/self/fd` itself shows up as a
/// new descriptor each time, and is left out.)
#[track_caller]
pub fn assert_no_new_fds(before: &Fds) {
    let now = open_fds();
    let new: Vec<&(String, String)> = now
        .0
        .difference(&before.0)
        .filter(|(_, target)| !target.starts_with("/proc/"))
        .collect();
    assert!(new.is_empty(), "file descriptors leaked: {new:?}");
}
