//! Go programs under `gotls`: an HTTPS server and client written with Go's
//! standard library (tests/gotls/peer.go), built by `make gotls`
//! (tests/gotls/build.sh) with each Go toolchain of the fixture, normal,
//! stripped, PIE and PIE stripped. Real Go, real TLS on loopback; each test
//! runs its own server on its own port and looks only at its own pids.

mod util;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use ecapture::modules::gotls::{conn_offsets, inspect, GoVersion, SymbolSource};
use util::*;

const BODY: usize = 1 << 20;

/// `peer server PORT` on a free port, returned once it listens.
fn go_server(peer: &Path, dir: &Path) -> (Proc, u16) {
    let port = free_port();
    (peer_server(peer, dir, port), port)
}

/// `peer client PORT PROTO BODY`: POSTs BODY bytes, GETs BODY bytes, checks
/// both; returns its pid once it is done and said "ok <proto>".
fn go_client(peer: &Path, port: u16, proto: &str) -> u32 {
    let mut child = Command::new(peer)
        .args(["client", &port.to_string(), proto, &BODY.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the Go client");
    let pid = child.id();
    child.stdin.take().expect("client stdin").write_all(b"go\n").expect("start the client");
    let out = child.wait_with_output().expect("wait for the Go client");
    let want = if proto == "h1" { "ok HTTP/1.1\n" } else { "ok HTTP/2.0\n" };
    assert!(out.status.success(), "the Go client failed under capture ({proto})");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "the Go client's answers were not right under capture");
    pid
}

/// The comm of a program: its file name, cut as the kernel cuts it.
fn comm_of(p: &Path) -> String {
    let name = p.file_name().expect("file name").to_string_lossy().into_owned();
    name.chars().take(15).collect()
}

fn text(e: &Event) -> String {
    String::from_utf8_lossy(&e.payload).into_owned()
}

/// Go client -> Go server over HTTP/1.1 then HTTP/2, both processes running
/// `peer` (one executable named with --elfpath): requests and responses
/// byte-exact (HTTP/1.1, 1 MiB each way) or with their headers decoded
/// (HTTP/2), pid, comm, fd, TLS version and tuple; both programs keep
/// working.
fn go_to_go(test: &str, variant: &str) {
    if !e2e_enabled(test) {
        return;
    }
    for v in go_versions() {
        let Some(peer) = gotls_fixture(test, &v, variant) else { return };
        let dir = TempDir::new(test);
        let (mut server, port) = go_server(&peer, dir.path());
        let spid = server.pid();
        // A long idle time: on a loaded machine the server's reads of the
        // 1 MiB body may pause for more than the default 100 ms, and the
        // message would come out in parts (as designed).
        let ec = Ecapture::start(&["gotls", "--elfpath", peer.to_str().expect("utf-8 path"), "--idletime", "2000"]);
        let hooking = ec.wait_stderr("hooking ");
        let symbols = if variant.ends_with("stripped") { "stripped: functions from .gopclntab" } else { "symbols from .symtab" };
        assert!(hooking.contains(&format!("hooking {} (go{v}, {symbols}", peer.display())), "{hooking}");

        // HTTP/1.1: the POST with its 1 MiB body, as the client wrote it and
        // the server read it.
        let cpid = go_client(&peer, port, "h1");
        let mine = |pid: u32, dir: &'static str, start: &'static [u8]| {
            move |e: &Event| e.pid == pid && e.dir == dir && e.payload.starts_with(start)
        };
        let req = ec.wait_event("the client's POST", mine(cpid, "WRITE", b"POST /echo HTTP/1.1\r\n"));
        assert_eq!(req.comm, comm_of(&peer));
        assert_eq!(req.version, "TLS1.3", "{v} {variant}");
        assert_eq!(req.length, req.payload.len());
        assert!(req.payload.ends_with(&pattern(BODY)), "{v} {variant}: the 1 MiB body, whole and byte-exact");
        assert!(req.notes.is_empty(), "{:?}", req.notes);
        assert_eq!(req.dst, format!("127.0.0.1:{port}"));
        assert!(req.src.starts_with("127.0.0.1:") && req.src != req.dst, "{}", req.src);
        assert!(req.fd >= 3, "{v} {variant}: the client's fd is known");
        let got = ec.wait_event("the server reading the POST", mine(spid, "READ", b"POST /echo HTTP/1.1\r\n"));
        assert!(
            got.payload == req.payload,
            "{v} {variant}: what the server read ({} bytes, notes {:?}) is not what the client wrote ({} bytes)",
            got.payload.len(),
            got.notes,
            req.payload.len()
        );
        assert_eq!((got.src.as_str(), got.dst.as_str()), (req.src.as_str(), req.dst.as_str()), "a read flows client to server");
        assert_eq!(got.comm, comm_of(&peer));
        assert!(got.fd >= 3);
        let answer = ec.wait_event("the server's answer", mine(spid, "WRITE", b"HTTP/1.1 200 OK\r\n"));
        assert!(text(&answer).ends_with(&format!("got {BODY} bytes over HTTP/1.1")), "{}", text(&answer));
        assert_eq!((answer.src.as_str(), answer.dst.as_str()), (req.dst.as_str(), req.src.as_str()));
        let data = ec.wait_event("the client reading /data", |e| {
            e.pid == cpid && e.dir == "READ" && e.payload.ends_with(&pattern(BODY))
        });
        assert!(data.payload.starts_with(b"HTTP/1.1 200 OK\r\n"), "{v} {variant}: the 1 MiB response, whole");

        // HTTP/2: the headers, HPACK-decoded, both ways.
        let cpid = go_client(&peer, port, "h2");
        let h2 = |pid: u32, dir: &'static str, needle: &'static str| {
            move |e: &Event| e.pid == pid && e.dir == dir && text(e).contains(needle)
        };
        let post = ec.wait_event("the client's HTTP/2 POST", h2(cpid, "WRITE", "header field \":path\" = \"/echo\""));
        assert!(text(&post).contains("header field \":method\" = \"POST\""), "{}", text(&post));
        assert_eq!(post.dst, format!("127.0.0.1:{port}"));
        assert_eq!(post.version, "TLS1.3");
        ec.wait_event("the server reading the HTTP/2 GET", h2(spid, "READ", "header field \":path\" = \"/data?n=1048576\""));
        let ans = ec.wait_event("the server's HTTP/2 answer", h2(spid, "WRITE", "header field \"x-peer\" = \"go-echo\""));
        assert_eq!(ans.dst, post.src, "{v} {variant}: the server writes to the client's end");
        ec.wait_event("the client reading the HTTP/2 answer", h2(cpid, "READ", "header field \":status\" = \"200\""));

        let (status, _, _, log) = ec.stop();
        assert!(status.success(), "{status}: {log:?}");
        assert!(server.0.try_wait().expect("try_wait").is_none(), "{v} {variant}: the Go server died under capture");
    }
}

#[test]
fn go_to_go_symbols() {
    go_to_go("gotls_go_to_go_symbols", "peer");
}

#[test]
fn go_to_go_stripped() {
    go_to_go("gotls_go_to_go_stripped", "peer-stripped");
}

#[test]
fn go_to_go_pie() {
    go_to_go("gotls_go_to_go_pie", "peer-pie");
}

#[test]
fn go_to_go_pie_stripped() {
    go_to_go("gotls_go_to_go_pie_stripped", "peer-pie-stripped");
}

/// curl (OpenSSL, not hooked here) -> the Go server: the server's side of
/// HTTP/1.1 and HTTP/2, from a stripped binary.
#[test]
fn curl_to_go_server() {
    const TEST: &str = "gotls_curl_to_go_server";
    if !e2e_enabled(TEST) {
        return;
    }
    let v = go_versions().into_iter().next().expect("a Go version");
    let Some(peer) = gotls_fixture(TEST, &v, "peer-stripped") else { return };
    let dir = TempDir::new(TEST);
    let (_server, port) = go_server(&peer, dir.path());
    let spid = _server.pid();
    let ec = Ecapture::start(&["gotls", "--elfpath", peer.to_str().expect("utf-8 path"), "--pid", &spid.to_string()]);
    let url = format!("https://127.0.0.1:{port}/data?n=1000");
    // Several connections: the server's first Read may be served from what
    // its handshake already read (no socket I/O in it): the tuple is known
    // all the same.
    for _ in 0..5 {
        let (_, st) = curl(&url, &["--http1.1"]);
        assert!(st.success(), "curl --http1.1");
        let req = ec.wait_event("the server reading curl's GET", |e| e.pid == spid && e.dir == "READ" && e.payload.starts_with(b"GET /data?n=1000 HTTP/1.1\r\n"));
        assert_eq!(req.dst, format!("127.0.0.1:{port}"));
        assert!(req.src.starts_with("127.0.0.1:") && req.src != req.dst, "{}", req.src);
        let resp = ec.wait_event("the server's answer", |e| e.pid == spid && e.dir == "WRITE" && e.payload.starts_with(b"HTTP/1.1 200 OK"));
        assert!(resp.payload.ends_with(&pattern(1000)));
        assert_eq!(resp.dst, req.src, "the answer goes to curl's end");
    }
    let (_, st) = curl(&url, &["--http2"]);
    assert!(st.success(), "curl --http2");
    let h2 = ec.wait_event("curl's HTTP/2 GET", |e| e.pid == spid && e.dir == "READ" && text(e).contains("header field \":path\" = \"/data?n=1000\""));
    assert!(text(&h2).contains("header field \":method\" = \"GET\""));
    let (status, _, all, _) = ec.stop();
    assert!(status.success());
    assert!(all.iter().all(|e| e.pid == spid), "--pid: only the server is captured");
}

/// Without --elfpath, running Go programs are found by their build
/// information; `all` includes them.
#[test]
fn running_go_programs_are_discovered() {
    const TEST: &str = "gotls_discovery";
    if !e2e_enabled(TEST) {
        return;
    }
    let v = go_versions().into_iter().last().expect("a Go version");
    let Some(peer) = gotls_fixture(TEST, &v, "peer-pie-stripped") else { return };
    let dir = TempDir::new(TEST);
    let (_server, port) = go_server(&peer, dir.path());
    let spid = _server.pid();
    for module in ["gotls", "all"] {
        let ec = Ecapture::start(&[module, "--pid", &spid.to_string()]);
        let found = ec.wait_stderr(&format!("hooking {}", peer.display()));
        assert!(found.contains(&format!("(go{v}, stripped: functions from .gopclntab")), "{found}");
        let cpid = go_client(&peer, port, "h1");
        let req = ec.wait_event("the server reading the POST", |e| e.pid == spid && e.dir == "READ" && e.payload.starts_with(b"POST /echo"));
        assert!(req.src.starts_with("127.0.0.1:") && req.dst == format!("127.0.0.1:{port}"));
        let (status, _, all, _) = ec.stop();
        assert!(status.success());
        assert!(all.iter().all(|e| e.pid == spid), "{module}: only --pid's events (not the client {cpid})");
    }
}

/// A stripped binary's functions, from .gopclntab, are where .symtab puts
/// them in the same program unstripped: same entries, same RETs (stripping
/// does not move code), PIE or not, for every Go version of the fixture.
#[test]
fn stripped_binaries_resolve_to_the_same_code() {
    const TEST: &str = "gotls_stripped_resolution";
    for v in go_versions() {
        for (full, stripped) in [("peer", "peer-stripped"), ("peer-pie", "peer-pie-stripped")] {
            let (Some(a), Some(b)) = (gotls_fixture(TEST, &v, full), gotls_fixture(TEST, &v, stripped)) else { return };
            let (a, b) = (inspect(&a).expect(full), inspect(&b).expect(stripped));
            assert_eq!((a.symbols, b.symbols), (SymbolSource::Symtab, SymbolSource::Pclntab));
            assert_eq!(a.version.text, format!("go{v}"));
            assert_eq!((a.write, a.read, a.close), (b.write, b.read, b.close), "{v} {stripped}");
            assert_eq!((&a.write_rets, &a.read_rets), (&b.write_rets, &b.read_rets), "{v} {stripped}");
            assert!(!a.write_rets.is_empty() && !a.read_rets.is_empty());
            assert!(a.close.is_some());
            assert_eq!(a.poll.len(), 2, "{v}: internal/poll.(*FD).Read and Write");
            assert_eq!(a.poll, b.poll);
            assert!(a.handshake.as_ref().is_some_and(|(_, rets)| !rets.is_empty()), "{v}: the handshake and its RETs");
            assert_eq!(a.handshake, b.handshake);
            assert!(a.keylog.is_some(), "{v}: crypto/tls.(*Config).writeKeyLog (the key log)");
            assert_eq!(a.keylog, b.keylog, "{v} {stripped}: writeKeyLog from .gopclntab");
        }
    }
}

/// The tls.Conn offsets the BPF side reads are those Go's reflect reports,
/// for every Go version of the fixture.
#[test]
fn conn_offsets_match_reflect() {
    const TEST: &str = "gotls_conn_offsets";
    for v in go_versions() {
        let Some(peer) = gotls_fixture(TEST, &v, "peer") else { return };
        let out = Command::new(&peer).arg("offsets").output().expect("peer offsets");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let get = |k: &str| -> u32 {
            let line = text.lines().find(|l| l.starts_with(&format!("{k} "))).unwrap_or_else(|| panic!("{v}: no {k} in {text}"));
            line[k.len() + 1..].parse().expect("an offset")
        };
        let version = GoVersion::parse(&format!("go{v}")).expect("version");
        let o = conn_offsets(&version);
        assert_eq!(o.is_client, Some(get("tls.Conn.isClient")), "{v}");
        assert_eq!(o.vers, Some(get("tls.Conn.vers")), "{v}");
        assert_eq!(o.sysfd, Some(get("poll.FD.Sysfd")), "{v}");
    }
}

