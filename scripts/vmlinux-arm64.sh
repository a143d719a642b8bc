#!/usr/bin/env bash
# Regenerates bpf/arm64/vmlinux.h, the kernel types the arm64 BPF objects are
# compiled against, from the BTF of a Debian arm64 kernel (this machine is
# x86_64: its own /sys/kernel/btf/vmlinux is the wrong architecture). The
# header is committed, so neither builds nor CI run this.
#
#   scripts/vmlinux-arm64.sh [CACHE_DIR]      (default target/vmlinux-arm64)
#
# The newest linux-image-*-arm64-unsigned of Debian 12 (bookworm, Linux 6.1),
# fetched and checked like tests/kernels/kernel-matrix.sh does it: InRelease
# with gpgv against debian-archive-keyring, Packages.xz against the
# InRelease's SHA256, the .deb against the Packages' SHA256. Its vmlinuz is a
# gzip'd arm64 Image (no ELF sections): the raw BTF blob is carved out of it
# at its magic, checked by parsing its header, and dumped with bpftool.
# Environment: KM_MIRROR (the archive base), KM_KEYRING.
set -euo pipefail
cd "$(dirname "$0")/.."
MIRROR=${KM_MIRROR:-http://deb.debian.org/debian}
KEYRING=${KM_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
SUITE=bookworm
cache=${1:-target/vmlinux-arm64}
mkdir -p "$cache"
for t in curl gpgv xz dpkg-deb bpftool python3 sha256sum; do
  command -v $t >/dev/null || { echo "vmlinux-arm64: $t not found (scripts/deps.sh test installs it)" >&2; exit 1; }
done

curl -fsSL -o "$cache/InRelease" "$MIRROR/dists/$SUITE/InRelease"
gpgv --keyring "$KEYRING" "$cache/InRelease" 2>/dev/null || { echo "vmlinux-arm64: InRelease signature check failed" >&2; exit 1; }
idx=main/binary-arm64/Packages.xz
want=$(awk -v f="$idx" '/^SHA256:/{s=1;next} /^[^ ]/{s=0} s && $3==f {print $1}' "$cache/InRelease")
[ -n "$want" ] || { echo "vmlinux-arm64: $idx not in InRelease" >&2; exit 1; }
curl -fsSL -o "$cache/Packages.xz" "$MIRROR/dists/$SUITE/$idx"
echo "$want  $cache/Packages.xz" | sha256sum -c --quiet
xz -dc "$cache/Packages.xz" >"$cache/Packages"

# The newest linux-image-<abi>-arm64-unsigned: its Filename and SHA256.
read -r pkg file sum < <(awk '
  /^Package: /{p=$2} /^Filename: /{f=$2} /^SHA256: /{s=$2}
  /^$/{ if (p ~ /^linux-image-[0-9.]+-[0-9]+-arm64-unsigned$/) print p, f, s; p=f=s="" }' "$cache/Packages" | sort -V | tail -1)
[ -n "${file:-}" ] || { echo "vmlinux-arm64: no linux-image-*-arm64-unsigned in $SUITE" >&2; exit 1; }
echo "vmlinux-arm64: $pkg"
deb="$cache/$(basename "$file")"
[ -f "$deb" ] || curl -fsSL -o "$deb" "$MIRROR/$file"
echo "$sum  $deb" | sha256sum -c --quiet
rm -rf "$cache/x" && mkdir "$cache/x"
dpkg-deb -x "$deb" "$cache/x"
vmlinuz=$(ls "$cache"/x/boot/vmlinuz-*)
python3 - "$vmlinuz" "$cache/vmlinux.btf" <<'PY'
import gzip, struct, sys
data = open(sys.argv[1], 'rb').read()
if data[:2] == b'\x1f\x8b':
    data = gzip.decompress(data)
# struct btf_header: magic u16 (0xeB9F), version u8, flags u8, hdr_len u32,
# type_off, type_len, str_off, str_len u32. The kernel's own BTF is the
# largest blob whose header parses and whose sections fit.
best = None
i = data.find(b'\x9f\xeb\x01\x00')
while i >= 0:
    hdr_len, toff, tlen, soff, slen = struct.unpack_from('<5I', data, i + 4)
    end = i + hdr_len + max(toff + tlen, soff + slen)
    if hdr_len == 24 and toff + tlen <= soff and end <= len(data) and data[i + hdr_len + soff] == 0:
        if best is None or end - i > best[1] - best[0]:
            best = (i, end)
    i = data.find(b'\x9f\xeb\x01\x00', i + 1)
if best is None or best[1] - best[0] < 1 << 20:
    sys.exit('vmlinux-arm64: no kernel BTF found in the image')
open(sys.argv[2], 'wb').write(data[best[0]:best[1]])
print(f'vmlinux-arm64: BTF of {best[1] - best[0]} bytes at offset {best[0]:#x}')
PY
mkdir -p bpf/arm64
bpftool btf dump file "$cache/vmlinux.btf" format c >bpf/arm64/vmlinux.h.tmp
grep -q 'struct user_pt_regs {' bpf/arm64/vmlinux.h.tmp || { echo "vmlinux-arm64: no struct user_pt_regs: not an arm64 kernel's BTF" >&2; exit 1; }
mv bpf/arm64/vmlinux.h.tmp bpf/arm64/vmlinux.h
echo "vmlinux-arm64: bpf/arm64/vmlinux.h from $pkg"
