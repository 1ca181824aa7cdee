//! [`AnswerEvent`]: the id of an answer event whose name comes as the same shared string
//! request after request.

use reactor::{EventId, IntoArgs, Kernel, SessionId};
use std::rc::Rc;

/// The event name of the last answer, and its id once the same name (the same shared
/// string, the same `Rc`) came twice in a row: answers then go by id
/// ([`Kernel::post_event`](reactor::Kernel::post_event)), with no name to look up. A name
/// seen once goes by name, through the kernel's own cache, so a program that names its
/// answer event afresh for each request costs no interning here.
#[derive(Debug, Default)]
pub(crate) struct AnswerEvent(Option<(Rc<str>, Option<EventId>)>);

impl AnswerEvent {
    /// The id to post an answer named `name` by, if `name` is the same shared string as
    /// the last answer's; `None` (post it by name) otherwise, and `name` is remembered.
    #[inline]
    pub(crate) fn id_for(&mut self, name: &Rc<str>) -> Option<EventId> {
        match &mut self.0 {
            Some((last, id)) if Rc::ptr_eq(last, name) => {
                Some(*id.get_or_insert_with(|| EventId::of(name)))
            }
            _ => {
                self.0 = Some((name.clone(), None));
                None
            }
        }
    }

    /// Posts the answer named `name` to `dest`: by id when [`id_for`](Self::id_for) gives
    /// one, else by name.
    #[inline]
    #[track_caller]
    pub(crate) fn post(
        &mut self,
        k: &mut Kernel,
        dest: SessionId,
        name: &Rc<str>,
        args: impl IntoArgs,
    ) -> reactor::Result<()> {
        match self.id_for(name) {
            Some(ev) => k.post_event(dest, ev, args),
            None => k.post(dest, name, args),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AnswerEvent;
    use reactor::EventId;
    use std::rc::Rc;

    #[test]
    fn an_id_only_for_the_same_shared_name_twice_in_a_row() {
        let mut a = AnswerEvent::default();
        let shared: Rc<str> = Rc::from("got_response");
        assert_eq!(a.id_for(&shared), None);
        assert_eq!(a.id_for(&shared), Some(EventId::of("got_response")));
        assert_eq!(a.id_for(&shared.clone()), Some(EventId::of("got_response")));
        // The same text in another string: by name again, and remembered.
        let other: Rc<str> = Rc::from("got_response");
        assert_eq!(a.id_for(&other), None);
        assert_eq!(a.id_for(&other), Some(EventId::of("got_response")));
        assert_eq!(a.id_for(&shared), None);
    }
}
