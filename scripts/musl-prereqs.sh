#!/usr/bin/env bash
# What building ecapture for x86_64-unknown-linux-musl needs beyond Debian's
# musl-tools (or, with ARCH aarch64, for aarch64-unknown-linux-musl beyond
# zig: scripts/zig-cc), in one directory (idempotent):
#  - include/{linux,asm,asm-generic}: the kernel UAPI headers, which musl-gcc
#    does not see on Debian (libbpf includes <linux/bpf.h> ...); x86_64 only:
#    zig carries aarch64's own;
#  - argp and obstack for elfutils' configure (musl has neither), built with
#    musl-gcc (zig-cc) from Debian's gnulib; for aarch64 also fts, which
#    Debian's x86_64 musl has and zig's musl does not (configure insists on
#    fts_close; libelf does not use it). Only configure's link tests and elfutils'
#    helper library (libeu, not part of libelf) use them: none of their code
#    ends up in the ecapture binary.
set -euo pipefail
dir=${1:?usage: musl-prereqs.sh DIR [x86_64|aarch64]}
arch=${2:-x86_64}
# A failed vendored build of libbpf-sys leaves elfutils configured, and its
# objects, inside the registry copy of the crate (it builds in the source
# tree): another build, for this or the other architecture, would reuse
# them. Every build starts it clean.
for src in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/libbpf-sys-*/elfutils; do
  # Under libbpf-sys's own lock (flock on elfutils/README): a build for the
  # other architecture may be using the tree right now.
  if [ -f "$src/Makefile" ]; then flock "$src/README" make -C "$src" distclean >/dev/null 2>&1 || true; fi
done
[ -f "$dir/.done" ] && exit 0
case $arch in
  x86_64)
    cc=x86_64-linux-musl-gcc
    command -v $cc >/dev/null || { echo "musl-prereqs: $cc not found (apt-get install musl-tools)" >&2; exit 1; } ;;
  aarch64)
    cc=$(cd "$(dirname "$0")" && pwd)/zig-cc
    "$cc" --version >/dev/null || exit 1 ;;
  *) echo "musl-prereqs: unknown architecture $arch" >&2; exit 1 ;;
esac
command -v gnulib-tool >/dev/null || { echo "musl-prereqs: gnulib-tool not found (apt-get install gnulib)" >&2; exit 1; }

rm -rf "$dir"
mkdir -p "$dir/include" "$dir/lib" "$dir/src"
if [ "$arch" = x86_64 ]; then
  ln -s /usr/include/linux "$dir/include/linux"
  ln -s /usr/include/asm-generic "$dir/include/asm-generic"
  ln -s "/usr/include/$(gcc -dumpmachine)/asm" "$dir/include/asm"
fi

modules="argp obstack"
[ "$arch" = aarch64 ] && modules="$modules fts"
echo "musl-prereqs: building $modules from gnulib with $cc"
gnulib-tool --create-testdir --without-tests --dir="$dir/src/gnulib" $modules >"$dir/src/gnulib.log" 2>&1
(cd "$dir/src/gnulib" && ./configure --quiet CC="$cc" --host=$arch-linux-musl >>"$dir/src/gnulib.log" 2>&1 \
  && make -j"$(nproc)" >>"$dir/src/gnulib.log" 2>&1) || { echo "musl-prereqs: gnulib build failed, see $dir/src/gnulib.log" >&2; exit 1; }
cp "$dir/src/gnulib/gllib/libgnu.a" "$dir/lib/libargp.a"
cp "$dir/src/gnulib/gllib/libgnu.a" "$dir/lib/libobstack.a"
[ "$arch" = aarch64 ] && cp "$dir/src/gnulib/gllib/libgnu.a" "$dir/lib/libfts.a"
cp "$dir/src/gnulib/gllib/argp.h" "$dir/include/gnulib-argp.h"
cp "$dir/src/gnulib/gllib/obstack.h" "$dir/include/gnulib-obstack.h"
# gnulib's headers expect gnulib's config.h: the few macros they use.
for h in argp obstack; do
  cat >"$dir/include/$h.h" <<H
/* $h.h for elfutils on musl: gnulib's, with the macros its config.h defines. */
#ifndef ECAPTURE_MUSL_${h^^}_H
#define ECAPTURE_MUSL_${h^^}_H
#ifndef _GL_ATTRIBUTE_FORMAT
# define _GL_ATTRIBUTE_FORMAT(spec) __attribute__ ((__format__ spec))
#endif
#ifndef _GL_ATTRIBUTE_SPEC_PRINTF_STANDARD
# define _GL_ATTRIBUTE_SPEC_PRINTF_STANDARD __printf__
# define _GL_ATTRIBUTE_SPEC_PRINTF_SYSTEM __printf__
#endif
#ifndef _GL_ATTRIBUTE_PURE
# define _GL_ATTRIBUTE_PURE __attribute__ ((__pure__))
#endif
#ifndef _GL_INLINE_HEADER_BEGIN
# define _GL_INLINE_HEADER_BEGIN
# define _GL_INLINE_HEADER_END
#endif
#ifndef _GL_INLINE
# define _GL_INLINE static inline
#endif
#include "gnulib-$h.h"
#endif
H
done

touch "$dir/.done"
echo "musl-prereqs: ready in $dir"
