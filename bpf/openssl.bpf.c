// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The `tls` module: OpenSSL and BoringSSL plaintext.
 *
 * Entry uprobes on SSL_{read,write}[_ex] remember the call per thread; the
 * return uprobe sends exactly the bytes transferred (bpf/common.h). The
 * socket fd comes, in order of trust, from a socket syscall the thread makes
 * during the call (works with any BIO), from what an earlier call or
 * SSL_set_fd taught us about this SSL*, or from the SSL's BIO through the
 * per-version offsets of openssl_cfg (when that BIO's layout is known). The
 * same offsets give the TLS version and the role. SSL_free ends the
 * connection.
 *
 * Key log (openssl_cfg.keylog): once a connection's handshake is done (the
 * return of SSL_do_handshake, else of its first successful read or write),
 * its secrets are read where OpenSSL keeps them (openssl_cfg.keys) and sent
 * once per handshake (REC_TLS_KEYS). BoringSSL frees its handshake secrets
 * once the handshake is over: its secrets are read as it makes them, at the
 * entry of bssl::ssl_log_secret (KEY_F_LOG_SECRET; REC_SECRET records).
 */
#include "common.h"

/* BIO_TYPE_SOCKET and BIO_TYPE_FD (type numbers | descriptor flags): the same
 * in OpenSSL and BoringSSL (tests/boringssl/offsets.cc checks the latter). */
#define BIO_TYPE_SOCKET (5 | 0x0400 | 0x0100)
#define BIO_TYPE_FD (4 | 0x0400 | 0x0100)

const volatile struct openssl_cfg openssl_cfg = {};

/* This module's record, named in the BTF for the layout check (as common.h's abi_types). */
struct tls_keys_rec openssl_abi_types SEC(".abi") __attribute__((used));

/* The client random whose secrets were sent, per connection (its first 8
 * bytes): a new handshake on the same SSL (renegotiation, reuse after
 * SSL_clear) has a new one. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, __u64);
} keys_sent SEC(".maps");

/* SSL_set_fd / SSL_set_rfd / SSL_set_wfd (SSL *s, int fd): the fd at once. */
SEC("uprobe")
int BPF_KPROBE(ssl_set_fd_entry, void *ssl, int fd)
{
	if (filtered_out(bpf_get_current_pid_tgid()) || fd < 0)
		return 0;
	conn_fd_set((__u64)ssl, fd);
	return 0;
}

/* SSL_free(SSL *s): the connection is over. */
SEC("uprobe")
int BPF_KPROBE(ssl_free_entry, void *ssl)
{
	struct conn_key k = {.tgid = bpf_get_current_pid_tgid() >> 32, .conn = (__u64)ssl};
	bpf_map_delete_elem(&keys_sent, &k);
	emit_close((__u64)ssl);
	return 0;
}

static const volatile struct lib_offsets no_lib;

/* The offsets of library idx (in .rodata: a copy would take a large part
 * of the return probe's stack); valid == 0 when there are none. The mask
 * keeps the index provably in bounds for verifiers (6.1) that lose the
 * check's bound when the compiler reloads the index from the stack. */
static __always_inline const volatile struct lib_offsets *lib_off(__u32 idx)
{
	if (idx >= MAX_LIBS)
		return &no_lib;
	barrier_var(idx);
	idx &= MAX_LIBS - 1;
	return &openssl_cfg.libs[idx];
}

/* The fd of the SSL's BIO when it is a socket or fd BIO, else -1. */
static __always_inline __s32 fd_from_bio(__u64 ssl, const volatile struct lib_offsets *o, __u8 dir)
{
	__u64 bio = 0, method = 0;
	__s32 type = 0, fd = -1;

	if (!o->valid || !(o->flags & LIB_F_BIO))
		return -1;
	if (bpf_probe_read_user(&bio, sizeof(bio),
				(void *)(ssl + (dir == DIR_WRITE ? o->ssl_wbio : o->ssl_rbio))) || !bio)
		return -1;
	if (bpf_probe_read_user(&method, sizeof(method), (void *)(bio + o->bio_method)) || !method)
		return -1;
	if (bpf_probe_read_user(&type, sizeof(type), (void *)method))
		return -1;
	if (type != BIO_TYPE_SOCKET && type != BIO_TYPE_FD)
		return -1;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(bio + o->bio_num)))
		return -1;
	return fd;
}

/* OpenSSL's BIO_TYPE_MEM. */
#define BIO_TYPE_MEM (1 | 0x0400)

/* The first bytes (up to MEM_HEAD) of what the SSL's read or write BIO
 * holds unread, when it is an OpenSSL memory BIO; 0 otherwise. */
static __always_inline __u32 mem_bio_head(__u64 ssl, const volatile struct lib_offsets *o, __u8 dir, __u8 *head)
{
	__u64 bio = 0, method = 0, ptr = 0, bm = 0, data = 0, length = 0;
	__s32 type = 0;

	if (!o->valid || !(o->flags & LIB_F_MEM_BIO))
		return 0;
	if (bpf_probe_read_user(&bio, sizeof(bio), (void *)(ssl + (dir == DIR_WRITE ? o->ssl_wbio : o->ssl_rbio))) ||
	    !bio)
		return 0;
	if (bpf_probe_read_user(&method, sizeof(method), (void *)(bio + o->bio_method)) || !method ||
	    bpf_probe_read_user(&type, sizeof(type), (void *)method) || type != BIO_TYPE_MEM)
		return 0;
	if (bpf_probe_read_user(&ptr, sizeof(ptr), (void *)(bio + o->bio_num + 8)) || !ptr)
		return 0;
	bm = ptr;
	if ((o->flags & LIB_F_MEM_READP) && (bpf_probe_read_user(&bm, sizeof(bm), (void *)(ptr + 8)) || !bm))
		return 0;
	/* BUF_MEM: {size_t length; char *data; ...} */
	if (bpf_probe_read_user(&length, sizeof(length), (void *)bm) ||
	    bpf_probe_read_user(&data, sizeof(data), (void *)(bm + 8)) || !data || !length)
		return 0;
	if (bpf_probe_read_user(head, MEM_HEAD, (void *)data))
		return 0;
	return length < MEM_HEAD ? (__u32)length : MEM_HEAD;
}

/* Whether conn's fd is known already. */
static __always_inline int conn_fd_known(__u64 conn)
{
	struct conn_key k = {.tgid = bpf_get_current_pid_tgid() >> 32, .conn = conn};
	return bpf_map_lookup_elem(&conn_fds, &k) != 0;
}

/* Before the SSL decrypts: a memory BIO's pending ciphertext names the
 * socket it was read from (bpf/common.h). */
static __always_inline void mem_learn_recv(__u64 ssl, __u32 lib_idx)
{
	if (filtered_out(bpf_get_current_pid_tgid()) || conn_fd_known(ssl))
		return;
	const volatile struct lib_offsets *o = lib_off(lib_idx);
	__u8 head[MEM_HEAD] = {};
	__u32 n = mem_bio_head(ssl, o, DIR_READ, head);
	if (n)
		mem_match_recv(ssl, head, n);
}

/* After the SSL encrypted: its memory BIO's pending ciphertext is what the
 * thread writes next to the socket. */
static __always_inline void mem_learn_send(__u64 ssl, __u32 lib_idx)
{
	if (filtered_out(bpf_get_current_pid_tgid()) || conn_fd_known(ssl))
		return;
	const volatile struct lib_offsets *o = lib_off(lib_idx);
	__u8 head[MEM_HEAD] = {};
	__u32 n = mem_bio_head(ssl, o, DIR_WRITE, head);
	if (n)
		mem_expect_send(ssl, head, n);
}

/* SSL_{read,write}[_ex](SSL *s, void *buf, int/size_t num[, size_t *moved]). */
static __always_inline void on_entry(struct pt_regs *ctx, __u8 is_ex, __u8 dir, __u32 lib_idx)
{
	if (dir == DIR_READ)
		mem_learn_recv(PT_REGS_PARM1(ctx), lib_idx);
	call_begin(PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), is_ex ? PT_REGS_PARM4(ctx) : 0, is_ex, dir, lib_idx);
}

#ifndef ECAP_COMPAT
/* One program for the four functions; the attach cookie says which, and
 * which library. */
SEC("uprobe")
int BPF_KPROBE(ssl_rw_entry)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	on_entry(ctx, (cookie & COOKIE_EX) != 0, (cookie & COOKIE_WRITE) ? DIR_WRITE : DIR_READ,
		 cookie & COOKIE_LIB_MASK);
	return 0;
}
#else
/* Without attach cookies: one program per function, and one object per
 * library (its offsets in libs[0]). */
#define ENTRY(prog, is_ex, dir)                 \
	SEC("uprobe")                           \
	int BPF_KPROBE(prog)                    \
	{                                       \
		on_entry(ctx, is_ex, dir, 0);   \
		return 0;                       \
	}

ENTRY(ssl_write_entry, 0, DIR_WRITE)
ENTRY(ssl_read_entry, 0, DIR_READ)
ENTRY(ssl_write_ex_entry, 1, DIR_WRITE)
ENTRY(ssl_read_ex_entry, 1, DIR_READ)
#endif

/* SSL 3.0 to TLS 1.3, DTLS 1.0 (and OpenSSL's pre-standard one) to 1.3. */
static __always_inline int is_tls_version(__u16 v)
{
	return (v >= 0x0300 && v <= 0x0304) || v == 0xfeff || v == 0xfefd || v == 0xfefc || v == 0x0100;
}

/* The protocol version of the SSL; 0 when unknown. BoringSSL moved it from
 * the SSL into its SSL3_STATE (2025): there, the SSL's old place holds
 * max_send_fragment (512 to 16384, never a TLS version), so a value that is
 * not a version there means "look in s3" (LIB_F_VERSION_S3). */
static __always_inline __u32 ssl_version(__u64 ssl, const volatile struct lib_offsets *o)
{
	__u16 v = 0;
	__u64 s3 = 0;

	bpf_probe_read_user(&v, sizeof(v), (void *)(ssl + o->ssl_version));
	if (!(o->flags & LIB_F_VERSION_S3) || is_tls_version(v))
		return v;
	v = 0;
	if (bpf_probe_read_user(&s3, sizeof(s3), (void *)(ssl + o->ssl_s3)) || !s3)
		return 0;
	bpf_probe_read_user(&v, sizeof(v), (void *)(s3 + o->s3_version));
	return is_tls_version(v) ? v : 0;
}

/* ---- key log ------------------------------------------------------------- */

/* Sends the secrets of ssl (library lib_idx) unless they were sent for this
 * handshake already. A function of its own: the callers' paths stay small. */
static __noinline int emit_keys(__u64 ssl, __u32 lib_idx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 cr = 0, s3 = 0, sess = 0, cipher = 0, mk_len = 0;
	__u32 idx = lib_idx;

	if (!openssl_cfg.keylog || idx >= MAX_LIBS || !ssl)
		return 0;
	barrier_var(idx);
	idx &= MAX_LIBS - 1;
	if (!openssl_cfg.keys[idx].valid || (openssl_cfg.keys[idx].flags & KEY_F_LOG_SECRET))
		return 0;
	__u64 random_at = ssl + openssl_cfg.keys[idx].client_random;
	if (openssl_cfg.keys[idx].flags & KEY_F_S3_PTR) {
		if (bpf_probe_read_user(&s3, sizeof(s3), (void *)(ssl + openssl_cfg.keys[idx].ssl_s3)) || !s3)
			return 0;
		random_at = s3 + openssl_cfg.keys[idx].client_random;
	}
	if (bpf_probe_read_user(&cr, sizeof(cr), (void *)random_at) || !cr)
		return 0;
	struct conn_key k = {.tgid = id >> 32, .conn = ssl};
	__u64 *sent = bpf_map_lookup_elem(&keys_sent, &k);
	if (sent && *sent == cr)
		return 0;
	if (bpf_probe_read_user(&sess, sizeof(sess), (void *)(ssl + openssl_cfg.keys[idx].ssl_session)) || !sess)
		return 0;

	struct tls_keys_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count(STAT_OUTPUT_FAIL);
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->h.ts_ns = bpf_ktime_get_ns();
	r->h.kind = REC_TLS_KEYS;
	r->h.source = common_cfg.source;
	r->conn = ssl;
	r->pid = id >> 32;
	r->tid = (__u32)id;
	r->lib_idx = lib_idx;
	const volatile struct lib_offsets *o = lib_off(lib_idx);
	if (o->valid)
		r->version = ssl_version(ssl, o);
	bpf_probe_read_user(r->client_random, sizeof(r->client_random), (void *)random_at);
	bpf_probe_read_user(&mk_len, sizeof(mk_len), (void *)(sess + openssl_cfg.keys[idx].sess_master_key_len));
	r->master_key_len = mk_len > SECRET_MAX ? SECRET_MAX : (__u32)mk_len;
	bpf_probe_read_user(r->master_key, sizeof(r->master_key), (void *)(sess + openssl_cfg.keys[idx].sess_master_key));
	if (!bpf_probe_read_user(&cipher, sizeof(cipher), (void *)(sess + openssl_cfg.keys[idx].sess_cipher)) && cipher)
		bpf_probe_read_user(&r->cipher_id, sizeof(r->cipher_id), (void *)(cipher + openssl_cfg.keys[idx].cipher_id));
	if (openssl_cfg.keys[idx].handshake_secret) {
		bpf_probe_read_user(r->handshake_secret, SECRET_MAX, (void *)(ssl + openssl_cfg.keys[idx].handshake_secret));
		bpf_probe_read_user(r->handshake_traffic_hash, SECRET_MAX,
				    (void *)(ssl + openssl_cfg.keys[idx].handshake_traffic_hash));
		bpf_probe_read_user(r->client_app_secret, SECRET_MAX, (void *)(ssl + openssl_cfg.keys[idx].client_app_secret));
		bpf_probe_read_user(r->server_app_secret, SECRET_MAX, (void *)(ssl + openssl_cfg.keys[idx].server_app_secret));
		bpf_probe_read_user(r->exporter_secret, SECRET_MAX, (void *)(ssl + openssl_cfg.keys[idx].exporter_secret));
	}
	/* Keys are few and someone may be waiting for them: wake the reader. */
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
	bpf_map_update_elem(&keys_sent, &k, &cr, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_rw_return)
{
	struct call_ctx c;
	if (call_take(&c))
		return 0;

	/* SSL_read/SSL_write return the byte count; the _ex variants return 1
	 * and write the count to *len_ptr. */
	__u64 n;
	long ret = PT_REGS_RC(ctx);
	if (c.len_out) {
		__u64 moved = 0;
		if ((int)ret != 1)
			return 0;
		if (bpf_probe_read_user(&moved, sizeof(moved), (void *)c.len_ptr)) {
			count(STAT_READ_LEN_FAIL);
			return 0;
		}
		n = moved;
	} else {
		if ((int)ret <= 0)
			return 0;
		n = (__u32)(int)ret;
	}
	if (n == 0)
		return 0;

	const volatile struct lib_offsets *o = lib_off(c.lib_idx);
	struct call_info info = {};
	struct conn_state *st = call_fd(&c, &info);
	if (info.fd < 0) {
		info.fd = fd_from_bio(c.conn, o, c.dir);
		if (info.fd >= 0) {
			info.flags |= CHUNK_F_FD_LIB;
			conn_fd_set(c.conn, info.fd);
		}
	}
	if (!meta_known(st, &info) && o->valid) {
		info.tls_version = ssl_version(c.conn, o);
		if (o->ssl_server) {
			__u8 role = 0;
			if (!bpf_probe_read_user(&role, sizeof(role), (void *)(c.conn + o->ssl_server)))
				info.flags |= CHUNK_F_ROLE_KNOWN | ((role & o->ssl_server_mask) ? CHUNK_F_SERVER : 0);
		}
		meta_remember(st, &info);
	}
	emit_keys(c.conn, c.lib_idx);
	call_emit(&c, n, &info);
	if (c.dir == DIR_WRITE && info.fd < 0)
		mem_learn_send(c.conn, c.lib_idx);
	return 0;
}

/* SSL_do_handshake(SSL *s): a memory BIO's connection is learnt from the
 * handshake's records as from data (attach cookie: the library). */
static __always_inline __u32 handshake_lib(struct pt_regs *ctx)
{
#ifndef ECAP_COMPAT
	return bpf_get_attach_cookie(ctx) & COOKIE_LIB_MASK;
#else
	return 0;
#endif
}

/* The SSL of a handshake in progress, per thread (for its return). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} handshakes SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(ssl_handshake_entry, void *ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 conn = (__u64)ssl;
	mem_learn_recv(conn, handshake_lib(ctx));
	if (!filtered_out(id))
		bpf_map_update_elem(&handshakes, &id, &conn, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_handshake_return)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 *conn = bpf_map_lookup_elem(&handshakes, &id);
	if (!conn)
		return 0;
	__u64 ssl = *conn;
	bpf_map_delete_elem(&handshakes, &id);
	mem_learn_send(ssl, handshake_lib(ctx));
	if ((int)PT_REGS_RC(ctx) == 1)
		emit_keys(ssl, handshake_lib(ctx));
	return 0;
}

/* BoringSSL's bssl::ssl_log_secret(const SSL *ssl, const char *label,
 * Span<const uint8_t> secret) — older: (ssl, label, const uint8_t *secret,
 * size_t len), the same registers. BoringSSL calls it for every secret it
 * derives, at the moment it does, and only then looks whether the program
 * set a key log callback: it fires for every handshake. The client random
 * is ssl->s3->client_random (attach cookie: the library). */
SEC("uprobe")
int BPF_KPROBE(ssl_log_secret_entry, void *ssl, const char *label, const void *secret, __u64 len)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 idx = handshake_lib(ctx);
	if (!openssl_cfg.keylog || filtered_out(id) || !ssl || idx >= MAX_LIBS)
		return 0;
	barrier_var(idx);
	idx &= MAX_LIBS - 1;
	if (!openssl_cfg.keys[idx].valid || !(openssl_cfg.keys[idx].flags & KEY_F_LOG_SECRET))
		return 0;
	char l[32] = {};
	long n = bpf_probe_read_user_str(l, sizeof(l), label);
	if (n <= 1)
		return 0;
	__u32 kind = secret_label(n - 1, l[0]);
	__u64 s3 = 0;
	if (!kind || bpf_probe_read_user(&s3, sizeof(s3), (void *)((__u64)ssl + openssl_cfg.keys[idx].ssl_s3)) || !s3)
		return 0;
	emit_secret((__u64)ssl, kind, (void *)(s3 + openssl_cfg.keys[idx].client_random), secret, len);
	return 0;
}
