//! A query string that does not decode is refused with 400 `InvalidURI`, as COS refuses it, instead of
//! being dropped (which turned `PUT /key?partNumber=1&uploadId=%zz` into a plain PUT).

use std::io::{Read, Write};
use std::net::TcpStream;

use cos_testkit::Server;

fn raw(server: &Server, request: &str) -> String {
    let addr = server.endpoint().trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_malformed_query_is_a_400_and_nothing_is_stored() {
    let server = Server::builder().start_blocking().unwrap();
    for target in [
        "/key?partNumber=1&uploadId=%zz",
        "/key?%zz",
        "/key?uploadId=%E0%A4%A",
        "/key?uploadId=%ff",
    ] {
        let answer = raw(
            &server,
            &format!(
                "PUT {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
            ),
        );
        assert!(answer.starts_with("HTTP/1.1 400"), "{target}: {answer}");
        assert!(
            answer.contains("<Code>InvalidURI</Code>"),
            "{target}: {answer}"
        );
    }
    assert!(server.object("key").is_none());
}
