//! End-to-end tests of `-m pcapng`: the real binary, as root, captures the
//! packets of real TLS connections (on `lo`, and on a veth pair in a network
//! namespace) into a pcapng file with their secrets; tshark, given nothing
//! but that file, is the judge: it must show every request and response
//! decrypted. capinfos must read the file without a warning.

mod util;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::*;

fn ready(test: &str) -> bool {
    e2e_enabled(test) && tool("tshark") && tool("capinfos")
}

/// tshark on `pcap` alone (the port dissected as TLS), `fields` of the
/// packets `filter` selects, one line per packet.
fn tshark(pcap: &Path, port: u16, filter: &str, fields: &[&str]) -> String {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args(["-d", &format!("tcp.port=={port},tls"), "-T", "fields", "-Y", filter]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.stderr(Stdio::piped()).output().expect("run tshark");
    assert!(out.status.success(), "tshark failed on {}: {}", pcap.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// "uri<TAB>code" of every HTTP/1 message tshark decrypts from the file.
fn http(pcap: &Path, port: u16) -> Vec<String> {
    tshark(pcap, port, "http", &["http.request.uri", "http.response.code"]).lines().map(str::to_string).collect()
}

/// capinfos reads the file, says it is pcapng with `encap`, warns of nothing.
fn capinfos_ok(pcap: &Path, encap: &str) {
    let out = Command::new("capinfos").arg(pcap).output().expect("run capinfos");
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "capinfos failed: {o}{e}");
    assert!(e.trim().is_empty() && !o.to_lowercase().contains("warning"), "capinfos warns: {o}{e}");
    assert!(o.contains("pcapng"), "{o}");
    assert!(o.contains(encap), "encapsulation {encap} expected: {o}");
}

/// Waits until the file (written as ecapture goes) holds the end (FIN or
/// RST) of `conns` connections of `port`.
fn wait_ends(pcap: &Path, port: u16, conns: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ends = tshark(pcap, port, "tcp.flags.fin == 1 || tcp.flags.reset == 1", &["tcp.stream"]);
        let n = ends.lines().collect::<BTreeSet<_>>().len();
        if n >= conns {
            return;
        }
        assert!(Instant::now() < deadline, "the file holds the end of {n} connections, not {conns}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pcap_args<'a>(file: &'a str, iface: &'a str, filter: &'a str) -> Vec<&'a str> {
    let mut a = vec!["tls", "-m", "pcapng", "-i", iface, "-w", file];
    a.extend(filter.split(' '));
    a
}

/// curl with TLS 1.2 (two ciphers) and TLS 1.3 against tests/tls_server.py:
/// every GET and answer decrypted from the file alone; the packets carry
/// the owner's pid and comm; with `tcp port P` no other port is in the file.
#[test]
fn pcapng_curl_tls12_tls13_decrypted_from_the_file_alone() {
    if !ready("pcapng_curl") || !tool("curl") {
        return;
    }
    let dir = TempDir::new("pcapng-curl");
    let (_server, port) = py_server(dir.path(), "127.0.0.1");
    let (_other, other_port) = py_server(dir.path(), "127.0.0.1");
    let file = dir.path().join("out.pcapng");
    let filter = format!("tcp port {port}");
    let ec = Ecapture::start(&pcap_args(file.to_str().unwrap(), "lo", &filter));
    let url = format!("https://127.0.0.1:{port}/");
    let mut pids = Vec::new();
    for extra in CURL_TLS_VARIANTS {
        let (pid, st) = curl(&url, extra);
        assert!(st.success(), "curl {extra:?}");
        pids.push(pid);
    }
    // Traffic on another port: filtered out in the kernel.
    let (_, st) = curl(&format!("https://127.0.0.1:{other_port}/"), &[]);
    assert!(st.success());
    wait_ends(&file, port, 3);
    let (st, _, events, stderr) = ec.stop();
    assert!(st.success(), "{stderr:?}");
    assert!(events.is_empty(), "-m pcapng prints no events");
    let summary = stderr.iter().find(|l| l.contains("; pcapng ")).cloned().unwrap_or_default();
    assert!(summary.contains("0 packets dropped by the kernel"), "{stderr:?}");
    assert!(!summary.contains("before their keys"), "{summary}");

    capinfos_ok(&file, "Ethernet");
    let h = http(&file, port);
    let (gets, oks) = (h.iter().filter(|l| l.starts_with("/\t")).count(), h.iter().filter(|l| l.ends_with("\t200")).count());
    if (gets, oks) != (3, 3) {
        let all = tshark(&file, port, "frame", &["frame.number", "tcp.stream", "_ws.col.Info"]);
        panic!("three GETs and answers decrypted from the file alone, not {gets} and {oks}: {h:?}\n{all}");
    }
    let ports = tshark(&file, port, "frame", &["tcp.srcport", "tcp.dstport"]);
    for l in ports.lines() {
        assert!(l.split('\t').any(|p| p == port.to_string()), "a packet of another port: {l}");
    }
    // Comments: the client's packets name curl and its pid.
    let comments = tshark(&file, port, &format!("tcp.dstport == {port} && frame.comment"), &["frame.comment"]);
    assert!(comments.lines().count() > 0, "no packet comments");
    let curl_comments = comments.lines().filter(|c| c.contains("comm=curl")).count();
    assert!(curl_comments > 0, "{comments}");
    for c in comments.lines().filter(|c| c.contains("comm=curl")) {
        let pid: u32 = c.split("pid=").nth(1).and_then(|r| r.split(' ').next()).and_then(|p| p.parse().ok()).unwrap_or(0);
        assert!(pids.contains(&pid), "comment {c:?} names a pid that is not curl's ({pids:?})");
        assert!(c.contains(&format!("tid={pid}")), "curl is single-threaded: {c}");
    }
}

/// Python's ssl (OpenSSL 3) with session resumption, TLS 1.3 PSK and TLS
/// 1.2 tickets; the keys read on the server's side (--pid).
#[test]
fn pcapng_python_resumed_sessions() {
    if !ready("pcapng_python") {
        return;
    }
    let dir = TempDir::new("pcapng-py");
    let (server, port) = py_server(dir.path(), "127.0.0.1");
    let file = dir.path().join("py.pcapng");
    let pid = server.pid().to_string();
    let filter = format!("port {port}");
    let mut args = pcap_args(file.to_str().unwrap(), "lo", &filter);
    args.extend(["--pid", &pid]);
    let ec = Ecapture::start(&args);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keylog_client.py");
    let theirs = dir.path().join("theirs.log");
    for (version, count) in [("1.3", 3), ("1.2", 3)] {
        let out = python_as(None).arg(&script).arg(port.to_string()).arg(version).arg(count.to_string()).arg(&theirs).output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("RESUMED {}", count - 1));
    }
    wait_ends(&file, port, 6);
    let (st, _, _, stderr) = ec.stop();
    assert!(st.success(), "{stderr:?}");
    capinfos_ok(&file, "Ethernet");
    let h = http(&file, port);
    for version in ["1.3", "1.2"] {
        for i in 0..3 {
            let uri = format!("/keylog/{version}/{i}");
            assert!(h.iter().any(|l| l.starts_with(&format!("{uri}\t"))), "tshark does not show {uri}: {h:?}");
        }
    }
    assert_eq!(h.iter().filter(|l| l.ends_with("\t200")).count(), 6, "every response decrypted: {h:?}");
    let comments = tshark(&file, port, &format!("tcp.srcport == {port} && frame.comment"), &["frame.comment"]);
    assert!(comments.lines().any(|c| c.starts_with(&format!("pid={pid} "))), "server packets name the server: {comments}");
}

/// nginx with HTTP/2, keys read on nginx's side: every HTTP/2 request and
/// response decrypted from the file.
#[test]
fn pcapng_nginx_http2() {
    if !ready("pcapng_nginx") || !tool("nginx") || !tool("curl") {
        return;
    }
    let dir = TempDir::new("pcapng-nginx");
    let server = nginx(dir.path());
    let file = dir.path().join("h2.pcapng");
    let nginx_pid = std::fs::read_to_string(dir.path().join("nginx.pid")).unwrap().trim().to_string();
    let filter = format!("tcp port {}", server.port);
    let mut args = pcap_args(file.to_str().unwrap(), "lo", &filter);
    args.extend(["--pid", &nginx_pid]);
    let ec = Ecapture::start(&args);
    let base = format!("https://127.0.0.1:{}", server.port);
    for _ in 0..3 {
        let st = Command::new("curl")
            .args(["-sk", "--http2", "-o", "/dev/null", "-o", "/dev/null", "--max-time", "10"])
            .arg(format!("{base}/a.txt"))
            .arg(format!("{base}/b.txt"))
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
    wait_ends(&file, server.port, 3);
    let (st, _, _, stderr) = ec.stop();
    assert!(st.success(), "{stderr:?}");
    capinfos_ok(&file, "Ethernet");
    let text = tshark(&file, server.port, "http2.header", &["http2.headers.path", "http2.headers.status"]);
    let count = |what: &str| text.matches(what).count();
    assert_eq!((count("/a.txt"), count("/b.txt"), count("200")), (3, 3, 6), "{text}");
}

/// `-w -`: a reader started before the traffic (tshark reading the stream)
/// shows the decrypted request while ecapture still runs.
#[test]
fn pcapng_live_reader_on_stdout() {
    if !ready("pcapng_live") || !tool("curl") {
        return;
    }
    let dir = TempDir::new("pcapng-live");
    let (_server, port) = py_server(dir.path(), "127.0.0.1");
    let mut ec = Command::new(bin())
        .args(["tls", "-m", "pcapng", "-i", "lo", "-w", "-", "tcp", "port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ecapture");
    let ec_out = ec.stdout.take().unwrap();
    let mut reader = Command::new("tshark")
        .args(["-r", "-", "-l", "-d", &format!("tcp.port=={port},tls"), "-Y", "http.request", "-T", "fields", "-e", "http.request.uri"])
        .stdin(Stdio::from(ec_out))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tshark");
    let err_lines = lines_of(ec.stderr.take().unwrap());
    let deadline = Instant::now() + PATIENCE;
    loop {
        match err_lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) if l.contains("probes attached") => break,
            Ok(_) => {}
            Err(_) => panic!("ecapture did not start"),
        }
    }
    let uris = lines_of(reader.stdout.take().unwrap());
    let (_, st) = curl(&format!("https://127.0.0.1:{port}/live"), &["--tlsv1.3"]);
    assert!(st.success());
    let got = uris.recv_timeout(PATIENCE).expect("the live reader shows the decrypted request");
    assert_eq!(got.trim(), "/live");
    assert!(ec.try_wait().unwrap().is_none(), "ecapture still runs");
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(ec.id() as i32, libc::SIGTERM) };
    assert!(ec.wait().unwrap().success());
    let _ = reader.wait();
}

/// Runs `ip` with `args`; panics on failure.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A network namespace and veth pair made by the test, removed at the end.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A veth pair into a network namespace made by the test: an Ethernet link
/// (not loopback); curl runs in the namespace, the server outside.
#[test]
fn pcapng_veth_pair_in_a_netns() {
    if !ready("pcapng_veth") || !tool("ip") || !tool("curl") {
        return;
    }
    let tag = std::process::id() % 10000;
    let ns = Netns(format!("ecap{tag}"));
    let (host_if, ns_if) = (format!("ecv{tag}a"), format!("ecv{tag}b"));
    ip(&["netns", "add", &ns.0]);
    ip(&["link", "add", &host_if, "type", "veth", "peer", "name", &ns_if]);
    ip(&["link", "set", &ns_if, "netns", &ns.0]);
    ip(&["addr", "add", "10.213.7.1/24", "dev", &host_if]);
    ip(&["link", "set", &host_if, "up"]);
    ip(&["-n", &ns.0, "addr", "add", "10.213.7.2/24", "dev", &ns_if]);
    ip(&["-n", &ns.0, "link", "set", &ns_if, "up"]);
    let dir = TempDir::new("pcapng-veth");
    let (_server, port) = py_server(dir.path(), "10.213.7.1");
    let file = dir.path().join("veth.pcapng");
    let ec = Ecapture::start(&pcap_args(file.to_str().unwrap(), &host_if, "host 10.213.7.2"));
    for v in ["--tlsv1.3", "--tlsv1.2"] {
        let mut args = vec!["netns", "exec", &ns.0, "curl", "-sk", "-o", "/dev/null", "--max-time", "10", v];
        let max = "--tls-max";
        if v == "--tlsv1.2" {
            args.extend([max, "1.2"]);
        }
        let url = format!("https://10.213.7.1:{port}/veth");
        args.push(&url);
        let st = Command::new("ip").args(&args).stdin(Stdio::null()).status().unwrap();
        assert!(st.success(), "curl in the namespace");
    }
    wait_ends(&file, port, 2);
    let (st, _, _, stderr) = ec.stop();
    assert!(st.success(), "{stderr:?}");
    capinfos_ok(&file, "Ethernet");
    let h = http(&file, port);
    assert_eq!(h.iter().filter(|l| l.starts_with("/veth\t")).count(), 2, "{h:?}");
    assert_eq!(h.iter().filter(|l| l.ends_with("\t200")).count(), 2, "{h:?}");
}

/// Bad input: one line on stderr, exit 2, before any capture.
#[test]
fn pcapng_bad_inputs_are_usage_errors() {
    // Parse-time errors need no root.
    for (args, needle) in [
        (&["tls", "-m", "pcapng", "-i", "lo", "tcp", "port"][..], "filter 'tcp port'"),
        (&["tls", "-m", "pcapng", "-i", "lo", "host", "example.com"], "not resolved"),
        (&["tls", "-m", "pcapng", "-w", "x.pcapng"], "-i IFACE"),
        (&["tls", "-w", "x.pcapng"], "-m pcapng"),
    ] {
        let (code, _, err) = run_to_exit(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    if !e2e_enabled("pcapng_bad_inputs") {
        return;
    }
    let dir = TempDir::new("pcapng-bad");
    let f = dir.path().join("x.pcapng");
    let nodir = dir.path().join("no/such/dir/x.pcapng");
    for (args, needle) in [
        (vec!["tls", "-m", "pcapng", "-i", "nosuchif0", "-w", f.to_str().unwrap()], "nosuchif0: no such network interface"),
        (vec!["tls", "-m", "pcapng", "-i", "lo", "-w", nodir.to_str().unwrap()], "--pcapfile"),
        (vec!["tls", "-m", "pcapng", "-i", "lo", "-w", dir.path().to_str().unwrap()], "--pcapfile"),
    ] {
        let (code, _, err) = run_to_exit(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// Our filter compiler against tcpdump's (`tcpdump -ddd`), on crafted
/// packets: both programs keep or drop the same ones.
#[test]
fn filter_behaves_like_tcpdumps() {
    use ecapture::packet::filter::{compile, parse_ddd, run};
    if !tool("tcpdump") {
        return;
    }
    let frames = crafted_frames();
    for expr in [
        "tcp",
        "udp",
        "ip",
        "ip6",
        "tcp port 443",
        "port 53",
        "src port 40000",
        "dst port 443",
        "portrange 400-500",
        "udp portrange 5000-6000",
        "host 10.0.0.1",
        "src host 10.0.0.2",
        "dst host fd00::2",
        "net 10.0.0.0/8",
        "dst net 192.168.0.0/16",
        "net fd00::/16",
        "tcp and (port 80 or port 443)",
        "not tcp",
        "host 10.0.0.1 and not port 22",
        "ip6 and tcp port 8443",
        "tcp port 443 || udp port 53",
        "! (host 10.0.0.1 or host 10.0.0.3) && ip",
    ] {
        let out = Command::new("tcpdump").args(["-ddd", "-y", "EN10MB", expr]).stderr(Stdio::null()).output().expect("tcpdump");
        // Without an interface tcpdump may refuse -y; try without it.
        let out = if out.status.success() {
            out
        } else {
            Command::new("tcpdump").args(["-ddd", expr]).stderr(Stdio::null()).output().expect("tcpdump")
        };
        assert!(out.status.success(), "tcpdump -ddd {expr}");
        let theirs = parse_ddd(&String::from_utf8_lossy(&out.stdout)).expect("tcpdump -ddd output");
        let ours = compile(expr, 262144, false).unwrap().0;
        for (i, f) in frames.iter().enumerate() {
            let (a, b) = (run(&theirs, f, false) > 0, run(&ours, f, false) > 0);
            assert_eq!(a, b, "{expr}: frame {i} kept by tcpdump: {a}, by ecapture: {b}");
        }
    }
}

/// Frames of every kind the filters tell apart.
fn crafted_frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for (s, d) in [("10.0.0.1", "10.0.0.2"), ("10.0.0.3", "192.168.1.9"), ("fd00::1", "fd00::2"), ("fe80::1", "fd00::9")] {
        for proto in [6u8, 17, 1] {
            for (sp, dp) in [(40000u16, 443u16), (53, 5353), (22, 80), (5500, 8443)] {
                for frag in [0u16, 0x2000, 10] {
                    if frag != 0 && s.contains(':') {
                        continue;
                    }
                    v.push(frame(s, d, proto, sp, dp, frag));
                }
            }
        }
    }
    // Not IP at all (ARP), and cut short.
    let mut arp = vec![0u8; 12];
    arp.extend([0x08, 0x06]);
    arp.extend([0u8; 28]);
    v.push(arp);
    v.push(frame("10.0.0.1", "10.0.0.2", 6, 1, 443, 0)[..20].to_vec());
    v
}

/// An Ethernet frame with an IPv4 or IPv6 header of `proto` and ports.
fn frame(src: &str, dst: &str, proto: u8, sport: u16, dport: u16, frag_off: u16) -> Vec<u8> {
    use std::net::IpAddr;
    let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let mut f = vec![0u8; 12];
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend([0x08, 0x00, 0x45, 0, 0, 40, 0, 0]);
            f.extend(frag_off.to_be_bytes());
            f.extend([64, proto, 0, 0]);
            f.extend(s.octets());
            f.extend(d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend([0x86, 0xdd, 0x60, 0, 0, 0, 0, 20, proto, 64]);
            f.extend(s.octets());
            f.extend(d.octets());
        }
        _ => unreachable!(),
    }
    f.extend(sport.to_be_bytes());
    f.extend(dport.to_be_bytes());
    f.extend([0u8; 16]);
    f
}

/// `gnutls -m pcapng`: wget (GnuTLS) gives packets without keys: a warning
/// says so, tshark shows the TLS but no HTTP; the packets still name wget.
#[test]
fn pcapng_gnutls_wget_packets_without_keys() {
    if !ready("pcapng_gnutls") || !tool("wget") {
        return;
    }
    let dir = TempDir::new("pcapng-wget");
    let (_server, port) = py_server(dir.path(), "127.0.0.1");
    let file = dir.path().join("wget.pcapng");
    let filter = format!("tcp port {port}");
    let mut args = pcap_args(file.to_str().unwrap(), "lo", &filter);
    args[0] = "gnutls";
    let ec = Ecapture::start(&args);
    ec.wait_stderr("reads no TLS secrets yet");
    let st = Command::new("wget")
        .args(["-q", "--no-check-certificate", "-O", "/dev/null"])
        .arg(format!("https://127.0.0.1:{port}/wget"))
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    wait_ends(&file, port, 1);
    let (st, _, _, stderr) = ec.stop();
    assert!(st.success(), "{stderr:?}");
    capinfos_ok(&file, "Ethernet");
    assert!(!tshark(&file, port, "tls.app_data", &["frame.number"]).is_empty(), "TLS application data in the file");
    assert!(http(&file, port).is_empty(), "no keys: no HTTP decrypted");
    let comments = tshark(&file, port, "frame.comment", &["frame.comment"]);
    assert!(comments.lines().any(|c| c.contains("comm=wget")), "{comments}");
}

/// `all -m pcapng` over IPv6 on lo (`ip6 and tcp port P`): OpenSSL's keys
/// through `all`, curl's request decrypted from the file.
#[test]
fn pcapng_all_module_ipv6() {
    if !ready("pcapng_all_ipv6") || !tool("curl") {
        return;
    }
    let dir = TempDir::new("pcapng-all6");
    let (_server, port) = py_server(dir.path(), "::1");
    let file = dir.path().join("all6.pcapng");
    let filter = format!("ip6 and tcp port {port}");
    let mut args = pcap_args(file.to_str().unwrap(), "lo", &filter);
    args[0] = "all";
    let ec = Ecapture::start(&args);
    for v in ["--tlsv1.3", "--tlsv1.2"] {
        let mut extra = vec![v];
        if v == "--tlsv1.2" {
            extra.extend(["--tls-max", "1.2"]);
        }
        let (_, st) = curl(&format!("https://[::1]:{port}/six"), &extra);
        assert!(st.success(), "curl {v}");
    }
    wait_ends(&file, port, 2);
    let (st, _, _, stderr) = ec.stop();
    assert!(st.success(), "{stderr:?}");
    capinfos_ok(&file, "Ethernet");
    let h = http(&file, port);
    assert_eq!(h.iter().filter(|l| l.starts_with("/six\t")).count(), 2, "{h:?}");
    assert_eq!(h.iter().filter(|l| l.ends_with("\t200")).count(), 2, "{h:?}");
    assert!(tshark(&file, port, "ip", &["frame.number"]).is_empty(), "IPv6 only");
}

/// `gotls -m pcapng`: a Go client and server (tests/gotls/peer.go, client
/// and server both hooked), HTTP/1.1 and HTTP/2 over TLS 1.3 and HTTP/1.1
/// over TLS 1.2: decrypted from the file alone with the secrets Go hands its
/// key log writer.
#[test]
fn pcapng_gotls_go_client_and_server() {
    if !ready("pcapng_gotls") {
        return;
    }
    let v = go_versions().remove(0);
    let Some(peer) = gotls_fixture("pcapng_gotls", &v, "peer") else { return };
    let dir = TempDir::new("pcapng-go");
    let port = free_port();
    let _server = peer_server(&peer, dir.path(), port);
    let file = dir.path().join("go.pcapng");
    let filter = format!("tcp port {port}");
    let mut args = pcap_args(file.to_str().unwrap(), "lo", &filter);
    args[0] = "gotls";
    args.extend(["--elfpath", peer.to_str().unwrap()]);
    let ec = Ecapture::start(&args);
    ec.wait_stderr("TLS keys read at crypto/tls.(*Config).writeKeyLog");
    for (proto, tls12) in [("h1", false), ("h2", false), ("h1", true)] {
        let mut cmd = Command::new(&peer);
        cmd.args(["client", &port.to_string(), proto, "3000"]);
        if tls12 {
            cmd.env("PEER_TLS12", "1");
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn the Go client");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success() && out.stdout.starts_with(b"ok HTTP/"), "the Go client ({proto})");
    }
    wait_ends(&file, port, 3);
    let (st, _, _, stderr) = ec.stop();
    assert!(st.success(), "{stderr:?}");
    capinfos_ok(&file, "Ethernet");
    let h = http(&file, port);
    let h2 = tshark(&file, port, "http2.header", &["http2.headers.path", "http2.headers.status"]);
    let oks = h.iter().filter(|l| l.ends_with("\t200")).count();
    assert!(h.iter().filter(|l| l.starts_with("/echo\t")).count() == 2 && oks == 4, "HTTP/1.1 decrypted: {h:?}");
    assert!(h2.matches("/echo").count() == 1 && h2.matches("200").count() >= 2, "HTTP/2 decrypted: {h2}");
}
