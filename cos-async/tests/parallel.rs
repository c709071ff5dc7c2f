//! The driver sends a multipart upload's parts in parallel, up to the concurrency asked for: measured by
//! the request spans open at once (a test binary of its own, so that no other test's spans interfere).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cos_async::{Client, Config, Credentials, Endpoint, UploadOptions};
use cos_testkit::{Fault, FaultPlan, Server};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const MIB: usize = 1 << 20;

fn client(server: &Server) -> Client {
    let mut c = Config::new(
        server.bucket(),
        "ap-guangzhou",
        Credentials::new(server.secret_id(), server.secret_key()),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
    .unwrap();
    c.retry.initial_backoff = Duration::from_millis(5);
    Client::new(c)
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| {
            let x = i
                .wrapping_add(seed.wrapping_mul(0x2545_f491))
                .wrapping_mul(0x9e37_79b1);
            ((x ^ (x >> 15)).wrapping_mul(0x85eb_ca77) >> 24) as u8
        })
        .collect()
}

fn stored(server: &Server, key: &str) -> Vec<u8> {
    server.object(key).expect("object").data.expect("data")
}

fn options() -> UploadOptions {
    UploadOptions::default()
        .part_size(MIB as u64)
        .concurrency(4)
}

/// Tracks how many `cos_request` spans (one per request the driver sends) are open at once.
#[derive(Clone, Default)]
struct MaxOpen(Arc<(AtomicUsize, AtomicUsize)>);

impl MaxOpen {
    fn max(&self) -> usize {
        self.0 .1.load(Ordering::SeqCst)
    }

    fn reset(&self) {
        self.0 .1.store(0, Ordering::SeqCst);
    }
}

impl<S> Layer<S> for MaxOpen
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "cos_request" {
            let open = self.0 .0.fetch_add(1, Ordering::SeqCst) + 1;
            self.0 .1.fetch_max(open, Ordering::SeqCst);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if ctx
            .span(&id)
            .is_some_and(|s| s.metadata().name() == "cos_request")
        {
            self.0 .0.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn multipart_parts_go_out_in_parallel() {
    let open = MaxOpen::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(open.clone()));
    // Every request stalls 50 ms, so that the parts in flight overlap.
    let plan = FaultPlan::new()
        .with(Fault::Stall(Duration::from_millis(50)), 1.0)
        .unwrap();
    let server = Server::builder().faults(plan).start().await.unwrap();
    let data = pattern(20 * MIB + 12_345, 2);
    let path: PathBuf =
        std::env::temp_dir().join(format!("cos-async-parallel-{}", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    let out = client(&server)
        .upload_file(&path, "dir/big.bin", &options())
        .await
        .unwrap();
    assert_eq!(out.parts, 21);
    assert!(out.etag.ends_with("-21\""), "{}", out.etag);
    let c = server.counters();
    assert_eq!(c.get("UploadPart"), 21, "{c:?}");
    assert_eq!(c.get("InitiateMultipartUpload"), 1);
    assert_eq!(c.get("CompleteMultipartUpload"), 1);
    assert!(stored(&server, "dir/big.bin") == data, "byte-identical");
    assert!(server.multipart_uploads().is_empty());
    assert_eq!(open.max(), 4, "4 requests in flight at most, and at times");

    // One at a time when asked.
    open.reset();
    client(&server)
        .upload_file(
            &path,
            "dir/big1.bin",
            &options().concurrency(1).part_size(4 * MIB as u64),
        )
        .await
        .unwrap();
    assert_eq!(open.max(), 1);
    assert!(stored(&server, "dir/big1.bin") == data);
    std::fs::remove_file(&path).unwrap();
}
