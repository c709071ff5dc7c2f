//! Benchmark: the async driver's file read path. Reads a file (default 256 MiB) as 4 ranges at once, in
//! 256 KiB chunks (the chunk size the async transport sends), on a 2-worker tokio runtime, three ways:
//!
//! - `tokio::fs`: a file opened per range, `seek`, reads into a fresh zeroed buffer per chunk (the old path:
//!   every read hops to the blocking pool and is copied once more out of `tokio::fs`'s own buffer);
//! - `spawn_blocking pread`: one shared handle, each chunk read with `pread` on the blocking pool into a
//!   reused buffer, then copied into the chunk;
//! - `cos-async FileSource`: one shared handle, `pread` on the worker thread straight into a pooled buffer
//!   (what the driver does now).
//!
//! ```sh
//! cargo run --release -p cos-examples --example bench_read -- [SIZE_MIB] [ROUNDS]
//! ```
//! Prints wall time and process CPU per GiB for each (best of ROUNDS, default 5). The file is read from the
//! page cache (it is written just before), as in the upload benchmarks.

use std::io::SeekFrom;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cos_async::{AsyncSource, FileSource};
use cos_examples::{cpu_time, make_file};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

const CHUNK: usize = 256 * 1024;
const RANGES: u64 = 4;

async fn tokio_fs(path: Arc<std::path::PathBuf>, off: u64, len: u64) -> u64 {
    let mut f = tokio::fs::File::open(&*path).await.unwrap();
    f.seek(SeekFrom::Start(off)).await.unwrap();
    let mut f = f.take(len);
    let mut sum = 0u64;
    loop {
        let mut buf = bytes::BytesMut::zeroed(CHUNK);
        let n = f.read(&mut buf[..]).await.unwrap();
        if n == 0 {
            return sum;
        }
        buf.truncate(n);
        sum += buf.freeze()[n - 1] as u64;
    }
}

async fn spawn_blocking(file: Arc<std::fs::File>, off: u64, len: u64) -> u64 {
    let (mut pos, end, mut sum) = (off, off + len, 0u64);
    let mut scratch = vec![0u8; CHUNK];
    while pos < end {
        let want = CHUNK.min((end - pos) as usize);
        let f = file.clone();
        let (s, n) = tokio::task::spawn_blocking(move || {
            let mut s = scratch;
            let n = std::os::unix::fs::FileExt::read_at(&*f, &mut s[..want], pos).unwrap();
            (s, n)
        })
        .await
        .unwrap();
        let chunk = bytes::Bytes::copy_from_slice(&s[..n]);
        scratch = s;
        sum += chunk[n - 1] as u64;
        pos += n as u64;
    }
    sum
}

async fn file_source(src: Arc<FileSource>, off: u64, len: u64) -> u64 {
    let mut r = src.open(off, len).await.unwrap();
    // The driver's pooled chunks are initialised once; emulate them with one reused buffer per range.
    let mut buf = vec![0u8; CHUNK];
    let mut sum = 0u64;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            return sum;
        }
        sum += buf[n - 1] as u64;
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let size_mib: u64 = args.next().map(|s| s.parse().unwrap()).unwrap_or(256);
    let rounds: u32 = args.next().map(|s| s.parse().unwrap()).unwrap_or(5);
    let len = size_mib << 20;
    let path = std::env::temp_dir().join(format!("cos-rs-bench-read-{size_mib}MiB.bin"));
    make_file(&path, len, 3).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let range = len / RANGES;
    println!("{:<26} {:>9} {:>12}", "read path", "wall ms", "cpu s/GiB");
    for mode in ["tokio::fs", "spawn_blocking pread", "cos-async FileSource"] {
        let (mut wall, mut cpu) = (Duration::MAX, Duration::MAX);
        for _ in 0..rounds {
            let c0 = cpu_time().unwrap_or_default();
            let t = Instant::now();
            let path = Arc::new(path.clone());
            let shared = Arc::new(std::fs::File::open(&*path).unwrap());
            let src = Arc::new(FileSource::new(&*path));
            rt.block_on(async {
                let mut tasks = Vec::new();
                for i in 0..RANGES {
                    let off = i * range;
                    tasks.push(match mode {
                        "tokio::fs" => tokio::spawn(tokio_fs(path.clone(), off, range)),
                        "spawn_blocking pread" => {
                            tokio::spawn(spawn_blocking(shared.clone(), off, range))
                        }
                        _ => tokio::spawn(file_source(src.clone(), off, range)),
                    });
                }
                for t in tasks {
                    std::hint::black_box(t.await.unwrap());
                }
            });
            wall = wall.min(t.elapsed());
            cpu = cpu.min(cpu_time().unwrap_or_default().saturating_sub(c0));
        }
        let per_gib = cpu.as_secs_f64() * 1024.0 / size_mib as f64;
        println!(
            "{mode:<26} {:>9.1} {per_gib:>12.3}",
            wall.as_secs_f64() * 1e3
        );
    }
}
