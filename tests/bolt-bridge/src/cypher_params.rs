//! Query parameters written into the query text, the one way FalkorDB takes them right.
//!
//! FalkorDB 4.16's Bolt server does not pass RUN's parameter map to the query engine: it
//! prints each parameter into a `CYPHER name=value ...` prefix with `sprintf`, unescaped
//! and into a 4,096-byte stack buffer. A string holding a quote breaks the query (`it's`
//! is a syntax error), a backslash starts an escape (`a\b` comes back with a backspace),
//! floats keep six decimals (`0.1234567891` comes back `0.123457`), map keys are not
//! quoted, and a parameter set longer than 4 KiB overflows the buffer.
//!
//! So the bridge writes that prefix itself, with literals FalkorDB's parser reads back
//! exactly, and sends RUN with an empty parameter map. The prefix only takes literals:
//! `CYPHER d=date('2024-01-02')` is a syntax error, so temporal, spatial and byte-array
//! parameters cannot reach FalkorDB and are refused with a message saying so.

use std::fmt::Write as _;

use crate::packstream::{Structure, Value};

/// The query FalkorDB should run for `query` with `params`: the query itself when there
/// are none, else `CYPHER name=literal ... query`. `Err` names the parameter that cannot
/// be written and why.
pub fn inline(query: &str, params: &[(String, Value)]) -> Result<String, String> {
    if params.is_empty() {
        return Ok(query.to_string());
    }
    let mut out = String::from("CYPHER ");
    for (name, value) in params {
        identifier(name, &mut out).map_err(|why| format!("parameter name {name:?}: {why}"))?;
        out.push('=');
        literal(value, &mut out).map_err(|why| format!("parameter ${name}: {why}"))?;
        out.push(' ');
    }
    out.push_str(query);
    Ok(out)
}

/// Writes `value` as a Cypher literal.
fn literal(value: &Value, out: &mut String) -> Result<(), String> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if f.is_finite() => {
            // `{:e}` is the shortest form that reads back to the same f64, and always has
            // an exponent, so FalkorDB reads it as a float even when it is whole (`1e0`).
            let _ = write!(out, "{f:e}");
        }
        Value::Float(f) => {
            return Err(format!(
                "{f} cannot be written as a Cypher literal for FalkorDB"
            ))
        }
        Value::String(s) => string(s, out)?,
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                literal(item, out)?;
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                identifier(key, out).map_err(|why| format!("map key {key:?}: {why}"))?;
                out.push_str(": ");
                literal(item, out)?;
            }
            out.push('}');
        }
        Value::Bytes(_) => return Err("FalkorDB has no byte arrays".into()),
        Value::Struct(s) => return Err(unsupported_structure(s)),
    }
    Ok(())
}

/// Writes a single-quoted string literal. FalkorDB reads `\\` and `\'` (and `\n`-style
/// escapes, which are not needed: it takes raw control characters and UTF-8 as they are;
/// it does not read `\u` escapes).
fn string(s: &str, out: &mut String) -> Result<(), String> {
    if s.contains('\0') {
        // FalkorDB keeps the query as a C string: it would end there.
        return Err("FalkorDB cannot take a string holding a NUL character".into());
    }
    out.reserve(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(())
}

/// Writes a parameter name or map key in backticks. FalkorDB's prefix parser does not
/// read a doubled backtick inside one, so a name holding a backtick is refused.
fn identifier(name: &str, out: &mut String) -> Result<(), String> {
    if name.is_empty() || name.contains('`') || name.contains('\0') {
        return Err("FalkorDB cannot take an empty name or one holding a backtick or NUL".into());
    }
    out.push('`');
    out.push_str(name);
    out.push('`');
    Ok(())
}

fn unsupported_structure(s: &Structure) -> String {
    let what = match s.tag {
        b'D' | b'T' | b't' | b'd' | b'F' | b'f' | b'I' | b'i' | b'E' => {
            "a temporal value (date, time, date-time or duration)"
        }
        b'X' | b'Y' => "a spatial point",
        b'N' | b'R' | b'r' | b'P' => "a node, relationship or path",
        _ => "a structure",
    };
    format!(
        "FalkorDB cannot take {what} as a parameter over Bolt (it reads parameters as \
         literals only); pass it as a string or number and convert it in the query"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_parameters_leave_the_query_alone() {
        assert_eq!(inline("RETURN 1", &[]), Ok("RETURN 1".into()));
    }

    #[test]
    fn every_literal_is_written_so_falkordb_reads_it_back() {
        let params = vec![
            ("s".to_string(), Value::string("it's a \\ \"q\" é\n")),
            ("f".to_string(), Value::Float(0.1)),
            ("w".to_string(), Value::Float(2.0)),
            ("i".to_string(), Value::Int(i64::MIN)),
            ("n".to_string(), Value::Null),
            (
                "m".to_string(),
                Value::map([
                    ("a b", Value::List(vec![Value::Bool(true), Value::Int(-1)])),
                    ("e", Value::map(Vec::<(String, Value)>::new())),
                ]),
            ),
        ];
        assert_eq!(
            inline("RETURN $s", &params),
            Ok("CYPHER `s`='it\\'s a \\\\ \"q\" é\n' `f`=1e-1 `w`=2e0 \
                `i`=-9223372036854775808 `n`=null `m`={`a b`: [true, -1], `e`: {}} RETURN $s"
                .into())
        );
    }

    #[test]
    fn what_falkordb_cannot_take_is_refused_by_name() {
        let date = Value::Struct(Structure::new(b'D', vec![Value::Int(1)]));
        let refused = inline("RETURN $d", &[("d".into(), date)]).unwrap_err();
        assert!(
            refused.contains("$d") && refused.contains("temporal"),
            "{refused}"
        );
        for bad in [
            Value::Float(f64::NAN),
            Value::Bytes(vec![1]),
            Value::string("a\0b"),
            Value::map([("a`b", Value::Int(1))]),
        ] {
            assert!(inline("RETURN $x", &[("x".into(), bad)]).is_err());
        }
    }
}
