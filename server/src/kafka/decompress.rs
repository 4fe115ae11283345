//! Kafka batch decompression within a bound, pure: a produced RecordBatch's records
//! compressed with gzip, snappy, lz4 or zstd, inflated to at most `max_bytes`, so a
//! small batch cannot make the broker allocate without limit (a decompression
//! bomb). The codecs are the maintained crates' (flate2, snap, lz4, zstd); this
//! module only bounds what they produce and reads snappy's two Kafka framings.
//!
//! brokerd stores the records uncompressed in its own batch format, so compression
//! saves network on produce, not disk; Fetch answers uncompressed batches.
//!
//! Must never: read more than `max_bytes + 1` bytes out of a decoder, or allocate
//! for a size a compressed stream announces before checking it against the bound.

use std::io::Read;

use bytes::Bytes;
use kafka_protocol::records::Compression;

/// zstd's largest window, as a power of two (16 MiB): a frame asking for more is
/// refused before its window is allocated. Producers' windows are far smaller
/// unless they turn on long-distance matching.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// snappy-java's stream header, which Kafka's Java client writes before its chunks
/// (librdkafka writes it too); without it the records are one raw snappy block.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
/// The xerial header: the magic, then a version and a minimum compatible version.
const XERIAL_HEADER_BYTES: usize = 16;

/// Why a compressed batch could not be inflated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecompressError {
    /// It inflates to more than the bound.
    #[error("the batch inflates to more than {max} bytes")]
    TooLarge {
        /// The bound.
        max: usize,
    },
    /// The compressed bytes are damaged.
    #[error("the {codec} data is corrupt: {reason}")]
    Corrupt {
        /// Which codec.
        codec: &'static str,
        /// What its decoder said.
        reason: String,
    },
}

fn corrupt(codec: &'static str) -> impl Fn(std::io::Error) -> DecompressError {
    move |e| DecompressError::Corrupt {
        codec,
        reason: e.to_string(),
    }
}

/// `compressed` inflated with `compression`, at most `max_bytes` (uncompressed
/// records come back as they are, without a copy).
pub fn decompress(
    compressed: &Bytes,
    compression: Compression,
    max_bytes: usize,
) -> Result<Bytes, DecompressError> {
    let out = match compression {
        Compression::None => return Ok(compressed.clone()),
        Compression::Gzip => read_bounded(
            flate2::read::MultiGzDecoder::new(&compressed[..]),
            max_bytes,
            "gzip",
        )?,
        Compression::Lz4 => {
            let decoder = lz4::Decoder::new(&compressed[..]).map_err(corrupt("lz4"))?;
            read_bounded(decoder, max_bytes, "lz4")?
        }
        Compression::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::new(&compressed[..]).map_err(corrupt("zstd"))?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(corrupt("zstd"))?;
            read_bounded(decoder, max_bytes, "zstd")?
        }
        Compression::Snappy => snappy(compressed, max_bytes)?,
    };
    Ok(Bytes::from(out))
}

/// Everything `reader` gives, refused once it passes `max_bytes`.
fn read_bounded(
    reader: impl Read,
    max_bytes: usize,
    codec: &'static str,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(corrupt(codec))?;
    if out.len() > max_bytes {
        return Err(DecompressError::TooLarge { max: max_bytes });
    }
    Ok(out)
}

/// Snappy as Kafka clients send it: xerial chunks (`[len u32][raw block]`...) after
/// the xerial header, or one raw block.
fn snappy(compressed: &[u8], max_bytes: usize) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    if !compressed.starts_with(XERIAL_MAGIC) {
        snappy_block(compressed, max_bytes, &mut out)?;
        return Ok(out);
    }
    let mut rest = compressed
        .get(XERIAL_HEADER_BYTES..)
        .ok_or_else(truncated)?;
    while !rest.is_empty() {
        let (len, after) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = after.get(..len).ok_or_else(truncated)?;
        snappy_block(block, max_bytes - out.len(), &mut out)?;
        rest = &after[len..];
    }
    Ok(out)
}

fn truncated() -> DecompressError {
    DecompressError::Corrupt {
        codec: "snappy",
        reason: "a truncated xerial chunk".into(),
    }
}

/// One raw snappy block appended to `out`, its announced length checked against
/// `room` before anything is allocated.
fn snappy_block(block: &[u8], room: usize, out: &mut Vec<u8>) -> Result<(), DecompressError> {
    let snappy_error = |e: snap::Error| DecompressError::Corrupt {
        codec: "snappy",
        reason: e.to_string(),
    };
    let len = snap::raw::decompress_len(block).map_err(snappy_error)?;
    if len > room {
        return Err(DecompressError::TooLarge {
            max: out.len() + room,
        });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(snappy_error)?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const TEXT: &[u8] = b"the same line again and again; the same line again and again; ";

    fn data() -> Vec<u8> {
        TEXT.repeat(100)
    }

    fn gzip(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    fn lz4(data: &[u8]) -> Bytes {
        let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
        e.write_all(data).unwrap();
        let (out, result) = e.finish();
        result.unwrap();
        Bytes::from(out)
    }

    fn zstd(data: &[u8]) -> Bytes {
        Bytes::from(zstd::encode_all(data, 3).unwrap())
    }

    fn snappy_raw(data: &[u8]) -> Bytes {
        Bytes::from(snap::raw::Encoder::new().compress_vec(data).unwrap())
    }

    fn snappy_xerial(data: &[u8]) -> Bytes {
        let mut out = XERIAL_MAGIC.to_vec();
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&1u32.to_be_bytes());
        for chunk in data.chunks(1000) {
            let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            out.extend_from_slice(&(block.len() as u32).to_be_bytes());
            out.extend_from_slice(&block);
        }
        Bytes::from(out)
    }

    fn every_codec(data: &[u8]) -> Vec<(Compression, Bytes)> {
        vec![
            (Compression::Gzip, gzip(data)),
            (Compression::Lz4, lz4(data)),
            (Compression::Zstd, zstd(data)),
            (Compression::Snappy, snappy_raw(data)),
            (Compression::Snappy, snappy_xerial(data)),
        ]
    }

    #[test]
    fn every_codec_inflates_what_it_compressed() {
        let data = data();
        for (codec, compressed) in every_codec(&data) {
            assert!(compressed.len() < data.len() / 4, "{codec:?}");
            let out = decompress(&compressed, codec, data.len()).unwrap();
            assert_eq!(&out[..], &data[..], "{codec:?}");
        }
        let plain = Bytes::from(data.clone());
        assert_eq!(decompress(&plain, Compression::None, 0).unwrap(), plain);
    }

    #[test]
    fn a_bomb_is_refused_at_the_bound() {
        let data = vec![0u8; 4 << 20];
        for (codec, compressed) in every_codec(&data) {
            assert!(
                compressed.len() < 300 << 10,
                "{codec:?}: {}",
                compressed.len()
            );
            assert_eq!(
                decompress(&compressed, codec, 1 << 20),
                Err(DecompressError::TooLarge { max: 1 << 20 }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn damaged_data_is_an_error_not_a_panic() {
        let data = data();
        for (codec, compressed) in every_codec(&data) {
            for cut in [1, compressed.len() / 2, compressed.len() - 1] {
                let damaged = compressed.slice(..cut);
                // At most what the intact part holds (the batch's CRC32C, checked
                // before this, is what rejects a damaged batch).
                if let Ok(out) = decompress(&damaged, codec, data.len()) {
                    assert!(data.starts_with(&out), "{codec:?} cut at {cut}");
                }
            }
            let mut flipped = compressed.to_vec();
            let middle = flipped.len() / 2;
            flipped[middle] ^= 0xff;
            let _ = decompress(&Bytes::from(flipped), codec, data.len());
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_nor_pass_the_bound(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let bytes = Bytes::from(bytes);
            for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd, Compression::Snappy] {
                if let Ok(out) = decompress(&bytes, codec, 4096) {
                    proptest::prop_assert!(out.len() <= 4096);
                }
            }
        }
    }
}
