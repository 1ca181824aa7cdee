//! Shared by the filter targets: feeds `data` to `filter` in pieces whose lengths come
//! from the data itself, and checks the buffer never holds more than what was fed.

use reactor::filter::Filter;

pub fn feed<F: Filter<Raw = Vec<u8>>>(filter: &mut F, data: &[u8]) {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let step = usize::from(cut).max(1);
    let mut fed = 0;
    for piece in body.chunks(step) {
        fed += piece.len();
        if filter.get_one_start_chunk(piece.to_vec()).is_err() {
            return;
        }
        loop {
            match filter.get_one_with(&mut |_| {}) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let pending: usize = filter
            .get_pending()
            .map_or(0, |p| p.iter().map(Vec::len).sum());
        assert!(pending <= fed, "buffers {pending} after {fed} fed");
    }
}
