//! End-to-end tests: the real binary, as root, against real TLS traffic on
//! loopback. Each test starts its own servers on its own ports and looks only
//! at events of its own processes, so the tests can run in parallel.

mod util;

use std::process::{Command, Stdio};
use std::time::Duration;

use util::*;

/// A request from curl and the response it reads, with pid, comm and tuple.
fn curl_exchange(test: &str, tls_args: &[&str], version: &str) {
    if !e2e_enabled(test) {
        return;
    }
    let dir = TempDir::new(test);
    let port = free_port();
    let server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let ec = Ecapture::start(&["tls"]);
    let (pid, st) = curl(&format!("https://127.0.0.1:{port}/{test}"), tls_args);
    assert!(st.success(), "curl failed: {st}");

    let req = ec.wait_event("curl's request", |e| e.pid == pid && e.dir == "WRITE");
    assert_eq!(req.comm, "curl");
    assert_eq!(req.tid, pid, "curl is single-threaded here");
    assert_eq!(req.version, version);
    let text = String::from_utf8_lossy(&req.payload);
    assert!(text.starts_with(&format!("GET /{test} HTTP/1.1\r\n")), "{text}");
    assert!(text.contains(&format!("Host: 127.0.0.1:{port}\r\n")), "{text}");
    assert_eq!(req.dst, format!("127.0.0.1:{port}"));
    assert!(req.src.starts_with("127.0.0.1:") && req.src != req.dst, "{}", req.src);
    assert!(req.fd >= 3);

    let resp = ec.wait_event("curl's response", |e| e.pid == pid && e.dir == "READ");
    assert!(resp.payload.starts_with(b"HTTP/1.0 200 ok\r\n"), "{:?}", String::from_utf8_lossy(&resp.payload));
    assert_eq!((resp.src.as_str(), resp.dst.as_str()), (req.dst.as_str(), req.src.as_str()), "a read flows server to client");
    assert_eq!(resp.fd, req.fd);
    assert_eq!(resp.version, version);
    let (status, _, all, _) = ec.stop();
    assert!(status.success(), "{status}");
    // s_server -www reads and writes through an SSL BIO (BIO_f_ssl), which
    // calls OpenSSL's internals rather than SSL_read/SSL_write: it is not
    // seen, like under eCapture. Servers calling SSL_read are (next test).
    assert!(all.iter().all(|e| e.pid != server.pid()));
}

#[test]
fn curl_tls13_request_and_response() {
    curl_exchange("curl13", &["--tlsv1.3"], "TLS1.3");
}

#[test]
fn curl_tls12_request_and_response() {
    curl_exchange("curl12", &["--tlsv1.2", "--tls-max", "1.2"], "TLS1.2");
}

#[test]
fn server_side_reads_and_writes_with_client_tuple() {
    if !e2e_enabled("server_side") {
        return;
    }
    let dir = TempDir::new("server");
    let (server, port) = py_server(dir.path(), "127.0.0.1");
    let ec = Ecapture::start(&["tls"]);
    let (cpid, st) = curl(&format!("https://127.0.0.1:{port}/server-side"), &[]);
    assert!(st.success());
    let creq = ec.wait_event("curl's request", |e| e.pid == cpid && e.dir == "WRITE");
    let sreq = ec.wait_event("the server reading it", |e| e.pid == server.pid() && e.dir == "READ");
    assert_eq!(sreq.comm, "python3");
    assert_eq!(sreq.payload, creq.payload, "both ends see the same plaintext");
    assert_eq!((sreq.src.as_str(), sreq.dst.as_str()), (creq.src.as_str(), creq.dst.as_str()));
    assert_ne!(sreq.tid, server.pid(), "handled on a worker thread");
    let sresp = ec.wait_event("the server's response", |e| e.pid == server.pid() && e.dir == "WRITE");
    assert!(sresp.payload.ends_with(b"hello from /server-side, 0 body bytes"));
    assert_eq!((sresp.src.as_str(), sresp.dst.as_str()), (creq.dst.as_str(), creq.src.as_str()));
    assert_eq!(sresp.version, "TLS1.3");
    ec.stop();
}

/// A Python TLS server and a file of `size` pattern bytes to PUT to it.
struct Bulk {
    _dir: TempDir,
    server: Proc,
    port: u16,
    data: Vec<u8>,
    file: std::path::PathBuf,
}

fn bulk(tag: &str, size: usize) -> Bulk {
    bulk_as(None, tag, size)
}

/// `bulk` with the server running as user `uid`.
fn bulk_as(uid: Option<u32>, tag: &str, size: usize) -> Bulk {
    let dir = TempDir::new(tag);
    let (server, port) = py_server_as(uid, dir.path(), "127.0.0.1");
    let data = pattern(size);
    let file = dir.path().join("payload.txt");
    std::fs::write(&file, &data).unwrap();
    Bulk { _dir: dir, server, port, data, file }
}

/// (lost, incomplete, truncated) from the shutdown summary line.
fn summary_counts(stderr: &[String]) -> (u64, u64, u64) {
    let line = stderr.iter().find(|l| l.contains(" bytes captured; lost ")).expect("a summary line");
    let after = |key: &str| line.split(key).nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok());
    let before = |key: &str| line.split(key).next().and_then(|s| s.rsplit(' ').next()).and_then(|n| n.parse().ok());
    let (lost, incomplete, truncated) = (after("lost "), before(" incomplete"), before(" truncated"));
    (lost.expect(line), incomplete.expect(line), truncated.expect(line))
}

/// The client writes the PUT head and then the 1 MiB body in one
/// SSL_write_ex; the server reads it in 16 KiB records. Both sides come out
/// as one HTTP request message, byte-exact.
#[test]
fn python_ssl_write_ex_of_one_mib_arrives_whole_and_exact() {
    if !e2e_enabled("python_ssl") {
        return;
    }
    // Client and server as their own user, captured with --uid: "nothing
    // lost" is about this test's traffic, not the bursts of tests beside it.
    const UID: u32 = 61053;
    let bulk = bulk_as(Some(UID), "python", 1 << 20);
    let (server, port, data) = (&bulk.server, bulk.port, &bulk.data);
    let ec = Ecapture::start(&["tls", "--uid", &UID.to_string()]);
    let pid = py_client_as(Some(UID), port, &[bulk.file.as_os_str()]);
    let header = format!("PUT /bulk HTTP/1.1\r\nContent-Length: {}\r\n\r\n", data.len());
    let mut want = header.into_bytes();
    want.extend_from_slice(data);
    let ev = ec.wait_event("python's PUT", |e| e.pid == pid && e.dir == "WRITE" && e.length > 1000);
    assert_eq!(ev.comm, "python3");
    assert_eq!(ev.length, want.len(), "one event for the whole request");
    assert!(ev.payload == want, "payload differs from what python wrote");
    assert!(ev.notes.is_empty(), "{:?}", ev.notes);
    assert_eq!(ev.dst, format!("127.0.0.1:{port}"));
    let got = ec.wait_event("the server's read of it", |e| e.pid == server.pid() && e.dir == "READ");
    assert!(got.payload == want, "server-side reads, assembled, differ");
    let (status, _, _, stderr) = ec.stop();
    assert!(status.success());
    let (lost, incomplete, _) = summary_counts(&stderr);
    assert_eq!((lost, incomplete), (0, 0), "{stderr:?}");
}

#[test]
fn calls_beyond_maxpayload_are_marked_truncated() {
    if !e2e_enabled("truncated") {
        return;
    }
    let bulk = bulk("truncated", 256 << 10);
    let data = &bulk.data;
    let ec = Ecapture::start(&["tls", "--maxpayload", "64K"]);
    let pid = python_put(bulk.port, &bulk.file);
    let ev = ec.wait_event("the big write", |e| e.pid == pid && e.dir == "WRITE" && e.length > 1000);
    assert_eq!(ev.length, 64 << 10, "captured up to the cap");
    assert!(ev.payload == data[..64 << 10], "the captured part is the start of the write");
    assert_eq!(ev.notes, vec![format!("[ecapture: the call transferred {} bytes; captured the first 65536 (--maxpayload)]", data.len())]);
    let (status, _, _, stderr) = ec.stop();
    assert!(status.success());
    // Other tests' big writes may be truncated by this instance too.
    assert!(summary_counts(&stderr).2 >= 1, "{stderr:?}");
}

#[test]
fn losses_are_counted_and_reported() {
    if !e2e_enabled("losses") {
        return;
    }
    let bulk = bulk("losses", 256 << 10);
    // 2 pages per CPU: a 32 KiB chunk can never fit, small records can.
    let ec = Ecapture::start(&["tls", "--mapsize", "2"]);
    let pid = python_put(bulk.port, &bulk.file);
    let head = ec.wait_event("the small PUT header", |e| e.pid == pid && e.dir == "WRITE");
    assert!(head.payload.starts_with(b"PUT /bulk "));
    let (status, _, all, stderr) = ec.stop();
    assert!(status.success());
    assert!(!all.iter().any(|e| e.pid == pid && e.length == bulk.data.len() && e.notes.is_empty()), "it cannot have fit");
    let (lost, _, _) = summary_counts(&stderr);
    assert!(lost >= 8, "256 KiB is 8 chunks, none of which fit: {stderr:?}");
}

#[test]
fn ipv6_loopback_tuple() {
    if !e2e_enabled("ipv6") {
        return;
    }
    let dir = TempDir::new("ipv6");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("[::1]:{port}"), true);
    let ec = Ecapture::start(&["tls"]);
    let (pid, st) = curl(&format!("https://[::1]:{port}/v6"), &[]);
    assert!(st.success(), "curl over IPv6 failed: {st}");
    let req = ec.wait_event("curl's request over IPv6", |e| e.pid == pid && e.dir == "WRITE");
    assert_eq!(req.dst, format!("[::1]:{port}"));
    assert!(req.src.starts_with("[::1]:"), "{}", req.src);
    let resp = ec.wait_event("curl's response over IPv6", |e| e.pid == pid && e.dir == "READ");
    assert_eq!(resp.src, format!("[::1]:{port}"));
    ec.stop();
}

#[test]
fn pid_filter_excludes_other_processes() {
    if !e2e_enabled("pid_filter") {
        return;
    }
    let dir = TempDir::new("pidfilter");
    let (a, pa) = py_server(dir.path(), "127.0.0.1");
    let (b, pb) = py_server(dir.path(), "127.0.0.1");
    let ec = Ecapture::start(&["tls", "--pid", &a.pid().to_string()]);
    // Traffic to B first; then to A, whose events mark that B's would have
    // arrived too (the capture path is the same).
    let (cb, st) = curl(&format!("https://127.0.0.1:{pb}/to-b"), &[]);
    assert!(st.success());
    let (ca, st) = curl(&format!("https://127.0.0.1:{pa}/to-a"), &[]);
    assert!(st.success());
    let ev = ec.wait_event("server A's read", |e| e.pid == a.pid() && e.dir == "READ");
    assert!(ev.payload.starts_with(b"GET /to-a "));
    let (status, _, all, _) = ec.stop();
    assert!(status.success());
    for e in &all {
        assert_eq!(e.pid, a.pid(), "--pid {} let through an event of pid {} ({})", a.pid(), e.pid, e.comm);
    }
    assert!(all.iter().all(|e| e.pid != b.pid() && e.pid != ca && e.pid != cb));
    assert!(all.iter().any(|e| e.dir == "WRITE"), "A's response is there too");
}

#[test]
fn uid_filter_keeps_only_that_user() {
    if !e2e_enabled("uid_filter") {
        return;
    }
    let dir = TempDir::new("uidfilter");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let ec = Ecapture::start(&["tls", "--uid", "65534"]);
    let (root_pid, st) = curl(&format!("https://127.0.0.1:{port}/as-root"), &[]);
    assert!(st.success());
    let mut nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "curl", "-sk", "-o", "/dev/null"])
        .arg(format!("https://127.0.0.1:{port}/as-nobody"))
        .spawn()
        .expect("run curl as nobody");
    let nobody_pid = nobody.id();
    assert!(nobody.wait().unwrap().success());
    let ev = ec.wait_event("nobody's request", |e| e.pid == nobody_pid && e.dir == "WRITE");
    assert!(ev.payload.starts_with(b"GET /as-nobody "));
    let (_, _, all, _) = ec.stop();
    assert!(all.iter().all(|e| e.pid != root_pid), "--uid 65534 let root's curl through");
}

#[test]
fn sigterm_detaches_everything_prints_summary_and_exits_0() {
    if !e2e_enabled("sigterm") {
        return;
    }
    let dir = TempDir::new("sigterm");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let ec = Ecapture::start(&["tls"]);
    let (progs, links) = bpf_ids(ec.pid());
    assert!(!progs.is_empty(), "ecapture holds BPF programs while running");
    assert!(!links.is_empty(), "ecapture holds BPF links while running");
    let (pid, _) = curl(&format!("https://127.0.0.1:{port}/bye"), &[]);
    ec.wait_event("curl's request", |e| e.pid == pid);

    let (status, took, _, stderr) = ec.stop();
    assert_eq!(status.code(), Some(0), "stderr: {stderr:?}");
    assert!(took < Duration::from_secs(1), "took {took:?} to exit after SIGTERM");
    let summary = stderr.last().expect("a summary line");
    assert!(summary.contains(" events, ") && summary.contains("bytes captured; lost "), "{summary}");
    // The kernel frees programs and links after an RCU grace period: give
    // it a moment, there is no signal to wait for.
    let gone = |kind: &str, id: u32| {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while bpf_object_exists(kind, id) {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    };
    for id in progs {
        assert!(gone("prog", id), "BPF program {id} left behind");
    }
    for id in links {
        assert!(gone("link", id), "BPF link {id} left behind");
    }
}

#[test]
fn classic_uprobes_capture_too() {
    if !e2e_enabled("classic") {
        return;
    }
    let dir = TempDir::new("classic");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let ec = Ecapture::start_env(&["tls", "-d"], &[("ECAPTURE_CLASSIC_UPROBES", "1")]);
    ec.wait_stderr("loaded (Classic)");
    let (pid, st) = curl(&format!("https://127.0.0.1:{port}/classic"), &[]);
    assert!(st.success());
    let req = ec.wait_event("curl's request", |e| e.pid == pid && e.dir == "WRITE");
    assert!(req.payload.starts_with(b"GET /classic "));
    let (status, _, _, _) = ec.stop();
    assert!(status.success());
}

#[test]
fn hex_dump_and_tsize() {
    if !e2e_enabled("hex") {
        return;
    }
    let dir = TempDir::new("hex");
    let (server, port) = py_server(dir.path(), "127.0.0.1");
    let ec = Ecapture::start(&["tls", "--hex", "-t", "12", "--pid", &server.pid().to_string()]);
    let (_, st) = curl(&format!("https://127.0.0.1:{port}/hexhexhex"), &[]);
    assert!(st.success());
    let ev = ec.wait_event("s_server's read", |e| e.pid == server.pid() && e.dir == "READ");
    assert!(ev.length > 12);
    assert_eq!(ev.payload, b"GET /hexhexh", "the hex dump decodes to the first 12 bytes");
    assert!(ev.notes.iter().any(|n| n.contains(&format!("showing 12 of {} bytes", ev.length))), "{:?}", ev.notes);
    ec.stop();
}

/// Runs the binary to completion: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).stdin(Stdio::null()).output().expect("run ecapture");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_needing_root_is_one_clear_line() {
    if !e2e_enabled("bad_input_root") {
        return;
    }
    let (code, out, err) = run(&["tls", "--libssl", "/nonexistent/libssl.so.3"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(err, "ecapture: --libssl /nonexistent/libssl.so.3: no such file\n");

    let (code, _, err) = run(&["tls", "--libssl", "/bin/true"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("ecapture: --libssl /bin/true: does not define SSL_read and SSL_write"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let (code, _, err) = run(&["tls", "--pid", "999999999"]);
    assert_eq!(code, 2);
    assert_eq!(err, "ecapture: --pid 999999999: no such process\n");

    // Not root: drop to nobody.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin())
        .arg("tls")
        .output()
        .expect("run setpriv");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("ecapture: must run as root"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Root without CAP_SYS_ADMIN, as in an unprivileged container.
    let out = Command::new("setpriv").args(["--bounding-set=-sys_admin"]).arg(bin()).arg("tls").output().expect("run setpriv");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("ecapture: running as root but without CAP_SYS_ADMIN"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// The harness's own output parser (tests/util), on a known sample.
#[test]
fn parses_text_and_hex_events() {
    let out = b"2026-11-29T13:44:00.220105Z PID:1, Comm:curl, TID:2, FD:5, WRITE, Src:127.0.0.1:1, Dest:127.0.0.1:2, TLS1.3, Length:5\n\
hello\n\n\
2026-11-29T13:44:00.220105Z PID:1, Comm:c, TID:2, FD:5, READ, Src:[::1]:1, Dest:[::1]:2, TLS1.2, Length:3\n\
00000000  16 03 01                                          |...|\n\
[ecapture: note]\n\n";
    let (a, n) = parse_event(out, false).unwrap();
    assert_eq!((a.pid, a.comm.as_str(), a.payload.as_slice()), (1, "curl", &b"hello"[..]));
    let (b, _) = parse_event(&out[n..], true).unwrap();
    assert_eq!(b.payload, vec![0x16, 3, 1]);
    assert_eq!(b.notes, vec!["[ecapture: note]".to_string()]);
    assert_eq!(b.src, "[::1]:1");
    // A rendering runs to the next header.
    let r = b"2026-11-29T13:44:00.220105Z PID:1, Comm:c, TID:2, FD:5, READ, Src:[::1]:1, Dest:[::1]:2, TLS1.2, Length:300\n\
HTTP/2 HEADERS stream=1 length=5\nheader field \":path\" = \"/a\"\n\n\
2026-11-29T13:44:00.220105Z PID:1, Comm:curl, TID:2, FD:5, WRITE, Src:127.0.0.1:1, Dest:127.0.0.1:2, TLS1.3, Length:2\nhi\n\n";
    let (c, n) = parse_event(r, false).unwrap();
    assert!(c.rendered && String::from_utf8_lossy(&c.payload).contains(":path"));
    let (d, _) = parse_event(&r[n..], true).unwrap();
    assert_eq!(d.payload, b"hi");
}

#[test]
fn compat_build_captures_too() {
    if !e2e_enabled("compat") {
        return;
    }
    // The build for kernels without bpf_loop, attach cookies and atomics
    // (Linux 5.10-5.16), forced on this kernel: a call of many chunks
    // arrives whole through its bounded loop.
    let bulk = bulk("compat", 200_000);
    let server = bulk.server.pid().to_string();
    let ec = Ecapture::start_env(&["tls", "-d", "--pid", &server], &[("ECAPTURE_BPF", "compat")]);
    ec.wait_stderr("Compat BPF build");
    python_put(bulk.port, &bulk.file);
    let put = ec.wait_event("the whole PUT, read by the server", |e| e.dir == "READ" && e.length >= bulk.data.len());
    assert!(put.payload.ends_with(&bulk.data), "the body arrives whole and exact");
    let (status, _, _, stderr) = ec.stop();
    assert!(status.success());
    assert_eq!(summary_counts(&stderr).0, 0, "nothing lost");
}

/// A program that moves the ciphertext itself (asyncio: OpenSSL over memory
/// BIOs, every connection's both ends in one event loop thread): each event
/// that shows a tuple shows its own connection's — checked against the
/// client port every message names — and the tuple is learnt for each.
#[test]
fn memory_bio_event_loop_gets_each_connections_own_tuple() {
    if !e2e_enabled("memory_bio") {
        return;
    }
    let dir = TempDir::new("membio");
    let (cert, key) = make_cert(dir.path());
    let ec = Ecapture::start(&["tls"]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asyncio_peer.py");
    let (conns, rounds) = (8, 5);
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(&cert)
        .arg(&key)
        .arg(conns.to_string())
        .arg(rounds.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/asyncio_peer.py");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let server_port: u16 = said.trim().strip_prefix("DONE ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("asyncio_peer.py: {said:?}"));
    // The last answer each way is in once the last echo (conn 7, round 4) has been read.
    ec.wait_event("the last echo read", |e| {
        e.dir == "READ" && String::from_utf8_lossy(&e.payload).contains(&format!("echo conn {} round {} ", conns - 1, rounds - 1))
    });
    let (st, _, events, err) = ec.stop();
    assert!(st.success(), "{err:?}");
    let port = |a: &str| a.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
    let (mut known, mut total) = (0, 0);
    for e in events.iter().filter(|e| e.comm == "python3") {
        let text = String::from_utf8_lossy(&e.payload).into_owned();
        for line in text.lines() {
            let Some(p) = line.rsplit("port ").next().and_then(|p| p.trim().parse::<u16>().ok()) else { continue };
            if !line.starts_with("conn ") && !line.starts_with("echo conn ") {
                continue;
            }
            total += 1;
            if e.src == "0.0.0.0:0" {
                continue;
            }
            known += 1;
            // The client's port is this end's (client) or the peer's (server).
            let (local, remote) = if e.dir == "WRITE" { (port(&e.src), port(&e.dst)) } else { (port(&e.dst), port(&e.src)) };
            let client_side = line.starts_with("conn ") == (e.dir == "WRITE");
            let want = if client_side { (p, server_port) } else { (server_port, p) };
            assert_eq!((local, remote), want, "{} {line:?}: its own connection's tuple", e.dir);
        }
    }
    assert_eq!(total, conns * rounds * 4, "every message, both ends, both ways");
    assert!(known * 10 >= total * 9, "the tuple is learnt for nearly every message: {known} of {total}");
}

/// The socket ecapture remembers for a connection (its tuple, checked by
/// the open file and its inode number: bpf/common.h) is never another
/// connection's: one SSL object used for three connections in turn
/// (SSL_clear between), each new socket on the closed one's fd number and
/// often on its kernel file object, shows each connection's own tuple.
#[test]
fn reused_ssl_object_on_a_reused_fd_shows_each_connections_tuple() {
    if !e2e_enabled("reuse_ssl") {
        return;
    }
    let dir = TempDir::new("reuse");
    let prog = dir.path().join("reuse_ssl");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reuse_ssl.c");
    let cc = Command::new("cc").args(["-O2", "-Wall", "-o"]).arg(&prog).arg(&src).args(["-lssl", "-lcrypto"]).output().expect("run cc");
    assert!(cc.status.success(), "building reuse_ssl: {}", String::from_utf8_lossy(&cc.stderr));
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    // -www: s_server's stdin is closed, and in its echo mode that ends each
    // connection at once. (Its reads go through an SSL BIO: not captured.)
    let _servers: Vec<Proc> = ports.iter().map(|p| s_server(dir.path(), &format!("127.0.0.1:{p}"), true)).collect();
    let ec = Ecapture::start(&["tls"]);
    let out = Command::new(&prog).args(ports.iter().map(|p| p.to_string())).stdin(Stdio::null()).output().expect("run reuse_ssl");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "reuse_ssl: {said} {}", String::from_utf8_lossy(&out.stderr));
    let fds: Vec<&str> = said.trim().split(' ').skip(1).collect();
    assert!(fds.len() == 3 && fds.iter().all(|f| *f == fds[0]), "one fd number for all three sockets: {said:?}");
    let last = format!("hello via port {}", ports[2]);
    ec.wait_event("the last write", |e| e.dir == "WRITE" && String::from_utf8_lossy(&e.payload).contains(&last));
    let (st, _, events, err) = ec.stop();
    assert!(st.success(), "{err:?}");
    let mut seen = Vec::new();
    for e in events.iter().filter(|e| e.dir == "WRITE") {
        let text = String::from_utf8_lossy(&e.payload).into_owned();
        let Some(port) = text.trim().strip_prefix("hello via port ").and_then(|p| p.parse::<u16>().ok()) else { continue };
        assert!(ports.contains(&port), "{text:?}");
        assert_eq!(e.dst, format!("127.0.0.1:{port}"), "the write on the connection to port {port}: {e:?}");
        seen.push(port);
    }
    assert_eq!(seen, ports, "each connection's write, in order: {:?}", events.iter().filter(|e| e.dir == "WRITE").collect::<Vec<_>>());
}
