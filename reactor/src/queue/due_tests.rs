//! [`Queue::gather_due`]'s batches: the order items come out in is the order without them,
//! whatever is queued, removed or re-timed while a batch drains.

use super::model_tests::Model;
use super::{ItemId, Queue, QueueError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A queue that batches from 8 nodes up.
fn small() -> Queue<u32> {
    Queue::with_bulk_min(8)
}

/// Dequeues everything due at `now`, as `(time, payload)`.
fn drain_due(q: &mut Queue<u32>, now: i64) -> Vec<(i64, u32)> {
    let mut out = Vec::new();
    while let Some((t, _, p)) = q.dequeue_due(now) {
        out.push((t, p));
    }
    out
}

#[test]
fn a_batch_comes_out_in_time_then_insertion_order() {
    let mut q = small();
    // Times 9, 8, ..., 0 twice: equal times come out in insertion order.
    for p in 0..20u32 {
        q.enqueue(i64::from(9 - p % 10), p);
    }
    q.enqueue(100, 99);
    q.gather_due(50);
    assert_eq!(q.batch.len(), 20, "every due node is batched");
    assert_eq!(q.heap.len(), 1, "the one not due stays in the heap");
    assert_eq!(q.next_time(), Some(0));
    let got = drain_due(&mut q, 50);
    let want: Vec<(i64, u32)> = (0..10)
        .flat_map(|t| [(t, 9 - t as u32), (t, 19 - t as u32)])
        .collect();
    assert_eq!(got, want);
    assert_eq!(q.len(), 1);
    assert_eq!(q.dequeue().map(|(t, _, p)| (t, p)), Some((100, 99)));
}

#[test]
fn items_queued_during_a_batch_take_their_place_in_it() {
    let mut q = small();
    for p in 0..16u32 {
        q.enqueue(i64::from(p) * 10, p); // 0, 10, ..., 150
    }
    q.gather_due(1000);
    assert_eq!(q.batch.len(), 16);
    for p in 0..2 {
        let got = q.dequeue_due(1000).map(|(t, _, p)| (t, p));
        assert_eq!(got, Some((i64::from(p) * 10, p as u32)));
    }
    // In the past (before everything left), at a batched item's time (after it), between
    // two, and due but after the batch.
    q.enqueue(-5, 100);
    q.enqueue(30, 101);
    q.enqueue(45, 102);
    q.enqueue(999, 103);
    q.enqueue(1001, 104); // not due
    let got = drain_due(&mut q, 1000);
    let mut want = vec![(-5, 100), (20, 2), (30, 3), (30, 101), (40, 4), (45, 102)];
    want.extend((5..16).map(|p| (i64::from(p) * 10, p as u32)));
    want.push((999, 103));
    assert_eq!(got, want);
    assert_eq!(q.len(), 1);
    assert_eq!(q.next_time(), Some(1001));
}

#[test]
fn batched_items_can_be_removed_and_retimed() {
    let mut q = small();
    let ids: Vec<ItemId> = (0..32u32).map(|p| q.enqueue(i64::from(p), p)).collect();
    q.gather_due(100);
    assert_eq!(q.batch.len(), 32);
    // The next one, one in the middle, and the last.
    assert_eq!(q.remove(ids[0]), Some((0, 0)));
    assert_eq!(q.remove(ids[10]), Some((10, 10)));
    assert_eq!(q.remove(ids[31]), Some((31, 31)));
    assert_eq!(q.remove(ids[10]), None, "gone once");
    assert_eq!(q.next_time(), Some(1), "the stale head was dropped");
    // Later, earlier (before everything), and out of the batch's time.
    assert_eq!(q.retime_if(ids[2], |_| true, |t| t + 5), Ok(7));
    assert_eq!(q.retime_if(ids[20], |_| true, |_| -1), Ok(-1));
    assert_eq!(q.retime_if(ids[5], |_| true, |_| 500), Ok(500));
    assert_eq!(
        q.retime_if(ids[6], |_| false, |_| 0),
        Err(QueueError::Refused)
    );
    let odd: Vec<u32> = q
        .remove_matching(|p| p % 2 == 1 && *p < 8)
        .into_iter()
        .map(|(_, _, p)| p)
        .collect();
    // In queue order: 5, re-timed out of the batch to 500, comes last.
    assert_eq!(odd, [1, 3, 7, 5]);
    assert_eq!(q.len(), 32 - 3 - 4);
    let got: Vec<u32> = drain_due(&mut q, 100).into_iter().map(|(_, p)| p).collect();
    let mut want = vec![20, 4, 6, 2];
    want.extend((8..31).filter(|&p| p != 10 && p != 20));
    assert_eq!(got, want);
    assert!(q.batch.is_empty());
    assert!(q.is_empty());
}

#[test]
fn a_batch_is_made_only_when_enough_is_due() {
    let mut q = small();
    for p in 0..320u32 {
        q.enqueue(i64::from(p), p);
    }
    // 10 due of 320: fewer than one in 16.
    q.gather_due(9);
    assert!(q.batch.is_empty());
    // 20 due: one in 16.
    q.gather_due(19);
    assert_eq!(q.batch.len(), 20);
    assert_eq!(q.heap.len(), 300);
    // Small heaps are left alone.
    let mut q: Queue<u32> = Queue::new();
    for p in 0..100u32 {
        q.enqueue(0, p);
    }
    q.gather_due(0);
    assert!(q.batch.is_empty());
}

/// The walk that counts due nodes counts what a scan of the heap counts, up to `want`.
#[test]
fn due_nodes_are_counted_from_the_top() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0d0e);
    for round in 0..200 {
        let mut q: Queue<()> = Queue::new();
        let n = rng.gen_range(1..300);
        for _ in 0..n {
            q.enqueue(rng.gen_range(0..1000), ());
        }
        for _ in 0..10 {
            let now = rng.gen_range(-10..1010);
            let want = rng.gen_range(1..n + 2);
            let due = q.heap.iter().filter(|n| n.time <= now).count();
            if q.heap[0].time <= now {
                assert_eq!(
                    q.due_reaches(now, want),
                    due >= want,
                    "round {round}: {due} due of {n}, asked {want}"
                );
            }
        }
    }
}

#[test]
fn batches_against_a_model() {
    against_model(small(), 1);
}

/// The same, with the 32-bit orders numbered again every few hundred items, batches or not.
#[test]
fn batches_against_a_model_with_renumbering() {
    against_model(
        Queue {
            order_limit: 500,
            ..small()
        },
        2,
    );
}

/// The same, with new nodes kept aside once the heap has 16 (`pending.rs`).
#[test]
fn batches_against_a_model_with_pending_nodes() {
    against_model(
        Queue {
            pending_min: 16,
            ..small()
        },
        3,
    );
}

fn against_model(mut q: Queue<u32>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(0x5eed_ba7c + seed);
    let mut m = Model::default();
    let mut ids: Vec<ItemId> = Vec::new();
    let mut payload = 0u32;
    let mut now = 0i64;
    let mut batched = 0;
    let mut pending = 0;
    for step in 0..30_000 {
        if step % 60 == 0 {
            now += rng.gen_range(0..40);
        }
        match rng.gen_range(0..100) {
            // Mostly ahead of now, some in the past (alarms set in the past).
            0..=34 => {
                payload += 1;
                let time = now + rng.gen_range(-30..120);
                let id = q.enqueue(time, payload);
                m.insert(time, id.seq(), payload);
                ids.push(id);
            }
            35..=59 => {
                let got = q.dequeue_due(now).map(|(t, id, p)| (t, id.seq(), p));
                let want = match m.items.first() {
                    Some(e) if e.0 <= now => {
                        let e = m.items.remove(0);
                        Some((e.0, e.2, e.3))
                    }
                    _ => None,
                };
                assert_eq!(got, want, "step {step}: dequeue_due({now})");
            }
            60..=64 => {
                q.gather_due(now);
                if !q.batch.is_empty() {
                    batched += 1;
                }
            }
            65..=76 if !ids.is_empty() => {
                let id = ids[rng.gen_range(0..ids.len())];
                let got = q.remove(id);
                let want = m.find(id.seq()).map(|i| {
                    let e = m.items.remove(i);
                    (e.0, e.3)
                });
                assert_eq!(got, want, "step {step}: remove {id:?}");
            }
            77..=88 if !ids.is_empty() => {
                let id = ids[rng.gen_range(0..ids.len())];
                let v = rng.gen_range(-40..40);
                let got = q.retime_if(id, |_| true, |t| t + v);
                let want = match m.find(id.seq()) {
                    None => Err(QueueError::NotFound),
                    Some(i) => {
                        let e = m.items.remove(i);
                        m.insert(e.0 + v, e.2, e.3);
                        Ok(e.0 + v)
                    }
                };
                assert_eq!(got, want, "step {step}: retime {id:?}");
            }
            89..=90 => {
                let k = rng.gen_range(3..9u32);
                let got: Vec<(i64, u64, u32)> = q
                    .remove_matching(|p| p % k == 0)
                    .into_iter()
                    .map(|(t, id, p)| (t, id.seq(), p))
                    .collect();
                let mut want = Vec::new();
                m.items.retain(|e| {
                    let hit = e.3 % k == 0;
                    if hit {
                        want.push((e.0, e.2, e.3));
                    }
                    !hit
                });
                assert_eq!(got, want, "step {step}: remove_matching");
            }
            _ => {}
        }
        if !q.pending.is_empty() {
            pending += 1;
        }
        m.check(&mut q, step);
    }
    assert!(batched > 100, "batches were made ({batched})");
    if q.pending_min < 100 {
        assert!(pending > 1000, "nodes were kept aside ({pending} steps)");
    }
    let mut rest = Vec::new();
    while let Some((t, id, p)) = q.dequeue() {
        rest.push((t, id.seq(), p));
    }
    let want: Vec<_> = m.items.iter().map(|e| (e.0, e.2, e.3)).collect();
    assert_eq!(rest, want, "drain");
}
