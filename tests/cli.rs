//! The command line as a user meets it: help, version, and bad input that
//! ends with one clear line and exit status 2 — no root needed.

mod util;

use util::run_to_exit as run;

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
        (&["tls", "-m", "pcap"], "ecapture: -m pcapng needs the interface to capture: -i IFACE (e.g. -i lo, -i eth0)"),
        (&["tls", "-m", "pcapng", "-i", "lo", "tcp", "port", "x"], "ecapture: filter 'tcp port x': 'x' is not a port number (0 to 65535; service names are not resolved)"),
        (
            &["gnutls", "-m", "keylog"],
            "ecapture: --model keylog and --keylogfile are not supported by the gnutls module: GnuTLS hands its secrets only to internal, \
             unexported functions and keeps them in private structs whose layout is not known here (see README)",
        ),
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
