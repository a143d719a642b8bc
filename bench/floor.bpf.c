// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The floor of `make bench`'s gotls rows: a uprobe program that only counts
 * its hits in a per-CPU array, as bpftrace's `@hits = count()` does,
 * attached by the bench at every address `ecapture gotls` probes. (Debian's
 * bpftrace cannot place a uprobe inside a function, at a RET: it is built
 * without the disassembler that checks the offset.)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

SEC("uprobe")
int floor_hit(void *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&hits, &k);
	if (v)
		(*v)++;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
