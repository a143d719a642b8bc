/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel <-> user ABI of ecapture, in one place: the records the BPF
 * programs send through the ring buffer and the configuration userspace
 * writes into each object's .rodata before load.
 *
 * This header is the source of truth for both sides:
 * - build.rs turns every `#define NAME <integer>` below into a Rust constant
 *   (src/capture/abi.rs includes them), so numbers are never copied by hand;
 * - the Rust decoders declare each struct's field offsets once
 *   (src/capture/abi.rs), and a unit test compares them with the structs as
 *   compiled, read from the embedded objects' BTF;
 * - the _Static_asserts at the end pin sizes and offsets on this side.
 * A change made on one side only fails the build or the tests.
 *
 * Fixed-width types and explicit padding only. Keep the defines plain
 * integer literals (decimal or hex): build.rs reads them, it does not
 * evaluate C.
 */
#ifndef ECAPTURE_ABI_H
#define ECAPTURE_ABI_H

/* ---- records ------------------------------------------------------------ */

/* rec_hdr.kind */
#define REC_CHUNK 1 /* struct chunk_rec + chunk_len payload bytes */
#define REC_CLOSE 2 /* struct close_rec: the library freed a connection */
#define REC_TLS_KEYS 3 /* struct tls_keys_rec: an OpenSSL connection's secrets, as it stores them */
#define REC_SECRET 4 /* struct secret_rec: one key log secret, labelled (libraries that hand them out whole) */

/* Payload bytes per chunk record: a large call is split into chunks of
 * this size, sent back to back, and reassembled in userspace. */
#define CHUNK_DATA_SIZE 32768

/* Scratch buffers per CPU. A uprobe program runs with migration disabled
 * but may be preempted, so two programs can be in flight on one CPU; each
 * claims a slot with a compare-and-swap. */
#define SCRATCH_SLOTS 4

#define TASK_COMM_LEN 16

/* Hard upper bound on the configurable capture cap (bytes per call): 64 MiB. */
#define MAX_CAPTURE_CAP 67108864

/* chunk_rec.dir */
#define DIR_READ 0
#define DIR_WRITE 1

/* chunk_rec.flags */
#define CHUNK_F_TRUNCATED 0x1   /* the call moved more than the cap */
#define CHUNK_F_FD_SYSCALL 0x2  /* fd seen in a socket syscall during the call */
#define CHUNK_F_FD_CACHED 0x4   /* fd remembered from an earlier call / set_fd */
#define CHUNK_F_FD_LIB 0x8      /* fd read from the library's own structs */
#define CHUNK_F_ROLE_KNOWN 0x10 /* CHUNK_F_SERVER is meaningful */
#define CHUNK_F_SERVER 0x20     /* this end of the connection is the TLS server */
#define CHUNK_F_MAYBE_PLAIN 0x40 /* the library could not tell TLS from plain I/O (nss) */

/* Every record starts with this. */
struct rec_hdr {
	__u64 ts_ns;  /* bpf_ktime_get_ns() when the record was made */
	__u32 kind;   /* REC_* */
	__u32 source; /* which loaded object sent it: common_cfg.source */
};

/* One piece of the payload of one read or write call. */
struct chunk_rec {
	struct rec_hdr h;
	__u64 call_id; /* the thread (pid << 32 | tid): with h.ts_ns, the call */
	__u64 conn;    /* the library's connection object (SSL*): with pid, the connection */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__s32 fd;           /* -1 when unknown */
	__u32 total_len;    /* bytes the call transferred */
	__u32 captured_len; /* min(total_len, capture cap) */
	__u32 chunk_off;    /* offset of this chunk's data in the payload */
	__u32 chunk_len;    /* payload bytes following this record */
	__u32 tls_version;  /* e.g. 0x0304 for TLS 1.3; 0 when unknown */
	__u32 lib_idx;      /* which hooked library (module-specific) */
	__u16 family;       /* AF_INET, AF_INET6 or 0 when unknown */
	__u16 lport;        /* host byte order */
	__u16 rport;        /* host byte order */
	__u8 dir;           /* DIR_* */
	__u8 flags;         /* CHUNK_F_* */
	__u8 laddr[16];     /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
	char comm[TASK_COMM_LEN];
};

/* A connection object was freed (SSL_free): userspace finishes what it
 * holds for (pid, conn). */
struct close_rec {
	struct rec_hdr h;
	__u64 conn;
	__u32 pid;
	__u32 tid;
};

/* The secrets of one OpenSSL connection once its handshake is done, as
 * OpenSSL stores them (src/modules/openssl/keylog.rs turns them into key log
 * lines: TLS 1.3 handshake traffic secrets are derived there). Fields the
 * library version does not have stay zero. */
#define SECRET_MAX 64     /* EVP_MAX_MD_SIZE */
#define MASTER_KEY_LEN 48 /* SSL3_MASTER_SECRET_SIZE */
#define CLIENT_RANDOM_LEN 32

struct tls_keys_rec {
	struct rec_hdr h;
	__u64 conn;
	__u32 pid;
	__u32 tid;
	__u32 version;        /* the protocol version, e.g. 0x0304 */
	__u32 cipher_id;      /* SSL_CIPHER.id of the session, e.g. 0x03001302 */
	__u32 master_key_len; /* SSL_SESSION.master_key_length */
	__u32 lib_idx;
	__u8 client_random[CLIENT_RANDOM_LEN];
	__u8 master_key[MASTER_KEY_LEN];          /* TLS 1.2 and earlier */
	__u8 handshake_secret[SECRET_MAX];        /* TLS 1.3 from here on */
	__u8 handshake_traffic_hash[SECRET_MAX];
	__u8 client_app_secret[SECRET_MAX];
	__u8 server_app_secret[SECRET_MAX];
	__u8 exporter_secret[SECRET_MAX];
};

/* secret_rec.label: the NSS key log labels. */
#define SECRET_CLIENT_RANDOM 1
#define SECRET_CLIENT_HANDSHAKE 2
#define SECRET_SERVER_HANDSHAKE 3
#define SECRET_CLIENT_TRAFFIC_0 4
#define SECRET_SERVER_TRAFFIC_0 5
#define SECRET_EXPORTER 6
#define SECRET_CLIENT_EARLY 7

/* One key log line's secret, for libraries that hand secrets out whole
 * (Go's crypto/tls key log writer, BoringSSL's ssl_log_secret). */
struct secret_rec {
	struct rec_hdr h;
	__u64 conn; /* the connection (as chunk_rec.conn), 0: unknown */
	__u32 pid;
	__u32 label;      /* SECRET_* */
	__u32 secret_len; /* <= SECRET_MAX */
	__u32 _pad;
	__u8 client_random[CLIENT_RANDOM_LEN];
	__u8 secret[SECRET_MAX];
};

/* ---- counters ------------------------------------------------------------- */

/* Indexes into each object's per-CPU "stats" map: failures on the BPF side. */
#define STAT_OUTPUT_FAIL 0   /* ring buffer full: a record lost */
#define STAT_READ_USER_FAIL 1 /* user buffer unreadable: chunk lost */
#define STAT_SLOT_BUSY 2     /* no scratch slot free: whole call lost */
#define STAT_ACTIVE_FULL 3   /* too many threads inside calls: call lost */
#define STAT_READ_LEN_FAIL 4 /* length out-parameter unreadable: call lost */
#define STAT_COUNT 5

/* ---- configuration (.rodata, written before load) ------------------------- */

/* Every object: the variable `common_cfg` (bpf/common.h). */
struct common_cfg {
	__u32 target_pid;   /* 0 = all */
	__u32 target_uid;   /* 0 = all */
	__u32 capture_cap;  /* bytes per call, <= MAX_CAPTURE_CAP */
	__u32 source;       /* this object's number, stamped on its records */
	__u32 wakeup_bytes; /* wake the reader once this much is waiting */
	__u32 max_chunks;   /* chunks per call at most: capture_cap / CHUNK_DATA_SIZE, rounded up */
	__u32 self_pid;     /* ecapture's own process: never captured */
};

/* OpenSSL / BoringSSL (bpf/openssl.bpf.c): the variable `openssl_cfg`. */
#define MAX_LIBS 16

/* The attach cookie of the SSL_{read,write}[_ex] uprobes: which library
 * (index into openssl_cfg.libs) and which function. */
#define COOKIE_LIB_MASK 0xff
#define COOKIE_WRITE 0x100
#define COOKIE_EX 0x200

/* lib_offsets.flags */
#define LIB_F_BIO 0x1        /* bio_num / bio_method are known: the fd may come from the BIO */
#define LIB_F_VERSION_S3 0x2 /* BoringSSL: when ssl_version holds no TLS version, it is in s3 */
#define LIB_F_MEM_BIO 0x4    /* OpenSSL's memory BIO is known: BIO.ptr at bio_num + 8... */
#define LIB_F_MEM_READP 0x8  /* ...to {BUF_MEM *buf, *readp} (1.1.0 on), else to the BUF_MEM */

/* Offsets into OpenSSL's or BoringSSL's private structs, per attached
 * library (src/modules/openssl/version.rs). */
struct lib_offsets {
	__u32 ssl_version;     /* the protocol version in SSL (its low 16 bits) */
	__u32 ssl_s3;          /* LIB_F_VERSION_S3: the SSL3_STATE pointer in SSL... */
	__u32 s3_version;      /* ...and the (16-bit) version in it */
	__u32 ssl_rbio;
	__u32 ssl_wbio;
	__u32 bio_num;
	__u32 bio_method;
	__u32 ssl_server;      /* the byte of SSL holding the role (SSL_is_server); 0 = unknown */
	__u32 ssl_server_mask; /* its bits that are set on the server side */
	__u32 flags;           /* LIB_F_* */
	__u32 valid;
};

/* key_offsets.flags */
#define KEY_F_S3_PTR 0x1 /* client_random is in the SSL3_STATE behind ssl_s3 (1.1.1), else in the SSL */
#define KEY_F_LOG_SECRET 0x2 /* BoringSSL: secrets read at ssl_log_secret (only ssl_s3, client_random used) */

/* Where a library keeps the secrets (tests/keylog/offsets.sh computes them
 * from each release's source). */
struct key_offsets {
	__u32 valid; /* 0: unknown layout, no keys read */
	__u32 flags; /* KEY_F_* */
	__u32 ssl_s3;
	__u32 client_random;
	__u32 ssl_session;
	__u32 sess_master_key_len;
	__u32 sess_master_key;
	__u32 sess_cipher;
	__u32 cipher_id;
	__u32 handshake_secret; /* 0: the version has no TLS 1.3 */
	__u32 handshake_traffic_hash;
	__u32 client_app_secret;
	__u32 server_app_secret;
	__u32 exporter_secret;
};

struct openssl_cfg {
	__u32 nr_libs;
	struct lib_offsets libs[MAX_LIBS];
	struct key_offsets keys[MAX_LIBS];
	__u32 keylog; /* 1: send each connection's secrets (REC_TLS_KEYS) */
};

/* GnuTLS (bpf/gnutls.bpf.c): the variable `gnutls_cfg`, one object per
 * library. Offsets into gnutls_session_int (security_parameters first). */
struct gnutls_cfg {
	__u32 pversion;   /* security_parameters.pversion: const version_entry_st * */
	__u32 version_id; /* version_entry_st.id: gnutls_protocol_t */
	__u32 entity;     /* security_parameters.entity: GNUTLS_SERVER (1) or GNUTLS_CLIENT (2) */
	__u32 valid;      /* 0: offsets unknown (version and role not read) */
};

/* Go's crypto/tls (bpf/gotls.bpf.c): the variable `gotls_cfg`, one object
 * per executable. Offsets into crypto/tls.Conn, valid per GOTLS_F_*. */
#define GOTLS_F_ROLE 0x1 /* is_client is known */
#define GOTLS_F_VERS 0x2 /* vers is known */
#define GOTLS_F_SYSFD 0x4 /* sysfd is known */
struct gotls_cfg {
	__u32 is_client; /* Conn.isClient (bool) */
	__u32 vers;      /* Conn.vers (uint16): the negotiated TLS version */
	__u32 flags;     /* GOTLS_F_* */
	__u32 sysfd;     /* internal/poll.FD.Sysfd (int) */
};

/* ---- checks ------------------------------------------------------------------ */

#define ABI_ASSERT(what, cond) _Static_assert(cond, what)
ABI_ASSERT("rec_hdr is 16 bytes", sizeof(struct rec_hdr) == 16);
ABI_ASSERT("chunk_rec is 128 bytes", sizeof(struct chunk_rec) == 128);
ABI_ASSERT("chunk_rec.conn at 24", __builtin_offsetof(struct chunk_rec, conn) == 24);
ABI_ASSERT("chunk_rec.family at 72", __builtin_offsetof(struct chunk_rec, family) == 72);
ABI_ASSERT("chunk_rec.comm at 112", __builtin_offsetof(struct chunk_rec, comm) == 112);
ABI_ASSERT("close_rec is 32 bytes", sizeof(struct close_rec) == 32);
ABI_ASSERT("common_cfg is 28 bytes", sizeof(struct common_cfg) == 28);
ABI_ASSERT("lib_offsets is 44 bytes", sizeof(struct lib_offsets) == 44);
ABI_ASSERT("key_offsets is 56 bytes", sizeof(struct key_offsets) == 56);
ABI_ASSERT("openssl_cfg is 1608 bytes", sizeof(struct openssl_cfg) == 4 + MAX_LIBS * 44 + MAX_LIBS * 56 + 4);
ABI_ASSERT("tls_keys_rec is 448 bytes", sizeof(struct tls_keys_rec) == 448);
ABI_ASSERT("secret_rec is 136 bytes", sizeof(struct secret_rec) == 136);
ABI_ASSERT("gnutls_cfg is 16 bytes", sizeof(struct gnutls_cfg) == 16);
ABI_ASSERT("gotls_cfg is 16 bytes", sizeof(struct gotls_cfg) == 16);
ABI_ASSERT("a chunk record fits a ring record", sizeof(struct chunk_rec) + CHUNK_DATA_SIZE < 65536);

#endif /* ECAPTURE_ABI_H */
