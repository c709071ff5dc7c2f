//! Tencent's own browser SDK against the local server: the pinned `cos-js-sdk-v5` from npm, loaded in
//! Debian's headless Chromium (driven by playwright-core) from a page served on another origin than the
//! cos-testkit server. With no CORS rule the page is refused, as an unconfigured bucket refuses it; after
//! the Rust SDK's `put_bucket_cors` allows the page's origin, every upload flow of the browser SDK passes
//! and every object reads back byte-exact, in the browser (getObject) and on the server.
//!
//! Needs `chromium`, `node` and `npm` (the packages are installed into `target/tmp/browser-sdk` on first
//! run, or taken from `COS_BROWSER_SDK_DIR`). When one is missing the test fails under `CI=true` and is
//! skipped with a message otherwise.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cos_blocking::ops::CorsRule;
use cos_blocking::{Client, Config, Endpoint};
use cos_testkit::{Server, DEV_EXPOSE_HEADERS};

const SDK: &str = "cos-js-sdk-v5@1.10.1";
const PLAYWRIGHT: &str = "playwright-core@1.65.1";

const DRIVER: &str = r#"
const { chromium } = require('playwright-core');
(async () => {
  const [url, mode, profile, executablePath] = process.argv.slice(2);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath, headless: true, args: CHROMIUM_ARGS,
  });
  try {
    const page = await context.newPage();
    page.on('console', (m) => console.error('[page ' + m.type() + ']', m.text()));
    page.on('pageerror', (e) => console.error('[page error]', e));
    await page.goto(url);
    await page.waitForFunction(() => window.cosTest !== undefined, null, { timeout: 30000 });
    const result = await page.evaluate((m) => window.cosTest[m](), mode);
    console.log('RESULT ' + JSON.stringify(result));
  } catch (e) {
    console.error('browser step failed:', e);
    process.exitCode = 1;
  } finally {
    await context.close();
  }
})();
"#;

/// The page's script: every flow of the issue, one after the other, each read back and compared.
const PAGE_SCRIPT: &str = r#"
const P = window.COS_PARAMS;
const MiB = 1024 * 1024;
const cos = new COS({
  SecretId: P.secretId, SecretKey: P.secretKey,
  Domain: P.domain, Protocol: 'http:',
  ChunkSize: MiB, SliceSize: MiB, ChunkParallelLimit: 3, FileParallelLimit: 3, ProgressInterval: 10,
});
function pattern(len, seed) {
  const a = new Uint8Array(len);
  for (let i = 0; i < len; i++) a[i] = (Math.imul(i + seed, 2654435761) >>> 13) & 255;
  return a;
}
const call = (name, params) => new Promise((resolve, reject) =>
  cos[name](Object.assign({ Bucket: P.bucket, Region: P.region }, params), (err, data) =>
    err ? reject(new Error(name + ': ' + JSON.stringify(err))) : resolve(data)));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function check(cond, what) { if (!cond) throw new Error('check failed: ' + what); }
const objects = [];
async function readBack(key, expected, record) {
  const data = await call('getObject', { Key: key, DataType: 'arraybuffer' });
  const got = new Uint8Array(data.Body);
  check(got.length === expected.length, key + ': read ' + got.length + ' bytes, wrote ' + expected.length);
  for (let i = 0; i < got.length; i++) check(got[i] === expected[i], key + ': byte ' + i + ' differs');
  objects.push(Object.assign({ key }, record));
}
const text = (s) => new TextEncoder().encode(s);
const concat = (a, b) => { const c = new Uint8Array(a.length + b.length); c.set(a); c.set(b, a.length); return c; };
const taskState = (id) => (cos.getTaskList().find((t) => t.id === id) || {}).state;

const flows = [
  ['putObject string', async () => {
    const s = 'hello from cos-js-sdk-v5 \u2713\n';
    await call('putObject', { Key: 'sdk/string.txt', Body: s });
    await readBack('sdk/string.txt', text(s), { text: s });
  }],
  ['putObject Blob with Content-Type and x-cos-meta-*', async () => {
    const bytes = pattern(200000, 1);
    const d = await call('putObject', {
      Key: 'sdk/blob.bin', Body: new Blob([bytes]), ContentType: 'application/x-cos-test',
      Headers: { 'x-cos-meta-author': 'jane', 'x-cos-meta-purpose': 'browser-test' },
    });
    check(/^"[0-9a-f]{32}"$/.test(d.ETag), 'ETag exposed: ' + d.ETag);
    await readBack('sdk/blob.bin', bytes, { seed: 1, size: bytes.length });
  }],
  ['appendObject twice', async () => {
    const a = 'first line\n', b = 'second line, appended\n';
    const d1 = await call('appendObject', { Key: 'sdk/append.log', Position: 0, Body: a });
    const next = Number(d1.headers['x-cos-next-append-position']);
    check(next === text(a).length, 'x-cos-next-append-position ' + next);
    await call('appendObject', { Key: 'sdk/append.log', Position: next, Body: b });
    await readBack('sdk/append.log', text(a + b), { text: a + b });
  }],
  ['sliceUploadFile with progress to 100%', async () => {
    const bytes = pattern(5 * MiB + 12345, 3);
    const seen = [];
    await call('sliceUploadFile', {
      Key: 'sdk/slice.bin', Body: new Blob([bytes]), ChunkSize: MiB,
      onProgress: (p) => seen.push([p.loaded, p.percent]),
    });
    const last = seen[seen.length - 1];
    check(seen.length > 1 && last[1] === 1 && last[0] === bytes.length, 'progress ' + JSON.stringify(last));
    await readBack('sdk/slice.bin', bytes, { seed: 3, size: bytes.length, progress_events: seen.length });
  }],
  ['uploadFile below and above SliceSize', async () => {
    const small = pattern(300000, 4), large = pattern(3 * MiB + 7, 5);
    await call('uploadFile', { Key: 'sdk/small.bin', Body: new Blob([small]), SliceSize: MiB });
    await call('uploadFile', { Key: 'sdk/large.bin', Body: new Blob([large]), SliceSize: MiB });
    await readBack('sdk/small.bin', small, { seed: 4, size: small.length });
    await readBack('sdk/large.bin', large, { seed: 5, size: large.length });
  }],
  ['multipartInit / multipartUpload / multipartListPart / multipartComplete', async () => {
    const bytes = pattern(MiB + 1000, 6);
    const key = 'sdk/parts.bin';
    const init = await call('multipartInit', { Key: key });
    const UploadId = init.UploadId;
    check(UploadId, 'UploadId');
    const p1 = await call('multipartUpload', { Key: key, UploadId, PartNumber: 1, Body: new Blob([bytes.slice(0, MiB)]) });
    const p2 = await call('multipartUpload', { Key: key, UploadId, PartNumber: 2, Body: new Blob([bytes.slice(MiB)]) });
    const list = await call('multipartListPart', { Key: key, UploadId });
    const parts = [].concat(list.Part || []);
    check(parts.length === 2 && String(parts[1].PartNumber) === '2' && parts[1].Size === '1000',
      'listed parts ' + JSON.stringify(parts));
    check(parts[0].ETag === p1.ETag && parts[1].ETag === p2.ETag, 'part ETags');
    await call('multipartComplete', { Key: key, UploadId, Parts: [
      { PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] });
    await readBack(key, bytes, { seed: 6, size: bytes.length });
  }],
  ['multipartList and multipartAbort', async () => {
    const key = 'sdk/aborted.bin';
    const { UploadId } = await call('multipartInit', { Key: key });
    const ids = async () => [].concat((await call('multipartList', { Prefix: 'sdk/aborted' })).Upload || [])
      .map((u) => u.UploadId);
    check((await ids()).includes(UploadId), 'multipartList lists the new upload');
    await call('multipartAbort', { Key: key, UploadId });
    check(!(await ids()).includes(UploadId), 'multipartList after multipartAbort');
  }],
  ['uploadFiles', async () => {
    const files = [
      ['sdk/files/a.bin', pattern(100000, 10)],
      ['sdk/files/b.bin', pattern(2 * MiB + 1, 11)],
      ['sdk/files/c.bin', pattern(1, 12)],
    ];
    let finished = 0;
    const d = await call('uploadFiles', {
      files: files.map(([Key, b]) => ({ Bucket: P.bucket, Region: P.region, Key, Body: new Blob([b]) })),
      SliceSize: MiB, onFileFinish: (err) => { if (!err) finished++; },
    });
    check(d.files.length === 3 && d.files.every((f) => !f.error), 'uploadFiles: ' + JSON.stringify(d.files.map((f) => f.error)));
    check(finished === 3, 'onFileFinish ' + finished);
    for (const [key, b] of files) await readBack(key, b, { seed: [10, 11, 12][files.findIndex((f) => f[0] === key)], size: b.length });
  }],
  ['pauseTask then restartTask', async () => {
    const bytes = pattern(10 * MiB + 3, 20);
    const key = 'sdk/paused.bin';
    let id, pausedAt = null, stateWhilePaused = null;
    const done = new Promise((resolve, reject) => cos.sliceUploadFile({
      Bucket: P.bucket, Region: P.region, Key: key, Body: new Blob([bytes]), ChunkSize: MiB, AsyncLimit: 1,
      onTaskReady: (t) => { id = t; },
      onProgress: (p) => {
        if (pausedAt === null && p.loaded > 0 && p.percent < 1) {
          pausedAt = p.percent;
          cos.pauseTask(id);
          setTimeout(() => { stateWhilePaused = taskState(id); cos.restartTask(id); }, 500);
        }
      },
    }, (err, data) => err ? reject(new Error(JSON.stringify(err))) : resolve(data)));
    await done;
    check(pausedAt !== null && pausedAt < 1, 'paused part-way: ' + pausedAt);
    check(stateWhilePaused === 'paused', 'state while paused: ' + stateWhilePaused);
    check(taskState(id) === 'success', 'state after restart: ' + taskState(id));
    await readBack(key, bytes, { seed: 20, size: bytes.length, paused_at: pausedAt });
  }],
  ['cancelTask', async () => {
    const key = 'sdk/canceled.bin';
    let id, canceled = false, called = false;
    cos.sliceUploadFile({
      Bucket: P.bucket, Region: P.region, Key: key, Body: new Blob([pattern(6 * MiB, 21)]), ChunkSize: MiB,
      AsyncLimit: 1,
      onTaskReady: (t) => { id = t; },
      onProgress: (p) => { if (!canceled && p.loaded > 0) { canceled = true; cos.cancelTask(id); } },
    }, () => { called = true; });
    for (let i = 0; i < 100 && !canceled; i++) await sleep(50);
    await sleep(1000);
    check(canceled && taskState(id) === 'canceled', 'task canceled: ' + taskState(id));
    check(!called, 'a canceled task does not call back');
    let missing = false;
    try { await call('headObject', { Key: key }); } catch (e) { missing = /404/.test(e.message); }
    check(missing, 'no object after cancelTask');
    // The SDK leaves the multipart upload it started (as with COS); abort it as the guide does.
    const ups = [].concat((await call('multipartList', { Prefix: key })).Upload || []);
    for (const u of ups) await call('multipartAbort', { Key: key, UploadId: u.UploadId });
    objects.push({ key, absent: true, aborted_uploads: ups.length });
  }],
];

window.cosTest = {
  async refused() {
    try {
      await call('putObject', { Key: 'sdk/refused.txt', Body: 'should not arrive' });
      return { refused: false };
    } catch (e) {
      return { refused: true, error: String(e.message) };
    }
  },
  async flows() {
    const passed = [];
    for (const [name, run] of flows) {
      try { await run(); } catch (e) {
        return { ok: false, passed, failed: name, error: String(e && e.stack || e), objects };
      }
      passed.push(name);
    }
    return { ok: true, passed, objects };
  },
};
"#;

/// The bytes the page's `pattern(len, seed)` makes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A static page server on its own origin: `/` (the test page) and `/cos-js-sdk-v5.min.js`.
struct PageServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl PageServer {
    fn start(html: String, sdk: PathBuf) -> PageServer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let _ = serve_page(conn, &html, &sdk);
                }
            }
        });
        PageServer { addr, stop }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve_page(mut conn: TcpStream, html: &str, sdk: &Path) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, ctype, body) = match path {
        "/" => (
            "200 OK",
            "text/html; charset=utf-8",
            html.as_bytes().to_vec(),
        ),
        "/cos-js-sdk-v5.min.js" => ("200 OK", "text/javascript", std::fs::read(sdk)?),
        _ => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    conn.write_all(&body)?;
    conn.flush()
}

/// Runs the page in Chromium in `mode` (`refused` or `flows`) and returns its JSON result.
fn run_page(
    chromium: &str,
    modules: &Path,
    work: &Path,
    url: &str,
    mode: &str,
) -> serde_json::Value {
    let script = work.join("driver.js");
    std::fs::write(
        &script,
        DRIVER.replace("CHROMIUM_ARGS", support::CHROMIUM_ARGS),
    )
    .unwrap();
    let profile = work.join(format!("profile-{mode}"));
    std::fs::create_dir_all(&profile).unwrap();
    let mut node = Command::new("node");
    node.arg(&script)
        .arg(url)
        .arg(mode)
        .arg(&profile)
        .arg(chromium)
        .env("NODE_PATH", modules);
    let (ok, out, err) = support::run_with_timeout(node, Duration::from_secs(300));
    let result = out
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!("the browser run ({mode}) gave no result\nstdout: {out}\nstderr: {err}")
        });
    assert!(
        ok,
        "the browser run ({mode}) failed\nstdout: {out}\nstderr: {err}"
    );
    serde_json::from_str(result).unwrap()
}

#[test]
fn tencent_browser_sdk_uploads_cross_origin_once_cors_allows_it() {
    let (chromium, modules) = match support::browser_and_modules(
        "browser-sdk",
        "COS_BROWSER_SDK_DIR",
        &[SDK, PLAYWRIGHT],
    ) {
        Ok(x) => x,
        Err(what) => return support::missing("browser SDK", &what),
    };
    let server = Server::builder().start_blocking().unwrap();
    let params = serde_json::json!({
        "domain": server.addr().to_string(),
        "bucket": server.bucket(),
        "region": "ap-guangzhou",
        "secretId": server.secret_id(),
        "secretKey": server.secret_key(),
    });
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>cos-js-sdk-v5 against cos-testkit</title>\n\
         <script src=\"/cos-js-sdk-v5.min.js\"></script>\n<script>window.COS_PARAMS = {params};</script>\n\
         <script>{PAGE_SCRIPT}</script></head><body><p>cos-js-sdk-v5 test page</p></body></html>\n"
    );
    let page = PageServer::start(
        html,
        modules.join("cos-js-sdk-v5/dist/cos-js-sdk-v5.min.js"),
    );
    assert_ne!(
        page.origin(),
        server.endpoint(),
        "the page is on another origin"
    );
    let url = format!("{}/", page.origin());
    let work = support::work_dir("browser-sdk");

    // 1. No CORS rule: the browser's preflight is refused and nothing arrives.
    let refused = run_page(&chromium, &modules, &work, &url, "refused");
    assert_eq!(refused["refused"], true, "{refused}");
    eprintln!("without a CORS rule the page got: {}", refused["error"]);
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("CORS blocked or network error")),
        "{refused}"
    );
    let counters = server.counters();
    assert!(counters.get("OptionsObject") >= 1, "{counters:?}");
    assert_eq!(counters.get("PutObject"), 0, "{counters:?}");
    assert!(server.keys().is_empty());

    // 2. The Rust SDK allows the page's origin, exactly.
    let config = Config::new(server.bucket(), "ap-guangzhou", server.credentials())
        .unwrap()
        .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
        .unwrap();
    let client = Client::new(config);
    let mut rule = CorsRule::new()
        .id("test-page")
        .allowed_origin(page.origin())
        .allowed_methods(["GET", "PUT", "POST", "DELETE", "HEAD"])
        .allowed_header("*")
        .max_age_seconds(60);
    for h in DEV_EXPOSE_HEADERS {
        rule = rule.expose_header(*h);
    }
    client.put_bucket_cors(vec![rule]).unwrap();

    // 3. The same page: every flow passes.
    let result = run_page(&chromium, &modules, &work, &url, "flows");
    assert_eq!(result["ok"], true, "{result:#}");
    let passed: Vec<&str> = result["passed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    eprintln!("browser flows passed: {passed:#?}");
    assert_eq!(
        passed,
        [
            "putObject string",
            "putObject Blob with Content-Type and x-cos-meta-*",
            "appendObject twice",
            "sliceUploadFile with progress to 100%",
            "uploadFile below and above SliceSize",
            "multipartInit / multipartUpload / multipartListPart / multipartComplete",
            "multipartList and multipartAbort",
            "uploadFiles",
            "pauseTask then restartTask",
            "cancelTask",
        ]
    );

    // Every object the page wrote, on the server, byte for byte.
    let objects = result["objects"].as_array().unwrap();
    let mut checked = 0;
    for o in objects {
        let key = o["key"].as_str().unwrap();
        if o["absent"] == true {
            assert!(
                server.object(key).is_none(),
                "{key} exists after cancelTask"
            );
            continue;
        }
        let want = match (o["text"].as_str(), o["seed"].as_u64()) {
            (Some(t), _) => t.as_bytes().to_vec(),
            (None, Some(seed)) => pattern(o["size"].as_u64().unwrap() as usize, seed as u32),
            _ => panic!("{o}"),
        };
        let stored = server
            .object(key)
            .unwrap_or_else(|| panic!("{key} is stored"));
        assert!(
            stored.data.as_deref() == Some(&want[..]),
            "{key}: stored bytes differ"
        );
        checked += 1;
    }
    assert_eq!(checked, 11, "{objects:?}");
    let blob = server.object("sdk/blob.bin").unwrap();
    assert_eq!(blob.content_type, "application/x-cos-test");
    assert_eq!(
        blob.metadata.get("author").map(String::as_str),
        Some("jane")
    );
    assert_eq!(
        blob.metadata.get("purpose").map(String::as_str),
        Some("browser-test")
    );
    assert!(!server.object("sdk/small.bin").unwrap().etag.contains('-'));
    assert!(server
        .object("sdk/large.bin")
        .unwrap()
        .etag
        .ends_with("-4\""));
    assert!(server
        .object("sdk/slice.bin")
        .unwrap()
        .etag
        .ends_with("-6\""));
    assert_eq!(
        server.object("sdk/append.log").unwrap().object_type,
        cos_testkit::ObjectType::Appendable
    );
    assert!(server.object("sdk/refused.txt").is_none());
    assert_eq!(server.multipart_uploads(), vec![], "no upload left behind");
    let counters = server.counters();
    eprintln!("server requests: {counters:?}");
    assert!(counters.get("OptionsObject") > 1);
    let _ = std::fs::remove_dir_all(&work);
}
