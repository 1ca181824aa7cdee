//! Ports POE's `t/10_units/06_queues/01_array.t` (basic `POE::Queue::Array` operations:
//! ids, dequeue order, removal by id with ESRCH/EPERM, removal by filter, peeking,
//! priority adjustment with FIFO among equal priorities, large-queue re-prioritisation)
//! to [`Queue`], and adds a randomized comparison against a sorted-`Vec`
//! model over many mixed operations.
//!
//! Mapping: `enqueue` returns an [`ItemId`] whose `seq()` is POE's id; `dequeue_next` is
//! `dequeue`; `remove_item` is `remove_if` (`QueueError::NotFound` ~ ESRCH,
//! `QueueError::Refused` ~ EPERM); `remove_items` is `remove_matching` (which has no count
//! limit: every call below matches at most the count upstream passes); `peek_items` is
//! `iter` sorted by time; `adjust_priority`/`set_priority` are `retime_if`.

use super::model_tests::Model;
use super::{ItemId, Queue, QueueError};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

fn always_ok<T>(_: &T) -> bool {
    true
}
fn never_ok<T>(_: &T) -> bool {
    false
}

/// `(priority, id, payload)` as POE's `dequeue_next` returns them.
fn dq<T>(q: &mut Queue<T>) -> Option<(i64, u64, T)> {
    q.dequeue().map(|(t, id, p)| (t, id.seq(), p))
}

/// Upstream's `enqueue_events`: checks each id and returns them by payload.
fn enqueue_events(
    q: &mut Queue<&'static str>,
    events: &[(&'static str, i64)],
    mut id: u64,
) -> HashMap<&'static str, ItemId> {
    let mut ids = HashMap::new();
    for &(ev, prio) in events {
        let got = q.enqueue(prio, ev);
        assert_eq!(got.seq(), id, "enqueued event {ev} correctly");
        id += 1;
        ids.insert(ev, got);
    }
    ids
}

fn odd_letters(s: &&str) -> bool {
    s.contains(['a', 'c', 'e'])
}
fn even_letters(s: &&str) -> bool {
    s.contains(['b', 'd', 'f'])
}

#[test]
fn basic_queue_operations() {
    let mut q: Queue<&'static str> = Queue::new();

    assert_eq!(q.len(), 0, "queue begins empty");
    assert!(q.is_empty());
    assert!(q.dequeue().is_none(), "can't dequeue from empty queue");
    assert_eq!(q.next_time(), None);
    assert!(q.peek().is_none());

    assert_eq!(q.enqueue(1, "one").seq(), 1, "first enqueue has id 1");
    assert_eq!(q.enqueue(3, "tre").seq(), 2, "second enqueue has id 2");
    assert_eq!(q.enqueue(2, "two").seq(), 3, "third enqueue has id 3");

    assert_eq!(q.next_time(), Some(1));
    let (t, id, p) = q.peek().expect("peek");
    assert_eq!((t, id.seq(), *p), (1, 1, "one"));

    assert_eq!(
        dq(&mut q),
        Some((1, 1, "one")),
        "event one dequeued correctly"
    );
    assert_eq!(
        dq(&mut q),
        Some((2, 3, "two")),
        "event two dequeued correctly"
    );
    assert_eq!(
        dq(&mut q),
        Some((3, 2, "tre")),
        "event three dequeued correctly"
    );
    assert_eq!(dq(&mut q), None, "empty queue marker dequeued correctly");

    let ids = enqueue_events(
        &mut q,
        &[("a", 1), ("c", 3), ("e", 5), ("b", 2), ("d", 4)],
        4,
    );

    assert_eq!(
        q.remove_if(ids["b"], always_ok),
        Ok((2, "b")),
        "removed event b by its ID"
    );
    assert_eq!(ids["b"].seq(), 7);
    assert_eq!(
        q.remove_if(ids["c"], always_ok),
        Ok((3, "c")),
        "removed event c by its ID"
    );
    assert_eq!(ids["c"].seq(), 5);
    assert_eq!(
        q.remove_if(ids["d"], always_ok),
        Ok((4, "d")),
        "removed event d by its ID"
    );
    assert_eq!(ids["d"].seq(), 8);

    assert_eq!(
        q.remove_if(ids["e"], never_ok),
        Err(QueueError::Refused),
        "didn't have permission to remove event e (EPERM)"
    );
    assert_eq!(ids["e"].seq(), 6);
    assert_eq!(
        q.remove_if(ids["d"], always_ok),
        Err(QueueError::NotFound),
        "couldn't remove nonexistent event d (ESRCH)"
    );
    assert_eq!(q.remove(ids["d"]), None);

    assert_eq!(dq(&mut q), Some((1, 4, "a")), "dequeued event a correctly");
    assert_eq!(dq(&mut q), Some((5, 6, "e")), "dequeued event e correctly");
    assert_eq!(dq(&mut q), None, "empty queue marker dequeued correctly");

    enqueue_events(
        &mut q,
        &[("a", 1), ("c", 3), ("e", 5), ("b", 2), ("d", 4), ("f", 6)],
        9,
    );
    assert_eq!(q.len(), 6, "queue contains six events");

    let as_tuples = |v: Vec<(i64, ItemId, &'static str)>| -> Vec<(i64, u64, &'static str)> {
        v.into_iter().map(|(t, id, p)| (t, id.seq(), p)).collect()
    };

    let items = as_tuples(q.remove_matching(odd_letters));
    assert_eq!(
        items,
        [(1, 9, "a"), (3, 10, "c"), (5, 11, "e")],
        "removed odd letters from queue"
    );
    assert_eq!(q.len(), 3, "leaving three events");

    let items = as_tuples(q.remove_matching(odd_letters));
    assert_eq!(items, [], "no more odd letters to remove");

    let items = as_tuples(q.remove_matching(even_letters));
    assert_eq!(
        items,
        [(2, 12, "b"), (4, 13, "d"), (6, 14, "f")],
        "removed even letters from queue"
    );
    assert_eq!(q.len(), 0, "leaving the queue empty");

    let ids = enqueue_events(
        &mut q,
        &[
            ("a", 10),
            ("b", 20),
            ("c", 30),
            ("d", 40),
            ("e", 50),
            ("f", 60),
        ],
        15,
    );
    assert_eq!(q.len(), 6, "leaving six events in the queue");

    // peek_items(\&even_letters): matching items in queue order, left in place.
    let mut items: Vec<(i64, u64, &str)> = q
        .iter()
        .filter(|(_, _, p)| even_letters(p))
        .map(|(t, id, p)| (t, id.seq(), *p))
        .collect();
    items.sort_unstable();
    assert_eq!(
        items,
        [(20, 16, "b"), (40, 18, "d"), (60, 20, "f")],
        "found even letters in queue"
    );
    assert_eq!(q.len(), 6, "peeking removes nothing");

    assert_eq!(ids["e"].seq(), 19);
    assert_eq!(
        q.retime_if(ids["e"], always_ok, |t| t - 15),
        Ok(35),
        "adjusted event e priority by -15"
    );
    assert_eq!(ids["b"].seq(), 16);
    assert_eq!(
        q.retime_if(ids["b"], always_ok, |t| t + 15),
        Ok(35),
        "adjusted event b priority by +15"
    );
    assert_eq!(q.get(ids["b"]).map(|(t, p)| (t, *p)), Some((35, "b")));

    let items = as_tuples(q.remove_matching(always_ok));
    assert_eq!(
        items,
        [
            (10, 15, "a"),
            (30, 17, "c"),
            (35, 19, "e"), // e got there first
            (35, 16, "b"), // b got there second
            (40, 18, "d"),
            (60, 20, "f"),
        ],
        "colliding priorities are FIFO"
    );
    assert_eq!(q.len(), 0, "full queue removal leaves zero events");

    // Refusals and stale ids on re-timing too.
    assert_eq!(
        q.retime_if(ids["a"], always_ok, |t| t),
        Err(QueueError::NotFound)
    );
    let id = q.enqueue(1, "z");
    assert_eq!(
        q.retime_if(id, never_ok, |t| t + 1),
        Err(QueueError::Refused)
    );
    assert_eq!(q.next_time(), Some(1), "a refused re-time changes nothing");
}

// ------------------------------------------------------------------ large queue tests

/// Upstream's `shuffled_list(n)`: 0..n in random order.
fn shuffled_list(rng: &mut StdRng, n: i64) -> Vec<i64> {
    let mut v: Vec<i64> = (0..n).collect();
    v.shuffle(rng);
    v
}

fn is_even(x: &i64) -> bool {
    x % 2 == 0
}
fn is_odd(x: &i64) -> bool {
    x % 2 != 0
}

/// Upstream's `verify_queue`: drains the queue, checking that priorities strictly
/// increase and each differs from its item by `target_diff`. Returns how many it checked.
fn verify_queue(q: &mut Queue<i64>, target_diff: i64) -> usize {
    let mut low_priority = -999_999;
    let mut n = 0;
    while let Some((pri, _id, item)) = q.dequeue() {
        let diff = if pri < 0 { item - pri } else { pri - item };
        assert!(
            pri > low_priority && diff == target_diff,
            "{item} - {pri} == {diff} (should be {target_diff})"
        );
        low_priority = pri;
        n += 1;
    }
    n
}

#[test]
fn large_queue_priority_adjustments() {
    let mut rng = StdRng::seed_from_u64(0x0001_a77a);
    let mut q: Queue<i64> = Queue::new();

    // Enqueue all the events, then adjust their priorities. The even-numbered events
    // have their priorities reduced by 1000; the odd ones have them increased by 1000.
    let mut ids = Vec::new();
    for major in shuffled_list(&mut rng, 10) {
        for minor in shuffled_list(&mut rng, 100) {
            let priority = major * 100 + minor; // sprintf("%2d%02d", ...)
            ids.push((q.enqueue(priority, priority), priority));
        }
    }
    for &(id, pri) in &ids {
        let r = q.retime_if(id, is_even, |t| t - 1000);
        if pri % 2 == 0 {
            assert_eq!(r, Ok(pri - 1000));
        } else {
            assert_eq!(r, Err(QueueError::Refused));
        }
    }
    for &(id, pri) in &ids {
        let r = q.retime_if(id, is_odd, |t| t + 1000);
        if pri % 2 != 0 {
            assert_eq!(r, Ok(pri + 1000));
        } else {
            assert_eq!(r, Err(QueueError::Refused));
        }
    }

    // Verify that the queue remains in order, and that the adjusted priorities are
    // correct.
    assert_eq!(verify_queue(&mut q, 1000), 1000);

    // Now set priorities to absolute values.
    let mut id_recs = Vec::new();
    for major in shuffled_list(&mut rng, 10) {
        for minor in shuffled_list(&mut rng, 100) {
            let priority = major * 100 + minor;
            id_recs.push((q.enqueue(priority, priority), priority));
        }
    }
    for &(id, pri) in &id_recs {
        let _ = q.retime_if(id, is_even, |_| pri + 500);
    }
    for &(id, pri) in &id_recs {
        let _ = q.retime_if(id, is_odd, |_| pri + 500);
    }
    assert_eq!(verify_queue(&mut q, 500), 1000);
    assert!(q.is_empty());
}

// ------------------------------------------------------------------ randomized model check

#[test]
fn randomized_against_sorted_vec_model() {
    against_model(Queue::new());
}

/// The same, with the queue's 32-bit orders numbered again every few hundred items.
#[test]
fn randomized_against_sorted_vec_model_with_renumbering() {
    against_model(Queue::with_order_limit(700));
}

/// The same, with new nodes kept aside from a heap of 4 nodes up (`pending.rs`).
#[test]
fn randomized_against_sorted_vec_model_with_pending_nodes() {
    against_model(Queue::with_pending_min(4));
}

/// Pending nodes and renumbering together.
#[test]
fn randomized_against_sorted_vec_model_with_pending_nodes_and_renumbering() {
    against_model(Queue {
        order_limit: 700,
        ..Queue::with_pending_min(4)
    });
}

fn against_model(mut q: Queue<u32>) {
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    let mut m = Model {
        next_seq: 1,
        ..Model::default()
    };
    // Every id ever handed out, live or stale.
    let mut ids: Vec<ItemId> = Vec::new();
    let mut payload = 0u32;

    for step in 0..20_000 {
        // A small time range makes equal times (and so FIFO order) common.
        let op = rng.gen_range(0..100);
        match op {
            0..=39 => {
                payload += 1;
                let time = rng.gen_range(-20..60);
                let id = q.enqueue(time, payload);
                assert_eq!(id.seq(), m.next_seq, "step {step}: ids count from 1");
                m.insert(time, m.next_seq, payload);
                m.next_seq += 1;
                ids.push(id);
            }
            40..=54 => {
                let got = q.dequeue().map(|(t, id, p)| (t, id.seq(), p));
                let want = if m.items.is_empty() {
                    None
                } else {
                    let e = m.items.remove(0);
                    Some((e.0, e.2, e.3))
                };
                assert_eq!(got, want, "step {step}: dequeue");
            }
            55..=69 if !ids.is_empty() => {
                let id = ids[rng.gen_range(0..ids.len())];
                let refuse = rng.gen_bool(0.2);
                let got = q.remove_if(id, |_| !refuse);
                let want = match m.find(id.seq()) {
                    None => Err(QueueError::NotFound),
                    Some(_) if refuse => Err(QueueError::Refused),
                    Some(i) => {
                        let e = m.items.remove(i);
                        Ok((e.0, e.3))
                    }
                };
                assert_eq!(got, want, "step {step}: remove_if {id:?}");
            }
            70..=87 if !ids.is_empty() => {
                let id = ids[rng.gen_range(0..ids.len())];
                let refuse = rng.gen_bool(0.2);
                let absolute = rng.gen_bool(0.3);
                let v = rng.gen_range(-30..30);
                let f = |t: i64| if absolute { v } else { t + v };
                let got = q.retime_if(id, |_| !refuse, f);
                let want = match m.find(id.seq()) {
                    None => Err(QueueError::NotFound),
                    Some(_) if refuse => Err(QueueError::Refused),
                    Some(i) => {
                        let e = m.items.remove(i);
                        let t = f(e.0);
                        m.insert(t, e.2, e.3);
                        Ok(t)
                    }
                };
                assert_eq!(got, want, "step {step}: retime_if {id:?}");
            }
            88..=91 => {
                let k = rng.gen_range(2..7u32);
                let r = rng.gen_range(0..k);
                let got: Vec<(i64, u64, u32)> = q
                    .remove_matching(|p| p % k == r)
                    .into_iter()
                    .map(|(t, id, p)| (t, id.seq(), p))
                    .collect();
                let mut want = Vec::new();
                m.items.retain(|e| {
                    if e.3 % k == r {
                        want.push((e.0, e.2, e.3));
                        false
                    } else {
                        true
                    }
                });
                assert_eq!(got, want, "step {step}: remove_matching");
            }
            _ if !ids.is_empty() => {
                let id = ids[rng.gen_range(0..ids.len())];
                let got = q.get(id).map(|(t, p)| (t, *p));
                let want = m.find(id.seq()).map(|i| (m.items[i].0, m.items[i].3));
                assert_eq!(got, want, "step {step}: get {id:?}");
            }
            _ => {}
        }
        m.check(&mut q, step);
    }

    // Drain: the rest comes out in model order.
    let mut rest = Vec::new();
    while let Some((t, id, p)) = q.dequeue() {
        rest.push((t, id.seq(), p));
    }
    let want: Vec<_> = m.items.iter().map(|e| (e.0, e.2, e.3)).collect();
    assert_eq!(rest, want, "drain");
}

/// Heap nodes stay at 16 bytes: four siblings in one cache line.
#[test]
fn a_heap_node_is_16_bytes() {
    assert_eq!(std::mem::size_of::<super::Node>(), 16);
}
