//! The fuzz corpora, replayed on stable Rust as ordinary tests: every file
//! of `fuzz/corpus/<target>/` (the seeds and what the fuzzers kept) and of
//! `fuzz/regressions/<target>/` (reproducers of bugs fuzzing found, added
//! once fixed) goes through its target in `ecapture::fuzzing`, which must
//! not panic. `cargo fuzz` is needed to find new inputs, not to check them.

use std::panic;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The entry point named `name`.
fn target(name: &str) -> fn(&[u8]) {
    match ecapture::fuzzing::TARGETS.iter().find(|(n, _)| *n == name) {
        Some(&(_, f)) => f,
        None => panic!("no fuzz target named {name} in ecapture::fuzzing::TARGETS"),
    }
}

/// The inputs in `dir` (none when it does not exist); dot files and
/// READMEs are not inputs.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            p.is_file() && !name.starts_with('.') && !name.starts_with("README")
        })
        .collect();
    files.sort();
    files
}

/// Runs every corpus and regression input of `name`; fails naming each
/// input that panicked.
fn replay(name: &str) {
    let run = target(name);
    let corpus = fuzz_dir().join("corpus").join(name);
    assert!(corpus.is_dir(), "fuzz target {name} has no corpus: {} is missing", corpus.display());
    let files: Vec<PathBuf> = inputs(&corpus).into_iter().chain(inputs(&fuzz_dir().join("regressions").join(name))).collect();
    assert!(!files.is_empty(), "the corpus of {name} ({}) is empty", corpus.display());
    let failed: Vec<String> = files
        .iter()
        .filter(|f| {
            let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            panic::catch_unwind(|| run(&data)).is_err()
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(failed.is_empty(), "fuzz target {name} panicked on:\n  {}", failed.join("\n  "));
}

macro_rules! replay_tests {
    ($($name:ident)*) => {
        $(#[test]
        fn $name() {
            replay(stringify!($name));
        })*

        /// Every target has a test above (and so a corpus), every corpus a target.
        #[test]
        fn every_target_is_replayed() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in ecapture::fuzzing::TARGETS {
                assert!(tested.contains(name), "fuzz target {name} is not replayed: add it to replay_tests! in tests/fuzz_corpus.rs");
            }
            for dir in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir)) else { continue };
                for e in entries.flatten().filter(|e| e.path().is_dir()) {
                    let n = e.file_name().to_string_lossy().into_owned();
                    assert!(tested.contains(&n.as_str()), "fuzz/{dir}/{n} belongs to no fuzz target");
                }
            }
        }
    };
}

replay_tests!(record reassembly assembler hpack http1 http2 render elf keys gobin filter packets);
