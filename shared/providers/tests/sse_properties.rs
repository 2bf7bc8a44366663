//! The SSE parser under arbitrary input, a bounded number of cases per run: whatever bytes a
//! provider (or an attacker's server) sends, split anywhere, the parser never panics, never
//! holds more than its limit, and splits never change what it yields.

use bestchat_providers::sse::{SseEvent, SseParser, SseTooLarge};
use proptest::prelude::*;

const LIMIT: usize = 256;

/// Bytes that look like SSE often enough to reach every branch, and anything else besides.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"event: x".to_vec()),
        Just(b": comment".to_vec()),
        Just(b"id: 1".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just("é€😀".as_bytes().to_vec()),
        Just(vec![0xff, 0xfe, 0xc3]),
        Just(vec![0]),
        proptest::collection::vec(any::<u8>(), 0..40),
        "[a-z {}\":,]{0,60}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

/// Feeds `bytes` in the given pieces; the events, or the first refusal.
fn parse(bytes: &[u8], cuts: &[usize]) -> Result<Vec<SseEvent>, SseTooLarge> {
    let mut parser = SseParser::new(LIMIT);
    let mut out = Vec::new();
    let mut at = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    for point in points.into_iter().chain([bytes.len()]) {
        parser.push(&bytes[at..point.max(at)], &mut out)?;
        at = point.max(at);
    }
    parser.finish(&mut out)?;
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_split_anywhere_parse_the_same_and_stay_bounded(
        bytes in sse_bytes(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = parse(&bytes, &[]);
        let split = parse(&bytes, &cuts);
        match (&whole, &split) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a, b);
                for event in a {
                    prop_assert!(event.data.len() <= LIMIT);
                }
            }
            // An oversized event is refused however it was split.
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "whole {:?} vs split {:?}", whole, split),
        }
    }
}
