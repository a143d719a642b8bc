//! End-to-end tests of the key log (`-m keylog`, `-k`): the real binary, as
//! root, writes the secrets of real TLS connections on loopback while
//! tcpdump records their packets; tshark, decrypting the recording with our
//! key log, is the judge. Our lines are also compared with the library's own
//! key log (OpenSSL's keylog callback, through Python's `keylog_filename` and
//! curl's SSLKEYLOGFILE) for the same connections, line for line.

mod util;

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use util::*;

/// tcpdump recording loopback traffic on one port into a file; stopped (and
/// its file complete) by `finish`. In immediate mode: otherwise packets wait
/// in the kernel's ring for up to a second and a stop loses them.
struct Recording {
    proc: Proc,
    file: PathBuf,
}

impl Recording {
    fn start(dir: &Path, port: u16) -> Recording {
        let file = dir.join("capture.pcap");
        let mut child = Command::new("tcpdump")
            .args(["-i", "lo", "--immediate-mode", "-U", "-n", "-B", "65536", "-w"])
            .arg(&file)
            .arg(format!("tcp port {port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpdump");
        let lines = lines_of(child.stderr.take().expect("tcpdump stderr"));
        let deadline = Instant::now() + PATIENCE;
        loop {
            match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) if l.contains("listening on") => break,
                Ok(_) => {}
                Err(_) => panic!("tcpdump did not start listening"),
            }
        }
        Recording { proc: Proc(child), file }
    }

    /// Stops tcpdump and returns the file, once the file holds the end (a FIN
    /// or RST, after all their data) of `conns` connections: tcpdump reads
    /// the kernel's ring on its own time (later on a busy machine), and what
    /// is still in the ring when it stops is lost.
    fn finish(mut self, conns: usize) -> PathBuf {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let ends = tshark(&self.file, 0, None, Some("tcp.flags.fin == 1 || tcp.flags.reset == 1"), &["tcp.stream"]);
            let ended = ends.lines().collect::<BTreeSet<_>>().len();
            if ended >= conns {
                break;
            }
            assert!(Instant::now() < deadline, "tcpdump recorded the end of {ended} connections, not {conns}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.proc.pid() as i32, libc::SIGINT) };
        let _ = self.proc.0.wait();
        self.file.clone()
    }
}

/// tshark on `pcap` (the test's port dissected as TLS, decrypted with `keys`
/// when given) printing `fields` of the packets `filter` selects, one line
/// per packet.
fn tshark(pcap: &Path, port: u16, keys: Option<&Path>, filter: Option<&str>, fields: &[&str]) -> String {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args(["-d", &format!("tcp.port=={port},tls"), "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    if let Some(k) = keys {
        cmd.arg("-o").arg(format!("tls.keylog_file:{}", k.display()));
    }
    let out = cmd.stderr(Stdio::null()).output().expect("run tshark");
    assert!(out.status.success(), "tshark failed on {}", pcap.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What tshark shows of the HTTP in `pcap` decrypted with `keys` (None: no
/// key log): one "uri<TAB>code" line per HTTP message.
fn tshark_http(pcap: &Path, port: u16, keys: Option<&Path>) -> Vec<String> {
    tshark(pcap, port, keys, Some("http"), &["http.request.uri", "http.response.code"]).lines().map(str::to_string).collect()
}

/// What tshark makes of every packet (time, stream, info), to tell a
/// missed packet from a secret it could not use when a test fails.
fn every_packet(pcap: &Path, port: u16, keys: &Path) -> String {
    tshark(pcap, port, Some(keys), None, &["frame.time_relative", "tcp.stream", "_ws.col.Info"])
}

/// The key log lines of a file (comments and blank lines left out).
fn key_lines(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(str::to_string).collect()
}

/// Our lines for the handshakes (client randoms) of `theirs`.
fn ours_for(ours: &BTreeSet<String>, theirs: &BTreeSet<String>) -> BTreeSet<String> {
    let randoms: BTreeSet<&str> = theirs.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    ours.iter().filter(|l| l.split(' ').nth(1).is_some_and(|r| randoms.contains(r))).cloned().collect()
}

/// Waits until the key log holds every line of `want` (it is written as the
/// secrets come, while ecapture runs).
fn wait_lines(path: &Path, want: &BTreeSet<String>) -> BTreeSet<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let have = key_lines(path);
        if want.is_subset(&have) {
            return have;
        }
        if Instant::now() > deadline {
            let missing: Vec<&String> = want.difference(&have).collect();
            panic!("the key log {} lacks {} lines, e.g. {:?}", path.display(), missing.len(), missing.first());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs tests/keylog_client.py; returns how many connections were resumed.
fn py_keylog_client(port: u16, version: &str, count: u32, keylog: &Path, cipher: Option<&str>) -> u32 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keylog_client.py");
    let mut cmd = python_as(None);
    cmd.arg(script).arg(port.to_string()).arg(version).arg(count.to_string()).arg(keylog);
    cmd.args(cipher);
    let out = cmd.stderr(Stdio::inherit()).output().expect("run keylog_client.py");
    assert!(out.status.success(), "keylog_client.py {version} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().strip_prefix("RESUMED ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("client said {text:?}"))
}

fn ready(test: &str) -> bool {
    e2e_enabled(test) && tool("tcpdump") && tool("tshark")
}

/// `-m keylog`, the secrets read on the server's side (Python's ssl, Debian's
/// OpenSSL 3): TLS 1.3 and TLS 1.2 (AES-GCM and ChaCha20-Poly1305), several
/// connections each, every one after the first resumed (1.3 PSK, 1.2 ticket).
#[test]
fn keylog_python_tls13_tls12_resumed_tshark_decrypts_and_lines_match_openssls() {
    if !ready("keylog_python") {
        return;
    }
    let dir = TempDir::new("keylog-py");
    let (server, port) = py_server(dir.path(), "127.0.0.1");
    let rec = Recording::start(dir.path(), port);
    let keys = dir.path().join("keys.log");
    let pid = server.pid().to_string();
    let ec = Ecapture::start(&["tls", "-m", "keylog", "-k", keys.to_str().unwrap(), "--pid", &pid]);
    let theirs_file = dir.path().join("openssl.log");
    let runs = [("1.3", 3, None), ("1.2", 3, Some("ECDHE-ECDSA-AES128-GCM-SHA256")), ("1.2", 2, Some("ECDHE-ECDSA-CHACHA20-POLY1305"))];
    for (version, count, cipher) in runs {
        let resumed = py_keylog_client(port, version, count, &theirs_file, cipher);
        assert_eq!(resumed, count - 1, "TLS {version}: every connection after the first resumes");
    }
    let theirs = key_lines(&theirs_file);
    assert_eq!(theirs.iter().filter(|l| l.starts_with("CLIENT_RANDOM ")).count(), 5, "{theirs:?}");
    assert_eq!(theirs.iter().filter(|l| l.starts_with("CLIENT_TRAFFIC_SECRET_0 ")).count(), 3);
    // Written while ecapture runs (flushed as they come), not at its exit.
    let ours = wait_lines(&keys, &theirs);
    let (st, _, events, stderr) = ec.stop();
    assert!(st.success(), "ecapture failed: {stderr:?}");
    assert!(events.is_empty(), "-m keylog prints no events");
    assert_eq!(ours_for(&ours, &theirs), theirs, "our lines are OpenSSL's, line for line");
    assert_eq!(std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777, 0o600);
    let summary = stderr.iter().find(|l| l.contains("secrets of")).cloned().unwrap_or_default();
    assert!(summary.contains("secrets of 8 handshakes"), "{stderr:?}");
    assert!(summary.contains("every connection seen got its keys"), "{summary}");

    let pcap = rec.finish(8);
    let http = tshark_http(&pcap, port, Some(&keys));
    for (version, count, _) in runs {
        for i in 0..count {
            let uri = format!("/keylog/{version}/{i}");
            assert!(http.iter().any(|l| l.starts_with(&format!("{uri}\t"))), "tshark does not show {uri}: {http:?}");
        }
    }
    assert_eq!(http.iter().filter(|l| l.ends_with("\t200")).count(), 8, "every response decrypted: {http:?}");
    assert!(tshark_http(&pcap, port, None).is_empty(), "without the key log tshark sees no HTTP");
}

/// `-m text -k FILE`: plaintext events and keys in one run; curl (TLS 1.2
/// AES-GCM, TLS 1.2 ChaCha20-Poly1305, TLS 1.3) against tests/tls_server.py
/// (its answers have a Content-Length: tshark shows them whole), compared
/// with curl's SSLKEYLOGFILE.
#[test]
fn keylog_text_mode_with_k_curl_events_and_keys() {
    if !ready("keylog_curl") {
        return;
    }
    let dir = TempDir::new("keylog-curl");
    let (_server, port) = py_server(dir.path(), "127.0.0.1");
    let rec = Recording::start(dir.path(), port);
    let keys = dir.path().join("keys.log");
    let ec = Ecapture::start(&["tls", "-k", keys.to_str().unwrap()]);
    let theirs_file = dir.path().join("curl.log");
    let url = format!("https://127.0.0.1:{port}/");
    let mut pids = Vec::new();
    for extra in CURL_TLS_VARIANTS {
        let mut child = Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "--max-time", "10"])
            .args(extra)
            .arg(&url)
            .env("SSLKEYLOGFILE", &theirs_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn curl");
        pids.push(child.id());
        assert!(child.wait().expect("wait curl").success(), "curl {extra:?}");
    }
    let theirs = key_lines(&theirs_file);
    assert_eq!(theirs.iter().filter(|l| l.starts_with("CLIENT_RANDOM ")).count(), 2, "{theirs:?}");
    let ours = wait_lines(&keys, &theirs);
    for pid in &pids {
        ec.wait_event("curl's GET", |e| e.pid == *pid && e.payload.starts_with(b"GET / HTTP/1.1"));
    }
    let (st, _, _, stderr) = ec.stop();
    assert!(st.success(), "{stderr:?}");
    assert_eq!(ours_for(&ours, &theirs), theirs, "our lines are curl's, line for line");
    let pcap = rec.finish(3);
    let http = tshark_http(&pcap, port, Some(&keys));
    let (gets, oks) = (http.iter().filter(|l| l.starts_with("/\t")).count(), http.iter().filter(|l| l.ends_with("\t200")).count());
    if (gets, oks) != (3, 3) {
        let all = every_packet(&pcap, port, &keys);
        panic!("three GETs and answers decrypted, not {gets} and {oks}: {http:?}\nall packets:\n{all}\ntheirs:\n{theirs:?}");
    }
}

/// nginx with HTTP/2 (its own handshakes, through SSL_do_handshake), several
/// curl connections with several streams each in one run: tshark decrypts
/// every HTTP/2 request and response with the keys read on nginx's side.
#[test]
fn keylog_nginx_http2_many_connections() {
    if !ready("keylog_nginx") || !tool("nginx") {
        return;
    }
    let dir = TempDir::new("keylog-nginx");
    let server = nginx(dir.path());
    let rec = Recording::start(dir.path(), server.port);
    let keys = dir.path().join("keys.log");
    let nginx_pid = server_pid(dir.path());
    let ec = Ecapture::start(&["tls", "-m", "key", "-k", keys.to_str().unwrap(), "--pid", &nginx_pid]);
    let theirs_file = dir.path().join("curl.log");
    let base = format!("https://127.0.0.1:{}", server.port);
    for _ in 0..4 {
        let st = Command::new("curl")
            .args(["-sk", "--http2", "-o", "/dev/null", "-o", "/dev/null", "--max-time", "10"])
            .arg(format!("{base}/a.txt"))
            .arg(format!("{base}/b.txt"))
            .env("SSLKEYLOGFILE", &theirs_file)
            .stdin(Stdio::null())
            .status()
            .expect("run curl");
        assert!(st.success());
    }
    let theirs = key_lines(&theirs_file);
    // nginx 1.22 (Debian 12) speaks TLS 1.2 unless told otherwise.
    let handshakes: BTreeSet<&str> = theirs.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(handshakes.len(), 4, "{theirs:?}");
    let ours = wait_lines(&keys, &theirs);
    let (st, _, _, stderr) = ec.stop();
    assert!(st.success(), "{stderr:?}");
    assert_eq!(ours_for(&ours, &theirs), theirs, "our lines are curl's, line for line");
    let pcap = rec.finish(4);
    let text = tshark(&pcap, server.port, Some(&keys), Some("http2.header"), &["http2.headers.path", "http2.headers.status"]);
    let count = |what: &str| text.matches(what).count();
    if (count("/a.txt"), count("/b.txt"), count("200")) != (4, 4, 8) {
        let all = every_packet(&pcap, server.port, &keys);
        panic!("not every HTTP/2 request and response decrypted: {text}\nall packets:\n{all}\nkeys:\n{ours:?}");
    }
}

/// OpenSSL linked statically into a program (`--libssl PROGRAM`):
/// tests/kernels/tls_selftest.c, built here against Debian's libssl.a, its
/// client's own key log (TLS_SELFTEST_KEYLOG) the reference.
#[test]
fn keylog_static_openssl_program() {
    if !e2e_enabled("keylog_static_openssl") || !tool("gcc") {
        return;
    }
    let dir = TempDir::new("keylog-static");
    let prog = dir.path().join("tls_selftest");
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&prog)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernels/tls_selftest.c"))
        .args(["-lssl", "-lcrypto", "-lpthread"])
        .output()
        .expect("run gcc");
    assert!(out.status.success(), "building tls_selftest: {}", String::from_utf8_lossy(&out.stderr));
    let (cert, key) = make_cert(dir.path());
    let keys = dir.path().join("keys.log");
    let ec = Ecapture::start(&["tls", "--libssl", prog.to_str().unwrap(), "-m", "keylog", "-k", keys.to_str().unwrap()]);
    ec.wait_stderr("TLS keys read with the offsets of 3.");
    let theirs_file = dir.path().join("openssl.log");
    for _ in 0..2 {
        let st = Command::new(&prog)
            .arg(&cert)
            .arg(&key)
            .arg("1000")
            .env("TLS_SELFTEST_KEYLOG", &theirs_file)
            .stdout(Stdio::null())
            .status()
            .expect("run tls_selftest");
        assert!(st.success(), "tls_selftest failed");
    }
    let theirs = key_lines(&theirs_file);
    assert_eq!(theirs.iter().filter_map(|l| l.split(' ').nth(1)).collect::<BTreeSet<_>>().len(), 2, "{theirs:?}");
    let ours = wait_lines(&keys, &theirs);
    let (st, _, _, stderr) = ec.stop();
    assert!(st.success(), "{stderr:?}");
    assert_eq!(ours_for(&ours, &theirs), theirs, "our lines are OpenSSL's, line for line");
}

/// The Go client of the gotls fixture (tests/gotls/peer.go) against its
/// server: `proto` h1 or h2, `size` bytes posted and fetched; its own key
/// log (KeyLogWriter) appended to `theirs`; TLS 1.2 with `tls12`.
fn go_client(peer: &Path, port: u16, proto: &str, size: usize, theirs: &Path, tls12: bool) {
    let mut cmd = Command::new(peer);
    cmd.args(["client", &port.to_string(), proto, &size.to_string()]).env("SSLKEYLOGFILE", theirs);
    if tls12 {
        cmd.env("PEER_TLS12", "1");
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn the Go client");
    use std::io::Write;
    child.stdin.take().expect("client stdin").write_all(b"go\n").expect("start the Go client");
    let out = child.wait_with_output().expect("wait for the Go client");
    assert!(out.status.success(), "the Go client failed ({proto})");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok HTTP/"), "{}", String::from_utf8_lossy(&out.stdout));
}

/// `gotls -m keylog`: Go's crypto/tls, client and server both hooked (one
/// executable), for each Go of the fixture, with symbols and PIE stripped
/// (writeKeyLog from .gopclntab): HTTP/1.1 and HTTP/2 over TLS 1.3 and
/// HTTP/1.1 over TLS 1.2. Our lines are those Go's own KeyLogWriter
/// wrote for the same handshakes, and tshark decrypts every request and
/// response with ours.
#[test]
fn keylog_go_client_and_server_tshark_decrypts_and_lines_match_gos() {
    if !ready("keylog_go") {
        return;
    }
    const SIZE: usize = 3000;
    for (v, variant) in go_versions().into_iter().flat_map(|v| [(v.clone(), "peer"), (v, "peer-pie-stripped")]) {
        let v = format!("{v} {variant}");
        let Some(fixture) = gotls_fixture("keylog_go", v.split(' ').next().unwrap_or_default(), variant) else { return };
        let dir = TempDir::new("keylog-go");
        // keylog_all runs the same fixture beside this test.
        let peer = own_copy(&fixture, dir.path());
        let port = free_port();
        let _server = peer_server(&peer, dir.path(), port);
        let rec = Recording::start(dir.path(), port);
        let keys = dir.path().join("keys.log");
        let ec = Ecapture::start(&["gotls", "--elfpath", peer.to_str().unwrap(), "-m", "keylog", "-k", keys.to_str().unwrap()]);
        ec.wait_stderr("TLS keys read at crypto/tls.(*Config).writeKeyLog");
        let theirs_file = dir.path().join("go.log");
        go_client(&peer, port, "h1", SIZE, &theirs_file, false);
        go_client(&peer, port, "h2", SIZE, &theirs_file, false);
        go_client(&peer, port, "h1", SIZE, &theirs_file, true);
        let theirs = key_lines(&theirs_file);
        let randoms: BTreeSet<&str> = theirs.iter().filter_map(|l| l.split(' ').nth(1)).collect();
        assert_eq!(randoms.len(), 3, "go{v}: three handshakes: {theirs:?}");
        assert_eq!(theirs.iter().filter(|l| l.starts_with("CLIENT_RANDOM ")).count(), 1, "go{v}: one TLS 1.2: {theirs:?}");
        assert_eq!(theirs.iter().filter(|l| l.starts_with("SERVER_TRAFFIC_SECRET_0 ")).count(), 2, "go{v}: {theirs:?}");
        let ours = wait_lines(&keys, &theirs);
        let (st, _, events, stderr) = ec.stop();
        assert!(st.success(), "go{v}: {stderr:?}");
        assert!(events.is_empty(), "-m keylog prints no events");
        assert_eq!(ours_for(&ours, &theirs), theirs, "go{v}: our lines are Go's, line for line");
        assert_eq!(ours.len(), theirs.len(), "go{v}: no other lines: {ours:?}");
        let summary = stderr.iter().find(|l| l.contains("secrets of")).cloned().unwrap_or_default();
        assert!(summary.contains("secrets of 3 handshakes"), "go{v}: {stderr:?}");
        assert!(summary.contains("every connection seen got its keys"), "go{v}: {summary}");

        let pcap = rec.finish(3);
        let http = tshark_http(&pcap, port, Some(&keys));
        let uris = |u: &str| http.iter().filter(|l| l.starts_with(&format!("{u}\t"))).count();
        let data = format!("/data?n={SIZE}");
        let oks = http.iter().filter(|l| l.ends_with("\t200")).count();
        let h2 = tshark(&pcap, port, Some(&keys), Some("http2.header"), &["http2.headers.path", "http2.headers.status"]);
        if (uris("/echo"), uris(&data), oks) != (2, 2, 4) || h2.matches("/echo").count() != 1 || h2.matches(&data).count() != 1 || h2.matches("200").count() < 2 {
            let all = every_packet(&pcap, port, &keys);
            panic!("go{v}: not every request and response decrypted: {http:?}\nHTTP/2: {h2}\nall packets:\n{all}");
        }
        assert!(tshark_http(&pcap, port, None).is_empty(), "without the key log tshark sees no HTTP");
    }
}

/// `all -m keylog`: Go's keys come too (from the program named with
/// --elfpath), and each module that cannot give keys says so with a warning
/// instead of silently giving none.
#[test]
fn keylog_all_gets_go_keys_and_warns_for_gnutls_and_nss() {
    if !ready("keylog_all") {
        return;
    }
    let v = go_versions().remove(0);
    let Some(fixture) = gotls_fixture("keylog_all", &v, "peer") else { return };
    let dir = TempDir::new("keylog-all");
    let peer = own_copy(&fixture, dir.path());
    let port = free_port();
    let _server = peer_server(&peer, dir.path(), port);
    let keys = dir.path().join("keys.log");
    let ec = Ecapture::start(&["all", "--elfpath", peer.to_str().unwrap(), "-m", "keylog", "-k", keys.to_str().unwrap()]);
    ec.wait_stderr("probes attached");
    let theirs_file = dir.path().join("go.log");
    go_client(&peer, port, "h1", 100, &theirs_file, false);
    let theirs = key_lines(&theirs_file);
    assert_eq!(theirs.len(), 4, "one TLS 1.3 handshake: {theirs:?}");
    let ours = wait_lines(&keys, &theirs);
    let (st, _, _, stderr) = ec.stop();
    assert!(st.success(), "{stderr:?}");
    assert_eq!(ours_for(&ours, &theirs), theirs);
    for (module, lib) in [("gnutls", "libgnutls"), ("nss", "libnspr4")] {
        let hooked = stderr.iter().any(|l| l.contains("hooking ") && l.contains(lib));
        let warned = stderr.iter().any(|l| l.contains("WARN") && l.contains(&format!("module {module}: no TLS keys to {}", keys.display())));
        assert_eq!(warned, hooked, "{module}: a warning when (and only when) it is hooked: {stderr:?}");
    }
}

/// BoringSSL linked into a program (`--libssl PROGRAM`): its secrets are
/// read at bssl::ssl_log_secret as it makes them (it frees the handshake
/// secrets afterwards); TLS 1.3 with the program's own key log callback set,
/// then TLS 1.3 and TLS 1.2 without one. Our lines are BoringSSL's own for
/// the first, and tshark decrypts all three with ours.
#[test]
fn keylog_boringssl_program() {
    if !ready("keylog_boringssl") {
        return;
    }
    let dir_path = std::env::var_os("BORINGSSL_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/boringssl"));
    let Some(peer) = built_fixture("keylog_boringssl", dir_path.join("bssl_peer"), "make boringssl` (tests/boringssl/build.sh") else {
        return;
    };
    let dir = TempDir::new("keylog-bssl");
    let port = free_port();
    let rec = Recording::start(dir.path(), port);
    let keys = dir.path().join("keys.log");
    let ec = Ecapture::start(&["tls", "--libssl", peer.to_str().unwrap(), "-m", "keylog", "-k", keys.to_str().unwrap()]);
    ec.wait_stderr("TLS keys read at bssl::ssl_log_secret");
    let theirs_file = dir.path().join("bssl.log");
    for (extra, own_log) in [(&[][..], true), (&[][..], false), (&["tls12"][..], false)] {
        let server = peer_server(&peer, dir.path(), port);
        let mut cmd = Command::new(&peer);
        cmd.arg("client").arg(port.to_string()).args(extra);
        if own_log {
            cmd.env("SSLKEYLOGFILE", &theirs_file);
        }
        let out = cmd.stdin(Stdio::null()).stderr(Stdio::inherit()).output().expect("run bssl_peer client");
        assert!(out.status.success(), "bssl_peer client {extra:?}");
        let mut server = server;
        let _ = server.0.wait();
    }
    let theirs = key_lines(&theirs_file);
    assert_eq!(theirs.len(), 5, "BoringSSL's own TLS 1.3 lines: {theirs:?}");
    let ours = wait_lines(&keys, &theirs);
    let want_lines = 5 + 5 + 1;
    let deadline = Instant::now() + PATIENCE;
    while key_lines(&keys).len() < want_lines && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (st, _, _, stderr) = ec.stop();
    assert!(st.success(), "{stderr:?}");
    assert_eq!(ours_for(&ours, &theirs), theirs, "our lines are BoringSSL's, line for line");
    let ours = key_lines(&keys);
    assert_eq!(ours.len(), want_lines, "two TLS 1.3 handshakes and one TLS 1.2: {ours:?}");
    assert_eq!(ours.iter().filter(|l| l.starts_with("CLIENT_RANDOM ")).count(), 1, "{ours:?}");
    let summary = stderr.iter().find(|l| l.contains("secrets of")).cloned().unwrap_or_default();
    assert!(summary.contains("every connection seen got its keys"), "{summary}");
    let pcap = rec.finish(3);
    let http = tshark_http(&pcap, port, Some(&keys));
    let (puts, oks) = (http.iter().filter(|l| l.starts_with("/bssl\t")).count(), http.iter().filter(|l| l.ends_with("\t200")).count());
    if (puts, oks) != (3, 3) {
        let all = every_packet(&pcap, port, &keys);
        panic!("three PUTs and answers decrypted, not {puts} and {oks}: {http:?}\nall packets:\n{all}");
    }
}

/// The pid nginx wrote in `dir`.
fn server_pid(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("nginx.pid")).expect("nginx.pid").trim().to_string()
}

/// A key log that cannot be created: one line, exit 2, before capture starts.
#[test]
fn keylog_unwritable_path_is_a_usage_error() {
    if !e2e_enabled("keylog_unwritable") {
        return;
    }
    let dir = TempDir::new("keylog-bad");
    for bad in [dir.path().join("no/such/dir/keys.log"), dir.path().to_path_buf()] {
        let mut child = Command::new(bin())
            .args(["tls", "-m", "keylog", "-k"])
            .arg(&bad)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ecapture");
        let mut err = String::new();
        child.stderr.take().expect("stderr").read_to_string(&mut err).expect("read stderr");
        let st = child.wait().expect("wait");
        assert_eq!(st.code(), Some(2), "{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(lines[0].contains("--keylogfile") && lines[0].contains(bad.to_str().unwrap()), "{err}");
    }
}
