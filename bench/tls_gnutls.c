// SPDX-License-Identifier: Apache-2.0
/* tlsload's GnuTLS backend: gnutls_record_send / gnutls_record_recv (the
 * `gnutls` module probes gnutls_record_send2, which send calls, and recv). */
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tls.h"

static gnutls_certificate_credentials_t server_cred, client_cred;
static int last_error;

int tls_setup(const char *cert, const char *key)
{
	if ((last_error = gnutls_certificate_allocate_credentials(&server_cred)) < 0 ||
	    (last_error = gnutls_certificate_allocate_credentials(&client_cred)) < 0 ||
	    (last_error = gnutls_certificate_set_x509_key_file(server_cred, cert, key, GNUTLS_X509_FMT_PEM)) < 0)
		return -1;
	return 0;
}

static struct tls *handshake(int fd, unsigned flags, gnutls_certificate_credentials_t cred)
{
	gnutls_session_t s;
	if ((last_error = gnutls_init(&s, flags)) < 0)
		return NULL;
	if ((last_error = gnutls_set_default_priority(s)) < 0 ||
	    (last_error = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred)) < 0)
		goto fail;
	gnutls_transport_set_int(s, fd);
	do
		last_error = gnutls_handshake(s);
	while (last_error < 0 && !gnutls_error_is_fatal(last_error));
	if (last_error < 0)
		goto fail;
	return (struct tls *)s;
fail:
	gnutls_deinit(s);
	return NULL;
}

struct tls *tls_accept(int fd)
{
	return handshake(fd, GNUTLS_SERVER, server_cred);
}

/* The client does not verify the server (no verification function set). */
struct tls *tls_connect(int fd)
{
	return handshake(fd, GNUTLS_CLIENT, client_cred);
}

long tls_write(struct tls *t, const void *buf, long len)
{
	ssize_t r;
	do
		r = gnutls_record_send((gnutls_session_t)t, buf, (size_t)len);
	while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
	if (r < 0)
		last_error = (int)r;
	return r;
}

long tls_read(struct tls *t, void *buf, long len)
{
	ssize_t r;
	do
		r = gnutls_record_recv((gnutls_session_t)t, buf, (size_t)len);
	while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
	if (r < 0)
		last_error = (int)r;
	return r;
}

void tls_close(struct tls *t)
{
	gnutls_session_t s = (gnutls_session_t)t;
	int fd = gnutls_transport_get_int(s);
	gnutls_bye(s, GNUTLS_SHUT_WR);
	gnutls_deinit(s);
	close(fd);
}

void tls_print_errors(void)
{
	if (last_error < 0)
		fprintf(stderr, "gnutls: %s\n", gnutls_strerror(last_error));
}
