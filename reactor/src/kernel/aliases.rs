//! Aliases: names for sessions (POE's `alias_set` family).

use super::session::{Designator, SessionId};
use super::Kernel;
use crate::error::{Error, Result};

impl Kernel {
    pub(crate) fn alias_lookup(&self, name: &str) -> Option<SessionId> {
        self.aliases.get(name).copied()
    }

    /// Gives the active session an alias (POE's `alias_set`). Setting an alias the session
    /// already has succeeds; one held by another session fails with [`Error::AliasInUse`].
    /// Each alias keeps its session alive, but not the kernel busy. Called outside every
    /// handler, it gives the alias to the kernel itself, as POE does: the alias then names
    /// [`KERNEL`](crate::KERNEL) until the kernel removes it.
    pub fn alias_set(&mut self, name: &str) -> Result<()> {
        // Outside every handler the kernel itself takes the alias, as in POE.
        let me = self.active.session;
        if name.is_empty() {
            return Err(Error::InvalidArgument("empty alias"));
        }
        match self.aliases.get(name) {
            Some(&owner) if owner == me => return Ok(()),
            Some(_) => return Err(Error::AliasInUse),
            None => {}
        }
        if me.is_kernel() {
            self.aliases.insert(name.to_owned(), me);
            return Ok(());
        }
        let key = self.key_of(me).ok_or(Error::NoSuchSession)?;
        self.aliases.insert(name.to_owned(), me);
        self.sessions[key]
            .extras
            .get_or_insert_with(Box::default)
            .aliases
            .push(name.to_owned());
        self.ref_inc(me);
        Ok(())
    }

    /// Removes an alias of the active session, or outside every handler one of the
    /// kernel's own (POE's `alias_remove`).
    pub fn alias_remove(&mut self, name: &str) -> Result<()> {
        let me = self.active.session;
        match self.aliases.get(name) {
            None => Err(Error::NoSuchAlias),
            Some(&owner) if owner != me => Err(Error::NotOwner),
            Some(_) => {
                self.aliases.remove(name);
                if let Some(key) = self.key_of(me) {
                    if let Some(x) = self.sessions[key].extras.as_mut() {
                        x.aliases.retain(|a| a != name);
                    }
                    self.ref_dec(me);
                }
                Ok(())
            }
        }
    }

    /// Resolves a designator to a session (POE's `alias_resolve`).
    pub fn alias_resolve(&self, dest: impl Designator) -> Result<SessionId> {
        self.resolve(dest)
    }

    /// The aliases of a session, sorted (POE's `alias_list`).
    pub fn alias_list(&self, dest: impl Designator) -> Result<Vec<String>> {
        let id = self.resolve(dest)?;
        let Some(key) = self.key_of(id) else {
            let mut v: Vec<String> = (self.aliases.iter())
                .filter(|(_, &owner)| owner == id)
                .map(|(name, _)| name.clone())
                .collect();
            v.sort();
            return Ok(v);
        };
        let mut v = self.sessions[key]
            .extras
            .as_ref()
            .map(|x| x.aliases.clone())
            .unwrap_or_default();
        v.sort();
        Ok(v)
    }

    /// The aliases of the active session, sorted.
    pub fn my_aliases(&self) -> Vec<String> {
        self.alias_list(self.active.session).unwrap_or_default()
    }
}
