//! The shipped `config.toml` documents the storage settings with their true defaults.

use mnemo_storage::StorageConfig;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShippedConfig {
    storage: StorageConfig,
}

fn shipped() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config.toml");
    std::fs::read_to_string(path).expect("config.toml at the workspace root")
}

#[test]
fn shipped_storage_section_equals_the_defaults() {
    let parsed: ShippedConfig = toml::from_str(&shipped()).expect("config.toml parses");
    assert_eq!(parsed.storage, StorageConfig::default());
}

#[test]
fn every_default_key_is_documented_in_the_shipped_file() {
    let shipped: toml::Table = toml::from_str(&shipped()).unwrap();
    let defaults = toml::Table::try_from(StorageConfig::default()).unwrap();
    fn walk(path: &str, defaults: &toml::Table, shipped: &toml::Table) {
        for (key, value) in defaults {
            let here = format!("{path}.{key}");
            let found = shipped
                .get(key)
                .unwrap_or_else(|| panic!("{here} is missing from config.toml"));
            if let (toml::Value::Table(d), toml::Value::Table(s)) = (value, found) {
                walk(&here, d, s);
            }
        }
    }
    let storage = shipped["storage"].as_table().unwrap();
    walk("storage", &defaults, storage);
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let text = shipped().replace("ttl_secs = 86400", "ttl_secs = 86400\nttl_sec = 5");
    let err = toml::from_str::<ShippedConfig>(&text).unwrap_err();
    assert!(err.to_string().contains("ttl_sec"), "{err}");
}
