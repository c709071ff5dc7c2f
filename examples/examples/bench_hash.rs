//! Benchmark: the CPU price of the integrity checks, per GiB hashed in memory on one core.
//!
//! ```text
//! cargo run --release -p cos-examples --example bench_hash -- [SIZE_MIB] [ROUNDS]
//! ```
//!
//! Hashes one buffer (default 256 MiB, best of 7 rounds) with cos-core's MD5 (`checksum::md5_hex`, what
//! `verify_md5` and `Content-MD5` use), its CRC-64 (`checksum::Crc64`, the default check) and both in one
//! pass (`checksum::BodyDigest`), and the MD5s of its two halves hashed in step (`checksum::Md5Pool`, what the
//! drivers do with parts in flight when MD5 is on; the piece copies included), and prints seconds per GiB. On a shared
//! machine run it under `chrt -f 50` (as root) so that other processes do not inflate the figures.

use std::time::Instant;

use bytes::Bytes;
use cos_core::checksum::{self, md5_hex, BodyDigest, Crc64, Md5Pool};

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
    let shared = Bytes::from(data.clone());
    println!("{mib} MiB buffer, best of {rounds} rounds");
    println!("{:<28} {:>10}  result", "check", "s per GiB");
    let rows: [(&str, &dyn Fn() -> String); 4] = [
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
        ("MD5, two halves in step", &|| {
            // The buffer's halves as two bodies sent at once: each 256 KiB piece of one is hashed with
            // the other's in an `Md5Pool`, as the drivers do with parts in flight when MD5 is on.
            let pool = Md5Pool::default();
            let (mut a, mut b) = (pool.lane(), pool.lane());
            let half = shared.len() / 2;
            let waker = std::task::Waker::noop();
            for at in (0..half).step_by(256 << 10) {
                let end = (at + (256 << 10)).min(half);
                let _ = a.push(shared.slice(at..end), waker);
                let _ = b.push(shared.slice(half + at..half + end), waker);
            }
            let (a, b) = (a.finish(waker).ok(), b.finish(waker).ok());
            let hex = |d: Option<[u8; 16]>| d.map(|d| checksum::hex(&d)).unwrap_or_default();
            format!("{} {}", hex(a), hex(b))
        }),
    ];
    for (name, f) in rows {
        let (s, out) = best(f);
        println!("{name:<28} {s:>10.3}  {out}");
    }
}
