//! Builds the BPF objects through the Makefile (the one place that knows how
//! to call clang), pointing it at the libbpf headers that libbpf-sys exports,
//! so the BPF C and the userspace library always come from the same libbpf.

use std::{env, path::PathBuf, process::Command};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let include = env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports its headers as DEP_BPF_INCLUDE");
    for f in ["bpf/tls.bpf.c", "bpf/events.h", "bpf/vmlinux.h", "Makefile"] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-env-changed=CLANG");
    let make = env::var("MAKE").unwrap_or_else(|_| "make".into());
    let mut cmd = Command::new(make);
    cmd.current_dir(&root)
        .arg("--no-print-directory")
        .arg("bpf")
        .arg(format!("BPF_OUT={}", out.display()))
        .arg(format!("LIBBPF_INCLUDE={include}"));
    if let Ok(clang) = env::var("CLANG") {
        cmd.arg(format!("CLANG={clang}"));
    }
    let status = cmd.status().expect("cannot run make to build the BPF objects (is make installed?)");
    if !status.success() {
        panic!("building the BPF objects failed (make bpf): is clang installed? `make deps` installs it");
    }
}
