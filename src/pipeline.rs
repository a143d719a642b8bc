//! The coordinator of one run: checks the system, starts the outputs, asks
//! the module where to attach, loads and attaches its BPF objects, and wires
//! ring → reader → channel → dispatcher (decoders, assembly) → outputs.
//! Then it waits for SIGINT/SIGTERM and shuts down in order: detach (no new
//! records), drain the ring, drain the channel, log the summary, close the
//! outputs.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::bounded;

use crate::assemble::conn::Config as AsmConfig;
use crate::capture::abi::CommonConfig;
use crate::capture::features::{Build, Features};
use crate::capture::loader::Probes;
use crate::capture::reader::{raise_capture_priority, InFlight, Reader};
use crate::capture::{self, Ring};
use crate::cli::{Config, Global};
use crate::decode::Limits;
use crate::dispatch::Dispatcher;
use crate::error::{Context, Error, Result};
use crate::outputs::Outputs;
use crate::stats::{Snapshot, Stats};
use crate::sys::os::{self, StopReason, StopSignal};
use crate::time::WallClock;

/// Batches of records between the reader and the dispatcher (the bytes in
/// them are bounded by `InFlight`).
const CHANNEL_CAPACITY: usize = 64;
/// How often losses (if any) are reported while running.
const REPORT_EVERY_MS: i32 = 5000;

/// Connections tracked at most (65,536); ECAPTURE_MAX_CONNS lowers it, for tests.
fn max_conns() -> usize {
    std::env::var("ECAPTURE_MAX_CONNS").ok().and_then(|v| v.parse().ok()).filter(|&n: &usize| n > 0).unwrap_or(65536)
}

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
fn check_system(cfg: &Global) -> Result<()> {
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
    match &cfg.btf_file {
        Some(f) if !f.is_file() => return Err(Error::usage(format!("--btf-file {}: no such file", f.display()))),
        Some(_) => {}
        None if !Path::new("/sys/kernel/btf/vmlinux").exists() => {
            return Err(Error::runtime(
                "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): give its types with --btf-file PATH \
                 (e.g. the kernel's file from BTFHub), or use a kernel built with CONFIG_DEBUG_INFO_BTF=y",
            ));
        }
        None => {}
    }
    if !Path::new("/sys/bus/event_source/devices/uprobe").exists() {
        return Err(Error::runtime("this kernel has no uprobe support (CONFIG_UPROBE_EVENTS is off)"));
    }
    if cfg.pid != 0 && !Path::new(&format!("/proc/{}", cfg.pid)).exists() {
        return Err(Error::usage(format!("--pid {}: no such process", cfg.pid)));
    }
    Ok(())
}

/// Runs until SIGINT/SIGTERM (or the output closes); returns the final counters.
pub fn run(cfg: &Config) -> Result<Snapshot> {
    let started = Instant::now();
    let g = &cfg.global;
    capture::route_libbpf_logs();
    check_system(g)?;
    let features = Features::probe();
    log::debug!("{}", features.describe());
    features.check()?;
    if cfg.pcap.is_some() && !cfg.module.reads_secrets() {
        log::warn!(
            "module {} reads no TLS secrets yet: the pcapng file gets packets without keys (tshark shows them encrypted)",
            cfg.module.name()
        );
    }
    let mut outputs = Outputs::start(g, &cfg.module.keys(), cfg.pcap.as_ref())?;

    let modules = cfg.module.build((g.pid != 0).then_some(g.pid));
    let mut plans = Vec::new();
    for m in &modules {
        match m.plan(&features) {
            Ok(specs) => {
                if let (Some(why), Some(file)) = (m.no_keys(), &cfg.module.keys().file) {
                    log::warn!("module {}: no TLS keys to {} from it: {why}", m.name(), file.display());
                }
                plans.extend(specs.into_iter().map(|spec| (m, spec)))
            }
            // `all`: a module whose library this host lacks is left out.
            Err(e) if cfg.module.modules_optional() && e.exit_code() == 1 => {
                log::info!("module {} skipped: {e}", m.name());
            }
            Err(e) => return Err(e),
        }
    }
    if plans.is_empty() {
        return Err(Error::runtime(format!(
            "module {}: no TLS library found to hook (looked for libssl, libgnutls and libnspr4 in running processes and the library directories, and for running Go programs)",
            cfg.module.name()
        )));
    }

    // Before any thread starts, so signals reach the stop pipe.
    let stop = StopSignal::install().context(|| "cannot install signal handlers".into())?;
    let ring = Ring::create(g.mapsize_pages)?;
    let mut capture_cap = g.capture_cap;
    if features.build() == Build::Compat && capture_cap > Features::COMPAT_MAX_CAPTURE {
        capture_cap = Features::COMPAT_MAX_CAPTURE;
        log::warn!(
            "Linux {} has no bpf_loop: calls are captured up to {} MiB, not {} MiB (--maxpayload); larger ones are marked truncated",
            features.kernel,
            capture_cap >> 20,
            g.capture_cap >> 20
        );
    }
    let common = CommonConfig { target_pid: g.pid, target_uid: g.uid, capture_cap, wakeup_bytes: ring.wakeup_bytes() };
    let clock = WallClock::new();
    let mut probes = Probes::new(common, &ring, g.btf_file.clone())?;
    if !features.multi_uprobes_possible() {
        probes.use_classic_uprobes();
    }
    // The memory budget (--max-memory): a quarter for partial calls (but
    // always one call whole), 7/16 for what connections hold, a sixteenth for
    // records on their way to the dispatcher, a quarter for the output
    // queues (Outputs::start).
    let budget = g.max_memory;
    let limits = Limits { capture_cap, budget: budget / 4 };
    let mut decoders = Vec::new();
    for (m, spec) in &plans {
        probes.load(spec, decoders.len() as u32)?;
        decoders.push(m.decoder(clock, limits));
    }

    let stats = Arc::new(Stats::default());
    let (tx, rx) = bounded(CHANNEL_CAPACITY);
    // The reader holds the only sender: the channel disconnects when it is gone.
    // Records in flight to the dispatcher (the ring holds the rest meanwhile).
    let flight = Arc::new(InFlight::new((budget / 16).max(1 << 20)));
    let reader = Reader::spawn(ring.consumer()?, tx, &stats, &flight)?;
    let conn_share = (budget / 8).max(256 << 10);
    let assembly = AsmConfig {
        idle_ns: g.idle_ms * 1_000_000,
        // Messages longer than this go out in parts: never more than half a
        // connection's share.
        max_message: (capture_cap as usize).max(4 << 20).min(conn_share / 2),
        decode_bodies: outputs.show_decoded_bodies(),
        budget: budget / 16 * 7,
        conn_share,
        max_conns: max_conns(),
        ..AsmConfig::default()
    };
    let dispatcher = Dispatcher {
        rx,
        decoders,
        outputs: outputs.for_messages(stop.notifier()),
        track_keys: outputs.wants_keys(),
        stats: Arc::clone(&stats),
        assembly,
        flight,
    };
    let dispatch_thread = std::thread::Builder::new()
        .name("dispatcher".into())
        .spawn(move || {
            raise_capture_priority();
            dispatcher.run()
        })
        .context(|| "cannot start the dispatcher thread".into())?;

    let filter = match (g.pid, g.uid) {
        (0, 0) => String::new(),
        (p, 0) => format!(", pid {p} only"),
        (0, u) => format!(", uid {u} only"),
        (p, u) => format!(", pid {p} and uid {u} only"),
    };
    let libs = probes.target_count();
    log::info!(
        "probes attached: {} attachments on {libs} librar{} in {} ms{filter}; press Ctrl-C to stop",
        probes.attachment_count(),
        if libs == 1 { "y" } else { "ies" },
        started.elapsed().as_millis()
    );

    let snapshot = |p: &Probes| Snapshot { outputs: outputs.counts(), ..stats.snapshot(p.failures().unwrap_or_default()) };
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

    // Shutdown: no new records, then drain the ring, the channel and what
    // assembly holds.
    let before = probes.failures().unwrap_or_default();
    let t = Instant::now();
    probes.detach();
    log::debug!("detached in {:?}", t.elapsed());
    reader.stop();
    log::debug!("reader drained in {:?}", t.elapsed());
    if dispatch_thread.join().is_err() {
        log::error!("the dispatcher thread panicked");
    }
    log::debug!("dispatcher drained in {:?}", t.elapsed());
    outputs.stop_packets();
    let last = Snapshot { outputs: outputs.counts(), ..stats.snapshot(probes.failures().unwrap_or(before)) };
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
