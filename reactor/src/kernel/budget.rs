//! A kernel-wide budget of bytes: what its wheels may hold between them
//! ([`KernelBuilder::output_budget`](super::KernelBuilder::output_budget)).

use std::cell::Cell;
use std::rc::Rc;

/// Bytes that wheels of one kernel hold, against a limit. Wheels add what they buffer and
/// take away what they let go; while the total is over the limit, [`over`](Budget::over)
/// says so, until it is back under three quarters of it.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: Cell<usize>,
    over: Cell<bool>,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Budget {
            limit,
            used: Cell::new(0),
            over: Cell::new(false),
        }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// Whether the holders should stop taking more: set above the limit, cleared at three
    /// quarters of it.
    pub fn over(&self) -> bool {
        self.over.get()
    }

    /// `n` more bytes held.
    pub fn add(&self, n: usize) {
        let used = self.used.get().saturating_add(n);
        self.used.set(used);
        if used > self.limit {
            self.over.set(true);
        }
    }

    /// `n` bytes let go.
    pub fn sub(&self, n: usize) {
        let used = self.used.get().saturating_sub(n);
        self.used.set(used);
        if used <= self.limit / 4 * 3 {
            self.over.set(false);
        }
    }
}

/// One holder's part of a [`Budget`]: [`hold`](Share::hold) says how much it holds now,
/// and dropping it gives all of that back.
#[derive(Debug)]
pub struct Share {
    budget: Rc<Budget>,
    held: usize,
}

impl Share {
    /// A share of `budget`, holding nothing yet.
    pub fn new(budget: Rc<Budget>) -> Self {
        Share { budget, held: 0 }
    }

    /// The holder now holds `n` bytes.
    pub fn hold(&mut self, n: usize) {
        if n > self.held {
            self.budget.add(n - self.held);
        } else {
            self.budget.sub(self.held - n);
        }
        self.held = n;
    }

    /// Whether the budget as a whole is over its limit.
    pub fn over(&self) -> bool {
        self.budget.over()
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.budget.sub(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn over_above_the_limit_until_three_quarters() {
        let b = Budget::new(100);
        b.add(100);
        assert!(!b.over());
        b.add(1);
        assert!(b.over());
        b.sub(25);
        assert!(b.over(), "76 is above three quarters");
        b.sub(1);
        assert!(!b.over());
        b.sub(1000);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn a_share_gives_back_what_it_held_when_dropped() {
        let b = std::rc::Rc::new(Budget::new(10));
        let mut s = super::Share::new(std::rc::Rc::clone(&b));
        s.hold(20);
        assert!(s.over());
        s.hold(5);
        assert_eq!(b.used(), 5);
        drop(s);
        assert_eq!(b.used(), 0);
        assert!(!b.over());
    }
}
