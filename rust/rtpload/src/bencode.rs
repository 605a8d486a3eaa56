//! Bencode, the encoding of rtpengine's ng control protocol.
//!
//! Only what the ng client needs: integers, byte strings, lists and dictionaries. The decoder
//! never panics on bad input; it returns an error string and bounds its nesting depth.

/// A decoded (or to-be-encoded) bencode value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    /// Keys in insertion order; the encoder sorts them as bencode requires.
    Dict(Vec<(Vec<u8>, Value)>),
}

/// Deepest nesting the decoder accepts; ng replies are at most a few levels deep.
const MAX_DEPTH: usize = 32;

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// A dictionary built from string keys.
    pub fn dict(entries: Vec<(&str, Value)>) -> Value {
        Value::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    /// Looks up `key` in a dictionary; `None` for other kinds of value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k.as_slice() == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as UTF-8 text, if it is a byte string holding valid UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode(out);
                }
                out.push(b'e');
            }
            Value::Dict(entries) => {
                let mut sorted: Vec<&(Vec<u8>, Value)> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                out.push(b'd');
                for (k, v) in sorted {
                    encode_bytes(k, out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// Decodes exactly one value occupying all of `input`.
pub fn decode(input: &[u8]) -> Result<Value, String> {
    let mut pos = 0;
    let value = decode_at(input, &mut pos, 0)?;
    if pos != input.len() {
        return Err(format!(
            "{} trailing bytes after bencode value",
            input.len() - pos
        ));
    }
    Ok(value)
}

fn decode_at(input: &[u8], pos: &mut usize, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("bencode nested too deeply".into());
    }
    match input.get(*pos) {
        None => Err("bencode truncated".into()),
        Some(b'i') => {
            *pos += 1;
            let text = take_until(input, pos, b'e')?;
            text.parse::<i64>()
                .map(Value::Int)
                .map_err(|_| format!("bad bencode integer {text:?}"))
        }
        Some(b'l') => {
            *pos += 1;
            let mut items = Vec::new();
            while input.get(*pos) != Some(&b'e') {
                items.push(decode_at(input, pos, depth + 1)?);
            }
            *pos += 1;
            Ok(Value::List(items))
        }
        Some(b'd') => {
            *pos += 1;
            let mut entries = Vec::new();
            while input.get(*pos) != Some(&b'e') {
                let key = decode_bytes(input, pos)?;
                let value = decode_at(input, pos, depth + 1)?;
                entries.push((key, value));
            }
            *pos += 1;
            Ok(Value::Dict(entries))
        }
        Some(c) if c.is_ascii_digit() => decode_bytes(input, pos).map(Value::Bytes),
        Some(c) => Err(format!("unexpected byte {c:#04x} in bencode")),
    }
}

fn decode_bytes(input: &[u8], pos: &mut usize) -> Result<Vec<u8>, String> {
    let text = take_until(input, pos, b':')?;
    let len: usize = text
        .parse()
        .map_err(|_| format!("bad bencode string length {text:?}"))?;
    let end = pos
        .checked_add(len)
        .filter(|&end| end <= input.len())
        .ok_or("bencode string runs past the end")?;
    let bytes = input[*pos..end].to_vec();
    *pos = end;
    Ok(bytes)
}

/// Returns the ASCII text from `pos` up to `terminator` and moves past the terminator.
fn take_until<'a>(input: &'a [u8], pos: &mut usize, terminator: u8) -> Result<&'a str, String> {
    let rest = input.get(*pos..).ok_or("bencode truncated")?;
    let len = rest
        .iter()
        .position(|&c| c == terminator)
        .ok_or("bencode truncated")?;
    let text = std::str::from_utf8(&rest[..len]).map_err(|_| "non-ASCII bencode number")?;
    *pos += len + 1;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_dict_with_sorted_keys() {
        let v = Value::dict(vec![
            ("sdp", Value::str("v=0")),
            ("command", Value::str("offer")),
            ("n", Value::Int(-3)),
            ("flags", Value::List(vec![Value::str("a")])),
        ]);
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(
            out,
            b"d7:command5:offer5:flagsl1:ae1:ni-3e3:sdp3:v=0e".to_vec()
        );
    }

    #[test]
    fn round_trips() {
        let v = Value::dict(vec![
            ("result", Value::str("ok")),
            ("list", Value::List(vec![Value::Int(7), Value::str("")])),
        ]);
        let mut out = Vec::new();
        v.encode(&mut out);
        let back = decode(&out);
        assert_eq!(
            back.as_ref()
                .map(|b| b.get("result").and_then(Value::as_text)),
            Ok(Some("ok"))
        );
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            &b""[..],
            b"i12",
            b"5:abc",
            b"d3:keye",
            b"l",
            b"x",
            b"i1ee",
            b"99999999999999999999999:a",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bounds_nesting() {
        let deep = [vec![b'l'; 100], vec![b'e'; 100]].concat();
        assert!(decode(&deep).is_err());
    }
}
