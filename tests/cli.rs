//! The command line as a user meets it: help, version, and bad input that
//! ends with one clear line and exit status 2 — no root needed.

mod util;

use std::process::{Command, Stdio};

/// Runs ecapture, which must exit on its own within a few seconds (a
/// usage error that slipped through would start capturing, as root).
fn run(args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(util::bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ecapture");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ecapture {args:?} did not exit: it should have refused these arguments");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("collect output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_and_version() {
    let (code, out, err) = run(&["--help"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.contains("USAGE:") && out.contains("EXAMPLES:") && out.contains("--libssl"));
    let (code, out, _) = run(&["-v"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ecapture "), "{out}");
}

#[test]
fn usage_errors_are_one_line_exit_2() {
    for (args, want) in [
        (&["tls", "--nope"][..], "ecapture: unknown flag '--nope' (see ecapture --help)"),
        (&["tls", "--pid", "x"], "ecapture: invalid value 'x' for --pid: expected a process id"),
        (&["tls", "-u"], "ecapture: --uid needs a value"),
        (&[], "ecapture: no module given: try 'ecapture tls' (see ecapture --help)"),
        (&["ssh"], "ecapture: unknown module 'ssh': expected tls, gnutls, nss, gotls or all (see ecapture --help)"),
        (&["tls", "--eventaddr", "tcp://nohost"], "ecapture: invalid value 'tcp://nohost' for --eventaddr: expected tcp://HOST:PORT"),
        (&["tls", "-k", "keys.log"], "ecapture: --keylogfile is not yet supported by this version of ecapture"),
        (
            &["tls", "--ecaptureq", "ws://127.0.0.1:99999/"],
            "ecapture: invalid value 'ws://127.0.0.1:99999/' for --ecaptureq: the port must be 0 to 65535",
        ),
        (&["tls", "--mapsize", "0"], "ecapture: invalid value '0' for --mapsize: expected 1 to 65536 pages"),
        (
            &["tls", "--ssl_version", "wolfssl 5"],
            "ecapture: invalid value 'wolfssl 5' for --ssl_version: expected e.g. \"openssl 3.0.2\", \"openssl 1.1.1w\" or \"boringssl\"",
        ),
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(out, "", "{args:?}");
        assert_eq!(err, format!("{want}\n"), "{args:?}");
    }
}

/// `gotls --elfpath` to something that is not a Go program with crypto/tls:
/// one line, exit 2 (as root: the module looks at the file after the
/// system checks).
#[test]
fn gotls_elfpath_must_be_a_go_program_with_crypto_tls() {
    const TEST: &str = "gotls_elfpath_bad_input";
    if !util::e2e_enabled(TEST) {
        return;
    }
    let missing = "/nonexistent/goprog".to_string();
    let c_program = std::fs::canonicalize("/bin/true").expect("/bin/true").display().to_string();
    let mut cases = vec![
        (missing.clone(), format!("ecapture: --elfpath {missing}: no such file")),
        (c_program.clone(), format!("ecapture: --elfpath {c_program}: not a Go program (no Go build information)")),
    ];
    for v in util::go_versions() {
        let Some(nontls) = util::gotls_fixture(TEST, &v, "nontls") else { return };
        let p = nontls.display().to_string();
        cases.push((p.clone(), format!("ecapture: --elfpath {p}: a Go program (go{v}) that does not link crypto/tls")));
    }
    for (path, want) in cases {
        let (code, out, err) = run(&["gotls", "--elfpath", &path]);
        assert_eq!(code, 2, "{path}: {err}");
        assert_eq!(out, "", "{path}");
        assert_eq!(err, format!("{want}\n"), "{path}");
    }
}
