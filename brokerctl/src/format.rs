//! `consume --format FORMAT`: each message printed through a format string, like
//! kcat's `-f`.
//!
//! Directives: `%t` topic, `%p` partition, `%o` offset, `%T` timestamp (ms since the
//! epoch), `%k` key, `%K` key length in bytes (`-1` if there is no key), `%s` value,
//! `%S` value length (`-1` for a tombstone), `%h` headers as `NAME=VALUE` pairs
//! separated by `,` (empty if none), `%%` a `%`. Escapes: `\n`, `\r`, `\t`, `\\`.
//! Anything else is copied as it is. Keys, values and header values are written as
//! their raw bytes; an absent key or a tombstone's value is empty. As with kcat,
//! nothing is added after a message: end the format with `\n` for one message per
//! line. The format is parsed once, when the arguments are, and an unknown directive
//! or escape is refused there.

use client::ConsumerRecord;

/// One piece of a parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    KeyLength,
    Value,
    ValueLength,
    Headers,
}

/// A parsed `--format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pieces: Vec<Piece>,
}

/// The directives, for the error message.
const DIRECTIVES: &str = "%t topic, %p partition, %o offset, %T timestamp, %k key, \
                          %K key length, %s value, %S value length, %h headers, %% a %";

/// Parses a format string (the value of `--format`).
pub fn parse_format(spec: &str) -> Result<Format, String> {
    let mut pieces = Vec::new();
    let mut text = Vec::new();
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        let piece = match c {
            '%' => match chars.next() {
                Some('t') => Piece::Topic,
                Some('p') => Piece::Partition,
                Some('o') => Piece::Offset,
                Some('T') => Piece::Timestamp,
                Some('k') => Piece::Key,
                Some('K') => Piece::KeyLength,
                Some('s') => Piece::Value,
                Some('S') => Piece::ValueLength,
                Some('h') => Piece::Headers,
                Some('%') => {
                    text.push(b'%');
                    continue;
                }
                Some(other) => {
                    return Err(format!(
                        "unknown directive %{other} in the format; known: {DIRECTIVES}"
                    ))
                }
                None => {
                    return Err(format!(
                        "the format ends with a lone %; write %% for a %, or use: {DIRECTIVES}"
                    ))
                }
            },
            '\\' => {
                let byte = match chars.next() {
                    Some('n') => b'\n',
                    Some('r') => b'\r',
                    Some('t') => b'\t',
                    Some('\\') => b'\\',
                    other => {
                        return Err(format!(
                            "unknown escape \\{} in the format; known: \\n \\r \\t \\\\",
                            other.map(String::from).unwrap_or_default()
                        ))
                    }
                };
                text.push(byte);
                continue;
            }
            c => {
                let mut utf8 = [0u8; 4];
                text.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                continue;
            }
        };
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(piece);
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(Format { pieces })
}

impl Format {
    /// `record` of `topic`, formatted.
    pub fn render(&self, topic: &str, record: &ConsumerRecord) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.extend_from_slice(text),
                Piece::Topic => out.extend_from_slice(topic.as_bytes()),
                Piece::Partition => out.extend_from_slice(record.partition.to_string().as_bytes()),
                Piece::Offset => out.extend_from_slice(record.offset.to_string().as_bytes()),
                Piece::Timestamp => {
                    out.extend_from_slice(record.timestamp_ms.to_string().as_bytes())
                }
                Piece::Key => out.extend_from_slice(record.key.as_deref().unwrap_or_default()),
                Piece::KeyLength => out.extend_from_slice(length(record.key.as_deref()).as_bytes()),
                Piece::Value => out.extend_from_slice(record.value.as_deref().unwrap_or_default()),
                Piece::ValueLength => {
                    out.extend_from_slice(length(record.value.as_deref()).as_bytes())
                }
                Piece::Headers => {
                    for (i, (name, value)) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(name.as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(value);
                    }
                }
            }
        }
        out
    }
}

/// A length in bytes, or `-1` for nothing at all (kcat's convention).
fn length(bytes: Option<&[u8]>) -> String {
    bytes.map_or("-1".to_string(), |b| b.len().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            partition: 2,
            offset: 41,
            timestamp_ms: 1_700_000_000_123,
            key: Some(Bytes::from_static(b"user-1")),
            value: Some(Bytes::from_static(b"hello")),
            headers: vec![
                ("src".into(), Bytes::from_static(b"web")),
                ("n".into(), Bytes::from_static(b"1")),
            ],
        }
    }

    #[test]
    fn every_directive_and_escape() {
        let format = parse_format("%t/%p@%o %T k=%k(%K) v=%s(%S) [%h] 100%%\\t|\\\\\\n").unwrap();
        assert_eq!(
            String::from_utf8(format.render("orders", &record())).unwrap(),
            "orders/2@41 1700000000123 k=user-1(6) v=hello(5) [src=web,n=1] 100%\t|\\\n"
        );
    }

    #[test]
    fn absent_keys_and_tombstones_are_empty_with_length_minus_one() {
        let tombstone = ConsumerRecord {
            key: None,
            value: None,
            headers: Vec::new(),
            ..record()
        };
        let format = parse_format("[%k|%K|%s|%S|%h]").unwrap();
        assert_eq!(format.render("t", &tombstone), b"[|-1||-1|]");
    }

    #[test]
    fn plain_text_and_unicode_pass_through() {
        let format = parse_format("→ %s").unwrap();
        assert_eq!(format.render("t", &record()), "→ hello".as_bytes());
        assert_eq!(parse_format("").unwrap().render("t", &record()), b"");
    }

    #[test]
    fn unknown_directives_and_escapes_are_refused() {
        let error = parse_format("%x").unwrap_err();
        assert!(
            error.contains("%x") && error.contains("%o offset"),
            "{error}"
        );
        assert!(parse_format("50%").unwrap_err().contains("lone %"));
        assert!(parse_format("\\q").unwrap_err().contains("\\q"));
        assert!(parse_format("\\").unwrap_err().contains("unknown escape"));
    }
}
