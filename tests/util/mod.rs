//! Shared helpers of the end-to-end tests: the ecapture binary under test,
//! real TLS peers (openssl s_server, curl, Python's ssl), a parser for the
//! text output, and the root/BPF gate that skips loudly or, in CI
//! (ECAPTURE_E2E=1), fails.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for something that should take milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The program that runs the binary under test, when it is another
/// architecture's: $ECAPTURE_RUNNER (`make test-aarch64`: qemu-aarch64-static).
pub fn runner() -> Option<PathBuf> {
    std::env::var_os("ECAPTURE_RUNNER").filter(|r| !r.is_empty()).map(PathBuf::from)
}

/// A command running the binary under test (through the runner, if any).
pub fn ecapture_command() -> Command {
    match runner() {
        Some(r) => {
            let mut c = Command::new(r);
            c.arg(bin());
            c
        }
        None => Command::new(bin()),
    }
}

/// The binary under test: $ECAPTURE_BIN, else the one cargo built.
pub fn bin() -> PathBuf {
    std::env::var_os("ECAPTURE_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ecapture")))
}

/// Whether the e2e tests can run here; when they cannot, says so loudly and
/// returns false, or panics when ECAPTURE_E2E=1 makes them mandatory.
pub fn e2e_enabled(test: &str) -> bool {
    if let Some(runner) = runner() {
        // Not a failure even with ECAPTURE_E2E=1: the run asked for emulation.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED {test}: ecapture runs under {} (ECAPTURE_RUNNER): another architecture's BPF cannot be loaded into this kernel ***",
            runner.display()
        );
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let reason = if !root {
        Some("not running as root")
    } else if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        Some("kernel has no BTF (/sys/kernel/btf/vmlinux)")
    } else if !Path::new("/sys/bus/event_source/devices/uprobe").exists() {
        Some("kernel has no uprobes")
    } else {
        None
    };
    match reason {
        None => true,
        Some(why) if std::env::var_os("ECAPTURE_E2E").is_some_and(|v| v == "1") => {
            panic!("{test}: end-to-end tests are mandatory here (ECAPTURE_E2E=1) but cannot run: {why}")
        }
        Some(why) => {
            // Straight to stderr: libtest hides eprintln! output of passing tests.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED {test}: {why}; end-to-end tests need root and BPF (ECAPTURE_E2E=1 makes this a failure) ***"
            );
            false
        }
    }
}

/// Whether program `name` is installed; when it is not, says so loudly, or
/// panics when ECAPTURE_E2E=1 makes the tests mandatory.
pub fn tool(name: &str) -> bool {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if !found && std::env::var_os("ECAPTURE_E2E").is_some_and(|v| v == "1") {
        panic!("{name} is missing; scripts/deps.sh test installs it");
    }
    if !found {
        eprintln!("*** SKIPPED: {name} is not installed ***");
    }
    found
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ecapture-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port the kernel just handed out on loopback, free again.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind an ephemeral port").port()
}

/// A self-signed certificate and key for localhost.
pub fn make_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl req");
    assert!(st.success(), "openssl req failed");
    (cert, key)
}

/// Kills and reaps a child on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server` on `accept` (e.g. "127.0.0.1:1234" or "[::1]:1234"),
/// returned once it prints ACCEPT. `www` answers HTTP GETs with a status
/// page; otherwise received data is echoed to its (discarded) stdout.
pub fn s_server(dir: &Path, accept: &str, www: bool) -> Proc {
    let (cert, key) = make_cert(dir);
    let mut cmd = Command::new("openssl");
    cmd.args(["s_server", "-accept", accept, "-cert"]).arg(cert).arg("-key").arg(key);
    if www {
        cmd.arg("-www");
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn openssl s_server");
    let out = child.stdout.take().expect("s_server stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        let mut told = false;
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            if !told && line.trim() == "ACCEPT" {
                let _ = tx.send(());
                told = true;
            }
            line.clear();
        }
    });
    rx.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("openssl s_server on {accept} did not start"));
    Proc(child)
}

/// `/usr/bin/python3`, as user `uid` when given (so a test can capture with
/// --uid and see nothing of the other tests running beside it).
pub fn python_as(uid: Option<u32>) -> Command {
    match uid {
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={u}")).arg(format!("--regid={u}")).arg("--clear-groups").arg("/usr/bin/python3");
            c
        }
        None => Command::new("/usr/bin/python3"),
    }
}

/// The test TLS server of tests/tls_server.py (Python's ssl: SSL_read_ex /
/// SSL_write_ex) on `host` ("127.0.0.1" or "::1"); returns it and its port
/// once it listens.
pub fn py_server(dir: &Path, host: &str) -> (Proc, u16) {
    py_server_as(None, dir, host)
}

/// `py_server` running as user `uid` (its key is handed to that user).
pub fn py_server_as(uid: Option<u32>, dir: &Path, host: &str) -> (Proc, u16) {
    let (cert, key) = make_cert(dir);
    if let Some(u) = uid {
        std::os::unix::fs::chown(&key, Some(u), Some(u)).expect("chown the key");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls_server.py");
    let mut child = python_as(uid)
        .arg(script)
        .arg(host)
        .arg(cert)
        .arg(key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3 tests/tls_server.py");
    let mut line = String::new();
    let out = child.stdout.take().expect("stdout");
    BufReader::new(out).read_line(&mut line).expect("read READY line");
    let port = line
        .strip_prefix("READY ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("tls_server.py did not start: {line:?}"));
    (Proc(child), port)
}

/// nginx with TLS and HTTP/2 on 127.0.0.1:port, serving `www` with gzip.
/// One process (no master): killing it when the test ends leaves no worker
/// behind (a killed master's workers go on serving).
pub struct Nginx {
    _proc: Proc,
    pub port: u16,
}

pub fn nginx(dir: &Path) -> Nginx {
    let (cert, key) = make_cert(dir);
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("a.txt"), "the contents of a\n").unwrap();
    std::fs::write(www.join("b.txt"), "the contents of b\n").unwrap();
    let big: String = (0..400).map(|i| format!("line {i:04} of a text that gzip shrinks very well\n")).collect();
    std::fs::write(www.join("big.txt"), big).unwrap();
    for t in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join(t)).unwrap();
    }
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nuser root;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/client_body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           default_type text/plain;\n  gzip on;\n  gzip_types text/plain;\n  gzip_min_length 100;\n\
           server {{\n    listen 127.0.0.1:{port} ssl http2;\n    ssl_certificate {};\n    ssl_certificate_key {};\n\
             root {d}/www;\n  }}\n}}\n",
        cert.display(),
        key.display()
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run nginx");
    let proc_ = Proc(child);
    // nginx says nothing when it is ready: wait until it accepts.
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start; see {}/error.log", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx { _proc: proc_, port }
}

/// Runs curl against `url` (certificate not checked) and returns its pid
/// and exit status.
pub fn curl(url: &str, extra: &[&str]) -> (u32, ExitStatus) {
    let mut child = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "--max-time", "10"])
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn curl");
    let pid = child.id();
    let st = child.wait().expect("wait curl");
    (pid, st)
}

/// curl as user `uid` (so `--uid` picks it out); returns its pid.
pub fn curl_as(uid: u32, url: &str) -> u32 {
    let mut c = Command::new("setpriv")
        .args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups", "curl", "-sk", "-o", "/dev/null", "--max-time", "10"])
        .arg(url)
        .stdin(Stdio::null())
        .spawn()
        .expect("run curl");
    let pid = c.id();
    assert!(c.wait().unwrap().success(), "curl {url} failed");
    pid
}

/// One event of ecapture's text output.
#[derive(Debug, Clone)]
pub struct Event {
    pub time: String,
    pub pid: u32,
    pub comm: String,
    pub tid: u32,
    pub fd: i32,
    pub dir: String,
    pub src: String,
    pub dst: String,
    pub version: String,
    pub length: usize,
    /// The payload bytes (text as printed, or decoded from the hex dump).
    pub payload: Vec<u8>,
    /// `[ecapture: ...]` note lines after the payload.
    pub notes: Vec<String>,
    /// The payload is a decoded rendering (HTTP/2 frames, an unzipped
    /// body...), not the bytes themselves.
    pub rendered: bool,
    /// The header ends with ", MayBePlain" (nss: TLS not certain).
    pub maybe_plain: bool,
}

fn parse_header(line: &str) -> Option<Event> {
    let (time, rest) = line.split_once(' ')?;
    let mut ev = Event {
        time: time.to_string(),
        pid: 0,
        comm: String::new(),
        tid: 0,
        fd: 0,
        dir: String::new(),
        src: String::new(),
        dst: String::new(),
        version: String::new(),
        length: 0,
        payload: Vec::new(),
        notes: Vec::new(),
        rendered: false,
        maybe_plain: false,
    };
    let mut fields: Vec<&str> = rest.split(", ").collect();
    if fields.len() == 10 && fields[9] == "MayBePlain" {
        ev.maybe_plain = true;
        fields.pop();
    }
    if fields.len() != 9 {
        return None;
    }
    ev.pid = fields[0].strip_prefix("PID:")?.parse().ok()?;
    ev.comm = fields[1].strip_prefix("Comm:")?.to_string();
    ev.tid = fields[2].strip_prefix("TID:")?.parse().ok()?;
    ev.fd = fields[3].strip_prefix("FD:")?.parse().ok()?;
    ev.dir = fields[4].to_string();
    ev.src = fields[5].strip_prefix("Src:")?.to_string();
    ev.dst = fields[6].strip_prefix("Dest:")?.to_string();
    ev.version = fields[7].to_string();
    ev.length = fields[8].strip_prefix("Length:")?.parse().ok()?;
    Some(ev)
}

/// One hex dump row: "00000010  48 6f 73 74 ...  |Host|".
fn parse_hex_row(line: &str) -> Option<Vec<u8>> {
    let (off, rest) = line.split_once("  ")?;
    if off.len() != 8 || !off.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = rest.split(" |").next()?;
    hex.split_whitespace().map(|h| u8::from_str_radix(h, 16).ok()).collect()
}

fn line_at(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let nl = buf[at..].iter().position(|&b| b == b'\n')?;
    Some((&buf[at..at + nl], at + nl + 1))
}

/// Parses one event at the start of `buf`: Some((event, bytes used)) when
/// complete, None when more output is needed. Payloads are text (exactly
/// Length bytes) or a hex dump; notes and a blank line follow. A decoded
/// rendering (HTTP/2 frames, de-chunked or decompressed bodies) does not
/// keep to Length: it runs to the next header line (`eof`: or the end) and
/// is marked `rendered`.
pub fn parse_event(buf: &[u8], eof: bool) -> Option<(Event, usize)> {
    let (hline, at) = line_at(buf, 0)?;
    let Some(ev) = std::str::from_utf8(hline).ok().and_then(parse_header) else {
        // Not a header: surfaced as an UNPARSED event, which fails the test.
        let mut bad = parse_header("- PID:0, Comm:, TID:0, FD:0, UNPARSED, Src:, Dest:, ?, Length:0").expect("template");
        bad.notes.push(String::from_utf8_lossy(hline).into_owned());
        return Some((bad, at));
    };
    match parse_body(buf, at, ev.clone()) {
        Ok(None) if eof => parse_rendered(buf, at, ev, eof),
        Ok(r) => r,
        Err(()) => parse_rendered(buf, at, ev, eof),
    }
}

/// The raw forms: Ok(None) = need more, Err = not a raw form.
fn parse_body(buf: &[u8], mut at: usize, mut ev: Event) -> Result<Option<(Event, usize)>, ()> {
    // A hex dump: rows of at most Length bytes in all (fewer with -t),
    // followed by a blank line or a note.
    let mut hex = Vec::new();
    let mut hat = at;
    while let Some((l, next)) = line_at(buf, hat) {
        match std::str::from_utf8(l).ok().and_then(parse_hex_row) {
            Some(row) => {
                hex.extend(row);
                hat = next;
            }
            None => break,
        }
    }
    let after = buf.get(hat).copied();
    if !hex.is_empty() && hex.len() <= ev.length && matches!(after, Some(b'\n') | Some(b'[')) {
        ev.payload = hex;
        at = hat;
    } else {
        if buf.len() < at + ev.length {
            // Short of Length: more is coming, unless a header line already
            // follows (a rendering shorter than the bytes it shows).
            let mut pos = at;
            while let Some((l, next)) = line_at(buf, pos) {
                if std::str::from_utf8(l).ok().and_then(parse_header).is_some() {
                    return Err(());
                }
                pos = next;
            }
            return Ok(None);
        }
        ev.payload = buf[at..at + ev.length].to_vec();
        at += ev.length;
        // Text not ending in a newline gets one.
        if ev.payload.last() != Some(&b'\n') {
            match buf.get(at) {
                None => return Ok(None),
                Some(b'\n') => at += 1,
                Some(_) => return Err(()),
            }
        }
    }
    // Notes, then the blank line that ends every event.
    loop {
        match buf.get(at) {
            None => return Ok(None),
            Some(b'\n') => {
                // The next event's header, or the end, must follow.
                let next = &buf[at + 1..];
                let ok = match line_at(next, 0) {
                    Some((l, _)) => std::str::from_utf8(l).ok().and_then(parse_header).is_some(),
                    None => true,
                };
                return if ok { Ok(Some((ev, at + 1))) } else { Err(()) };
            }
            Some(b'[') => {
                let Some((l, next)) = line_at(buf, at) else { return Ok(None) };
                ev.notes.push(String::from_utf8_lossy(l).into_owned());
                at = next;
            }
            Some(_) => return Err(()),
        }
    }
}

/// A rendering: everything up to the next header line.
fn parse_rendered(buf: &[u8], at: usize, mut ev: Event, eof: bool) -> Option<(Event, usize)> {
    let mut end = None;
    let mut pos = at;
    while let Some((l, next)) = line_at(buf, pos) {
        if std::str::from_utf8(l).ok().and_then(parse_header).is_some() {
            end = Some(pos);
            break;
        }
        pos = next;
    }
    let end = match end {
        Some(e) => e,
        None if eof => buf.len(),
        None => return None,
    };
    let text = &buf[at..end];
    ev.notes = text.split(|&b| b == b'\n').filter(|l| l.starts_with(b"[ecapture:")).map(|l| String::from_utf8_lossy(l).into_owned()).collect();
    ev.payload = text.to_vec();
    ev.rendered = true;
    Some((ev, end))
}

/// A poisoned lock (a panicking test thread) must not hide the real failure.
fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Shared {
    events: VecDeque<Event>,
    all: Vec<Event>,
    stderr: Vec<String>,
    stdout_closed: bool,
    stderr_closed: bool,
    /// Every byte of stdout, when asked for (`start_keep_raw`).
    raw: Option<Vec<u8>>,
}

/// A running ecapture with its output parsed as it comes.
pub struct Ecapture {
    child: Option<Child>,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    pub started: Instant,
}

impl Ecapture {
    /// Starts `ecapture <args>` and waits for "probes attached".
    pub fn start(args: &[&str]) -> Ecapture {
        Self::start_env(args, &[])
    }

    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Ecapture {
        Self::start_opts(args, env, false)
    }

    /// `start_env`, keeping a copy of stdout as it came (`raw_stdout`).
    pub fn start_keep_raw(args: &[&str], env: &[(&str, &str)]) -> Ecapture {
        Self::start_opts(args, env, true)
    }

    /// Everything ecapture wrote to stdout so far (with `start_keep_raw`).
    pub fn raw_stdout(&self) -> Vec<u8> {
        lock(&self.shared.0).raw.clone().expect("started with start_keep_raw")
    }

    fn start_opts(args: &[&str], env: &[(&str, &str)], keep_raw: bool) -> Ecapture {
        let mut cmd = ecapture_command();
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn ecapture");
        let shared = Arc::new((
            Mutex::new(Shared {
                events: VecDeque::new(),
                all: Vec::new(),
                stderr: Vec::new(),
                stdout_closed: false,
                stderr_closed: false,
                raw: keep_raw.then(Vec::new),
            }),
            Condvar::new(),
        ));
        let mut out = child.stdout.take().expect("stdout");
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 1 << 16];
            let mut eof = false;
            while !eof {
                let mut n_read = 0;
                match out.read(&mut chunk) {
                    Ok(0) | Err(_) => eof = true,
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        n_read = n;
                    }
                }
                let mut used = 0;
                let mut parsed = Vec::new();
                while let Some((ev, n)) = parse_event(&buf[used..], eof) {
                    parsed.push(ev);
                    used += n;
                    if used == buf.len() {
                        break;
                    }
                }
                buf.drain(..used);
                let (m, cv) = &*s;
                let mut g = lock(m);
                if let Some(raw) = g.raw.as_mut() {
                    raw.extend_from_slice(&chunk[..n_read]);
                }
                for ev in parsed {
                    g.all.push(ev.clone());
                    g.events.push_back(ev);
                }
                g.stdout_closed = eof;
                cv.notify_all();
            }
        });
        let err = child.stderr.take().expect("stderr");
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let (m, cv) = &*s;
                lock(m).stderr.push(line);
                cv.notify_all();
            }
            let (m, cv) = &*s;
            lock(m).stderr_closed = true;
            cv.notify_all();
        });
        let e = Ecapture { child: Some(child), shared, started };
        e.wait_stderr("probes attached");
        e
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Waits until a stderr line contains `needle`; returns it.
    pub fn wait_stderr(&self, needle: &str) -> String {
        let (m, cv) = &*self.shared;
        let deadline = Instant::now() + PATIENCE;
        let mut g = lock(m);
        loop {
            if let Some(l) = g.stderr.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            if g.stderr_closed || Instant::now() >= deadline {
                panic!("ecapture never logged {needle:?}; stderr:\n{}", g.stderr.join("\n"));
            }
            g = cv.wait_timeout(g, deadline - Instant::now()).unwrap().0;
        }
    }

    /// Waits for the first not yet taken event matching `pred`; events that
    /// do not match stay for later waits.
    pub fn wait_event(&self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        self.try_wait_event(PATIENCE, pred).unwrap_or_else(|| {
            panic!("no event {what} within {PATIENCE:?}; stderr:\n{}", lock(&self.shared.0).stderr.join("\n"))
        })
    }

    /// `wait_event` that gives up after `within` (or when stdout closes).
    pub fn try_wait_event(&self, within: Duration, pred: impl Fn(&Event) -> bool) -> Option<Event> {
        let (m, cv) = &*self.shared;
        let deadline = Instant::now() + within;
        let mut g = lock(m);
        loop {
            if let Some(bad) = g.events.iter().find(|e| e.dir == "UNPARSED") {
                panic!("ecapture printed something that is not an event: {:?}", bad.notes);
            }
            if let Some(i) = g.events.iter().position(&pred) {
                return g.events.remove(i);
            }
            if g.stdout_closed || Instant::now() >= deadline {
                return None;
            }
            g = cv.wait_timeout(g, deadline - Instant::now()).unwrap().0;
        }
    }

    /// The stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        lock(&self.shared.0).stderr.clone()
    }

    /// Sends SIGTERM and waits for exit; returns (status, time to exit,
    /// every event seen, stderr lines).
    pub fn stop(mut self) -> (ExitStatus, Duration, Vec<Event>, Vec<String>) {
        let mut child = self.child.take().expect("running");
        let t = Instant::now();
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = t + PATIENCE;
        let status = loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                break st;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("ecapture did not exit within {PATIENCE:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = t.elapsed();
        let (m, cv) = &*self.shared;
        let mut g = lock(m);
        while !(g.stdout_closed && g.stderr_closed) {
            g = cv.wait_timeout(g, PATIENCE).unwrap().0;
        }
        (status, took, g.all.clone(), g.stderr.clone())
    }
}

/// What a process used over its whole life.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Peak resident set (VmHWM of /proc/PID/status, the last value read
    /// before the process let go of its memory), in bytes. Not wait4's
    /// ru_maxrss: Linux carries the RSS of the memory a child had before
    /// exec (its parent's, when spawned with vfork) into it.
    pub peak_rss: u64,
    /// User and system CPU time (wait4's rusage).
    pub cpu: Duration,
}

/// VmHWM of a process in bytes; None once it has exited.
pub fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok().map(|k| k * 1024)
}

/// Resident bytes of a process's mappings of BPF maps (`anon_inode:bpf-map`
/// in /proc/PID/smaps): the ring buffer, which the kernel maps whole (its
/// data pages twice) when it is mmapped. Not ecapture's heap: constant from
/// start-up, set by --mapsize.
pub fn bpf_map_rss(pid: u32) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut total = 0;
    let mut in_map = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            in_map = line.contains("anon_inode:bpf-map");
        } else if in_map {
            if let Some(kb) = line.strip_prefix("Rss:") {
                total += kb.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0) * 1024;
            }
        }
    }
    total
}

impl Ecapture {
    /// Sends SIGINT, follows the process's peak RSS until it exits and
    /// reaps it with wait4(2) for its CPU time; returns (status, usage,
    /// every event seen, stderr lines).
    pub fn stop_measured(mut self) -> (ExitStatus, Usage, Vec<Event>, Vec<String>) {
        use std::os::unix::process::ExitStatusExt;
        let child = self.child.take().expect("running");
        let pid = child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + PATIENCE;
        let mut peak_rss = vm_hwm(pid as u32).unwrap_or(0);
        let (status, ru) = loop {
            // The high-water mark only grows: the last reading is the peak
            // but for the last millisecond of shutdown.
            if let Some(hwm) = vm_hwm(pid as u32) {
                peak_rss = peak_rss.max(hwm);
            }
            let mut status = 0;
            // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: wait4 on our own child with valid out-pointers.
            let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
            assert!(r >= 0, "wait4: {}", std::io::Error::last_os_error());
            if r == pid {
                break (ExitStatus::from_raw(status), ru);
            }
            if Instant::now() >= deadline {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("ecapture did not exit within {PATIENCE:?} of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        // Reaped by wait4: std's Child must not wait (or kill) it again.
        drop(child);
        let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
        let usage = Usage { peak_rss, cpu: tv(ru.ru_utime) + tv(ru.ru_stime) };
        let (m, cv) = &*self.shared;
        let mut g = lock(m);
        while !(g.stdout_closed && g.stderr_closed) {
            g = cv.wait_timeout(g, PATIENCE).unwrap().0;
        }
        (status, usage, g.all.clone(), g.stderr.clone())
    }
}

impl Drop for Ecapture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The BPF program and link ids a process holds (from /proc/PID/fdinfo).
pub fn bpf_ids(pid: u32) -> (Vec<u32>, Vec<u32>) {
    let (mut progs, mut links) = (Vec::new(), Vec::new());
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else { return (progs, links) };
    for e in dir.flatten() {
        let Ok(info) = std::fs::read_to_string(e.path()) else { continue };
        for line in info.lines() {
            if let Some(v) = line.strip_prefix("prog_id:") {
                progs.extend(v.trim().parse::<u32>().ok());
            }
            if let Some(v) = line.strip_prefix("link_id:") {
                links.extend(v.trim().parse::<u32>().ok());
            }
        }
    }
    progs.sort_unstable();
    progs.dedup();
    links.sort_unstable();
    links.dedup();
    (progs, links)
}

/// Whether the kernel still has a BPF object of `kind` ("prog" or "link") with `id`.
pub fn bpf_object_exists(kind: &str, id: u32) -> bool {
    Command::new("bpftool")
        .args([kind, "show", "id", &id.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The eCaptureQ URL a running ecapture listens on (from its log).
pub fn ecq_url(ec: &Ecapture) -> String {
    let line = ec.wait_stderr("eCaptureQ server listening on ");
    line.split("listening on ").nth(1).expect("url after 'listening on'").trim().to_string()
}

/// One decoded eCaptureQ message.
#[derive(Debug, Clone)]
pub enum Entry {
    Log(String),
    Heartbeat { timestamp: i64, count: i64, message: String },
    Event(Ev),
}

/// A decoded `Event`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ev {
    pub timestamp: i64,
    pub uuid: String,
    pub src_ip: String,
    pub src_port: u32,
    pub dst_ip: String,
    pub dst_port: u32,
    pub pid: i64,
    pub pname: String,
    pub kind: u32,
    pub length: u32,
    pub payload: Vec<u8>,
    /// DIR of the uuid: 0 read, 1 write.
    pub dir: u32,
}

impl Ev {
    pub fn dir(&self) -> u32 {
        self.dir
    }
}

fn decode_entry(data: &[u8]) -> Entry {
    use ecapture::ecaptureq::proto::{self, Payload};
    let entry = proto::decode(data).expect("every frame is a LogEntry");
    let log_type = entry.log_type;
    match proto::payload(entry) {
        Payload::Log(l) => {
            assert_eq!(log_type, proto::LogType::LOG_TYPE_PROCESS_LOG);
            Entry::Log(l.into_owned())
        }
        Payload::Heartbeat(h) => {
            assert_eq!(log_type, proto::LogType::LOG_TYPE_HEARTBEAT);
            Entry::Heartbeat { timestamp: h.timestamp, count: h.count, message: h.message.into_owned() }
        }
        Payload::Event(e) => {
            assert_eq!(log_type, proto::LogType::LOG_TYPE_EVENT);
            let dir = e.uuid.split('_').nth(4).and_then(|d| d.parse().ok()).expect("uuid has a DIR field");
            Entry::Event(Ev {
                dir,
                timestamp: e.timestamp,
                uuid: e.uuid.into_owned(),
                src_ip: e.src_ip.into_owned(),
                src_port: e.src_port,
                dst_ip: e.dst_ip.into_owned(),
                dst_port: e.dst_port,
                pid: e.pid,
                pname: e.pname.into_owned(),
                kind: e.type_pb,
                length: e.length,
                payload: e.payload.into_owned(),
            })
        }
        Payload::Empty => panic!("a LogEntry without payload"),
    }
}

struct ClientState {
    entries: Vec<Entry>,
    closed: Option<String>,
}

/// A WebSocket client of eCaptureQ that decodes and keeps every message.
pub struct EcqClient {
    shared: Arc<(Mutex<ClientState>, Condvar)>,
    sock: std::net::TcpStream,
}

impl EcqClient {
    pub fn connect(url: &str) -> EcqClient {
        Self::connect_with(url, &[]).unwrap_or_else(|e| panic!("connect to {url}: {e}"))
    }

    /// Connects with extra request headers (Origin, Authorization).
    pub fn connect_with(url: &str, headers: &[(&str, &str)]) -> Result<EcqClient, tungstenite::Error> {
        use tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request()?;
        for (k, v) in headers {
            let name = tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("header name");
            req.headers_mut().insert(name, v.parse().expect("header value"));
        }
        let (mut ws, _) = tungstenite::connect(req)?;
        let sock = match ws.get_ref() {
            tungstenite::stream::MaybeTlsStream::Plain(s) => s.try_clone().expect("clone socket"),
            _ => unreachable!("plain ws only"),
        };
        let shared = Arc::new((Mutex::new(ClientState { entries: Vec::new(), closed: None }), Condvar::new()));
        let s = Arc::clone(&shared);
        std::thread::spawn(move || loop {
            let got = ws.read();
            let (m, cv) = &*s;
            let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
            match got {
                Ok(tungstenite::Message::Binary(data)) => g.entries.push(decode_entry(&data)),
                // The server's Close frame: its code is the reason.
                Ok(tungstenite::Message::Close(f)) => {
                    g.closed.get_or_insert(format!("Close frame {}", f.map_or(0, |f| u16::from(f.code))));
                }
                Ok(_) => {}
                Err(e) => {
                    g.closed.get_or_insert(e.to_string());
                    cv.notify_all();
                    return;
                }
            }
            cv.notify_all();
        });
        Ok(EcqClient { shared, sock })
    }

    /// Waits until `pred` holds for everything received so far.
    pub fn wait(&self, what: &str, pred: impl Fn(&[Entry]) -> bool) {
        let (m, cv) = &*self.shared;
        let deadline = Instant::now() + PATIENCE;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        while !pred(&g.entries) {
            if Instant::now() >= deadline {
                panic!("eCaptureQ client: {what} did not happen within {PATIENCE:?} (closed: {:?}; {} messages)", g.closed, g.entries.len());
            }
            g = cv.wait_timeout(g, deadline - Instant::now()).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Waits until `n` events of `pid` in direction `dir` of type `kind`
    /// have arrived, looking at each message once (thousands of events
    /// would make re-scanning quadratic and the client slow).
    pub fn wait_count(&self, what: &str, pid: u32, dir: u32, kind: u32, n: usize) {
        let (m, cv) = &*self.shared;
        let deadline = Instant::now() + PATIENCE;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        let (mut seen, mut count) = (0, 0);
        loop {
            count += events_iter(&g.entries[seen..], pid).filter(|e| e.dir == dir && e.kind == kind).count();
            seen = g.entries.len();
            if count >= n {
                return;
            }
            if Instant::now() >= deadline {
                // What came instead, and what the server said about losses.
                let mut kinds = std::collections::BTreeMap::new();
                for e in events_iter(&g.entries, pid) {
                    *kinds.entry((e.dir, e.kind)).or_insert(0usize) += 1;
                }
                let losses: Vec<&String> = g
                    .entries
                    .iter()
                    .filter_map(|e| match e {
                        Entry::Log(l) if l.contains("lost") || l.contains("too slow") => Some(l),
                        _ => None,
                    })
                    .collect();
                panic!(
                    "eCaptureQ client: {what}: {count} of {n} within {PATIENCE:?} (closed: {:?}); \
                     events of pid {pid} by (dir, type): {kinds:?}; loss reports: {losses:?}",
                    g.closed
                );
            }
            g = cv.wait_timeout(g, deadline - Instant::now()).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Waits until the server closes the connection; returns why.
    pub fn wait_closed(&self) -> String {
        let (m, cv) = &*self.shared;
        let deadline = Instant::now() + PATIENCE;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(why) = &g.closed {
                return why.clone();
            }
            if Instant::now() >= deadline {
                panic!("eCaptureQ client: still connected after {PATIENCE:?}");
            }
            g = cv.wait_timeout(g, deadline - Instant::now()).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).entries.clone()
    }

    /// The events of process `pid` received so far.
    pub fn events_of(&self, pid: u32) -> Vec<Ev> {
        events_of(&self.entries(), pid)
    }
}

pub fn events_of(entries: &[Entry], pid: u32) -> Vec<Ev> {
    events_iter(entries, pid).cloned().collect()
}

/// The events of `pid` in `entries`, borrowed (for wait predicates, which
/// run on every message).
pub fn events_iter(entries: &[Entry], pid: u32) -> impl Iterator<Item = &Ev> {
    entries.iter().filter_map(move |e| match e {
        Entry::Event(ev) if ev.pid == pid as i64 => Some(ev),
        _ => None,
    })
}

impl Drop for EcqClient {
    fn drop(&mut self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

/// Parses every event of a text-format capture (a file, or stdout).
pub fn events_in(text: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let (ev, n) = parse_event(&text[at..], true).unwrap_or_else(|| panic!("incomplete event at byte {at}"));
        assert_ne!(ev.dir, "UNPARSED", "not an event: {:?}", ev.notes);
        out.push(ev);
        at += n;
    }
    out
}

/// Printable, position-dependent bytes: any shift or loss shows.
pub fn pattern(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 64);
    let mut i = 0;
    while v.len() < n {
        v.extend_from_slice(format!("{i:08} the quick brown fox jumps over the lazy dog\n").as_bytes());
        i += 1;
    }
    v.truncate(n);
    v
}

/// Runs tests/tls_client.py (Python's ssl: SSL_write_ex) against the test
/// server on 127.0.0.1:`port` with `args` (a file, or COUNT SIZE); returns
/// the client's pid once it is done.
pub fn py_client(port: u16, args: &[&std::ffi::OsStr]) -> u32 {
    py_client_as(None, port, args)
}

/// `py_client` running as user `uid` (see `python_as`).
pub fn py_client_as(uid: Option<u32>, port: u16, args: &[&std::ffi::OsStr]) -> u32 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls_client.py");
    let mut py = python_as(uid)
        .arg(script)
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .expect("run /usr/bin/python3 tests/tls_client.py");
    let pid = py.id();
    assert!(py.wait().expect("wait for the python client").success(), "python client failed");
    pid
}

/// One PUT whose body, `file`, goes in one SSL_write_ex.
pub fn python_put(port: u16, file: &Path) -> u32 {
    py_client(port, &[file.as_os_str()])
}

/// The lines a child prints, as they come, through a channel.
pub fn lines_of(out: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The Go versions of the gotls fixture (tests/gotls/build.sh's VERSIONS,
/// or $GOTLS_GO_VERSIONS as for it).
pub fn go_versions() -> Vec<String> {
    let list = std::env::var("GOTLS_GO_VERSIONS").unwrap_or_else(|_| "1.27.3 1.21.13".to_string());
    list.split_whitespace().map(str::to_string).collect()
}

/// A program of the gotls fixture (target/gotls/VERSION/NAME, or under
/// $GOTLS_OUT), as `built_fixture` finds it.
pub fn gotls_fixture(test: &str, version: &str, name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("GOTLS_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/gotls"));
    built_fixture(test, dir.join(version).join(name), "make gotls` (tests/gotls/build.sh")
}

/// A file a fixture build makes (`how`: "make X` (its script"); None (said
/// loudly) when it was not built, a failure when tests are mandatory
/// (ECAPTURE_E2E=1, as in CI).
pub fn built_fixture(test: &str, p: PathBuf, how: &str) -> Option<PathBuf> {
    if p.exists() {
        return Some(p);
    }
    let why = format!("{} is missing: run `{how})", p.display());
    if std::env::var_os("ECAPTURE_E2E").is_some_and(|v| v == "1") {
        panic!("{test}: {why}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "*** SKIPPED {test}: {why} ***");
    None
}

/// curl's arguments for the TLS variants the key tests decrypt: TLS 1.2
/// with an AES-GCM and a ChaCha20 suite, and TLS 1.3.
pub const CURL_TLS_VARIANTS: [&[&str]; 3] = [
    &["--tlsv1.2", "--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384"],
    &["--tlsv1.2", "--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305"],
    &["--tlsv1.3"],
];

/// A copy of the executable `exe` in `dir`, for a test that hooks every
/// process running an executable (`gotls --elfpath`, uprobes are per inode):
/// with its own copy it sees only its own processes, not those of a test
/// running the same fixture beside it.
pub fn own_copy(exe: &Path, dir: &Path) -> PathBuf {
    let name = exe.file_name().unwrap_or_else(|| panic!("{} has no file name", exe.display()));
    let copy = dir.join(name);
    std::fs::copy(exe, &copy).unwrap_or_else(|e| panic!("copy {} to {}: {e}", exe.display(), copy.display()));
    copy
}

/// A test peer's server (`PEER server PORT CERT KEY`: bssl_peer, the Go
/// peer) on 127.0.0.1:port with a fresh certificate, returned once it
/// says "listening PORT".
pub fn peer_server(peer: &Path, dir: &Path, port: u16) -> Proc {
    let (cert, key) = make_cert(dir);
    let mut child = Command::new(peer)
        .arg("server")
        .arg(port.to_string())
        .arg(cert)
        .arg(key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {} server: {e}", peer.display()));
    let lines = lines_of(child.stdout.take().expect("server stdout"));
    let line = lines.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("{} server never said it listens", peer.display()));
    assert_eq!(line, format!("listening {port}"));
    Proc(child)
}

/// Runs ecapture, which must exit on its own within a few seconds (a
/// usage error that slipped through would start capturing, as root);
/// returns its exit status, stdout and stderr.
pub fn run_to_exit(args: &[&str]) -> (i32, String, String) {
    let mut child = ecapture_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ecapture");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ecapture {args:?} did not exit: it should have refused these arguments");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("collect output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
