//! The library's `upload_file` guesses `Content-Type` from the extension by default (cos-core's table, which
//! agrees with `mime_guess`), keeps an explicit one, and sends none when guessing is off; both transports.

use cos_core::upload::{UploadOptions, EXTENSION_TYPES};
use cos_core::{Config, Credentials, Endpoint};
use cos_testkit::Server;

#[test]
fn core_table_agrees_with_mime_guess() {
    for (ext, t) in EXTENSION_TYPES {
        assert_eq!(mime_guess::from_ext(ext).first_raw(), Some(*t), ".{ext}");
    }
}

fn config(server: &Server) -> Config {
    Config::new(
        server.bucket(),
        "ap-guangzhou",
        Credentials::new(server.secret_id(), server.secret_key()),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
    .unwrap()
}

#[test]
fn upload_file_guesses_by_default_both_transports() {
    let server = Server::builder().start_blocking().unwrap();
    let dir = std::env::temp_dir().join(format!("cos-rs-ctype-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("Photo.JPG");
    std::fs::write(&file, b"not really a jpeg").unwrap();
    let explicit = UploadOptions {
        object: cos_core::ops::ObjectOptions {
            content_type: Some("image/x-custom".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let off = UploadOptions::default().guess_content_type(false);

    let blocking = cos_blocking::Client::new(config(&server));
    blocking
        .upload_file(&file, "b/guessed", &UploadOptions::default())
        .unwrap();
    blocking
        .upload_file(&file, "b/explicit", &explicit)
        .unwrap();
    blocking.upload_file(&file, "b/off", &off).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = cos_async::Client::new(config(&server));
        client
            .upload_file(&file, "a/guessed", &UploadOptions::default())
            .await
            .unwrap();
        client
            .upload_file(&file, "a/explicit", &explicit)
            .await
            .unwrap();
        client.upload_file(&file, "a/off", &off).await.unwrap();
    });
    for t in ["a", "b"] {
        let ct = |k: &str| server.object(&format!("{t}/{k}")).unwrap().content_type;
        assert_eq!(ct("guessed"), "image/jpeg", "{t}");
        assert_eq!(ct("explicit"), "image/x-custom", "{t}");
        assert_ne!(ct("off"), "image/jpeg", "{t}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
