"""The TLS server of ecapture's hostile-traffic tests (tests/hostile.rs), on
Python's ssl module:

    hostile_server.py HOST CERT KEY

Binds HOST on an ephemeral port and prints "READY <port>" once listening.
A connection opening with the HTTP/2 preface is read and discarded until the
client closes. Any other carries HTTP/1.x requests one after the other: each
head is read whole (however it is split), its Content-Length body read and
discarded as it comes (never held: a body announced as 1 GiB just runs until
the client closes), and each complete request is answered with
"hello from <path>, N body bytes".
"""
import resource
import socket
import ssl
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in tests/
from tls_server import answer_requests  # noqa: E402 (tests/, beside this script)

host, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, 0))
srv.listen(256)
print("READY", srv.getsockname()[1], flush=True)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def handle(conn):
    try:
        with ctx.wrap_socket(conn, server_side=True) as t:
            data = b""
            while len(data) < len(PREFACE) and PREFACE.startswith(data):
                chunk = t.recv(65536)
                if not chunk:
                    return
                data += chunk
            if data.startswith(PREFACE):
                while t.recv(65536):
                    pass
                return
            answer_requests(t, data)
    except (OSError, ssl.SSLError, ValueError):
        pass


while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
