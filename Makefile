# ecapture — build, run and test.
#
#   make            install missing build tools, build target/release/ecapture
#   make run        ... then run `ecapture tls` (ARGS="--pid 1234" to add flags)
#   make test       ... then run the unit and end-to-end tests (e2e needs root)
#   make vmlinux    regenerate bpf/vmlinux.h from this machine's BTF
#   make proto      regenerate src/ecaptureq/pb from proto/ecaptureq.proto
#
# The BPF objects are compiled by the `bpf` target below; cargo's build script
# calls it with the libbpf headers exported by libbpf-sys, so `cargo build`
# alone works too once the tools are installed.

CARGO   ?= cargo
CLANG   ?= clang
STRIP   ?= llvm-strip
ARCH    := x86
BPF_OUT ?= target/bpf
LIBBPF_INCLUDE ?=
ARGS    ?=

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-fno-stack-protector -Ibpf $(if $(LIBBPF_INCLUDE),-I$(LIBBPF_INCLUDE))

BIN := target/release/ecapture

.PHONY: all build deps test-deps run test bpf vmlinux proto clean

all: build

deps:
	@scripts/deps.sh build

test-deps:
	@scripts/deps.sh test

build: deps
	$(CARGO) build --release --bins

run: build
	$(BIN) tls $(ARGS)

# E2E tests run when root; ECAPTURE_E2E=1 makes a skip a failure (CI sets it).
test: build test-deps
	$(CARGO) test --release -- --test-threads=$${TEST_THREADS:-4}

bpf: $(BPF_OUT)/tls.bpf.o

$(BPF_OUT)/tls.bpf.o: bpf/tls.bpf.c bpf/events.h bpf/vmlinux.h
	@test -n "$(LIBBPF_INCLUDE)" || { echo "make bpf: LIBBPF_INCLUDE is not set (cargo build sets it)"; exit 1; }
	@mkdir -p $(BPF_OUT)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp
	$(STRIP) -g $@.tmp   # drop DWARF, keep .BTF/.BTF.ext for CO-RE
	mv $@.tmp $@

vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h

# src/ecaptureq/pb is generated from proto/ecaptureq.proto (the source of
# truth) by quick-protobuf's pb-rs; run this after changing the .proto.
proto:
	command -v pb-rs >/dev/null || $(CARGO) install pb-rs --version 0.10.0 --locked
	pb-rs -d src/ecaptureq/pb proto/ecaptureq.proto

clean:
	$(CARGO) clean
