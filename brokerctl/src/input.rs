//! What `produce` makes of one line of standard input: a message's key, value,
//! headers and partition, before the command-line defaults are added.
//!
//! Three shapes. A plain line is the value. With `--key-separator SEP`, the line is
//! split at the first SEP into key and value (like kcat's `-K`); a line without SEP
//! is refused, since guessing which it is would put keys in values. With
//! `--input json`, the line is a JSON object shaped like what `consume --json` prints,
//! so that `consume --json | produce --input json` copies messages:
//!
//! ```text
//! {"key": "user-1", "value": "paid", "headers": [{"key": "src", "value": "web"}], "partition": 0}
//! ```
//!
//! `value` is required (`null` for a tombstone); `key` (absent or `null`: none),
//! `headers` (an array of `{"key", "value"}` in order, or an object of name to value)
//! and `partition` are optional. A key, value or header value is a string (sent as
//! UTF-8) or an array of byte values 0-255. Other fields (`offset`, `timestamp`,
//! `attempt`: what `consume --json` adds) are ignored. All pure.

use bytes::Bytes;
use serde_json::Value;

/// What one line says about its message; `None` fields fall back to the options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineMessage {
    /// The key, if the line gives one.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Headers from the line, in order (the `--header` ones come first).
    pub headers: Vec<(String, Bytes)>,
    /// The partition, if the line names one.
    pub partition: Option<u32>,
}

/// A plain line: the value.
pub fn plain(line: Vec<u8>) -> LineMessage {
    LineMessage {
        value: Some(Bytes::from(line)),
        ..LineMessage::default()
    }
}

/// A `KEY<SEP>VALUE` line, split at the first `separator`.
pub fn keyed(line: &[u8], separator: &[u8]) -> Result<LineMessage, String> {
    debug_assert!(!separator.is_empty(), "refused by the argument parser");
    let at = line
        .windows(separator.len())
        .position(|w| w == separator)
        .ok_or_else(|| {
            format!(
                "no key separator {:?} in the line",
                String::from_utf8_lossy(separator)
            )
        })?;
    Ok(LineMessage {
        key: Some(Bytes::copy_from_slice(&line[..at])),
        value: Some(Bytes::copy_from_slice(&line[at + separator.len()..])),
        ..LineMessage::default()
    })
}

/// A JSON line (see the module documentation).
pub fn json(line: &[u8]) -> Result<LineMessage, String> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| format!("the line is not JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("the line is not a JSON object".to_string());
    };
    let Some(message_value) = object.get("value") else {
        return Err("the object has no \"value\" (null for a tombstone)".to_string());
    };
    let partition = match object.get("partition") {
        None | Some(Value::Null) => None,
        Some(p) => Some(
            p.as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(|| format!("\"partition\" is {p}, not a partition number"))?,
        ),
    };
    Ok(LineMessage {
        key: optional_bytes(object.get("key"), "key")?,
        value: optional_bytes(Some(message_value), "value")?,
        headers: headers(object.get("headers"))?,
        partition,
    })
}

/// `null`/absent, a string, or an array of byte values.
fn optional_bytes(value: Option<&Value>, what: &str) -> Result<Option<Bytes>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => bytes(value, what).map(Some),
    }
}

fn bytes(value: &Value, what: &str) -> Result<Bytes, String> {
    match value {
        Value::String(text) => Ok(Bytes::from(text.clone().into_bytes())),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect::<Option<Vec<u8>>>()
            .map(Bytes::from)
            .ok_or_else(|| format!("{what} is an array, but not of byte values 0-255")),
        other => Err(format!(
            "{what} is {other}; give a string or an array of byte values"
        )),
    }
}

fn headers(value: Option<&Value>) -> Result<Vec<(String, Bytes)>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let name = item
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("a header {item} has no \"key\" string"))?;
                let value = item
                    .get("value")
                    .ok_or_else(|| format!("header {name:?} has no \"value\""))?;
                Ok((name.to_string(), bytes(value, &format!("header {name:?}"))?))
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, value)| Ok((name.clone(), bytes(value, &format!("header {name:?}"))?)))
            .collect(),
        Some(other) => Err(format!(
            "\"headers\" is {other}; give an array of {{\"key\", \"value\"}} or an object"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Option<Bytes> {
        Some(Bytes::from(text.to_string()))
    }

    #[test]
    fn keyed_lines_split_at_the_first_separator() {
        let m = keyed(b"user-1:paid:twice", b":").unwrap();
        assert_eq!((m.key, m.value), (b("user-1"), b("paid:twice")));
        let m = keyed(b"k=>v", b"=>").unwrap();
        assert_eq!((m.key, m.value), (b("k"), b("v")));
        let m = keyed(b":v", b":").unwrap();
        assert_eq!((m.key, m.value), (b(""), b("v")), "an empty key is a key");
        let error = keyed(b"no separator", b":").unwrap_err();
        assert!(error.contains("no key separator \":\""), "{error}");
    }

    #[test]
    fn json_lines_read_what_consume_json_prints() {
        let line = br#"{"partition":1,"offset":7,"timestamp":1,"key":"user-1","headers":[{"key":"src","value":"web"},{"key":"bin","value":[255,0]}],"value":"paid"}"#;
        let m = json(line).unwrap();
        assert_eq!(m.key, b("user-1"));
        assert_eq!(m.value, b("paid"));
        assert_eq!(m.partition, Some(1));
        assert_eq!(
            m.headers,
            vec![
                ("src".to_string(), Bytes::from_static(b"web")),
                ("bin".to_string(), Bytes::from_static(&[255, 0])),
            ]
        );
    }

    #[test]
    fn json_lines_take_header_objects_tombstones_and_byte_arrays() {
        let m = json(br#"{"value":null,"key":[1,2],"headers":{"a":"1"}}"#).unwrap();
        assert_eq!(m.value, None);
        assert_eq!(m.key, Some(Bytes::from_static(&[1, 2])));
        assert_eq!(m.headers, vec![("a".to_string(), Bytes::from_static(b"1"))]);
        assert_eq!(m.partition, None);
    }

    #[test]
    fn bad_json_lines_say_what_is_wrong() {
        for (line, expected) in [
            (&b"plain text"[..], "not JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"key":"k"}"#, "no \"value\""),
            (br#"{"value":5}"#, "value is 5"),
            (br#"{"value":[256]}"#, "byte values 0-255"),
            (br#"{"value":"v","partition":-1}"#, "not a partition number"),
            (br#"{"value":"v","headers":[{"value":"x"}]}"#, "no \"key\""),
            (br#"{"value":"v","headers":"x"}"#, "\"headers\" is"),
        ] {
            let error = json(line).unwrap_err();
            assert!(error.contains(expected), "{line:?}: {error}");
        }
    }
}
