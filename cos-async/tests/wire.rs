//! The async client's own guarantee: the client is `Send + Sync` and its futures are `Send` (so they can
//! be spawned on a multi-threaded runtime). The wire behaviour both clients share is in cos-testkit's
//! driver conformance suite (`cargo test -p cos-testkit --test drivers wire`).

use cos_async::{ops::PutObject, Body, Client, Config, Credentials, Endpoint};

#[test]
fn client_and_futures_are_send() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let config = Config::new(
        "examplebucket-1250000000",
        "ap-guangzhou",
        Credentials::new("AKID", "KEY"),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom("http://127.0.0.1:9").unwrap())
    .unwrap();
    let client = Client::new(config);
    send_sync(&client);
    send(client.put_object(PutObject::new("a"), "a"));
    send(client.put_object(PutObject::new("a"), Body::file_range("/tmp/x", 0, 1)));
}
