//! The HTTP/1.1 response parser on arbitrary bytes, cut where the first byte says.
#![no_main]

use keepalive::http::{Parse, ResponseParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let mut p = ResponseParser::new(false);
    for piece in body.chunks(usize::from(cut).max(1)) {
        match p.feed(piece) {
            Ok(Parse::Incomplete) => {}
            Ok(Parse::Done(_)) | Err(_) => return,
        }
    }
    let _ = p.eof();
});
