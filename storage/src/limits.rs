//! Input limits and the checks that refuse bad input before anything is stored.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest identifier (tenant, user, session, external id, speaker), in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// Size limits on what callers may store. Section `[storage.limits]` of `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputLimits {
    /// Largest turn or summary content, in bytes of UTF-8.
    pub max_content_bytes: usize,
    /// Largest metadata object, in bytes of its JSON text.
    pub max_metadata_bytes: usize,
    /// Most turns accepted in one batch.
    pub max_batch_turns: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        Self {
            max_content_bytes: 64 * 1024,
            max_metadata_bytes: 16 * 1024,
            max_batch_turns: 10_000,
        }
    }
}

/// Checks an identifier: non-empty, at most [`MAX_ID_BYTES`], no control characters.
pub fn check_id(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be only whitespace"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(Error::invalid(
            field,
            format!("is {} bytes, the limit is {MAX_ID_BYTES}", value.len()),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(Error::invalid(
            field,
            format!("contains the control character U+{:04X}", c as u32),
        ));
    }
    Ok(())
}

/// Checks stored text: not empty or whitespace only, within `max_bytes`.
pub fn check_text(field: &'static str, value: &str, max_bytes: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(
            field,
            "must not be empty or only whitespace",
        ));
    }
    if value.len() > max_bytes {
        return Err(Error::invalid(
            field,
            format!("is {} bytes, the limit is {max_bytes}", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err(Error::invalid(field, "contains a NUL character"));
    }
    Ok(())
}

/// Checks text that is only read with, never stored (a query): no NUL character, which
/// no store keeps (PostgreSQL refuses it in text) and no user types.
pub fn check_query(field: &'static str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(field, "contains a NUL character"));
    }
    Ok(())
}

/// Checks turn metadata: a JSON object whose text fits `max_bytes`.
pub fn check_metadata(value: &serde_json::Value, max_bytes: usize) -> Result<()> {
    if !value.is_object() {
        return Err(Error::invalid("metadata", "must be a JSON object"));
    }
    let len = serde_json::to_string(value)
        .map_err(|e| Error::invalid("metadata", e.to_string()))?
        .len();
    if len > max_bytes {
        return Err(Error::invalid(
            "metadata",
            format!("is {len} bytes of JSON, the limit is {max_bytes}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(check_id("user_id", "alice").is_ok());
        assert!(check_id("user_id", "用户-😀").is_ok());
        assert!(check_id("user_id", "").is_err());
        assert!(check_id("user_id", "  ").is_err());
        assert!(check_id("user_id", "a\u{7}b").is_err());
        assert!(check_id("user_id", &"x".repeat(MAX_ID_BYTES)).is_ok());
        assert!(check_id("user_id", &"x".repeat(MAX_ID_BYTES + 1)).is_err());
    }

    #[test]
    fn text_and_metadata_are_checked() {
        assert!(check_text("content", "hi", 2).is_ok());
        assert!(check_text("content", "hi!", 2).is_err());
        assert!(check_text("content", " \n\t", 10).is_err());
        assert!(check_text("content", "a\0b", 10).is_err());
        assert!(check_query("q", "").is_ok());
        assert!(check_query("q", "a\0b").is_err());
        assert!(check_metadata(&serde_json::json!({"a": 1}), 100).is_ok());
        assert!(check_metadata(&serde_json::json!([1]), 100).is_err());
        assert!(check_metadata(&serde_json::json!({"a": "x".repeat(100)}), 100).is_err());
    }
}
