#!/usr/bin/env bash
# Builds the BoringSSL fixture of tests/boringssl.rs into target/boringssl:
#
#   libssl.a, libcrypto.a   BoringSSL, built with cmake from the sources the
#                           boring-sys crate (crates.io) carries
#   bssl_peer               tests/boringssl/bssl_peer.c linked statically with
#                           them (symbols kept): the program ecapture hooks
#   offsets.txt             what tests/boringssl/offsets.cc computes from
#                           BoringSSL's internal headers (the unit test in
#                           src/modules/openssl/version.rs compares it with
#                           ecapture's layouts)
#   VERSION                 the boring-sys version the libraries come from
#   offsets-<ver>.txt       offsets.cc compiled against the headers (only) of
#                           older boring-sys releases, one per BoringSSL layout
#                           ecapture knows (OLDER below)
#
# Cached: the libraries are rebuilt only when VERSION differs from
# BORING_SYS below (a cold build takes minutes, a warm run seconds); the
# two small programs whenever their sources are newer. Needs curl, cmake,
# ninja (or make), gcc and g++ (scripts/deps.sh test); not Go or Perl:
# the crate carries BoringSSL's pre-generated sources.
set -euo pipefail

# boring-sys 5.4.0 (2026-10-30): BoringSSL with the `SSLImpl`/`Bio` classes.
BORING_SYS=5.4.0
CRATE_SHA256=4986392770df40d11d0d6294b0dd8399570f4a6e76d6953c7a34f7dd1defbd76
# Older layouts, checked from their headers: "version sha256 source-dir".
# 4.22.0: BoringSSL 44b3df6f (bio_st without ex_data, SSL.version);
# 5.1.0: BoringSSL 91a66a59 (bio_st with ex_data, SSL3_STATE.version).
OLDER=(
  "4.22.0 15aad385759d3da2737772aefb391332227bef7cb71fb85c106cadd9d1e63a98 deps/boringssl/src"
  "5.1.0 bbc39169cb8fa025002661c8d9148ed38a896908e4d308bb0cb55303f66e95d4 deps/boringssl"
)

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/boringssl
out=${BORINGSSL_OUT:-$root/target/boringssl}
src=$out/src/boring-sys-$BORING_SYS/deps/boringssl
build=$out/build
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$out"

have_libs() {
  [ -f "$out/VERSION" ] && [ "$(cat "$out/VERSION")" = "$BORING_SYS" ] &&
    [ -f "$out/libssl.a" ] && [ -f "$out/libcrypto.a" ] && [ -d "$src/include/openssl" ]
}

# fetch VERSION SHA256: target/boringssl/boring-sys-VERSION.crate, verified.
fetch() {
  local crate=$out/boring-sys-$1.crate
  echo "$2  $crate" | sha256sum -c --status 2>/dev/null && return 0
  curl -fsSL --retry 3 -o "$crate.tmp" "https://static.crates.io/crates/boring-sys/boring-sys-$1.crate"
  echo "$2  $crate.tmp" | sha256sum -c --status || {
    echo "boringssl: boring-sys-$1.crate does not have the expected sha256" >&2
    exit 1
  }
  mv "$crate.tmp" "$crate"
}

if ! have_libs; then
  echo "boringssl: building BoringSSL from boring-sys $BORING_SYS into $out (a few minutes)"
  rm -rf "$out/src" "$build" "$out/VERSION" "$out/libssl.a" "$out/libcrypto.a"
  fetch "$BORING_SYS" "$CRATE_SHA256"
  mkdir -p "$out/src"
  tar -xzf "$out/boring-sys-$BORING_SYS.crate" -C "$out/src" "boring-sys-$BORING_SYS/deps/boringssl"
  generator=("Unix Makefiles")
  command -v ninja >/dev/null && generator=(Ninja)
  cmake -S "$src" -B "$build" -G "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++ >"$out/cmake.log" 2>&1 || {
    tail -30 "$out/cmake.log" >&2
    exit 1
  }
  nice -n 10 cmake --build "$build" --target ssl crypto -j "$jobs" >"$out/build.log" 2>&1 || {
    tail -30 "$out/build.log" >&2
    exit 1
  }
  cp "$build/libssl.a" "$build/libcrypto.a" "$out/"
  rm -rf "$build" # only the libraries are kept
  echo "$BORING_SYS" >"$out/VERSION"
fi

# shellcheck source=tests/fixture.sh
. "$root/tests/fixture.sh" # newer()

libs=("$out/libssl.a" "$out/libcrypto.a")
if newer "$out/bssl_peer" "$here/bssl_peer.c" "${libs[@]}"; then
  gcc -O2 -g -Wall -Werror -I"$src/include" -c "$here/bssl_peer.c" -o "$out/bssl_peer.o"
  # C++ driver: BoringSSL is C++ inside. Not stripped: the uprobes find
  # SSL_read and SSL_write through the symbol table.
  g++ -o "$out/bssl_peer.tmp" "$out/bssl_peer.o" "${libs[@]}" -lpthread
  mv "$out/bssl_peer.tmp" "$out/bssl_peer"
fi
if newer "$out/offsets.txt" "$here/offsets.cc" "${libs[@]}"; then
  g++ -std=c++17 -O0 -w -I"$src/include" -I"$src" "$here/offsets.cc" -o "$out/offsets" "${libs[@]}" -lpthread
  "$out/offsets" >"$out/offsets.txt.tmp"
  mv "$out/offsets.txt.tmp" "$out/offsets.txt"
fi
for older in "${OLDER[@]}"; do
  read -r ver sha dir <<<"$older"
  if newer "$out/offsets-$ver.txt" "$here/offsets.cc"; then
    fetch "$ver" "$sha"
    tmp=$out/headers-$ver
    rm -rf "$tmp" && mkdir -p "$tmp"
    tar -xzf "$out/boring-sys-$ver.crate" -C "$tmp" --wildcards "boring-sys-$ver/$dir/include/*" \
      "boring-sys-$ver/$dir/ssl/*.h" "boring-sys-$ver/$dir/crypto/*.h" "boring-sys-$ver/$dir/third_party/*.h"
    inc=$tmp/boring-sys-$ver/$dir
    g++ -std=c++17 -O0 -w -I"$inc/include" -I"$inc" "$here/offsets.cc" -o "$tmp/offsets"
    "$tmp/offsets" >"$out/offsets-$ver.txt.tmp"
    mv "$out/offsets-$ver.txt.tmp" "$out/offsets-$ver.txt"
    rm -rf "$tmp"
  fi
done
echo "boringssl: $out/bssl_peer (BoringSSL from boring-sys $(cat "$out/VERSION")) ready"
