//! Bolt messages: each is one PackStream structure whose tag says what it is. Tags and
//! the few replies the bridge writes itself live here.

use crate::error::{Error, Result};
use crate::packstream::{self, Quirks, Structure, Value};

/// Message tags (the same in Bolt 4 and 5 where both have the message).
pub mod tag {
    /// HELLO: opens the session (Bolt 4: with the credentials inside).
    pub const HELLO: u8 = 0x01;
    /// GOODBYE: the client is leaving.
    pub const GOODBYE: u8 = 0x02;
    /// RESET: back to a clean state, whatever happened.
    pub const RESET: u8 = 0x0F;
    /// RUN: query, parameters, extra.
    pub const RUN: u8 = 0x10;
    /// BEGIN: opens an explicit transaction.
    pub const BEGIN: u8 = 0x11;
    /// COMMIT: ends an explicit transaction.
    pub const COMMIT: u8 = 0x12;
    /// ROLLBACK: abandons an explicit transaction.
    pub const ROLLBACK: u8 = 0x13;
    /// DISCARD: drops records of a result.
    pub const DISCARD: u8 = 0x2F;
    /// PULL: asks for records of a result.
    pub const PULL: u8 = 0x3F;
    /// ROUTE: asks for a routing table (Bolt 4.3+).
    pub const ROUTE: u8 = 0x66;
    /// LOGON: carries the credentials (Bolt 5.1+).
    pub const LOGON: u8 = 0x6A;
    /// SUCCESS reply.
    pub const SUCCESS: u8 = 0x70;
    /// RECORD reply: one row.
    pub const RECORD: u8 = 0x71;
    /// IGNORED reply: the request was not carried out (the session had failed).
    pub const IGNORED: u8 = 0x7E;
    /// FAILURE reply.
    pub const FAILURE: u8 = 0x7F;
}

/// Neo4j status codes the bridge answers with itself.
pub mod code {
    /// The request is not valid in the session's state, or not understood.
    pub const REQUEST_INVALID: &str = "Neo.ClientError.Request.Invalid";
    /// A parameter cannot be given to FalkorDB.
    pub const ARGUMENT_ERROR: &str = "Neo.ClientError.Statement.ArgumentError";
    /// A value could not be translated between the Bolt versions.
    pub const TYPE_ERROR: &str = "Neo.ClientError.Statement.TypeError";
    /// FalkorDB could not be reached or went away (not transient: drivers would retry).
    pub const UPSTREAM_FAILED: &str = "Neo.DatabaseError.General.UnknownError";
}

/// Decodes one message body.
pub fn parse(body: &[u8], quirks: Quirks) -> Result<Structure> {
    match packstream::decode(body, quirks) {
        Ok(Value::Struct(s)) => Ok(s),
        Ok(other) => Err(Error::protocol(format!(
            "a message is not a structure: {other:?}"
        ))),
        Err(why) => Err(Error::protocol(format!(
            "a message cannot be decoded: {why}"
        ))),
    }
}

/// Encodes one message body.
pub fn encode(message: &Structure) -> Vec<u8> {
    let mut out = Vec::new();
    packstream::encode_struct(message, &mut out);
    out
}

/// A SUCCESS reply with `metadata`.
pub fn success(metadata: Vec<(String, Value)>) -> Structure {
    Structure::new(tag::SUCCESS, vec![Value::Map(metadata)])
}

/// A FAILURE reply.
pub fn failure(code: &str, message: impl Into<String>) -> Structure {
    Structure::new(
        tag::FAILURE,
        vec![Value::map([
            ("code", Value::string(code)),
            ("message", Value::String(message.into())),
        ])],
    )
}

/// An IGNORED reply.
pub fn ignored() -> Structure {
    Structure::new(tag::IGNORED, vec![])
}

/// A RECORD reply holding one row.
pub fn record(row: Vec<Value>) -> Structure {
    Structure::new(tag::RECORD, vec![Value::List(row)])
}

/// The `i`th field of a message, if it is a map (the extra or metadata maps).
pub fn map_field(message: &Structure, i: usize) -> Option<&Value> {
    message.fields.get(i).filter(|v| matches!(v, Value::Map(_)))
}

/// The name of a message tag, for error messages.
pub fn name(t: u8) -> String {
    match t {
        tag::HELLO => "HELLO".into(),
        tag::GOODBYE => "GOODBYE".into(),
        tag::RESET => "RESET".into(),
        tag::RUN => "RUN".into(),
        tag::BEGIN => "BEGIN".into(),
        tag::COMMIT => "COMMIT".into(),
        tag::ROLLBACK => "ROLLBACK".into(),
        tag::DISCARD => "DISCARD".into(),
        tag::PULL => "PULL".into(),
        tag::ROUTE => "ROUTE".into(),
        tag::LOGON => "LOGON".into(),
        tag::SUCCESS => "SUCCESS".into(),
        tag::RECORD => "RECORD".into(),
        tag::IGNORED => "IGNORED".into(),
        tag::FAILURE => "FAILURE".into(),
        other => format!("message 0x{other:02X}"),
    }
}
