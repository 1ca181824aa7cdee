//! Event names: numbered once per process, each with an [`EventId`]; a kernel keeps a
//! lock-free cache of the names it uses.

use super::items::EVENT_BITS;
use rustc_hash::FxHashMap as HashMap;
use std::sync::Mutex;

/// An event name as a number, the same in every kernel of the process: dispatch, handler
/// tables and queued items compare these, not strings.
///
/// Programs name events with strings (`post(dest, "tick", ..)`), and a kernel turns each
/// into its id through a cache of its own. Code that emits the same events again and
/// again, a wheel or a component, resolves its names once with [`EventId::of`] and emits
/// them with [`Kernel::wheel_call`](crate::Kernel::wheel_call), so no event is named twice.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct EventId(pub(crate) u32);

impl EventId {
    /// The id of `name`, numbering the name if the process has not seen it yet. This takes
    /// a process-wide lock: resolve a name once, when what emits it is built.
    pub fn of(name: &str) -> EventId {
        with_registry(|r| r.intern(name))
    }

    /// The name this id stands for.
    pub fn name(self) -> super::EventName {
        super::EventName(with_registry(|r| r.names[self.0 as usize]))
    }
}

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

/// Every event name the process has used, each stored once for the life of the process,
/// like a program's symbols, and numbered in the order first seen (the kernel's reserved
/// names first): a name is a `&'static str` that kernels and [`EventName`]s share with no
/// reference counting. Kernels come and go (tests make hundreds) without adding anything
/// once their names are known; a program that invents new names without end grows it.
///
/// [`EventName`]: crate::EventName
struct Registry {
    map: HashMap<&'static str, EventId>,
    names: Vec<&'static str>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn with_registry<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let r = guard.get_or_insert_with(|| {
        let mut r = Registry {
            map: HashMap::default(),
            names: Vec::new(),
        };
        for name in RESERVED {
            r.intern(name);
        }
        r
    });
    f(r)
}

impl Registry {
    fn intern(&mut self, s: &str) -> EventId {
        if let Some(&id) = self.map.get(s) {
            return id;
        }
        // Queue entries keep an event id in EVENT_BITS bits: half a billion names, which
        // would take tens of gigabytes of names first.
        assert!(
            self.names.len() < 1 << EVENT_BITS,
            "more than 2^29 distinct event names"
        );
        let id = EventId(self.names.len() as u32);
        let name: &'static str = Box::leak(Box::from(s));
        self.names.push(name);
        self.map.insert(name, id);
        id
    }
}

/// Whether two event names are equal, inline for the short names programs use: a name
/// a handler posts is usually a literal of the program, never the same pointer as the
/// table's copy, and the library's `memcmp` call costs more than the comparison.
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap());
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().unwrap());
    match n {
        // Two loads from each side, overlapping when the name is shorter than their sum.
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        _ => a == b,
    }
}

/// A kernel's cache of the registry: the names it has used and their ids, read without
/// the lock.
pub(crate) struct Names {
    map: HashMap<&'static str, EventId>,
    /// Indexed by id: the names of the ids this kernel has seen.
    names: Vec<Option<&'static str>>,
    /// The last name interned: programs post the same few names in their hot loops.
    last: (&'static str, EventId),
}

impl Names {
    pub(super) fn new() -> Self {
        let mut n = Names {
            map: HashMap::default(),
            names: Vec::new(),
            last: ("_start", EV_START),
        };
        for r in RESERVED {
            n.intern(r);
        }
        n
    }

    #[inline]
    pub(super) fn intern(&mut self, s: &str) -> EventId {
        let (name, id) = self.last;
        if same_name(name, s) {
            return id;
        }
        self.intern_lookup(s)
    }

    fn intern_lookup(&mut self, s: &str) -> EventId {
        let id = match self.map.get(s) {
            Some(&id) => id,
            None => self.learn(EventId::of(s)),
        };
        self.last = (self.names[id.0 as usize].unwrap_or(""), id);
        id
    }

    /// Caches what the registry says of `id`.
    fn learn(&mut self, id: EventId) -> EventId {
        let name = with_registry(|r| r.names[id.0 as usize]);
        let i = id.0 as usize;
        if self.names.len() <= i {
            self.names.resize(i + 1, None);
        }
        self.names[i] = Some(name);
        self.map.insert(name, id);
        id
    }

    /// The id of `s` if any kernel of the process has used it, without numbering it.
    pub(crate) fn get(&self, s: &str) -> Option<EventId> {
        match self.map.get(s) {
            Some(&id) => Some(id),
            None => with_registry(|r| r.map.get(s).copied()),
        }
    }

    #[inline]
    pub(crate) fn name(&self, id: EventId) -> &'static str {
        match self.names.get(id.0 as usize) {
            Some(Some(name)) => name,
            _ => id.name().as_str(),
        }
    }

    #[inline]
    pub(crate) fn shared(&self, id: EventId) -> super::EventName {
        super::EventName(self.name(id))
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

#[cfg(test)]
mod tests {
    use super::same_name;

    #[test]
    fn same_name_agrees_with_string_equality() {
        let names = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "tick",
            "tock",
            "abcdefg",
            "abcdefgh",
            "abcdefgi",
            "bbcdefgh",
            "abcdefghijklmno",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "xbcdefghijklmnop",
            "abcdefghijklmnopq",
            "abcdefghijklmnopr",
            "_start",
            "_stop",
        ];
        for a in names {
            for b in names {
                assert_eq!(same_name(a, b), a == b, "{a:?} {b:?}");
                let owned = b.to_owned();
                assert_eq!(same_name(a, &owned), a == b, "{a:?} {b:?}");
            }
        }
    }
}
