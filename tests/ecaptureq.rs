//! End-to-end tests of `--ecaptureq`: real TLS traffic captured as root and
//! streamed to WebSocket clients — ours (decoding with the crate's
//! protobuf types), the demo client, and Python with python3-protobuf.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use util::*;

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

fn start(extra: &[&str]) -> (Ecapture, String) {
    let mut args = vec!["tls", "--ecaptureq", "ws://127.0.0.1:0/"];
    args.extend_from_slice(extra);
    let ec = Ecapture::start(&args);
    let url = ecq_url(&ec);
    (ec, url)
}

fn has_event(pid: u32, dir: u32) -> impl Fn(&[Entry]) -> bool {
    move |es| events_iter(es, pid).any(|e| e.dir() == dir)
}


#[test]
fn two_clients_get_the_same_events_with_every_field() {
    if !e2e_enabled("ecq_fields") {
        return;
    }
    let dir = TempDir::new("ecq-fields");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let (ec, url) = start(&[]);
    let (a, b) = (EcqClient::connect(&url), EcqClient::connect(&url));
    let before = now_ns();
    let (pid, st) = curl(&format!("https://127.0.0.1:{port}/fields"), &[]);
    assert!(st.success());
    for c in [&a, &b] {
        c.wait("curl's request and response", |es| has_event(pid, 1)(es) && has_event(pid, 0)(es));
    }
    let ev_a = a.events_of(pid);
    assert_eq!(ev_a, b.events_of(pid), "both clients get the same events, in the same order");

    let req = ev_a.iter().find(|e| e.dir() == 1).unwrap();
    assert_eq!((req.pid, req.pname.as_str()), (pid as i64, "curl"));
    assert_eq!((req.src_ip.as_str(), req.dst_ip.as_str(), req.dst_port), ("127.0.0.1", "127.0.0.1", port as u32));
    assert!(req.src_port > 0 && req.src_port != port as u32);
    assert!(req.timestamp >= before - 1_000_000_000 && req.timestamp <= now_ns(), "timestamp {} is not now", req.timestamp);
    assert_eq!(req.kind, 1, "HTTP/1.x request");
    assert_eq!(req.length as usize, req.payload.len());
    assert!(req.payload.starts_with(b"GET /fields HTTP/1.1\r\n"));
    // PID_TID_COMM_FD_DIR_SRC-DST with src the client.
    let parts: Vec<&str> = req.uuid.splitn(6, '_').collect();
    assert_eq!(parts[..3], [pid.to_string().as_str(), pid.to_string().as_str(), "curl"], "{}", req.uuid);
    assert!(parts[3].parse::<u32>().unwrap() >= 3, "fd in {}", req.uuid);
    assert_eq!(parts[4], "1");
    assert_eq!(parts[5], format!("127.0.0.1:{}-127.0.0.1:{port}", req.src_port));

    let resp = ev_a.iter().find(|e| e.dir() == 0).unwrap();
    assert_eq!(resp.kind, 3, "HTTP/1.x response");
    assert!(resp.payload.starts_with(b"HTTP/1.0 200 ok\r\n"));
    assert_eq!((resp.src_port, resp.dst_port), (req.src_port, req.dst_port), "src stays the client for a read");
    assert_eq!(resp.length as usize, resp.payload.len());

    // Logs went to the clients too, and nothing to stdout.
    assert!(a.entries().iter().any(|e| matches!(e, Entry::Log(l) if l.contains("probes attached"))));
    let (status, _, stdout_events, _) = ec.stop();
    assert!(status.success());
    assert!(stdout_events.is_empty(), "with --ecaptureq, events go to its clients only");
    // The summary reaches the clients before they are closed, with a Close
    // frame (1000), not a dropped connection.
    assert_eq!(a.wait_closed(), "Close frame 1000");
    assert!(a.entries().iter().any(|e| matches!(e, Entry::Log(l) if l.contains("bytes captured; lost"))));
}

#[test]
fn server_side_roles_from_the_ssl_object() {
    if !e2e_enabled("ecq_roles") {
        return;
    }
    let dir = TempDir::new("ecq-roles");
    let (server, port) = py_server(dir.path(), "127.0.0.1");
    let (ec, url) = start(&[]);
    let c = EcqClient::connect(&url);
    let (cpid, _) = curl(&format!("https://127.0.0.1:{port}/roles"), &[]);
    c.wait("the server's read and write", |es| has_event(server.pid(), 0)(es) && has_event(server.pid(), 1)(es));
    c.wait("curl's write", has_event(cpid, 1));
    let creq = c.events_of(cpid).into_iter().find(|e| e.dir() == 1).unwrap();
    for e in c.events_of(server.pid()) {
        // The server's events name the same client and server as curl's.
        assert_eq!((e.src_port, e.dst_port), (creq.src_port, port as u32), "{}", e.uuid);
        assert!(e.uuid.ends_with(&format!("127.0.0.1:{}-127.0.0.1:{port}", creq.src_port)));
    }
    let sreq = c.events_of(server.pid()).into_iter().find(|e| e.dir() == 0).unwrap();
    assert_eq!((sreq.kind, sreq.pname.as_str()), (1, "python3"));
    assert_eq!(sreq.payload, creq.payload);
    ec.stop();
}

#[test]
fn late_client_gets_replayed_logs_then_heartbeats_from_0() {
    if !e2e_enabled("ecq_replay") {
        return;
    }
    let ec = Ecapture::start_env(
        &["tls", "--ecaptureq", "ws://127.0.0.1:0/", "--eventaddr", "/tmp/unused-events.log"],
        &[("ECAPTURE_HEARTBEAT_MS", "300")],
    );
    let url = ecq_url(&ec);
    let c = EcqClient::connect(&url);
    c.wait("three heartbeats", |es| es.iter().filter(|e| matches!(e, Entry::Heartbeat { .. })).count() >= 3);
    let es = c.entries();
    let first_beat = es.iter().position(|e| matches!(e, Entry::Heartbeat { .. })).unwrap();
    let replay: Vec<&str> = es[..first_beat]
        .iter()
        .map(|e| match e {
            Entry::Log(l) => l.as_str(),
            other => panic!("before the first heartbeat only logs are replayed, got {other:?}"),
        })
        .collect();
    assert!(replay[0].contains("eCaptureQ server listening on"), "{replay:?}");
    assert!(replay.iter().any(|l| l.contains("hooking ")), "{replay:?}");
    assert!(replay.iter().any(|l| l.contains("probes attached")), "{replay:?}");
    assert!(
        replay.iter().any(|l| l.contains("--eventaddr /tmp/unused-events.log is not used: --ecaptureq takes priority")),
        "{replay:?}"
    );
    assert!(!std::path::Path::new("/tmp/unused-events.log").exists());
    let beats: Vec<(i64, i64, String)> = es
        .iter()
        .filter_map(|e| match e {
            Entry::Heartbeat { timestamp, count, message } => Some((*timestamp, *count, message.clone())),
            _ => None,
        })
        .collect();
    assert_eq!((beats[0].1, beats[0].2.as_str()), (0, "heartbeat:0"));
    assert_eq!((beats[1].1, beats[1].2.as_str()), (1, "heartbeat:1"));
    assert_eq!(beats[2].1, 2);
    assert!((beats[0].0 - now_ns() / 1_000_000_000).abs() <= 5, "heartbeat time is Unix seconds");
    // Lines logged while connected arrive live, once: this client's own arrival.
    let live = es.iter().filter(|e| matches!(e, Entry::Log(l) if l.contains("connected (1 connected)"))).count();
    assert_eq!(live, 1);
    ec.stop();
}

/// A WebSocket client that completes its handshake and then reads nothing,
/// with a tiny receive buffer so the server feels it at once.
fn stalled_client(url: &str) -> tungstenite::WebSocket<TcpStream> {
    let hostport = url.trim_start_matches("ws://").trim_end_matches('/');
    let sock = socket2_like_small_rcvbuf(hostport);
    let (ws, _) = tungstenite::client(url, sock).expect("stalled client handshake");
    ws
}

/// A TCP connection with SO_RCVBUF set small before connecting.
fn socket2_like_small_rcvbuf(hostport: &str) -> TcpStream {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let addr: std::net::SocketAddrV4 = hostport.parse().expect("an IPv4 host:port");
    // SAFETY: plain socket calls on a new fd that we own, with valid pointers.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let size: libc::c_int = 4096;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&size as *const libc::c_int).cast(), 4);
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*addr.ip()).to_be() },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(fd, (&sa as *const libc::sockaddr_in).cast(), std::mem::size_of::<libc::sockaddr_in>() as u32);
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd.into_raw_fd())
    }
}

#[test]
fn stalled_client_loses_its_oldest_events_and_the_fast_one_loses_none() {
    if !e2e_enabled("ecq_stalled") {
        return;
    }
    let dir = TempDir::new("ecq-stalled");
    let (_server, port) = py_server(dir.path(), "127.0.0.1");
    // Only this test's client (its own uid): other tests' traffic stays out.
    // 32 MiB rings: the python client writes 48 MB as fast as it can, and
    // this test is about fan-out, not about how much a busy machine's rings
    // absorb (a clean-clone run once missed 187 requests here).
    let (ec, url) = start(&["--uid", "61051", "--mapsize", "8192"]);
    let mut stalled = stalled_client(&url);
    let fast = EcqClient::connect(&url);
    // 6000 writes of 8 KiB: ~50 MB of events, more than a client's queue
    // (32 MiB) holds, so the stalled client must lose some.
    let (count, size) = (6000usize, 8192usize);
    let started = Instant::now();
    let pid = py_client_as(Some(61051), port, &[count.to_string().as_ref(), size.to_string().as_ref()]);
    fast.wait_count("every request of the python client", pid, 1, 1, count);
    let took = started.elapsed();
    let writes: Vec<Ev> = fast.events_of(pid).into_iter().filter(|e| e.dir() == 1 && e.kind == 1).collect();
    for (i, e) in writes.iter().enumerate() {
        let head = format!("PUT /bulk/{i} HTTP/1.1\r\nContent-Length: {size}\r\n\r\n{i:08} ");
        assert!(e.payload.starts_with(head.as_bytes()), "request {i} out of order or missing");
        assert_eq!(e.payload.len(), head.len() - 9 + size, "request {i} whole");
    }
    // The stalled client now reads: it is told what it lost, and is still served.
    let mut told = false;
    let deadline = Instant::now() + PATIENCE;
    stalled.get_mut().set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    while !told && Instant::now() < deadline {
        match stalled.read() {
            Ok(tungstenite::Message::Binary(data)) => {
                if let Ok(e) = ecapture::ecaptureq::proto::decode(&data) {
                    if let ecapture::ecaptureq::proto::Payload::Log(l) = ecapture::ecaptureq::proto::payload(e) {
                        told |= l.contains("this client is too slow") && l.contains("events dropped");
                    }
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("stalled client lost its connection: {e}"),
        }
    }
    assert!(told, "the slow client is told in a run_log that it lost events");
    let (status, _, _, stderr) = ec.stop();
    assert!(status.success());
    let summary = stderr.iter().find(|l| l.contains("events dropped for slow clients")).expect("summary");
    let dropped: u64 = summary.rsplit("clients served, ").next().unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(dropped > 0, "{summary}");
    eprintln!("fast client got {count} events in {took:?} next to a stalled one; {dropped} dropped for the stalled one");
}

#[test]
fn fifty_clients_all_get_every_event() {
    if !e2e_enabled("ecq_fifty") {
        return;
    }
    let dir = TempDir::new("ecq-fifty");
    let (_server, port) = py_server(dir.path(), "127.0.0.1");
    // Only this test's client (its own uid): other tests' traffic stays out.
    let (ec, url) = start(&["--uid", "61050"]);
    let clients: Vec<EcqClient> = (0..50).map(|_| EcqClient::connect(&url)).collect();
    let (count, size) = (500usize, 100usize);
    let pid = py_client_as(Some(61050), port, &[count.to_string().as_ref(), size.to_string().as_ref()]);
    for (i, c) in clients.iter().enumerate() {
        c.wait_count(&format!("client {i}: all requests"), pid, 1, 1, count);
    }
    let first = clients[0].events_of(pid);
    for c in &clients[1..] {
        assert_eq!(c.events_of(pid), first, "same events, same order, for everyone");
    }
    let (status, _, _, stderr) = ec.stop();
    assert!(status.success());
    assert!(stderr.iter().any(|l| l.ends_with("50 clients served, 0 events dropped for slow clients")), "{stderr:?}");
}

#[test]
fn writes_hopping_between_cpus_arrive_in_capture_order() {
    if !e2e_enabled("ecq_cpu_hop") {
        return;
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("SKIPPED ecq_cpu_hop: needs 2 CPUs to hop between");
        return;
    }
    let dir = TempDir::new("ecq-hop");
    let (_server, port) = py_server(dir.path(), "127.0.0.1");
    let (ec, url) = start(&["--uid", "61052"]);
    let client = EcqClient::connect(&url);
    // Every write from another CPU: consecutive requests are made on
    // different CPUs and must still come out in the thread's order.
    let (count, size) = (400usize, 200usize);
    let pid = py_client_as(Some(61052), port, &[count.to_string().as_ref(), size.to_string().as_ref(), "hop".as_ref()]);
    client.wait_count("every request", pid, 1, 1, count);
    let writes: Vec<Ev> = client.events_of(pid).into_iter().filter(|e| e.dir() == 1 && e.kind == 1).collect();
    for (i, e) in writes.iter().enumerate() {
        let head = format!("PUT /bulk/{i} HTTP/1.1\r\n");
        assert!(e.payload.starts_with(head.as_bytes()), "request {i} out of order: {:?}", String::from_utf8_lossy(&e.payload[..30]));
    }
    let (status, _, _, _) = ec.stop();
    assert!(status.success());
}

/// The HTTP status of a refused handshake.
fn refused(url: &str, headers: &[(&str, &str)]) -> u16 {
    match EcqClient::connect_with(url, headers) {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected a refusal for {url} with {headers:?}"),
    }
}

#[test]
fn cross_origin_is_403_and_the_token_is_enforced() {
    if !e2e_enabled("ecq_security") {
        return;
    }
    let ec = Ecapture::start(&["tls", "--ecaptureq", "ws://127.0.0.1:0/?token=s3cr3t"]);
    let url = ecq_url(&ec);
    let base = url.split('?').next().unwrap().to_string();
    assert!(url.ends_with("?token=…"), "the token is not logged: {url}");
    let with = format!("{base}?token=s3cr3t");
    assert_eq!(refused(&with, &[("Origin", "https://evil.example")]), 403);
    assert_eq!(refused(&with, &[("Origin", "null")]), 403);
    assert_eq!(refused(&base, &[]), 401);
    assert_eq!(refused(&format!("{base}?token=nope"), &[]), 401);
    assert_eq!(refused(&base, &[("Authorization", "Bearer nope")]), 401);
    // What eCapture's Go client and the GUI send, any path, with the token.
    for (u, h) in [
        (with.clone(), vec![("Origin", "http://localhost/")]),
        (with.clone(), vec![]),
        (format!("{}some/path?token=s3cr3t", base), vec![]),
        (base.clone(), vec![("Authorization", "Bearer s3cr3t")]),
    ] {
        let c = EcqClient::connect_with(&u, &h).unwrap_or_else(|e| panic!("{u} {h:?}: {e}"));
        c.wait("the first heartbeat", |es| es.iter().any(|e| matches!(e, Entry::Heartbeat { .. })));
    }
    let (_, _, _, stderr) = ec.stop();
    assert!(stderr.iter().all(|l| !l.contains("s3cr3t")), "the token never reaches the log");
}

#[test]
fn bind_forms_and_a_busy_port() {
    if !e2e_enabled("ecq_bind") {
        return;
    }
    for (bind, connect_host) in [("[::1]", "[::1]"), ("[::]", "127.0.0.1"), ("0.0.0.0", "127.0.0.1")] {
        let ec = Ecapture::start(&["tls", "--ecaptureq", &format!("ws://{bind}:0")]);
        let url = ecq_url(&ec);
        let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
        let c = EcqClient::connect(&format!("ws://{connect_host}:{port}"));
        c.wait("a heartbeat", |es| es.iter().any(|e| matches!(e, Entry::Heartbeat { .. })));
        if bind != "[::1]" {
            ec.wait_stderr("beyond this host");
        }
        ec.stop();
    }
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = Command::new(bin()).args(["tls", "--ecaptureq", &format!("ws://127.0.0.1:{port}/")]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("");
    // glibc says "Address already in use", musl "Address in use".
    assert!(last.starts_with(&format!("ecapture: --ecaptureq: cannot listen on 127.0.0.1:{port}: Address ")), "{last}");
    assert!(last.ends_with("in use (os error 98)"), "{last}");
}

#[test]
fn hostile_and_vanishing_clients_do_not_disturb_others() {
    if !e2e_enabled("ecq_hostile") {
        return;
    }
    let dir = TempDir::new("ecq-hostile");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let (ec, url) = start(&[]);
    let good = EcqClient::connect(&url);
    let hostport = url.trim_start_matches("ws://").trim_end_matches('/').to_string();

    // Garbage instead of a handshake.
    let mut g = TcpStream::connect(&hostport).unwrap();
    g.write_all(b"\x16\x03\x01 this is not HTTP\r\n\r\n").unwrap();
    // A real client that then sends a 1 MiB frame, over the limit.
    let (mut big, _) = tungstenite::connect(&url).unwrap();
    let _ = big.send(tungstenite::Message::Binary(vec![0u8; 1 << 20].into()));
    // A client that sends garbage after the handshake.
    let (mut junk, _) = tungstenite::connect(&url).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = junk.get_mut() {
        s.write_all(b"\xff\xff\xff\xff garbage frame").unwrap();
    }
    // A client that resets the connection.
    let (reset, _) = tungstenite::connect(&url).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = reset.get_ref() {
        use std::os::fd::AsRawFd;
        let lg = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: setsockopt on a socket we own, with a valid linger struct:
        // closing it then sends a RST instead of a FIN.
        unsafe { libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, (&lg as *const libc::linger).cast(), 8) };
    }
    drop(reset);
    // A ping is answered.
    let (mut pinger, _) = tungstenite::connect(&url).unwrap();
    pinger.send(tungstenite::Message::Ping(b"are you there".to_vec().into())).unwrap();
    let mut ponged = false;
    while !ponged {
        if let tungstenite::Message::Pong(p) = pinger.read().expect("the pinger stays connected") {
            ponged = p.as_ref() == b"are you there";
        }
    }

    // The hostile ones are gone; the good one goes on.
    ec.wait_stderr("sent a frame over the size limit");
    ec.wait_stderr("protocol error");
    let (pid, st) = curl(&format!("https://127.0.0.1:{port}/still-fine"), &[]);
    assert!(st.success());
    good.wait("curl's request after the hostile clients", has_event(pid, 1));
    let mut rest = Vec::new();
    let _ = g.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = g.read_to_end(&mut rest);
    assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 400"), "garbage gets nothing or a 400");
    ec.stop();
}

#[test]
fn demo_client_prints_a_captured_request() {
    if !e2e_enabled("ecq_demo") {
        return;
    }
    let dir = TempDir::new("ecq-demo");
    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let (ec, url) = start(&[]);
    let client = std::env::var_os("ECAPTUREQ_CLIENT_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_ecaptureq_client").into());
    let demo = Command::new(client)
        .args(["-server", &url, "-verbose"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run ecaptureq_client");
    let mut demo = Proc(demo);
    let rx = lines_of(demo.0.stdout.take().unwrap());
    let next = || rx.recv_timeout(PATIENCE).expect("the demo client printed nothing more");
    // Connected: the replay and a heartbeat, then the request.
    while !next().starts_with("[HEARTBEAT] count=0") {}
    let (pid, _) = curl(&format!("https://127.0.0.1:{port}/demo"), &[]);
    loop {
        let line = next();
        if line.starts_with("[EVENT]") && line.contains(&format!(" pid={pid} pname=curl ")) && line.contains("type=1 (HTTP/1.x request)") {
            assert!(line.contains(&format!(" dst=127.0.0.1:{port} ")), "{line}");
            assert_eq!(next(), "GET /demo HTTP/1.1");
            break;
        }
    }
    // The server goes away and comes back on the same port: the demo reconnects.
    ec.stop();
    let ec = Ecapture::start(&["tls", "--ecaptureq", &url]);
    while !next().starts_with("[HEARTBEAT] count=0") {}
    ec.stop();
    drop(demo);
}

/// The Python consumer of the README, run as written against a live server.
#[test]
fn readme_python_consumer_works() {
    if !e2e_enabled("ecq_python") {
        return;
    }
    let dir = TempDir::new("ecq-python");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let code = readme
        .split("<!-- python-consumer -->\n```python\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the README has a python-consumer block");
    std::fs::write(dir.path().join("consumer.py"), code).unwrap();
    let st = Command::new("protoc")
        .arg(format!("--python_out={}", dir.path().display()))
        .arg(format!("-I{}", concat!(env!("CARGO_MANIFEST_DIR"), "/proto")))
        .arg("ecaptureq.proto")
        .status()
        .expect("run protoc");
    assert!(st.success(), "protoc failed");

    let port = free_port();
    let _server = s_server(dir.path(), &format!("127.0.0.1:{port}"), true);
    let (ec, url) = start(&[]);
    let py = Command::new("/usr/bin/python3")
        .arg("consumer.py")
        .arg(&url)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the README's consumer");
    let mut py = Proc(py);
    let rx = lines_of(py.0.stdout.take().unwrap());
    let next = || rx.recv_timeout(PATIENCE).expect("the python consumer printed nothing more");
    while !next().starts_with("heartbeat 0") {}
    let (pid, _) = curl(&format!("https://127.0.0.1:{port}/from-python"), &[]);
    loop {
        let line = next();
        if line.starts_with(&format!("event pid={pid} pname=curl type=1 ")) {
            assert!(line.contains(&format!("-> 127.0.0.1:{port}")), "{line}");
            assert!(line.contains(" bytes b'GET /from-python HTTP/1.1\\r\\nHost: 127.0.0.1:"), "{line}");
            break;
        }
    }
    ec.stop();
}
