//! Bencode (BitTorrent's encoding, BEP 3), the body format of rtpengine's ng protocol.
//!
//! `i<n>e` integers, `<len>:<bytes>` strings, `l...e` lists and `d...e` dictionaries with byte
//! string keys. The decoder is strict where ambiguity would hurt (leading zeros, `-0`, trailing
//! bytes) and bounded where a hostile datagram could hurt (nesting depth, string lengths are
//! checked against the remaining input before anything is allocated).

use std::collections::BTreeMap;
use std::fmt;

/// Deepest list/dict nesting accepted; ng messages nest three or four levels.
pub const MAX_DEPTH: usize = 32;

/// A bencode value. Dictionary keys are kept sorted, which is also the canonical encoding order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(BTreeMap<Vec<u8>, Value>),
}

/// Why a buffer is not bencode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BencodeError {
    /// The input ended inside a value.
    Truncated,
    /// A byte that cannot start or continue a value here, at this offset.
    Unexpected { offset: usize, byte: u8 },
    /// An integer or string length with leading zeros, `-0`, no digits, or out of `i64` range.
    BadNumber { offset: usize },
    /// A string length that runs past the end of the input.
    LengthOverrun { offset: usize },
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A complete value followed by more bytes.
    TrailingBytes { offset: usize },
    /// A dictionary key that is not a string.
    NonStringKey { offset: usize },
}

impl fmt::Display for BencodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BencodeError::Truncated => write!(f, "not bencode: input ends inside a value"),
            BencodeError::Unexpected { offset, byte } => {
                write!(
                    f,
                    "not bencode: unexpected byte 0x{byte:02x} at offset {offset}"
                )
            }
            BencodeError::BadNumber { offset } => {
                write!(f, "not bencode: malformed number at offset {offset}")
            }
            BencodeError::LengthOverrun { offset } => {
                write!(
                    f,
                    "not bencode: string at offset {offset} is longer than the input"
                )
            }
            BencodeError::TooDeep => {
                write!(f, "not bencode: nested deeper than {MAX_DEPTH} levels")
            }
            BencodeError::TrailingBytes { offset } => {
                write!(f, "not bencode: trailing bytes at offset {offset}")
            }
            BencodeError::NonStringKey { offset } => {
                write!(
                    f,
                    "not bencode: dictionary key at offset {offset} is not a string"
                )
            }
        }
    }
}

impl std::error::Error for BencodeError {}

/// Decodes exactly one value that spans the whole buffer.
pub fn decode(buf: &[u8]) -> Result<Value, BencodeError> {
    let mut d = Decoder { buf, pos: 0 };
    let v = d.value(0)?;
    if d.pos != buf.len() {
        return Err(BencodeError::TrailingBytes { offset: d.pos });
    }
    Ok(v)
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::Truncated)
    }

    fn value(&mut self, depth: usize) -> Result<Value, BencodeError> {
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.number(b'e')?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.bytes()?)),
            b'l' => {
                if depth >= MAX_DEPTH {
                    return Err(BencodeError::TooDeep);
                }
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                if depth >= MAX_DEPTH {
                    return Err(BencodeError::TooDeep);
                }
                self.pos += 1;
                let mut map = BTreeMap::new();
                loop {
                    let b = self.peek()?;
                    if b == b'e' {
                        break;
                    }
                    if !b.is_ascii_digit() {
                        return Err(BencodeError::NonStringKey { offset: self.pos });
                    }
                    let key = self.bytes()?;
                    let v = self.value(depth + 1)?;
                    // Unsorted or duplicate keys are tolerated (some clients emit them); the
                    // last value of a duplicate key wins.
                    map.insert(key, v);
                }
                self.pos += 1;
                Ok(Value::Dict(map))
            }
            byte => Err(BencodeError::Unexpected {
                offset: self.pos,
                byte,
            }),
        }
    }

    /// Parses a decimal integer terminated by `end`, consuming the terminator.
    fn number(&mut self, end: u8) -> Result<i64, BencodeError> {
        let start = self.pos;
        let rest = &self.buf[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == end)
            .ok_or(BencodeError::Truncated)?;
        let text = &rest[..len];
        let bad = BencodeError::BadNumber { offset: start };
        let (negative, digits) = match text.split_first() {
            Some((b'-', d)) => (true, d),
            _ => (false, text),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad);
        }
        if digits.len() > 1 && digits[0] == b'0' {
            return Err(bad);
        }
        if negative && digits == b"0" {
            return Err(bad);
        }
        let mut n: i64 = 0;
        for &d in digits {
            let digit = i64::from(d - b'0');
            // Accumulate negatively so i64::MIN is representable.
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_sub(digit))
                .ok_or(bad.clone())?;
        }
        let n = if negative {
            n
        } else {
            n.checked_neg().ok_or(bad)?
        };
        self.pos += len + 1;
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, BencodeError> {
        let start = self.pos;
        let len = self.number(b':')?;
        if len < 0 {
            return Err(BencodeError::BadNumber { offset: start });
        }
        let remaining = self.buf.len() - self.pos;
        let len =
            usize::try_from(len).map_err(|_| BencodeError::LengthOverrun { offset: start })?;
        if len > remaining {
            return Err(BencodeError::LengthOverrun { offset: start });
        }
        let out = self.buf[self.pos..self.pos + len].to_vec();
        self.pos += len;
        Ok(out)
    }
}

/// Appends the canonical encoding of `v` (dictionary keys in sorted byte order).
pub fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Int(n) => {
            out.push(b'i');
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b'e');
        }
        Value::Bytes(b) => encode_bytes(b, out),
        Value::List(items) => {
            out.push(b'l');
            for item in items {
                encode(item, out);
            }
            out.push(b'e');
        }
        Value::Dict(map) => {
            out.push(b'd');
            for (k, item) in map {
                encode_bytes(k, out);
                encode(item, out);
            }
            out.push(b'e');
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

impl Value {
    /// The encoding as a fresh buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode(self, &mut out);
        out
    }

    /// An empty dictionary, to be filled with [`Value::insert`].
    pub fn dict() -> Value {
        Value::Dict(BTreeMap::new())
    }

    /// A string value.
    pub fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// Adds `key` to a dictionary (no-op on other variants), builder style.
    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Value {
        self.insert(key, v);
        self
    }

    /// Adds `key` to a dictionary; other variants are left unchanged.
    pub fn insert(&mut self, key: &str, v: impl Into<Value>) {
        if let Value::Dict(map) = self {
            map.insert(key.as_bytes().to_vec(), v.into());
        }
    }

    /// The value of `key` if this is a dictionary holding it.
    pub fn dict_get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(map) => map.get(key.as_bytes()),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The string, if this is a byte string holding UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Value>> {
        match self {
            Value::Dict(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Bytes(s.into_bytes())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<u64> for Value {
    /// Saturates at `i64::MAX` (bencode integers are signed 64-bit here).
    fn from(n: u64) -> Value {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Int(i64::from(n))
    }
}

impl From<u16> for Value {
    fn from(n: u16) -> Value {
        Value::Int(i64::from(n))
    }
}

impl From<u8> for Value {
    fn from(n: u8) -> Value {
        Value::Int(i64::from(n))
    }
}

impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Value {
        Value::List(l)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_a_ping() {
        let v = decode(b"d7:command4:pinge").unwrap();
        assert_eq!(v.dict_get("command").and_then(Value::as_str), Some("ping"));
    }

    #[test]
    fn integers() {
        assert_eq!(decode(b"i0e").unwrap(), Value::Int(0));
        assert_eq!(decode(b"i-42e").unwrap(), Value::Int(-42));
        assert_eq!(
            decode(b"i9223372036854775807e").unwrap(),
            Value::Int(i64::MAX)
        );
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap(),
            Value::Int(i64::MIN)
        );
        for bad in [
            &b"i-0e"[..],
            b"i03e",
            b"ie",
            b"i-e",
            b"i9223372036854775808e",
            b"i1x2e",
            b"i12",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn strings() {
        assert_eq!(decode(b"0:").unwrap(), Value::Bytes(vec![]));
        assert_eq!(decode(b"3:abc").unwrap(), Value::Bytes(b"abc".to_vec()));
        assert_eq!(
            decode(b"4:abc"),
            Err(BencodeError::LengthOverrun { offset: 0 })
        );
        assert!(decode(b"03:abc").is_err());
        assert!(decode(b"-1:").is_err());
        assert!(decode(b"99999999999999999999:x").is_err());
    }

    #[test]
    fn structure_errors() {
        assert_eq!(decode(b""), Err(BencodeError::Truncated));
        assert_eq!(
            decode(b"le5:extra"),
            Err(BencodeError::TrailingBytes { offset: 2 })
        );
        assert_eq!(
            decode(b"di1e1:ae"),
            Err(BencodeError::NonStringKey { offset: 1 })
        );
        assert!(matches!(
            decode(b"x"),
            Err(BencodeError::Unexpected {
                offset: 0,
                byte: b'x'
            })
        ));
        assert_eq!(decode(b"l1:a"), Err(BencodeError::Truncated));
        let deep = [vec![b'l'; 33], vec![b'e'; 33]].concat();
        assert_eq!(decode(&deep), Err(BencodeError::TooDeep));
        let ok = [vec![b'l'; 32], vec![b'e'; 32]].concat();
        assert!(decode(&ok).is_ok());
    }

    #[test]
    fn error_display_says_not_bencode() {
        assert!(BencodeError::Truncated
            .to_string()
            .starts_with("not bencode: "));
    }

    #[test]
    fn encodes_sorted_keys() {
        let v = Value::dict()
            .with("result", "pong")
            .with("a", 1i64)
            .with("list", vec![Value::str("x")]);
        assert_eq!(v.to_bytes(), b"d1:ai1e4:listl1:xe6:result4:ponge".to_vec());
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::Int),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
                proptest::collection::btree_map(
                    proptest::collection::vec(any::<u8>(), 0..8),
                    inner,
                    0..8
                )
                .prop_map(Value::Dict),
            ]
        })
    }

    proptest! {
        #[test]
        fn decode_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&buf);
        }

        #[test]
        fn decode_never_panics_on_bencode_alphabet(buf in "[ilde0-9:-]{0,64}") {
            let _ = decode(buf.as_bytes());
        }

        #[test]
        fn round_trips(v in arb_value()) {
            let bytes = v.to_bytes();
            prop_assert_eq!(decode(&bytes).unwrap(), v);
        }
    }
}
