//! Tests of whole batches through every part of this module: build, set the base
//! offset, validate, iterate; and property tests that no bytes at all make the
//! decoders panic. Tests of one part sit in that part's file and share [`sample`].

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

/// Three records: key, value and a header; neither key nor value, with a timestamp
/// below the first; an empty key and two headers, one with an empty value.
pub(super) fn sample() -> Bytes {
    let mut b = BatchBuilder::new();
    b.push(1000, Some(b"k1"), Some(b"v1"), &[("h", b"x")])
        .unwrap();
    b.push(990, None, None, &[]).unwrap();
    b.push(1010, Some(b""), Some(b"v3"), &[("a", b""), ("bb", b"yy")])
        .unwrap();
    b.finish()
}

#[test]
fn round_trip_and_header_fields() {
    let bytes = sample();
    let view = BatchView::new(&bytes).unwrap();
    view.validate().unwrap();
    let h = view.header();
    assert_eq!(h.record_count, 3);
    assert_eq!(h.first_timestamp_ms, 1000);
    assert_eq!(h.max_timestamp_ms, 1010);
    assert_eq!(h.batch_len as usize, bytes.len());
    let recs: Vec<_> = view.records().map(Result::unwrap).collect();
    assert_eq!(recs[1].timestamp_ms, 990);
    assert_eq!(recs[1].key, None);
    assert_eq!(recs[1].value, None);
    assert_eq!(recs[2].key, Some(&b""[..]));
    let hs: Vec<_> = recs[2].headers().map(Result::unwrap).collect();
    assert_eq!(hs, [("a", &b""[..]), ("bb", &b"yy"[..])]);
}

type Rec = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Vec<u8>)>,
);

fn record() -> impl Strategy<Value = Rec> {
    (
        -1_000_000i64..1_000_000,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        proptest::collection::vec(
            ("\\PC{0,8}", proptest::collection::vec(any::<u8>(), 0..8)),
            0..4,
        ),
    )
}

proptest! {
    #[test]
    fn prop_round_trip(records in proptest::collection::vec(record(), 1..20), base in any::<u64>()) {
        let mut b = BatchBuilder::new();
        for (ts, k, v, hs) in &records {
            let hs: Vec<(&str, &[u8])> = hs.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
            b.push(*ts, k.as_deref(), v.as_deref(), &hs).unwrap();
        }
        let mut bytes = BytesMut::from(&b.finish()[..]);
        set_base_offset(&mut bytes, base);
        let view = BatchView::new(&bytes).unwrap();
        view.validate().unwrap();
        prop_assert_eq!(view.header().record_count as usize, records.len());
        for (i, (rec, (ts, k, v, hs))) in view.records().zip(&records).enumerate() {
            let rec = rec.unwrap();
            prop_assert_eq!(rec.offset, base.wrapping_add(i as u64));
            prop_assert_eq!(rec.timestamp_ms, *ts);
            prop_assert_eq!(rec.key, k.as_deref());
            prop_assert_eq!(rec.value, v.as_deref());
            let got: Vec<(String, Vec<u8>)> = rec.headers().map(|h| h.map(|(k, v)| (k.to_string(), v.to_vec()))).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(&got, hs);
        }
    }

    #[test]
    fn prop_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(view) = BatchView::new(&bytes) {
            let _ = view.validate();
            for rec in view.records().flatten() {
                for _ in rec.headers() {}
            }
        }
        for _ in split_batches(Bytes::from(bytes)) {}
    }

    #[test]
    fn prop_mutated_batches_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = BytesMut::from(&sample()[..]);
        for (at, x) in flips {
            let at = at % bytes.len();
            bytes[at] ^= x;
        }
        if let Ok(view) = BatchView::new(&bytes) {
            let valid = view.validate_structure().is_ok();
            let walked_cleanly = view.records().all(|rec| {
                rec.is_ok_and(|rec| rec.headers().all(|h| h.is_ok()))
            });
            if valid {
                prop_assert!(walked_cleanly);
                prop_assert_eq!(view.records().count(), view.header().record_count as usize);
            }
        }
    }
}
