#!/bin/sh
# Runs in a kernel-matrix VM (busybox sh, from /km): ecapture captures a TLS
# exchange of a statically linked OpenSSL program. tests/kernels.rs checks
# what it leaves in $KM_OUT:
#   ecapture.stdout, ecapture.stderr   the capture (text events) and its log
#   ecapture.status                    ecapture's exit status after SIGINT
#   selftest.out                       "tls_selftest: OK pid=... server_port=..."
#   uname                              the running kernel
#   nobtf.stderr, nobtf.status         with the BTF hidden: a run without --btf-file
# Files: /km/ecapture (static), /km/tls_selftest, /km/cert.pem, /km/key.pem.
# Environment: SIZE (bytes the client writes in one SSL_write), EXTRA (more
# ecapture flags, e.g. --btf-file /km/vmlinux.btf), ATTACH_WAIT (seconds:
# the verifier is slow under emulation).
SIZE=${SIZE:-100000}
ATTACH_WAIT=${ATTACH_WAIT:-300}
out=${KM_OUT:-/tmp}
cd /km || exit 2
uname -r >"$out/uname"
for f in ecapture tls_selftest cert.pem key.pem; do
  [ -e "/km/$f" ] || { echo "missing /km/$f"; exit 2; }
done

# With the kernel's BTF hidden, first without --btf-file: it must say so.
if [ "${KM_HIDE_BTF:-0}" = 1 ]; then
  ./ecapture tls --libssl /km/tls_selftest >/dev/null 2>"$out/nobtf.stderr" </dev/null
  echo $? >"$out/nobtf.status"
  echo "without --btf-file: status $(cat "$out/nobtf.status"): $(cat "$out/nobtf.stderr")"
fi

# shellcheck disable=SC2086 # EXTRA is a list of flags
./ecapture tls --libssl /km/tls_selftest -d $EXTRA >"$out/ecapture.stdout" 2>"$out/ecapture.stderr" </dev/null &
ec=$!
t=0
while [ $t -lt $((ATTACH_WAIT * 10)) ]; do
  grep -q 'probes attached' "$out/ecapture.stderr" && break
  kill -0 $ec 2>/dev/null || break
  sleep 0.1
  t=$((t + 1))
done
if ! grep -q 'probes attached' "$out/ecapture.stderr"; then
  kill -INT $ec 2>/dev/null
  wait $ec
  echo $? >"$out/ecapture.status"
  echo "ecapture did not attach; its last lines:"
  grep -v '^$' "$out/ecapture.stderr" | grep -v '^[0-9]*: \|^;' | tail -n 15 | cut -c1-400
  exit 1
fi
echo "attached after $((t / 10)).$((t % 10)) s: $(grep 'probes attached' "$out/ecapture.stderr" | sed 's/.*INFO *//')"

./tls_selftest /km/cert.pem /km/key.pem "$SIZE" >"$out/selftest.out" 2>&1
echo "tls_selftest exited with status $?: $(cat "$out/selftest.out")"
# What the probes recorded before the stop is drained before ecapture exits.
kill -INT $ec
wait $ec
echo $? >"$out/ecapture.status"
echo "ecapture exited with status $(cat "$out/ecapture.status")"
grep -E ' (INFO|WARN|ERROR) ' "$out/ecapture.stderr" | tail -n 4 | cut -c1-300

# The other modules' objects load and attach on this kernel too (given
# their libraries as files: /km/libgnutls.so.30, /km/libnspr4.so and
# /km/libssl3.so, found through ECAPTURE_LIB_DIRS; the Go fixture's
# program as /km/gopeer for gotls).
attach_only() { # name, args...
  name=$1
  shift
  # shellcheck disable=SC2086 # EXTRA is a list of (global) flags
  ECAPTURE_LIB_DIRS=/km ./ecapture "$@" $EXTRA >/dev/null 2>"$out/$name.stderr" </dev/null &
  pid=$!
  t=0
  while [ $t -lt $((ATTACH_WAIT * 10)) ]; do
    grep -q 'probes attached' "$out/$name.stderr" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
    t=$((t + 1))
  done
  kill -INT $pid 2>/dev/null
  wait $pid
  echo $? >"$out/$name.status"
  echo "$name: $(grep -E 'probes attached|ecapture:' "$out/$name.stderr" | sed 's/.*INFO *//' | cut -c1-200)"
}
[ -e /km/libgnutls.so.30 ] && attach_only gnutls gnutls --gnutls /km/libgnutls.so.30
[ -e /km/libnspr4.so ] && attach_only nss nss --nspr /km/libnspr4.so
# gotls with its key log probe (crypto/tls.(*Config).writeKeyLog) too.
[ -e /km/gopeer ] && attach_only gotls gotls --elfpath /km/gopeer -k /tmp/gotls-keys.log
exit 0
