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

/// The drivers' fast path (`authorize`, which signs an `http::Request` in place with a cached signing key)
/// gives the official SDKs' `Authorization` for every vector expressible as a request, twice in a row (the
/// second time from the cache), and the same value as `sign_request` and a caller-held `SigningKey`.
#[test]
fn fast_path_matches_official_sdk_signatures() {
    use cos_core::auth::{
        authorize, authorize_with_key, encode, encode_path, sign_request, SigningKey,
    };
    let path = vectors_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    let (mut checked, mut failures) = (0, Vec::new());
    'case: for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let s = |k: &str| case[k].as_str().unwrap().to_string();
        let Some(want) = case["expected"]["authorization"].as_str() else {
            continue;
        };
        let creds = Credentials::new(s("secret_id"), s("secret_key"));
        let key_time = KeyTime::parse(&s("key_time")).unwrap();
        let query = pairs(&case["query"])
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        // The path as the Python SDK sends it: `/` + key, or the key itself when it starts with `/`
        // (the signature covers the whole path as sent).
        let key = s("key");
        let mut uri = if key.starts_with('/') {
            encode_path(&key)
        } else {
            format!("/{}", encode_path(&key))
        };
        if !query.is_empty() {
            uri = format!("{uri}?{query}");
        }
        let mut builder = http::Request::builder()
            .method(s("method").as_str())
            .uri(uri);
        for (k, v) in pairs(&case["headers"]) {
            // Values a request cannot carry as visible ASCII, and empty ones, are not signed from a request.
            if v.is_empty() || !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                continue 'case;
            }
            builder = builder.header(k.as_str(), v.as_str());
        }
        let Ok(req) = builder.body(()) else { continue };
        for round in 0..2 {
            let mut r = req.clone();
            authorize(&mut r, &creds, key_time).unwrap();
            let got = r.headers()["authorization"].to_str().unwrap();
            if got != want {
                failures.push(format!(
                    "{name} (round {round})\n  want {want}\n  got  {got}"
                ));
            }
        }
        let mut a = req.clone();
        let slow = sign_request(&mut a, &creds, key_time).unwrap();
        assert_eq!(slow.authorization, want, "{name}: sign_request");
        let mut b = req.clone();
        authorize_with_key(
            &mut b,
            &creds,
            &SigningKey::new(creds.secret_key(), key_time),
        )
        .unwrap();
        assert_eq!(b.headers()["authorization"], want, "{name}: SigningKey");
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked * 4 >= cases.len() * 3,
        "only {checked} of {} vectors could be expressed as requests",
        cases.len()
    );
    eprintln!(
        "{checked} of {} vectors signed on the fast path",
        cases.len()
    );
}
