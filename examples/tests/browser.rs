//! A real browser uploads through a form signed by the SDK: headless Chromium (Debian's `/usr/bin/chromium`,
//! driven by playwright-core from npm) opens the page served by `cos_examples::form_page`, picks a file and
//! submits; the cos-testkit server must then hold the file's bytes under the key the policy allowed.
//!
//! Needs `chromium`, `node` and `npm` (playwright-core is installed into `target/tmp/playwright` on first
//! run, or taken from `COS_PLAYWRIGHT_DIR`). When one is missing the test fails under `CI=true` and is
//! skipped with a message otherwise.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use cos_blocking::{Client, Config, Endpoint, PostPolicy};
use cos_examples::form_page::PageServer;
use cos_testkit::Server;

const PLAYWRIGHT: &str = "playwright-core@1.65.1";

const SCRIPT: &str = r#"
const { chromium } = require('playwright-core');
(async () => {
  const [url, file, profile, executablePath] = process.argv.slice(2);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.setInputFiles('form#upload input[type=file]', file);
    await Promise.all([
      page.waitForURL('**/done?**', { timeout: 60000 }),
      page.click('form#upload button[type=submit]'),
    ]);
    console.log(await page.textContent('#result'));
  } catch (e) {
    console.error('browser step failed:', e);
    process.exitCode = 1;
  } finally {
    await context.close();
  }
})();
"#;

#[test]
fn headless_chromium_uploads_through_the_signed_form() {
    let (chromium, modules) =
        match support::browser_and_modules("playwright", "COS_PLAYWRIGHT_DIR", &[PLAYWRIGHT]) {
            Ok(x) => x,
            Err(what) => return support::missing("browser upload", &what),
        };

    let server = Server::builder().start_blocking().unwrap();
    let config = Config::new(server.bucket(), "ap-guangzhou", server.credentials())
        .unwrap()
        .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
        .unwrap();
    let client = Client::new(config);
    let page = PageServer::start(move |base| {
        client.sign_post_policy(
            &PostPolicy::new(SystemTime::now() + Duration::from_secs(600))
                .key_starts_with("browser/")
                .content_length_range(1, 10 << 20)
                .success_action_redirect(format!("{base}/done")),
        )
    })
    .unwrap();

    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "browser-test-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(work.join("profile")).unwrap();
    let file = work.join("holiday photo.bin");
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &data).unwrap();
    let script = work.join("upload.js");
    std::fs::write(&script, SCRIPT).unwrap();

    let mut node = Command::new("node");
    node.arg(&script)
        .arg(page.url())
        .arg(&file)
        .arg(work.join("profile"))
        .arg(&chromium)
        .env("NODE_PATH", &modules);
    let (ok, out, err) = support::run_with_timeout(node, Duration::from_secs(120));
    assert!(ok, "the browser run failed\nstdout: {out}\nstderr: {err}");

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
    let _ = std::fs::remove_dir_all(&work);
}
