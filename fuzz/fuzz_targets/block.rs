//! `Block`, length-prefixed and fixed-size, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reactor::filter::Block;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::feed(
        &mut Block::builder()
            .max_length(1024)
            .max_buffer(4096)
            .build()
            .unwrap(),
        data,
    );
    common::feed(&mut Block::builder().block_size(7).build().unwrap(), data);
});
