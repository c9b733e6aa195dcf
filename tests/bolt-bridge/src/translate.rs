//! Values between Bolt 5 (FalkorDB's side) and Bolt 4 (the client's side).
//!
//! Bolt 5 added element ids to graph structures: a Node has 4 fields (Bolt 4: 3), a
//! Relationship 8 (Bolt 4: 5), an UnboundRelationship 4 (Bolt 4: 3). Records lose the
//! element ids on the way to the client. Zoned date-times change shape in both directions
//! unless the client asked for the `utc` patch (see [`crate::temporal`]). Everything else
//! is the same in both versions and passes unchanged, nested values included.

use crate::packstream::{Structure, Value};
use crate::temporal::{self, Direction};

/// Tag of a Node.
pub const NODE: u8 = b'N';
/// Tag of a Relationship.
pub const RELATIONSHIP: u8 = b'R';
/// Tag of an UnboundRelationship (inside a Path).
pub const UNBOUND_RELATIONSHIP: u8 = b'r';
/// Tag of a Path.
pub const PATH: u8 = b'P';

/// What the client speaks beyond plain Bolt 4.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientDialect {
    /// The client negotiated the `utc` patch (Bolt 4.3/4.4): it sends and expects the
    /// Bolt 5 date-time shapes, so they pass unchanged.
    pub utc_date_times: bool,
}

/// A value of a record from FalkorDB (Bolt 5) made fit for the client (Bolt 4).
pub fn to_client(value: Value, dialect: ClientDialect) -> Result<Value, String> {
    walk(value, &|s| {
        let keep = match (s.tag, s.fields.len()) {
            (NODE, 4) => 3,
            (RELATIONSHIP, 8) => 5,
            (UNBOUND_RELATIONSHIP, 4) => 3,
            _ => s.fields.len(),
        };
        let mut s = s;
        s.fields.truncate(keep);
        if dialect.utc_date_times {
            return Ok(s);
        }
        Ok(temporal::convert(&s, Direction::ToLegacy)?.unwrap_or(s))
    })
}

/// A parameter from the client (Bolt 4) made fit for FalkorDB (Bolt 5).
pub fn to_server(value: Value, dialect: ClientDialect) -> Result<Value, String> {
    walk(value, &|s| {
        if dialect.utc_date_times {
            return Ok(s);
        }
        Ok(temporal::convert(&s, Direction::ToUtc)?.unwrap_or(s))
    })
}

/// Rebuilds `value` bottom-up, passing every structure (after its fields) to `f`.
fn walk(value: Value, f: &dyn Fn(Structure) -> Result<Structure, String>) -> Result<Value, String> {
    Ok(match value {
        Value::List(items) => Value::List(
            items
                .into_iter()
                .map(|v| walk(v, f))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| Ok((k, walk(v, f)?)))
                .collect::<Result<_, String>>()?,
        ),
        Value::Struct(s) => {
            let fields = s
                .fields
                .into_iter()
                .map(|v| walk(v, f))
                .collect::<Result<_, _>>()?;
            Value::Struct(f(Structure::new(s.tag, fields))?)
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64) -> Value {
        Value::Struct(Structure::new(
            NODE,
            vec![
                Value::Int(id),
                Value::List(vec![Value::string("P")]),
                Value::map([("name", Value::string("x"))]),
                Value::String(format!("node_{id}")),
            ],
        ))
    }

    #[test]
    fn graph_structures_lose_their_element_ids_nested_too() {
        let rel = Value::Struct(Structure::new(
            RELATIONSHIP,
            vec![
                Value::Int(0),
                Value::Int(0),
                Value::Int(1),
                Value::string("K"),
                Value::map([("w", Value::Int(1))]),
                Value::string("relationship_0"),
                Value::string("node_0"),
                Value::string("node_1"),
            ],
        ));
        let unbound = Value::Struct(Structure::new(
            UNBOUND_RELATIONSHIP,
            vec![
                Value::Int(0),
                Value::string("K"),
                Value::map(Vec::<(String, Value)>::new()),
                Value::string("relationship_0"),
            ],
        ));
        let path = Value::Struct(Structure::new(
            PATH,
            vec![
                Value::List(vec![node(0), node(1)]),
                Value::List(vec![unbound]),
                Value::List(vec![Value::Int(1), Value::Int(1)]),
            ],
        ));
        let row = Value::List(vec![node(0), rel, Value::map([("p", path)])]);
        let out = to_client(row, ClientDialect::default()).unwrap();
        let Value::List(items) = out else {
            panic!("a list")
        };
        let Value::Struct(n) = &items[0] else {
            panic!("a node")
        };
        assert_eq!((n.tag, n.fields.len()), (NODE, 3));
        let Value::Struct(r) = &items[1] else {
            panic!("a relationship")
        };
        assert_eq!((r.tag, r.fields.len()), (RELATIONSHIP, 5));
        assert_eq!(r.fields[3], Value::string("K"));
        let Some(Value::Struct(p)) = items[2].get("p") else {
            panic!("a path")
        };
        let Value::List(nodes) = &p.fields[0] else {
            panic!("nodes")
        };
        assert!(nodes
            .iter()
            .all(|n| matches!(n, Value::Struct(s) if s.fields.len() == 3)));
        let Value::List(rels) = &p.fields[1] else {
            panic!("rels")
        };
        assert!(matches!(&rels[0], Value::Struct(s) if s.fields.len() == 3));
    }

    #[test]
    fn date_times_change_shape_unless_the_client_speaks_utc() {
        let utc = Value::Struct(Structure::new(
            b'I',
            vec![Value::Int(100), Value::Int(0), Value::Int(60)],
        ));
        let legacy = Value::Struct(Structure::new(
            b'F',
            vec![Value::Int(160), Value::Int(0), Value::Int(60)],
        ));
        let plain = ClientDialect::default();
        let patched = ClientDialect {
            utc_date_times: true,
        };
        assert_eq!(
            to_client(Value::List(vec![utc.clone()]), plain),
            Ok(Value::List(vec![legacy.clone()]))
        );
        assert_eq!(to_server(legacy.clone(), plain), Ok(utc.clone()));
        assert_eq!(to_client(utc.clone(), patched), Ok(utc.clone()));
        assert_eq!(to_server(utc.clone(), patched), Ok(utc));
    }
}
