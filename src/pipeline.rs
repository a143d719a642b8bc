//! The coordinator of one `ecapture tls` run: checks the system, starts the
//! outputs, finds the libraries, attaches the probes and wires perf readers
//! → channel → dispatcher → outputs. Then it waits for SIGINT/SIGTERM and
//! shuts down in order: detach (no new events), drain the rings, drain the
//! channel, log the summary, close the outputs.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::bounded;

use crate::bpf::loader::{BpfConfig, TlsProbes};
use crate::bpf::reader::{Forward, Readers};
use crate::cli::Config;
use crate::assemble::conn::Config as AsmConfig;
use crate::dispatch::Dispatcher;
use crate::error::{Context, Error, Result};
use crate::outputs::Outputs;
use crate::stats::{Snapshot, Stats};
use crate::sys::os::{self, StopReason, StopSignal};
use crate::time::WallClock;
use crate::tls::discover::{discover, Library};
use crate::tls::version::SslVersion;

/// Records between the perf readers and the dispatcher.
const CHANNEL_CAPACITY: usize = 4096;
/// How often losses (if any) are reported while running.
const REPORT_EVERY_MS: i32 = 5000;

/// Capabilities needed: CAP_SYS_ADMIN (21), CAP_PERFMON (38), CAP_BPF (39).
const NEEDED_CAPS: [(u32, &str); 3] = [(21, "CAP_SYS_ADMIN"), (38, "CAP_PERFMON"), (39, "CAP_BPF")];

/// The capabilities of NEEDED_CAPS missing from the effective set given
/// as /proc/self/status shows it ("CapEff:\t000001ffffffffff").
fn missing_caps(status: &str) -> Vec<&'static str> {
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    NEEDED_CAPS.iter().filter(|(bit, _)| eff & (1u64 << bit) == 0).map(|(_, name)| *name).collect()
}

/// Refuses to start where capture cannot work, with the reason.
fn check_system(cfg: &Config) -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let missing = missing_caps(&status);
    if os::euid() != 0 && !missing.is_empty() {
        return Err(Error::runtime(
            "must run as root: loading BPF programs and attaching uprobes needs CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN",
        ));
    }
    if !missing.is_empty() {
        return Err(Error::runtime(format!(
            "running as root but without {} (a container without privileges?): loading BPF programs and attaching \
             uprobes needs CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN",
            missing.join(", ")
        )));
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(Error::runtime(
            "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): ecapture needs a kernel built with \
             CONFIG_DEBUG_INFO_BTF=y",
        ));
    }
    if !Path::new("/sys/bus/event_source/devices/uprobe").exists() {
        return Err(Error::runtime("this kernel has no uprobe support (CONFIG_UPROBE_EVENTS is off)"));
    }
    if cfg.pid != 0 && !Path::new(&format!("/proc/{}", cfg.pid)).exists() {
        return Err(Error::usage(format!("--pid {}: no such process", cfg.pid)));
    }
    Ok(())
}

fn describe(lib: &Library) -> String {
    match &lib.version {
        Some(v) if lib.version_source == "--ssl_version" => format!("{v}, from --ssl_version"),
        Some(v) => format!("{v}, found in {}", lib.version_source),
        None => "version unknown".to_string(),
    }
}

/// Runs until SIGINT/SIGTERM (or the output closes); returns the final counters.
pub fn run(cfg: &Config) -> Result<Snapshot> {
    let started = Instant::now();
    let override_version = match &cfg.ssl_version {
        Some(s) => Some(SslVersion::parse(s).ok_or_else(|| {
            Error::usage(format!(
                "invalid value '{s}' for --ssl_version: expected e.g. \"openssl 3.0.2\", \"openssl 1.1.1w\" or \"boringssl\""
            ))
        })?),
        None => None,
    };
    check_system(cfg)?;
    let outputs = Outputs::start(cfg)?;

    let libs = discover(cfg.libssl.as_deref(), override_version)?;
    let mut offsets = Vec::new();
    for lib in &libs {
        let off = lib.version.map(|v| {
            let (o, exact) = v.offsets();
            if !exact {
                log::warn!("{}: {v} is newer or older than the offsets table; using the nearest layout", lib.path.display());
            }
            o
        });
        if off.is_none() {
            log::warn!(
                "{}: no OpenSSL version marker found (use --ssl_version); TLS version will show as unknown",
                lib.path.display()
            );
        }
        log::info!("hooking {} ({})", lib.path.display(), describe(lib));
        offsets.push(off);
    }

    // Before any thread starts, so signals reach the stop pipe.
    let stop = StopSignal::install().context(|| "cannot install signal handlers".into())?;
    let bpf_cfg = BpfConfig { target_pid: cfg.pid, target_uid: cfg.uid, capture_cap: cfg.capture_cap, libs: offsets };
    let mut probes = TlsProbes::attach(&bpf_cfg, &libs)?;

    let stats = Arc::new(Stats::default());
    let (tx, rx) = bounded(CHANNEL_CAPACITY);
    let pb = probes.perf_buffer(cfg.mapsize_pages, Box::new(Forward { tx: tx.clone(), stats: Arc::clone(&stats) }))?;
    let rings = pb.into_cpu_buffers();
    let ring_count = rings.len();
    let readers = Readers::spawn(rings, &tx, &stats)?;
    // From here on only the readers (and the perf buffer's callback) send:
    // the channel disconnects when they are gone.
    drop(tx);
    let assembly = AsmConfig {
        idle_ns: cfg.idle_ms * 1_000_000,
        max_message: (cfg.capture_cap as usize).max(4 << 20),
        ..AsmConfig::default()
    };
    let dispatcher = Dispatcher {
        rx,
        readers: ring_count,
        clock: WallClock::new(),
        sink: outputs.event_sink(),
        stats: Arc::clone(&stats),
        stop: stop.notifier(),
        assembly,
    };
    let dispatch_thread = std::thread::Builder::new()
        .name("dispatcher".into())
        .spawn(move || {
            crate::bpf::reader::raise_capture_priority();
            dispatcher.run()
        })
        .context(|| "cannot start the dispatcher thread".into())?;

    let filter = match (cfg.pid, cfg.uid) {
        (0, 0) => String::new(),
        (p, 0) => format!(", pid {p} only"),
        (0, u) => format!(", uid {u} only"),
        (p, u) => format!(", pid {p} and uid {u} only"),
    };
    log::info!(
        "probes attached: {} attachments on {} librar{} in {} ms{filter}; press Ctrl-C to stop",
        probes.attachment_count(),
        libs.len(),
        if libs.len() == 1 { "y" } else { "ies" },
        started.elapsed().as_millis()
    );

    let snapshot = |p: &TlsProbes| outputs.counts(stats.snapshot(p.failures().unwrap_or_default()));
    let mut reported = snapshot(&probes);
    let reason = loop {
        match stop.wait_timeout(REPORT_EVERY_MS) {
            Ok(Some(r)) => break Ok(r),
            Ok(None) => {
                let now = snapshot(&probes);
                if let Some(line) = now.loss_report(&reported) {
                    log::warn!("{line}");
                }
                reported = now;
            }
            Err(e) => break Err(Error::runtime(format!("waiting for signals failed: {e}"))),
        }
    };
    match reason {
        Ok(StopReason::Signal(sig)) => log::info!("signal {sig} received; stopping"),
        Ok(StopReason::Internal) => {}
        Err(ref e) => log::error!("{e}"),
    }

    // Shutdown: no new events, then drain rings, channel and partial calls.
    let before = snapshot(&probes);
    let t = Instant::now();
    probes.detach();
    log::debug!("detached in {:?}", t.elapsed());
    readers.stop();
    log::debug!("readers drained in {:?}", t.elapsed());
    if dispatch_thread.join().is_err() {
        log::error!("the dispatcher thread panicked");
    }
    log::debug!("dispatcher drained in {:?}", t.elapsed());
    let last: Snapshot = outputs.counts(stats.snapshot(probes.failures().unwrap_or(before.bpf)));
    drop(probes);
    log::info!("{}", last.summary());
    outputs.stop();
    reason.map(|_| last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_from_proc_status() {
        assert!(missing_caps("Name:\tx\nCapEff:\t000001ffffffffff\n").is_empty());
        assert_eq!(missing_caps("CapEff:\t0000000000200000\n"), vec!["CAP_PERFMON", "CAP_BPF"]);
        assert_eq!(missing_caps("CapEff:\t000000c000200000\n"), Vec::<&str>::new());
        assert_eq!(missing_caps("no caps line"), vec!["CAP_SYS_ADMIN", "CAP_PERFMON", "CAP_BPF"]);
    }
}
