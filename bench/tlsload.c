// SPDX-License-Identifier: Apache-2.0
/*
 * tlsload: the TLS load `make bench` measures ecapture against. One process,
 * one TLS library (a build per library: tls.h), loopback TCP: C connections,
 * each a client thread doing N writes of S bytes (SSL_write, or the
 * library's own call; optionally at a fixed rate) and a server thread
 * reading them. Prints one JSON line:
 *
 *   {"writes":N*C,"bytes":...,"seconds":...,"us_per_write":...,"writes_per_s":...,
 *    "transfer_us_per_write":...,"cpu_us_per_write":...}
 *
 * us_per_write: the clients' time in their write loops per write (a client
 * runs ahead of its server by what the socket buffers hold);
 * transfer_us_per_write: from the first client's first write to the last
 * server's last byte, per write; cpu_us_per_write: the CPU time of the
 * client and server threads over the same span, per write (a uprobe and its
 * BPF programs run on the thread that hit them, so it includes their cost).
 *
 *   tlsload CERT KEY [-n writes] [-s size] [-c conns] [-r writes/s per conn] [-t] [-H]
 *
 * (the NSS build: tlsload-nss DBDIR NICKNAME ..., a certificate database
 * holding the server's certificate and key under that nickname)
 *
 * -t stamps each write: it carries "T<ns since epoch, 20 digits>:" (22
 * bytes, CLOCK_REALTIME at the write call) — at its start, or with -H
 * at the start of the body — so a consumer can measure latency.
 * -H makes each write a whole HTTP/1.1 request of `size` bytes (head and
 * body), so message assembly emits it at once instead of after an idle time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tls.h"

static long n_writes = 10000, size = 64, conns = 1, rate = 0;
static int stamp = 0, http = 0;

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "tlsload: %s: %s\n", what, errno ? strerror(errno) : "");
	tls_print_errors();
	exit(1);
}

struct conn {
	int lfd, port;
	double seconds;
	uint64_t cpu_ns; /* both threads' CPU time moving the data (after the handshakes) */
	uint64_t first_write, last_read; /* CLOCK_MONOTONIC */
};

static void *server(void *arg)
{
	struct conn *c = arg;
	int fd = accept(c->lfd, NULL, NULL);
	if (fd < 0)
		die("accept");
	struct tls *s = tls_accept(fd);
	if (!s)
		die("server handshake");
	char buf[65536];
	long want = n_writes * size, got = 0;
	uint64_t cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	while (got < want) {
		long r = tls_read(s, buf, sizeof(buf));
		if (r <= 0)
			die("read");
		got += r;
	}
	c->last_read = now_ns(CLOCK_MONOTONIC);
	__atomic_fetch_add(&c->cpu_ns, now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0, __ATOMIC_RELAXED);
	tls_write(s, "k", 1); /* done: the client may close */
	tls_close(s);
	return NULL;
}

static void *client(void *arg)
{
	struct conn *c = arg;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(c->port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct tls *s = tls_connect(fd);
	if (!s)
		die("client handshake");
	char *buf = malloc(size > 128 ? size : 128);
	memset(buf, 'x', size);
	int body_at = 0;
	if (http) {
		char head[96];
		int n = 0, len = 0;
		/* The head's own length depends on the digits of the body length. */
		for (int i = 0; i < 3; i++)
			len = snprintf(head, sizeof(head), "POST /load HTTP/1.1\r\nContent-Length: %ld\r\n\r\n", size - n), n = len;
		if (size < len + 24)
			die("-H needs -s of at least 80 bytes");
		memcpy(buf, head, len);
		body_at = len;
	}
	uint64_t start = now_ns(CLOCK_MONOTONIC), cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	c->first_write = start;
	for (long i = 0; i < n_writes; i++) {
		if (rate > 0) {
			uint64_t due = start + (uint64_t)(i * (1e9 / rate));
			uint64_t t = now_ns(CLOCK_MONOTONIC);
			if (t < due) {
				struct timespec d = {.tv_sec = (due - t) / 1000000000ull, .tv_nsec = (due - t) % 1000000000ull};
				nanosleep(&d, NULL);
			}
		}
		if (stamp && size >= 24) {
			char t[32];
			snprintf(t, sizeof(t), "T%020llu:", (unsigned long long)now_ns(CLOCK_REALTIME));
			memcpy(buf + body_at, t, 22);
		}
		if (tls_write(s, buf, size) != size)
			die("write");
	}
	c->seconds = (now_ns(CLOCK_MONOTONIC) - start) / 1e9;
	__atomic_fetch_add(&c->cpu_ns, now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0, __ATOMIC_RELAXED);
	char k;
	tls_read(s, &k, 1);
	tls_close(s);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: tlsload CERT KEY (NSS: DBDIR NICKNAME) [-n writes] [-s size] [-c conns] [-r rate] [-t] [-H]\n");
		return 2;
	}
	int opt;
	optind = 3;
	while ((opt = getopt(argc, argv, "n:s:c:r:tH")) != -1) {
		switch (opt) {
		case 'n': n_writes = atol(optarg); break;
		case 's': size = atol(optarg); break;
		case 'c': conns = atol(optarg); break;
		case 'r': rate = atol(optarg); break;
		case 't': stamp = 1; break;
		case 'H': http = 1; break;
		default: return 2;
		}
	}
	if (tls_setup(argv[1], argv[2]) != 0)
		die("certificate");
	struct conn *cs = calloc(conns, sizeof(*cs));
	pthread_t *ts = calloc(conns * 2, sizeof(*ts));
	for (long i = 0; i < conns; i++) {
		int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in sa = {.sin_family = AF_INET};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t len = sizeof(sa);
		if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0 ||
		    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
			die("listen");
		cs[i].lfd = lfd;
		cs[i].port = ntohs(sa.sin_port);
		pthread_create(&ts[2 * i], NULL, server, &cs[i]);
	}
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	for (long i = 0; i < conns; i++)
		pthread_create(&ts[2 * i + 1], NULL, client, &cs[i]);
	for (long i = 0; i < conns * 2; i++)
		pthread_join(ts[i], NULL);
	double wall = (now_ns(CLOCK_MONOTONIC) - t0) / 1e9, busy = 0, cpu = 0;
	uint64_t first = UINT64_MAX, last = 0;
	for (long i = 0; i < conns; i++) {
		busy += cs[i].seconds, cpu += cs[i].cpu_ns / 1e9;
		first = cs[i].first_write < first ? cs[i].first_write : first;
		last = cs[i].last_read > last ? cs[i].last_read : last;
	}
	long writes = n_writes * conns;
	printf("{\"writes\":%ld,\"bytes\":%ld,\"seconds\":%.6f,\"us_per_write\":%.3f,\"writes_per_s\":%.1f,\"transfer_us_per_write\":%.3f,\"cpu_us_per_write\":%.3f}\n",
	       writes, writes * size, wall, busy * 1e6 / writes, writes / wall, (last - first) / 1e3 / writes, cpu * 1e6 / writes);
	return 0;
}
