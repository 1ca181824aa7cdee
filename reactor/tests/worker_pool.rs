//! The worker pool ([`reactor::component::WorkerPool`]): every job's result comes back
//! once, to the session that asked, with no more threads than allowed; panics, a full
//! queue and shutdown are reported, not lost.

mod common;

use reactor::component::{JobError, JobId, PoolError, WorkerPool};
use reactor::{Ctx, Kernel, Session};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// A gate jobs wait on until the test opens it (bounded: a stuck test fails).
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    fn wait(&self) {
        let g = self.open.lock().unwrap();
        let (g, _) = self
            .cond
            .wait_timeout_while(g, common::LIMIT, |open| !*open)
            .unwrap();
        assert!(*g, "the gate was never opened");
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }
}

#[test]
fn every_job_returns_its_result_once_with_at_most_n_threads() {
    let _w = common::timeout(30, "every_job_returns");
    const JOBS: u64 = 200;
    let mut k = Kernel::new().unwrap();
    let pool = WorkerPool::builder().threads(3).build(&mut k).unwrap();
    let busy = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let results: Rc<RefCell<HashMap<JobId, u64>>> = Rc::default();
    let (b, m, r) = (Arc::clone(&busy), Arc::clone(&most), Rc::clone(&results));
    let asked: Rc<RefCell<HashMap<JobId, u64>>> = Rc::default();
    let a = Rc::clone(&asked);
    k.create(
        Session::new(pool.clone())
            .on("_start", move |ctx: &mut Ctx<'_, WorkerPool>| {
                let pool = ctx.heap().clone();
                for i in 0..JOBS {
                    let (b, m) = (Arc::clone(&b), Arc::clone(&m));
                    let id = pool
                        .run(ctx, "squared", move || {
                            let now = b.fetch_add(1, Ordering::SeqCst) + 1;
                            m.fetch_max(now, Ordering::SeqCst);
                            let v = i * i;
                            b.fetch_sub(1, Ordering::SeqCst);
                            v
                        })
                        .unwrap();
                    a.borrow_mut().insert(id, i);
                }
            })
            .on("squared", move |ctx: &mut Ctx<'_, WorkerPool>| {
                let id: JobId = *ctx.arg(0).unwrap();
                let v = ctx
                    .arg::<Result<u64, JobError>>(1)
                    .unwrap()
                    .clone()
                    .unwrap();
                assert!(
                    r.borrow_mut().insert(id, v).is_none(),
                    "{id} answered twice"
                );
            }),
    )
    .unwrap();
    // The kernel runs until every result is in: the jobs keep the session alive.
    k.run().unwrap();
    let (results, asked) = (results.borrow(), asked.borrow());
    assert_eq!(results.len(), JOBS as usize);
    for (id, i) in asked.iter() {
        assert_eq!(results[id], i * i, "{id}");
    }
    assert!(most.load(Ordering::SeqCst) <= 3, "more than 3 jobs at once");
    assert!(pool.workers() <= 3);
}

#[test]
fn a_panicking_job_is_an_error_and_the_pool_goes_on() {
    let _w = common::timeout(30, "a_panicking_job");
    let mut k = Kernel::new().unwrap();
    let pool = WorkerPool::builder().threads(1).build(&mut k).unwrap();
    let got: Rc<RefCell<Vec<Result<u32, JobError>>>> = Rc::default();
    let g = Rc::clone(&got);
    k.create(
        Session::new(pool)
            .on("_start", |ctx: &mut Ctx<'_, WorkerPool>| {
                let pool = ctx.heap().clone();
                pool.run(ctx, "done", || -> u32 { panic!("boom") }).unwrap();
                pool.run(ctx, "done", || 7u32).unwrap();
            })
            .on("done", move |ctx: &mut Ctx<'_, WorkerPool>| {
                let r = ctx.arg::<Result<u32, JobError>>(1).unwrap().clone();
                g.borrow_mut().push(r);
            }),
    )
    .unwrap();
    k.run().unwrap();
    assert_eq!(
        *got.borrow(),
        vec![Err(JobError::Panicked("boom".to_owned())), Ok(7)]
    );
}

#[test]
fn a_full_queue_and_a_shut_down_pool_refuse_jobs() {
    let _w = common::timeout(30, "a_full_queue");
    let mut k = Kernel::new().unwrap();
    let pool = WorkerPool::builder()
        .threads(1)
        .max_queued(2)
        .build(&mut k)
        .unwrap();
    let gate = Arc::new(Gate::default());
    let started = Arc::new((Mutex::new(false), Condvar::new()));
    let outcomes: Rc<RefCell<Vec<String>>> = Rc::default();
    let o = Rc::clone(&outcomes);
    let (gt, st) = (Arc::clone(&gate), Arc::clone(&started));
    k.create(
        Session::new(pool)
            .on("_start", move |ctx: &mut Ctx<'_, WorkerPool>| {
                let pool = ctx.heap().clone();
                let (g, s) = (Arc::clone(&gt), Arc::clone(&st));
                pool.run(ctx, "done", move || {
                    *s.0.lock().unwrap() = true;
                    s.1.notify_all();
                    g.wait();
                    "ran"
                })
                .unwrap();
                // Wait (bounded) until the one thread has taken the first job.
                let (m, c) = &*st;
                let (started, _) = c
                    .wait_timeout_while(m.lock().unwrap(), common::LIMIT, |s| !*s)
                    .unwrap();
                assert!(*started);
                drop(started);
                pool.run(ctx, "done", || "ran").unwrap();
                pool.run(ctx, "done", || "ran").unwrap();
                assert!(matches!(
                    pool.run(ctx, "done", || "ran"),
                    Err(PoolError::Full)
                ));
                assert_eq!(pool.queued(), 2);
                assert_eq!(pool.running(), 1);
                // Shut down: the two queued jobs are cancelled, the running one finishes.
                pool.shutdown();
                assert!(matches!(
                    pool.run(ctx, "done", || "ran"),
                    Err(PoolError::ShutDown)
                ));
                gt.open();
            })
            .on("done", move |ctx: &mut Ctx<'_, WorkerPool>| {
                let r = ctx.arg::<Result<&str, JobError>>(1).unwrap();
                o.borrow_mut().push(match r {
                    Ok(s) => (*s).to_owned(),
                    Err(e) => e.to_string(),
                });
            }),
    )
    .unwrap();
    k.run().unwrap();
    let mut got = outcomes.borrow().clone();
    got.sort();
    assert_eq!(
        got,
        vec![
            "job cancelled: the pool was shut down",
            "job cancelled: the pool was shut down",
            "ran"
        ]
    );
}

#[test]
fn dropping_the_pool_cancels_what_is_queued() {
    let _w = common::timeout(30, "dropping_the_pool");
    let mut k = Kernel::new().unwrap();
    let gate = Arc::new(Gate::default());
    let outcomes: Rc<RefCell<Vec<bool>>> = Rc::default();
    let o = Rc::clone(&outcomes);
    let g = Arc::clone(&gate);
    let pool = WorkerPool::builder().threads(1).build(&mut k).unwrap();
    k.create(
        Session::new(Some(pool))
            .on("_start", move |ctx: &mut Ctx<'_, Option<WorkerPool>>| {
                let pool = ctx.heap().take().unwrap();
                let g = Arc::clone(&g);
                pool.run(ctx, "done", move || g.wait()).unwrap();
                for _ in 0..5 {
                    pool.run(ctx, "done", || ()).unwrap();
                }
                // The last handle goes here: whatever has not started is cancelled.
                drop(pool);
            })
            .on("done", move |ctx: &mut Ctx<'_, Option<WorkerPool>>| {
                let r = ctx.arg::<Result<(), JobError>>(1).unwrap();
                o.borrow_mut().push(r.is_ok());
                if o.borrow().len() == 5 {
                    gate.open();
                }
            }),
    )
    .unwrap();
    k.run().unwrap();
    let got = outcomes.borrow();
    assert_eq!(got.len(), 6);
    // At most the first job ran; every other one was cancelled, and all were answered.
    assert!(got.iter().filter(|ok| **ok).count() <= 1, "{got:?}");
}

#[test]
fn outside_a_handler_there_is_no_one_to_answer() {
    let mut k = Kernel::new().unwrap();
    let pool = WorkerPool::builder().build(&mut k).unwrap();
    assert!(matches!(
        pool.run(&mut k, "x", || ()),
        Err(PoolError::Kernel(reactor::Error::NoActiveSession))
    ));
    assert_eq!(pool.workers(), 0, "no thread starts for nothing");
}

#[test]
fn an_idle_pool_does_not_keep_the_kernel_running() {
    let _w = common::timeout(20, "an_idle_pool");
    let mut k = Kernel::new().unwrap();
    let pool = WorkerPool::builder().build(&mut k).unwrap();
    k.create(Session::new(pool).on("_start", |_: &mut Ctx<'_, WorkerPool>| {}))
        .unwrap();
    k.run().unwrap();
}
