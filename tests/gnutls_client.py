"""A GnuTLS client for ecapture's end-to-end tests: libgnutls through ctypes,
so the calls are GnuTLS's own (gnutls_record_send/recv).

    gnutls_client.py PORT SIZE [--cork] [--tls12]

Connects to 127.0.0.1:PORT (tests/tls_server.py), sends one HTTP/1.1 POST
whose head and SIZE-byte body (byte i is i % 251) go in ONE gnutls_record_send
call: with --cork, the session is corked first (the call buffers it all and
returns SIZE; gnutls_record_uncork sends it); without, the call sends what
one record holds and the rest follows in further calls. Reads the answer,
prints it, and exits 0 when it says all SIZE body bytes arrived.
"""
import ctypes
import socket
import sys

port, size = int(sys.argv[1]), int(sys.argv[2])
cork = "--cork" in sys.argv
tls12 = "--tls12" in sys.argv

g = ctypes.CDLL("libgnutls.so.30")
vp, sz = ctypes.c_void_p, ctypes.c_size_t
g.gnutls_init.argtypes = [ctypes.POINTER(vp), ctypes.c_uint]
g.gnutls_priority_set_direct.argtypes = [vp, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
g.gnutls_credentials_set.argtypes = [vp, ctypes.c_int, vp]
g.gnutls_transport_set_int2.argtypes = [vp, ctypes.c_int, ctypes.c_int]
g.gnutls_handshake.argtypes = [vp]
g.gnutls_error_is_fatal.argtypes = [ctypes.c_int]
g.gnutls_record_send.argtypes = [vp, ctypes.c_char_p, sz]
g.gnutls_record_send.restype = ctypes.c_ssize_t
g.gnutls_record_recv.argtypes = [vp, ctypes.c_char_p, sz]
g.gnutls_record_recv.restype = ctypes.c_ssize_t
g.gnutls_record_cork.argtypes = [vp]
g.gnutls_record_uncork.argtypes = [vp, ctypes.c_uint]
g.gnutls_record_uncork.restype = ctypes.c_int
g.gnutls_bye.argtypes = [vp, ctypes.c_int]
g.gnutls_deinit.argtypes = [vp]
g.gnutls_strerror.argtypes = [ctypes.c_int]
g.gnutls_strerror.restype = ctypes.c_char_p


def check(rc, what):
    if rc < 0:
        sys.exit(f"{what}: {g.gnutls_strerror(int(rc)).decode()}")
    return rc


check(g.gnutls_global_init(), "gnutls_global_init")
cred = vp()
check(g.gnutls_certificate_allocate_credentials(ctypes.byref(cred)), "allocate credentials")
sess = vp()
check(g.gnutls_init(ctypes.byref(sess), 2), "gnutls_init")  # GNUTLS_CLIENT
prio = b"NORMAL:-VERS-TLS1.3" if tls12 else b"NORMAL"
check(g.gnutls_priority_set_direct(sess, prio, None), "priority")
check(g.gnutls_credentials_set(sess, 1, cred), "credentials")  # GNUTLS_CRD_CERTIFICATE

s = socket.create_connection(("127.0.0.1", port))
g.gnutls_transport_set_int2(sess, s.fileno(), s.fileno())
while True:
    rc = g.gnutls_handshake(sess)
    if rc >= 0:
        break
    if g.gnutls_error_is_fatal(rc):
        check(rc, "handshake")

body = bytes(i % 251 for i in range(size))
msg = b"POST /gnutls HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % size + body
buf = ctypes.create_string_buffer(msg, len(msg))
if cork:
    g.gnutls_record_cork(sess)
sent = check(g.gnutls_record_send(sess, buf, len(msg)), "send")
if cork:
    if sent != len(msg):
        sys.exit(f"corked send took {sent} of {len(msg)} bytes")
    check(g.gnutls_record_uncork(sess, 1), "uncork")  # GNUTLS_RECORD_WAIT
else:
    while sent < len(msg):
        rest = ctypes.create_string_buffer(msg[sent:], len(msg) - sent)
        sent += check(g.gnutls_record_send(sess, rest, len(msg) - sent), "send")

want = b"%d body bytes" % size
got = b""
rbuf = ctypes.create_string_buffer(65536)
while want not in got:
    n = g.gnutls_record_recv(sess, rbuf, 65536)
    if n == -28 or n == -52:  # GNUTLS_E_AGAIN, GNUTLS_E_INTERRUPTED
        continue
    if n <= 0:
        break
    got += rbuf.raw[:n]
print(got.decode(errors="replace"), flush=True)
g.gnutls_bye(sess, 1)  # GNUTLS_SHUT_WR
g.gnutls_deinit(sess)
s.close()
sys.exit(0 if want in got else 1)
