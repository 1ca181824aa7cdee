//! New nodes kept aside from a large heap (`pending.rs`): they come out in order, the ones
//! removed first never reach the heap, and the next time is right before and after they
//! are settled.

use super::{ItemId, Queue};

/// A queue whose nodes go aside once the heap has 8.
fn small() -> Queue<u32> {
    Queue::with_pending_min(8)
}

#[test]
fn pending_nodes_come_out_in_order() {
    let mut q = small();
    for p in 0..40u32 {
        // 0, 39, 1, 38, ...: the earliest ones are among those kept aside.
        let t = if p % 2 == 0 { p / 2 } else { 39 - p / 2 };
        q.enqueue(i64::from(t), p);
    }
    assert_eq!(q.heap.len(), 8);
    assert_eq!(q.pending.len(), 32);
    assert_eq!(q.next_time(), Some(0), "seen before settling");
    let got: Vec<i64> = std::iter::from_fn(|| q.dequeue().map(|(t, _, _)| t)).collect();
    assert_eq!(got, (0..40).collect::<Vec<i64>>());
}

#[test]
fn equal_times_stay_in_insertion_order_across_heap_and_pending() {
    let mut q = small();
    for p in 0..30u32 {
        q.enqueue(5, p);
    }
    // A few more after a settle: pushed one by one this time.
    assert_eq!(q.dequeue().map(|(_, _, p)| p), Some(0));
    for p in 30..33u32 {
        q.enqueue(5, p);
    }
    assert_eq!(q.pending.len(), 3);
    let got: Vec<u32> = std::iter::from_fn(|| q.dequeue().map(|(_, _, p)| p)).collect();
    assert_eq!(got, (1..33).collect::<Vec<u32>>());
}

#[test]
fn nodes_removed_while_pending_never_reach_the_heap() {
    let mut q = small();
    for p in 0..8u32 {
        q.enqueue(100 + i64::from(p), p);
    }
    let ids: Vec<ItemId> = (8..1000u32).map(|p| q.enqueue(i64::from(p), p)).collect();
    assert_eq!(q.pending.len(), 992);
    // The earliest pending one first: next_time must not report it afterwards.
    assert_eq!(q.next_time(), Some(8));
    assert_eq!(q.remove(ids[0]), Some((8, 8)));
    assert_eq!(q.next_time(), Some(9));
    for id in &ids[1..] {
        assert!(q.remove(*id).is_some());
    }
    // Stale nodes outnumbered live ones: the pending ones went in the rebuild.
    assert!(q.pending.len() < 100, "{} left aside", q.pending.len());
    assert_eq!(q.len(), 8);
    assert_eq!(q.next_time(), Some(100));
    let got: Vec<u32> = std::iter::from_fn(|| q.dequeue().map(|(_, _, p)| p)).collect();
    assert_eq!(got, (0..8).collect::<Vec<u32>>());
    assert!(q.pending.is_empty() && q.heap.is_empty());
}

#[test]
fn retimed_items_go_aside_too() {
    let mut q = small();
    let ids: Vec<ItemId> = (0..20u32).map(|p| q.enqueue(i64::from(p), p)).collect();
    q.settle();
    assert!(q.pending.is_empty());
    // Moved to the front and to the back: new nodes, kept aside; the old ones go stale.
    assert_eq!(q.retime_if(ids[10], |_| true, |_| -1), Ok(-1));
    assert_eq!(q.retime_if(ids[0], |_| true, |_| 50), Ok(50));
    assert_eq!(q.pending.len(), 2);
    assert_eq!(q.next_time(), Some(-1));
    let got: Vec<u32> = std::iter::from_fn(|| q.dequeue().map(|(_, _, p)| p)).collect();
    let mut want = vec![10];
    want.extend((1..20).filter(|&p| p != 10));
    want.push(0);
    assert_eq!(got, want);
}
