//! A browser uploads straight to COS with a form signed by the SDK (POST Object).
//!
//! ```text
//! cargo run -p cos-examples --example post_form            # starts a local cos-testkit server
//! cargo run -p cos-examples --example post_form -- --endpoint http://127.0.0.1:9000 \
//!     --bucket examplebucket-1250000000 --secret-id ID --secret-key KEY [--once]
//! ```
//!
//! It serves an upload page on 127.0.0.1 and prints its URL: open it, pick a file, press Upload. The form
//! posts the file to the COS endpoint, which redirects back to the page server's `/done`. The secret key
//! stays in this process; the page holds only a policy signature valid for ten minutes, for keys under
//! `browser/` of at most 10 MiB. With `--once` the program exits after the first upload.

use std::time::{Duration, SystemTime};

use cos_blocking::{Client, Config, Credentials, Endpoint, PostPolicy};
use cos_examples::form_page::PageServer;
use cos_testkit::Server;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|a| a == "--once");
    // A local server unless an endpoint is given.
    let mut local = None;
    let (endpoint, bucket, credentials) = match arg(&args, "--endpoint") {
        Some(endpoint) => (
            endpoint,
            arg(&args, "--bucket").ok_or("--bucket is required with --endpoint")?,
            Credentials::new(
                arg(&args, "--secret-id").ok_or("--secret-id is required with --endpoint")?,
                arg(&args, "--secret-key").ok_or("--secret-key is required with --endpoint")?,
            ),
        ),
        None => {
            let server = Server::builder().start_blocking()?;
            let c = (
                server.endpoint(),
                server.bucket().to_string(),
                server.credentials(),
            );
            println!("local cos-testkit server at {}", server.endpoint());
            local = Some(server);
            c
        }
    };
    let config = Config::new(&bucket, "ap-guangzhou", credentials)?
        .with_endpoint(Endpoint::custom(&endpoint).map_err(cos_blocking::Error::from)?)?;
    let client = Client::new(config);
    let page = PageServer::start(move |base| {
        client.sign_post_policy(
            &PostPolicy::new(SystemTime::now() + Duration::from_secs(600))
                .key_starts_with("browser/")
                .content_length_range(1, 10 << 20)
                .success_action_redirect(format!("{base}/done")),
        )
    })?;
    println!("upload page: {}", page.url());
    loop {
        if let Some(up) = page.wait_for_upload(Duration::from_secs(3600)) {
            println!("uploaded {} ({})", up.key, up.etag);
            if let Some(server) = &local {
                if let Some(obj) = server.object(&up.key) {
                    println!("  stored: {} bytes, {}", obj.size, obj.content_type);
                }
            }
            if once {
                return Ok(());
            }
        }
    }
}
