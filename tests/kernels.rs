//! The capture on the kernels edge boxes and servers run (SPEC §3): Debian's
//! own 5.10, 6.1 and 6.12 cloud kernels, booted under QEMU (software
//! emulation) by tests/kernels/kernel-matrix.sh with the static binary and a
//! statically linked OpenSSL program (tests/kernels/tls_selftest.c) in an
//! initramfs; and `--btf-file` on 5.10 with /sys/kernel/btf hidden. The
//! host's own kernel is what the other suites run on.
//!
//! Each run checks: the 100,000-byte write arrives whole and byte-exact as
//! one event, and the server's reads of it too; the tuple and the pid are
//! the program's; nothing is lost; ecapture stops cleanly on SIGINT.
//! Kernel packages are downloaded (checked against Debian's signed
//! indexes) and cached in target/kernels.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use util::*;

const SIZE: usize = 100_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The static binary the VMs run: $ECAPTURE_STATIC_BIN, else `make static`'s.
fn static_bin() -> PathBuf {
    std::env::var_os("ECAPTURE_STATIC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/x86_64-unknown-linux-musl/release/ecapture"))
}

/// What every VM gets: tls_selftest built, a certificate made (once per run).
struct Fixture {
    dir: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = root().join("target/kernels/fixture");
        std::fs::create_dir_all(&dir).expect("create target/kernels/fixture");
        let out = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(dir.join("tls_selftest"))
            .arg(root().join("tests/kernels/tls_selftest.c"))
            .args(["-lssl", "-lcrypto", "-lpthread"])
            .output()
            .expect("run gcc (scripts/deps.sh test installs it)");
        assert!(out.status.success(), "building tls_selftest failed: {}", String::from_utf8_lossy(&out.stderr));
        let (cert, key) = make_cert(&dir);
        std::fs::rename(cert, dir.join("cert.pem")).expect("cert");
        std::fs::rename(key, dir.join("key.pem")).expect("key");
        Fixture { dir }
    })
}

/// Whether this test can run; a loud skip (or, in CI, a failure) when not.
fn enabled(test: &str) -> bool {
    if !e2e_enabled(test) {
        return false;
    }
    if static_bin().exists() {
        return true;
    }
    let why = format!("no static binary at {} (make static)", static_bin().display());
    if std::env::var_os("ECAPTURE_E2E").is_some_and(|v| v == "1") {
        panic!("{test}: {why}");
    }
    eprintln!("*** SKIPPED {test}: {why} ***");
    false
}

/// One VM run of tests/kernels/guest-capture.sh; its $KM_OUT, and what the
/// tool printed (for failures).
fn run_vm(kernel: &str, tag: &str, extra_args: &str, hide_btf: bool) -> (PathBuf, String) {
    let f = fixture();
    let out = root().join(format!("target/kernels/out/{tag}"));
    let _ = std::fs::remove_dir_all(&out);
    let mut cmd = Command::new(root().join("tests/kernels/kernel-matrix.sh"));
    cmd.arg("--cache")
        .arg(root().join("target/kernels/cache"))
        .args(["--kernel", kernel, "--timeout", "900"])
        .arg("--file")
        .arg(format!("{}:/km/ecapture", static_bin().display()))
        .arg("--file")
        .arg(f.dir.join("tls_selftest"))
        .arg("--file")
        .arg(f.dir.join("cert.pem"))
        .arg("--file")
        .arg(f.dir.join("key.pem"))
        .args(other_libs().iter().chain(&go_peer()).flat_map(|l| ["--file".to_string(), l.clone()]))
        .args(["--env", &format!("SIZE={SIZE}"), "--env", &format!("EXTRA={extra_args}")])
        .arg("--run")
        .arg(root().join("tests/kernels/guest-capture.sh"))
        .arg("--out")
        .arg(&out);
    if hide_btf {
        cmd.args(["--btf-copy", "/km/vmlinux.btf", "--hide-btf"]);
    }
    let res = cmd.output().expect("run tests/kernels/kernel-matrix.sh");
    let said = format!("{}{}", String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr));
    assert!(res.status.success(), "{tag}: the VM run failed ({}):\n{said}", res.status);
    (out, said)
}

/// GnuTLS's and NSS's libraries, given to the guest as files when this
/// machine has them: the gnutls and nss objects are loaded and attached
/// there too.
fn other_libs() -> Vec<String> {
    ["libgnutls.so.30", "libnspr4.so", "libssl3.so"]
        .iter()
        .map(|n| Path::new("/usr/lib/x86_64-linux-gnu").join(n))
        .filter_map(|p| std::fs::canonicalize(&p).ok().map(|real| (real, p)))
        .map(|(real, p)| format!("{}:/km/{}", real.display(), p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()))
        .collect()
}

/// A Go program of the Go fixture (`make gotls`), given to the guest as
/// /km/gopeer when it is built: the gotls object is loaded and attached to
/// it there too.
fn go_peer() -> Option<String> {
    let dir = root().join("target/gotls");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir).ok()?.filter_map(|e| e.ok()).map(|e| e.path().join("peer-stripped")).filter(|p| p.is_file()).collect();
    found.sort();
    found.pop().map(|p| format!("{}:/km/gopeer", p.display()))
}

/// "tls_selftest: OK pid=P server_port=S client_port=C bytes=N (...)"
fn selftest(out: &Path) -> (u32, u16, u16) {
    let line = std::fs::read_to_string(out.join("selftest.out")).unwrap_or_default();
    let field = |k: &str| -> u64 {
        line.split(&format!("{k}="))
            .nth(1)
            .and_then(|r| r.split([' ', '\n']).next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line:?}"))
    };
    assert!(line.starts_with("tls_selftest: OK"), "the TLS program failed: {line:?}");
    (field("pid") as u32, field("server_port") as u16, field("client_port") as u16)
}

/// Checks one VM's capture: whole payload, tuple, pid, nothing lost, clean stop.
fn check(kernel: &str, tag: &str, extra_args: &str, hide_btf: bool) {
    let (out, said) = run_vm(kernel, tag, extra_args, hide_btf);
    let stderr = std::fs::read_to_string(out.join("ecapture.stderr")).unwrap_or_default();
    let status = std::fs::read_to_string(out.join("ecapture.status")).unwrap_or_default();
    let release = std::fs::read_to_string(out.join("uname")).unwrap_or_default();
    assert!(release.starts_with(kernel), "{tag}: booted {release:?}, not {kernel}");
    assert_eq!(status.trim(), "0", "{tag}: ecapture's exit status after SIGINT\n{said}");
    assert!(stderr.contains("signal 2 received; stopping"), "{tag}: no clean stop\n{said}");
    let summary = stderr.lines().find(|l| l.contains(" bytes captured; lost ")).unwrap_or_else(|| panic!("{tag}: no summary\n{said}"));
    assert!(summary.contains("; lost 0 ") && summary.contains(" 0 incomplete"), "{tag}: {summary}");
    let (pid, server, client) = selftest(&out);
    let events = events_in(&std::fs::read(out.join("ecapture.stdout")).unwrap_or_default());
    let want = pattern(SIZE);
    let (c, s) = (format!("127.0.0.1:{client}"), format!("127.0.0.1:{server}"));
    let write = events
        .iter()
        .find(|e| e.dir == "WRITE" && e.src == c)
        .unwrap_or_else(|| panic!("{tag}: no WRITE from {c} in {events:?}"));
    assert_eq!((write.pid, write.comm.as_str(), write.dst.as_str()), (pid, "tls_selftest", s.as_str()), "{tag}");
    assert_eq!(write.version, "TLS1.3", "{tag}: the version, read through the library's offsets");
    assert!(write.payload == want, "{tag}: the 100,000-byte write is not whole and exact ({} bytes)", write.payload.len());
    let read: Vec<u8> = events.iter().filter(|e| e.dir == "READ" && e.src == c).flat_map(|e| e.payload.clone()).collect();
    assert!(read == want, "{tag}: the server's reads are not the write ({} bytes)", read.len());
    assert!(events.iter().all(|e| e.pid == pid), "{tag}: events of another process");
    let ack = format!("ACK {SIZE}");
    assert!(events.iter().any(|e| e.dir == "WRITE" && e.src == s && e.payload == ack.as_bytes()), "{tag}: the answer");
    let mut others = Vec::new();
    if other_libs().len() == 3 {
        others.extend([("gnutls", "libgnutls.so.30"), ("nss", "libssl3.so")]);
    }
    if go_peer().is_some() {
        others.push(("gotls", "/km/gopeer"));
    } else if std::env::var_os("ECAPTURE_E2E").is_some_and(|v| v == "1") {
        panic!("{tag}: target/gotls has no Go program: run `make gotls`");
    }
    {
        for (module, lib) in others {
            let err = std::fs::read_to_string(out.join(format!("{module}.stderr"))).unwrap_or_default();
            let status = std::fs::read_to_string(out.join(format!("{module}.status"))).unwrap_or_default();
            assert!(err.contains("probes attached") && err.contains(lib), "{tag}: the {module} module on this kernel:\n{err}\n{said}");
            assert_eq!(status.trim(), "0", "{tag}: {module}'s exit status after SIGINT\n{err}");
            if module == "gotls" {
                // Run with -k: the key log probe is attached too.
                assert!(err.contains("TLS keys read at crypto/tls.(*Config).writeKeyLog"), "{tag}: gotls's key log probe:\n{err}");
            }
        }
    }
}

#[test]
fn linux_5_10_captures_whole_calls_with_tuple_and_pid() {
    if enabled("kernel_5_10") {
        check("5.10", "5.10", "", false);
    }
}

#[test]
fn linux_6_1_captures_whole_calls_with_tuple_and_pid() {
    if enabled("kernel_6_1") {
        check("6.1", "6.1", "", false);
    }
}

#[test]
fn linux_6_12_captures_whole_calls_with_tuple_and_pid() {
    if enabled("kernel_6_12") {
        check("6.12", "6.12", "", false);
    }
}

/// /sys/kernel/btf hidden (an empty mount over it): ecapture takes the
/// kernel's types from --btf-file, a copy made at boot.
#[test]
fn linux_5_10_without_btf_uses_btf_file() {
    if enabled("kernel_5_10_btf_file") {
        check("5.10", "5.10-btf-file", "--btf-file /km/vmlinux.btf", true);
        let out = root().join("target/kernels/out/5.10-btf-file");
        let status = std::fs::read_to_string(out.join("nobtf.status")).unwrap_or_default();
        let stderr = std::fs::read_to_string(out.join("nobtf.stderr")).unwrap_or_default();
        assert_eq!(status.trim(), "1", "without BTF and without --btf-file: {stderr}");
        assert!(
            stderr.starts_with("ecapture: this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): give its types with --btf-file PATH"),
            "{stderr}"
        );
    }
}
