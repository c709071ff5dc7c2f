//! Bucket CORS through both clients over real TCP against the cos-testkit server: put, get, delete, the
//! answer of a bucket without rules, and bad rules refused before anything is sent.

use cos_blocking::ops::{CorsConfiguration, CorsRule};
use cos_blocking::{Config, Endpoint, Error, InvalidInput};
use cos_testkit::Server;

fn config(server: &Server) -> Config {
    Config::new(server.bucket(), "ap-guangzhou", server.credentials())
        .unwrap()
        .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
        .unwrap()
}

fn rules() -> Vec<CorsRule> {
    vec![
        CorsRule::new()
            .id("app")
            .allowed_origin("http://localhost:*")
            .allowed_methods(["GET", "PUT", "POST", "HEAD", "DELETE"])
            .allowed_header("*")
            .expose_header("ETag")
            .expose_header("x-cos-request-id")
            .max_age_seconds(600),
        CorsRule::new().allowed_origin("*").allowed_method("HEAD"),
    ]
}

fn bad_rules() -> Vec<CorsRule> {
    vec![CorsRule::new().allowed_origin("*").allowed_method("PATCH")]
}

fn assert_invalid(e: Error) {
    assert!(
        matches!(&e, Error::InvalidInput(InvalidInput::Parameter { name: "cors", reason }) if reason.contains("PATCH")),
        "{e:?}"
    );
}

#[test]
fn blocking_client_sets_reads_and_deletes_cors() {
    let server = Server::builder().start_blocking().unwrap();
    let client = cos_blocking::Client::new(config(&server));
    let e = client.get_bucket_cors().unwrap_err();
    assert_eq!(e.code(), Some("NoSuchCORSConfiguration"));
    assert_eq!(e.status(), Some(404));

    assert_invalid(client.put_bucket_cors(bad_rules()).unwrap_err());
    assert_eq!(
        server.counters().get("PutBucketCors"),
        0,
        "nothing was sent"
    );

    let out = client.put_bucket_cors(rules()).unwrap();
    assert!(out.request_id.is_some());
    assert_eq!(server.cors(), Some(CorsConfiguration::new(rules())));
    let got = client.get_bucket_cors().unwrap();
    assert_eq!(got.configuration.rules, rules());
    client.delete_bucket_cors().unwrap();
    assert_eq!(server.cors(), None);
    assert_eq!(
        client.get_bucket_cors().unwrap_err().code(),
        Some("NoSuchCORSConfiguration")
    );
}

#[test]
fn async_client_sets_reads_and_deletes_cors() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = Server::builder().start().await.unwrap();
        let client = cos_async::Client::new(config(&server));
        let e = client.get_bucket_cors().await.unwrap_err();
        assert_eq!(e.code(), Some("NoSuchCORSConfiguration"));

        assert_invalid(client.put_bucket_cors(bad_rules()).await.unwrap_err());
        assert_eq!(
            server.counters().get("PutBucketCors"),
            0,
            "nothing was sent"
        );

        client.put_bucket_cors(rules()).await.unwrap();
        assert_eq!(server.cors(), Some(CorsConfiguration::new(rules())));
        let got = client.get_bucket_cors().await.unwrap();
        assert_eq!(got.configuration.rules, rules());
        client.delete_bucket_cors().await.unwrap();
        assert_eq!(server.cors(), None);
    });
}
