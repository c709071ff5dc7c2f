//! The deterministic transfer simulation (see `cos_testkit::sim`): `COS_SIM_SEEDS` seeds (default 10,000)
//! from `COS_SIM_START` (default 0), in four shards run in parallel. `COS_SIM_SEED=N` replays one seed with its
//! trace.

use std::time::Instant;

use cos_testkit::sim;

const SHARDS: u64 = 4;

/// Failure kinds of known core bugs, reported but not failing the run until the core is fixed (set
/// `COS_SIM_STRICT=1` to fail on them too). None today: the classes found so far (`progress-end`,
/// `complete-no-such-upload`, `find-leftover`) are fixed and fail the run like any invariant; see the
/// `fixed_bug_*` tests for their seeds.
const KNOWN: &[&str] = &[];

/// Plays each of `seeds` with `play` (trace kept); a failure prints the trace and fails the test.
fn replay_fixed(seeds: &[u64], play: fn(u64, bool) -> Result<sim::Summary, sim::Failure>) {
    for &seed in seeds {
        if let Err(f) = play(seed, true) {
            for line in &f.trace {
                println!("{line}");
            }
            panic!("{f}");
        }
    }
}

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
    let strict = std::env::var_os("COS_SIM_STRICT").is_some();
    let mut failures = Vec::new();
    let mut known = Vec::new();
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
            Err(f) if !strict && KNOWN.contains(&f.kind) => known.push(f),
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
    for kind in KNOWN {
        let hits: Vec<u64> = known
            .iter()
            .filter(|f| f.kind == *kind)
            .map(|f| f.seed)
            .collect();
        if !hits.is_empty() {
            println!(
                "shard {index}: known bug {kind}: {} seeds, first {:?}",
                hits.len(),
                &hits[..hits.len().min(5)]
            );
        }
    }
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

/// The download simulation (`cos_testkit::sim::download`): `COS_SIM_DOWNLOAD_SEEDS` seeds (default 4,000)
/// from `COS_SIM_DOWNLOAD_START` (default 0) in two shards; `COS_SIM_DOWNLOAD_SEED=N` replays one with its
/// trace.
fn download_shard(index: u64) {
    if let Some(seed) = env_u64("COS_SIM_DOWNLOAD_SEED") {
        if index == 0 {
            match sim::download::run(seed, true) {
                Ok(s) => println!("download seed {seed}: ok {s:?}"),
                Err(f) => {
                    for line in &f.trace {
                        println!("{line}");
                    }
                    panic!("{f}\n  replay: COS_SIM_DOWNLOAD_SEED={seed} cargo test -p cos-testkit --test sim -- download --nocapture");
                }
            }
        }
        return;
    }
    let start = env_u64("COS_SIM_DOWNLOAD_START").unwrap_or(0);
    let count = env_u64("COS_SIM_DOWNLOAD_SEEDS").unwrap_or(4_000);
    let t = Instant::now();
    let mut failures = Vec::new();
    let mut total = sim::download::DownloadSummary::default();
    let mut seeds = 0u64;
    for seed in (start..start.saturating_add(count)).filter(|s| s % 2 == index) {
        seeds += 1;
        match sim::download::run(seed, false) {
            Ok(s) => {
                total.runs += s.runs;
                total.gets += s.gets;
                total.kills += s.kills;
                total.cuts += s.cuts;
                total.changes += s.changes;
            }
            Err(f) => failures.push(f),
        }
    }
    println!(
        "download shard {index}: {seeds} seeds in {:.1?}: {} runs, {} GETs, {} kills, {} cut bodies, {} objects replaced",
        t.elapsed(),
        total.runs,
        total.gets,
        total.kills,
        total.cuts,
        total.changes
    );
    if !failures.is_empty() {
        for f in failures.iter().take(10) {
            eprintln!(
                "{}: {}\n  replay: COS_SIM_DOWNLOAD_SEED={} cargo test -p cos-testkit --test sim -- download --nocapture",
                f.seed, f.message, f.seed
            );
        }
        panic!(
            "{} of {seeds} download seeds broke an invariant (first: seed {}: {})",
            failures.len(),
            failures[0].seed,
            failures[0].message
        );
    }
}

#[test]
fn download_seeds_shard_0() {
    download_shard(0);
}

#[test]
fn download_seeds_shard_1() {
    download_shard(1);
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

/// Fixed core bug (seed 115): a resumed run finds the upload gone because the killed run's Complete went
/// through, confirms the object with HEAD and succeeds, but never reported progress: the bar stayed where it
/// was instead of reaching the total. `MultipartUpload` now ends every success with `Progress` at the total.
#[test]
fn fixed_bug_progress_end() {
    replay_fixed(&[115], sim::run);
}

/// Fixed core bug (seeds 2007, 7987, 9241): the process is killed after sending Complete, whose answer is
/// slow; the resumed run lists the parts (the upload still exists), then the killed run's Complete lands, and
/// the resumed run's own Complete meets `NoSuchUpload`. Because it was its *first* Complete, `MultipartUpload`
/// failed instead of confirming the object with HEAD: the user was told the upload failed although the object
/// was stored and byte-identical. A task that took its upload over from an earlier run now confirms with HEAD.
#[test]
fn fixed_bug_complete_no_such_upload_after_resume() {
    replay_fixed(&[2007, 7987, 9241], sim::run);
}

/// Fixed core behaviour (seeds 5070, 4919), find-unfinished mode (no checkpoint): a lost Initiate answer
/// leaves an empty orphan upload next to the one the run then used; both are listed with the same `Initiated`
/// second, and the resumed run picked the orphan (a tie went to the later listed id), sent every part again
/// and left the upload that holds parts unfinished (5070); the search now prefers the newest upload that
/// holds a part of the plan. And a cancel that arrived while the search ran ended at once, leaving the earlier
/// run's upload (4919); the search now finishes and its upload is aborted.
#[test]
fn fixed_bug_find_unfinished_leaves_an_upload() {
    replay_fixed(&[5070, 4919], sim::run);
}

/// Fixed core bug (seed 23913, found by running seeds beyond the CI default): a search lists the upload the
/// killed run was completing and an empty orphan; the late Complete lands, so List Parts of the newest answers
/// `NoSuchUpload` and the orphan holds no part. The task then fell back to "continue the newest" - the upload
/// that was just found gone - and failed with `NoSuchUpload`; a vanished candidate is now never the fallback.
#[test]
fn fixed_bug_search_falls_back_to_a_vanished_upload() {
    replay_fixed(&[23913], sim::run);
}

/// Fixed core bugs found beyond the CI default range (`COS_SIM_START=10000 COS_SIM_SEEDS=30000`):
/// - 24933: the source changed since the checkpoint, and a cancel came before the stale upload's Abort went
///   out; the task ended at once and removed the checkpoint, leaving the stale upload unfinished. The Abort
///   is now sent first.
/// - 20396: with no checkpoint, a cancel before the search for the earlier run's upload began ended the task
///   at once, leaving that upload; the task now searches and aborts it, as a cancel during the search does.
/// - 28849: a killed run's late Abort (the user had cancelled it) removed the upload between the resumed
///   run's List Parts and its first Complete; HEAD found no object and the run failed with `NoSuchUpload`.
///   The upload was never completed, so the run now starts over.
/// - 10508, 29176, 31120: the HEAD that confirms a lost Complete kept failing (503s); the run failed with the
///   Complete's `NoSuchUpload`, which says the upload is gone although the object may be stored. It now fails
///   with the HEAD's retryable error, and keeps its checkpoint.
/// - 43777, 56537 (no checkpoint, the source changed): the upload a search found was being completed by the
///   killed run; its Complete landed while this run re-sent a changed part, which met `NoSuchUpload`, and the
///   run failed. A taken-over upload found gone mid-way now starts over once its parts in flight are answered.
#[test]
fn fixed_bugs_beyond_the_default_range() {
    replay_fixed(
        &[24933, 20396, 28849, 10508, 29176, 31120, 43777, 56537],
        sim::run,
    );
}

/// The stream simulation (`cos_testkit::sim::run_stream`): `COS_SIM_STREAM_SEEDS` seeds (default 4,000) from
/// `COS_SIM_STREAM_START` in two shards; `COS_SIM_STREAM_SEED=N` replays one with its trace.
fn stream_shard(index: u64) {
    if let Some(seed) = env_u64("COS_SIM_STREAM_SEED") {
        if index == 0 {
            if let Err(f) = sim::run_stream(seed, true) {
                for line in &f.trace {
                    println!("{line}");
                }
                panic!("{f}\n  replay: COS_SIM_STREAM_SEED={seed} cargo test -p cos-testkit --test sim -- stream --nocapture");
            }
        }
        return;
    }
    let start = env_u64("COS_SIM_STREAM_START").unwrap_or(0);
    let count = env_u64("COS_SIM_STREAM_SEEDS").unwrap_or(4_000);
    let t = Instant::now();
    let mut failures = Vec::new();
    let (mut seeds, mut runs, mut requests, mut kills) = (0u64, 0u64, 0u64, 0u64);
    for seed in (start..start.saturating_add(count)).filter(|s| s % 2 == index) {
        seeds += 1;
        match sim::run_stream(seed, false) {
            Ok(s) => {
                runs += u64::from(s.runs);
                requests += s.requests;
                kills += u64::from(s.kills);
            }
            Err(f) => failures.push(f),
        }
    }
    println!(
        "stream shard {index}: {seeds} seeds in {:.1?}: {runs} runs, {requests} requests, {kills} kills",
        t.elapsed()
    );
    if let Some(first) = failures.first() {
        for f in failures.iter().take(10) {
            eprintln!(
                "{}: {}\n  replay: COS_SIM_STREAM_SEED={} cargo test -p cos-testkit --test sim -- stream --nocapture",
                f.seed, f.message, f.seed
            );
        }
        panic!(
            "{} of {seeds} stream seeds broke an invariant (first: seed {}: {})",
            failures.len(),
            first.seed,
            first.message
        );
    }
}

#[test]
fn stream_seeds_shard_0() {
    stream_shard(0);
}

#[test]
fn stream_seeds_shard_1() {
    stream_shard(1);
}

/// Stream seeds beyond CI's default range: 5881 (a cancel during the backoff before a Complete's retry,
/// whose first attempt had stored the object: the Abort meets `NoSuchUpload` and a HEAD now finds the
/// Complete won) and 8520 (a killed run's late Complete replaces the object after the last run's success:
/// the last writer wins, which the simulation accepts for streams, each run being a new upload).
#[test]
fn fixed_stream_seeds_beyond_the_default_range() {
    replay_fixed(&[5881, 8520], sim::run_stream);
}
