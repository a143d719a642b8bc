//! BoringSSL under `tls`: a program with BoringSSL linked in statically
//! (symbols present), named with `--libssl PROGRAM`. The fixture,
//! target/boringssl, is built from real BoringSSL source by
//! tests/boringssl/build.sh (`make boringssl`): `bssl_peer`, a client and
//! server linked with BoringSSL (boring-sys 5.4.0's), and the offsets of the
//! fields the BPF side reads as BoringSSL's own headers place them, for
//! that and two older BoringSSL generations.
//!
//! Each end-to-end test runs its own server on its own port and captures
//! only its own pid.

mod util;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use ecapture::modules::openssl::{boringssl_offsets, keylog, BoringBio};
use util::*;

const BODY: usize = 1 << 20;

/// target/boringssl (or $BORINGSSL_OUT, as for build.sh).
fn fixture_dir() -> PathBuf {
    std::env::var_os("BORINGSSL_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/boringssl"))
}

/// A file of the fixture (see `built_fixture`).
fn fixture(test: &str, name: &str) -> Option<PathBuf> {
    built_fixture(test, fixture_dir().join(name), "make boringssl` (tests/boringssl/build.sh")
}

/// offsets.cc's output: name -> value.
fn read_offsets(path: &std::path::Path) -> HashMap<String, u64> {
    let text = std::fs::read_to_string(path).expect("read offsets");
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().parse().unwrap_or_else(|_| panic!("{}: bad line {k} {v}", path.display()))))
        .collect()
}

/// ecapture's BoringSSL layouts are what BoringSSL's headers say, for the
/// BoringSSL linked into bssl_peer and the two older generations.
#[test]
fn layouts_match_boringssl_source() {
    let generations = [
        ("offsets.txt", BoringBio::Class, "boring-sys 5.4.0 (built and linked)"),
        ("offsets-5.1.0.txt", BoringBio::ExData, "boring-sys 5.1.0 (headers)"),
        ("offsets-4.22.0.txt", BoringBio::Plain, "boring-sys 4.22.0 (headers)"),
    ];
    for (file, bio, what) in generations {
        let Some(path) = fixture("layouts_match_boringssl_source", file) else { return };
        let src = read_offsets(&path);
        let get = |k: &str| *src.get(k).unwrap_or_else(|| panic!("{what}: no {k} in {}", path.display()));
        let ours = boringssl_offsets(Some(bio));
        assert_eq!(get("ssl_version_size"), 2, "{what}: the version is 16 bits");
        if get("ssl_version_in_s3") == 1 {
            let (s3, version) = ours.version_in_s3.expect("a layout with the version in s3");
            assert_eq!((get("ssl_s3"), get("ssl_version")), (s3.into(), version.into()), "{what}: s3->version");
        } else {
            assert_eq!(get("ssl_version"), ours.ssl_version as u64, "{what}: SSL.version");
        }
        assert_eq!(get("ssl_rbio"), ours.ssl_rbio as u64, "{what}: rbio");
        assert_eq!(get("ssl_wbio"), ours.ssl_wbio as u64, "{what}: wbio");
        assert_eq!(get("ssl_server"), ours.ssl_server as u64, "{what}: the byte of the server bit");
        assert_eq!(get("ssl_server_mask"), ours.ssl_server_mask as u64, "{what}: the server bit");
        assert_eq!(get("bio_num"), ours.bio_num as u64, "{what}: BIO.num");
        assert_eq!(get("bio_method"), ours.bio_method as u64, "{what}: BIO.method");
        assert!(ours.bio_known);
        // bpf/openssl.bpf.c reads the method's first int and compares it
        // with these.
        assert_eq!(get("bio_method_type"), 0, "{what}: BIO_METHOD.type");
        assert_eq!((get("bio_type_socket"), get("bio_type_fd")), (0x505, 0x504), "{what}: BIO types");
        // The key log: ssl_log_secret's SSL pointer is the program's SSL *
        // (the connection), and the client random is ssl->s3->client_random.
        assert_eq!(get("ssl_base"), 0, "{what}: SSLImpl starts with its ssl_st");
        assert_eq!(get("keylog_ssl_s3"), keylog::BORINGSSL_SSL_S3 as u64, "{what}: SSL.s3");
        assert_eq!(get("s3_client_random"), keylog::BORINGSSL_S3_CLIENT_RANDOM as u64, "{what}: SSL3_STATE.client_random");
        assert_eq!(get("s3_client_random_size"), 32, "{what}: client_random");
    }
    // Where the version moved to s3, the SSL's old place holds
    // max_send_fragment, never a TLS version: what the BPF side relies on
    // to tell the two apart (the 4.x layout has no s3 version).
    let old = read_offsets(&fixture_dir().join("offsets-4.22.0.txt"));
    assert_eq!(old["ssl_version_in_s3"], 0);
    assert_eq!(boringssl_offsets(None).ssl_version as u64, old["ssl_version"]);
}

/// `bssl_peer server` on 127.0.0.1:port, returned once it listens.
fn bssl_server(peer: &std::path::Path, dir: &std::path::Path, port: u16) -> Proc {
    peer_server(peer, dir, port)
}

/// `bssl_peer client` waiting for a line on stdin before it connects.
fn bssl_client(peer: &std::path::Path, port: u16, extra: &[&str]) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(peer)
        .arg("client")
        .arg(port.to_string())
        .args(extra)
        .arg("wait")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn bssl_peer client");
    let lines = lines_of(child.stdout.take().expect("client stdout"));
    assert_eq!(lines.recv_timeout(PATIENCE).expect("client ready"), "ready");
    (child, lines)
}

/// What the client sends: the head, then the body in one SSL_write.
fn request() -> Vec<u8> {
    let mut want = format!("PUT /bssl HTTP/1.1\r\nHost: localhost\r\nContent-Length: {BODY}\r\n\r\n").into_bytes();
    want.extend_from_slice(&pattern(BODY));
    want
}

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\ngot 1048576 bytes\n";

/// The client side over TLS 1.3, found and detected with `--libssl`:
/// plaintext, direction, tuple, pid and version, and the 1 MiB write whole.
#[test]
fn client_side_tls13_with_one_mib_write() {
    const TEST: &str = "boringssl_client";
    if !e2e_enabled(TEST) {
        return;
    }
    let Some(peer) = fixture(TEST, "bssl_peer") else { return };
    let dir = TempDir::new(TEST);
    let port = free_port();
    let _server = bssl_server(&peer, dir.path(), port);
    let (mut client, _lines) = bssl_client(&peer, port, &[]);
    let cpid = client.id();
    let ec = Ecapture::start(&["tls", "--libssl", peer.to_str().unwrap(), "--pid", &cpid.to_string()]);
    let hooking = ec.wait_stderr("hooking ");
    assert!(
        hooking.contains(&format!("hooking {} (BoringSSL, found in bssl_peer; BIO: the bssl::Bio class", peer.display())),
        "{hooking}"
    );
    client.stdin.take().expect("client stdin").write_all(b"go\n").expect("go");

    let req = ec.wait_event("the client's PUT", |e| e.pid == cpid && e.dir == "WRITE");
    assert_eq!(req.comm, "bssl_peer");
    assert_eq!(req.tid, cpid);
    assert_eq!(req.version, "TLS1.3");
    assert_eq!(req.length, request().len(), "head and 1 MiB body: one message");
    assert!(req.payload == request(), "the request's bytes differ");
    assert!(req.notes.is_empty(), "{:?}", req.notes);
    assert_eq!(req.dst, format!("127.0.0.1:{port}"));
    assert!(req.src.starts_with("127.0.0.1:") && req.src != req.dst, "{}", req.src);
    assert!(req.fd >= 3);

    let resp = ec.wait_event("the server's answer", |e| e.pid == cpid && e.dir == "READ");
    assert_eq!(resp.payload, RESPONSE);
    assert_eq!((resp.src.as_str(), resp.dst.as_str()), (req.dst.as_str(), req.src.as_str()), "a read flows server to client");
    assert_eq!((resp.fd, resp.version.as_str()), (req.fd, "TLS1.3"));
    assert!(client.wait().expect("wait client").success());
    let (status, _, all, _) = ec.stop();
    assert!(status.success(), "{status}");
    assert!(all.iter().all(|e| e.pid == cpid), "only the client's pid is captured");
}

/// A free port above the kernel's ephemeral range: the server's port is
/// then higher than the client's, and only the role the library tells (not
/// the "higher port is the client" guess) names the ends right.
fn port_above_ephemeral() -> u16 {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").expect("ip_local_port_range");
    let high: u16 = range.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("range");
    (high.saturating_add(1)..=u16::MAX)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port above the ephemeral range")
}

/// A JSON field's raw value: `"name":value` up to the next comma.
fn json_field<'a>(line: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":");
    let at = line.find(&key).unwrap_or_else(|| panic!("no {name} in {line:.300}")) + key.len();
    let rest = &line[at..];
    &rest[..rest.find(',').unwrap_or(rest.len())]
}

/// The server side over TLS 1.2 with `--ssl_version boringssl`: the
/// request read whole, the answer written, the version, and the role (JSON
/// names the client and server ends by it).
#[test]
fn server_side_tls12_role_and_override() {
    const TEST: &str = "boringssl_server";
    if !e2e_enabled(TEST) {
        return;
    }
    let Some(peer) = fixture(TEST, "bssl_peer") else { return };
    let dir = TempDir::new(TEST);
    let port = port_above_ephemeral();
    let mut server = bssl_server(&peer, dir.path(), port);
    let spid = server.pid();
    let events = dir.path().join("events.json");
    let ec = Ecapture::start(&[
        "tls",
        "--libssl",
        peer.to_str().unwrap(),
        "--ssl_version",
        "boringssl",
        "--pid",
        &spid.to_string(),
        "--eventformat",
        "json",
        "--eventaddr",
        events.to_str().unwrap(),
    ]);
    let hooking = ec.wait_stderr("hooking ");
    assert!(hooking.contains("(BoringSSL, from --ssl_version; BIO: the bssl::Bio class"), "{hooking}");
    let (mut client, lines) = bssl_client(&peer, port, &["tls12"]);
    client.stdin.take().expect("client stdin").write_all(b"go\n").expect("go");
    assert!(client.wait().expect("wait client").success());
    assert_eq!(lines.recv_timeout(PATIENCE).as_deref(), Ok("HTTP/1.1 200 OK"));
    // The server exits after SSL_free: every probe of it has run.
    assert!(server.0.wait().expect("wait server").success());
    let (status, _, _, stderr) = ec.stop();
    assert!(status.success(), "{status}: {stderr:?}");

    let text = std::fs::read_to_string(&events).expect("events file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "the request read and the answer written: {text:.600}");
    let want_req = String::from_utf8(request()).unwrap().replace("\r\n", "\\r\\n").replace('\n', "\\n");
    for (line, dir, len) in [(lines[0], "\"read\"", request().len()), (lines[1], "\"write\"", RESPONSE.len())] {
        assert_eq!(json_field(line, "pid"), spid.to_string());
        assert_eq!(json_field(line, "pname"), "\"bssl_peer\"");
        assert_eq!(json_field(line, "direction"), dir);
        assert_eq!(json_field(line, "length"), len.to_string());
        assert_eq!(json_field(line, "tls_version"), "\"TLS1.2\"");
        // The role: the server's port is the higher one, yet it is the server.
        assert_eq!(json_field(line, "dst_port"), port.to_string(), "{line:.300}");
        let client_port: u16 = json_field(line, "src_port").parse().expect("src_port");
        assert!(client_port < port && client_port > 0);
        assert_eq!(json_field(line, "src_ip"), "\"127.0.0.1\"");
    }
    assert!(lines[0].contains(&format!("\"payload\":\"{want_req}\"")), "the request read differs");
    assert!(lines[1].contains("got 1048576 bytes\\n\""), "{:.300}", lines[1]);
}
