//! A `Stackable` of `Line`, `Grep` and `Map`, then `RecordBlock` on top, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reactor::filter::{BoxedFilter, Chain, Grep, Line, Map, RecordBlock, Stackable};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let filters: Vec<BoxedFilter<Vec<u8>, Vec<u8>>> = vec![
        Box::new(Line::new()),
        Box::new(Grep::new(|l: &Vec<u8>| l.len() % 3 != 0)),
        Box::new(Map::new(|l: Vec<u8>| l, |l: Vec<u8>| l)),
    ];
    let mut f = Chain::new(Stackable::new(filters), RecordBlock::new(3).unwrap());
    common::feed(&mut f, data);
});
