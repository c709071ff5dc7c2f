//! Records the protocol fixtures in `cos-testkit/fixtures/`: one JSON file per scenario, each a list of
//! request/response exchanges that `cos_testkit::replay` plays back with no network.
//!
//! ```text
//! # against a local cos-testkit server (the committed fixtures)
//! cargo run -p cos-examples --example record_fixtures
//! # against real COS (secrets from the environment; signatures and the key are redacted in the files)
//! COS_SECRET_ID=AKID... COS_SECRET_KEY=... cargo run -p cos-examples --example record_fixtures -- \
//!     --bucket examplebucket-1250000000 --region ap-guangzhou --out /tmp/cos-fixtures
//! ```
//!
//! Options: `--out DIR` (default `cos-testkit/fixtures`), `--only NAME` (repeatable: record only these
//! scenarios), `--addr IP:PORT` (the local server's address, default `127.0.0.1:9000`, so that re-recorded
//! fixtures differ only where the server's answers do), `--bucket B --region R [--endpoint URL]` (real COS).
//!
//! Every scenario runs `cos-core` tasks through `cos_testkit::replay::Recording`: the tasks see a virtual
//! clock that starts at the current whole second (the fixture's `clock_unix`) and moves only when a task
//! waits, so a replay at `clock_unix` signs byte-identical requests. Against real COS the fault scenario is
//! skipped (COS cannot be told to fail), and before each scenario its keys are deleted and unfinished
//! uploads under `fixtures/` aborted, without recording, so that runs are repeatable.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cos_core::checksum::{md5_hex, SentDigest};
use cos_core::error::{TransportError, TransportErrorKind};
use cos_core::fixture::{Fixture, MatchMode};
use cos_core::ops::{
    AbortMultipartUpload, AppendObject, CompleteMultipartUpload, CompletedPart, GetObject,
    HeadObject, InitiateMultipartUpload, ListMultipartUploads, ListParts, Operation, PutObject,
    StorageClass, UploadPart,
};
use cos_core::task::{OneShot, RequestBody};
use cos_core::upload::{MultipartUpload, UploadConfig};
use cos_core::{Config, Credentials, Endpoint, Error};
use cos_testkit::replay::{
    sample_bytes, save_fixture, save_fixture_with_test_credentials, CompleteInOrder, Recording,
};
use cos_testkit::{Fault, Server};

type BoxError = Box<dyn StdError>;
type Sender<'a> = Box<
    dyn FnMut(&http::Request<RequestBody>, Bytes) -> Result<http::Response<Bytes>, TransportError>
        + 'a,
>;

/// Where the scenarios are recorded.
struct Target {
    config: Config,
    server: Option<Server>,
    agent: ureq::Agent,
    real: bool,
}

impl Target {
    fn sender(&self) -> Sender<'_> {
        let agent = &self.agent;
        Box::new(move |request, body| send(agent, request, body))
    }

    /// A new recording of one scenario, its clock at the current whole second.
    fn recording(&self, docs: &str) -> Recording<Sender<'_>> {
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        self.recording_for(docs, &self.config, clock)
    }

    /// A recording with `config`: secrets redacted as recorded against real COS; the local server's
    /// published test keys and exact signatures kept (the replays check them).
    fn recording_for(&self, docs: &str, config: &Config, clock: u64) -> Recording<Sender<'_>> {
        if self.real {
            Recording::new(docs, config, clock, self.sender())
        } else {
            Recording::with_test_credentials(docs, config, clock, self.sender())
        }
    }

    /// Real COS keeps state between runs: delete the scenario's keys and abort unfinished uploads under
    /// `fixtures/` first (not recorded). A fresh local server has nothing to clean.
    fn clean(&self, keys: &[&str]) -> Result<(), BoxError> {
        if !self.real {
            return Ok(());
        }
        let mut rec = self.recording("cleanup (not saved)");
        for key in keys {
            rec.run(
                OneShot::new(DeleteObject(key.to_string()), self.config.clone())?,
                &[],
            )??;
        }
        let list = ListMultipartUploads::new().prefix("fixtures/");
        let uploads = rec.run(OneShot::new(list, self.config.clone())?, &[])??;
        for u in uploads.uploads {
            let abort = AbortMultipartUpload::new(u.key, u.upload_id);
            rec.run(OneShot::new(abort, self.config.clone())?, &[])??;
        }
        Ok(())
    }
}

/// Sends one request exactly as the core built it, with ureq, and reads the whole answer.
fn send(
    agent: &ureq::Agent,
    request: &http::Request<RequestBody>,
    body: Bytes,
) -> Result<http::Response<Bytes>, TransportError> {
    let mut head = http::Request::builder()
        .method(request.method().clone())
        .uri(request.uri().clone());
    for (name, value) in request.headers() {
        head = head.header(name, value);
    }
    let failed =
        |e: &dyn std::fmt::Display| TransportError::new(TransportErrorKind::Other, e.to_string());
    let response = if body.is_empty() {
        agent.run(head.body(()).map_err(|e| failed(&e))?)
    } else {
        agent.run(head.body(&body[..]).map_err(|e| failed(&e))?)
    }
    .map_err(|e| failed(&e))?;
    let (parts, mut body) = response.into_parts();
    let bytes = body
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .map_err(|e| failed(&e))?;
    Ok(http::Response::from_parts(parts, Bytes::from(bytes)))
}

/// DELETE Object, for the unrecorded cleanup against real COS (the SDK's upload subset has no delete).
struct DeleteObject(String);

impl Operation for DeleteObject {
    type Output = ();
    const NAME: &'static str = "DeleteObject";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        let uri = config.uri(&self.0, &[])?;
        http::Request::builder()
            .method(http::Method::DELETE)
            .uri(uri)
            .header("host", config.host())
            .header("user-agent", &config.user_agent)
            .body(RequestBody::Empty)
            .map_err(|e| Error::InvalidInput(cos_core::InvalidInput::Uri(e.to_string())))
    }

    fn parse_response(
        &self,
        r: &http::Response<Bytes>,
        _: Option<&SentDigest>,
    ) -> Result<(), Error> {
        match r.status().as_u16() {
            200..=299 | 404 => Ok(()),
            _ => Err(cos_core::ops::error_from_response(r)),
        }
    }
}

/// Runs one operation in a recording and returns its outcome.
fn one<O: Operation>(
    rec: &mut Recording<Sender<'_>>,
    config: &Config,
    op: O,
) -> Result<Result<O::Output, Error>, BoxError> {
    Ok(rec.run(OneShot::new(op, config.clone())?, &[])?)
}

/// Runs one operation that must succeed.
fn ok<O: Operation>(
    rec: &mut Recording<Sender<'_>>,
    config: &Config,
    op: O,
) -> Result<O::Output, BoxError> {
    Ok(one(rec, config, op)??)
}

/// Runs one operation that must fail with this COS error code.
fn fails<O: Operation>(
    rec: &mut Recording<Sender<'_>>,
    config: &Config,
    op: O,
    code: &str,
) -> Result<(), BoxError>
where
    O::Output: std::fmt::Debug,
{
    match one(rec, config, op)? {
        Err(e) if e.code() == Some(code) => Ok(()),
        other => Err(format!("expected {code}, got {other:?}").into()),
    }
}

/// One recorded scenario: its file name and how to record it.
struct Scenario {
    name: &'static str,
    local_only: bool,
    run: fn(&Target) -> Result<Fixture, BoxError>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "put_object",
        local_only: false,
        run: put_object,
    },
    Scenario {
        name: "append_object",
        local_only: false,
        run: append_object,
    },
    Scenario {
        name: "head_object",
        local_only: false,
        run: head_object,
    },
    Scenario {
        name: "get_object",
        local_only: false,
        run: get_object,
    },
    Scenario {
        name: "multipart_parts",
        local_only: false,
        run: multipart_parts,
    },
    Scenario {
        name: "complete_errors",
        local_only: false,
        run: complete_errors,
    },
    Scenario {
        name: "abort_multipart_upload",
        local_only: false,
        run: abort_multipart_upload,
    },
    Scenario {
        name: "list_multipart_uploads",
        local_only: false,
        run: list_multipart_uploads,
    },
    Scenario {
        name: "signature_mismatch",
        local_only: false,
        run: signature_mismatch,
    },
    Scenario {
        name: "multipart_upload_task",
        local_only: false,
        run: multipart_upload_task,
    },
    Scenario {
        name: "retry_faults",
        local_only: true,
        run: retry_faults,
    },
];

fn put_object(t: &Target) -> Result<Fixture, BoxError> {
    let key = "fixtures/put/report.txt";
    t.clean(&[key])?;
    let mut rec = t.recording(
        "PUT Object with a content type, cache and disposition headers, two x-cos-meta-* entries and the \
         STANDARD_IA storage class (200 with ETag and x-cos-hash-crc64ecma), then HEAD Object showing them \
         stored.",
    );
    let put = PutObject::new(key)
        .with_bytes("quarterly report: all green\n")
        .content_type("text/plain; charset=utf-8")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"report.txt\"")
        .metadata("project", "cos-rs")
        .metadata("owner", "fixtures")
        .storage_class(StorageClass::StandardIa);
    ok(&mut rec, &t.config, put)?;
    ok(&mut rec, &t.config, HeadObject::new(key))?;
    Ok(rec.fixture())
}

fn append_object(t: &Target) -> Result<Fixture, BoxError> {
    let (key, plain) = ("fixtures/append/log.txt", "fixtures/append/plain.txt");
    t.clean(&[key, plain])?;
    let mut rec = t.recording(
        "Append Object: two appends (positions 0 and 6, each answering x-cos-next-append-position), an \
         append at a stale position (409 PositionNotEqualToLength), then a PUT of a normal object and an \
         append to it (409 ObjectNotAppendable).",
    );
    let first = ok(
        &mut rec,
        &t.config,
        AppendObject::new(key, 0).with_bytes("hello "),
    )?;
    ok(
        &mut rec,
        &t.config,
        AppendObject::new(key, first.next_position).with_bytes("world"),
    )?;
    fails(
        &mut rec,
        &t.config,
        AppendObject::new(key, 3).with_bytes("!"),
        "PositionNotEqualToLength",
    )?;
    ok(
        &mut rec,
        &t.config,
        PutObject::new(plain).with_bytes("not appendable"),
    )?;
    fails(
        &mut rec,
        &t.config,
        AppendObject::new(plain, 14).with_bytes("!"),
        "ObjectNotAppendable",
    )?;
    Ok(rec.fixture())
}

fn head_object(t: &Target) -> Result<Fixture, BoxError> {
    let key = "fixtures/head/hello.txt";
    t.clean(&[key, "fixtures/head/missing.txt"])?;
    let mut rec = t.recording(
        "HEAD Object: a PUT, a HEAD that finds the object (length, type, ETag, CRC-64), and a HEAD of a \
         missing key (404 without a body: NoSuchKey from the status, request id from the header).",
    );
    ok(
        &mut rec,
        &t.config,
        PutObject::new(key)
            .with_bytes("hello head")
            .content_type("text/plain"),
    )?;
    ok(&mut rec, &t.config, HeadObject::new(key))?;
    fails(
        &mut rec,
        &t.config,
        HeadObject::new("fixtures/head/missing.txt"),
        "NoSuchKey",
    )?;
    Ok(rec.fixture())
}

fn get_object(t: &Target) -> Result<Fixture, BoxError> {
    let key = "fixtures/get/alphabet.txt";
    t.clean(&[key])?;
    let mut rec = t.recording(
        "GET Object: a PUT of 26 letters, a full GET (200, CRC-64 checked) and a ranged GET bytes=2-5 \
         (206 with Content-Range).",
    );
    ok(
        &mut rec,
        &t.config,
        PutObject::new(key)
            .with_bytes("abcdefghijklmnopqrstuvwxyz")
            .content_type("text/plain"),
    )?;
    ok(&mut rec, &t.config, GetObject::new(key))?;
    ok(&mut rec, &t.config, GetObject::new(key).range(2, Some(5)))?;
    Ok(rec.fixture())
}

/// The source of the two-part uploads: 1 MiB + 1000 bytes of `sample_bytes`.
const TWO_PART_LEN: usize = (1 << 20) + 1000;

fn multipart_parts(t: &Target) -> Result<Fixture, BoxError> {
    let key = "fixtures/multipart/two-parts.bin";
    t.clean(&[key])?;
    let mut rec = t.recording(
        "Multipart by hand: Initiate (content type), Upload Part 1 (1 MiB) and 2 (1000 bytes) of \
         sample_bytes(1049576), List Parts, Complete (body lists both ETags; answer with the object's \
         CRC-64). Part bodies are recorded as length + MD5.",
    );
    let data = Bytes::from(sample_bytes(TWO_PART_LEN));
    let init = ok(
        &mut rec,
        &t.config,
        InitiateMultipartUpload::new(key).content_type("application/octet-stream"),
    )?;
    let id = init.upload_id;
    let mut parts = Vec::new();
    for (n, range) in [(1, 0..1 << 20), (2, 1 << 20..TWO_PART_LEN)] {
        let up = ok(
            &mut rec,
            &t.config,
            UploadPart::new(key, &id, n).with_bytes(data.slice(range)),
        )?;
        parts.push(CompletedPart {
            part_number: n,
            etag: up.etag,
        });
    }
    ok(&mut rec, &t.config, ListParts::new(key, &id))?;
    ok(
        &mut rec,
        &t.config,
        CompleteMultipartUpload::new(key, &id, parts),
    )?;
    Ok(rec.fixture())
}

fn complete_errors(t: &Target) -> Result<Fixture, BoxError> {
    let key = "fixtures/multipart/bad-complete.bin";
    t.clean(&[key])?;
    let mut rec = t.recording(
        "Complete Multipart Upload errors: two 100-byte parts; Complete with both (400 EntityTooSmall: part 1 \
         is under 1 MiB), with a wrong ETag for part 2 (400 InvalidPart), with the parts listed 2, 1 (400 \
         InvalidPartOrder, sent with cos_testkit::replay::CompleteInOrder), and for an unknown upload id (404 NoSuchUpload); then Abort.",
    );
    let id = ok(&mut rec, &t.config, InitiateMultipartUpload::new(key))?.upload_id;
    let mut parts = Vec::new();
    for n in 1..=2u32 {
        let body = Bytes::from(vec![b'a' + n as u8; 100]);
        let up = ok(
            &mut rec,
            &t.config,
            UploadPart::new(key, &id, n).with_bytes(body),
        )?;
        parts.push(CompletedPart {
            part_number: n,
            etag: up.etag,
        });
    }
    fails(
        &mut rec,
        &t.config,
        CompleteMultipartUpload::new(key, &id, parts.clone()),
        "EntityTooSmall",
    )?;
    let wrong = vec![
        parts[0].clone(),
        CompletedPart {
            part_number: 2,
            etag: format!("\"{}\"", md5_hex(b"something else")),
        },
    ];
    fails(
        &mut rec,
        &t.config,
        CompleteMultipartUpload::new(key, &id, wrong),
        "InvalidPart",
    )?;
    let reversed = vec![parts[1].clone(), parts[0].clone()];
    fails(
        &mut rec,
        &t.config,
        CompleteInOrder::new(key, &id, reversed),
        "InvalidPartOrder",
    )?;
    fails(
        &mut rec,
        &t.config,
        CompleteMultipartUpload::new(key, "no-such-upload-id", parts),
        "NoSuchUpload",
    )?;
    ok(&mut rec, &t.config, AbortMultipartUpload::new(key, &id))?;
    Ok(rec.fixture())
}

fn abort_multipart_upload(t: &Target) -> Result<Fixture, BoxError> {
    let key = "fixtures/multipart/aborted.bin";
    t.clean(&[key])?;
    let mut rec = t.recording(
        "Abort Multipart Upload: Initiate, one part, Abort (204), then Abort again (404 NoSuchUpload).",
    );
    let id = ok(&mut rec, &t.config, InitiateMultipartUpload::new(key))?.upload_id;
    ok(
        &mut rec,
        &t.config,
        UploadPart::new(key, &id, 1).with_bytes("part one"),
    )?;
    ok(&mut rec, &t.config, AbortMultipartUpload::new(key, &id))?;
    fails(
        &mut rec,
        &t.config,
        AbortMultipartUpload::new(key, &id),
        "NoSuchUpload",
    )?;
    Ok(rec.fixture())
}

fn list_multipart_uploads(t: &Target) -> Result<Fixture, BoxError> {
    t.clean(&[])?;
    let keys = [
        "fixtures/list/a.bin",
        "fixtures/list/b c+d.bin",
        "fixtures/other/c.bin",
    ];
    let mut rec = t.recording(
        "List Multipart Uploads: three uploads initiated (fixtures/list/a.bin, fixtures/list/b c+d.bin, \
         fixtures/other/c.bin); a list with prefix fixtures/list/ (two uploads); the same list one upload \
         per page (max-uploads=1, following next-key-marker and next-upload-id-marker until not truncated); \
         the list with encoding-type=url (keys percent-encoded by the server, decoded by the SDK); then \
         every upload aborted.",
    );
    let mut ids = Vec::new();
    for key in keys {
        ids.push(ok(&mut rec, &t.config, InitiateMultipartUpload::new(key))?.upload_id);
    }
    ok(
        &mut rec,
        &t.config,
        ListMultipartUploads::new().prefix("fixtures/list/"),
    )?;
    let mut page = ListMultipartUploads::new()
        .prefix("fixtures/list/")
        .max_uploads(1);
    loop {
        let out = ok(&mut rec, &t.config, page.clone())?;
        if !out.is_truncated {
            break;
        }
        page = ListMultipartUploads::new()
            .prefix("fixtures/list/")
            .max_uploads(1)
            .key_marker(out.next_key_marker.unwrap_or_default())
            .upload_id_marker(out.next_upload_id_marker.unwrap_or_default());
    }
    ok(
        &mut rec,
        &t.config,
        ListMultipartUploads::new()
            .prefix("fixtures/list/")
            .encoding_type_url(),
    )?;
    for (key, id) in keys.iter().zip(&ids) {
        ok(&mut rec, &t.config, AbortMultipartUpload::new(*key, id))?;
    }
    Ok(rec.fixture())
}

fn signature_mismatch(t: &Target) -> Result<Fixture, BoxError> {
    let mut config = t.config.clone();
    config.credentials = Credentials::new(config.credentials.secret_id(), "not-the-secret-key");
    config.retry = cos_core::retry::RetryPolicy::none();
    let docs = "A PUT signed with the wrong SecretKey (the fixture's secret_key): 403 SignatureDoesNotMatch, \
                whose error body carries the StringToSign the server computed. Not retried.";
    let clock = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut rec = t.recording_for(docs, &config, clock);
    let put = PutObject::new("fixtures/signature/denied.txt")
        .with_bytes("denied")
        .content_type("text/plain");
    fails(&mut rec, &config, put, "SignatureDoesNotMatch")?;
    Ok(rec.fixture())
}

/// The source of the multipart task: 2.5 MiB of `sample_bytes`, in 1 MiB parts.
const TASK_LEN: usize = (5 << 20) / 2;

fn multipart_upload_task(t: &Target) -> Result<Fixture, BoxError> {
    let key = "fixtures/multipart/task.bin";
    t.clean(&[key])?;
    let mut rec = t.recording(
        "cos_core::upload::MultipartUpload of sample_bytes(2621440) in 1 MiB parts (3 parts, up to 3 in \
         flight, so matched by key): Initiate, the parts, Complete with the combined CRC-64 checked.",
    );
    let upload = UploadConfig {
        part_size: Some(1 << 20),
        ..UploadConfig::default()
    };
    let task = MultipartUpload::new(t.config.clone(), key, TASK_LEN as u64, upload)?;
    rec.run(task, &sample_bytes(TASK_LEN))??;
    let mut f = rec.fixture();
    f.match_mode = MatchMode::ByKey;
    Ok(f)
}

fn retry_faults(t: &Target) -> Result<Fixture, BoxError> {
    let server = t
        .server
        .as_ref()
        .ok_or("the fault scenario needs the local server")?;
    let mut rec = t.recording(
        "Retries: a PUT answered 503 SlowDown, re-signed and sent again after the seeded backoff (200); a \
         second PUT answered 500 InternalError, then 200. Faults injected by the cos-testkit server.",
    );
    server.faults().fail_nth("PutObject", 1, Fault::SlowDown);
    ok(
        &mut rec,
        &t.config,
        PutObject::new("fixtures/retry/slow.txt")
            .with_bytes("slow down")
            .content_type("text/plain"),
    )?;
    server.faults().fail_nth("PutObject", 1, Fault::Status(500));
    ok(
        &mut rec,
        &t.config,
        PutObject::new("fixtures/retry/error.txt")
            .with_bytes("internal error")
            .content_type("text/plain"),
    )?;
    Ok(rec.fixture())
}

struct Args {
    out: PathBuf,
    only: Vec<String>,
    addr: String,
    bucket: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        out: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../cos-testkit/fixtures"
        )),
        only: Vec::new(),
        addr: "127.0.0.1:9000".into(),
        bucket: None,
        region: None,
        endpoint: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => args.out = PathBuf::from(value()?),
            "--only" => args.only.push(value()?),
            "--addr" => args.addr = value()?,
            "--bucket" => args.bucket = Some(value()?),
            "--region" => args.region = Some(value()?),
            "--endpoint" => args.endpoint = Some(value()?),
            "-h" | "--help" => {
                println!(
                    "record_fixtures [--out DIR] [--only NAME]... [--addr IP:PORT] \
                     [--bucket B --region R [--endpoint URL]]\nscenarios: {}",
                    SCENARIOS
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    Ok(args)
}

fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .accept("")
            .user_agent("")
            .build(),
    );
    let target = match (&args.bucket, &args.region) {
        (Some(bucket), Some(region)) => {
            let var = |name: &str| {
                std::env::var(name).map_err(|_| format!("set {name} to record against COS"))
            };
            let creds = Credentials::new(var("COS_SECRET_ID")?, var("COS_SECRET_KEY")?);
            let mut config = Config::new(bucket, region, creds)?;
            if let Some(e) = &args.endpoint {
                config = config.with_endpoint(Endpoint::custom(e).map_err(Error::from)?)?;
            }
            Target {
                config,
                server: None,
                agent,
                real: true,
            }
        }
        (None, None) if args.endpoint.is_none() => {
            let server = Server::builder()
                .addr(args.addr.parse()?)
                .start_blocking()
                .map_err(|e| {
                    format!(
                        "cannot start the local server on {} ({e}); try --addr",
                        args.addr
                    )
                })?;
            let config = Config::new(server.bucket(), "ap-guangzhou", server.credentials())?
                .with_endpoint(Endpoint::custom(&server.endpoint()).map_err(Error::from)?)?;
            Target {
                config,
                server: Some(server),
                agent,
                real: false,
            }
        }
        _ => {
            return Err(
                "real COS needs both --bucket and --region (and optionally --endpoint)".into(),
            )
        }
    };
    std::fs::create_dir_all(&args.out)?;
    for s in SCENARIOS {
        if !args.only.is_empty() && !args.only.iter().any(|n| n == s.name) {
            continue;
        }
        if s.local_only && target.real {
            println!(
                "skip   {} (needs the local server's fault injection)",
                s.name
            );
            continue;
        }
        let mut fixture = (s.run)(&target).map_err(|e| format!("scenario {}: {e}", s.name))?;
        if target.real {
            fixture.redact();
        }
        let path = args.out.join(format!("{}.json", s.name));
        if target.real {
            save_fixture(&path, &fixture)?;
        } else {
            // The local server's published test keys: the replays check these signatures exactly.
            save_fixture_with_test_credentials(&path, &fixture)?;
        }
        println!(
            "record {} ({} exchanges)",
            path.display(),
            fixture.exchanges.len()
        );
    }
    Ok(())
}
