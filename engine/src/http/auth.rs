//! API keys. Each key is bound to one tenant; only the SHA-256 of a key is configured and
//! kept, and a presented key is hashed and compared in constant time against every
//! configured hash. The tenant of a request always comes from its key
//! ([`Tenant`]), never from its body or path.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use mnemo_storage::model::TenantId;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AuthConfig;
use crate::http::error::{ApiError, ServeError};
use crate::http::State;

/// The configured keys: tenant and SHA-256 of the key.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    keys: Vec<(TenantId, [u8; 32])>,
}

impl Keys {
    /// Reads `[auth] keys`, refusing unusable tenants and hashes that are not 64 hex
    /// digits.
    pub fn from_config(auth: &AuthConfig) -> Result<Self, ServeError> {
        let mut keys = Vec::with_capacity(auth.keys.len());
        for key in &auth.keys {
            let invalid = |reason: String| ServeError::InvalidKey {
                tenant: key.tenant.clone(),
                reason,
            };
            let tenant = TenantId::new(key.tenant.clone()).map_err(|e| invalid(e.to_string()))?;
            let mut hash = [0u8; 32];
            hex::decode_to_slice(key.sha256.trim(), &mut hash).map_err(|e| {
                invalid(format!(
                    "sha256 must be 64 hex digits (the key's SHA-256): {e}"
                ))
            })?;
            if keys.iter().any(|(_, h)| *h == hash) {
                return Err(invalid("the same key hash is configured twice".into()));
            }
            keys.push((tenant, hash));
        }
        Ok(Self { keys })
    }

    /// The tenant of `key`, if it is one of the configured keys.
    pub fn tenant_of(&self, key: &str) -> Option<&TenantId> {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Every configured hash is compared, so timing does not tell which one matched.
        let mut found = None;
        for (tenant, configured) in &self.keys {
            if bool::from(configured.ct_eq(&hash)) {
                found = Some(tenant);
            }
        }
        found
    }

    /// The tenant whose key the request carries in `Authorization: Bearer <key>`.
    pub fn authenticate(&self, req: &HttpRequest) -> Result<TenantId, ApiError> {
        let value = req
            .headers()
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing header Authorization: Bearer <key>"))?;
        let value = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
        let key = match value.split_once(' ') {
            Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
            _ => {
                return Err(ApiError::unauthorized(
                    "expected Authorization: Bearer <key>",
                ))
            }
        };
        self.tenant_of(key)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))
    }
}

/// The tenant a request acts for, from its API key; extracting it answers 401 when the
/// request carries no valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub TenantId);

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let tenant = match req.app_data::<web::Data<State>>() {
            Some(state) => state.keys.authenticate(req).map(Tenant),
            None => Err(ApiError::new(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the server has no key table",
            )),
        };
        ready(tenant)
    }
}

/// The hex SHA-256 of `key`: what `[auth] keys` stores.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random key: 32 bytes from the OS, as 64 hex digits.
pub fn generate_key() -> Result<String, ServeError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| ServeError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// The `[auth] keys` entry for `key` of `tenant`, as a TOML inline table.
pub fn config_entry(tenant: &str, key: &str) -> String {
    format!(
        "{{ tenant = {}, sha256 = \"{}\" }}",
        toml::Value::String(tenant.to_owned()),
        key_hash(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyConfig;

    #[test]
    fn keys_match_by_hash_only() {
        let key = generate_key().unwrap();
        assert_eq!(key.len(), 64);
        assert_ne!(key, generate_key().unwrap());
        let auth = AuthConfig {
            keys: vec![ApiKeyConfig {
                tenant: "acme".into(),
                sha256: key_hash(&key),
            }],
            healthz_open: true,
        };
        let keys = Keys::from_config(&auth).unwrap();
        assert_eq!(keys.tenant_of(&key).map(|t| t.as_str()), Some("acme"));
        assert_eq!(keys.tenant_of("nope"), None);
        assert_eq!(keys.tenant_of(&key_hash(&key)), None);
    }

    #[test]
    fn bad_hashes_are_refused() {
        let auth = AuthConfig {
            keys: vec![ApiKeyConfig {
                tenant: "acme".into(),
                sha256: "abc".into(),
            }],
            healthz_open: true,
        };
        assert!(Keys::from_config(&auth).is_err());
    }

    #[test]
    fn the_config_entry_parses() {
        let line = format!("keys = [{}]", config_entry("acme", "k"));
        let auth: AuthConfig = toml::from_str(&line).unwrap();
        assert_eq!(auth.keys[0].tenant, "acme");
        assert_eq!(auth.keys[0].sha256, key_hash("k"));
    }
}
