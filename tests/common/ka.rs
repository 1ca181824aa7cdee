//! Helpers of the keep-alive manager's tests.
#![allow(dead_code)]

use keepalive::reactor::{Kernel, Session, SessionId};
use keepalive::{Origin, ResolverKind, Response};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tests of one binary run one at a time, so each can check that it leaks no file
/// descriptor.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes this binary's test lock.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a keep-alive test holds while it runs: this binary's test lock and a watchdog.
pub struct Running {
    _serial: MutexGuard<'static, ()>,
    _watchdog: super::watchdog::Timeout,
}

/// How most keep-alive tests begin: takes the test lock, arms a watchdog of `secs` seconds,
/// counts the open descriptors (for [`finish`]) and makes a kernel.
pub fn start(name: &'static str, secs: u64) -> (Running, super::Fds, Kernel) {
    let running = Running {
        _serial: serial(),
        _watchdog: super::timeout(secs, name),
    };
    let fds = super::open_fds();
    (running, fds, Kernel::new().unwrap())
}

/// `af_order => [AF_INET]` as the upstream tests configure it: `localhost` is 127.0.0.1;
/// every other name is unknown.
pub fn v4_resolver() -> ResolverKind {
    ResolverKind::Custom(Arc::new(|host: &str| match host {
        "localhost" => Ok(vec![IpAddr::from([127, 0, 0, 1])]),
        _ => Err("Name or service not known".to_owned()),
    }))
}

/// Runs the kernel to the end, drops it, runs `after` (joins threads, drops listeners),
/// then checks no descriptor leaked.
pub fn finish_then(mut k: Kernel, fds_before: super::Fds, after: impl FnOnce()) {
    k.run().expect("kernel ran clean");
    drop(k);
    after();
    super::assert_no_new_fds(&fds_before);
}

/// Runs the kernel to the end, then checks no descriptor leaked.
pub fn finish(k: Kernel, fds_before: super::Fds) {
    finish_then(k, fds_before, || {});
}

/// The context of a response, when it is a `&'static str` label.
pub fn label(r: &Response) -> &'static str {
    r.context_ref::<&'static str>().copied().unwrap_or("?")
}

/// One line per response: context, whether a connection came, and from_cache.
pub fn describe(r: &Response) -> String {
    match &r.connection {
        Ok(_) => format!(
            "{} conn from_cache={:?}",
            label(r),
            r.from_cache().map(Origin::as_str)
        ),
        Err(f) => format!(
            "{} error {} {:?} {}",
            label(r),
            f.function,
            f.errnum,
            f.errstr
        ),
    }
}

/// Posts `event` to `to` once `cond` holds, checking it every 2 ms from a child session of
/// the active one (which it keeps alive meanwhile); fails the run after 3 s.
pub fn wait_for(
    k: &mut Kernel,
    what: &'static str,
    cond: impl Fn() -> bool + 'static,
    to: SessionId,
    event: &'static str,
) {
    let start = Instant::now();
    k.create(
        Session::new(())
            .on("_start", |ctx| ctx.yield_("poll", ()).unwrap())
            .on("poll", move |ctx| {
                if cond() {
                    ctx.post(to, event, ()).unwrap();
                    return;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(3),
                    "gave up waiting for {what}"
                );
                ctx.delay("poll", 0.002, ()).unwrap();
            }),
    )
    .unwrap();
}
