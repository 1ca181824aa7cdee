//! Every filter against arbitrary input, the properties the fuzz targets in `fuzz/` check
//! (`cargo fuzz` needs a nightly toolchain; these run on stable, in CI):
//!
//! - no panic, whatever the bytes and however they are cut;
//! - no unbounded allocation: what a filter buffers never exceeds what it was given (plus
//!   its configured limits);
//! - the same records (or the same error) whatever the cuts, where POE's own rules make
//!   them independent of the cuts (they do not for a CR LF cut in two in `Line`'s default
//!   mode, nor for garbage where `Block` expects a header).
//!
//! Round trips (put then get) and splits of well-formed input are in `filters.rs`.

use proptest::collection::vec;
use proptest::prelude::*;
use reactor::filter::{
    Block, BoxedFilter, Chain, Filter, FilterError, Grep, Line, Map, RecordBlock, Stackable, Stream,
};

/// The records (or the first error's text) of `input` fed in the pieces `cuts` makes,
/// through a wheel's calls; checks the buffer stays within what was fed.
fn feed<F: Filter<Raw = Vec<u8>>>(
    filter: &mut F,
    input: &[u8],
    cuts: &[usize],
) -> Result<Vec<F::Record>, String> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.push(input.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut records = Vec::new();
    let mut last = 0;
    for c in cuts {
        let chunk = input[last..c].to_vec();
        last = c;
        if let Err(e) = filter.get_one_start_chunk(chunk) {
            return Err(e.to_string());
        }
        loop {
            let mut got = Vec::new();
            match filter.get_one_with(&mut |r| got.push(r)) {
                Ok(0) => break,
                Ok(_) => records.extend(got),
                Err(e) => return Err(e.to_string()),
            }
        }
        let pending: usize = filter
            .get_pending()
            .map_or(0, |p| p.iter().map(Vec::len).sum());
        assert!(pending <= last, "buffers {pending} bytes after {last} fed");
    }
    Ok(records)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..600),
        // Mostly newlines and prefixes, to reach the parsers' corners.
        vec(
            prop::sample::select(b"\r\n0123456789\0\xff a".to_vec()),
            0..600
        ),
    ]
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    vec(0usize..700, 0..8)
}

/// Same records, or the same error, with and without cuts.
fn same_whatever_the_cuts<F, M>(make: M, input: &[u8], cuts: &[usize])
where
    F: Filter<Raw = Vec<u8>>,
    F::Record: PartialEq + std::fmt::Debug,
    M: Fn() -> F,
{
    let whole = feed(&mut make(), input, &[]);
    let cut = feed(&mut make(), input, cuts);
    match (&whole, &cut) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "cuts {cuts:?} changed the records"),
        // Where input is refused, cutting may only move the refusal, never hide it.
        (Err(_), Err(_)) => {}
        _ => panic!("whole: {whole:?}, cut at {cuts:?}: {cut:?}"),
    }
}

fn small_line() -> Line {
    Line::builder()
        .max_length(64)
        .max_buffer(128)
        .build()
        .expect("valid limits")
}

/// MaxLength 64; MaxBuffer above any input here, since how much is buffered at once, and
/// so whether MaxBuffer is passed, depends on the cuts (as in POE).
fn small_block() -> Block {
    Block::builder()
        .max_length(64)
        .max_buffer(1024)
        .build()
        .expect("valid limits")
}

fn stack() -> Stackable<Vec<u8>> {
    let filters: Vec<BoxedFilter<Vec<u8>, Vec<u8>>> = vec![
        Box::new(small_line()),
        Box::new(Grep::new(|l: &Vec<u8>| !l.starts_with(b"0"))),
        Box::new(Map::new(
            |mut l: Vec<u8>| {
                l.reverse();
                l
            },
            |mut l: Vec<u8>| {
                l.reverse();
                l
            },
        )),
    ];
    Stackable::new(filters)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// In POE's default mode a CR LF (or LF CR) cut in two ends two lines, as in POE
    /// (see `line_default_mode_split_crlf_gives_an_extra_empty_line` in `filters.rs`): the
    /// records are compared without CRs, and with them only checked not to panic.
    #[test]
    fn line_default_mode(input in bytes(), cuts in cuts()) {
        let _ = feed(&mut Line::new(), &input, &cuts);
        let no_cr: Vec<u8> = input.iter().copied().filter(|&b| b != b'\r').collect();
        same_whatever_the_cuts(Line::new, &no_cr, &cuts);
    }

    #[test]
    fn line_with_limits(input in bytes(), cuts in cuts()) {
        let mut f = small_line();
        let _ = feed(&mut f, &input, &cuts);
        let pending: usize = f.get_pending().map_or(0, |p| p.iter().map(Vec::len).sum());
        prop_assert!(pending <= 128 + 600, "{pending}");
    }

    #[test]
    fn line_autodetect(input in bytes(), cuts in cuts()) {
        let _ = feed(&mut Line::builder().autodetect().build().unwrap(), &input, &cuts);
    }

    /// As in POE, bytes that cannot start a header are dropped one `get_one` at a time
    /// and a header behind them waits for the next input
    /// (`block_strange_bytes_are_skipped_one_call_at_a_time` in `filters.rs`), so the
    /// records depend on the cuts where such bytes come: compared on well-formed framing
    /// only, and otherwise only checked not to panic or overrun.
    #[test]
    fn block_length_prefixed(input in bytes(), cuts in cuts(), blocks in vec(vec(any::<u8>(), 0..40), 0..6)) {
        let _ = feed(&mut small_block(), &input, &cuts);
        let framed: Vec<u8> = blocks
            .iter()
            .flat_map(|b| [b.len().to_string().into_bytes(), vec![0], b.clone()].concat())
            .collect();
        let got = feed(&mut small_block(), &framed, &cuts).unwrap();
        prop_assert_eq!(got, blocks);
    }

    #[test]
    fn block_fixed_size(input in bytes(), cuts in cuts(), size in 1usize..9) {
        same_whatever_the_cuts(|| Block::builder().block_size(size).build().unwrap(), &input, &cuts);
    }

    #[test]
    fn stream(input in bytes(), cuts in cuts()) {
        let got = feed(&mut Stream::new(), &input, &cuts).unwrap();
        prop_assert_eq!(got.concat(), input);
    }

    #[test]
    fn stackable_line_grep_map(input in bytes(), cuts in cuts()) {
        let _ = feed(&mut stack(), &input, &cuts);
    }

    #[test]
    fn chain_line_then_record_block(input in bytes(), cuts in cuts(), size in 1usize..4) {
        let mut f = Chain::new(small_line(), RecordBlock::new(size).unwrap());
        let _ = feed(&mut f, &input, &cuts);
    }

    /// A length prefix that announces more than MaxLength is refused before anything is
    /// allocated for it.
    #[test]
    fn block_refuses_a_huge_announced_length(digits in "[1-9][0-9]{10,18}") {
        let mut f = small_block();
        let mut input = digits.into_bytes();
        input.push(0);
        let err = feed(&mut f, &input, &[]).unwrap_err();
        prop_assert!(err.contains("exceeds the limit"), "{}", err);
    }
}

#[test]
fn filter_errors_are_typed() {
    let mut f = small_line();
    let err = f.get(vec![vec![b'a'; 200]]).unwrap_err();
    assert!(
        matches!(err, FilterError::BufferTooLarge { max: 128, .. }),
        "{err:?}"
    );
}
