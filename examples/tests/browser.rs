//! A real browser uploads through a form signed by the SDK, from the page's own origin to the COS endpoint
//! on another, as deployments do: headless Chromium (Debian's `/usr/bin/chromium`, driven by
//! playwright-core from npm) opens the page served by `cos_examples::form_page` and
//!
//! 1. picks a file and submits the form: a navigation, which browsers send cross-origin with no CORS rule
//!    (the server's request log shows the page's `Origin`); the server must then hold the file's bytes
//!    under the key the policy allowed;
//! 2. posts the same form with `fetch()` (what upload widgets do): without a CORS rule the browser hides
//!    COS's answer from the script ("Failed to fetch"); after the Rust SDK's `put_bucket_cors` allows the
//!    page's origin, the script follows COS's redirect and reads the result.
//!
//! Needs `chromium`, `node` and `npm` (playwright-core is installed into `target/tmp/playwright` on first
//! run, or taken from `COS_PLAYWRIGHT_DIR`). When one is missing the test fails under `CI=true` and is
//! skipped with a message otherwise.

mod support;

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cos_blocking::ops::CorsRule;
use cos_blocking::{Client, Config, Endpoint, PostPolicy};
use cos_examples::form_page::PageServer;
use cos_testkit::{RequestLog, Server};

const PLAYWRIGHT: &str = "playwright-core@1.65.1";

const SCRIPT: &str = r#"
const { chromium } = require('playwright-core');
(async () => {
  const [url, file, profile, executablePath, mode, fetchKey] = process.argv.slice(2);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath, headless: true, args: CHROMIUM_ARGS,
  });
  try {
    const page = await context.newPage();
    await page.goto(url);
    if (mode === 'submit') {
      await page.setInputFiles('form#upload input[type=file]', file);
      await Promise.all([
        page.waitForURL('**/done?**', { timeout: 60000 }),
        page.click('form#upload button[type=submit]'),
      ]);
      console.log(await page.textContent('#result'));
    } else {
      // The form's signed fields, posted by a script: the request a JavaScript upload widget sends.
      const result = await page.evaluate(async (key) => {
        const form = document.querySelector('form#upload');
        const fd = new FormData(form);
        fd.set('key', key);
        fd.set('file', new Blob(['posted by fetch() from the page\n'], { type: 'text/plain' }), 'fetch.txt');
        try {
          const r = await fetch(form.action, { method: 'POST', body: fd });
          return { status: r.status, text: await r.text() };
        } catch (e) {
          return { error: String(e) };
        }
      }, fetchKey);
      console.log('FETCH ' + JSON.stringify(result));
    }
  } catch (e) {
    console.error('browser step failed:', e);
    process.exitCode = 1;
  } finally {
    await context.close();
  }
})();
"#;

/// A writer the test reads back (the server's request log).
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// The logged requests of one operation.
    fn of(&self, operation: &str) -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["operation"] == operation)
            .collect()
    }
}

#[test]
fn headless_chromium_uploads_through_the_signed_form() {
    let (chromium, modules) =
        match support::browser_and_modules("playwright", "COS_PLAYWRIGHT_DIR", &[PLAYWRIGHT]) {
            Ok(x) => x,
            Err(what) => return support::missing("browser upload", &what),
        };

    let log = Lines::default();
    let server = Server::builder()
        .request_log(RequestLog::new(log.clone()))
        .start_blocking()
        .unwrap();
    let config = Config::new(server.bucket(), "ap-guangzhou", server.credentials())
        .unwrap()
        .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
        .unwrap();
    let client = Client::new(config);
    let signer = client.clone();
    let page = PageServer::start(move |base| {
        signer.sign_post_policy(
            &PostPolicy::new(SystemTime::now() + Duration::from_secs(600))
                .key_starts_with("browser/")
                .content_length_range(1, 10 << 20)
                .success_action_redirect(format!("{base}/done")),
        )
    })
    .unwrap();
    let page_origin = page.url().trim_end_matches('/').to_string();
    assert_ne!(
        page_origin,
        server.endpoint(),
        "the page has its own origin"
    );

    let work = support::work_dir("browser-test");
    let file = work.join("holiday photo.bin");
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &data).unwrap();
    let script = work.join("upload.js");
    std::fs::write(
        &script,
        SCRIPT.replace("CHROMIUM_ARGS", support::CHROMIUM_ARGS),
    )
    .unwrap();
    let run = |mode: &str, fetch_key: &str| {
        let profile = work.join(format!("profile-{mode}-{}", fetch_key.len()));
        std::fs::create_dir_all(&profile).unwrap();
        let mut node = Command::new("node");
        node.arg(&script)
            .arg(page.url())
            .arg(&file)
            .arg(&profile)
            .arg(&chromium)
            .arg(mode)
            .arg(fetch_key)
            .env("NODE_PATH", &modules);
        let (ok, out, err) = support::run_with_timeout(node, Duration::from_secs(120));
        assert!(
            ok,
            "the browser run ({mode}) failed\nstdout: {out}\nstderr: {err}"
        );
        out
    };

    // 1. The form, submitted: a cross-origin navigation, no CORS rule needed.
    let out = run("submit", "-");
    let up = page
        .wait_for_upload(Duration::from_secs(5))
        .expect("COS redirected the browser to /done");
    assert_eq!(up.key, "browser/holiday photo.bin");
    assert_eq!(up.bucket, server.bucket());
    let stored = server.object(&up.key).expect("the object is stored");
    assert_eq!(stored.etag, up.etag);
    assert!(
        stored.data.as_deref() == Some(&data[..]),
        "stored bytes differ"
    );
    assert!(out.contains("Uploaded browser/holiday photo.bin"), "{out}");
    assert_eq!(server.counters().get("PostObject"), 1);
    let posts = log.of("PostObject");
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0]["origin"],
        page_origin.as_str(),
        "sent from the page's origin"
    );
    assert_eq!(posts[0]["status"], 303);

    // 2. The same form posted by fetch(): COS's answer is hidden from the script without a CORS rule...
    let fetched = |out: &str| -> serde_json::Value {
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix("FETCH "))
            .unwrap_or_else(|| panic!("{out}"));
        serde_json::from_str(line).unwrap()
    };
    let refused = fetched(&run("fetch", "browser/fetch-refused.txt"));
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("Failed to fetch")),
        "{refused}"
    );
    assert!(page.wait_for_upload(Duration::from_millis(200)).is_none());

    // ... and readable once the Rust SDK allows the page's origin.
    client
        .put_bucket_cors(vec![CorsRule::new()
            .allowed_origin(&page_origin)
            .allowed_method("POST")
            .allowed_header("*")
            .expose_header("ETag")])
        .unwrap();
    let allowed = fetched(&run("fetch", "browser/fetch.txt"));
    assert_eq!(allowed["status"], 200, "{allowed}");
    assert!(
        allowed["text"]
            .as_str()
            .unwrap()
            .contains("Uploaded browser/fetch.txt"),
        "{allowed}"
    );
    let up = page
        .wait_for_upload(Duration::from_secs(5))
        .expect("the script followed COS's redirect to /done");
    assert_eq!(up.key, "browser/fetch.txt");
    assert_eq!(
        server.object("browser/fetch.txt").unwrap().data.as_deref(),
        Some(&b"posted by fetch() from the page\n"[..])
    );
    let posts = log.of("PostObject");
    assert_eq!(posts.len(), 3);
    assert!(posts.iter().all(|p| p["origin"] == page_origin.as_str()));
    let _ = std::fs::remove_dir_all(&work);
}
