//! Cross-thread posting benchmark: ns per post from another thread into a kernel
//! ([`reactor::Poster`]), streamed (throughput) and one at a time (round-trip latency),
//! side by side in the same run with the bare mechanism it is built from: a
//! `std::sync::mpsc` channel and a `mio::Waker` woken once per batch, drained by a bare
//! `mio::Poll` loop that counts the messages.
//!
//! Run: `cargo bench --bench poster` (`POSTS`, default 1,000,000 per stream; `PINGS`,
//! default 100,000 round trips; `RUNS`, default 5, best of). Words after `--` pick
//! operations by name (`cargo bench --bench poster -- ping`).
//!
//! - `stream`: one thread posts `POSTS` events as fast as it can; the clock stops when
//!   the last one has been handled. Both sides run at once (two cores), so the slower side
//!   sets the rate.
//! - `stream_noargs`: the same, the events without arguments (the bare loop still sends a
//!   number).
//! - `stream_batch`: the same as `stream`, 64 posts per [`PostBatch`](reactor::PostBatch) (bare: the
//!   waker checked once per 64 sends).
//! - `stream_2threads`: two posting threads, `POSTS / 2` each.
//! - `ping`: one post, then wait for the handler's answer (a `std::sync::mpsc` message
//!   back, the same in both) before the next: a round trip, wake-up included.
//!
//! The kernel's side of each post is a whole event: queued, dispatched to a session's
//! handler, with its argument; the bare loop's is a `try_recv` and an increment. The
//! kernel's own post and dispatch (`post_dispatch` in `cargo bench --bench kernel`) is
//! printed beside, to tell what crossing threads adds from what any event costs.

use mio::{Events, Poll, Token, Waker};
use reactor::{Ctx, Kernel, Poster, Session, SessionId};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn best(runs: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..runs).map(|_| f()).fold(f64::INFINITY, f64::min)
}

/// How posters post in a stream.
#[derive(Clone, Copy)]
enum Mode {
    One,
    Batch,
    /// One at a time, with no arguments.
    Bare,
}

// ---------------------------------------------------------------------------------------
// The kernel.

/// A kernel with a session that counts `n` events until `total`, then lets the kernel end;
/// returns the kernel, the session and when the last one was handled.
fn counting_kernel(total: u64) -> (Kernel, SessionId, Rc<Cell<Option<Instant>>>) {
    let mut k = Kernel::new().unwrap();
    let done = Rc::new(Cell::new(None));
    let d = Rc::clone(&done);
    let id = k
        .create(
            Session::new(0u64)
                .on("_start", |_: &mut Ctx<'_, u64>| {})
                .on("n", move |ctx: &mut Ctx<'_, u64>| {
                    let v: u64 = ctx.arg(0).map_or(0, |v| *v);
                    let h = ctx.heap();
                    *h += 1;
                    if *h == total {
                        assert!(v < total);
                        d.set(Some(Instant::now()));
                    }
                }),
        )
        .unwrap();
    (k, id, done)
}

thread_local! {
    /// What the last [`kernel_stream`] measured on the posting side: ns per post of the
    /// slowest posting thread, from its first post to its last.
    static POSTING_NS: Cell<f64> = const { Cell::new(f64::NAN) };
}

/// ns per post: `threads` threads post `total` events in all.
fn kernel_stream(total: u64, threads: u64, mode: Mode) -> f64 {
    let (mut k, id, done) = counting_kernel(total);
    let each = total / threads;
    let start = Arc::new(std::sync::Barrier::new(threads as usize + 1));
    let posters: Vec<_> = (0..threads)
        .map(|t| {
            let p: Poster = k.poster_holding(id).unwrap();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let t0 = Instant::now();
                let (from, to) = (t * each, (t + 1) * each);
                match mode {
                    Mode::One => {
                        for n in from..to {
                            p.post(id, "n", (n,)).unwrap();
                        }
                    }
                    Mode::Bare => {
                        for _ in from..to {
                            p.post(id, "n", ()).unwrap();
                        }
                    }
                    Mode::Batch => {
                        let mut n = from;
                        while n < to {
                            let mut b = p.batch().unwrap();
                            for _ in 0..64.min(to - n) {
                                b.post(id, "n", (n,)).unwrap();
                                n += 1;
                            }
                        }
                    }
                }
                t0.elapsed()
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    k.run().unwrap();
    let posting = posters
        .into_iter()
        .map(|p| p.join().unwrap())
        .max()
        .unwrap_or_default();
    POSTING_NS.with(|c| c.set(posting.as_nanos() as f64 / each as f64));
    let end = done.get().expect("every post arrived");
    (end - t0).as_nanos() as f64 / total as f64
}

/// ns per round trip: post, the handler answers on a channel, wait, again.
fn kernel_ping(rounds: u64) -> f64 {
    let mut k = Kernel::new().unwrap();
    let (tx, rx) = mpsc::channel::<u64>();
    let id = k
        .create(Session::new(()).on("_start", |_: &mut Ctx<'_, ()>| {}).on(
            "ping",
            move |ctx: &mut Ctx<'_, ()>| {
                let _ = tx.send(*ctx.arg::<u64>(0).unwrap());
            },
        ))
        .unwrap();
    let p = k.poster_holding(id).unwrap();
    let pinger = thread::spawn(move || {
        // A few unmeasured rounds first.
        for n in 0..1000u64 {
            p.post(id, "ping", (n,)).unwrap();
            rx.recv().unwrap();
        }
        let t0 = Instant::now();
        for n in 0..rounds {
            p.post(id, "ping", (n,)).unwrap();
            assert_eq!(rx.recv().unwrap(), n);
        }
        t0.elapsed()
    });
    k.run().unwrap();
    pinger.join().unwrap().as_nanos() as f64 / rounds as f64
}

/// The kernel's own post and dispatch, one thread: a session yields to itself `n` times.
fn same_thread_post(n: u64) -> f64 {
    let mut k = Kernel::new().unwrap();
    let took = Rc::new(Cell::new(Duration::ZERO));
    let t = Rc::clone(&took);
    k.create(
        Session::new((0u64, Instant::now()))
            .on("_start", |ctx: &mut Ctx<'_, (u64, Instant)>| {
                ctx.heap().1 = Instant::now();
                ctx.yield_("n", (0u64,))
            })
            .on("n", move |ctx: &mut Ctx<'_, (u64, Instant)>| {
                let v: u64 = *ctx.arg(0).unwrap();
                let h = ctx.heap();
                h.0 += 1;
                if h.0 < n {
                    let _ = ctx.yield_("n", (v + 1,));
                } else {
                    t.set(h.1.elapsed());
                }
            }),
    )
    .unwrap();
    k.run().unwrap();
    took.get().as_nanos() as f64 / n as f64
}

// ---------------------------------------------------------------------------------------
// The bare loop: mpsc + one mio::Waker, woken once per batch.

const WAKE: Token = Token(0);

/// The sending side: a channel and a waker written only when the loop has not been woken
/// since it last emptied the channel.
#[derive(Clone)]
struct BareSender {
    tx: mpsc::Sender<u64>,
    waker: Arc<Waker>,
    woken: Arc<AtomicBool>,
}

impl BareSender {
    fn send(&self, v: u64) {
        self.tx.send(v).unwrap();
        self.wake();
    }
    fn wake(&self) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.waker.wake().unwrap();
        }
    }
}

/// The receiving side: the poller, the channel, the flag, and the waker itself, which the
/// loop must outlive its senders with (a closed eventfd takes its pending event along).
struct BareLoop {
    poll: Poll,
    rx: mpsc::Receiver<u64>,
    woken: Arc<AtomicBool>,
    _waker: Arc<Waker>,
}

/// A bare loop and `threads` senders to it.
fn bare_loop(threads: usize) -> (BareLoop, Vec<BareSender>) {
    let poll = Poll::new().unwrap();
    let waker = Arc::new(Waker::new(poll.registry(), WAKE).unwrap());
    let woken = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let senders = (0..threads)
        .map(|_| BareSender {
            tx: tx.clone(),
            waker: Arc::clone(&waker),
            woken: Arc::clone(&woken),
        })
        .collect();
    (
        BareLoop {
            poll,
            rx,
            woken,
            _waker: waker,
        },
        senders,
    )
}

/// Polls and calls `f` for each message until `f` says stop.
fn run_bare(mut l: BareLoop, mut f: impl FnMut(u64) -> bool) {
    let mut events = Events::with_capacity(16);
    let (rx, woken) = (&l.rx, &l.woken);
    loop {
        l.poll.poll(&mut events, None).unwrap();
        // Clear first: a send after this wakes the loop again. A swap, not a store: the
        // sender's swap and this one are ordered, so either it sees the flag cleared and
        // wakes the loop, or the loop sees its message below.
        woken.swap(false, Ordering::AcqRel);
        while let Ok(v) = rx.try_recv() {
            if !f(v) {
                return;
            }
        }
    }
}

fn bare_stream(total: u64, threads: u64, mode: Mode) -> f64 {
    let (l, senders) = bare_loop(threads as usize);
    let each = total / threads;
    let start = Arc::new(std::sync::Barrier::new(threads as usize + 1));
    let handles: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(t, s)| {
            let start = Arc::clone(&start);
            let t = t as u64;
            thread::spawn(move || {
                start.wait();
                let (from, to) = (t * each, (t + 1) * each);
                match mode {
                    Mode::One | Mode::Bare => {
                        for n in from..to {
                            s.send(n);
                        }
                    }
                    Mode::Batch => {
                        let mut n = from;
                        while n < to {
                            for _ in 0..64.min(to - n) {
                                s.tx.send(n).unwrap();
                                n += 1;
                            }
                            s.wake();
                        }
                    }
                }
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    let mut count = 0u64;
    run_bare(l, |v| {
        count += 1;
        if count == total {
            assert!(v < total);
            return false;
        }
        true
    });
    let took = t0.elapsed();
    for h in handles {
        h.join().unwrap();
    }
    took.as_nanos() as f64 / total as f64
}

fn bare_ping(rounds: u64) -> f64 {
    let (l, mut senders) = bare_loop(1);
    let s = senders.pop().unwrap();
    let (back, answers) = mpsc::channel::<u64>();
    let pinger = thread::spawn(move || {
        for n in 0..1000u64 {
            s.send(n);
            answers.recv().unwrap();
        }
        let t0 = Instant::now();
        for n in 0..rounds {
            s.send(n);
            assert_eq!(answers.recv().unwrap(), n);
        }
        let took = t0.elapsed();
        s.send(u64::MAX);
        took
    });
    run_bare(l, |v| {
        if v == u64::MAX {
            return false;
        }
        back.send(v).unwrap();
        true
    });
    pinger.join().unwrap().as_nanos() as f64 / rounds as f64
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run tiny then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let posts = if quick {
        10_000
    } else {
        env_usize("POSTS", 1_000_000)
    } as u64;
    let pings = if quick {
        1000
    } else {
        env_usize("PINGS", 100_000)
    } as u64;
    let runs = if quick { 1 } else { env_usize("RUNS", 5) };
    let picks: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let picked = |name: &str| picks.is_empty() || picks.iter().any(|p| name.contains(p.as_str()));

    println!(
        "cross-thread posts: {posts} per stream, {pings} round trips, best of {runs}; \
         kernel's own post_dispatch: {:.1} ns",
        best(runs, || same_thread_post(posts))
    );
    println!(
        "| operation | Poster ns/post | mpsc + Waker ns/msg | Poster / bare | posting thread ns/post |"
    );
    println!("|---|---:|---:|---:|---:|");
    type Op = (&'static str, Box<dyn Fn() -> f64>, Box<dyn Fn() -> f64>);
    let ops: Vec<Op> = vec![
        (
            "stream",
            Box::new(move || kernel_stream(posts, 1, Mode::One)),
            Box::new(move || bare_stream(posts, 1, Mode::One)),
        ),
        (
            "stream_noargs",
            Box::new(move || kernel_stream(posts, 1, Mode::Bare)),
            Box::new(move || bare_stream(posts, 1, Mode::Bare)),
        ),
        (
            "stream_batch",
            Box::new(move || kernel_stream(posts, 1, Mode::Batch)),
            Box::new(move || bare_stream(posts, 1, Mode::Batch)),
        ),
        (
            "stream_2threads",
            Box::new(move || kernel_stream(posts, 2, Mode::One)),
            Box::new(move || bare_stream(posts, 2, Mode::One)),
        ),
        (
            "ping",
            Box::new(move || kernel_ping(pings)),
            Box::new(move || bare_ping(pings)),
        ),
    ];
    for (name, ours, bare) in ops {
        if !picked(name) {
            continue;
        }
        // Interleaved, so both see the same machine.
        let (mut o, mut b, mut posting) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
        for _ in 0..runs {
            POSTING_NS.with(|c| c.set(f64::NAN));
            o = o.min(ours());
            posting = posting.min(POSTING_NS.with(Cell::get));
            b = b.min(bare());
        }
        let posting = if posting.is_finite() {
            format!("{posting:.1}")
        } else {
            "–".to_owned()
        };
        println!("| {name} | {o:.1} | {b:.1} | {:.2}x | {posting} |", o / b);
    }
}
