//! PackStream, Bolt's value encoding: one [`Value`] type, its encoder and its decoder.
//!
//! Maps keep their entries in wire order (FalkorDB reads meaning into the order of keys),
//! and structures stay generic (a tag and fields): what a tag means depends on the Bolt
//! version, which is the translation layer's business, not this one's.

use std::fmt;

/// How deep lists, maps and structures may nest before a message is refused; a guard
/// against a peer that would overflow the stack.
const MAX_DEPTH: usize = 256;

/// One PackStream value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A byte array.
    Bytes(Vec<u8>),
    /// A UTF-8 string.
    String(String),
    /// A list.
    List(Vec<Value>),
    /// A map, entries in wire order.
    Map(Vec<(String, Value)>),
    /// A structure: a tag byte and its fields.
    Struct(Structure),
}

/// A PackStream structure: Bolt messages and graph or temporal values are structures.
#[derive(Debug, Clone, PartialEq)]
pub struct Structure {
    /// The tag byte (`0x4E` is a node, `0x10` a RUN message, ...).
    pub tag: u8,
    /// The fields, in order.
    pub fields: Vec<Value>,
}

impl Structure {
    /// A structure with `tag` and `fields`.
    pub fn new(tag: u8, fields: Vec<Value>) -> Self {
        Structure { tag, fields }
    }
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<String>) -> Self {
        Value::String(s.into())
    }

    /// A map value from `(key, value)` pairs, in that order.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Self {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The entry `key` of a map; `None` for other values or a missing key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string inside a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer inside an integer value.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end in the middle of a value: more are needed.
    Incomplete,
    /// The bytes are not PackStream.
    Invalid(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Incomplete => f.write_str("the value is cut short"),
            DecodeError::Invalid(why) => f.write_str(why),
        }
    }
}

/// Decoding options for what a peer gets wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// FalkorDB 4.16 writes a Point2D as a structure of 3 fields followed by a stray
    /// `null` (it emits srid, x, y and then one more value); with this set, a `null` right
    /// after a 3-field Point2D is taken as part of it.
    pub point2d_trailing_null: bool,
}

/// Decodes exactly one value that fills `bytes`.
pub fn decode(bytes: &[u8], quirks: Quirks) -> Result<Value, DecodeError> {
    let (value, used) = decode_prefix(bytes, quirks)?;
    if used != bytes.len() {
        return Err(DecodeError::Invalid(format!(
            "{} bytes left after the value",
            bytes.len() - used
        )));
    }
    Ok(value)
}

/// Decodes one value from the start of `bytes`; returns it and how many bytes it took.
pub fn decode_prefix(bytes: &[u8], quirks: Quirks) -> Result<(Value, usize), DecodeError> {
    let mut decoder = Decoder {
        bytes,
        pos: 0,
        quirks,
    };
    let value = decoder.value(0)?;
    Ok((value, decoder.pos))
}

struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
    quirks: Quirks,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Incomplete)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Incomplete)?;
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len(&mut self, width: usize) -> Result<usize, DecodeError> {
        Ok(match width {
            1 => usize::from(self.u8()?),
            2 => usize::from(u16::from_be_bytes(self.be()?)),
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::Invalid(format!(
                "values nest deeper than {MAX_DEPTH}"
            )));
        }
        let marker = self.u8()?;
        match marker {
            0x00..=0x7F => Ok(Value::Int(i64::from(marker))),
            0xF0..=0xFF => Ok(Value::Int(i64::from(marker as i8))),
            0x80..=0x8F => self.string(usize::from(marker & 0x0F)),
            0x90..=0x9F => self.list(usize::from(marker & 0x0F), depth),
            0xA0..=0xAF => self.map(usize::from(marker & 0x0F), depth),
            0xB0..=0xBF => self.structure(usize::from(marker & 0x0F), depth),
            0xC0 => Ok(Value::Null),
            0xC1 => Ok(Value::Float(f64::from_be_bytes(self.be()?))),
            0xC2 => Ok(Value::Bool(false)),
            0xC3 => Ok(Value::Bool(true)),
            0xC8 => Ok(Value::Int(i64::from(i8::from_be_bytes(self.be()?)))),
            0xC9 => Ok(Value::Int(i64::from(i16::from_be_bytes(self.be()?)))),
            0xCA => Ok(Value::Int(i64::from(i32::from_be_bytes(self.be()?)))),
            0xCB => Ok(Value::Int(i64::from_be_bytes(self.be()?))),
            0xCC..=0xCE => {
                let n = self.len(1 << (marker - 0xCC))?;
                Ok(Value::Bytes(self.take(n)?.to_vec()))
            }
            0xD0..=0xD2 => {
                let n = self.len(1 << (marker - 0xD0))?;
                self.string(n)
            }
            0xD4..=0xD6 => {
                let n = self.len(1 << (marker - 0xD4))?;
                self.list(n, depth)
            }
            0xD8..=0xDA => {
                let n = self.len(1 << (marker - 0xD8))?;
                self.map(n, depth)
            }
            other => Err(DecodeError::Invalid(format!(
                "unknown marker byte 0x{other:02X}"
            ))),
        }
    }

    fn string(&mut self, n: usize) -> Result<Value, DecodeError> {
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec())
            .map(Value::String)
            .map_err(|_| DecodeError::Invalid("a string is not UTF-8".into()))
    }

    fn list(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        // Each element takes at least one byte: never reserve more than the bytes left.
        let mut items = Vec::with_capacity(n.min(self.bytes.len() - self.pos));
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::List(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        let mut entries = Vec::with_capacity(n.min(self.bytes.len() - self.pos));
        for _ in 0..n {
            let key = match self.value(depth + 1)? {
                Value::String(key) => key,
                other => {
                    return Err(DecodeError::Invalid(format!(
                        "a map key is not a string: {other:?}"
                    )))
                }
            };
            entries.push((key, self.value(depth + 1)?));
        }
        Ok(Value::Map(entries))
    }

    fn structure(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        let tag = self.u8()?;
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            fields.push(self.value(depth + 1)?);
        }
        if self.quirks.point2d_trailing_null
            && tag == POINT_2D
            && n == 3
            && self.bytes.get(self.pos) == Some(&0xC0)
        {
            self.pos += 1;
        }
        Ok(Value::Struct(Structure { tag, fields }))
    }
}

/// The tag of a Point2D structure (the same in Bolt 4 and 5).
pub const POINT_2D: u8 = 0x58;

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0xC0),
        Value::Bool(b) => out.push(if *b { 0xC3 } else { 0xC2 }),
        Value::Int(i) => encode_int(*i, out),
        Value::Float(f) => {
            out.push(0xC1);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::Bytes(bytes) => {
            header(bytes.len(), None, [0xCC, 0xCD, 0xCE], out);
            out.extend_from_slice(bytes);
        }
        Value::String(s) => {
            header(s.len(), Some(0x80), [0xD0, 0xD1, 0xD2], out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::List(items) => {
            header(items.len(), Some(0x90), [0xD4, 0xD5, 0xD6], out);
            for item in items {
                encode(item, out);
            }
        }
        Value::Map(entries) => {
            header(entries.len(), Some(0xA0), [0xD8, 0xD9, 0xDA], out);
            for (key, item) in entries {
                header(key.len(), Some(0x80), [0xD0, 0xD1, 0xD2], out);
                out.extend_from_slice(key.as_bytes());
                encode(item, out);
            }
        }
        Value::Struct(s) => encode_struct(s, out),
    }
}

/// Appends the encoding of a structure (a whole Bolt message is one) to `out`.
///
/// PackStream allows at most 15 fields; Bolt never uses more.
pub fn encode_struct(s: &Structure, out: &mut Vec<u8>) {
    debug_assert!(s.fields.len() <= 15, "a structure has at most 15 fields");
    out.push(0xB0 | (s.fields.len().min(15) as u8));
    out.push(s.tag);
    for field in s.fields.iter().take(15) {
        encode(field, out);
    }
}

/// Writes an integer in its smallest form, except that -16..=-1 take the 8-bit form
/// instead of the one-byte "tiny" form: neo4rs 0.8.0 reads a tiny negative integer as
/// 240..=255 (it tests the marker as `i8` but returns it as `u8`). Both forms are valid
/// PackStream.
fn encode_int(i: i64, out: &mut Vec<u8>) {
    if (0..=127).contains(&i) {
        out.push(i as i8 as u8);
    } else if let Ok(v) = i8::try_from(i) {
        out.push(0xC8);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = i16::try_from(i) {
        out.push(0xC9);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = i32::try_from(i) {
        out.push(0xCA);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(0xCB);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// Writes a size header: the tiny form when `tiny` is given and `n < 16`, else the
/// 8-, 16- or 32-bit form.
fn header(n: usize, tiny: Option<u8>, markers: [u8; 3], out: &mut Vec<u8>) {
    match (tiny, n) {
        (Some(base), 0..=15) => out.push(base | n as u8),
        (_, 0..=0xFF) => out.extend_from_slice(&[markers[0], n as u8]),
        (_, 0x100..=0xFFFF) => {
            out.push(markers[1]);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(markers[2]);
            // PackStream sizes are 32-bit; Bolt messages never get near that.
            out.extend_from_slice(&(u32::try_from(n).unwrap_or(u32::MAX)).to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: Value) {
        let mut out = Vec::new();
        encode(&v, &mut out);
        assert_eq!(decode(&out, Quirks::default()), Ok(v));
    }

    #[test]
    fn every_kind_of_value_survives_a_roundtrip() {
        for i in [
            0,
            -1,
            -16,
            -17,
            127,
            128,
            -128,
            -129,
            32767,
            -32768,
            32768,
            i64::from(i32::MAX) + 1,
            i64::MIN,
            i64::MAX,
        ] {
            roundtrip(Value::Int(i));
        }
        roundtrip(Value::Float(-0.0));
        roundtrip(Value::Float(1.5e300));
        roundtrip(Value::Null);
        roundtrip(Value::Bool(true));
        roundtrip(Value::Bool(false));
        roundtrip(Value::Bytes(vec![1, 2, 3]));
        roundtrip(Value::string("é日本'\"\\"));
        roundtrip(Value::string("x".repeat(300)));
        roundtrip(Value::string("y".repeat(70_000)));
        roundtrip(Value::List((0..20).map(Value::Int).collect()));
        roundtrip(Value::map([
            ("b", Value::Int(1)),
            ("a", Value::List(vec![])),
            ("c", Value::map(Vec::<(String, Value)>::new())),
        ]));
        roundtrip(Value::Struct(Structure::new(
            0x4E,
            vec![
                Value::Int(1),
                Value::List(vec![Value::string("L")]),
                Value::map([("k", Value::Null)]),
            ],
        )));
    }

    #[test]
    fn integers_take_the_smallest_form_neo4rs_reads_right() {
        let mut out = Vec::new();
        encode(&Value::Int(127), &mut out);
        encode(&Value::Int(-2), &mut out);
        encode(&Value::Int(-17), &mut out);
        encode(&Value::Int(200), &mut out);
        assert_eq!(out, [0x7F, 0xC8, 0xFE, 0xC8, 0xEF, 0xC9, 0x00, 0xC8]);
        // Tiny negatives from a peer are read as what they are.
        assert_eq!(decode(&[0xFE], Quirks::default()), Ok(Value::Int(-2)));
    }

    #[test]
    fn a_cut_value_is_incomplete_and_garbage_is_invalid() {
        let mut out = Vec::new();
        encode(&Value::string("hello world"), &mut out);
        assert_eq!(
            decode(&out[..5], Quirks::default()),
            Err(DecodeError::Incomplete)
        );
        assert!(matches!(
            decode(&[0xE0], Quirks::default()),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode(&[0x01, 0x02], Quirks::default()),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let bytes = vec![0x91; 10_000];
        assert!(matches!(
            decode(&bytes, Quirks::default()),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn falkordb_point_with_a_stray_null_decodes_with_the_quirk() {
        // RECORD [[Point2D(4326, 2.5, 1.5) <stray null>, 7]] as FalkorDB 4.16 writes it.
        let mut bytes = vec![0x92, 0xB3, POINT_2D];
        encode(&Value::Int(4326), &mut bytes);
        encode(&Value::Float(2.5), &mut bytes);
        encode(&Value::Float(1.5), &mut bytes);
        bytes.push(0xC0);
        bytes.push(0x07);
        let quirk = Quirks {
            point2d_trailing_null: true,
        };
        let point = Value::Struct(Structure::new(
            POINT_2D,
            vec![Value::Int(4326), Value::Float(2.5), Value::Float(1.5)],
        ));
        assert_eq!(
            decode(&bytes, quirk),
            Ok(Value::List(vec![point, Value::Int(7)]))
        );
        assert!(decode(&bytes, Quirks::default()).is_err());
    }
}
