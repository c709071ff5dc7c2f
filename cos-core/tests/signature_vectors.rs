//! Every case of `../shared/vectors/signatures.json` (or of `$COS_SIGNATURE_VECTORS`) must be reproduced
//! byte for byte: authorization, format_string, string_to_sign and sign_key.

use cos_core::auth::{get_authorization, KeyTime, SignInput};
use cos_core::Credentials;

fn vectors_path() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("COS_SIGNATURE_VECTORS") {
        return p.into();
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for candidate in [
        "../shared/vectors/signatures.json",
        "shared/vectors/signatures.json",
    ] {
        let p = root.join(candidate);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "signature vectors not found: set COS_SIGNATURE_VECTORS or put shared/ beside the checkout"
    );
}

fn pairs(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn official_sdk_signatures_match_byte_for_byte() {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("vectors are JSON");
    let cases = doc["cases"].as_array().expect("a cases array");
    assert!(!cases.is_empty(), "no cases in {}", path.display());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let s = |k: &str| {
            case[k]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: {k}"))
                .to_string()
        };
        let creds = Credentials::new(s("secret_id"), s("secret_key"));
        let key_time = KeyTime::parse(&s("key_time")).expect("key_time");
        let query = pairs(&case["query"]);
        let headers = pairs(&case["headers"]);
        let method = s("method");
        let key = s("key");
        let sig = get_authorization(
            &creds,
            &SignInput {
                method: &method,
                key: &key,
                query: &query,
                headers: &headers,
                key_time,
            },
        );
        let expected = &case["expected"];
        for (field, got) in [
            ("authorization", &sig.authorization),
            ("format_string", &sig.format_string),
            ("string_to_sign", &sig.string_to_sign),
            ("sign_key", &sig.sign_key),
        ] {
            if let Some(want) = expected[field].as_str() {
                if want != got {
                    failures.push(format!("{name}: {field}\n  want {want:?}\n  got  {got:?}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!("{} signature cases match", cases.len());
}
