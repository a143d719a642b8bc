//! End-to-end tests of TLS on ecapture's own connections: `wss://`
//! collectors (`--logaddr`/`--eventaddr`, Python `websockets` over `ssl`
//! with a CA the test makes) and the eCaptureQ server over `wss://` (the
//! demo client and Python's websocket-client). Each test uses its own ports
//! and looks only at its own curl's pid.

mod util;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use util::*;

/// A CA, and certificates it signs.
struct Ca {
    dir: PathBuf,
    name: String,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl").args(args).current_dir(dir).stdin(Stdio::null()).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let key = format!("{name}.key");
        let pem = format!("{name}.pem");
        openssl(
            &[
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", &format!("/CN=ecapture test {name}"), "-keyout", &key, "-out", &pem,
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ],
            dir,
        );
        Ca { dir: dir.to_path_buf(), name: name.into() }
    }

    fn pem(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", self.name))
    }

    /// A server certificate for `san` (e.g. "DNS:localhost,IP:127.0.0.1"):
    /// (certificate, key).
    fn issue(&self, tag: &str, san: &str) -> (PathBuf, PathBuf) {
        let (key, csr, crt, ext) = (format!("{tag}.key"), format!("{tag}.csr"), format!("{tag}.pem"), format!("{tag}.ext"));
        std::fs::write(
            self.dir.join(&ext),
            format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n"),
        )
        .unwrap();
        openssl(&["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=collector", "-keyout", &key, "-out", &csr], &self.dir);
        let (ca_pem, ca_key) = (format!("{}.pem", self.name), format!("{}.key", self.name));
        openssl(
            &["x509", "-req", "-in", &csr, "-CA", &ca_pem, "-CAkey", &ca_key, "-CAcreateserial", "-days", "1", "-out", &crt, "-extfile", &ext],
            &self.dir,
        );
        (self.dir.join(crt), self.dir.join(key))
    }
}

type Lines = Arc<(Mutex<Vec<String>>, Condvar)>;

/// Waits until a line satisfies `pred`; returns it.
fn wait_line(lines: &Lines, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let (m, cv) = &**lines;
    let deadline = Instant::now() + PATIENCE;
    let mut g = m.lock().unwrap();
    loop {
        if let Some(l) = g.iter().find(|l| pred(l)) {
            return l.clone();
        }
        assert!(Instant::now() < deadline, "{what} did not happen within {PATIENCE:?}; got:\n{}", g.join("\n"));
        g = cv.wait_timeout(g, deadline - Instant::now()).unwrap().0;
    }
}

/// The Python wss collector on `port` with `cert`/`key`, once listening.
struct Collector {
    /// Killed (and reaped) when the collector is dropped.
    _proc: Proc,
    lines: Lines,
}

impl Collector {
    fn start(port: u16, cert: &Path, key: &Path) -> Collector {
        let mut child = Command::new("/usr/bin/python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wss_collector.py"))
            .arg(port.to_string())
            .arg(cert)
            .arg(key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run tests/wss_collector.py (python3-websockets)");
        let out = child.stdout.take().unwrap();
        let lines: Lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let l = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let (m, cv) = &*l;
                m.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
        let c = Collector { _proc: Proc(child), lines };
        wait_line(&c.lines, "the collector listening", |l| l == "READY");
        c
    }

    /// The JSON events received (as text).
    fn messages(&self) -> Vec<String> {
        self.lines.0.lock().unwrap().iter().filter_map(|l| l.strip_prefix("MSG ").map(str::to_string)).collect()
    }
}

fn json_pid(msg: &str) -> Option<u32> {
    let rest = msg.split("\"pid\":").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn stderr_count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

#[test]
fn wss_collector_gets_events_and_logs_then_a_close_frame() {
    if !e2e_enabled("wss_collector") || !tool("curl") {
        return;
    }
    let dir = TempDir::new("wss-collector");
    let ca = Ca::new(dir.path(), "ca1");
    let (cert, key) = ca.issue("collector", "DNS:localhost,IP:127.0.0.1");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let wport = free_port();
    let collector = Collector::start(wport, &cert, &key);
    let url = format!("wss://localhost:{wport}/ingest");
    let ec = Ecapture::start(&["tls", "--cacert", ca.pem().to_str().unwrap(), "-l", &url, "--eventformat", "json"]);
    ec.wait_stderr("probes attached");
    let (pid, st) = curl(&format!("https://127.0.0.1:{port}/over-wss"), &[]);
    assert!(st.success());
    let ev = wait_line(&collector.lines, "curl's request at the collector", |l| {
        l.starts_with("MSG {") && json_pid(l) == Some(pid) && l.contains("GET /over-wss HTTP/1.1")
    });
    assert!(ev.contains("\"pname\":\"curl\""), "{ev}");
    // Logs share the connection (-l without --eventaddr: both go there).
    wait_line(&collector.lines, "a log line at the collector", |l| l.starts_with("MSG ") && l.contains("probes attached"));
    let me = ec.pid();
    let (status, _, _, stderr) = ec.stop();
    assert!(status.success(), "{stderr:?}");
    // A clean WebSocket close: the collector got a Close frame (1000), not
    // a vanished peer (1006).
    let close = wait_line(&collector.lines, "the connection's end at the collector", |l| l.starts_with("CLOSE "));
    assert_eq!(close, "CLOSE 1000", "ecapture must end with a Close frame; stderr: {stderr:?}");
    // ecapture never captures itself (its sink's TLS included).
    for m in collector.messages() {
        assert_ne!(json_pid(&m), Some(me), "an event of ecapture's own process: {m}");
    }
    assert_eq!(stderr_count(&stderr, "unreachable"), 0, "{stderr:?}");
}

#[test]
fn untrusted_collector_is_refused_and_retried_until_it_is_trusted() {
    if !e2e_enabled("wss_untrusted") || !tool("curl") {
        return;
    }
    let dir = TempDir::new("wss-untrusted");
    let (ca1, ca2) = (Ca::new(dir.path(), "ca1"), Ca::new(dir.path(), "ca2"));
    let (good, good_key) = ca1.issue("good", "DNS:localhost");
    let (rogue, rogue_key) = ca2.issue("rogue", "DNS:localhost");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let wport = free_port();
    let collector = Collector::start(wport, &rogue, &rogue_key);
    let url = format!("wss://localhost:{wport}/in");
    let ec = Ecapture::start(&["tls", "--uid", "61181", "--cacert", ca1.pem().to_str().unwrap(), "--eventaddr", &url, "--eventformat", "json"]);
    let refusal = ec.wait_stderr("unreachable");
    assert!(refusal.contains("certificate") && refusal.contains("UnknownIssuer"), "the reason must be named: {refusal}");
    let pid = curl_as(61181, &format!("https://127.0.0.1:{port}/held-while-refused"));
    // Retries go on (backoff from 250 ms): let several fail (there is no
    // signal for a refused attempt: ecapture logs one line per outage and
    // the collector's TLS layer reports nothing), then swap in the trusted
    // certificate.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(collector.messages().is_empty(), "nothing may reach an untrusted collector");
    drop(collector);
    let collector = Collector::start(wport, &good, &good_key);
    wait_line(&collector.lines, "the held event delivered", |l| json_pid(l) == Some(pid) && l.contains("GET /held-while-refused"));
    let (status, _, _, stderr) = ec.stop();
    assert!(status.success());
    assert_eq!(stderr_count(&stderr, "unreachable"), 1, "one refusal line per outage: {stderr:?}");
    assert!(stderr.iter().any(|l| l.contains("is back")), "{stderr:?}");
    drop(collector);
}

#[test]
fn wrong_host_name_is_refused_and_only_the_named_flag_skips_checks() {
    if !e2e_enabled("wss_name") || !tool("curl") {
        return;
    }
    let dir = TempDir::new("wss-name");
    let ca = Ca::new(dir.path(), "ca1");
    let (cert, key) = ca.issue("elsewhere", "DNS:collector.invalid");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let wport = free_port();
    let collector = Collector::start(wport, &cert, &key);
    let url = format!("wss://localhost:{wport}/in");
    let ec = Ecapture::start(&["tls", "--uid", "61182", "--cacert", ca.pem().to_str().unwrap(), "--eventaddr", &url]);
    let refusal = ec.wait_stderr("unreachable");
    assert!(refusal.contains("NotValidForName") || refusal.contains("not valid for name"), "{refusal}");
    curl_as(61182, &format!("https://127.0.0.1:{port}/wrong-name"));
    let (status, _, _, _) = ec.stop();
    assert!(status.success());
    assert!(collector.messages().is_empty(), "a collector with another name got events");

    // --insecure-skip-tls-verify: delivered, and said loudly.
    let ec = Ecapture::start(&["tls", "--uid", "61182", "--insecure-skip-tls-verify", "--eventaddr", &url]);
    let warning = ec.wait_stderr("--insecure-skip-tls-verify");
    assert!(warning.contains("NOT checked"), "{warning}");
    let pid = curl_as(61182, &format!("https://127.0.0.1:{port}/no-checks"));
    wait_line(&collector.lines, "the event delivered without checks", |l| l.contains(&format!("PID:{pid}, Comm:curl")));
    wait_line(&collector.lines, "its payload", |l| l.contains("GET /no-checks HTTP/1.1"));
    ec.stop();
}

#[test]
fn ecaptureq_over_wss_serves_the_demo_client_and_python() {
    if !e2e_enabled("wss_ecaptureq") || !tool("curl") {
        return;
    }
    let dir = TempDir::new("wss-ecq");
    let ca = Ca::new(dir.path(), "ca1");
    let (cert, key) = ca.issue("ecq", "IP:127.0.0.1");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let ec = Ecapture::start(&[
        "tls", "--uid", "61183", "--ecaptureq", "wss://127.0.0.1:0/", "--ecaptureq-cert", cert.to_str().unwrap(), "--ecaptureq-key",
        key.to_str().unwrap(),
    ]);
    let url = ecq_url(&ec);
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");

    // The demo client, trusting the test CA.
    let client_bin = std::env::var_os("ECAPTUREQ_CLIENT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ecaptureq_client")));
    let mut demo = Command::new(client_bin)
        .args(["-server", &url, "-cacert", ca.pem().to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run ecaptureq_client");
    let demo_out = demo.stdout.take().unwrap();
    let demo = Proc(demo);
    let demo_lines: Lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    let l = Arc::clone(&demo_lines);
    std::thread::spawn(move || {
        for line in BufReader::new(demo_out).lines().map_while(Result::ok) {
            l.0.lock().unwrap().push(line);
            l.1.notify_all();
        }
    });
    // Python's websocket-client, trusting the test CA; it prints whether a
    // binary message holds the request.
    let py = r#"
import ssl, sys, websocket
ws = websocket.create_connection(sys.argv[1], sslopt={"ca_certs": sys.argv[2]}, timeout=20)
print("CONNECTED", flush=True)
while True:
    m = ws.recv()
    if isinstance(m, bytes) and b"GET /over-ecq-wss HTTP/1.1" in m:
        print("GOT", flush=True)
        break
ws.close()
"#;
    let mut python = Command::new("/usr/bin/python3")
        .args(["-c", py, &url, ca.pem().to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3 websocket-client");
    let py_out = python.stdout.take().unwrap();
    let mut py_lines = BufReader::new(py_out).lines();
    assert_eq!(py_lines.next().and_then(Result::ok).as_deref(), Some("CONNECTED"));
    // The demo client is connected once it printed the replayed logs.
    wait_line(&demo_lines, "the demo client connected", |l| l.contains("eCaptureQ server listening"));
    let pid = curl_as(61183, &format!("https://127.0.0.1:{port}/over-ecq-wss"));
    wait_line(&demo_lines, "the request at the demo client", |l| l.contains("GET /over-ecq-wss HTTP/1.1"));
    assert!(demo_lines.0.lock().unwrap().iter().any(|l| l.contains(&format!("pid={pid}")) || l.contains(&format!("PID:{pid}"))), "the event's pid: {:?}", demo_lines.0.lock().unwrap());
    assert_eq!(py_lines.next().and_then(Result::ok).as_deref(), Some("GOT"));
    assert!(python.wait().unwrap().success());
    // A client that does not trust the CA is refused by its own TLS.
    let untrusted = Command::new("/usr/bin/python3")
        .args(["-c", "import sys, websocket\ntry:\n    websocket.create_connection(sys.argv[1], timeout=10)\nexcept Exception as e:\n    print(type(e).__name__, e)\n    sys.exit(3)\n", &url])
        .output()
        .unwrap();
    assert_eq!(untrusted.status.code(), Some(3), "{}", String::from_utf8_lossy(&untrusted.stdout));
    assert!(String::from_utf8_lossy(&untrusted.stdout).contains("CERTIFICATE_VERIFY_FAILED"));
    let (status, _, _, _) = ec.stop();
    assert!(status.success());
    drop(demo);
}

#[test]
fn bad_tls_flags_are_one_line_errors() {
    if !e2e_enabled("wss_flags") {
        return;
    }
    let run = |args: &[&str]| {
        let out = Command::new(bin()).args(args).stdin(Stdio::null()).output().expect("run ecapture");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for (args, why) in [
        (&["tls", "--ecaptureq", "wss://127.0.0.1:0/"][..], "needs --ecaptureq-cert"),
        (&["tls", "--ecaptureq", "ws://127.0.0.1:0/", "--ecaptureq-cert", "/x", "--ecaptureq-key", "/y"][..], "for --ecaptureq wss://"),
        (&["tls", "--ecaptureq", "wss://127.0.0.1:0/", "--ecaptureq-cert", "/nonexistent/c.pem", "--ecaptureq-key", "/nonexistent/k.pem"][..], "--ecaptureq-cert"),
        (&["tls", "--eventaddr", "wss://localhost:1/", "--cacert", "/nonexistent/ca.pem"][..], "--cacert"),
    ] {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: one error line: {err}");
        assert!(lines[0].contains(why), "{args:?}: {err}");
    }
}
