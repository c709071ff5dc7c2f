//! The deterministic transfer simulation (see `cos_testkit::sim`): `COS_SIM_SEEDS` seeds (default 10,000)
//! from `COS_SIM_START` (default 0), in four shards run in parallel. `COS_SIM_SEED=N` replays one seed with its
//! trace.

use std::time::Instant;

use cos_testkit::sim;

const SHARDS: u64 = 4;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn shard(index: u64) {
    if let Some(seed) = env_u64("COS_SIM_SEED") {
        if index == 0 {
            match sim::run(seed, true) {
                Ok(s) => println!("seed {seed}: ok {s:?}"),
                Err(f) => {
                    for line in &f.trace {
                        println!("{line}");
                    }
                    panic!("{f}");
                }
            }
        }
        return;
    }
    let start = env_u64("COS_SIM_START").unwrap_or(0);
    let count = env_u64("COS_SIM_SEEDS").unwrap_or(10_000);
    let t = Instant::now();
    let mut failures = Vec::new();
    let mut total = sim::Summary::default();
    let mut seeds = 0u64;
    for seed in (start..start + count).filter(|s| s % SHARDS == index) {
        seeds += 1;
        match sim::run(seed, false) {
            Ok(s) => {
                total.runs += s.runs;
                total.requests += s.requests;
                total.kills += s.kills;
                total.failed_runs += s.failed_runs;
            }
            Err(f) => failures.push(f),
        }
    }
    println!(
        "shard {index}: {seeds} seeds in {:.1?}: {} runs, {} requests, {} kills, {} failed runs resumed",
        t.elapsed(),
        total.runs,
        total.requests,
        total.kills,
        total.failed_runs
    );
    if !failures.is_empty() {
        for f in failures.iter().take(10) {
            eprintln!("{f}");
        }
        panic!(
            "{} of {seeds} seeds broke an invariant (first: {})",
            failures.len(),
            failures[0]
        );
    }
}

#[test]
fn seeds_shard_0() {
    shard(0);
}

#[test]
fn seeds_shard_1() {
    shard(1);
}

#[test]
fn seeds_shard_2() {
    shard(2);
}

#[test]
fn seeds_shard_3() {
    shard(3);
}

#[test]
#[ignore]
fn md5_speed() {
    let v = vec![7u8; 64 << 20];
    let t = Instant::now();
    let d = cos_core::checksum::BodyDigest::of(&v);
    println!("64 MiB digest in {:?} {}", t.elapsed(), d.md5_hex());
}
