//! A browser upload page: an HTML form whose fields come from a signed [`PostForm`], served by a tiny HTTP
//! server on 127.0.0.1 (std only, one thread, `Connection: close`).
//!
//! - `GET /` signs a fresh form (through the closure given to [`PageServer::start`], which gets the page
//!   server's base URL to put in `success_action_redirect`) and renders it with [`render_form`]: the
//!   fields as hidden inputs in order, `action` = the COS endpoint, the file input last.
//! - `GET /done?bucket=…&key=…&etag=…` is where COS redirects after a successful upload; it is recorded
//!   ([`PageServer::wait_for_upload`]) and shown.
//!
//! The page itself never sees the secret key: only the signature of the policy.
//!
//! ```no_run
//! use std::time::{Duration, SystemTime};
//! use cos_blocking::{Client, Config, Credentials, PostPolicy};
//! use cos_examples::form_page::PageServer;
//! let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
//! let client = Client::new(config);
//! let page = PageServer::start(move |base| {
//!     client.sign_post_policy(
//!         &PostPolicy::new(SystemTime::now() + Duration::from_secs(600))
//!             .key_starts_with("browser/")
//!             .success_action_redirect(format!("{base}/done")),
//!     )
//! })?;
//! println!("open {}", page.url());
//! let done = page.wait_for_upload(Duration::from_secs(300));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cos_core::post_policy::PostForm;
use cos_core::Error;

/// Escapes text for an HTML attribute or element.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The upload page for `form`: a `multipart/form-data` form posting to the form's URL, its fields as hidden
/// inputs in order, a text input for each field the uploader must fill (`starts_with`, pre-filled with the
/// prefix), the file input (`name="file"`) last, and a submit button.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use cos_core::{post_policy::PostPolicy, Config, Credentials};
/// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
/// let form = PostPolicy::new(SystemTime::now() + Duration::from_secs(60)).key("a.txt").sign(&config, SystemTime::now())?;
/// let html = cos_examples::form_page::render_form(&form);
/// assert!(html.contains(r#"<input type="hidden" name="key" value="a.txt">"#));
/// assert!(html.find(r#"name="policy""#) < html.find(r#"type="file""#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render_form(form: &PostForm) -> String {
    let mut inputs = String::new();
    for (name, value) in form.fields() {
        inputs.push_str(&format!(
            "    <input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
            html_escape(name),
            html_escape(value)
        ));
    }
    for (name, prefix) in form.starts_with() {
        if form.field(name).is_none() {
            inputs.push_str(&format!(
                "    <label>{0} <input type=\"text\" name=\"{0}\" value=\"{1}\"></label>\n",
                html_escape(name),
                html_escape(prefix)
            ));
        }
    }
    format!(
        concat!(
            "<!doctype html>\n",
            "<html><head><meta charset=\"utf-8\"><title>cos-rs browser upload</title></head>\n",
            "<body>\n  <h1>Upload to COS</h1>\n  <p>Policy expires {expires}.</p>\n",
            "  <form id=\"upload\" action=\"{action}\" method=\"post\" enctype=\"multipart/form-data\">\n",
            "{inputs}",
            "    <input type=\"file\" name=\"file\">\n",
            "    <button type=\"submit\">Upload</button>\n  </form>\n</body></html>\n",
        ),
        inputs = inputs,
        expires = html_escape(form.expiration()),
        action = html_escape(form.url()),
    )
}

/// Where COS redirected the browser after an upload (`GET /done?bucket=…&key=…&etag=…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The ETag, quoted.
    pub etag: String,
}

type Signer = dyn Fn(&str) -> Result<PostForm, Error> + Send + Sync;

/// The page server. Stops when dropped.
pub struct PageServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    uploads: Mutex<mpsc::Receiver<Uploaded>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for PageServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl PageServer {
    /// Listens on `127.0.0.1` (a free port); `sign(base_url)` is called for every page view to sign a
    /// fresh form (`base_url` is `http://127.0.0.1:PORT`, for a `success_action_redirect` to
    /// `{base_url}/done`).
    pub fn start(
        sign: impl Fn(&str) -> Result<PostForm, Error> + Send + Sync + 'static,
    ) -> io::Result<PageServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let sign: Box<Signer> = Box::new(sign);
        let flag = stop.clone();
        let base = format!("http://{addr}");
        let thread = std::thread::Builder::new()
            .name("form-page".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        if let Err(e) = serve(conn, &base, &*sign, &tx) {
                            eprintln!("form page: {e}");
                        }
                    }
                }
            })?;
        Ok(PageServer {
            addr,
            stop,
            uploads: Mutex::new(rx),
            thread: Some(thread),
        })
    }

    /// The page's URL, `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Waits for the next upload redirected to `/done`, at most `timeout`.
    pub fn wait_for_upload(&self, timeout: Duration) -> Option<Uploaded> {
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv_timeout(timeout)
            .ok()
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(mut conn: TcpStream, status: &str, content_type: &str, body: &str) -> io::Result<()> {
    // Any origin may read the pages: a script that posts the form follows COS's redirect to `/done`
    // with `Origin: null`.
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

fn serve(
    conn: TcpStream,
    base: &str,
    sign: &Signer,
    tx: &mpsc::Sender<Uploaded>,
) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    // Skip the headers.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match (method, path) {
        ("GET", "/") => match sign(base) {
            Ok(form) => respond(
                conn,
                "200 OK",
                "text/html; charset=utf-8",
                &render_form(&form),
            ),
            Err(e) => respond(
                conn,
                "500 Internal Server Error",
                "text/plain; charset=utf-8",
                &format!("cannot sign the form: {e}\n"),
            ),
        },
        ("GET", "/done") => {
            let pairs = cos_core::auth::parse_query(query).unwrap_or_default();
            let get = |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let up = Uploaded {
                bucket: get("bucket"),
                key: get("key"),
                etag: get("etag"),
            };
            let page = format!(
                "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Uploaded</title></head><body>\
                 <p id=\"result\">Uploaded {} to {} (ETag {})</p><p><a href=\"/\">Another</a></p></body></html>\n",
                html_escape(&up.key),
                html_escape(&up.bucket),
                html_escape(&up.etag)
            );
            let _ = tx.send(up);
            respond(conn, "200 OK", "text/html; charset=utf-8", &page)
        }
        _ => respond(conn, "404 Not Found", "text/plain", "not found\n"),
    }
}
