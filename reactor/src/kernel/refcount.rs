//! Reference counts: what keeps a session alive (POE's `_data_ses_refcount_*`), and the
//! external references programs take (`refcount_increment`).

use super::session::SessionId;
use super::{Kernel, NO_KEY};
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
        let r = &mut self.sessions[key];
        r.refcount += 1;
        if r.refcount > 0 && r.marked {
            r.marked = false;
            // A session that lost its last reference and got one back before the sweep
            // (an event dispatched, then one posted by its handler) is usually the last
            // mark: take it back, so the sweep has nothing to look at.
            if self.marked.last() == Some(&(r.id, key)) {
                self.marked.pop();
            }
        }
    }

    #[inline]
    pub(crate) fn ref_dec_key(&mut self, key: usize) {
        let r = &mut self.sessions[key];
        r.refcount -= 1;
        debug_assert!(
            r.refcount >= 0,
            "refcount of session {} went below zero",
            r.id
        );
        if r.refcount < 1 && !r.freed {
            r.marked = true;
            let id = r.id;
            self.marked.push((id, key));
        }
    }

    #[inline]
    pub(crate) fn key_or_none(&self, id: SessionId) -> u32 {
        if id == self.active.session {
            if let Some(k) = self.active.key {
                return k as u32;
            }
        }
        self.key_of(id).map_or(NO_KEY, |k| k as u32)
    }

    #[inline]
    pub(crate) fn ev_ref_inc(&mut self, dest_key: u32, sender_key: u32) {
        if dest_key != NO_KEY {
            let r = &mut self.sessions[dest_key as usize];
            r.events_to += 1;
            if r.events_to == 1 {
                self.ref_inc_key(dest_key as usize);
            }
        }
        if sender_key != dest_key && sender_key != NO_KEY {
            let r = &mut self.sessions[sender_key as usize];
            r.posts_from += 1;
            if r.posts_from == 1 {
                self.ref_inc_key(sender_key as usize);
            }
        }
    }

    #[inline]
    pub(crate) fn ev_ref_dec(&mut self, dest_key: u32, sender_key: u32) {
        if dest_key != NO_KEY {
            let r = &mut self.sessions[dest_key as usize];
            r.events_to -= 1;
            if r.events_to == 0 {
                self.ref_dec_key(dest_key as usize);
            }
        }
        if sender_key != dest_key && sender_key != NO_KEY {
            let r = &mut self.sessions[sender_key as usize];
            r.posts_from -= 1;
            if r.posts_from == 0 {
                self.ref_dec_key(sender_key as usize);
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
