// SPDX-License-Identifier: Apache-2.0
/* tlsload's NSS backend: PR_Write / PR_Read (libnspr4) on descriptors
 * SSL_ImportFD made TLS, what the `nss` module probes. The server's
 * certificate and key come from an NSS database (certutil -S). */
#include <nspr.h>
#include <nss.h>
#include <pk11pub.h>
#include <private/pprio.h>
#include <prerror.h>
#include <ssl.h>
#include <stdio.h>

#include "tls.h"

static CERTCertificate *cert;
static SECKEYPrivateKey *key;

int tls_setup(const char *dbdir, const char *nickname)
{
	if (NSS_Init(dbdir) != SECSuccess || NSS_SetDomesticPolicy() != SECSuccess ||
	    SSL_ConfigServerSessionIDCache(0, 0, 0, NULL) != SECSuccess)
		return -1;
	cert = PK11_FindCertFromNickname(nickname, NULL);
	key = cert ? PK11_FindKeyByAnyCert(cert, NULL) : NULL;
	return key ? 0 : -1;
}

/* The client trusts whatever the server shows. */
static SECStatus trust_all(void *arg, PRFileDesc *fd, PRBool checksig, PRBool is_server)
{
	(void)arg, (void)fd, (void)checksig, (void)is_server;
	return SECSuccess;
}

static struct tls *handshake(int fd, PRBool as_server)
{
	PRFileDesc *tcp = PR_ImportTCPSocket(fd);
	if (!tcp)
		return NULL;
	PRFileDesc *s = SSL_ImportFD(NULL, tcp);
	if (!s) {
		PR_Close(tcp);
		return NULL;
	}
	SECStatus ok = SSL_OptionSet(s, SSL_SECURITY, PR_TRUE);
	if (as_server) {
		if (ok == SECSuccess)
			ok = SSL_ConfigServerCert(s, cert, key, NULL, 0);
	} else {
		if (ok == SECSuccess)
			ok = SSL_SetURL(s, "localhost");
		if (ok == SECSuccess)
			ok = SSL_AuthCertificateHook(s, trust_all, NULL);
	}
	if (ok == SECSuccess)
		ok = SSL_ResetHandshake(s, as_server);
	if (ok == SECSuccess)
		ok = SSL_ForceHandshake(s);
	if (ok != SECSuccess) {
		PR_Close(s);
		return NULL;
	}
	return (struct tls *)s;
}

struct tls *tls_accept(int fd)
{
	return handshake(fd, PR_TRUE);
}

struct tls *tls_connect(int fd)
{
	return handshake(fd, PR_FALSE);
}

long tls_write(struct tls *t, const void *buf, long len)
{
	return PR_Write((PRFileDesc *)t, buf, (PRInt32)len);
}

long tls_read(struct tls *t, void *buf, long len)
{
	return PR_Read((PRFileDesc *)t, buf, (PRInt32)len);
}

void tls_close(struct tls *t)
{
	PR_Close((PRFileDesc *)t);
}

void tls_print_errors(void)
{
	PRErrorCode e = PR_GetError();
	if (e)
		fprintf(stderr, "nss: error %d (%s)\n", e, PR_ErrorToName(e) ? PR_ErrorToName(e) : "?");
}
