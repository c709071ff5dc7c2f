//! A seeded, coverage-less fuzz round for the POST form parsers the server uses (moved here from
//! cos-core's harness with the parsers): the policy JSON reader, the form verifier and the
//! `multipart/form-data` splitter, over inputs mutated from `tests/corpus/{policy,form}`.
//!
//! Properties: nothing panics; every refusal's `Display` is short and has no control characters.
//! `cargo test -p cos-testkit --test fuzz_policy` runs a bounded round; for a longer one:
//! `COS_FUZZ_ITERS=200000 COS_FUZZ_SEED=$RANDOM cargo test -p cos-testkit --test fuzz_policy -- --nocapture`.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use cos_core::Credentials;
use cos_testkit::policy::{parse_multipart, parse_policy_json, verify_form, FormSubmission};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn iterations() -> usize {
    std::env::var("COS_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

fn seed() -> u64 {
    let seed = std::env::var("COS_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x00c0_5f22);
    println!("fuzz: seed {seed}, {} iterations", iterations());
    seed
}

/// The lines of the files in a corpus directory, each one input.
fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&base)
        .unwrap_or_else(|e| panic!("{}: {e}", base.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for p in files {
        let bytes = std::fs::read(&p).unwrap();
        if p.extension().is_some_and(|e| e == "txt") {
            out.extend(
                bytes
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec),
            );
        } else {
            out.push(bytes);
        }
    }
    assert!(!out.is_empty(), "empty corpus {dir}");
    out
}

const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud83d",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b"null",
    b"true",
    b"-1",
    b"1e3",
    b"18446744073709551616",
    b"$",
    b"${filename}",
    b"\r\n",
    b"\r\n\r\n",
    b"--",
    b"--XY",
    b"boundary=",
    b"name=\"file\"",
    b"filename=\"a\"",
    b"\x00",
    b"\xff\xfe",
    b"\x1b[2J",
];

/// Mutates `input` with 1..=8 edits: bit flips, token inserts, deletions, cuts, random bytes.
fn mutate(r: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=r.below(8) {
        let pos = r.below(v.len() + 1);
        match r.below(6) {
            0 if !v.is_empty() => {
                let i = pos.min(v.len() - 1);
                v[i] ^= 1 << r.below(8);
            }
            1 | 2 => {
                let t = TOKENS[r.below(TOKENS.len())];
                v.splice(pos..pos, t.iter().copied());
            }
            3 if !v.is_empty() => {
                let end = (pos + r.below(32)).min(v.len());
                v.drain(pos.min(end)..end);
            }
            4 => v.truncate(pos),
            _ => v.insert(pos, r.next() as u8),
        }
    }
    v
}

fn inputs(salt: u64, pool: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut r = Rng((seed() ^ salt) | 1);
    (0..iterations())
        .map(|i| match pool.get(i) {
            Some(p) => p.clone(),
            None => {
                let base = pool[r.below(pool.len())].clone();
                mutate(&mut r, &base)
            }
        })
        .collect()
}

fn check_display(e: &impl std::fmt::Display, input: &[u8]) {
    let s = e.to_string();
    assert!(
        s.len() < 2048 && !s.chars().any(|c| c.is_control()),
        "error {s:?} on input {:?}",
        String::from_utf8_lossy(input)
    );
}

#[test]
fn fuzz_policy_json_and_verify_form() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_100);
    for input in inputs(0x9e37_79b9_7f4a_7c15, &corpus("tests/corpus/policy")) {
        if let Err(e) = parse_policy_json(&String::from_utf8_lossy(&input)) {
            check_display(&e, &input);
        }
        // The policy as a form field, with the other fields a real form carries.
        let fields = vec![
            ("key".to_string(), "in/a.txt".to_string()),
            (
                "policy".to_string(),
                base64::engine::general_purpose::STANDARD.encode(&input),
            ),
            ("q-sign-algorithm".to_string(), "sha1".to_string()),
            ("q-ak".to_string(), "AKIDEXAMPLE".to_string()),
            (
                "q-key-time".to_string(),
                "1700000000;1900000000".to_string(),
            ),
            ("q-signature".to_string(), "0".repeat(40)),
        ];
        let form = FormSubmission {
            fields: &fields,
            filename: "a.txt",
            file_len: 5,
            bucket: "examplebucket-1250000000",
        };
        let r = verify_form(&form, now, |_| Some(Credentials::new("AKIDEXAMPLE", "k")));
        // The signature is all zeros: no mutated policy can be accepted.
        let e = r.expect_err("a form signed with zeros was accepted");
        check_display(&e, &input);
    }
}

#[test]
fn fuzz_multipart_parser() {
    for input in inputs(0x0100_0000_01b3, &corpus("tests/corpus/form")) {
        let body = Bytes::from(input.clone());
        for ct in [
            "multipart/form-data; boundary=XY",
            "multipart/form-data; boundary=\"XY\"",
            "multipart/form-data",
            "text/plain",
        ] {
            match parse_multipart(ct, &body) {
                Ok(parts) => {
                    for p in parts {
                        assert!(p.data.len() <= body.len());
                    }
                }
                Err(e) => check_display(&e, &input),
            }
        }
    }
}
