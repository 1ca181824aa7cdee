//! `States`: handlers built once and shared by the sessions created from them.

use reactor::{Ctx, Error, Kernel, Session, SessionId, States, Value};
use std::cell::RefCell;
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

/// States whose `_start` posts `ping` to itself; `ping` logs the session's heap label.
fn pinging(log: &Log) -> States<String> {
    let l = Rc::clone(log);
    States::new()
        .on("_start", |ctx: &mut Ctx<'_, String>| ctx.yield_("ping", ()))
        .on("ping", move |ctx: &mut Ctx<'_, String>| {
            let who = ctx.heap().clone();
            l.borrow_mut().push(format!("ping {who}"));
        })
}

#[test]
fn sessions_from_the_same_states_each_run_with_their_own_heap() {
    let log: Log = Rc::default();
    let states = pinging(&log);
    let mut k = Kernel::new().unwrap();
    for name in ["a", "b", "c"] {
        k.create(Session::from_states(name.to_owned(), &states))
            .unwrap();
    }
    k.run().unwrap();
    assert_eq!(*log.borrow(), ["ping a", "ping b", "ping c"]);
}

/// States whose `ping` logs "shared ping" and the heap's label, and whose `rewire` gives
/// its session a `ping` of its own (logging "own ping") and then removes itself.
fn rewiring(log: &Log) -> States<String> {
    let l = Rc::clone(log);
    States::new()
        .on("_start", |_: &mut Ctx<'_, String>| {})
        .on("ping", move |ctx: &mut Ctx<'_, String>| {
            let who = ctx.heap().clone();
            l.borrow_mut().push(format!("shared ping {who}"));
        })
        .on("rewire", |ctx: &mut Ctx<'_, String>| -> Result<(), Error> {
            let l = ctx.arg::<Log>(0).cloned().expect("log");
            ctx.state("ping", move |ctx: &mut Ctx<'_, String>| {
                let who = ctx.heap().clone();
                l.borrow_mut().push(format!("own ping {who}"));
            })?;
            ctx.remove_state("rewire")
        })
}

/// A kernel with two sessions made from `states`, labelled "a" and "b".
fn kernel_with_a_and_b(states: &States<String>) -> (Kernel, SessionId, SessionId) {
    let mut k = Kernel::new().unwrap();
    let a = k
        .create(Session::from_states("a".to_owned(), states))
        .unwrap();
    let b = k
        .create(Session::from_states("b".to_owned(), states))
        .unwrap();
    (k, a, b)
}

#[test]
fn a_session_that_changes_its_handlers_leaves_the_others_alone() {
    let log: Log = Rc::default();
    let states = rewiring(&log);
    let (mut k, a, b) = kernel_with_a_and_b(&states);
    k.call(a, "rewire", (Rc::clone(&log),)).unwrap();
    k.call(a, "ping", ()).unwrap();
    k.call(b, "ping", ()).unwrap();
    // `b` still has `rewire`; `a` removed its own.
    assert!(k.call(b, "rewire", (Rc::clone(&log),)).is_ok());
    k.call(b, "ping", ()).unwrap();
    // A session created afterwards gets the shared table as it was.
    let c = k
        .create(Session::from_states("c".to_owned(), &states))
        .unwrap();
    k.call(c, "ping", ()).unwrap();
    assert_eq!(
        *log.borrow(),
        ["own ping a", "shared ping b", "own ping b", "shared ping c"]
    );
}

#[test]
fn handlers_added_to_one_session_go_on_top_of_the_shared_ones() {
    let log: Log = Rc::default();
    let states = pinging(&log);
    let l = Rc::clone(&log);
    let mut k = Kernel::new().unwrap();
    k.create(Session::from_states("x".to_owned(), &states).on(
        "ping",
        move |ctx: &mut Ctx<'_, String>| {
            let who = ctx.heap().clone();
            l.borrow_mut().push(format!("override {who}"));
        },
    ))
    .unwrap();
    k.create(Session::from_states("y".to_owned(), &states))
        .unwrap();
    k.run().unwrap();
    assert_eq!(*log.borrow(), ["override x", "ping y"]);
}

#[test]
fn states_work_in_every_kernel_they_are_used_in() {
    // Event ids differ between kernels: each interns the names for itself.
    let log: Log = Rc::default();
    let states = pinging(&log);
    let mut other = Kernel::new().unwrap();
    // Names interned in a different order in the second kernel.
    other
        .create(
            Session::new(())
                .on("_start", |_: &mut Ctx<'_, ()>| {})
                .on("zzz", |_: &mut Ctx<'_, ()>| {}),
        )
        .unwrap();
    let mut k = Kernel::new().unwrap();
    k.create(Session::from_states("k1".to_owned(), &states))
        .unwrap();
    other
        .create(Session::from_states("k2".to_owned(), &states))
        .unwrap();
    k.create(Session::from_states("k1b".to_owned(), &states))
        .unwrap();
    k.run().unwrap();
    other.run().unwrap();
    assert_eq!(*log.borrow(), ["ping k1", "ping k1b", "ping k2"]);
}

#[test]
fn states_without_start_are_refused_and_adding_to_used_states_makes_new_ones() {
    let mut k = Kernel::new().unwrap();
    let none: States<()> = States::new().on("ping", |_: &mut Ctx<'_, ()>| {});
    assert!(matches!(
        k.create(Session::from_states((), &none)),
        Err(Error::NoStartState)
    ));
    let log: Log = Rc::default();
    let base = pinging(&log);
    let first = k
        .create(Session::from_states("old".to_owned(), &base))
        .unwrap();
    let l = Rc::clone(&log);
    let more = base.clone().on("extra", move |_: &mut Ctx<'_, String>| {
        l.borrow_mut().push("extra".to_owned());
    });
    let second = k
        .create(Session::from_states("new".to_owned(), &more))
        .unwrap();
    k.call(second, "extra", ()).unwrap();
    // The first session was made from `base`, which has no `extra`: nothing runs.
    let _ = k.call(first, "extra", ());
    k.run().unwrap();
    assert_eq!(*log.borrow(), ["extra", "ping old", "ping new"]);
}

/// A counter whose methods are handlers (POE's object states).
struct Counter {
    name: &'static str,
    log: Log,
}

impl Counter {
    fn hit(&self, ctx: &mut Ctx<'_, String>) {
        let heap = ctx.heap().clone();
        self.log
            .borrow_mut()
            .push(format!("{} hit {heap} via {}", self.name, ctx.event()));
    }
}

fn package_hit(package: &'static str, ctx: &mut Ctx<'_, String>) -> Value {
    Value::new(format!("{package}::hit for {}", ctx.heap()))
}

#[test]
fn object_and_package_states_can_be_added_at_run_time() {
    // POE: $kernel->state(hit => $object, 'hit'); $kernel->state(pkg => 'Pkg', 'hit').
    let log: Log = Rc::default();
    let counter = Rc::new(Counter {
        name: "counter",
        log: Rc::clone(&log),
    });
    let mut k = Kernel::new().unwrap();
    let s = k
        .create(
            Session::new("h".to_owned())
                .on("_start", |ctx: &mut Ctx<'_, String>| ctx.alias_set("h"))
                .on(
                    "wire",
                    move |ctx: &mut Ctx<'_, String>| -> Result<(), Error> {
                        ctx.object_state("hit", Rc::clone(&counter), Counter::hit)?;
                        ctx.package_state("pkg", "Pkg", package_hit)
                    },
                ),
        )
        .unwrap();
    // Before wiring, nothing handles "hit": the call returns no value.
    assert!(k.call(s, "hit", ()).unwrap().is_none());
    assert!(log.borrow().is_empty());
    k.call(s, "wire", ()).unwrap();
    k.call(s, "hit", ()).unwrap();
    let v = k.call(s, "pkg", ()).unwrap();
    assert_eq!(
        v.get::<String>().map(String::as_str),
        Some("Pkg::hit for h")
    );
    assert_eq!(*log.borrow(), ["counter hit h via hit"]);
}

#[test]
fn sessions_sharing_states_keep_their_own_handlers_in_any_order() {
    // The kernel keeps the handler it found last for the next event of the same name to
    // the same table: the same event to two sessions of one table, then one of them
    // changes its handler (it gets a copy of the table) and both are called again.
    let log: Log = Rc::default();
    let states = rewiring(&log);
    let (mut k, a, b) = kernel_with_a_and_b(&states);
    k.call(b, "ping", ()).unwrap();
    k.call(a, "ping", ()).unwrap();
    k.call(a, "rewire", (Rc::clone(&log),)).unwrap();
    k.call(a, "ping", ()).unwrap();
    k.call(b, "ping", ()).unwrap();
    k.call(a, "ping", ()).unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "shared ping b",
            "shared ping a",
            "own ping a",
            "shared ping b",
            "own ping a"
        ]
    );
}
