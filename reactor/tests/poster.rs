//! Posting from other threads ([`reactor::Poster`]): every post arrives once, in the
//! order its thread made it; no wake-up is lost; a poster keeps the kernel running only
//! when it holds a session; a kernel that is gone is a typed error.

mod common;

use reactor::{Ctx, Kernel, PostError, Poster, Session, SessionId, KERNEL};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

/// What the collecting session saw: per thread, the numbers in the order they came.
type Seen = Rc<RefCell<Vec<Vec<u32>>>>;

/// A session aliased "sink" that records `(thread, n)` posts and keeps itself alive with a
/// holding poster until every thread said "done".
fn sink(k: &mut Kernel, threads: usize) -> (SessionId, Seen) {
    let seen: Seen = Rc::new(RefCell::new(vec![Vec::new(); threads]));
    let s = Rc::clone(&seen);
    let id = k
        .create(
            Session::new(0usize)
                .on("_start", |ctx: &mut Ctx<'_, usize>| ctx.alias_set("sink"))
                .on("n", move |ctx: &mut Ctx<'_, usize>| {
                    let (t, n) = (*ctx.arg::<usize>(0).unwrap(), *ctx.arg::<u32>(1).unwrap());
                    s.borrow_mut()[t].push(n);
                })
                .on("done", move |ctx: &mut Ctx<'_, usize>| {
                    *ctx.heap() += 1;
                    if *ctx.heap() == threads {
                        ctx.alias_remove("sink").unwrap();
                    }
                }),
        )
        .unwrap();
    (id, seen)
}

#[test]
fn posts_from_four_threads_arrive_once_in_per_thread_order() {
    let _w = common::timeout(60, "posts_from_four_threads");
    const THREADS: usize = 4;
    const EACH: u32 = 25_000; // 100k posts in all
    let mut k = Kernel::new().unwrap();
    let (id, seen) = sink(&mut k, THREADS);
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let p = k.poster_holding(id).unwrap();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for n in 0..EACH {
                    // Half by id, half by alias; every tenth through a short batch.
                    if n % 10 == 0 {
                        let mut b = p.batch().unwrap();
                        b.post(id, "n", (t, n)).unwrap();
                    } else if n % 2 == 0 {
                        p.post(id, "n", (t, n)).unwrap();
                    } else {
                        p.post("sink", "n", (t, n)).unwrap();
                    }
                }
                p.post("sink", "done", ()).unwrap();
            })
        })
        .collect();
    k.run().unwrap();
    for w in workers {
        w.join().unwrap();
    }
    let seen = seen.borrow();
    for (t, got) in seen.iter().enumerate() {
        assert_eq!(got.len(), EACH as usize, "thread {t}: {} posts", got.len());
        assert!(
            got.iter().copied().eq(0..EACH),
            "thread {t}'s posts out of order or repeated"
        );
    }
}

/// Round trips between threads and the kernel, each waiting for the answer to its post
/// before posting again: a lost wake-up leaves the kernel asleep in its poll (it has
/// nothing else to wait for) and the test hangs, which the watchdog turns into a failure.
#[test]
fn no_wake_up_is_lost_under_a_race() {
    let _w = common::timeout(60, "no_wake_up_is_lost");
    const THREADS: usize = 3;
    const ROUNDS: u32 = 20_000;
    let mut k = Kernel::new().unwrap();
    let mut answers = Vec::new();
    let mut txs = Vec::new();
    for _ in 0..THREADS {
        let (tx, rx) = mpsc::channel::<u32>();
        txs.push(tx);
        answers.push(rx);
    }
    let id = k
        .create(
            Session::new(0usize)
                .on("_start", |_: &mut Ctx<'_, usize>| {})
                .on("ping", move |ctx: &mut Ctx<'_, usize>| {
                    let (t, n) = (*ctx.arg::<usize>(0).unwrap(), *ctx.arg::<u32>(1).unwrap());
                    let _ = txs[t].send(n);
                }),
        )
        .unwrap();
    let workers: Vec<_> = answers
        .into_iter()
        .enumerate()
        .map(|(t, rx)| {
            let p = k.poster_holding(id).unwrap();
            thread::spawn(move || {
                for n in 0..ROUNDS {
                    p.post(id, "ping", (t, n)).unwrap();
                    assert_eq!(rx.recv().unwrap(), n);
                }
            })
        })
        .collect();
    // The workers hold the session: run returns once the last of them is done.
    k.run().unwrap();
    for w in workers {
        w.join().unwrap();
    }
}

#[test]
fn an_idle_poster_does_not_keep_the_kernel_running() {
    let _w = common::timeout(20, "an_idle_poster");
    let mut k = Kernel::new().unwrap();
    let p = k.poster().unwrap();
    k.create(Session::new(()).on("_start", |ctx: &mut Ctx<'_, ()>| ctx.yield_("x", ())))
        .unwrap();
    k.run().unwrap();
    assert_eq!(k.session_count(), 0);
    // The kernel still exists: posts are accepted (for a later run), to no one.
    assert!(p.is_open());
    p.post("nobody", "x", ()).unwrap();
    k.run().unwrap();
}

#[test]
fn a_holding_poster_keeps_its_session_until_the_last_clone_is_dropped() {
    let _w = common::timeout(20, "a_holding_poster");
    let mut k = Kernel::new().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = Rc::clone(&got);
    let id = k
        .create(Session::new(()).on("_start", |_: &mut Ctx<'_, ()>| {}).on(
            "hello",
            move |ctx: &mut Ctx<'_, ()>| {
                g.borrow_mut()
                    .push((ctx.arg::<String>(0).unwrap().clone(), ctx.sender()));
            },
        ))
        .unwrap();
    let p = k.poster_holding(id).unwrap();
    assert_eq!(p.holds(), Some(id));
    let q = p.clone();
    let (go, wait) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        wait.recv().unwrap();
        q.post(id, "hello", ("from a thread".to_owned(),)).unwrap();
        // The last clone goes with the thread.
    });
    drop(p);
    // Without the hold the session would be collected at once and run would return.
    go.send(()).unwrap();
    k.run().unwrap();
    t.join().unwrap();
    assert_eq!(
        *got.borrow(),
        vec![("from a thread".to_owned(), KERNEL)],
        "one post, sent by the kernel"
    );
}

#[test]
fn a_post_to_a_missing_session_is_dropped() {
    let _w = common::timeout(20, "a_post_to_a_missing_session");
    let mut k = Kernel::new().unwrap();
    let p = k.poster().unwrap();
    let got = Rc::new(RefCell::new(0u32));
    let g = Rc::clone(&got);
    let id = k
        .create(
            Session::new(())
                .on("_start", |ctx: &mut Ctx<'_, ()>| ctx.alias_set("here"))
                .on("x", move |ctx: &mut Ctx<'_, ()>| {
                    *g.borrow_mut() += 1;
                    ctx.alias_remove("here").unwrap();
                }),
        )
        .unwrap();
    p.post("not here", "x", ()).unwrap();
    p.post(SessionId::from_raw(id.get() + 1000), "x", ())
        .unwrap();
    p.post(KERNEL, "x", ()).unwrap();
    p.post("here", "x", ()).unwrap();
    k.run().unwrap();
    assert_eq!(*got.borrow(), 1);
}

#[test]
fn posting_to_a_dropped_kernel_is_an_error() {
    let mut k = Kernel::new().unwrap();
    let p: Poster = k.poster().unwrap();
    drop(k);
    assert!(!p.is_open());
    assert!(matches!(p.post("x", "y", ()), Err(PostError::KernelGone)));
    assert!(matches!(p.batch(), Err(PostError::KernelGone)));
    // From another thread too, and the error says what happened.
    let e = thread::spawn(move || p.post("x", "y", (1u8,)).unwrap_err())
        .join()
        .unwrap();
    assert_eq!(e.to_string(), "the kernel is gone");
}

#[test]
fn an_empty_event_name_is_refused() {
    let mut k = Kernel::new().unwrap();
    let p = k.poster().unwrap();
    assert!(matches!(p.post("x", "", ()), Err(PostError::EmptyEvent)));
    assert!(matches!(
        p.post("x", String::new(), ()),
        Err(PostError::EmptyEvent)
    ));
}

#[test]
fn names_made_at_run_time_and_event_ids_reach_their_handlers() {
    let _w = common::timeout(20, "names_made_at_run_time");
    let mut k = Kernel::new().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = Rc::clone(&got);
    let id = k
        .create(Session::new(()).on("_start", |_: &mut Ctx<'_, ()>| {}).on(
            "_default",
            move |ctx: &mut Ctx<'_, ()>| {
                let name = ctx.arg::<String>(0).unwrap().clone();
                if !name.starts_with('_') {
                    g.borrow_mut().push(name);
                }
            },
        ))
        .unwrap();
    let p = k.poster_holding(id).unwrap();
    thread::spawn(move || {
        p.post(id, format!("made_{}", 7), ()).unwrap();
        p.post(id, reactor::EventId::of("by_id"), ()).unwrap();
    })
    .join()
    .unwrap();
    k.run().unwrap();
    assert_eq!(*got.borrow(), vec!["made_7", "by_id"]);
}

#[test]
fn posts_from_inside_a_handler_of_the_same_kernel_work_too() {
    let _w = common::timeout(20, "posts_from_inside");
    // A poster used on the kernel's own thread is only a slower post.
    let mut k = Kernel::new().unwrap();
    let p = k.poster().unwrap();
    let n = Rc::new(RefCell::new(0u32));
    let m = Rc::clone(&n);
    k.create(
        Session::new(p)
            .on("_start", |ctx: &mut Ctx<'_, Poster>| {
                let me = ctx.active_session();
                ctx.heap().post(me, "tick", (0u32,)).unwrap();
                ctx.refcount_increment(me, "test").unwrap();
            })
            .on("tick", move |ctx: &mut Ctx<'_, Poster>| {
                let i = *ctx.arg::<u32>(0).unwrap();
                *m.borrow_mut() = i;
                let me = ctx.active_session();
                if i < 100 {
                    ctx.heap().post(me, "tick", (i + 1,)).unwrap();
                } else {
                    ctx.refcount_decrement(me, "test").unwrap();
                }
            }),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(*n.borrow(), 100);
}
