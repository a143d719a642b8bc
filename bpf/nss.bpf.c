// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The `nss` module: NSS plaintext, taken where applications hand it to
 * NSPR: PR_Write / PR_Read / PR_Send / PR_Recv in libnspr4 (entry: remember;
 * return: send what moved). PR_Close ends the connection.
 *
 * NSPR carries files, pipes and plain sockets through the same calls, so
 * each call's PRFileDesc is classified before anything is sent:
 * - it is TLS when SSL_ImportFD returned it (libssl3, learnt while we run),
 *   when its layer identity is the one SSL_ImportFD's layers have in this
 *   process, or when its private data is an sslSocket, whose first field
 *   points back to the PRFileDesc (connections older than ecapture);
 * - a descriptor with no layer below it is NSPR's own file or socket: plain,
 *   not captured;
 * - any other layered descriptor is sent marked CHUNK_F_MAYBE_PLAIN.
 * The role comes from SSL_ResetHandshake(fd, asServer). NSS's TLS version
 * is in private structs without a stable layout: it is not read (0).
 */
#include "common.h"

/* struct PRFileDesc (prio.h), stable since NSPR 4.0: methods, secret,
 * lower, higher, dtor, identity. */
#define PRFD_SECRET 8
#define PRFD_LOWER 16
#define PRFD_IDENTITY 40

/* nss_tls values */
#define NSS_TLS 1
#define NSS_TLS_CLIENT 2
#define NSS_TLS_SERVER 3

/* (process, PRFileDesc*) known to be TLS: NSS_TLS*. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, __u32);
} nss_tls SEC(".maps");

/* process -> the layer identity of SSL_ImportFD's layers there. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __s32);
} nss_ident SEC(".maps");

static __always_inline void entry(__u64 fd, __u64 buf, __u8 dir)
{
	call_begin(fd, buf, 0, 0, dir, 0);
}

/* PR_Write(fd, buf, amount), PR_Send(fd, buf, amount, flags, timeout) */
SEC("uprobe")
int BPF_KPROBE(nss_write_entry, void *fd, void *buf)
{
	entry((__u64)fd, (__u64)buf, DIR_WRITE);
	return 0;
}

/* PR_Read(fd, buf, amount), PR_Recv(fd, buf, amount, flags, timeout) */
SEC("uprobe")
int BPF_KPROBE(nss_read_entry, void *fd, void *buf)
{
	entry((__u64)fd, (__u64)buf, DIR_READ);
	return 0;
}

/* What fd is: NSS_TLS* when TLS, 0 when plain, -1 when it cannot be told. */
static __always_inline int classify(__u64 fd)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct conn_key k = {.tgid = tgid, .conn = fd};
	__u32 *known = bpf_map_lookup_elem(&nss_tls, &k);
	if (known)
		return *known;

	__u64 lower = 0, secret = 0, back = 0;
	__s32 identity = 0;
	if (bpf_probe_read_user(&lower, sizeof(lower), (void *)(fd + PRFD_LOWER)))
		return -1;
	if (!lower)
		return 0;
	if (!bpf_probe_read_user(&identity, sizeof(identity), (void *)(fd + PRFD_IDENTITY))) {
		__s32 *ssl = bpf_map_lookup_elem(&nss_ident, &tgid);
		if (ssl && identity > 0 && *ssl == identity)
			return NSS_TLS;
	}
	if (!bpf_probe_read_user(&secret, sizeof(secret), (void *)(fd + PRFD_SECRET)) && secret &&
	    !bpf_probe_read_user(&back, sizeof(back), (void *)secret) && back == fd) {
		__u32 v = NSS_TLS;
		bpf_map_update_elem(&nss_tls, &k, &v, BPF_NOEXIST);
		return NSS_TLS;
	}
	return -1;
}

/* The call's fd and flags when its descriptor is (or may be) TLS; 0 for
 * plain I/O, which is not captured. */
static __always_inline int tls_call_info(const struct call_ctx *c, struct call_info *info)
{
	int kind = classify(c->conn);
	if (kind == 0)
		return 0;
	call_fd(c, info);
	if (kind < 0)
		info->flags |= CHUNK_F_MAYBE_PLAIN;
	else if (kind == NSS_TLS_CLIENT)
		info->flags |= CHUNK_F_ROLE_KNOWN;
	else if (kind == NSS_TLS_SERVER)
		info->flags |= CHUNK_F_ROLE_KNOWN | CHUNK_F_SERVER;
	return 1;
}

/* Every call returns the bytes moved (PRInt32), or -1. */
SEC("uretprobe")
int BPF_KRETPROBE(nss_rw_return)
{
	struct call_ctx c;
	if (call_take(&c))
		return 0;
	int ret = (int)PT_REGS_RC(ctx);
	struct call_info info = {};
	if (ret > 0 && tls_call_info(&c, &info))
		call_emit(&c, (__u64)ret, &info);
	return 0;
}

#ifndef ECAP_COMPAT
/* PR_Writev(fd, const PRIOVec *iov, PRInt32 iov_size, timeout), as selfserv
 * answers: each buffer goes out as a call of its own (the assembler joins
 * them). At most NSS_WRITEV_MAX buffers; modern kernels only (the compat
 * build's chunk loop, inlined once per buffer, would not verify). */
#define NSS_WRITEV_MAX 8

SEC("uprobe")
int BPF_KPROBE(nss_writev_entry, void *fd, void *iov, int iov_size)
{
	/* The vector's length travels in len_ptr (no length out-parameter). */
	call_begin((__u64)fd, (__u64)iov, iov_size > 0 ? (__u64)iov_size : 0, 0, DIR_WRITE, 0);
	return 0;
}

struct writev_ctx {
	struct call_ctx c; /* c.buf: the vector; c.len_ptr: its length */
	struct call_info info;
	__u64 left;
};

/* Buffer i of the vector as a call of its own; 1 to stop. */
static long writev_one(__u32 i, void *arg)
{
	struct writev_ctx *w = arg;
	struct {
		__u64 base;
		__s32 len;
		__s32 _pad;
	} v = {};
	if (i >= w->c.len_ptr || !w->left)
		return 1;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)(w->c.buf + (__u64)i * 16)))
		return 1;
	if (v.len <= 0)
		return 0;
	__u64 n = (__u64)v.len < w->left ? (__u64)v.len : w->left;
	struct call_ctx one = w->c;
	one.buf = v.base;
	call_emit(&one, n, &w->info);
	w->left -= n;
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(nss_writev_return)
{
	struct call_ctx c;
	if (call_take(&c))
		return 0;
	int ret = (int)PT_REGS_RC(ctx);
	struct writev_ctx w = {.c = c, .left = (__u32)ret};
	if (ret <= 0 || !tls_call_info(&c, &w.info))
		return 0;
	bpf_loop(NSS_WRITEV_MAX, writev_one, &w, 0);
	return 0;
}
#endif

/* SSL_ImportFD(model, fd) returns the TLS descriptor (the top layer). */
SEC("uretprobe")
int BPF_KRETPROBE(nss_import_return)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 fd = PT_REGS_RC(ctx);
	if (filtered_out(id) || !fd)
		return 0;
	__u32 tgid = id >> 32;
	struct conn_key k = {.tgid = tgid, .conn = fd};
	__u32 v = NSS_TLS;
	bpf_map_update_elem(&nss_tls, &k, &v, BPF_NOEXIST);
	__s32 identity = 0;
	if (!bpf_probe_read_user(&identity, sizeof(identity), (void *)(fd + PRFD_IDENTITY)))
		bpf_map_update_elem(&nss_ident, &tgid, &identity, BPF_ANY);
	return 0;
}

/* SSL_ResetHandshake(fd, asServer): the role. */
SEC("uprobe")
int BPF_KPROBE(nss_reset_handshake_entry, void *fd, int as_server)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (filtered_out(id) || !fd)
		return 0;
	struct conn_key k = {.tgid = id >> 32, .conn = (__u64)fd};
	__u32 v = as_server ? NSS_TLS_SERVER : NSS_TLS_CLIENT;
	bpf_map_update_elem(&nss_tls, &k, &v, BPF_ANY);
	return 0;
}

/* PR_Close(fd): the end of a connection we know of (files are not told). */
SEC("uprobe")
int BPF_KPROBE(nss_close_entry, void *fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (filtered_out(id) || !fd)
		return 0;
	struct conn_key k = {.tgid = id >> 32, .conn = (__u64)fd};
	int known = bpf_map_lookup_elem(&nss_tls, &k) != 0 || bpf_map_lookup_elem(&conn_fds, &k) != 0;
	bpf_map_delete_elem(&nss_tls, &k);
	if (known)
		emit_close((__u64)fd);
	return 0;
}
