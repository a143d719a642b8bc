"""A TLS client for ecapture's end-to-end tests, on Python's ssl module
(which calls OpenSSL's SSL_write_ex/SSL_read_ex), talking to
tests/tls_server.py on 127.0.0.1:PORT:

    tls_client.py PORT FILE          one PUT /bulk: its head, then FILE in ONE write
    tls_client.py PORT COUNT SIZE    COUNT requests PUT /bulk/<i> with SIZE-byte
                                     bodies (starting "%08d " % i), each head and
                                     body in one write, pipelined on one connection
    tls_client.py PORT COUNT SIZE hop  the same, moving to the next CPU before
                                     each write (its records land in a different
                                     CPU's ring every time)

sendall on a blocking socket hands the whole buffer to one SSL_write_ex.
Exits 0 once the server has confirmed every body length.
"""
import os
import socket
import ssl
import sys

port = int(sys.argv[1])
hop = sys.argv[4:] == ["hop"]
cpus = sorted(os.sched_getaffinity(0))
if len(sys.argv) == 3:
    body = open(sys.argv[2], "rb").read()
    writes = [b"PUT /bulk HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body), body]
    want = [len(body)]
else:
    count, size = int(sys.argv[2]), int(sys.argv[3])
    writes, want = [], []
    for i in range(count):
        b = (b"%08d " % i + b"x" * size)[:size]
        writes.append(b"PUT /bulk/%d HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (i, size, b))
        want.append(size)

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection(("127.0.0.1", port)) as s:
    with ctx.wrap_socket(s) as t:
        for i, w in enumerate(writes):
            if hop:
                os.sched_setaffinity(0, {cpus[i % len(cpus)]})
            t.sendall(w)
        reply = b""
        while reply.count(b" body bytes") < len(want):
            more = t.recv(65536)
            if not more:
                break
            reply += more
        for n in want:
            if (b", %d body bytes" % n) not in reply:
                sys.exit("unexpected reply: %r" % reply[-200:])
