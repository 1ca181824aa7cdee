//! Reference counts: what keeps a session alive (POE's `_data_ses_refcount_*`), and the
//! external references programs take (`refcount_increment`).

use super::session::SessionId;
use super::{Kernel, SessionRec, NO_KEY};
use crate::error::{Error, Result};
impl Kernel {
    // ----------------------------------------------------------------- reference counts

    pub(crate) fn ref_inc(&mut self, id: SessionId) {
        if let Some(key) = self.key_of(id) {
            self.ref_inc_key(key);
        }
    }

    pub(crate) fn ref_dec(&mut self, id: SessionId) {
        if let Some(key) = self.key_of(id) {
            self.ref_dec_key(key);
        }
    }

    #[inline]
    fn ref_inc_key(&mut self, key: usize) {
        rec_ref_inc(&mut self.sessions[key], key, &mut self.marked);
    }

    #[inline]
    pub(crate) fn ref_dec_key(&mut self, key: usize) {
        rec_ref_dec(&mut self.sessions[key], key, &mut self.marked);
    }

    #[inline]
    pub(crate) fn key_or_none(&self, id: SessionId) -> u32 {
        if id == self.active.session && self.active.key().is_some() {
            return self.active.slot();
        }
        self.key_of(id).map_or(NO_KEY, |k| k as u32)
    }

    #[inline]
    pub(crate) fn ev_ref_inc(&mut self, dest_key: u32, sender_key: u32) {
        if dest_key != NO_KEY {
            let r = &mut self.sessions[dest_key as usize];
            rec_event_to(r, dest_key as usize, &mut self.marked);
        }
        if sender_key != dest_key && sender_key != NO_KEY {
            let r = &mut self.sessions[sender_key as usize];
            r.posts_from += 1;
            if r.posts_from == 1 {
                rec_ref_inc(r, sender_key as usize, &mut self.marked);
            }
        }
    }

    #[inline]
    pub(crate) fn ev_ref_dec(&mut self, dest_key: u32, sender_key: u32) {
        if dest_key != NO_KEY {
            let r = &mut self.sessions[dest_key as usize];
            r.events_to -= 1;
            if r.events_to == 0 {
                rec_ref_dec(r, dest_key as usize, &mut self.marked);
            }
        }
        if sender_key != dest_key && sender_key != NO_KEY {
            let r = &mut self.sessions[sender_key as usize];
            r.posts_from -= 1;
            if r.posts_from == 0 {
                rec_ref_dec(r, sender_key as usize, &mut self.marked);
            }
        }
    }

    /// Adds an external reference to a session under `tag`; returns the tag's new count
    /// (POE's `refcount_increment`). While any tag is nonzero the session stays alive and
    /// the kernel never goes idle.
    pub fn refcount_increment(&mut self, id: SessionId, tag: &str) -> Result<u64> {
        let key = self.key_of(id).ok_or(Error::NoSuchSession)?;
        let r = &mut self.sessions[key];
        let was_empty = r.extras.as_ref().is_none_or(|x| x.extrefs.is_empty());
        let c = r
            .extras
            .get_or_insert_with(Box::default)
            .extrefs
            .entry(tag.to_owned())
            .or_insert(0);
        *c += 1;
        let n = *c;
        if n == 1 {
            if was_empty {
                self.extref_sessions += 1;
            }
            self.ref_inc(id);
        }
        Ok(n)
    }

    /// Removes an external reference (POE's `refcount_decrement`); returns the tag's new
    /// count. A count already at zero stays there: the count never underflows.
    pub fn refcount_decrement(&mut self, id: SessionId, tag: &str) -> Result<u64> {
        let key = self.key_of(id).ok_or(Error::NoSuchSession)?;
        let r = &mut self.sessions[key];
        let Some(tags) = r.extras.as_mut().map(|x| &mut x.extrefs) else {
            return Ok(0);
        };
        let Some(c) = tags.get_mut(tag) else {
            return Ok(0);
        };
        *c -= 1;
        let n = *c;
        if n == 0 {
            tags.remove(tag);
            if tags.is_empty() {
                self.extref_sessions -= 1;
            }
            self.ref_dec(id);
        }
        Ok(n)
    }
}

/// One more queued event to session record `r` (slab key `key`): the first holds a
/// reference on the session.
#[inline]
pub(super) fn rec_event_to(r: &mut SessionRec, key: usize, marked: &mut Vec<(SessionId, usize)>) {
    r.events_to += 1;
    if r.events_to == 1 {
        rec_ref_inc(r, key, marked);
    }
}

/// A reference taken on session record `r` (slab key `key`), with the record already in
/// hand: the counts of a queued item find their session once.
#[inline]
fn rec_ref_inc(r: &mut SessionRec, key: usize, marked: &mut Vec<(SessionId, usize)>) {
    r.refcount += 1;
    if r.refcount > 0 && r.marked {
        r.marked = false;
        // A session that lost its last reference and got one back before the sweep
        // (an event dispatched, then one posted by its handler) is usually the last
        // mark: take it back, so the sweep has nothing to look at.
        if marked.last() == Some(&(r.id, key)) {
            marked.pop();
        }
    }
}

/// A reference let go on session record `r` (slab key `key`): at none left, the session
/// is marked for the next sweep.
#[inline]
fn rec_ref_dec(r: &mut SessionRec, key: usize, marked: &mut Vec<(SessionId, usize)>) {
    r.refcount -= 1;
    debug_assert!(
        r.refcount >= 0,
        "refcount of session {} went below zero",
        r.id
    );
    if r.refcount < 1 && !r.freed {
        r.marked = true;
        marked.push((r.id, key));
    }
}
