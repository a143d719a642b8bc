#!/usr/bin/env bash
# kernel-matrix.sh — boot one of Debian's own kernels under QEMU and run a
# script inside it, from an initramfs holding busybox and the files given.
#
#   kernel-matrix.sh --cache DIR --kernel 5.10|6.1|6.12 --run HOST_SCRIPT
#                    [--file HOST_PATH[:GUEST_PATH]]... [--bin HOST_BINARY]...
#                    [--env NAME=VALUE]...
#                    [--out DIR] [--timeout SECS] [--hide-btf] [--btf-copy GUEST_PATH]
#                    [--mem SIZE] [--smp N] [--accel tcg|kvm] [--offline] [--console]
#   kernel-matrix.sh --cache DIR --kernel LINE --fetch-only   # download, verify, cache, print facts
#
# Kernel lines: the newest linux-image-*-cloud-amd64 of the line found in the
# suite and its security suite of deb.debian.org:
#   5.10  Debian 11 bullseye   linux-image-5.10.0-N-cloud-amd64
#   6.1   Debian 12 bookworm   linux-image-6.1.0-N-cloud-amd64
#   6.12  Debian 13 trixie     linux-image-6.12.N+deb13-cloud-amd64
# Each suite's InRelease is checked with gpgv against debian-archive-keyring,
# the Packages.xz against the InRelease's SHA256, the .deb against the
# Packages' SHA256. Everything lands in the cache dir and is reused (the
# Packages index is downloaded again only when the InRelease says it changed).
# With --offline (or when deb.debian.org cannot be reached) the kernel chosen
# last time for that line is used from the cache. busybox comes the same way
# from bookworm (busybox-static). The kernel needs no modules: the test runs
# from the initramfs, and its output leaves through serial ports.
#
# In the guest: /init (guest-init.sh beside this script) mounts proc, sysfs,
# devtmpfs, debugfs, tracefs, bpffs, cgroup2 and tmpfs /tmp, brings lo up,
# then runs HOST_SCRIPT (copied to /km/run) in /km with stdin from /dev/null.
# The guest has busybox only: HOST_SCRIPT must be a #!/bin/sh script (busybox
# ash) or a static executable.
# --file puts a host file (or directory) into the initramfs, at GUEST_PATH or
# by default at /km/<basename>; a relative GUEST_PATH is relative to /km.
# --bin copies a (dynamically linked) host program to /km/bin, which is on the
# script's PATH, with the shared libraries ldd lists for it at their host paths
# (e.g. --bin "$(command -v bpftool)").
# The kernel's config is at /boot/config-$(uname -r) in the guest.
# --env adds a variable to the script's environment. The script also gets
# KM_OUT=/km/out: whatever it leaves there is copied to --out DIR on the host
# (default: a temporary dir, removed). --btf-copy copies /sys/kernel/btf/vmlinux
# to GUEST_PATH at boot (also exported as KM_BTF_COPY); --hide-btf then mounts
# an empty tmpfs over /sys/kernel/btf before the script runs (KM_HIDE_BTF=1).
#
# The guest script's output (stdout and stderr together) is printed on stdout
# as it comes; this script's own notes, the timing and the kernel's facts go
# to stderr (--console also shows the kernel console there). With --out DIR,
# DIR also gets console.log, output.log, status.log and summary.txt.
# Exit status: the guest script's; 124 on timeout; 125 on a failure of this
# tool or of the VM (no exit status came back from the guest).
#
# Defaults: --timeout 600 (whole VM run, boot included), --mem 1G, --smp 2,
# --accel tcg (-cpu max). The initramfs is unpacked into RAM: files given with
# --file need --mem to match. Environment: KM_MIRROR, KM_SECURITY_MIRROR (the
# archive bases, default http://deb.debian.org/debian and .../debian-security),
# KM_KEYRING (default /usr/share/keyrings/debian-archive-keyring.gpg).
set -euo pipefail

ME=kernel-matrix
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MIRROR=${KM_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${KM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
KEYRING=${KM_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}

die() { echo "$ME: error: $*" >&2; exit 125; }
note() { echo "$ME: $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

cache='' line='' run_script='' out_dir='' timeout=600 hide_btf=0 btf_copy='' mem=1G smp=2
accel=tcg offline=0 fetch_only=0 show_console=0
files=() envs=() bins=()
while [ $# -gt 0 ]; do
  case $1 in
    --cache) cache=${2:?--cache needs a dir}; shift 2 ;;
    --kernel) line=${2:?--kernel needs 5.10, 6.1 or 6.12}; shift 2 ;;
    --file) files+=("${2:?--file needs HOST_PATH[:GUEST_PATH]}"); shift 2 ;;
    --run) run_script=${2:?--run needs a script}; shift 2 ;;
    --bin) bins+=("${2:?--bin needs a program}"); shift 2 ;;
    --env) envs+=("${2:?--env needs NAME=VALUE}"); shift 2 ;;
    --out) out_dir=${2:?--out needs a dir}; shift 2 ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --hide-btf) hide_btf=1; shift ;;
    --btf-copy) btf_copy=${2:?--btf-copy needs a guest path}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --smp) smp=${2:?}; shift 2 ;;
    --accel) accel=${2:?}; shift 2 ;;
    --offline) offline=1; shift ;;
    --fetch-only) fetch_only=1; shift ;;
    --console) show_console=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$ME: unknown argument: $1 (see --help)" >&2; exit 125 ;;
  esac
done
[ -n "$cache" ] || die "--cache DIR is required"
case $line in
  5.10) suite=bullseye; pkg_re='^linux-image-5\.10\.0-[0-9]+-cloud-amd64$' ;;
  6.1)  suite=bookworm; pkg_re='^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' ;;
  6.12) suite=trixie;   pkg_re='^linux-image-6\.12\.[0-9]+\+deb13-cloud-amd64$' ;;
  '') die "--kernel 5.10|6.1|6.12 is required" ;;
  *) die "unknown kernel line '$line' (5.10, 6.1 or 6.12)" ;;
esac
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout wants whole seconds, not '$timeout'"
if [ "$fetch_only" = 0 ]; then
  [ -n "$run_script" ] || die "--run HOST_SCRIPT is required"
  [ -f "$run_script" ] || die "--run: no such file: $run_script"
  [ -f "$HERE/guest-init.sh" ] || die "missing $HERE/guest-init.sh"
fi
for f in ${files[@]+"${files[@]}"}; do
  [ -e "${f%%:*}" ] || die "--file: no such file: ${f%%:*}"
done
for e in ${envs[@]+"${envs[@]}"}; do
  [[ $e =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env wants NAME=VALUE, not '$e'"
done

# ---------------------------------------------------------------- host tools
# command -> Debian package; installed with apt-get when missing (as root).
ensure_tools() {
  local -A need=( [curl]=curl [xz]=xz-utils [gpgv]=gpgv [dpkg-deb]=dpkg
                  [sha256sum]=coreutils [gzip]=gzip [timeout]=coreutils )
  [ "$fetch_only" = 1 ] || need+=( [qemu-system-x86_64]=qemu-system-x86 )
  local missing=() c
  for c in "${!need[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("${need[$c]}"); done
  [ -f "$KEYRING" ] || missing+=(debian-archive-keyring)
  [ ${#missing[@]} -eq 0 ] && return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing packages: ${missing[*]} (install them: apt-get install ${missing[*]})"
  fi
  note "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null 2>&1 || {
    apt-get update -qq </dev/null >/dev/null 2>&1 || true
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null ||
      die "apt-get install ${missing[*]} failed"
  }
}
ensure_tools

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
mkdir -p "$cache/index" "$cache/debs" "$cache/kernels" "$cache/tools"
# One fetcher at a time per cache (parallel runs may share it).
exec 9>"$cache/.lock"
flock 9

# ------------------------------------------------------------ Debian archive
fetch() { # URL FILE: download to FILE (atomically)
  curl -fsSL --retry 3 --connect-timeout 20 -o "$2.part" "$1" && mv "$2.part" "$2"
}

# suite_index BASE SUITE -> prints the path of a verified main/binary-amd64
# Packages.xz for that suite (cached), or fails: 1 if unreachable, 125 if it
# does not verify.
suite_index() {
  local base=$1 s=$2 key ir pk want
  key=$(echo "$base" | sed 's|.*/||')_$s
  ir=$cache/index/$key.InRelease pk=$cache/index/$key.Packages.xz
  fetch "$base/dists/$s/InRelease" "$ir.new" || { rm -f "$ir.new"; return 1; }
  gpgv --keyring "$KEYRING" "$ir.new" >/dev/null 2>&1 ||
    die "$base/dists/$s/InRelease: bad or unknown signature (gpgv against $KEYRING)"
  mv "$ir.new" "$ir"
  want=$(awk '/^SHA256:/ {h=1; next} /^[^ ]/ {h=0} h && $3 == "main/binary-amd64/Packages.xz" {print $1}' "$ir")
  [ -n "$want" ] || die "$base/dists/$s/InRelease lists no main/binary-amd64/Packages.xz"
  if [ ! -f "$pk" ] || [ "$(sha256sum <"$pk" | cut -d' ' -f1)" != "$want" ]; then
    fetch "$base/dists/$s/main/binary-amd64/Packages.xz" "$pk.new" ||
      die "cannot download $base/dists/$s/main/binary-amd64/Packages.xz"
    [ "$(sha256sum <"$pk.new" | cut -d' ' -f1)" = "$want" ] ||
      die "$base/dists/$s/main/binary-amd64/Packages.xz: SHA256 differs from the InRelease"
    mv "$pk.new" "$pk"
  fi
  echo "$pk"
}

# candidates PACKAGES_XZ BASE REGEX -> "version package base filename sha256 size" lines
candidates() {
  xz -dc "$1" | KM_RE=$3 awk -v base="$2" '
    BEGIN { re = ENVIRON["KM_RE"] }
    /^Package: / { p = $2 } /^Version: / { v = $2 } /^Filename: / { f = $2 }
    /^SHA256: / { h = $2 } /^Size: / { z = $2 }
    /^$/ { if (p ~ re) print v, p, base, f, h, z; p = v = f = h = z = "" }
    END { if (p ~ re) print v, p, base, f, h, z }'
}

newest() { # reads candidate lines, prints the one with the highest Debian version
  local best='' bv='' l v
  while read -r l; do
    v=${l%% *}
    if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$bv"; then best=$l bv=$v; fi
  done
  [ -n "$best" ] && echo "$best"
}

# resolve NAME SUITE REGEX: picks the newest matching package in SUITE and
# SUITE-security, downloads and verifies it; prints "package version deb-path".
# The choice is remembered in $cache/NAME.selected for --offline.
resolve() {
  local name=$1 s=$2 re=$3 sel=$cache/$1.selected idx cands='' best ver pkg base file sha size deb
  if [ "$offline" = 0 ]; then
    # suite_index exits 125 on a verification failure (fatal), 1 when unreachable.
    if idx=$(suite_index "$MIRROR" "$s"); then
      cands+=$(candidates "$idx" "$MIRROR" "$re")$'\n'
      if idx=$(suite_index "$SECURITY_MIRROR" "$s-security"); then
        cands+=$(candidates "$idx" "$SECURITY_MIRROR" "$re")$'\n'
      elif [ $? = 125 ]; then exit 125
      else
        note "warning: $SECURITY_MIRROR/dists/$s-security unreachable; using $s only"
      fi
    elif [ $? = 125 ]; then exit 125
    else
      note "warning: $MIRROR/dists/$s unreachable; using the cached choice for $name"
    fi
  fi
  if best=$(printf '%s' "$cands" | grep -v '^$' | newest); then
    read -r ver pkg base file sha size <<<"$best"
    deb=$cache/debs/$(basename "$file")
    if [ ! -f "$deb" ] || [ "$(sha256sum <"$deb" | cut -d' ' -f1)" != "$sha" ]; then
      note "downloading $pkg $ver ($((size / 1024)) KiB) from $base"
      fetch "$base/$file" "$deb.new" || die "cannot download $base/$file"
      [ "$(sha256sum <"$deb.new" | cut -d' ' -f1)" = "$sha" ] || die "$base/$file: SHA256 mismatch"
      mv "$deb.new" "$deb"
    fi
    echo "$pkg $ver $deb $sha" >"$sel.tmp" && mv "$sel.tmp" "$sel"
  elif [ "$offline" = 0 ] && [ -n "$cands" ]; then
    die "no package matching $re in $s"
  fi
  [ -f "$sel" ] || die "no cached $name (run once with network access, without --offline)"
  read -r pkg ver deb sha <"$sel"
  [ -f "$deb" ] && [ "$(sha256sum <"$deb" | cut -d' ' -f1)" = "$sha" ] ||
    die "cached $deb is missing or corrupt; run without --offline"
  echo "$pkg $ver $deb"
}

read -r kpkg kver kdeb < <(resolve "kernel-$line" "$suite" "$pkg_re") || exit 125
[ -n "${kdeb:-}" ] || die "could not resolve the $line kernel"
kdir=$cache/kernels/${kpkg}_$kver
if [ ! -f "$kdir/vmlinuz" ]; then
  rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp"
  dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$kdir.tmp" --wildcards './boot/vmlinuz-*' './boot/config-*' ||
    die "cannot extract vmlinuz and config from $kdeb"
  krel=$(basename "$(ls "$kdir.tmp"/boot/vmlinuz-*)"); krel=${krel#vmlinuz-}
  mv "$kdir.tmp/boot/vmlinuz-$krel" "$kdir.tmp/vmlinuz"
  mv "$kdir.tmp/boot/config-$krel" "$kdir.tmp/config"
  echo "$krel" >"$kdir.tmp/release"
  rmdir "$kdir.tmp/boot"
  rm -rf "$kdir" && mv "$kdir.tmp" "$kdir"
fi
krel=$(cat "$kdir/release")

read -r bpkg bver bdeb < <(resolve busybox-static bookworm '^busybox-static$') || exit 125
[ -n "${bdeb:-}" ] || die "could not resolve busybox-static"
busybox=$cache/tools/busybox_${bver//:/_}
if [ ! -x "$busybox" ]; then
  rm -rf "$cache/tools/bb.tmp" && mkdir -p "$cache/tools/bb.tmp"
  dpkg-deb -x "$bdeb" "$cache/tools/bb.tmp"
  mv "$cache/tools/bb.tmp/bin/busybox" "$busybox.tmp" && mv "$busybox.tmp" "$busybox"
  rm -rf "$cache/tools/bb.tmp"
fi
flock -u 9

# The kernel facts that matter to eBPF uprobe tools, from the package's config.
config_facts() {
  local k
  for k in DEBUG_INFO_BTF DEBUG_INFO_BTF_MODULES BPF BPF_SYSCALL BPF_JIT BPF_JIT_ALWAYS_ON \
           BPF_EVENTS BPF_LSM UPROBES UPROBE_EVENTS KPROBES KPROBE_EVENTS FPROBE \
           FUNCTION_TRACER DYNAMIC_FTRACE_WITH_DIRECT_CALLS FTRACE_SYSCALLS PERF_EVENTS \
           CGROUP_BPF BPF_UNPRIV_DEFAULT_OFF MODULES VIRTIO_PCI SERIAL_8250_CONSOLE; do
    printf '  CONFIG_%s=%s\n' "$k" "$(sed -n "s/^CONFIG_$k=//p" "$kdir/config" | grep . || echo 'n (not set)')"
  done
}
note "kernel $line: $kpkg $kver (release $krel), $kdir/vmlinuz"
if [ "$fetch_only" = 1 ]; then
  note "config facts ($kdir/config):"
  config_facts >&2
  note "busybox: $bpkg $bver ($busybox)"
  exit 0
fi

# ---------------------------------------------------------------- initramfs
work=$(mktemp -d "${TMPDIR:-/tmp}/$ME.XXXXXX")
qpid=
cleanup() {
  [ -n "$qpid" ] && kill "$qpid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,km/bin,km/out,proc,sys,dev,tmp,run,root,etc}
cp "$busybox" "$root/bin/busybox"
cp "$HERE/guest-init.sh" "$root/init" && chmod 755 "$root/init"
cp "$run_script" "$root/km/run" && chmod 755 "$root/km/run"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo "127.0.0.1 localhost kernel-matrix" >"$root/etc/hosts"
for f in ${files[@]+"${files[@]}"}; do
  src=${f%%:*} dst=
  [[ $f == *:* ]] && dst=${f#*:}
  [ -e "$src" ] || die "--file: no such file: $src"
  [ -n "$dst" ] || dst=/km/$(basename "$src")
  [[ $dst == /* ]] || dst=/km/$dst
  mkdir -p "$root$(dirname "$dst")"
  cp -a "$src" "$root$dst"
done
for b in ${bins[@]+"${bins[@]}"}; do
  [[ $b == */* ]] || b=$(command -v "$b") || die "--bin: no such program: $b"
  [ -x "$b" ] || die "--bin: not an executable: $b"
  cp -L "$b" "$root/km/bin/"
  # "libx.so => /path (0x..)" and "/lib64/ld-linux-x86-64.so.2 (0x..)"
  for lib in $(ldd "$b" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
mkdir -p "$root/boot" && cp "$kdir/config" "$root/boot/config-$krel"
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
  echo "export KM_KERNEL_LINE=$(q "$line") KM_KERNEL_PACKAGE=$(q "$kpkg") KM_KERNEL_VERSION=$(q "$kver")"
  [ -n "$btf_copy" ] && echo "export KM_BTF_COPY=$(q "$btf_copy")"
  echo "export KM_HIDE_BTF=$hide_btf"
  for e in ${envs[@]+"${envs[@]}"}; do echo "export ${e%%=*}=$(q "${e#*=}")"; done
} >"$root/km/env"
(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -1 >"$work/initrd.gz" ||
  die "cannot build the initramfs"
note "initramfs: $(( $(stat -c %s "$work/initrd.gz") / 1024 )) KiB"

# --------------------------------------------------------------------- boot
logs=$work/logs
mkdir -p "$logs"
: >"$logs/console.log"; : >"$logs/output.log"; : >"$logs/status.log"; : >"$logs/out.tar"
accel_opts=(-accel "$accel")
cpu=max
[ "$accel" = kvm ] && cpu=host
qemu=(qemu-system-x86_64 "${accel_opts[@]}" -cpu "$cpu" -m "$mem" -smp "$smp"
  -nodefaults -no-user-config -display none -no-reboot -monitor none
  -kernel "$kdir/vmlinuz" -initrd "$work/initrd.gz"
  -append "console=ttyS0,115200 rdinit=/init panic=-1 oops=panic random.trust_cpu=on"
  -serial "file:$logs/console.log" -serial "file:$logs/output.log"
  -serial "file:$logs/status.log" -serial "file:$logs/out.tar")

t0=$(date +%s.%N)
timeout -k 10 "$timeout" "${qemu[@]}" </dev/null >"$logs/qemu.log" 2>&1 &
qpid=$!
tail -n +1 -f --pid="$qpid" "$logs/output.log" 2>/dev/null &
tpid=$!
if [ "$show_console" = 1 ]; then
  tail -n +1 -f --pid="$qpid" "$logs/console.log" >&2 2>/dev/null &
fi
t_start=
while kill -0 "$qpid" 2>/dev/null; do
  if [ -z "$t_start" ] && grep -q '^KM-START ' "$logs/status.log"; then t_start=$(date +%s.%N); fi
  sleep 0.1
done
set +e
wait "$qpid"; qrc=$?
set -e
qpid=
t1=$(date +%s.%N)
wait "$tpid" 2>/dev/null || true
[ -n "$t_start" ] || { grep -q '^KM-START ' "$logs/status.log" && t_start=$t1; } || true

st() { sed -n "s/^KM-$1 //p" "$logs/status.log" | tr -d '\r' | head -n 1; }
rc=$(st EXIT)
fact() { sed -n "s/^KM-FACT $1 //p" "$logs/status.log" | tr -d '\r' | head -n 1; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
boot=; [ -n "$t_start" ] && boot=$(secs "$t0" "$t_start")
total=$(secs "$t0" "$t1")
script_s=; [ -n "$(st END)" ] && script_s=$(secs "$(st START)" "$(st END)")

out_ok=
if [ -n "$(st OUT)" ]; then
  read -r osz osha <<<"$(st OUT)"
  if [ "$(stat -c %s "$logs/out.tar")" = "$osz" ] && [ "$(sha256sum <"$logs/out.tar" | cut -d' ' -f1)" = "$osha" ]; then
    out_ok=1
  else
    note "warning: the output tar from the guest is damaged ($(stat -c %s "$logs/out.tar") of $osz bytes)"
  fi
fi

summary=$(
  echo "kernel line:      $line"
  echo "kernel package:   $kpkg $kver"
  echo "kernel release:   $(fact uname_r) ($(fact uname_v | tr _ ' '))"
  echo "/sys/kernel/btf/vmlinux: $(fact btf_vmlinux) $( [ "$(fact btf_vmlinux)" = missing ] || echo bytes)"
  [ -n "$(fact btf_copy)" ] && echo "btf copy:         $(fact btf_copy) bytes"
  [ -n "$(fact btf_hidden)" ] && echo "btf hidden:       yes ($(fact btf_hidden | tr _ ' '))"
  echo "vm:               $accel, $(fact nproc) cpu, $(fact mem_kb) kB"
  echo "boot:             ${boot:-?} s (qemu start to the guest script starting; guest uptime then $(st START) s)"
  echo "guest script:     ${script_s:-?} s"
  echo "total:            $total s (qemu start to exit)"
  echo "guest exit:       ${rc:-none}"
  sed -n 's/^KM-ERROR /guest error:      /p' "$logs/status.log"
)
echo "$summary" | sed "s/^/$ME: /" >&2

if [ -n "$out_dir" ]; then
  mkdir -p "$out_dir"
  [ -n "$out_ok" ] && tar -xzf "$logs/out.tar" -C "$out_dir"
  cp "$logs/console.log" "$logs/output.log" "$logs/status.log" "$out_dir/"
  [ -s "$logs/qemu.log" ] && cp "$logs/qemu.log" "$out_dir/"
  echo "$summary" >"$out_dir/summary.txt"
fi

if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
  note "timeout: the VM was still running after ${timeout}s; last console lines:"
  tail -n 20 "$logs/console.log" | tr -d '\r' | sed 's/^/  | /' >&2
  exit 124
fi
if [ -z "$rc" ]; then
  note "the guest gave no exit status (qemu exit $qrc); last console lines:"
  tail -n 30 "$logs/console.log" | tr -d '\r' | sed 's/^/  | /' >&2
  [ -s "$logs/qemu.log" ] && sed 's/^/  qemu: /' "$logs/qemu.log" >&2
  exit 125
fi
exit "$rc"
