//! End-to-end tests of `--eventaddr` / `--logaddr`: files (mode, append,
//! rotation), TCP and WebSocket collectors that come and go, JSON lines.
//! Each test captures only its own user's processes (`--uid`), so other
//! tests' traffic stays out.

mod util;

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use util::*;

/// Waits until `f` returns Some, polling a file the sink writes (there is
/// no signal for "the sink thread wrote it").
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} did not happen within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn events_file_is_0600_and_appended_and_logs_reach_logaddr() {
    if !e2e_enabled("sink_file") {
        return;
    }
    let dir = TempDir::new("sink-file");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let (events, logs) = (dir.path().join("events.txt"), dir.path().join("ecapture.log"));
    std::fs::write(&events, b"a line that was there before\n").unwrap();
    std::fs::set_permissions(&events, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fresh = dir.path().join("fresh.txt");
    let ec = Ecapture::start(&["tls", "--uid", "61101", "--eventaddr", events.to_str().unwrap(), "-l", logs.to_str().unwrap()]);
    let ec2 = Ecapture::start(&["tls", "--uid", "61101", "--eventaddr", fresh.to_str().unwrap()]);
    let pid = curl_as(61101, &format!("https://127.0.0.1:{port}/to-a-file"));
    let (status, _, stdout_events, _) = ec.stop();
    ec2.stop();
    assert!(status.success());
    assert!(stdout_events.is_empty(), "with --eventaddr, nothing on stdout");

    let text = std::fs::read(&events).unwrap();
    let first = b"a line that was there before\n";
    assert!(text.starts_with(first), "appended, never truncated");
    let evs = events_in(&text[first.len()..]);
    let req = evs.iter().find(|e| e.pid == pid && e.dir == "WRITE").expect("curl's request in the file");
    assert!(req.payload.starts_with(b"GET /to-a-file HTTP/1.1\r\n"));
    assert!(evs.iter().any(|e| e.pid == pid && e.dir == "READ"));
    assert_eq!(std::fs::metadata(&events).unwrap().permissions().mode() & 0o777, 0o600, "an existing file keeps its mode");
    assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o600, "a new file is 0600");
    assert_eq!(std::fs::metadata(&logs).unwrap().permissions().mode() & 0o777, 0o600);
    let log = std::fs::read_to_string(&logs).unwrap();
    assert!(log.lines().any(|l| l.contains(" INFO  probes attached")), "{log}");
    assert!(log.lines().last().unwrap().contains(" INFO  ") && log.contains(" bytes captured; lost 0 "), "{log}");
    let rfc3339 = log.lines().next().unwrap().split(' ').next().unwrap();
    assert!(rfc3339.len() == 27 && rfc3339.ends_with('Z') && rfc3339.as_bytes()[10] == b'T', "{rfc3339}");
}

#[test]
fn rotation_by_size_keeps_every_event_exactly_once() {
    if !e2e_enabled("sink_rotation") {
        return;
    }
    let dir = TempDir::new("sink-rotate");
    let (_server, port) = py_server(dir.path(), "127.0.0.1");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let events = out.join("ev.log");
    let ec = Ecapture::start(&["tls", "--uid", "61102", "--eventaddr", events.to_str().unwrap(), "--eventroratesize", "1"]);
    // 12 writes of 300 KB: 3.6 MB of events, so at least three rotations.
    let (count, size) = (12usize, 300_000usize);
    let pid = py_client_as(Some(61102), port, &[count.to_string().as_ref(), size.to_string().as_ref()]);
    let (status, _, _, stderr) = ec.stop();
    assert!(status.success());
    assert!(stderr.iter().any(|l| l.contains("rotated ") && l.contains("ev-")), "{stderr:?}");

    let mut files: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort(); // ev-<stamp>.log in time order, then ev.log (the current one)
    let current = files.iter().position(|f| *f == events).expect("the current file");
    let cur = files.remove(current);
    files.push(cur);
    assert!(files.len() >= 4, "{files:?}");
    let mut all = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if *f != events {
            // name-YYYY-MM-DDTHH-MM-SS.mmm.ext
            let stamp = name.strip_prefix("ev-").and_then(|s| s.strip_suffix(".log")).expect("rotated name");
            assert_eq!(stamp.len(), 23, "{name}");
            assert_eq!((&stamp[4..5], &stamp[10..11], &stamp[13..14], &stamp[19..20]), ("-", "T", "-", "."), "{name}");
            assert!(std::fs::metadata(f).unwrap().len() <= 1 << 20 || events_in(&std::fs::read(f).unwrap()).len() == 1);
        }
        // Each file holds whole events.
        all.extend(events_in(&std::fs::read(f).unwrap()));
    }
    let writes: Vec<&Event> = all.iter().filter(|e| e.pid == pid && e.payload.starts_with(b"PUT /bulk/")).collect();
    assert_eq!(writes.len(), count, "every request exactly once across the files");
    for (i, w) in writes.iter().enumerate() {
        let head = format!("PUT /bulk/{i} HTTP/1.1\r\nContent-Length: {size}\r\n\r\n{i:08} ");
        assert!(w.payload.starts_with(head.as_bytes()), "request {i} out of order");
        assert_eq!(w.length, head.len() - 9 + size, "request {i} whole");
    }
}

/// A TCP collector: accepts connections one at a time and keeps all bytes.
struct Collector {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
}

impl Collector {
    fn start(port: u16, data: Arc<(Mutex<Vec<u8>>, Condvar)>) -> Collector {
        let l = TcpListener::bind(("127.0.0.1", port)).expect("bind the collector port");
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (d, s) = (Arc::clone(&data), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                        let mut buf = [0u8; 65536];
                        while !s.load(std::sync::atomic::Ordering::SeqCst) {
                            match c.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    d.0.lock().unwrap().extend_from_slice(&buf[..n]);
                                    d.1.notify_all();
                                }
                                Err(_) => {}
                            }
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Collector { stop, thread: Some(thread), port }
    }

    /// Closes the listener and the connection.
    fn stop(mut self) -> u16 {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.port
    }
}

fn wait_for_text(data: &Arc<(Mutex<Vec<u8>>, Condvar)>, needle: &str) {
    let deadline = Instant::now() + PATIENCE;
    let mut g = data.0.lock().unwrap();
    while !String::from_utf8_lossy(&g).contains(needle) {
        assert!(Instant::now() < deadline, "the collector never got {needle:?}");
        g = data.1.wait_timeout(g, Duration::from_millis(100)).unwrap().0;
    }
}

#[test]
fn tcp_collector_that_starts_late_and_restarts_gets_everything() {
    if !e2e_enabled("sink_tcp") {
        return;
    }
    let dir = TempDir::new("sink-tcp");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let cport = free_port();
    let ec = Ecapture::start(&["tls", "--uid", "61103", "--eventaddr", &format!("tcp://127.0.0.1:{cport}"), "--eventformat", "json"]);
    ec.wait_stderr(&format!("tcp://127.0.0.1:{cport} unreachable"));
    // Before the collector exists: buffered.
    curl_as(61103, &format!("https://127.0.0.1:{port}/while-down-1"));
    let data = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    let c = Collector::start(cport, Arc::clone(&data));
    wait_for_text(&data, "GET /while-down-1 ");
    curl_as(61103, &format!("https://127.0.0.1:{port}/while-up"));
    wait_for_text(&data, "GET /while-up ");
    // The collector goes away; capture goes on; it comes back.
    let cport = c.stop();
    curl_as(61103, &format!("https://127.0.0.1:{port}/while-down-2"));
    ec.wait_stderr("closed the connection; reconnecting");
    let c = Collector::start(cport, Arc::clone(&data));
    wait_for_text(&data, "GET /while-down-2 ");
    ec.wait_stderr(&format!("tcp://127.0.0.1:{cport} is back"));
    let (status, _, _, stderr) = ec.stop();
    c.stop();
    assert!(status.success());
    let text = String::from_utf8(data.0.lock().unwrap().clone()).unwrap();
    for path in ["/while-down-1", "/while-up", "/while-down-2"] {
        let n = text.lines().filter(|l| l.contains(&format!("GET {path} HTTP/1.1"))).count();
        assert_eq!(n, 1, "{path} exactly once: {text}");
    }
    assert!(stderr.iter().any(|l| l.contains("sinks: ") && l.contains(" 0 dropped")), "{stderr:?}");
}

#[test]
fn websocket_collector_gets_one_text_frame_per_json_event() {
    if !e2e_enabled("sink_ws") {
        return;
    }
    let dir = TempDir::new("sink-ws");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let wport = listener.local_addr().unwrap().port();
    let frames = Arc::new(Mutex::new(Vec::<String>::new()));
    let f = Arc::clone(&frames);
    // Returns the code of the Close frame ecapture ends with (None: none).
    let collector = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(s).unwrap();
        let mut close = None;
        loop {
            match ws.read() {
                Ok(tungstenite::Message::Text(t)) => f.lock().unwrap().push(t.to_string()),
                Ok(tungstenite::Message::Binary(_)) => panic!("records are text frames"),
                Ok(tungstenite::Message::Close(c)) => close = Some(c.map_or(0, |c| u16::from(c.code))),
                Ok(_) => {}
                Err(_) => return close,
            }
        }
    });
    let ec = Ecapture::start(&["tls", "--uid", "61104", "--eventaddr", &format!("ws://127.0.0.1:{wport}/ingest"), "--eventformat", "json"]);
    let pid = curl_as(61104, &format!("https://127.0.0.1:{port}/over-ws"));
    eventually("two frames", || (frames.lock().unwrap().len() >= 2).then_some(()));
    let (status, _, _, _) = ec.stop();
    assert!(status.success());
    assert_eq!(collector.join().unwrap(), Some(1000), "ecapture ends the WebSocket with a Close frame");
    let frames = frames.lock().unwrap().clone();
    // A standard JSON parser reads every frame; check the fields with it.
    let check = r#"
import json, sys
pid, port = int(sys.argv[1]), int(sys.argv[2])
events = [json.loads(line) for line in sys.stdin]
w = [e for e in events if e["pid"] == pid and e["direction"] == "write"]
r = [e for e in events if e["pid"] == pid and e["direction"] == "read"]
assert len(w) == 1 and len(r) == 1, events
w, r = w[0], r[0]
assert w["pname"] == "curl" and w["type"] == 1 and r["type"] == 3, (w, r)
assert w["length"] == len(w["payload"]) and w["payload_encoding"] == "utf-8"
assert w["payload"].startswith("GET /over-ws HTTP/1.1\r\n"), w["payload"]
assert w["src_ip"] == "127.0.0.1" and w["dst_port"] == port and r["dst_port"] == port
assert w["tls_version"] == "TLS1.3" and w["uuid"].split("_")[4] == "1" and r["uuid"].split("_")[4] == "0"
print("ok")
"#;
    let mut py = Command::new("/usr/bin/python3")
        .args(["-c", check, &pid.to_string(), &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = py.stdin.take().unwrap();
        for fr in &frames {
            assert!(!fr.contains('\n'), "one record per frame, no trailing newline");
            writeln!(stdin, "{fr}").unwrap();
        }
    }
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "the frames do not hold the right JSON events: {frames:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

#[test]
fn json_lines_file_parses_and_binary_payloads_are_base64() {
    if !e2e_enabled("sink_json") {
        return;
    }
    let dir = TempDir::new("sink-json");
    let (_server, port) = py_server(dir.path(), "127.0.0.1");
    let bin = dir.path().join("bin.dat");
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&bin, &data).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = dir.path().join("events.jsonl");
    let ec = Ecapture::start(&["tls", "--uid", "61105", "--eventaddr", out.to_str().unwrap(), "--eventformat", "json"]);
    let pid = py_client_as(Some(61105), port, &[bin.as_os_str()]);
    ec.stop();
    let check = r#"
import base64, json, sys
pid, want = int(sys.argv[1]), open(sys.argv[2], "rb").read()
found = 0
for line in open(sys.argv[3]):
    e = json.loads(line)
    for k in ("timestamp", "uuid", "src_ip", "src_port", "dst_ip", "dst_port", "pid", "pname", "type", "length",
              "payload", "payload_encoding", "direction", "tid", "uid", "fd", "tls_version"):
        assert k in e, k
    if e["pid"] == pid and e["direction"] == "write":
        # The PUT: its head then the binary body, as one HTTP/1.x request.
        body = base64.b64decode(e["payload"])
        assert e["payload_encoding"] == "base64" and body.endswith(want) and body.startswith(b"PUT /bulk HTTP/1.1\r\n")
        assert e["uid"] == 61105 and e["type"] == 1 and e["length"] == len(body)
        found += 1
assert found == 1, found
"#;
    let st = Command::new("/usr/bin/python3").args(["-c", check, &pid.to_string()]).arg(&bin).arg(&out).status().unwrap();
    assert!(st.success(), "the JSON lines check failed");
}

#[test]
fn bad_sink_paths_are_errors_at_start() {
    if !e2e_enabled("sink_bad") {
        return;
    }
    for (arg, want) in [
        ("/tmp", "ecapture: /tmp is a directory, expected a file"),
        ("/nonexistent-ecapture-dir/x.log", "ecapture: /nonexistent-ecapture-dir/x.log: directory /nonexistent-ecapture-dir does not exist"),
    ] {
        let out = Command::new(bin()).args(["tls", "--eventaddr", arg]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{arg}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().last(), Some(want));
    }
}

#[test]
fn rotation_by_time() {
    if !e2e_enabled("sink_rotation_time") {
        return;
    }
    let dir = TempDir::new("sink-rotate-time");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let events = out.join("ev.log");
    let ec = Ecapture::start(&["tls", "--uid", "61106", "--eventaddr", events.to_str().unwrap(), "--eventroratetime", "1"]);
    curl_as(61106, &format!("https://127.0.0.1:{port}/first"));
    // The age check runs every second: wait for the rotated file.
    let rotated = eventually("a rotation after 1 s", || {
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).find(|p| *p != events)
    });
    curl_as(61106, &format!("https://127.0.0.1:{port}/second"));
    ec.stop();
    let first = events_in(&std::fs::read(&rotated).unwrap());
    assert!(first.iter().any(|e| e.payload.starts_with(b"GET /first ")), "{rotated:?}");
    assert!(!first.iter().any(|e| e.payload.starts_with(b"GET /second ")));
    let rest: Vec<Event> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| *p != rotated)
        .flat_map(|p| events_in(&std::fs::read(p).unwrap()))
        .collect();
    assert!(rest.iter().any(|e| e.payload.starts_with(b"GET /second ")));
}
