//! End-to-end tests of the gnutls, nss and all modules: the real binary, as
//! root, against real GnuTLS and NSS programs on loopback (wget, gnutls-cli,
//! gnutls-serv, a ctypes GnuTLS client, NSS's tstclnt and selfserv with a
//! certificate database made here), each test on its own ports and its own
//! processes' pids.

mod util;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use util::*;

/// Runs `cmd` to completion with a deadline; returns (pid, success, stdout).
fn run_child(mut cmd: Command) -> (u32, bool, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn");
    let pid = child.id();
    let mut out = String::new();
    let mut so = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let _ = so.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + PATIENCE;
    let st = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (pid, st.success(), reader.join().unwrap_or_default())
}

/// What `r` gives, as it comes (for output whose end is no newline).
fn chunks_of(mut r: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = vec![0u8; 4096];
        while let Ok(n) = r.read(&mut b) {
            if n == 0 || tx.send(b[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0)
}

/// wget (GnuTLS) against openssl s_server -www: the request and the answer,
/// with pid, comm, tuple and TLS version.
#[test]
fn gnutls_wget_request_and_answer() {
    if !e2e_enabled("gnutls_wget") || !tool("wget") {
        return;
    }
    let dir = TempDir::new("gnutls-wget");
    let port = free_port();
    let _srv = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let ec = Ecapture::start(&["gnutls"]);
    let mut cmd = Command::new("wget");
    cmd.args(["-q", "-O", "/dev/null", "--no-check-certificate"]).arg(format!("https://127.0.0.1:{port}/from-wget"));
    let (pid, ok, _) = run_child(cmd);
    assert!(ok, "wget failed");
    let req = ec.wait_event("wget's request", |e| e.pid == pid && e.dir == "WRITE");
    assert!(req.payload.starts_with(b"GET /from-wget HTTP/1.1\r\n"), "{:?}", String::from_utf8_lossy(&req.payload));
    assert_eq!((req.comm.as_str(), req.version.as_str(), port_of(&req.dst)), ("wget", "TLS1.3", port));
    assert!(req.fd >= 0 && port_of(&req.src) != 0, "{req:?}");
    let resp = ec.wait_event("s_server's answer", |e| e.pid == pid && e.dir == "READ");
    assert!(resp.payload.starts_with(b"HTTP/1.0 200 ok"), "{:?}", String::from_utf8_lossy(&resp.payload));
    assert_eq!((port_of(&resp.src), resp.dst.as_str()), (port, req.src.as_str()), "a read flows from the server");
    let (st, _, _, err) = ec.stop();
    assert!(st.success(), "{err:?}");
    assert!(err.iter().any(|l| l.contains("hooking") && l.contains("libgnutls") && l.contains("GnuTLS 3.")), "{err:?}");
}

/// A 1 MiB request written by ONE corked gnutls_record_send (the uncork
/// sends it again inside GnuTLS: captured once), TLS 1.3; and uncorked at
/// TLS 1.2, where it takes many calls.
#[test]
fn gnutls_one_mib_write_arrives_whole_once() {
    if !e2e_enabled("gnutls_one_mib") {
        return;
    }
    let dir = TempDir::new("gnutls-mib");
    let (_srv, port) = py_server(dir.path(), "127.0.0.1");
    // --hex: the bytes themselves (not the head as text and the body dumped).
    // The client as its own user, captured with --uid: "nothing lost" is
    // about this test's traffic, not what runs beside it.
    const UID: &str = "61201";
    let ec = Ecapture::start(&["gnutls", "--maxpayload", "2M", "--hex", "--uid", UID]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gnutls_client.py");
    let size = 1 << 20;
    let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    for (flags, version) in [(&["--cork"][..], "TLS1.3"), (&["--tls12"][..], "TLS1.2")] {
        let mut cmd = Command::new("setpriv");
        cmd.args([&format!("--reuid={UID}"), &format!("--regid={UID}"), "--clear-groups", "/usr/bin/python3"]);
        cmd.arg(&script).arg(port.to_string()).arg(size.to_string()).args(flags);
        let (pid, ok, out) = run_child(cmd);
        assert!(ok, "gnutls_client.py {flags:?}: {out}");
        let w = ec.wait_event("the 1 MiB request", |e| e.pid == pid && e.dir == "WRITE");
        let head = format!("POST /gnutls HTTP/1.1\r\nHost: localhost\r\nContent-Length: {size}\r\n\r\n");
        assert_eq!(w.length, head.len() + size, "{flags:?}: one message, every byte once");
        assert!(w.payload.starts_with(head.as_bytes()), "{flags:?}");
        assert!(w.payload[head.len()..] == body[..], "{flags:?}: the body byte for byte");
        assert_eq!((w.version.as_str(), port_of(&w.dst)), (version, port), "{flags:?}");
        let r = ec.wait_event("the answer", |e| e.pid == pid && e.dir == "READ");
        assert!(String::from_utf8_lossy(&r.payload).contains(&format!("{size} body bytes")));
    }
    let (st, _, events, err) = ec.stop();
    assert!(st.success(), "{err:?}");
    let summary = err.iter().find(|l| l.contains("events,")).cloned().unwrap_or_default();
    assert!(summary.contains("lost 0"), "{summary}");
    drop(events);
}

/// gnutls-cli's messages as JSON lines: HTTP/1 request (type 1) and response
/// (type 3), framed one per message.
#[test]
fn gnutls_cli_messages_are_framed_and_typed() {
    if !e2e_enabled("gnutls_cli_json") || !tool("gnutls-cli") {
        return;
    }
    let dir = TempDir::new("gnutls-cli");
    let (_srv, port) = py_server(dir.path(), "127.0.0.1");
    let out = dir.path().join("events.jsonl");
    let ec = Ecapture::start(&["gnutls", "--eventformat", "json", "--eventaddr", out.to_str().unwrap()]);
    let mut child = Command::new("gnutls-cli")
        .args(["--insecure", "-p", &port.to_string(), "127.0.0.1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gnutls-cli");
    let pid = child.id();
    let so = child.stdout.take().expect("stdout");
    let answers = chunks_of(so);
    let mut got = Vec::new();
    let mut stdin = child.stdin.take().expect("stdin");
    use std::io::Write;
    for path in ["/one", "/two"] {
        write!(stdin, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("write to gnutls-cli");
        stdin.flush().ok();
        let deadline = Instant::now() + PATIENCE;
        // The answer has no newline at its end: wait for its text.
        while !String::from_utf8_lossy(&got).contains(&format!("hello from {path}")) {
            got.extend(answers.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("gnutls-cli's answer"));
        }
    }
    drop(stdin);
    let _ = child.wait();
    let (st, _, _, err) = ec.stop();
    assert!(st.success(), "{err:?}");
    let text = std::fs::read_to_string(&out).expect("the JSON lines");
    let mine: Vec<&str> = text.lines().filter(|l| l.contains(&format!("\"pid\":{pid},"))).collect();
    let types: Vec<(bool, bool)> = mine.iter().map(|l| (l.contains("\"type\":1,"), l.contains("\"type\":3,"))).collect();
    assert_eq!(types, vec![(true, false), (false, true), (true, false), (false, true)], "{mine:#?}");
    assert!(mine.iter().all(|l| l.contains("\"pname\":\"gnutls-cli\"") && l.contains("\"tls_version\":\"TLS1.3\"")), "{mine:#?}");
    assert!(mine[0].contains("GET /one HTTP/1.1") && mine[2].contains("GET /two HTTP/1.1"), "{mine:#?}");
}

/// gnutls-serv as the server: what it reads and writes, as the server's end.
#[test]
fn gnutls_serv_server_side() {
    if !e2e_enabled("gnutls_serv") || !tool("gnutls-serv") {
        return;
    }
    let dir = TempDir::new("gnutls-serv");
    let (cert, key) = make_cert(dir.path());
    let port = free_port();
    let srv = Command::new("gnutls-serv")
        .args(["--http", "-p", &port.to_string(), "--x509certfile"])
        .arg(&cert)
        .arg("--x509keyfile")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gnutls-serv");
    let srv = Proc(srv);
    wait_listening(port);
    let ec = Ecapture::start(&["gnutls", "--pid", &srv.pid().to_string()]);
    let (_, st) = curl(&format!("https://127.0.0.1:{port}/to-gnutls-serv"), &[]);
    assert!(st.success(), "curl failed");
    let r = ec.wait_event("the request gnutls-serv read", |e| e.dir == "READ");
    assert!(r.payload.starts_with(b"GET /to-gnutls-serv HTTP/1.1\r\n"), "{:?}", String::from_utf8_lossy(&r.payload));
    assert_eq!((r.pid, r.comm.as_str(), port_of(&r.dst)), (srv.pid(), "gnutls-serv", port), "from the client to us");
    let w = ec.wait_event("gnutls-serv's answer", |e| e.dir == "WRITE");
    assert!(w.payload.starts_with(b"HTTP/1.0 200 OK"), "{:?}", String::from_utf8_lossy(&w.payload));
    assert_eq!((port_of(&w.src), w.dst.as_str()), (port, r.src.as_str()));
    let (st, _, _, err) = ec.stop();
    assert!(st.success(), "{err:?}");
}

/// Polls until something listens on 127.0.0.1:port (servers that print no
/// ready line of their own).
fn wait_listening(port: u16) {
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An NSS certificate database in `dir`, trusting `cert` as a peer.
fn nss_db(dir: &Path, cert: &Path) -> String {
    let db = format!("sql:{}", dir.display());
    let certutil = |args: &[&str]| {
        let st = Command::new("certutil").args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().expect("run certutil");
        assert!(st.success(), "certutil {args:?}");
    };
    certutil(&["-N", "-d", &db, "--empty-password"]);
    certutil(&["-A", "-n", "peer", "-t", "P,,", "-i", cert.to_str().unwrap(), "-d", &db]);
    db
}

/// tstclnt's GET of `path`; returns (pid, its output) once the answer's
/// status line is in (tstclnt may linger after the server closes: killed).
/// openssl s_server -www on a port of its own, and an NSS database in `dir`
/// that trusts its certificate: (server, port, database).
fn s_server_and_nss_db(dir: &Path) -> (Proc, u16, String) {
    let port = free_port();
    let srv = s_server(dir, &format!("127.0.0.1:{port}"), true);
    let dbdir = dir.join("db");
    std::fs::create_dir_all(&dbdir).expect("create the NSS database directory");
    let db = nss_db(&dbdir, &dir.join("cert.pem"));
    (srv, port, db)
}

fn tstclnt(db: &str, port: u16, path: &str) -> (u32, String) {
    let mut cmd = Command::new("tstclnt");
    cmd.args(["-h", "127.0.0.1", "-a", "localhost", "-p", &port.to_string(), "-d", db]).stdin(Stdio::piped());
    let child: Child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn tstclnt");
    let mut child = Proc(child);
    let pid = child.pid();
    use std::io::Write;
    let mut stdin = child.0.stdin.take().expect("stdin");
    write!(stdin, "GET {path} HTTP/1.0\r\n\r\n").expect("write to tstclnt");
    let so = child.0.stdout.take().expect("stdout");
    let rx = chunks_of(so);
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains(" 200 ") {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(b) => out.extend(b),
            Err(_) => break,
        }
    }
    drop(stdin);
    drop(child);
    (pid, String::from_utf8_lossy(&out).into_owned())
}

/// tstclnt (NSS) against openssl s_server: request and answer, TLS, tuple.
#[test]
fn nss_tstclnt_client_side() {
    if !e2e_enabled("nss_tstclnt") || !tool("tstclnt") || !tool("certutil") {
        return;
    }
    let dir = TempDir::new("nss-tstclnt");
    let (_srv, port, db) = s_server_and_nss_db(dir.path());
    let ec = Ecapture::start(&["nss"]);
    let (pid, out) = tstclnt(&db, port, "/from-tstclnt");
    assert!(out.contains("HTTP/1.0 200 ok"), "tstclnt's output: {out}");
    let w = ec.wait_event("tstclnt's request", |e| e.pid == pid && e.dir == "WRITE");
    assert_eq!(w.payload, b"GET /from-tstclnt HTTP/1.0\r\n\r\n");
    assert_eq!((w.comm.as_str(), port_of(&w.dst), w.maybe_plain), ("tstclnt", port, false), "{w:?}");
    let r = ec.wait_event("s_server's answer", |e| e.pid == pid && e.dir == "READ");
    assert!(r.payload.starts_with(b"HTTP/1.0 200 ok"));
    assert_eq!((port_of(&r.src), r.dst.as_str()), (port, w.src.as_str()));
    let (st, _, events, err) = ec.stop();
    assert!(st.success(), "{err:?}");
    // Not a byte of NSS's database files or of anything else tstclnt did with NSPR.
    let mine: Vec<&Event> = events.iter().filter(|e| e.pid == pid).collect();
    assert_eq!(mine.len(), 2, "{mine:#?}");
    assert!(err.iter().any(|l| l.contains("libssl3") && l.contains("NSS 3.")), "{err:?}");
}

/// selfserv (NSS's server) with a certificate made by certutil here; curl
/// as the client.
#[test]
fn nss_selfserv_server_side() {
    if !e2e_enabled("nss_selfserv") || !tool("selfserv") || !tool("certutil") {
        return;
    }
    let dir = TempDir::new("nss-selfserv");
    let db = format!("sql:{}", dir.path().display());
    let certutil = |args: &[&str]| {
        let st = Command::new("certutil").args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().expect("run certutil");
        assert!(st.success(), "certutil {args:?}");
    };
    certutil(&["-N", "-d", &db, "--empty-password"]);
    let noise = dir.path().join("noise");
    std::fs::write(&noise, (0..512u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<u8>>()).unwrap();
    certutil(&["-S", "-n", "server", "-s", "CN=localhost", "-x", "-t", "CT,,", "-k", "ec", "-q", "nistp256", "-z", noise.to_str().unwrap(), "-d", &db]);
    let port = free_port();
    let srv = Proc(
        Command::new("selfserv")
            .args(["-d", &db, "-n", "server", "-p", &port.to_string(), "-H", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn selfserv"),
    );
    wait_listening(port);
    let ec = Ecapture::start(&["nss", "--pid", &srv.pid().to_string()]);
    let (_, st) = curl(&format!("https://localhost:{port}/to-selfserv"), &["--http1.1", "-4"]);
    let r = ec.wait_event("the request selfserv read", |e| e.dir == "READ" && e.payload.starts_with(b"GET /to-selfserv"));
    assert_eq!((r.pid, r.comm.as_str(), port_of(&r.dst), r.maybe_plain), (srv.pid(), "selfserv", port, false), "{r:?}");
    let w = ec.wait_event("selfserv's answer", |e| e.dir == "WRITE");
    assert!(w.payload.starts_with(b"HTTP/1.0 200 OK"), "{:?}", String::from_utf8_lossy(&w.payload));
    assert_eq!((port_of(&w.src), w.dst.as_str()), (port, r.src.as_str()), "written by the server's end");
    let _ = st;
    let (st, _, _, err) = ec.stop();
    assert!(st.success(), "{err:?}");
}

/// `all`: curl (OpenSSL), wget (GnuTLS) and tstclnt (NSS) in one run.
#[test]
fn all_modules_in_one_stream() {
    if !e2e_enabled("all_modules") || !tool("wget") || !tool("tstclnt") || !tool("certutil") {
        return;
    }
    let dir = TempDir::new("all");
    let (_srv, port, db) = s_server_and_nss_db(dir.path());
    let ec = Ecapture::start(&["all"]);
    let (curl_pid, st) = curl(&format!("https://127.0.0.1:{port}/by-curl"), &[]);
    assert!(st.success());
    let mut cmd = Command::new("wget");
    cmd.args(["-q", "-O", "/dev/null", "--no-check-certificate"]).arg(format!("https://127.0.0.1:{port}/by-wget"));
    let (wget_pid, ok, _) = run_child(cmd);
    assert!(ok);
    let (nss_pid, out) = tstclnt(&db, port, "/by-tstclnt");
    assert!(out.contains("200 ok"), "{out}");
    for (pid, comm, path) in [(curl_pid, "curl", "/by-curl"), (wget_pid, "wget", "/by-wget"), (nss_pid, "tstclnt", "/by-tstclnt")] {
        let w = ec.wait_event(comm, |e| e.pid == pid && e.dir == "WRITE");
        assert!(w.payload.starts_with(format!("GET {path} HTTP/1.").as_bytes()), "{comm}: {:?}", String::from_utf8_lossy(&w.payload));
        assert_eq!((w.comm.as_str(), port_of(&w.dst)), (comm, port), "{comm}: {w:?}");
        let r = ec.wait_event(comm, |e| e.pid == pid && e.dir == "READ");
        assert_eq!(r.src, w.dst, "{comm}");
    }
    let (st, _, _, err) = ec.stop();
    assert!(st.success(), "{err:?}");
    for lib in ["libssl.so", "libgnutls.so", "libnspr4.so"] {
        assert!(err.iter().any(|l| l.contains("hooking") && l.contains(lib)), "{lib}: {err:?}");
    }
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(bin()).args(args).envs(env.iter().copied()).stdin(Stdio::null()).output().expect("run ecapture");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A file that is not the library: one line, exit 2. Nothing to hook: one
/// line naming where we looked, exit 1.
#[test]
fn bad_library_paths_and_no_library() {
    if !e2e_enabled("modules_bad_input") {
        return;
    }
    let (code, err) = run(&["gnutls", "--gnutls", "/bin/true"], &[]);
    assert_eq!((code, err.as_str()), (2, "ecapture: --gnutls /bin/true: does not define gnutls_record_send and gnutls_record_recv (is it libgnutls?)\n"));
    let (code, err) = run(&["nss", "--nspr", "/etc/hostname"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("ecapture: --nspr /etc/hostname") && err.lines().count() == 1, "{err}");
    let (code, err) = run(&["nss", "--nspr", "/nonexistent/libnspr4.so"], &[]);
    assert_eq!((code, err.as_str()), (2, "ecapture: --nspr /nonexistent/libnspr4.so: no such file\n"));

    // A process of our own that maps no TLS library, and no library directory.
    let sleeper = Proc(Command::new("sleep").arg("60").spawn().expect("spawn sleep"));
    let pid = sleeper.pid().to_string();
    let env = [("ECAPTURE_LIB_DIRS", "/nonexistent/lib")];
    let (code, err) = run(&["gnutls", "--pid", &pid], &env);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no libgnutls found") && err.contains("/nonexistent/lib") && err.contains("--gnutls PATH"), "{err}");
    let (code, err) = run(&["nss", "--pid", &pid], &env);
    assert!(code == 1 && err.contains("no libnspr4 found"), "{err}");
    let (code, err) = run(&["all", "--pid", &pid], &env);
    assert_eq!(code, 1, "{err}");
    assert!(err.lines().last().unwrap_or("").contains("no TLS library found"), "{err}");
}
