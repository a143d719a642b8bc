/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel <-> user ABI of ecapture: configuration written into .rodata
 * before load, and the chunk records sent through the perf buffer.
 *
 * Every struct here has a twin in src/event.rs (decoding) or
 * src/bpf/loader.rs (configuration). Fixed-width types and explicit padding
 * only; the Rust side asserts the sizes, so a change here that is not made
 * there fails the build's unit tests instead of corrupting events.
 */
#ifndef ECAPTURE_EVENTS_H
#define ECAPTURE_EVENTS_H

/* Payload bytes per perf record. A perf record is limited to 64 KiB in all
 * (its header size is a u16), so a large SSL_write is split into chunks of
 * this size and reassembled in userspace. */
#define CHUNK_DATA_SIZE 32768

/* Scratch buffers per CPU. A uprobe program runs with migration disabled
 * but may be preempted, so two programs can be in flight on one CPU; each
 * claims a slot with a compare-and-swap. */
#define SCRATCH_SLOTS 4

#define TASK_COMM_LEN 16
#define MAX_LIBS 16

/* Hard upper bound on the configurable capture cap (bytes per call). */
#define MAX_CAPTURE_CAP (64u << 20)

/* The attach cookie of the SSL_{read,write}[_ex] uprobes: which library
 * (index into bpf_config.libs) and which function. */
#define COOKIE_LIB_MASK 0xffu
#define COOKIE_WRITE 0x100u
#define COOKIE_EX 0x200u

enum tls_dir {
	DIR_READ = 0,
	DIR_WRITE = 1,
};

/* tls_chunk_hdr.flags */
#define CHUNK_F_TRUNCATED 0x1 /* the call moved more than the cap */
#define CHUNK_F_FD_SYSCALL 0x2 /* fd seen in a socket syscall during the call */
#define CHUNK_F_FD_CACHED 0x4  /* fd remembered from an earlier call / SSL_set_fd */
#define CHUNK_F_FD_BIO 0x8     /* fd read from the SSL's BIO */
#define CHUNK_F_ROLE_KNOWN 0x10 /* CHUNK_F_SERVER is meaningful */
#define CHUNK_F_SERVER 0x20     /* this end of the connection is the TLS server */
#define CHUNK_F_CLOSE 0x40      /* not data: SSL_free(ssl) was called (no payload) */

/* Indexes into the per-CPU "stats" map: failures on the BPF side. */
enum bpf_stat {
	STAT_PERF_OUTPUT_FAIL = 0, /* bpf_perf_event_output failed: chunk lost.
				    * Includes rings that were full, which perf
				    * also reports (later, and only if another
				    * record follows) as lost samples. */
	STAT_READ_USER_FAIL = 1,   /* user buffer unreadable: chunk lost */
	STAT_SLOT_BUSY = 2,        /* no scratch slot free: whole call lost */
	STAT_ACTIVE_FULL = 3,      /* too many threads inside SSL calls: call lost */
	STAT_READ_LEN_FAIL = 4,    /* *written / *readbytes unreadable: call lost */
	STAT__COUNT = 5,
};

/* Offsets into OpenSSL's private structs, per attached library. */
struct lib_offsets {
	__u32 ssl_version;
	__u32 ssl_rbio;
	__u32 ssl_wbio;
	__u32 bio_num;
	__u32 bio_method;
	__u32 ssl_server; /* int server (SSL_is_server); 0 = unknown */
	__u32 valid;
};

/* Read-only configuration, one instance named "cfg" in .rodata. */
struct bpf_config {
	__u32 target_pid; /* 0 = all */
	__u32 target_uid; /* 0 = all */
	__u32 capture_cap; /* bytes per call, <= MAX_CAPTURE_CAP */
	__u32 nr_libs;
	struct lib_offsets libs[MAX_LIBS];
};

/* One perf record: this header followed by chunk_len payload bytes. */
struct tls_chunk_hdr {
	__u64 ts_ns;   /* bpf_ktime_get_ns() when the call returned */
	__u64 call_id; /* unique per call: cpu << 48 | per-cpu counter */
	__u64 ssl;     /* the SSL*: with pid, identifies the TLS connection */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__s32 fd; /* -1 when unknown */
	__u32 total_len;    /* bytes the call transferred */
	__u32 captured_len; /* min(total_len, capture_cap) */
	__u32 chunk_off;    /* offset of this chunk's data in the payload */
	__u32 chunk_len;    /* payload bytes following this header */
	__u32 tls_version;  /* SSL->version, e.g. 0x0304 for TLS 1.3 */
	__u32 lib_idx;
	__u16 family;       /* AF_INET, AF_INET6 or 0 when unknown */
	__u16 lport;        /* host byte order */
	__u16 rport;        /* host byte order */
	__u8 dir;           /* enum tls_dir */
	__u8 flags;         /* CHUNK_F_* */
	__u8 laddr[16];     /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
	char comm[TASK_COMM_LEN];
};

#endif /* ECAPTURE_EVENTS_H */
