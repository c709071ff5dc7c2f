//! Benchmark: the CPU price of the integrity checks, per GiB hashed in memory on one core.
//!
//! ```text
//! cargo run --release -p cos-examples --example bench_hash -- [SIZE_MIB] [ROUNDS]
//! ```
//!
//! Hashes one buffer (default 256 MiB, best of 7 rounds) with cos-core's MD5 (`checksum::md5_hex`, what
//! `verify_md5` and `Content-MD5` use), its CRC-64 (`checksum::Crc64`, the default check) and both in one
//! pass (`checksum::BodyDigest`, what a part costs with MD5 on), and prints seconds per GiB. On a shared
//! machine run it under `chrt -f 50` (as root) so that other processes do not inflate the figures.

use std::time::Instant;

use cos_core::checksum::{md5_hex, BodyDigest, Crc64};

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let data: Vec<u8> = (0..mib << 20).map(|i| (i * 131 + i / 7) as u8).collect();
    let per_gib = |secs: f64| secs * (1u64 << 30) as f64 / data.len() as f64;
    let best = |f: &dyn Fn() -> String| {
        let mut best = f64::MAX;
        let mut out = String::new();
        for _ in 0..rounds {
            let t = Instant::now();
            out = f();
            best = best.min(t.elapsed().as_secs_f64());
        }
        (per_gib(best), out)
    };
    println!("{mib} MiB buffer, best of {rounds} rounds");
    println!("{:<28} {:>10}  result", "check", "s per GiB");
    let rows: [(&str, &dyn Fn() -> String); 3] = [
        ("MD5 (cos-core)", &|| md5_hex(&data)),
        ("CRC-64 (cos-core)", &|| {
            format!("{:016x}", Crc64::checksum(&data))
        }),
        ("MD5 + CRC-64, one pass", &|| {
            let mut d = BodyDigest::with_md5(true);
            // In 256 KiB pieces, as the drivers feed a part while sending it.
            for piece in data.chunks(256 << 10) {
                d.update(piece);
            }
            let d = d.finish();
            format!("{} {:016x}", d.md5_hex().unwrap_or_default(), d.crc64)
        }),
    ];
    for (name, f) in rows {
        let (s, out) = best(f);
        println!("{name:<28} {s:>10.3}  {out}");
    }
}
