//! `Line` in every input mode, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reactor::filter::Line;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::feed(&mut Line::new(), data);
    common::feed(&mut Line::builder().autodetect().build().unwrap(), data);
    common::feed(
        &mut Line::builder()
            .literal("\r\n")
            .max_length(64)
            .max_buffer(256)
            .build()
            .unwrap(),
        data,
    );
});
