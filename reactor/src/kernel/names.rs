//! Event names: interned once per process, and a small id per kernel.

use super::items::EVENT_BITS;
use rustc_hash::FxHashMap as HashMap;
/// An interned event name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct EventId(pub(crate) u32);

pub(crate) const EV_START: EventId = EventId(0);
pub(crate) const EV_STOP: EventId = EventId(1);
pub(crate) const EV_CHILD: EventId = EventId(2);
pub(crate) const EV_PARENT: EventId = EventId(3);
pub(crate) const EV_DEFAULT: EventId = EventId(4);
pub(crate) const EV_NONE: EventId = EventId(5);
pub(crate) const EV_IDLE: EventId = EventId(6);
pub(crate) const EV_ZOMBIE: EventId = EventId(7);
pub(crate) const EV_DIE: EventId = EventId(8);
const RESERVED: [&str; 9] = [
    "_start", "_stop", "_child", "_parent", "_default", "", "IDLE", "ZOMBIE", "DIE",
];

/// Every event name any kernel has used, each stored once for the life of the process, like
/// a program's symbols: a name is a `&'static str` that kernels and [`EventName`]s share
/// with no reference counting. Kernels come and go (tests make hundreds) without adding
/// anything once their names are known; a program that invents new names without end grows
/// this set, as it grows a kernel's own table of names.
///
/// [`EventName`]: crate::EventName
static INTERNED: std::sync::Mutex<Option<std::collections::HashSet<&'static str>>> =
    std::sync::Mutex::new(None);

/// `s` as an interned `&'static str` (see [`INTERNED`]).
pub(crate) fn intern_static(s: &str) -> &'static str {
    let mut set = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    let set = set.get_or_insert_with(Default::default);
    if let Some(&name) = set.get(s) {
        return name;
    }
    let name: &'static str = Box::leak(Box::from(s));
    set.insert(name);
    name
}

/// A kernel's table of event names: each name it has seen gets a small [`EventId`].
#[derive(Default)]
pub(crate) struct Names {
    map: HashMap<&'static str, EventId>,
    names: Vec<&'static str>,
    /// The last name interned: programs post the same few names in their hot loops.
    last: Option<EventId>,
}

impl Names {
    pub(super) fn new() -> Self {
        let mut n = Names::default();
        for r in RESERVED {
            n.intern(r);
        }
        n
    }
    #[inline]
    pub(super) fn intern(&mut self, s: &str) -> EventId {
        if let Some(last) = self.last {
            let name = self.names[last.0 as usize];
            // Wheels name their events with interned strings: the same pointer, no compare.
            if std::ptr::eq(name, s) || name == s {
                return last;
            }
        }
        self.intern_lookup(s)
    }

    fn intern_lookup(&mut self, s: &str) -> EventId {
        if let Some(&id) = self.map.get(s) {
            self.last = Some(id);
            return id;
        }
        // Queue entries keep an event id in EVENT_BITS bits: half a billion names, which
        // would take tens of gigabytes of names first.
        assert!(
            self.names.len() < 1 << EVENT_BITS,
            "more than 2^29 distinct event names"
        );
        let id = EventId(self.names.len() as u32);
        let name = intern_static(s);
        self.names.push(name);
        self.map.insert(name, id);
        id
    }
    pub(crate) fn get(&self, s: &str) -> Option<EventId> {
        self.map.get(s).copied()
    }
    pub(crate) fn name(&self, id: EventId) -> &'static str {
        self.names[id.0 as usize]
    }
    pub(crate) fn shared(&self, id: EventId) -> super::EventName {
        super::EventName(self.names[id.0 as usize])
    }
}

/// An event name from the kernel's table of names: names are stored once for the life of
/// the process, so an `EventName` is a plain `&'static str` and copying it copies no text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventName(pub(crate) &'static str);

impl EventName {
    /// The name.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl std::ops::Deref for EventName {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl std::fmt::Debug for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0, f)
    }
}

impl std::fmt::Display for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl PartialEq<str> for EventName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for EventName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<EventName> for String {
    fn from(n: EventName) -> String {
        n.0.to_owned()
    }
}
