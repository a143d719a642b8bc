// SPDX-License-Identifier: Apache-2.0
/* tlsload's OpenSSL backend (the system's libssl): SSL_write / SSL_read. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <unistd.h>

#include "tls.h"

static SSL_CTX *sctx, *cctx;

int tls_setup(const char *cert, const char *key)
{
	sctx = SSL_CTX_new(TLS_server_method());
	cctx = SSL_CTX_new(TLS_client_method());
	if (!sctx || !cctx || SSL_CTX_use_certificate_file(sctx, cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM) != 1)
		return -1;
	return 0;
}

static struct tls *handshake(SSL_CTX *ctx, int fd, int (*step)(SSL *))
{
	SSL *s = SSL_new(ctx);
	if (!s)
		return NULL;
	SSL_set_fd(s, fd);
	if (step(s) != 1) {
		SSL_free(s);
		return NULL;
	}
	return (struct tls *)s;
}

struct tls *tls_accept(int fd)
{
	return handshake(sctx, fd, SSL_accept);
}

struct tls *tls_connect(int fd)
{
	return handshake(cctx, fd, SSL_connect);
}

long tls_write(struct tls *t, const void *buf, long len)
{
	return SSL_write((SSL *)t, buf, (int)len);
}

long tls_read(struct tls *t, void *buf, long len)
{
	return SSL_read((SSL *)t, buf, (int)len);
}

void tls_close(struct tls *t)
{
	SSL *s = (SSL *)t;
	int fd = SSL_get_fd(s);
	SSL_shutdown(s);
	SSL_free(s);
	close(fd);
}

void tls_print_errors(void)
{
	ERR_print_errors_fp(stderr);
}
