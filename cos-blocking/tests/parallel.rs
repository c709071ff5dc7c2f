//! The blocking `Source` trait under parallel parts (`Client::run` with a custom source): the source ranges
//! open at once stay within the concurrency asked for, and every reader the driver opens is dropped. How
//! many parts go out at once, measured by the server, is in cos-testkit's driver conformance suite for
//! both clients (`cargo test -p cos-testkit --test drivers parts_go_out_in_parallel`).

use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cos_blocking::{Client, Config, Credentials, Endpoint};
use cos_core::upload::{MultipartUpload, UploadConfig};
use cos_testkit::{Fault, FaultPlan, Server};

const MIB: usize = 1 << 20;

fn config(server: &Server) -> Config {
    let mut c = Config::new(
        server.bucket(),
        "ap-guangzhou",
        Credentials::new(server.secret_id(), server.secret_key()),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
    .unwrap();
    c.retry.initial_backoff = Duration::from_millis(5);
    c.retry.max_backoff = Duration::from_millis(20);
    c
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| {
            (i.wrapping_mul(2_654_435_761)
                .wrapping_add(seed.wrapping_mul(977))
                >> 13) as u8
        })
        .collect()
}

/// A source that counts how many of its ranges are being read at once.
struct Counting {
    data: Vec<u8>,
    open: AtomicUsize,
    max_open: AtomicUsize,
}

struct CountingReader<'a> {
    inner: io::Cursor<&'a [u8]>,
    open: &'a AtomicUsize,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Drop for CountingReader<'_> {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl cos_blocking::Source for Counting {
    fn open(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_open.fetch_max(now, Ordering::SeqCst);
        let range = &self.data[offset as usize..(offset + len) as usize];
        Ok(Box::new(CountingReader {
            inner: io::Cursor::new(range),
            open: &self.open,
        }))
    }
}

#[test]
fn parts_really_are_in_flight_together_and_never_more_than_asked() {
    // Every request stalls before the server reads its body, so a part's range stays open meanwhile.
    let plan = FaultPlan::new()
        .with(Fault::Stall(Duration::from_millis(100)), 1.0)
        .unwrap();
    let server = Server::builder().faults(plan).start_blocking().unwrap();
    let client = Client::new(config(&server));
    for concurrency in [1, 4] {
        let source = Counting {
            data: pattern(8 * MIB + 3, 5),
            open: AtomicUsize::new(0),
            max_open: AtomicUsize::new(0),
        };
        let upload = UploadConfig {
            part_size: Some(MIB as u64),
            max_in_flight: concurrency,
            ..Default::default()
        };
        let key = format!("p{concurrency}.bin");
        let task =
            MultipartUpload::new(client.config(), &key, source.data.len() as u64, upload).unwrap();
        let out = client.run(task, &source).unwrap();
        assert_eq!(out.parts, 9);
        assert!(server.object(&key).unwrap().data.unwrap() == source.data);
        let max = source.max_open.load(Ordering::SeqCst);
        match concurrency {
            1 => assert_eq!(max, 1),
            _ => assert!(
                (3..=concurrency).contains(&max),
                "{max} ranges open at once"
            ),
        }
        assert_eq!(
            source.open.load(Ordering::SeqCst),
            0,
            "every reader was dropped"
        );
    }
}
