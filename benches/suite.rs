//! `make bench`: ecapture measured against baselines run in the same
//! invocation (SPEC §6), interleaved and repeated, medians and ranges:
//!
//! 1. overhead per SSL_write in steady state (runs several times what the
//!    ring holds): no capture, a bare counting uprobe+uretprobe (bpftrace:
//!    the floor), `ecapture tls` with text to a file, JSON lines to a file
//!    and eCaptureQ with one client (static binary), and text to a file
//!    (glibc binary); with ecapture's CPU per captured call;
//! 2. completeness at the highest rate, then under heavier loads until the
//!    first loss;
//! 3. latency from SSL_write to an eCaptureQ client at ~1k events/s;
//! 4. RSS and fan-out with 1, 10 and 100 clients at ~10k events/s;
//! 5. binary size and start-up time;
//! 6. overhead per call of the `gnutls` and `nss` modules as in 1 (text to a
//!    file), against a floor with the same probes on the same functions;
//! 7. overhead per `(*tls.Conn).Write` of the `gotls` module on a Go load
//!    (bench/tlsload.go), against counting uprobes at the same offsets;
//! 8. `-m pcapng` against `tcpdump -w` on the same traffic (UDP datagrams
//!    on lo at rising rates, both with the same kernel ring size): packets
//!    kept and lost, CPU per packet, the highest rate without loss.
//!
//! Every section measures the static binary, what users run (BENCH_ECAPTURE
//! names another). Needs root, bpftrace, and the binaries `make bench` builds
//! first. Prints a table and writes target/bench/results.json. BENCH_RUNS
//! sets the repeats; BENCH_WRITES the writes per overhead run (100,000, in
//! sections 1 and 6);
//! BENCH_ONLY=2,4 runs only those sections (while working on one).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ecapture::ecaptureq::proto::{self, Payload};

const PATIENCE: Duration = Duration::from_secs(30);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fail(msg: &str) -> ! {
    eprintln!("bench: {msg}");
    std::process::exit(1);
}

struct Env {
    /// The binary measured: the static one (what users run), or $BENCH_ECAPTURE.
    ecapture: PathBuf,
    /// The glibc build, for comparison.
    glibc: PathBuf,
    static_bin: PathBuf,
    openssl: Stack,
    gnutls: Stack,
    nss: Stack,
    /// Go's crypto/tls (bench/tlsload.go), when the Go fixture is built.
    go: Option<Stack>,
    runs: usize,
    only: Option<Vec<u32>>,
}

impl Env {
    fn wants(&self, section: u32) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(&section))
    }
}

/// A TLS library under load: its build of tlsload (bench/tls.h), the two
/// arguments naming the server's credentials there, the call it writes
/// with, and where ecapture probes it (the floor probes the same).
struct Stack {
    load: PathBuf,
    write: &'static str,
    creds: [OsString; 2],
    probes: Probes,
}

/// Where the floor's bpftrace counts hits.
enum Probes {
    /// Entry and return of the library's read and write calls.
    Calls { lib: &'static str, calls: &'static [&'static str] },
    /// Uprobes at these file offsets of a program (Go: ecapture's own list
    /// of functions and their RET instructions; no uretprobes), each running
    /// bench/floor.bpf.c's counter: bpftrace's `count()`, which Debian's
    /// bpftrace cannot place inside a function.
    Offsets { path: PathBuf, offsets: Vec<u64> },
}

/// A running floor.
enum Floor {
    Bpftrace(Child),
    /// The counter object and its uprobes (detached when dropped).
    Counter(#[allow(dead_code)] ecapture::sys::libbpf::Object, #[allow(dead_code)] Vec<ecapture::sys::libbpf::Link>),
}

/// One tlsload run: what it printed.
#[derive(Debug, Clone, Copy, Default)]
struct Load {
    writes: f64,
    bytes: f64,
    seconds: f64,
    writes_per_s: f64,
    /// From the first write to the last byte read, per write.
    transfer_us_per_write: f64,
    /// The load's own CPU time over the same span, per write.
    cpu_us_per_write: f64,
}

fn json_num(line: &str, key: &str) -> f64 {
    line.split(&format!("\"{key}\":"))
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fail(&format!("no {key} in {line}")))
}

/// Runs tlsload in the background; its result at join.
/// The user the load runs as, and the only one ecapture captures: other
/// processes' TLS on the machine stays out of the measurement.
const LOAD_UID: &str = "61999";

fn tlsload_spawn(stack: &Stack, args: &[&str]) -> JoinHandle<Load> {
    let child = Command::new("setpriv")
        .args([&format!("--reuid={LOAD_UID}"), &format!("--regid={LOAD_UID}"), "--clear-groups"])
        .arg(&stack.load)
        .args(&stack.creds)
        .args(args)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot run tlsload: {e}")));
    std::thread::spawn(move || {
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| fail(&format!("tlsload: {e}")));
        if !out.status.success() {
            fail("tlsload failed");
        }
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        Load {
            writes: json_num(&line, "writes"),
            bytes: json_num(&line, "bytes"),
            seconds: json_num(&line, "seconds"),
            writes_per_s: json_num(&line, "writes_per_s"),
            transfer_us_per_write: json_num(&line, "transfer_us_per_write"),
            cpu_us_per_write: json_num(&line, "cpu_us_per_write"),
        }
    })
}

fn tlsload(stack: &Stack, args: &[&str]) -> Load {
    tlsload_spawn(stack, args)
        .join()
        .unwrap_or_else(|_| fail("tlsload thread"))
}

/// A running ecapture, its stderr lines collected.
struct Ecap {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    rx: mpsc::Receiver<String>,
    startup: Duration,
}

impl Ecap {
    fn start(bin: &Path, args: &[&str]) -> Ecap {
        let t = Instant::now();
        let mut child = Command::new(bin)
            .args(args)
            .args(["--uid", LOAD_UID])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot run {}: {e}", bin.display())));
        let err = child.stderr.take().unwrap_or_else(|| fail("no stderr"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let l = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut e = Ecap {
            child,
            lines,
            rx,
            startup: Duration::ZERO,
        };
        e.wait_line("probes attached");
        e.startup = t.elapsed();
        e
    }

    fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => fail(&format!(
                    "ecapture never logged {needle:?}: {:?}",
                    self.lines.lock().map(|l| l.clone())
                )),
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn rss_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// RSS without the kernel's ring buffer mappings (the BPF ring's pages
    /// are mapped into the process, its data area twice, and count as RSS;
    /// perf buffers' pages did not). Both are kernel memory of the ring
    /// size, `--mapsize` × CPUs, whichever transport.
    fn own_rss_kib(&self) -> u64 {
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", self.pid())).unwrap_or_default();
        let mut ring = 0u64;
        let mut in_ring = false;
        for l in smaps.lines() {
            if l.split_whitespace().next().is_some_and(|f| f.contains('-') && f.chars().all(|c| c.is_ascii_hexdigit() || c == '-')) {
                in_ring = l.contains("anon_inode:bpf") || l.contains("[perf_event]");
            } else if let (true, Some(v)) = (in_ring, l.strip_prefix("Rss:")) {
                ring += v.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            }
        }
        self.rss_kib("VmRSS:").saturating_sub(ring)
    }

    /// CPU time used so far (user + system), in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the ")" that ends comm: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit(')').next().unwrap_or_default();
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0.0))
            .collect();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / hz
    }

    /// SIGTERM; the summary line.
    fn stop(mut self) -> Summary {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(20)); // the stderr thread's last lines
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let line = lines
            .iter()
            .rev()
            .find(|l| l.contains(" bytes captured; lost "))
            .cloned()
            .unwrap_or_default();
        Summary::parse(&line)
    }
}

/// The counters of ecapture's summary line.
#[derive(Debug, Default, Clone, Copy)]
struct Summary {
    events: u64,
    calls: u64,
    bytes: u64,
    lost: u64,
    ecq_dropped: u64,
}

impl Summary {
    fn parse(line: &str) -> Summary {
        let num_before = |key: &str| -> u64 {
            line.split(key)
                .next()
                .and_then(|s| s.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let num_after = |key: &str| -> u64 {
            line.split(key)
                .nth(1)
                .and_then(|s| s.split([' ', ',', ';', ')']).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Summary {
            events: num_before(" events,"),
            calls: num_before(" calls,"),
            bytes: num_before(" bytes captured"),
            lost: num_after("; lost "),
            ecq_dropped: num_before(" events dropped for slow clients"),
        }
    }
}

/// The floor: bpftrace counting the entries and returns of the stack's
/// probed calls (OpenSSL: SSL_{read,write}[_ex]), or the counter at the
/// stack's offsets.
fn floor_start(stack: &Stack) -> Floor {
    match &stack.probes {
        Probes::Calls { lib, calls } => Floor::Bpftrace(bpftrace_start(lib, calls)),
        Probes::Offsets { path, offsets } => {
            use ecapture::sys::libbpf::OpenObject;
            let obj_path = root().join("target/bench/floor.bpf.o");
            let bytes = std::fs::read(&obj_path).unwrap_or_else(|e| fail(&format!("{}: {e} (make bench builds it)", obj_path.display())));
            let obj = OpenObject::open_mem("floor", Box::leak(bytes.into_boxed_slice()), None)
                .and_then(|o| o.load())
                .unwrap_or_else(|e| fail(&format!("floor: {e}")));
            let shown = path.to_string_lossy();
            let links = offsets
                .iter()
                .map(|&o| obj.attach_uprobe("floor_hit", &shown, o, "floor", false, 0).unwrap_or_else(|e| fail(&format!("floor: {e}"))))
                .collect();
            Floor::Counter(obj, links)
        }
    }
}

fn bpftrace_start(lib: &str, calls: &[&str]) -> Child {
    let up: Vec<String> = calls.iter().map(|f| format!("uprobe:{lib}:{f}")).collect();
    let ur: Vec<String> = calls.iter().map(|f| format!("uretprobe:{lib}:{f}")).collect();
    let counted = format!("{} {{ @calls = count(); }} {} {{ @rets = count(); }}", up.join(", "), ur.join(", "));
    let prog = format!("BEGIN {{ printf(\"ready\\n\"); }} {counted}");
    let mut child = Command::new("bpftrace")
        .args(["-e", &prog])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot run bpftrace: {e}")));
    let mut out = BufReader::new(
        child
            .stdout
            .take()
            .unwrap_or_else(|| fail("bpftrace stdout")),
    );
    let mut line = String::new();
    while out.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("ready") {
        line.clear();
    }
    if !line.contains("ready") {
        fail("bpftrace did not start");
    }
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = out.read_to_end(&mut sink);
    });
    child
}

fn floor_stop(f: Floor) {
    match f {
        Floor::Bpftrace(c) => bpftrace_stop(c),
        Floor::Counter(..) => {}
    }
}

fn bpftrace_stop(mut c: Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
    // bpftrace has been seen to miss a SIGINT and wait for ever.
    let deadline = Instant::now() + Duration::from_secs(10);
    while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if matches!(c.try_wait(), Ok(None)) {
        eprintln!("bench: bpftrace ignored SIGINT for 10 s; killing it");
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// An eCaptureQ client: counts event frames; optionally measures the
/// latency of stamped writes.
struct Client {
    handle: JoinHandle<ClientResult>,
}

#[derive(Debug, Default)]
struct ClientResult {
    events: u64,
    latencies_us: Vec<f64>,
}

impl Client {
    /// `latency`: time stamped writes ("T<ns>:" in the payload, which only
    /// tlsload -t writes) from their stamp to their arrival here.
    fn connect(url: &str, latency: bool) -> Client {
        // A small read buffer: tungstenite zeroes it on every read, and with
        // the default (128 KiB) a hundred clients spend more CPU on memset
        // than ecapture spends serving them.
        let config = tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 << 10);
        let (mut ws, _) = tungstenite::client::connect_with_config(url, Some(config), 0)
            .unwrap_or_else(|e| fail(&format!("connect {url}: {e}")));
        let handle = std::thread::spawn(move || {
            let mut r = ClientResult::default();
            while let Ok(msg) = ws.read() {
                let tungstenite::Message::Binary(data) = msg else {
                    continue;
                };
                // LogEntry{log_type: EVENT} starts 08 02: count without decoding.
                if !data.starts_with(&[0x08, 0x02]) {
                    continue;
                }
                r.events += 1;
                if !latency {
                    continue;
                }
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as f64)
                    .unwrap_or(0.0);
                if let Ok(entry) = proto::decode(&data) {
                    if let Payload::Event(e) = proto::payload(entry) {
                        if e.uuid.split('_').nth(4) == Some("1") {
                            if let Some(stamp) = find_stamp(&e.payload) {
                                r.latencies_us.push((now - stamp) / 1000.0);
                            }
                        }
                    }
                }
            }
            r
        });
        Client { handle }
    }

    fn join(self) -> ClientResult {
        self.handle.join().unwrap_or_default()
    }
}

/// "T<20 digits>:" in a payload: ns since the epoch.
fn find_stamp(p: &[u8]) -> Option<f64> {
    let i = p
        .windows(2)
        .position(|w| w[0] == b'T' && w[1].is_ascii_digit())?;
    let digits = p.get(i + 1..i + 21)?;
    std::str::from_utf8(digits).ok()?.parse::<f64>().ok()
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let i = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[i.min(s.len() - 1)]
}

fn range(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn ecq_url(e: &mut Ecap) -> String {
    let l = e
        .lines
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|l| l.contains("listening on "))
        .cloned();
    let l = l.unwrap_or_else(|| e.wait_line("listening on "));
    l.split("listening on ")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// An NSS certificate database in `dir` (made once) holding a self-signed
/// server certificate and its key under the nickname "server", for
/// tlsload-nss.
fn nss_db(dir: &Path) -> PathBuf {
    if dir.join("key4.db").exists() {
        return dir.to_path_buf();
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    let db = format!("sql:{}", dir.display());
    let noise = dir.join("noise");
    let mut seed = vec![0u8; 512];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed));
    if read.and_then(|()| std::fs::write(&noise, &seed)).is_err() {
        fail("cannot write the NSS database's seed");
    }
    let noise = noise.to_string_lossy().into_owned();
    for args in [
        vec!["-N", "-d", &db, "--empty-password"],
        vec!["-S", "-n", "server", "-s", "CN=localhost", "-x", "-t", "CT,,", "-k", "ec", "-q", "nistp256", "-z", &noise, "-d", &db],
    ] {
        let st = Command::new("certutil").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !st.is_ok_and(|s| s.success()) {
            let _ = std::fs::remove_dir_all(dir);
            fail(&format!("certutil {} failed (libnss3-tools)", args[0]));
        }
    }
    let _ = std::fs::remove_file(&noise);
    dir.to_path_buf()
}

/// One benchmark section: prints its table, returns its JSON member.
type Section = fn(&Env) -> String;

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        fail("must run as root (it loads BPF programs)");
    }
    if Command::new("bpftrace").arg("--version").output().is_err() {
        fail("bpftrace not found (apt-get install bpftrace)");
    }
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if !cert.exists() {
        let st = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "3650",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status();
        if !st.is_ok_and(|s| s.success()) {
            fail("openssl req failed");
        }
    }
    let db = nss_db(&dir.join("nssdb"));
    // The load runs as LOAD_UID: it must read its files (test keys).
    use std::os::unix::fs::PermissionsExt;
    let loads = ["tlsload", "tlsload-gnutls", "tlsload-nss", "tlsload-go"].map(|b| dir.join(b));
    let db_files = ["cert9.db", "key4.db", "pkcs11.txt"].map(|f| db.join(f));
    for p in [&dir, &cert, &key, &db].into_iter().chain(&loads).chain(&db_files) {
        let mode = if p.is_dir() { 0o755 } else { 0o644 | (std::fs::metadata(p).map_or(0, |m| m.permissions().mode()) & 0o111) };
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    }
    let env = Env {
        // BENCH_ECAPTURE: another build (e.g. one with symbols, to profile).
        ecapture: std::env::var_os("BENCH_ECAPTURE")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target/x86_64-unknown-linux-musl/release/ecapture")),
        glibc: root().join("target/release/ecapture"),
        static_bin: root().join("target/x86_64-unknown-linux-musl/release/ecapture"),
        openssl: Stack {
            load: dir.join("tlsload"),
            write: "SSL_write",
            creds: [cert.clone().into(), key.clone().into()],
            probes: Probes::Calls {
                lib: "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                calls: &["SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex"],
            },
        },
        // gnutls_record_send calls send2, which the module probes when the
        // library has it (3.6.3+): the floor probes the same.
        gnutls: Stack {
            load: dir.join("tlsload-gnutls"),
            write: "gnutls_record_send",
            creds: [cert.clone().into(), key.clone().into()],
            probes: Probes::Calls { lib: "/usr/lib/x86_64-linux-gnu/libgnutls.so.30", calls: &["gnutls_record_send2", "gnutls_record_recv"] },
        },
        nss: Stack {
            load: dir.join("tlsload-nss"),
            write: "PR_Write",
            creds: [format!("sql:{}", db.display()).into(), "server".into()],
            probes: Probes::Calls { lib: "/usr/lib/x86_64-linux-gnu/libnspr4.so", calls: &["PR_Write", "PR_Read", "PR_Send", "PR_Recv"] },
        },
        go: go_stack(&dir.join("tlsload-go"), &cert, &key),
        runs: std::env::var("BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
        only: std::env::var("BENCH_ONLY")
            .ok()
            .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect()),
    };
    // (tlsload-go is section 7's, which says so itself.)
    for p in [&env.ecapture, &env.glibc].into_iter().chain(&loads[..3]) {
        if !p.exists() {
            fail(&format!("{} is missing: run `make bench`", p.display()));
        }
    }
    let started = Instant::now();
    let mut json = Vec::new();
    let uname = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "ecapture benchmark — {date} — Linux {uname}, {cpu}, {ncpu} CPUs, {} runs each\n",
        env.runs
    );
    json.push(format!("\"machine\":{{\"date\":\"{date}\",\"kernel\":\"{uname}\",\"cpu\":\"{cpu}\",\"cpus\":{ncpu}}}"));

    let sections: [(u32, Section); 8] = [
        (1, overhead),
        (2, completeness),
        (3, latency),
        (4, fan_out),
        (5, size_and_startup),
        (6, other_stacks),
        (7, go_overhead),
        (8, pcapng_vs_tcpdump),
    ];
    for (n, section) in sections {
        if env.wants(n) {
            json.push(section(&env));
        }
    }

    let out = dir.join("results.json");
    let text = format!("{{{}}}\n", json.join(","));
    if let Err(e) = std::fs::write(&out, text) {
        fail(&format!("{}: {e}", out.display()));
    }
    println!(
        "results: {} ({:.0} s)",
        out.display(),
        started.elapsed().as_secs_f64()
    );
}

/// What runs beside the load in one row of an overhead table.
enum Beside<'a> {
    Nothing,
    /// bpftrace counting the stack's probed calls.
    Floor,
    Ecapture { bin: &'a Path, args: Vec<&'a str>, client: bool },
}

struct Row<'a> {
    name: &'a str,
    beside: Beside<'a>,
}

/// One overhead table: the time and the load's CPU time per 64-byte write
/// of `stack`'s load beside each row, interleaved `runs` times in rotating
/// order, each run long enough that the ring holds only a small part of it
/// (steady state: ecapture's own work is inside the measurement); with
/// ecapture's CPU per captured call.
///
/// The time is the whole transfer's, from the first write to the last byte
/// read: not the client's write loop, which runs ahead of its server by
/// what the socket buffers hold, and so measures how much they absorb (any
/// cost added to one side changes it: GnuTLS's floor spanned 3 to 10 µs per
/// write within one run). The load's CPU time holds what the traced process
/// pays per call, probes included (a uprobe and its BPF programs run on the
/// thread that hit it); its ratio is printed beside.
/// `scratch`: files a row writes, removed before each run. Returns the JSON
/// object of the table.
fn overhead_table(env: &Env, heading: &str, stack: &Stack, rows: &[Row], scratch: &[&Path]) -> String {
    let writes: usize = std::env::var("BENCH_WRITES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let n = writes.to_string();
    let load = || tlsload(stack, &["-n", &n, "-s", "64"]);
    // The load under a running ecapture: its CPU µs per call from just
    // before the load until its records are through (it is idle again).
    let measured = |e: Ecap| -> (Load, f64) {
        let cpu0 = e.cpu_seconds();
        let l = load();
        let mut last = e.cpu_seconds();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = e.cpu_seconds();
            if now == last {
                break;
            }
            last = now;
        }
        let s = e.stop();
        (l, (last - cpu0) * 1e6 / (s.calls.max(1) as f64))
    };
    let mut us: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut load_cpu: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    for run in 0..env.runs {
        for k in 0..rows.len() {
            // Rotate the order so no row always runs first.
            let r = (k + run) % rows.len();
            for f in scratch {
                let _ = std::fs::remove_file(f);
            }
            let l = match &rows[r].beside {
                Beside::Nothing => load(),
                Beside::Floor => {
                    let f = floor_start(stack);
                    let l = load();
                    floor_stop(f);
                    l
                }
                Beside::Ecapture { bin, args, client } => {
                    let mut e = Ecap::start(bin, args);
                    let client = client.then(|| Client::connect(&ecq_url(&mut e), false));
                    let (l, per_call) = measured(e);
                    if let Some(c) = client {
                        c.join();
                    }
                    cpu[r].push(per_call);
                    l
                }
            };
            us[r].push(l.transfer_us_per_write);
            load_cpu[r].push(l.cpu_us_per_write);
        }
    }
    for f in scratch {
        let _ = std::fs::remove_file(f);
    }
    let med: Vec<f64> = us.iter().map(|v| median(v)).collect();
    let med_cpu: Vec<f64> = load_cpu.iter().map(|v| median(v)).collect();
    let at = |m: &[f64], want: fn(&Beside) -> bool| rows.iter().position(|r| want(&r.beside)).map_or(f64::NAN, |i| m[i]);
    let is_none = |b: &Beside| matches!(b, Beside::Nothing);
    let is_floor = |b: &Beside| matches!(b, Beside::Floor);
    let ratio_of = |m: &[f64], i: usize| (m[i] - at(m, is_none)) / (at(m, is_floor) - at(m, is_none));
    // Each 64-byte call is one record of 128 + 64 bytes in the ring.
    let ring = 1024.0 * 4096.0 * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    let run_bytes = 2.0 * writes as f64 * 192.0;
    println!(
        "{heading}: per {} of 64 bytes ({writes} writes = {} calls on one TLS connection, ~{:.0} MB of records: {:.0}x the {:.0} MiB ring, so steady state), median [min–max]",
        stack.write,
        2 * writes,
        run_bytes / 1e6,
        run_bytes / ring,
        ring / 1048576.0
    );
    println!("   {:<44} {:>21} {:>21}", "", "µs", "load CPU µs");
    for (i, row) in rows.iter().enumerate() {
        let (lo, hi) = range(&us[i]);
        let (clo, chi) = range(&load_cpu[i]);
        let extra = if cpu[i].is_empty() {
            String::new()
        } else {
            format!(
                "   ratio {:.2} (CPU {:.2}), ecapture CPU {:.2} µs/call",
                ratio_of(&med, i),
                ratio_of(&med_cpu, i),
                median(&cpu[i])
            )
        };
        println!(
            "   {:<44} {:>7.2} [{lo:>5.2}–{hi:>5.2}] {:>7.2} [{clo:>5.2}–{chi:>5.2}]{extra}",
            row.name, med[i], med_cpu[i]
        );
    }
    println!(
        "   µs = first write to last byte read, per write; ratio = (ecapture − none)/(floor − none) of it, SPEC target ≤ 1.25 (CPU: the same of \
         the load's CPU time); ecapture CPU = its user + system time / calls, target ≤ 1 µs\n"
    );
    let json: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let (cpu, ratio, cpu_ratio) = if cpu[i].is_empty() {
                ("null".into(), "null".into(), "null".into())
            } else {
                (format!("{:.3}", median(&cpu[i])), format!("{:.3}", ratio_of(&med, i)), format!("{:.3}", ratio_of(&med_cpu, i)))
            };
            format!(
                "{{\"config\":\"{}\",\"us_per_write\":{:.3},\"load_cpu_us_per_write\":{:.3},\"ratio\":{ratio},\"load_cpu_ratio\":{cpu_ratio},\"cpu_us_per_call\":{cpu}}}",
                row.name, med[i], med_cpu[i]
            )
        })
        .collect();
    format!("{{\"writes\":{writes},\"runs\":{},\"rows\":[{}]}}", env.runs, json.join(","))
}

const NO_CAPTURE: &str = "no capture";
const FLOOR: &str = "bpftrace uprobe+uretprobe count (floor)";

/// Section 1: SSL_write with no capture, the bpftrace floor, and ecapture
/// writing text to a file, JSON lines to a file, and to an eCaptureQ client
/// (the static binary, as shipped), and text to a file from the glibc build.
fn overhead(env: &Env) -> String {
    let dir = root().join("target/bench");
    let (text_file, json_file) = (dir.join("overhead-events.txt"), dir.join("overhead-events.json"));
    let (text, json) = (text_file.to_string_lossy().into_owned(), json_file.to_string_lossy().into_owned());
    let ecap = |bin, args, client| Beside::Ecapture { bin, args, client };
    let rows = [
        Row { name: NO_CAPTURE, beside: Beside::Nothing },
        Row { name: FLOOR, beside: Beside::Floor },
        Row { name: "ecapture static, text to a file", beside: ecap(&env.ecapture, vec!["tls", "--eventaddr", &text], false) },
        Row {
            name: "ecapture static, JSON lines to a file",
            beside: ecap(&env.ecapture, vec!["tls", "--eventformat", "json", "--eventaddr", &json], false),
        },
        Row { name: "ecapture static, eCaptureQ + 1 client", beside: ecap(&env.ecapture, vec!["tls", "--ecaptureq", "ws://127.0.0.1:0/"], true) },
        Row { name: "ecapture glibc, text to a file", beside: ecap(&env.glibc, vec!["tls", "--eventaddr", &text], false) },
    ];
    let table = overhead_table(env, "1. overhead (OpenSSL, `ecapture tls`)", &env.openssl, &rows, &[&text_file, &json_file]);
    format!("\"overhead\":{table}")
}

/// Section 6: the `gnutls` and `nss` modules as section 1 measures `tls`
/// (text to a file, static binary), each against a floor with the same
/// probes on the same functions.
fn other_stacks(env: &Env) -> String {
    let text_file = root().join("target/bench/overhead-events.txt");
    let text = text_file.to_string_lossy().into_owned();
    let mut json = Vec::new();
    for (module, title, stack) in [("gnutls", "GnuTLS", &env.gnutls), ("nss", "NSS", &env.nss)] {
        let rows = [
            Row { name: NO_CAPTURE, beside: Beside::Nothing },
            Row { name: FLOOR, beside: Beside::Floor },
            Row {
                name: "ecapture static, text to a file",
                beside: Beside::Ecapture { bin: &env.ecapture, args: vec![module, "--eventaddr", &text], client: false },
            },
        ];
        let heading = format!("6. overhead ({title}, `ecapture {module}`)");
        json.push(format!("\"{module}\":{}", overhead_table(env, &heading, stack, &rows, &[&text_file])));
    }
    format!("\"other_stacks\":{{{}}}", json.join(","))
}

/// The Go load and the probes `ecapture gotls --elfpath` puts on it:
/// ecapture's own list.
fn go_stack(load: &Path, cert: &Path, key: &Path) -> Option<Stack> {
    use ecapture::modules::gotls;
    if !load.exists() {
        return None;
    }
    let mut program = gotls::inspect(load).unwrap_or_else(|e| fail(&format!("{}: {e}", load.display())));
    // ecapture gotls without -k: no key log probe.
    program.keylog = None;
    let offsets = gotls::uprobes(&program).iter().map(|u| u.offset).collect();
    Some(Stack {
        load: load.to_path_buf(),
        write: "(*tls.Conn).Write",
        creds: [cert.into(), key.into()],
        probes: Probes::Offsets { path: load.to_path_buf(), offsets },
    })
}

/// Section 7: `ecapture gotls` as section 1 measures `tls`, on Go's
/// crypto/tls (bench/tlsload.go, built by the Go fixture), against a floor
/// of counting uprobes at the same offsets (entries and every RET; Go gets
/// no uretprobes).
fn go_overhead(env: &Env) -> String {
    let Some(stack) = &env.go else {
        fail("target/bench/tlsload-go is missing: run `make bench` (it builds the Go fixture)");
    };
    let text_file = root().join("target/bench/overhead-events.txt");
    let text = text_file.to_string_lossy().into_owned();
    let load = stack.load.to_string_lossy().into_owned();
    let rows = [
        Row { name: NO_CAPTURE, beside: Beside::Nothing },
        Row { name: "counting uprobes at ecapture's offsets (floor)", beside: Beside::Floor },
        Row {
            name: "ecapture static, text to a file",
            beside: Beside::Ecapture { bin: &env.ecapture, args: vec!["gotls", "--elfpath", &load, "--eventaddr", &text], client: false },
        },
    ];
    let table = overhead_table(env, "7. overhead (Go crypto/tls, `ecapture gotls`)", stack, &rows, &[&text_file]);
    format!("\"gotls\":{table}")
}

/// What a captured load made, and what ecapture captured of it.
struct Completeness {
    writes: f64,
    bytes_made: f64,
    seconds: f64,
    summary: Summary,
}

/// Runs `procs` tlsload processes of `conns` connections each under
/// `ecapture tls`.
fn captured_load(
    env: &Env,
    procs: usize,
    conns: usize,
    size: usize,
    writes_per_conn: usize,
) -> Completeness {
    let e = Ecap::start(&env.ecapture, &["tls"]);
    let t = Instant::now();
    let (n, s, c) = (writes_per_conn.to_string(), size.to_string(), conns.to_string());
    let args = ["-n", &n, "-s", &s, "-c", &c];
    let hs: Vec<JoinHandle<Load>> = (0..procs).map(|_| tlsload_spawn(&env.openssl, &args)).collect();
    let loads: Vec<Load> = hs
        .into_iter()
        .map(|h| h.join().unwrap_or_default())
        .collect();
    let seconds = t.elapsed().as_secs_f64();
    let summary = e.stop();
    Completeness {
        writes: loads.iter().map(|l| l.writes).sum(),
        // Each write, and the server's read of it.
        bytes_made: 2.0 * loads.iter().map(|l| l.bytes).sum::<f64>(),
        seconds,
        summary,
    }
}

/// Section 2: Calls and bytes captured vs made: one connection at its highest
/// rate, then harder loads (more processes and connections, then bigger
/// writes) until the first loss.
fn completeness(env: &Env) -> String {
    let c = captured_load(env, 1, 1, 64, 200_000);
    let made_calls = 2.0 * c.writes;
    let s = c.summary;
    println!(
        "2. completeness at the highest rate one connection makes ({:.0} writes/s of 64 bytes), default buffers",
        c.writes / c.seconds
    );
    println!(
        "   calls captured {} of {made_calls:.0} made, bytes {} of {:.0}, lost {}",
        s.calls, s.bytes, c.bytes_made, s.lost
    );
    let head = format!(
        "\"calls_made\":{made_calls:.0},\"calls_captured\":{},\"bytes_made\":{:.0},\"bytes_captured\":{},\"lost\":{},\"writes_per_s\":{:.0}",
        s.calls,
        c.bytes_made,
        s.bytes,
        s.lost,
        c.writes / c.seconds
    );
    println!("   harder loads, until the first loss (MB/s: plaintext captured, both ends):");
    let mut steps = Vec::new();
    let mut first_loss = None;
    // (processes, connections each, write size, writes per connection)
    for (procs, conns, size, n) in [
        (2, 2, 64, 40_000),
        (4, 4, 64, 10_000),
        (1, 1, 1024, 40_000),
        (1, 1, 4096, 20_000),
        (2, 2, 4096, 10_000),
        (1, 1, 16384, 10_000),
        (2, 2, 16384, 5_000),
        (4, 4, 16384, 2_000),
        (4, 4, 65536, 500),
    ] {
        let c = captured_load(env, procs, conns, size, n);
        let s = c.summary;
        let (rate, mbs) = (c.writes / c.seconds, c.bytes_made / c.seconds / 1e6);
        let clean = s.lost == 0 && s.bytes as f64 >= c.bytes_made;
        println!(
            "   {procs} proc × {conns} conn × {size:>5} B: {rate:>7.0} writes/s {mbs:>6.0} MB/s, bytes {} of {:.0}, lost {}",
            s.bytes, c.bytes_made, s.lost
        );
        steps.push(format!(
            "{{\"procs\":{procs},\"conns\":{conns},\"size\":{size},\"writes_per_s\":{rate:.0},\"mb_per_s\":{mbs:.1},\"bytes_made\":{:.0},\"bytes_captured\":{},\"lost\":{}}}",
            c.bytes_made, s.bytes, s.lost
        ));
        if !clean {
            first_loss = Some((rate, mbs));
            break;
        }
    }
    match first_loss {
        Some((r, m)) => println!("   first loss at {r:.0} writes/s, {m:.0} MB/s\n"),
        None => println!("   no loss at any of these loads\n"),
    }
    format!(
        "\"completeness\":{{{head},\"harder\":[{}],\"first_loss\":{}}}",
        steps.join(","),
        first_loss.map_or("null".to_string(), |(r, m)| format!(
            "{{\"writes_per_s\":{r:.0},\"mb_per_s\":{m:.1}}}"
        ))
    )
}

/// Section 3: SSL_write to eCaptureQ client, stamped HTTP/1.1 requests at 1000/s.
fn latency(env: &Env) -> String {
    let mut e = Ecap::start(&env.ecapture, &["tls", "--ecaptureq", "ws://127.0.0.1:0/"]);
    let url = ecq_url(&mut e);
    let client = Client::connect(&url, true);
    tlsload(&env.openssl, &["-n", "3000", "-s", "128", "-r", "1000", "-t", "-H"]);
    std::thread::sleep(Duration::from_millis(200)); // the last events' way to the client
    e.stop();
    let lat = client.join().latencies_us;
    let (p50, p99, max) = (
        percentile(&lat, 50.0) / 1000.0,
        percentile(&lat, 99.0) / 1000.0,
        range(&lat).1 / 1000.0,
    );
    println!(
        "3. latency, SSL_write to eCaptureQ client, HTTP/1.1 requests at 1000/s: {} samples",
        lat.len()
    );
    println!("   p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms   (SPEC target p99 ≤ 10 ms)\n");
    format!(
        "\"latency_ms\":{{\"samples\":{},\"p50\":{p50:.3},\"p99\":{p99:.3},\"max\":{max:.3}}}",
        lat.len()
    )
}

/// Section 4: RSS of ecapture with 1, 10 and 100 eCaptureQ clients at ~10k
/// events/s, and whether every client got every event.
fn fan_out(env: &Env) -> String {
    println!(
        "4. memory and fan-out at ~10k events/s (5000 HTTP requests/s, both ends captured, 4 s)"
    );
    let mut rows = Vec::new();
    for n in [1usize, 10, 100] {
        let mut e = Ecap::start(&env.ecapture, &["tls", "--ecaptureq", "ws://127.0.0.1:0/"]);
        let url = ecq_url(&mut e);
        let clients: Vec<Client> = (0..n).map(|_| Client::connect(&url, false)).collect();
        let cpu0 = e.cpu_seconds();
        let h = tlsload_spawn(&env.openssl, &["-n", "20000", "-s", "128", "-r", "5000", "-H"]);
        let mut peak = 0;
        while !h.is_finished() {
            peak = peak.max(e.own_rss_kib());
            std::thread::sleep(Duration::from_millis(50));
        }
        let load = h.join().unwrap_or_default();
        let cpu = (e.cpu_seconds() - cpu0) / load.seconds.max(0.001) * 100.0;
        std::thread::sleep(Duration::from_millis(300)); // the clients' last events
        peak = peak.max(e.own_rss_kib());
        let with_ring = e.rss_kib("VmRSS:");
        let s = e.stop();
        let counts: Vec<u64> = clients.into_iter().map(|c| c.join().events).collect();
        let all = s.lost == 0
            && s.events as f64 >= 2.0 * load.writes
            && counts.iter().all(|&c| c == s.events);
        let least = counts.iter().copied().min().unwrap_or(0);
        println!(
            "   {n:>3} clients: RSS peak {:.1} MiB ({:.1} with the ring mapped), CPU {cpu:.0}%; load {:.0} requests/s; {} of {:.0} events captured ({:.0}/s), lost {}; every client got every event: {}",
            peak as f64 / 1024.0,
            with_ring as f64 / 1024.0,
            load.writes_per_s,
            s.events,
            2.0 * load.writes,
            s.events as f64 / load.seconds.max(0.001),
            s.lost,
            if all { "yes".to_string() } else { format!("no (least {least}, dropped for slow clients {})", s.ecq_dropped) }
        );
        rows.push(format!(
            "{{\"clients\":{n},\"rss_peak_mib\":{:.2},\"rss_with_ring_mib\":{:.2},\"cpu_percent\":{cpu:.1},\"requests_per_s\":{:.0},\"events\":{},\"lost\":{},\"least_received\":{least},\"all_got_all\":{all},\"dropped_for_slow_clients\":{}}}",
            peak as f64 / 1024.0,
            with_ring as f64 / 1024.0,
            load.writes_per_s,
            s.events,
            s.lost,
            s.ecq_dropped
        ));
    }
    println!("   (SPEC targets: ≤ 32 MiB with 10 clients; 100 clients keep up. RSS without the ring buffer's");
    println!("   mapping: the ring, --mapsize × CPUs = 8 MiB here, is kernel memory whichever transport)\n");
    format!("\"memory\":[{}]", rows.join(","))
}

/// Section 5: Binary sizes; start to "probes attached" of the static binary.
fn size_and_startup(env: &Env) -> String {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut starts = Vec::new();
    let bin = if env.static_bin.exists() {
        &env.static_bin
    } else {
        &env.ecapture
    };
    for _ in 0..env.runs {
        let e = Ecap::start(bin, &["tls"]);
        starts.push(e.startup.as_secs_f64() * 1000.0);
        e.stop();
    }
    let (lo, hi) = range(&starts);
    println!("5. size and start-up");
    println!(
        "   static binary {:.2} MiB ({}), glibc binary {:.2} MiB   (SPEC target ≤ 8 MiB)",
        size(&env.static_bin) as f64 / 1048576.0,
        env.static_bin.display(),
        size(&env.glibc) as f64 / 1048576.0
    );
    println!(
        "   start to \"probes attached\" ({}): {:.0} ms [{lo:.0}–{hi:.0}]   (SPEC target ≤ 300 ms)\n",
        if bin == &env.static_bin { "static" } else { "glibc" },
        median(&starts)
    );
    format!(
        "\"size\":{{\"static_bytes\":{},\"glibc_bytes\":{}}},\"startup_ms\":{{\"median\":{:.1},\"min\":{lo:.1},\"max\":{hi:.1}}}",
        size(&env.static_bin),
        size(&env.glibc),
        median(&starts)
    )
}

/// CPU time of process `pid` so far, in seconds: its threads' run time
/// from /proc/PID/task/*/schedstat (nanoseconds; /proc/PID/stat counts
/// 10 ms ticks, too coarse for a few ms per second at low packet rates).
/// Threads that ended are not counted: section 8's capturers keep theirs.
/// Without schedstat, user + system ticks.
fn cpu_of(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>()).unwrap_or_default();
    let ns: Option<u64> = tasks
        .iter()
        .map(|t| std::fs::read_to_string(t.join("schedstat")).ok().and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok()))
        .sum();
    if let Some(ns) = ns.filter(|_| !tasks.is_empty()) {
        return ns as f64 / 1e9;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<f64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / hz
}

/// Sends `count` 64-byte UDP datagrams to 127.0.0.1:`port` at `rate` per
/// second (paced in 1 ms steps); returns how many were sent.
fn udp_blast(port: u16, rate: u64, count: u64) -> u64 {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("udp socket: {e}")));
    let payload = [0x5au8; 64];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < count {
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(count);
        while sent < due {
            if sock.send_to(&payload, ("127.0.0.1", port)).is_ok() {
                sent += 1;
            } else {
                break;
            }
        }
        if sent < count {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    sent
}

/// One capture run: (packets kept, packets the kernel dropped, CPU µs per packet sent).
fn capture_run(which: &str, bin: &Path, file: &Path, port: u16, rate: u64, count: u64) -> (u64, u64, f64) {
    let _ = std::fs::remove_file(file);
    let filter = format!("udp port {port}");
    let mut cmd = if which == "tcpdump" {
        // `tcpdump -w` as users run it (libpcap's TPACKET_V3 ring, buffered
        // writes, no immediate mode), with the same ring size as ecapture's (16 MiB).
        let mut c = Command::new("tcpdump");
        c.args(["-i", "lo", "-n", "-B", "16384", "-w"]).arg(file).arg(&filter);
        c
    } else {
        let mut c = Command::new(bin);
        c.args(["tls", "-m", "pcapng", "-i", "lo", "-w"]).arg(file).args(filter.split(' ')).args(["--uid", LOAD_UID]);
        c
    };
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| fail(&format!("{which}: {e}")));
    let err = child.stderr.take().unwrap_or_else(|| fail("no stderr"));
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push(line);
        }
        all
    });
    let ready = if which == "tcpdump" { "listening on" } else { "probes attached" };
    let deadline = Instant::now() + PATIENCE;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) if l.contains(ready) => break,
            Ok(_) => {}
            Err(_) => fail(&format!("{which} did not start")),
        }
    }
    let cpu0 = cpu_of(child.id());
    let sent = udp_blast(port, rate, count);
    // Until the capturer is idle again: its file has not grown for 1.5 s.
    // (libpcap hands tcpdump a ring block when it fills or after its 1 s
    // timeout, so a shorter quiet spell can stop tcpdump with packets still
    // in the ring, counted against it as lost.)
    let (mut last, mut quiet) = (u64::MAX, 0);
    while quiet < 15 {
        std::thread::sleep(Duration::from_millis(100));
        let now = std::fs::metadata(file).map_or(0, |m| m.len());
        quiet = if now == last { quiet + 1 } else { 0 };
        last = now;
    }
    let cpu = cpu_of(child.id()) - cpu0;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, if which == "tcpdump" { libc::SIGINT } else { libc::SIGTERM }) };
    let _ = child.wait();
    let lines = reader.join().unwrap_or_default();
    let num_before = |key: &str| -> u64 {
        lines
            .iter()
            .rev()
            .find(|l| l.contains(key))
            .and_then(|l| l.split(key).next())
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let (kept, dropped) = if which == "tcpdump" {
        (num_before(" packets captured"), num_before(" packets dropped by kernel"))
    } else {
        // "pcapng FILE: N packets (B bytes) from lo, ...; D packets dropped by the kernel"
        let l = lines.iter().rev().find(|l| l.contains("pcapng ")).cloned().unwrap_or_default();
        let kept = l.split(" packets (").next().and_then(|s| s.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
        (kept, num_before(" packets dropped by the kernel"))
    };
    (kept, dropped, cpu * 1e6 / sent.max(1) as f64)
}

/// Section 8: `ecapture tls -m pcapng -w` against `tcpdump -w` on the same
/// UDP traffic on lo, rate by rate: what each kept and lost, and its CPU
/// per packet (target: ecapture within 1.5× of tcpdump).
fn pcapng_vs_tcpdump(env: &Env) -> String {
    if Command::new("tcpdump").arg("--version").output().is_err() {
        println!("8. pcapng vs tcpdump: skipped (tcpdump not installed)\n");
        return "\"pcapng\":null".into();
    }
    let rates: Vec<u64> = std::env::var("BENCH_PCAP_RATES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![20_000, 50_000, 100_000, 200_000, 400_000]);
    let seconds: f64 = std::env::var("BENCH_PCAP_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3.0);
    let dir = root().join("target/bench");
    let file = dir.join("pcapng-bench.out");
    // Something listens on the port: no ICMP port-unreachable answers.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("udp socket: {e}")));
    let port = sink.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("8. -m pcapng vs tcpdump -w: 64-byte UDP datagrams on lo, `udp port {port}`, {seconds} s per run, median of {} runs", env.runs);
    println!("   {:>9} | {:>22} {:>9} | {:>22} {:>9} | {:>6}", "pkts/s", "tcpdump kept/lost", "µs/pkt", "ecapture kept/lost", "µs/pkt", "ratio");
    let mut rows = Vec::new();
    let mut lossless = [0u64; 2];
    for &rate in &rates {
        let count = (rate as f64 * seconds) as u64;
        let mut res: [Vec<(u64, u64, f64)>; 2] = [Vec::new(), Vec::new()];
        for run in 0..env.runs {
            // Alternating which goes first.
            let order: [usize; 2] = if run % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let which = if i == 0 { "tcpdump" } else { "ecapture" };
                res[i].push(capture_run(which, &env.ecapture, &file, port, rate, count));
            }
        }
        let med = |v: &[(u64, u64, f64)]| -> (f64, f64, f64) {
            let kept: Vec<f64> = v.iter().map(|r| r.0 as f64).collect();
            let cpu: Vec<f64> = v.iter().map(|r| r.2).collect();
            let lost: Vec<f64> = v.iter().map(|r| count.saturating_sub(r.0) as f64).collect();
            (median(&kept), median(&lost), median(&cpu))
        };
        let (t, e) = (med(&res[0]), med(&res[1]));
        for (i, r) in [t, e].iter().enumerate() {
            if r.1 == 0.0 {
                lossless[i] = lossless[i].max(rate);
            }
        }
        println!(
            "   {rate:>9} | {:>14.0}/{:<7.0} {:>9.3} | {:>14.0}/{:<7.0} {:>9.3} | {:>5.2}×",
            t.0,
            t.1,
            t.2,
            e.0,
            e.1,
            e.2,
            e.2 / t.2
        );
        rows.push(format!(
            "{{\"rate\":{rate},\"sent\":{count},\"tcpdump\":{{\"kept\":{:.0},\"lost\":{:.0},\"cpu_us_per_pkt\":{:.4}}},\"ecapture\":{{\"kept\":{:.0},\"lost\":{:.0},\"cpu_us_per_pkt\":{:.4}}}}}",
            t.0, t.1, t.2, e.0, e.1, e.2
        ));
    }
    let _ = std::fs::remove_file(&file);
    println!("   highest rate without loss: tcpdump {} pkts/s, ecapture {} pkts/s   (target: CPU ≤ 1.5× tcpdump's)\n", lossless[0], lossless[1]);
    format!(
        "\"pcapng\":{{\"rows\":[{}],\"lossless_rate\":{{\"tcpdump\":{},\"ecapture\":{}}}}}",
        rows.join(","),
        lossless[0],
        lossless[1]
    )
}
