//! End-to-end tests of protocol awareness against nginx (TLS, HTTP/1.1 and
//! HTTP/2, gzip) on loopback, started by the tests with their own config:
//! whole messages, event types, HPACK-decoded headers on a reused HTTP/2
//! connection, decompressed bodies, and prompt delivery.

mod util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::*;

fn curl_pid(args: &[&str]) -> u32 {
    let mut c = Command::new("curl").args(["-sk", "-o", "/dev/null", "--max-time", "10"]).args(args).stdin(Stdio::null()).spawn().unwrap();
    let pid = c.id();
    assert!(c.wait().unwrap().success(), "curl {args:?} failed");
    pid
}

fn text(e: &Event) -> String {
    String::from_utf8_lossy(&e.payload).into_owned()
}

#[test]
fn http1_request_and_response_are_whole_typed_messages() {
    if !e2e_enabled("http1") {
        return;
    }
    let dir = TempDir::new("http1");
    let ng = nginx(dir.path());
    let ec = Ecapture::start(&["tls", "--ecaptureq", "ws://127.0.0.1:0/"]);
    let c = EcqClient::connect(&ecq_url(&ec));
    let started = Instant::now();
    let pid = curl_pid(&["--http1.1", &format!("https://127.0.0.1:{}/a.txt", ng.port)]);
    c.wait_count("curl's request", pid, 1, 1, 1);
    c.wait_count("curl's response", pid, 0, 3, 1);
    let took = started.elapsed();
    let evs = c.events_of(pid);
    assert_eq!(evs.iter().map(|e| e.kind).collect::<Vec<_>>(), vec![1, 3], "one request, one response: {evs:?}");
    assert!(evs[0].payload.starts_with(b"GET /a.txt HTTP/1.1\r\n") && evs[0].payload.ends_with(b"\r\n\r\n"));
    let resp = String::from_utf8_lossy(&evs[1].payload);
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n") && resp.ends_with("\r\n\r\nthe contents of a\n"), "{resp}");
    // nginx's side of the same exchange (its worker's pid is not ours to know: by port).
    c.wait("nginx's read and write", |es| {
        let ng_events: Vec<&Entry> = es.iter().filter(|e| matches!(e, Entry::Event(v) if v.pname == "nginx" && v.dst_port == ng.port as u32)).collect();
        ng_events.len() >= 2
    });
    assert!(took < Duration::from_secs(1), "events reached the client {took:?} after the request");
    ec.stop();
}

#[test]
fn http2_two_requests_on_one_connection_decode_with_hpack() {
    if !e2e_enabled("http2") {
        return;
    }
    let dir = TempDir::new("http2");
    let ng = nginx(dir.path());
    let ec = Ecapture::start(&["tls"]);
    let base = format!("https://127.0.0.1:{}", ng.port);
    let pid = curl_pid(&["--http2", &format!("{base}/a.txt"), "-o", "/dev/null", &format!("{base}/b.txt")]);
    // Text output: one block per frame, header fields decoded. A rendering
    // has no length of its own: stopping ends the last one.
    let (status, _, all, _) = ec.stop();
    assert!(status.success());
    let mine: Vec<&Event> = all.iter().filter(|e| e.pid == pid).collect();
    assert!(mine.iter().all(|e| e.rendered), "HTTP/2 events are rendered as frames");
    let seen: String = mine.iter().map(|e| text(e)).collect();
    assert!(seen.contains(r#"header field ":path" = "/a.txt""#) && seen.contains(r#"header field ":path" = "/b.txt""#), "{seen}");
    assert!(seen.contains("HTTP/2 client connection preface"), "{seen}");
    assert!(seen.contains("HTTP/2 HEADERS stream=1 "), "{seen}");
    assert!(seen.contains("HTTP/2 HEADERS stream=3 "), "the second request on the same connection: {seen}");
    assert!(seen.contains(r#"header field ":status" = "200""#), "{seen}");
    assert!(seen.contains("the contents of a\n") && seen.contains("the contents of b\n"), "{seen}");
    assert!(seen.contains("HTTP/2 SETTINGS stream=0"), "{seen}");
    assert!(!seen.contains("cannot decode"), "{seen}");

    // The same over eCaptureQ: types 2 (client to server) and 4 (server to client).
    let ec = Ecapture::start(&["tls", "--ecaptureq", "ws://127.0.0.1:0/"]);
    let c = EcqClient::connect(&ecq_url(&ec));
    let pid = curl_pid(&["--http2", &format!("{base}/a.txt"), "-o", "/dev/null", &format!("{base}/b.txt")]);
    c.wait_count("HTTP/2 requests", pid, 1, 2, 1);
    c.wait_count("HTTP/2 responses", pid, 0, 4, 1);
    let evs = c.events_of(pid);
    assert!(evs.iter().all(|e| (e.dir() == 1 && e.kind == 2) || (e.dir() == 0 && e.kind == 4)), "{evs:?}");
    assert!(evs.iter().find(|e| e.kind == 2).unwrap().payload.starts_with(b"PRI * HTTP/2.0\r\n"), "raw payload, preface first");
    // nginx's side: it sends SETTINGS before reading the preface, yet both
    // of its directions are HTTP/2 too — reads type 2, writes type 4.
    c.wait("nginx's HTTP/2 reads and writes", |es| {
        let ng: Vec<&Ev> = es.iter().filter_map(|e| match e {
            Entry::Event(v) if v.pname == "nginx" && v.dst_port == ng.port as u32 => Some(v),
            _ => None,
        }).collect();
        ng.iter().any(|v| v.dir() == 0 && v.kind == 2) && ng.iter().any(|v| v.dir() == 1 && v.kind == 4)
    });
    let unknown = c.entries().iter().filter(|e| matches!(e, Entry::Event(v) if v.dst_port == ng.port as u32 && v.kind == 0)).count();
    assert_eq!(unknown, 0, "no HTTP/2 bytes of this connection left undecoded");
    ec.stop();

    // --ecaptureq-payload text: the rendering travels instead of the bytes.
    let ec = Ecapture::start(&["tls", "--ecaptureq", "ws://127.0.0.1:0/", "--ecaptureq-payload", "text"]);
    let c = EcqClient::connect(&ecq_url(&ec));
    let pid = curl_pid(&["--http2", &format!("{base}/a.txt")]);
    c.wait_count("the HTTP/2 request", pid, 1, 2, 2);
    let text: String = c.events_of(pid).iter().filter(|e| e.kind == 2).map(|e| String::from_utf8_lossy(&e.payload).into_owned()).collect();
    assert!(text.contains("HTTP/2 client connection preface\n") && text.contains(r#"header field ":path" = "/a.txt""#), "{text}");
    ec.stop();
}

#[test]
fn gzip_responses_show_their_decompressed_text() {
    if !e2e_enabled("gzip") {
        return;
    }
    let dir = TempDir::new("gzip");
    let ng = nginx(dir.path());
    let ec = Ecapture::start(&["tls"]);
    let url = format!("https://127.0.0.1:{}/big.txt", ng.port);
    let pid1 = curl_pid(&["--http1.1", "-H", "Accept-Encoding: gzip", &url]);
    let pid2 = curl_pid(&["--http2", "-H", "accept-encoding: gzip", &url]);
    // Renderings have no length of their own: stopping ends the last one.
    let (_, _, all, _) = ec.stop();
    let resp = all.iter().find(|e| e.pid == pid1 && e.dir == "READ").expect("the gzip HTTP/1.1 response");
    let t = text(resp);
    assert!(resp.rendered, "a gzip body is shown decompressed");
    assert!(t.contains("Content-Encoding: gzip"), "{t}");
    assert!(t.contains("line 0000 of a text that gzip shrinks very well\n") && t.contains("line 0399 of a text"), "{t}");
    assert!(resp.notes.iter().any(|n| n.contains("gzip body decompressed")), "{:?}", resp.notes);
    assert!(resp.length < t.len(), "the bytes captured are the compressed ones");

    let seen: String = all.iter().filter(|e| e.pid == pid2 && e.dir == "READ").map(text).collect();
    assert!(seen.contains("line 0000 of a text") && seen.contains("line 0399 of a text"), "{seen}");
    assert!(seen.contains(r#"header field "content-encoding" = "gzip""#), "{seen}");
    assert!(seen.contains("(decompressed)"), "{seen}");
}
