//! End-to-end tests of the rules for the files ecapture writes as root
//! (README "File safety"): a symbolic link given as the file (to a file, a
//! directory, nothing), files other users can read or own, links another
//! user planted on the way in a world-writable directory, and rotation in a
//! directory another user can write to while that user plants links at the
//! names rotation uses. Each refusal is one line and exit status 2, and
//! whatever the link pointed to is left exactly as it was.
//! Key log (-k) and pcapng (-w) files join this suite with their modes.

mod util;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{chown, lchown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use util::*;

/// The flags that take a file ecapture writes.
const FILE_FLAGS: [&str; 2] = ["--eventaddr", "--logaddr"];

/// ecapture with `args` must refuse to start: exit status 2, nothing on
/// stdout, one line saying why. Returns that line without "ecapture: ".
fn refused(args: &[&str]) -> String {
    let (code, out, err) = run_to_exit(args);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert_eq!(out, "", "{args:?}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("ecapture: ")).collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line saying why: {err}");
    assert_eq!(err.lines().last(), Some(lines[0]), "{err}");
    lines[0].trim_start_matches("ecapture: ").to_string()
}

/// Everything about a file that writing through a link would change.
fn fingerprint(p: &Path) -> (Vec<u8>, u32, u32, i64, i64) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (std::fs::read(p).unwrap(), m.mode(), m.uid(), m.mtime(), m.mtime_nsec())
}

fn mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// A root-owned 0644 file with a line in it: what an attacker would like
/// ecapture to write into (a cron file, a shell profile).
fn precious(dir: &Path) -> PathBuf {
    let p = dir.join("precious.conf");
    std::fs::write(&p, b"precious\n").unwrap();
    mode(&p, 0o644);
    p
}

#[test]
fn a_link_as_the_file_is_refused_and_its_target_untouched() {
    if !e2e_enabled("file_safety_links") {
        return;
    }
    let dir = TempDir::new("safe-links");
    let target = precious(dir.path());
    let tdir = dir.path().join("a-directory");
    std::fs::create_dir(&tdir).unwrap();
    let before = fingerprint(&target);
    for flag in FILE_FLAGS {
        for (what, to) in [("file", target.clone()), ("dir", tdir.clone()), ("dangling", dir.path().join("not-there.log"))] {
            let link = dir.path().join(format!("{}-{what}.log", flag.trim_start_matches('-')));
            symlink(&to, &link).unwrap();
            let why = refused(&["tls", flag, link.to_str().unwrap()]);
            assert_eq!(why, format!("{} is a symbolic link: ecapture does not write through links (give the real path)", link.display()));
            assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays");
        }
    }
    assert_eq!(fingerprint(&target), before, "the link's target is untouched");
    assert_eq!(std::fs::read_dir(&tdir).unwrap().count(), 0, "nothing created in the linked directory");
    assert!(!dir.path().join("not-there.log").exists(), "a dangling link's target is not created");
}

#[test]
fn files_others_can_read_or_that_others_own_are_refused() {
    if !e2e_enabled("file_safety_modes") {
        return;
    }
    let dir = TempDir::new("safe-modes");
    let shared = precious(dir.path()); // 0644
    let theirs = dir.path().join("theirs.log");
    std::fs::write(&theirs, b"mine\n").unwrap();
    mode(&theirs, 0o600);
    chown(&theirs, Some(61130), Some(61130)).unwrap();
    let private = dir.path().join("private.log");
    std::fs::write(&private, b"root's\n").unwrap();
    mode(&private, 0o600);
    let hard = dir.path().join("hard.log");
    std::fs::hard_link(&private, &hard).unwrap();
    let before: Vec<_> = [&shared, &theirs, &private].iter().map(|p| fingerprint(p)).collect();
    for flag in FILE_FLAGS {
        let why = refused(&["tls", flag, shared.to_str().unwrap()]);
        assert_eq!(
            why,
            format!("{} has mode 0644: other users could read the captured plaintext (chmod 600 it, or give a new file)", shared.display())
        );
        let why = refused(&["tls", flag, theirs.to_str().unwrap()]);
        assert_eq!(why, format!("{} belongs to uid 61130, not to ecapture's user (uid 0): not writing to another user's file", theirs.display()));
        let why = refused(&["tls", flag, hard.to_str().unwrap()]);
        assert_eq!(why, format!("{} has 2 hard links: not writing to a file that has other names", hard.display()));
    }
    let after: Vec<_> = [&shared, &theirs, &private].iter().map(|p| fingerprint(p)).collect();
    assert_eq!(after, before, "refused files are left as they were (mode included)");
}

#[test]
fn links_other_users_plant_in_a_sticky_world_writable_directory_are_not_followed() {
    if !e2e_enabled("file_safety_sticky") {
        return;
    }
    let dir = TempDir::new("safe-sticky");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    mode(&tmp, 0o1777);
    let real = dir.path().join("etc-cron.d");
    std::fs::create_dir(&real).unwrap();
    // The user makes the link themselves, as they would in /tmp.
    let link = tmp.join("evdir");
    let st = std::process::Command::new("setpriv")
        .args(["--reuid=61131", "--regid=61131", "--clear-groups", "ln", "-s"])
        .arg(&real)
        .arg(&link)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::symlink_metadata(&link).unwrap().uid(), 61131);
    for flag in FILE_FLAGS {
        let path = link.join("job");
        let why = refused(&["tls", flag, path.to_str().unwrap()]);
        assert_eq!(
            why,
            format!(
                "{}: {} is a symbolic link owned by uid 61131 in a directory other users can write to: not following it",
                path.display(),
                link.display()
            )
        );
    }
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0, "nothing created where the link points");
    // Root's own link there is followed: ecapture runs and writes through it.
    lchown(&link, Some(0), Some(0)).unwrap();
    let events = link.join("events.log");
    let ec = Ecapture::start(&["tls", "--uid", "61131", "--eventaddr", events.to_str().unwrap()]);
    let (status, _, _, _) = ec.stop();
    assert!(status.success());
    assert_eq!(std::fs::metadata(real.join("events.log")).unwrap().mode() & 0o777, 0o600);
}

/// Every `PUT /bulk/<i>` of uid-filtered traffic exactly once, in order,
/// across the regular files of `dir` (links are skipped, not read).
fn every_request_once(dir: &Path, pid: u32, count: usize) {
    let mut all = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files {
        if std::fs::symlink_metadata(&f).unwrap().file_type().is_file() {
            all.extend(events_in(&std::fs::read(&f).unwrap()).into_iter().filter(|e| e.pid == pid && e.payload.starts_with(b"PUT /bulk/")));
        }
    }
    let mut seen: Vec<usize> = all
        .iter()
        .map(|e| {
            let p = String::from_utf8_lossy(&e.payload[10..20]).into_owned();
            p.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    seen.sort();
    assert_eq!(seen, (0..count).collect::<Vec<_>>(), "every request exactly once across the files");
}

/// The owner of the directory (uid 61132) plants links where rotation
/// will look: a rotated name for every millisecond of the next 800 ms,
/// and the file's own name whenever it is free, until `stop` exists.
const PLANTER: &str = r#"
import os, sys, time
d, target, stop = sys.argv[1], sys.argv[2], sys.argv[3]
now = int(time.time() * 1000)
for ms in range(now, now + 800):
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(ms // 1000)) + ".%03d" % (ms % 1000)
    os.symlink(target, os.path.join(d, "ev-%s.log" % stamp))
print("READY", flush=True)
planted = 0
while not os.path.exists(stop):
    try:
        os.symlink(target, os.path.join(d, "ev.log"))
        planted += 1
    except FileExistsError:
        time.sleep(0.0005)
print("PLANTED %d" % planted, flush=True)
"#;

#[test]
fn rotation_never_follows_links_the_directory_owner_plants() {
    if !e2e_enabled("file_safety_rotation") {
        return;
    }
    let dir = TempDir::new("safe-rotate");
    let target = precious(dir.path());
    let before = fingerprint(&target);
    let (_server, port) = py_server(dir.path(), "127.0.0.1");
    let (count, size) = (12usize, 300_000usize);
    let env = [("TZ", "UTC")];

    // 1. The owner moves the file away and puts a link at its name: the
    // new file is refused at rotation; events go on into the file ecapture
    // has open, the refusal is logged and counted.
    let out = dir.path().join("svc1");
    std::fs::create_dir(&out).unwrap();
    chown(&out, Some(61132), Some(61132)).unwrap();
    let events = out.join("ev.log");
    let ec = Ecapture::start_env(&["tls", "--uid", "61133", "--eventaddr", events.to_str().unwrap(), "--eventroratesize", "1"], &env);
    let mv = format!("import os; os.rename('{0}/ev.log', '{0}/moved.log'); os.symlink('{1}', '{0}/ev.log')", out.display(), target.display());
    assert!(python_as(Some(61132)).args(["-c", &mv]).status().unwrap().success());
    let pid = py_client_as(Some(61133), port, &[count.to_string().as_ref(), size.to_string().as_ref()]);
    let (status, _, _, stderr) = ec.stop();
    assert!(status.success());
    let line = stderr.iter().find(|l| l.contains("cannot rotate ")).unwrap_or_else(|| panic!("{stderr:?}"));
    assert!(
        line.ends_with(&format!(
            "cannot rotate {0}: the new {0} is a symbolic link: ecapture does not write through links (give the real path); \
             events go on into the current file (trying again in 10 s)",
            events.display()
        )),
        "{line}"
    );
    assert!(stderr.iter().any(|l| l.contains(" rotations refused (records kept in the current file)")), "{stderr:?}");
    assert_eq!(fingerprint(&target), before);
    every_request_once(&out, pid, count);

    // 2. The owner races links into the names rotation uses while events
    // are rotated: rotated names planted in advance, the file's name
    // whenever it is free.
    let out = dir.path().join("svc2");
    std::fs::create_dir(&out).unwrap();
    chown(&out, Some(61132), Some(61132)).unwrap();
    let events = out.join("ev.log");
    let stop = dir.path().join("stop-planting");
    let ec = Ecapture::start_env(&["tls", "--uid", "61133", "--eventaddr", events.to_str().unwrap(), "--eventroratesize", "1"], &env);
    let mut planter = python_as(Some(61132))
        .args(["-c", PLANTER])
        .arg(&out)
        .arg(&target)
        .arg(&stop)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(planter.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "READY");
    let pid = py_client_as(Some(61133), port, &[count.to_string().as_ref(), size.to_string().as_ref()]);
    let (status, _, _, stderr) = ec.stop();
    std::fs::write(&stop, b"").unwrap();
    let planted = lines.next().unwrap().unwrap();
    assert!(planter.wait().unwrap().success());
    assert!(status.success());
    assert!(stderr.iter().any(|l| l.contains("rotated ") || l.contains("cannot rotate ")), "rotation was tried: {stderr:?}");
    assert_eq!(fingerprint(&target), before, "{planted}");
    every_request_once(&out, pid, count);
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        let m = std::fs::symlink_metadata(&p).unwrap();
        assert!(m.file_type().is_symlink() || (m.uid() == 0 && m.mode() & 0o777 == 0o600), "{p:?}: links stay links, files are root's 0600");
    }
}
