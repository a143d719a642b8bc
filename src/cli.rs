//! The command line: eCapture's flags parsed with pico-args into a validated
//! `Config` — global flags (`Global`, anywhere on the line) and the module
//! with its own flags (`ModuleConfig`, after the module's name, as eCapture's
//! subcommand flags). No I/O happens here besides reading the arguments, so
//! every rule is unit-tested; checks that need the system (root, pids,
//! files) are in `pipeline` and the modules.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::ecaptureq::addr::EcqAddr;
use crate::transport::ClientTrust;
use crate::error::{Error, Result};
use crate::flags::{opt, parse_size, parse_uint, text};
use crate::modules::{self, ModuleConfig};
use crate::sink::{Rotation, Target};

pub const DEFAULT_MAPSIZE_PAGES: usize = 1024;
pub const DEFAULT_CAPTURE_CAP: u32 = 2 << 20;
pub const DEFAULT_IDLE_MS: u64 = 100;
pub const DEFAULT_MAX_MEMORY: usize = 64 << 20;
const MIN_CAPTURE_CAP: u32 = 4096;
const MAX_CAPTURE_CAP: u32 = 64 << 20;

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    Version,
    Run(Box<Config>),
}

/// How events are written as text (stdout, --eventaddr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFormat {
    /// SPEC §5.1: header line, payload, blank line.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A validated configuration for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub global: Global,
    pub module: ModuleConfig,
    /// `-m pcapng`: packets and secrets into a pcapng file.
    pub pcap: Option<modules::PcapConfig>,
}

/// The flags every module shares.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    pub debug: bool,
    pub hex: bool,
    /// Ring buffer pages per CPU, a power of two.
    pub mapsize_pages: usize,
    /// 0 = every process.
    pub pid: u32,
    /// 0 = every user.
    pub uid: u32,
    /// Text output shows at most this many payload bytes per event; 0 = all.
    pub tsize: usize,
    /// Bytes captured per call; beyond it the event is marked truncated.
    pub capture_cap: u32,
    /// `--ecaptureq`: events and logs go to this WebSocket server's clients.
    pub ecaptureq: Option<EcqAddr>,
    /// `--eventaddr` / `--logaddr` given together with `--ecaptureq`, which
    /// takes priority: kept only to say so in the log.
    pub overridden_addrs: Vec<String>,
    /// `-l/--logaddr`: runtime logs also go there (stderr keeps them too).
    pub logaddr: Option<Target>,
    /// `--eventaddr` (defaults to the logaddr target): events go there instead of stdout.
    pub eventaddr: Option<Target>,
    /// Rotation of the event file (`--eventroratesize`, `--eventroratetime`).
    pub rotation: Rotation,
    pub eventformat: EventFormat,
    /// A message that stops growing is emitted after this long (SPEC §4).
    pub idle_ms: u64,
    /// `--ecaptureq-payload text`: eCaptureQ events carry the text rendering.
    pub ecq_payload_text: bool,
    /// `--btf-file`: the kernel's types, for kernels without /sys/kernel/btf/vmlinux.
    pub btf_file: Option<PathBuf>,
    /// `--max-memory`: what ecapture may hold of the traffic, in bytes.
    pub max_memory: usize,
    /// `--cacert`, `--insecure-skip-tls-verify`: how wss:// collectors are trusted.
    pub tls_trust: ClientTrust,
    /// `--ecaptureq-cert`, `--ecaptureq-key`: the eCaptureQ server's
    /// certificate chain and key (PEM), for `--ecaptureq wss://…`.
    pub ecq_cert: Option<(PathBuf, PathBuf)>,
}

impl Default for Global {
    fn default() -> Global {
        Global {
            debug: false,
            hex: false,
            mapsize_pages: DEFAULT_MAPSIZE_PAGES,
            pid: 0,
            uid: 0,
            tsize: 0,
            capture_cap: DEFAULT_CAPTURE_CAP,
            ecaptureq: None,
            overridden_addrs: Vec::new(),
            logaddr: None,
            eventaddr: None,
            rotation: Rotation::default(),
            eventformat: EventFormat::Text,
            idle_ms: DEFAULT_IDLE_MS,
            ecq_payload_text: false,
            btf_file: None,
            max_memory: DEFAULT_MAX_MEMORY,
            tls_trust: ClientTrust::default(),
            ecq_cert: None,
        }
    }
}

pub const HELP: &str = "\
ecapture — capture TLS plaintext with eBPF uprobes, no CA certificate, no proxy

USAGE:
    ecapture [GLOBAL FLAGS] <MODULE> [MODULE FLAGS]
    (global flags may also follow the module; module flags follow its name)

MODULES:
    tls, openssl     OpenSSL/BoringSSL: SSL_read/SSL_write[_ex] of every process
    gnutls           GnuTLS: gnutls_record_send/recv (wget, gnutls-cli, libcurl-gnutls)
    nss, nspr        NSS: PR_Write/PR_Read/PR_Send/PR_Recv of TLS descriptors
                     (Firefox, Thunderbird, tstclnt/selfserv)
    gotls            Go programs: crypto/tls.(*Conn).Write/Read, stripped or not
                     (Go 1.17+, amd64)
    all              every module whose library this host has, into one stream
                     (coming later: bash, zsh, mysqld, postgres)

GLOBAL FLAGS:
    -d, --debug              debug logging (RUST_LOG works too)
        --hex                print payloads as a hex dump
        --mapsize N          ring buffer per CPU, in 4 KiB pages [default: 1024]
    -p, --pid N              capture only this process (0 = all) [default: 0]
    -u, --uid N              capture only this user (0 = all) [default: 0]
    -t, --tsize N            show at most N payload bytes per event (0 = all)
        --maxpayload SIZE    bytes captured per SSL call, K/M suffixes allowed;
                             larger calls are marked truncated [default: 2M]
        --idletime MS        a message that is not HTTP (or not complete) is
                             emitted after this idle time [default: 100]
        --max-memory SIZE    traffic ecapture may hold (partial calls, messages
                             being assembled, output queues); beyond it the
                             largest is given out early, counted [default: 64M]
    -b, --btf N              0 auto, 1 CO-RE (2, non-CO-RE, is not supported)
        --btf-file PATH      the kernel's BTF from this file (e.g. from BTFHub),
                             for kernels without /sys/kernel/btf/vmlinux
    -l, --logaddr ADDR       runtime logs also to a file, tcp://HOST:PORT,
                             ws://HOST:PORT/PATH or wss://HOST:PORT/PATH
                             (stderr keeps them)
        --eventaddr ADDR     events to a file, tcp://, ws:// or wss:// instead
                             of stdout [default: the --logaddr target]
        --cacert PATH        CA certificates (PEM) trusted for wss:// collectors,
                             besides the host's (SSL_CERT_FILE, /etc/ssl/certs)
        --insecure-skip-tls-verify
                             do not verify wss:// collectors' certificates or
                             names (anyone on the path can read the plaintext)
        --eventformat FMT    text (default) or json: one JSON object per line
        --ecaptureq URL      serve logs and events as protobuf over WebSocket,
                             e.g. ws://127.0.0.1:28257/ (add ?token=SECRET to
                             require it from clients); wss://… serves TLS
                             with --ecaptureq-cert/--ecaptureq-key; takes
                             priority over --logaddr/--eventaddr
        --ecaptureq-cert PATH, --ecaptureq-key PATH
                             the wss:// server's certificate chain and key (PEM)
        --ecaptureq-payload  raw (default): events carry the plaintext as is;
                 raw|text    text: its rendering (HTTP/2 decoded, bodies unzipped)
        --eventroratesize MB rotate the --eventaddr file at this size (MiB)
        --eventroratetime S  rotate the --eventaddr file every S seconds
    -v, --version            print the version
    -h, --help               print this help

TLS FLAGS (after `tls`):
        --libssl PATH        libssl.so, or a program with OpenSSL or BoringSSL
                             linked in (symbols kept), to hook [default: libssl
                             mapped by running processes, and the system's]
        --ssl_version VER    override version detection, e.g. \"openssl 3.0.2\",
                             \"boringssl\"
    -m, --model MODE         text (default); keylog (alias key): write TLS
                             secrets to the key log only; pcapng (alias pcap):
                             packets of -i IFACE with their TLS secrets in one
                             pcapng file (-w) that tshark decrypts alone
    -k, --keylogfile PATH    the key log: NSS key log format for Wireshark and
                             tshark, created 0600, appended [default with -m
                             keylog: ecapture_openssl_key.log]; with -m text,
                             plaintext events and keys in one run
    -w, --pcapfile PATH      -m pcapng: the file, created 0600, truncated; -
                             for standard output [default: save.pcapng]
    -i, --ifname IFACE       -m pcapng: the interface (Ethernet or loopback)
    FILTER...                -m pcapng: a tcpdump expression after the flags
                             (host, net, port, portrange, src, dst, ip, ip6,
                             tcp, udp, and, or, not, parentheses), applied in
                             the kernel
        --cgroup_path PATH   (not yet supported)

GNUTLS FLAGS (after `gnutls`):
        --gnutls PATH        libgnutls.so to hook [default: libgnutls mapped by
                             running processes, and the system's]
        --ssl_version VER    override version detection, e.g. \"3.7.9\"

NSS FLAGS (after `nss`):
        --nspr PATH          libnspr4.so to hook [default: libnspr4 mapped by
                             running processes, and the system's; NSS's libssl3
                             is found the same way]

GOTLS FLAGS (after `gotls`):
        --elfpath PATH       the Go executable to hook (every process running it)
                             [default: every running Go program that links
                             crypto/tls, found by its build information]
    -m, --model MODE         text (default), keylog (alias key) or pcapng (alias
                             pcap), as for tls
    -k, --keylogfile PATH    the key log, as for tls: the secrets Go's crypto/tls
                             hands its key log writer
    -w, -i, FILTER...        -m pcapng, as for tls

ALL FLAGS (after `all`): --libssl, --gnutls, --nspr, --elfpath, -m, -k, -w, -i as
    above (keys: OpenSSL's, BoringSSL's and Go's; GnuTLS and NSS give none, with a warning)

gnutls and nss take -m pcapng, -w, -i too: packets without their keys (these
modules do not read secrets yet).

OUTPUT:
    Events go to stdout: a header line
      <time> PID:<pid>, Comm:<comm>, TID:<tid>, FD:<fd>, <READ|WRITE>, Src:<ip>:<port>, Dest:<ip>:<port>, <TLS version>, Length:<n>
    then the payload (text as is, binary as a hex dump). Src/Dest follow the
    data: for WRITE, Src is this host's end. Logs go to stderr.

EXAMPLES:
    sudo ecapture tls                          # every process using the system's OpenSSL
    sudo ecapture tls --pid 1234               # one process
    sudo ecapture tls --libssl /opt/app/lib/libssl.so.3 --hex
    sudo ecapture tls --libssl /usr/local/bin/envoy   # BoringSSL linked into a program
    sudo ecapture gotls --elfpath /usr/local/bin/myservice   # a Go program
    sudo ecapture --uid 1000 -t 512 tls        # one user, first 512 bytes of each event
    sudo ecapture tls -m keylog -k keys.log    # TLS secrets for Wireshark/tshark
    sudo ecapture tls -m pcapng -i eth0 -w out.pcapng tcp port 443   # tshark -r out.pcapng
    sudo ecapture gotls -m keylog -k keys.log  # Go programs' TLS secrets
    sudo ecapture tls --ecaptureq=ws://127.0.0.1:28257/   # stream to eCaptureQ clients
    sudo ecapture tls --eventaddr /var/log/tls.jsonl --eventformat json --eventroratesize 100
    sudo ecapture tls -l tcp://collector:9000          # logs and events to a TCP collector
";

/// Parses the arguments after the program name.
pub fn parse(args: Vec<OsString>) -> Result<Command> {
    let mut p = pico_args::Arguments::from_vec(args);
    if p.contains(["-h", "--help"]) {
        return Ok(Command::Help);
    }
    if p.contains(["-v", "--version"]) {
        return Ok(Command::Version);
    }
    let global = parse_global(&mut p)?;

    // What is left: the module, then its flags.
    let mut rest = p.finish().into_iter().map(|a| a.to_string_lossy().into_owned());
    let name = match rest.next() {
        None => return Err(Error::usage("no module given: try 'ecapture tls' (see ecapture --help)")),
        Some(f) if f.starts_with('-') && f.len() > 1 => {
            return Err(match modules::flag_owner(&f) {
                Some(m) => Error::usage(format!(
                    "{} is a flag of the {m} module: give it after the module's name, e.g. 'ecapture {m} {f} ...'",
                    f.split('=').next().unwrap_or(&f)
                )),
                None => Error::usage(format!("unknown flag '{f}' (see ecapture --help)")),
            })
        }
        Some(name) => name,
    };
    let mut margs: Vec<OsString> = rest.map(OsString::from).collect();
    let mut pcap = if modules::NAMES.iter().any(|(n, a)| *n == name || a.contains(&name.as_str())) {
        modules::PcapConfig::take(&mut margs)?
    } else {
        None
    };
    let mut mp = pico_args::Arguments::from_vec(margs);
    let mut module = ModuleConfig::parse(&name, &mut mp)?;
    let left: Vec<String> = mp.finish().iter().map(|a| a.to_string_lossy().into_owned()).collect();
    if let Some(a) = left.iter().find(|a| a.starts_with('-') && a.len() > 1) {
        return Err(Error::usage(format!("unknown flag '{a}' (see ecapture --help)")));
    }
    match (&mut pcap, left.first()) {
        (Some(pc), _) => {
            // What is left is the filter, in tcpdump's syntax.
            pc.filter = left.join(" ");
            crate::packet::filter::compile(&pc.filter, pc.snaplen, false)
                .map_err(|e| Error::usage(format!("filter '{}': {e}", pc.filter)))?;
            module.want_secrets_for_pcap();
        }
        (None, Some(a)) => return Err(Error::usage(format!("unexpected argument '{a}' (see ecapture --help)"))),
        (None, None) => {}
    }
    Ok(Command::Run(Box::new(Config { global, module, pcap })))
}

/// The global flags, wherever they are on the line.
fn parse_global(p: &mut pico_args::Arguments) -> Result<Global> {
    let mut c = Global { debug: p.contains(["-d", "--debug"]), hex: p.contains("--hex"), ..Global::default() };

    if let Some(n) = opt(p, "--mapsize", None, |s| parse_uint(s, "a number of pages"))? {
        if n == 0 || n > 65536 {
            return Err(Error::usage(format!("invalid value '{n}' for --mapsize: expected 1 to 65536 pages")));
        }
        c.mapsize_pages = (n as usize).next_power_of_two();
    }
    if let Some(n) = opt(p, "--pid", Some("-p"), |s| parse_uint(s, "a process id"))? {
        c.pid = u32::try_from(n).map_err(|_| Error::usage(format!("invalid value '{n}' for --pid: too large")))?;
    }
    if let Some(n) = opt(p, "--uid", Some("-u"), |s| parse_uint(s, "a user id"))? {
        c.uid = u32::try_from(n).map_err(|_| Error::usage(format!("invalid value '{n}' for --uid: too large")))?;
    }
    if let Some(n) = opt(p, "--tsize", Some("-t"), |s| parse_uint(s, "a number of bytes"))? {
        c.tsize = n as usize;
    }
    if let Some(n) = opt(p, "--max-memory", None, parse_size)? {
        if !(4 << 20..=64 << 30).contains(&n) {
            return Err(Error::usage(format!("invalid value '{n}' for --max-memory: expected 4M to 64G")));
        }
        c.max_memory = n as usize;
    }
    if let Some(n) = opt(p, "--maxpayload", None, parse_size)? {
        if !(MIN_CAPTURE_CAP as u64..=MAX_CAPTURE_CAP as u64).contains(&n) {
            return Err(Error::usage(format!("invalid value '{n}' for --maxpayload: expected 4K to 64M")));
        }
        c.capture_cap = n as u32;
    }
    match opt(p, "--btf", Some("-b"), |s| parse_uint(s, "0, 1 or 2"))? {
        None | Some(0) | Some(1) => {}
        Some(2) => {
            return Err(Error::usage(
                "--btf 2 (non-CO-RE) is not supported: ecapture needs the kernel's BTF (/sys/kernel/btf/vmlinux)",
            ))
        }
        Some(n) => return Err(Error::usage(format!("invalid value '{n}' for --btf: expected 0, 1 or 2"))),
    }
    c.btf_file = opt(p, "--btf-file", None, |s| if s.is_empty() { Err("expected a path".into()) } else { Ok(PathBuf::from(s)) })?;

    if let Some(url) = opt(p, "--ecaptureq", None, text)? {
        c.ecaptureq = Some(EcqAddr::parse(&url)?);
    }
    let path = |s: &str| if s.is_empty() { Err("expected a path".to_string()) } else { Ok(PathBuf::from(s)) };
    let cert = opt(p, "--ecaptureq-cert", None, path)?;
    let key = opt(p, "--ecaptureq-key", None, path)?;
    match (&c.ecaptureq, cert, key) {
        (Some(a), Some(cert), Some(key)) if a.tls => c.ecq_cert = Some((cert, key)),
        (Some(a), _, _) if a.tls => {
            return Err(Error::usage("--ecaptureq wss://… needs --ecaptureq-cert PATH and --ecaptureq-key PATH (PEM)"))
        }
        (_, None, None) => {}
        _ => return Err(Error::usage("--ecaptureq-cert and --ecaptureq-key are for --ecaptureq wss://… only")),
    }
    c.tls_trust.cacert = opt(p, "--cacert", None, path)?;
    c.tls_trust.insecure = p.contains("--insecure-skip-tls-verify");
    if let Some(v) = opt(p, "--ecaptureq-payload", None, text)? {
        c.ecq_payload_text = match v.as_str() {
            "raw" => false,
            "text" => true,
            _ => return Err(Error::usage(format!("invalid value '{v}' for --ecaptureq-payload: expected raw or text"))),
        };
    }
    if let Some(ms) = opt(p, "--idletime", None, |s| parse_uint(s, "milliseconds"))? {
        if !(1..=60_000).contains(&ms) {
            return Err(Error::usage(format!("invalid value '{ms}' for --idletime: expected 1 to 60000 ms")));
        }
        c.idle_ms = ms;
    }
    // With --ecaptureq, events and logs go to its clients: text addresses
    // are checked but not used (the log says so).
    for (long, short) in [("--logaddr", Some("-l")), ("--eventaddr", None)] {
        if let Some(v) = opt(p, long, short, text)? {
            let target = Target::parse(long, &v)?;
            if c.ecaptureq.is_some() {
                c.overridden_addrs.push(format!("{long} {v}"));
            } else if long == "--logaddr" {
                c.logaddr = Some(target);
            } else {
                c.eventaddr = Some(target);
            }
        }
    }
    if c.eventaddr.is_none() {
        c.eventaddr = c.logaddr.clone();
    }
    if let Some(mb) = opt(p, "--eventroratesize", None, |s| parse_uint(s, "a size in MiB"))? {
        c.rotation.max_bytes = mb.checked_mul(1 << 20).ok_or_else(|| Error::usage("--eventroratesize is too large"))?;
    }
    if let Some(s) = opt(p, "--eventroratetime", None, |s| parse_uint(s, "a number of seconds"))? {
        c.rotation.every = (s > 0).then(|| std::time::Duration::from_secs(s));
    }
    if c.rotation.is_on() && c.ecaptureq.is_none() && !matches!(c.eventaddr, Some(Target::File(_))) {
        return Err(Error::usage("--eventroratesize/--eventroratetime rotate the --eventaddr file: give --eventaddr a file path"));
    }
    if let Some(f) = opt(p, "--eventformat", None, text)? {
        c.eventformat = match f.as_str() {
            "text" => EventFormat::Text,
            "json" => EventFormat::Json,
            _ => return Err(Error::usage(format!("invalid value '{f}' for --eventformat: expected text or json"))),
        };
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::openssl::Flags as TlsFlags;
    use std::path::PathBuf;

    fn run(args: &[&str]) -> Result<Command> {
        parse(args.iter().map(OsString::from).collect())
    }

    fn cfg(args: &[&str]) -> Config {
        match run(args) {
            Ok(Command::Run(c)) => *c,
            other => panic!("expected a config for {args:?}, got {other:?}"),
        }
    }

    fn glob(args: &[&str]) -> Global {
        cfg(args).global
    }

    fn tls(args: &[&str]) -> TlsFlags {
        match cfg(args).module {
            ModuleConfig::Tls(f) => f,
            m => panic!("not tls: {m:?}"),
        }
    }

    #[test]
    fn the_other_modules_and_their_flags() {
        match cfg(&["gnutls", "--gnutls", "/x/libgnutls.so.30", "--ssl_version", "3.7.9"]).module {
            ModuleConfig::Gnutls(f) => {
                assert_eq!(f.gnutls, Some(PathBuf::from("/x/libgnutls.so.30")));
                assert_eq!(f.version.map(|v| v.to_string()).as_deref(), Some("GnuTLS 3.7.9"));
            }
            m => panic!("{m:?}"),
        }
        assert_eq!(cfg(&["nspr", "--nspr", "/x/libnspr4.so"]).module.name(), "nss");
        match cfg(&["all", "--libssl", "/a", "--nspr", "/b"]).module {
            ModuleConfig::All(f) => assert_eq!((f.tls.libssl, f.nss.nspr), (Some(PathBuf::from("/a")), Some(PathBuf::from("/b")))),
            m => panic!("{m:?}"),
        }
        assert!(err(&["--gnutls", "/x", "gnutls"]).starts_with("--gnutls is a flag of the gnutls module"));
        assert!(err(&["--nspr", "/x", "nss"]).starts_with("--nspr is a flag of the nss module"));
        assert!(err(&["nss", "--libssl", "/x"]).contains("unknown flag '--libssl'"));
        assert!(err(&["gnutls", "--ssl_version", "openssl 3.0.2"]).contains("expected a GnuTLS version"));
        assert!(err(&["gnutls", "--gnutls="]).contains("--gnutls"));
    }

    fn err(args: &[&str]) -> String {
        match run(args) {
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "usage errors exit 2: {e}");
                e.to_string()
            }
            Ok(c) => panic!("expected an error for {args:?}, got {c:?}"),
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(cfg(&["tls"]), Config { global: Global::default(), module: ModuleConfig::Tls(TlsFlags::default()), pcap: None });
        assert_eq!(cfg(&["openssl"]).module.name(), "tls");
    }

    #[test]
    fn flags_in_every_spelling_and_position() {
        let c = glob(&["-p", "42", "tls", "--uid=1000", "--hex", "-t", "64", "-d", "--mapsize", "1000"]);
        assert_eq!((c.pid, c.uid, c.tsize, c.hex, c.debug), (42, 1000, 64, true, true));
        assert_eq!(c.mapsize_pages, 1024, "rounded up to a power of two");
        assert_eq!(glob(&["tls", "--pid=7"]).pid, 7);
        assert_eq!(tls(&["tls", "--libssl", "/x/libssl.so.3"]).libssl, Some(PathBuf::from("/x/libssl.so.3")));
        assert_eq!(tls(&["tls", "--ssl_version=openssl 3.0.2"]).ssl_version.map(|v| v.to_string()).as_deref(), Some("OpenSSL 3.0.2"));
        assert_eq!(cfg(&["tls", "-m", "text", "-b", "1"]).module.name(), "tls");
        // Module flags go after the module; a global flag may follow it.
        assert!(err(&["--libssl", "/x", "tls"]).starts_with("--libssl is a flag of the tls module: give it after the module's name"));
        assert_eq!(glob(&["tls", "--libssl", "/x", "--pid", "3"]).pid, 3);
        assert_eq!(glob(&["--btf-file", "/b/5.10.btf", "tls"]).btf_file, Some(PathBuf::from("/b/5.10.btf")));
        assert!(err(&["tls", "--btf-file="]).contains("--btf-file"), "{}", err(&["tls", "--btf-file="]));
    }

    #[test]
    fn sizes() {
        assert_eq!(glob(&["tls", "--maxpayload", "1M"]).capture_cap, 1 << 20);
        assert_eq!(glob(&["tls", "--maxpayload", "512K"]).capture_cap, 512 << 10);
        assert_eq!(glob(&["tls", "--maxpayload", "8MiB"]).capture_cap, 8 << 20);
        assert_eq!(glob(&["tls", "--maxpayload", "65536"]).capture_cap, 65536);
        assert!(err(&["tls", "--maxpayload", "1"]).contains("4K to 64M"));
        assert!(err(&["tls", "--maxpayload", "lots"]).contains("expected a size"));
        assert_eq!(glob(&["tls", "--max-memory", "16M"]).max_memory, 16 << 20);
        assert!(err(&["tls", "--max-memory", "1M"]).contains("4M to 64G"));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(run(&["--help"]).unwrap(), Command::Help);
        assert_eq!(run(&["tls", "-h"]).unwrap(), Command::Help);
        assert_eq!(run(&["-v"]).unwrap(), Command::Version);
    }

    #[test]
    fn bad_input_is_one_clear_usage_error() {
        assert_eq!(err(&["tls", "--pid", "abc"]), "invalid value 'abc' for --pid: expected a process id");
        assert_eq!(err(&["tls", "--pid"]), "--pid needs a value");
        assert_eq!(err(&["tls", "--frobnicate"]), "unknown flag '--frobnicate' (see ecapture --help)");
        assert!(err(&[]).starts_with("no module given"));
        assert!(err(&["quic"]).starts_with("unknown module 'quic'"));
        assert!(err(&["tls", "extra"]).starts_with("unexpected argument 'extra'"));
        assert!(err(&["bash"]).contains("not yet supported"));
        assert_eq!(err(&["gotls", "--elfpath", ""]), "invalid value '' for --elfpath: expected a path");
        assert!(err(&["--elfpath", "/x", "gotls"]).starts_with("--elfpath is a flag of the gotls module"));
        assert!(err(&["tls", "--mapsize", "0"]).contains("1 to 65536"));
        assert!(err(&["tls", "-b", "2"]).contains("BTF"));
        assert!(err(&["tls", "-b", "9"]).contains("expected 0, 1 or 2"));
        assert!(err(&["tls", "-m", "xml"]).contains("expected text"));
        assert!(err(&["tls", "--libssl="]).contains("--libssl"));
        assert!(err(&["tls", "-k="]).contains("--keylogfile"));
    }

    #[test]
    fn keylog_model_and_file() {
        use crate::modules::KeyOutput;
        let keys = |args: &[&str]| cfg(args).module.keys();
        assert_eq!(keys(&["tls"]), KeyOutput::default());
        assert_eq!(keys(&["tls", "-m", "keylog"]), KeyOutput { file: Some("ecapture_openssl_key.log".into()), keys_only: true, pcap: false });
        assert_eq!(keys(&["tls", "-m", "key", "-k", "/tmp/k"]), KeyOutput { file: Some("/tmp/k".into()), keys_only: true, pcap: false });
        assert_eq!(keys(&["tls", "--keylogfile=/tmp/k"]), KeyOutput { file: Some("/tmp/k".into()), keys_only: false, pcap: false });
        assert_eq!(keys(&["all", "-m", "keylog"]).file, Some("ecapture_openssl_key.log".into()));
    }

    #[test]
    fn ecaptureq_takes_priority_over_text_addresses() {
        let c = glob(&["tls", "--ecaptureq=ws://[::1]:28257/", "--eventaddr", "/tmp/ev", "-l", "/tmp/log"]);
        assert_eq!(c.ecaptureq.unwrap().host, "::1");
        assert_eq!(c.overridden_addrs, vec!["--logaddr /tmp/log".to_string(), "--eventaddr /tmp/ev".to_string()]);
        assert!(err(&["tls", "--ecaptureq", "http://x/"]).contains("expected ws://"));
    }

    #[test]
    fn sinks_and_formats() {
        let c = glob(&["tls", "-l", "/tmp/log"]);
        assert_eq!(c.logaddr, Some(Target::File("/tmp/log".into())));
        assert_eq!(c.eventaddr, c.logaddr, "--eventaddr defaults to --logaddr");
        let c = glob(&["tls", "-l", "tcp://h:1", "--eventaddr", "/tmp/ev", "--eventroratesize", "2", "--eventroratetime", "60"]);
        assert_eq!(c.eventaddr, Some(Target::File("/tmp/ev".into())));
        assert_eq!(c.rotation, Rotation { max_bytes: 2 << 20, every: Some(std::time::Duration::from_secs(60)) });
        assert_eq!(glob(&["tls", "--eventformat", "json"]).eventformat, EventFormat::Json);
        assert_eq!(glob(&["tls", "--idletime", "250"]).idle_ms, 250);
        assert!(err(&["tls", "--idletime", "0"]).contains("1 to 60000"));
        assert!(glob(&["tls", "--ecaptureq-payload", "text"]).ecq_payload_text);
        assert!(err(&["tls", "--ecaptureq-payload", "pretty"]).contains("expected raw or text"));
        assert!(err(&["tls", "--eventformat", "xml"]).contains("expected text or json"));
        assert!(err(&["tls", "--eventaddr", "tcp://nohost"]).contains("expected tcp://HOST:PORT"));
        assert!(err(&["tls", "--eventroratesize", "1"]).contains("give --eventaddr a file path"));
        assert!(err(&["tls", "--eventaddr", "tcp://h:1", "--eventroratetime", "5"]).contains("file path"));
        assert!(err(&["tls", "-l", "gopher://x"]).contains("unknown scheme gopher://"));
    }

    #[test]
    fn later_features_say_not_yet_supported() {
        assert!(err(&["tls", "--cgroup_path", "/sys/fs/cgroup"]).contains("not yet supported"));
    }

    #[test]
    fn pcapng_mode_with_interface_file_and_filter() {
        let c = cfg(&["tls", "-m", "pcapng", "-i", "lo", "-w", "out.pcapng", "tcp", "port", "443"]);
        let p = c.pcap.unwrap();
        assert_eq!((p.ifname.as_str(), p.path.to_str(), p.filter.as_str()), ("lo", Some("out.pcapng"), "tcp port 443"));
        assert!(c.module.keys().wants_secrets(), "secrets are read for the file");
        let c = cfg(&["all", "--model=pcap", "--ifname=eth0", "host 10.0.0.1 and (port 443 or port 8443)"]);
        assert_eq!(c.pcap.as_ref().unwrap().path.to_str(), Some("save.pcapng"));
        assert_eq!(c.pcap.unwrap().filter, "host 10.0.0.1 and (port 443 or port 8443)");
        let c = cfg(&["gnutls", "-m", "pcapng", "-i", "lo", "-w", "-"]);
        assert_eq!(c.pcap.unwrap().path.to_str(), Some("-"));
        assert!(err(&["tls", "-m", "pcapng", "-i", "lo", "tcp", "prot", "443"]).contains("filter 'tcp prot 443'"));
        assert!(err(&["tls", "-m", "pcapng", "-w", "x"]).contains("-i IFACE"));
        assert!(err(&["tls", "-w", "x.pcapng"]).contains("-m pcapng"));
        assert!(err(&["tls", "-i", "eth0"]).contains("-m pcapng"));
        assert!(err(&["tls", "port", "443"]).contains("unexpected argument 'port'"));
        assert!(err(&["tls", "-m", "pcapng", "-i", "lo", "--bogus"]).contains("unknown flag '--bogus'"));
        assert!(err(&["nss", "-m", "keylog"]).contains("not supported by the nss module"));
    }
}
