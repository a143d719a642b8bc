// SPDX-License-Identifier: Apache-2.0
/*
 * The TLS library under tlsload: one backend per library (tls_openssl.c,
 * tls_gnutls.c, tls_nss.c), each a build of its own (the Makefile). Every
 * read and write goes through the library's own application-data call, the
 * function ecapture's module for that library probes.
 */
#ifndef TLSLOAD_TLS_H
#define TLSLOAD_TLS_H

struct tls; /* one connection */

/* Once, before any thread: the server's credentials. OpenSSL and GnuTLS:
 * a PEM certificate and key; NSS: a certificate database directory and the
 * server certificate's nickname there. Returns 0, or -1. */
int tls_setup(const char *a, const char *b);
/* The handshake over a connected socket, which the connection then owns. */
struct tls *tls_accept(int fd);
struct tls *tls_connect(int fd);
/* Bytes moved (> 0), or <= 0 on failure. */
long tls_write(struct tls *t, const void *buf, long len);
long tls_read(struct tls *t, void *buf, long len);
/* Shutdown, free, close the socket. */
void tls_close(struct tls *t);
/* The library's pending error messages, to stderr. */
void tls_print_errors(void);

#endif
