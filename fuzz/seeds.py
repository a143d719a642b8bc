#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpora: fuzz/corpus/<target>/seed-*.

Each seed is laid out the way its target in src/fuzzing.rs reads its input
(the `Input` helper: choice bytes, big-endian u16 lengths), so that the
fuzzer starts from real traffic: HTTP/1 exchanges (pipelined, chunked,
gzip, HEAD), HTTP/2 client and server flights (RFC 7541 C.3-C.6 header
blocks, SETTINGS, HEADERS + CONTINUATION, gzip DATA), ring records as
bpf/abi.h lays them out, and a tiny shared object for `elf` (built with cc).

Run it again after `cargo fuzz cmin`: the minimized corpus gets the named
seeds back, and files that duplicate a seed are removed.

    python3 fuzz/seeds.py
"""

import gzip
import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SEEDS = {}


def seed(target, name, data):
    SEEDS.setdefault(target, []).append(("seed-" + name, bytes(data)))


def hx(s):
    return bytes.fromhex("".join(s.split()))


def u16(n):
    return struct.pack(">H", n)


def gz(data):
    return gzip.compress(data, mtime=0)


# ---- HTTP/1 ------------------------------------------------------------------

REQ_GET = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.1\r\nAccept: */*\r\n\r\n"
REQ_POST = b"POST /api/v1/items HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"name\":\"widget\",\"qty\":12}\n"
REQ_PUT_CHUNKED = (b"PUT /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"4\r\nwiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n")
REQ_HEAD = b"HEAD /big.iso HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
REQ_LF = b"GET /lf HTTP/1.0\nHost: x\n\n"
GZ_BODY = gz(b"hello, decoded world\n" * 4)
RESP_GZIP = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: "
             + str(len(GZ_BODY)).encode() + b"\r\n\r\n" + GZ_BODY)
RESP_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\nContent-Type: application/octet-stream\r\n\r\n"


def chunked(body, size):
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


RESP_CHUNKED_GZIP = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunked(GZ_BODY, 16))
RESP_DEFLATE = (lambda body: b"HTTP/1.1 201 Created\r\nContent-Encoding: deflate\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)(zlib.compress(b'{"id":42,"ok":true}' * 3))
RESP_MISC = (b"HTTP/1.1 100 Continue\r\n\r\n"
             b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"
             b"HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\n\r\n")
RESP_CLOSE = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body>until close</body></html>\n"


def http1_input(stream, cut):
    """The http1 target: (length byte, bytes)*."""
    out = b""
    for i in range(0, len(stream), cut):
        part = stream[i:i + cut]
        out += bytes([len(part)]) + part
    return out


seed("http1", "pipelined-requests", http1_input(REQ_GET + REQ_POST + REQ_PUT_CHUNKED, 255))
seed("http1", "requests-split-small", http1_input(REQ_POST + REQ_LF, 7))
# Responses: the target answers the first with GET, the second with HEAD.
seed("http1", "response-get-then-head", http1_input(RESP_GZIP + RESP_HEAD + RESP_CHUNKED_GZIP, 200))
seed("http1", "response-chunked", http1_input(RESP_CHUNKED_GZIP, 13))
seed("http1", "response-1xx-204-304", http1_input(RESP_MISC, 255))
seed("http1", "response-until-close", http1_input(RESP_CLOSE, 255))

# ---- HPACK (RFC 7541 appendix C) -------------------------------------------

C2 = ["400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
      "040c 2f73 616d 706c 652f 7061 7468",
      "1008 7061 7373 776f 7264 0673 6563 7265 74",
      "82"]
C3 = ["8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "8286 84be 5808 6e6f 2d63 6163 6865",
      "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"]
C4 = ["8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      "8286 84be 5886 a8eb 1064 9cbf",
      "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"]
C5 = ["4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e"
      " 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "4803 3330 37c1 c0bf",
      "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d"
      " 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076"
      " 6572 7369 6f6e 3d31"]
C6 = ["4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7"
      " 8f0b 97c8 e9ae 82ae 43d3",
      "4883 640e ffc1 c0bf",
      "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335"
      " dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07"]
SIZE_256 = "3fe101"  # dynamic table size update to 256, as C.5 and C.6 assume


def hpack_input(blocks):
    """The hpack target: (u16 length, block)*, one decoder throughout."""
    return b"".join(u16(len(b)) + b for b in map(hx, blocks))


seed("hpack", "c2-literals-and-indexed", hpack_input(C2))
seed("hpack", "c3-requests", hpack_input(C3))
seed("hpack", "c4-requests-huffman", hpack_input(C4))
seed("hpack", "c5-responses-eviction", hpack_input([SIZE_256 + C5[0]] + C5[1:]))
seed("hpack", "c6-responses-huffman-eviction", hpack_input([SIZE_256 + C6[0]] + C6[1:]))
# A size update to 0 (table emptied), back to 4096, then an error and a
# block after the reset.
seed("hpack", "size-updates-and-reset", hpack_input(["4003 6b65 7905 7661 6c75 65", "20", "3fe11f", "be", C3[0]]))

# ---- HTTP/2 --------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def settings(*pairs):
    return b"".join(struct.pack(">HI", k, v) for k, v in pairs)


# :status 200, content-encoding: gzip (literal with indexing, name index 26),
# content-type: text/plain (literal without indexing, name index 31).
RESP_HEADERS_GZIP = bytes([0x88, 0x5a, 0x04]) + b"gzip" + bytes([0x0f, 0x10, 0x0a]) + b"text/plain"
RESP_HEADERS_DEFLATE = bytes([0x88, 0x5a, 0x07]) + b"deflate"
H2_GZ = gz(b"".join(b"line %d: hello, world\n" % i for i in range(30)))
H2_ZLIB = zlib.compress(b'{"items":[1,2,3,4,5,6,7,8]}' * 4)

CLIENT = (PREFACE
          + frame(SETTINGS, 0, 0, settings((1, 4096), (3, 100), (4, 1 << 20), (2, 0)))
          + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x3f0001))
          + frame(HEADERS, END_STREAM, 1, hx(C4[0])[:5])
          + frame(CONTINUATION, 0, 1, hx(C4[0])[5:9])
          + frame(CONTINUATION, END_HEADERS, 1, hx(C4[0])[9:])
          + frame(HEADERS, END_STREAM | END_HEADERS | PRIO, 3, struct.pack(">IB", 0x80000001, 15) + hx(C4[1]))
          + frame(HEADERS, END_HEADERS | PADDED, 5, bytes([2]) + hx(C4[2]) + b"\0\0")
          + frame(PRIORITY, 0, 7, struct.pack(">IB", 3, 200))
          + frame(SETTINGS, ACK, 0, b"")
          + frame(PING, 0, 0, b"12345678")
          + frame(RST_STREAM, 0, 5, struct.pack(">I", 8))
          + frame(GOAWAY, 0, 0, struct.pack(">II", 5, 0) + b"bye"))

SERVER = (frame(SETTINGS, 0, 0, settings((3, 128), (5, 16384), (6, 8192)))
          + frame(SETTINGS, ACK, 0, b"")
          + frame(HEADERS, END_HEADERS, 1, hx(C6[0]))
          + frame(HEADERS, END_HEADERS, 3, RESP_HEADERS_GZIP)
          + frame(DATA, 0, 3, H2_GZ[:20])
          + frame(DATA, PADDED, 3, bytes([4]) + H2_GZ[20:40] + b"\0" * 4)
          + frame(DATA, END_STREAM, 3, H2_GZ[40:])
          + frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack(">I", 2) + hx(C3[0]))
          + frame(HEADERS, END_HEADERS, 5, RESP_HEADERS_DEFLATE)
          + frame(DATA, END_STREAM, 5, H2_ZLIB)
          + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 65535))
          + frame(PING, ACK, 0, b"12345678")
          + frame(0xb, 0, 0, b"unknown extension frame"))


def h2_input(client, stream, cuts):
    """The http2 target: a direction byte, then (u16 length, bytes)*."""
    out = bytes([1 if client else 0])
    at = 0
    for c in list(cuts) + [len(stream)]:
        out += u16(c - at) + stream[at:c]
        at = c
    return out


seed("http2", "client-flight", h2_input(True, CLIENT, []))
seed("http2", "client-flight-split", h2_input(True, CLIENT, [10, 30, 61, 100]))
seed("http2", "server-flight", h2_input(False, SERVER, []))
seed("http2", "server-flight-split", h2_input(False, SERVER, [5, 40, 150, 151, 300]))

# ---- assembler -----------------------------------------------------------------


def pad4(stream, frame_pad=False):
    """Streams whose pushes are not last must be multiples of 4 bytes."""
    if len(stream) % 4 == 0:
        return stream
    if frame_pad:  # an unknown extension frame: ignored by HTTP/2
        n = (-(len(stream) + 9)) % 4
        return stream + frame(0xb, 0, 0, b"\0" * n)
    raise ValueError("stream length %d is not a multiple of 4" % len(stream))


def pad_head(msg):
    """Pads an HTTP/1 head with a header field to a multiple of 4 bytes."""
    n = (-(len(msg) + len(b"X-Pad: \r\n"))) % 4
    i = msg.index(b"\r\n") + 2
    return msg[:i] + b"X-Pad: " + b"p" * n + b"\r\n" + msg[i:]


class Ops:
    """The assembler target: op byte, time byte, [length/4 byte, payload]."""

    def __init__(self):
        self.b = b""

    def push(self, conn, read, stream, per=1020, ms=1, hole=False):
        for i in range(0, len(stream), per):
            part = stream[i:i + per]
            assert len(part) % 4 == 0, len(part)
            op = 0x40 | (0x08 if read else 0) | (0x10 if hole else 0) | conn
            self.b += bytes([op, ms, len(part) // 4]) + part
        return self

    def tick(self, ms):
        self.b += bytes([0x20, ms])
        return self

    def close(self, conn):
        self.b += bytes([conn, 0])
        return self


REQ_GET4 = pad_head(REQ_GET)
REQ_HEAD4 = pad_head(REQ_HEAD)
RESP_GZIP4 = pad_head(RESP_GZIP)
RESP_HEAD4 = pad_head(RESP_HEAD)
RESP_CHUNKED4 = pad_head(RESP_CHUNKED_GZIP)
RESP_DEFLATE4 = pad_head(RESP_DEFLATE)

seed("assembler", "http1-get-gzip-head", Ops()
     .push(1, False, REQ_GET4).push(1, True, RESP_GZIP4)
     .push(1, False, REQ_HEAD4).push(1, True, RESP_HEAD4)
     .close(1).b)
seed("assembler", "http1-pipelined-chunked-deflate", Ops()
     .push(2, False, REQ_GET4 + REQ_GET4).push(2, True, RESP_CHUNKED4[:40], ms=2)
     .push(2, True, RESP_CHUNKED4[40:], per=24).push(2, True, RESP_DEFLATE4)
     .tick(150).b)
BIG = pad_head(b"POST /big HTTP/1.1\r\nContent-Length: 6000\r\n\r\n" + b"x" * 6000)
seed("assembler", "http1-large-in-parts-and-hole", Ops()
     .push(3, False, BIG).push(3, True, pad_head(RESP_CLOSE)).tick(120)
     .push(3, False, REQ_GET4, hole=True).close(3).b)
seed("assembler", "http2-connection", Ops()
     .push(4, False, pad4(CLIENT, True)).push(4, True, pad4(SERVER, True), per=100)
     .push(4, False, frame(HEADERS, END_HEADERS, 9, hx(C4[1])[:-2])[:12]).tick(200).close(4).b)
seed("assembler", "unknown-protocol-both-sides", Ops()
     .push(5, False, bytes.fromhex("160301020001000200") + b"\x00" * 3)
     .push(5, True, b"\x16\x03\x03\x00\x5a" + b"\x02" * 3)
     .push(6, False, b"SSH-2.0-OpenSSH_9.2\r\n\0\0\0")
     .tick(250).b)
seed("assembler", "interleaved-connections", Ops()
     .push(0, False, REQ_GET4[:16]).push(7, True, b"HTTP/1.1 200 O\r\n")
     .push(0, False, REQ_GET4[16:]).push(7, True, b"Content-Length:    0\r\n\r\n")
     .close(0).tick(255).close(7).b)

# ---- render --------------------------------------------------------------------

seed("render", "http1-request", u16(len(REQ_POST) - 27) + REQ_POST)
seed("render", "http1-response-binary-body", u16(RESP_GZIP.index(b"\r\n\r\n") + 4) + RESP_GZIP)
seed("render", "binary", u16(0) + bytes(range(256)))
seed("render", "utf8-and-controls", u16(3) + "GET ünïcødé\tok\r\n\x1b[31m".encode())

# ---- ring records (bpf/abi.h) ------------------------------------------------

REC_CHUNK, REC_CLOSE = 1, 2
AF_INET, AF_INET6 = 2, 10


def chunk_rec(payload, call_id=0x0000_1234_0000_1235, total=None, captured=None, off=0, family=AF_INET,
              laddr=bytes([127, 0, 0, 1]), raddr=bytes([93, 184, 216, 34]), dir=1, flags=0x12, comm=b"curl",
              source=0, fd=5):
    captured = len(payload) + off if captured is None else captured
    total = captured if total is None else total
    return struct.pack("<QII", 1_000_000, REC_CHUNK, source) + struct.pack(
        "<QQIIIiIIIIIIHHHBB16s16s16s", call_id, 0x5555_0000_1000, 0x1234, 0x1235, 1000, fd, total, captured, off,
        len(payload), 0x0304, 0, family, 54321, 443, dir, flags, laddr, raddr, comm) + payload


seed("record", "chunk-ipv4-write", chunk_rec(REQ_GET))
seed("record", "chunk-ipv6-read-server-padded", chunk_rec(
    RESP_HEAD, family=AF_INET6, laddr=bytes(15) + b"\1", raddr=bytes(15) + b"\1", dir=0, flags=0x30, comm=b"nginx",
    total=100000, captured=70000, off=32768) + b"\0\0\0")
seed("record", "chunk-unknown-family-truncated", chunk_rec(b"abc", family=0, flags=0x01, total=1 << 20, fd=-1))
seed("record", "close", struct.pack("<QIIQII", 2_000_000, REC_CLOSE, 1, 0x5555_0000_1000, 0x1234, 0x1235))
seed("record", "other-kind", struct.pack("<QII", 3, 7, 2) + b"module specific")

# ---- key records (bpf/abi.h: tls_keys_rec, secret_rec) -----------------------------

REC_TLS_KEYS, REC_SECRET = 3, 4


def tls_keys_rec(version, cipher, mk_len=48, fill=0x11):
    b = lambda i: bytes([fill + i]) * 64
    return struct.pack("<QII", 4_000_000, REC_TLS_KEYS, 0) + struct.pack(
        "<QIIIIII", 0x5555_0000_1000, 0x1234, 0x1235, version, cipher, mk_len, 0) + bytes(range(32)) + b(0)[:48] + \
        b(1) + b(2) + b(3) + b(4) + b(5)


def secret_rec(label, length):
    return struct.pack("<QIIIIII", 5_000_000, REC_SECRET, 0, 0x1234, label, length, 0) + bytes(range(32)) + \
        bytes([0xab]) * 64


seed("keys", "tls13-sha256", tls_keys_rec(0x0304, 0x03001301))
seed("keys", "tls13-sha384", tls_keys_rec(0x0304, 0x03001302))
seed("keys", "tls13-unknown-cipher", tls_keys_rec(0x0304, 0x0300ffff))
seed("keys", "tls12", tls_keys_rec(0x0303, 0x0300c02f))
seed("keys", "tls12-no-master", tls_keys_rec(0x0303, 0x0300c02f, mk_len=0))
seed("keys", "version-unknown", tls_keys_rec(0, 0))
seed("keys", "secret-server-traffic", secret_rec(5, 48))
seed("keys", "secret-bad-length", secret_rec(1, 65))
seed("keys", "short", tls_keys_rec(0x0304, 0x03001301)[:100])

# ---- reassembly ------------------------------------------------------------------


def chunk(call, captured, off, len64, ms=0, expire=False, fill=b"a"):
    """The reassembly target: call byte, captured u16, off u16, len/64 byte,
    payload, time byte, expire byte (0 = expire)."""
    n = min(len64 * 64, captured - min(off, captured))
    return bytes([call]) + u16(captured) + u16(off) + bytes([len64]) + (fill * n)[:n] + bytes([ms, 0 if expire else 1])


seed("reassembly", "one-chunk", chunk(1, 100, 0, 2, fill=REQ_GET))
seed("reassembly", "three-chunks", chunk(2, 300, 0, 2, fill=b"x") + chunk(2, 300, 128, 2, fill=b"y")
     + chunk(2, 300, 256, 1, fill=b"z"))
seed("reassembly", "interleaved-with-hole", chunk(3, 256, 0, 1) + chunk(4, 200, 0, 1, fill=b"b") + chunk(3, 256, 128, 1)
     + chunk(4, 200, 64, 3, fill=b"b") + chunk(3, 256, 192, 1))
seed("reassembly", "duplicate-expired-straggler", chunk(5, 256, 0, 1) + chunk(5, 256, 0, 1)
     + chunk(6, 512, 64, 1, ms=20, expire=True) + chunk(5, 256, 64, 1) + chunk(6, 512, 128, 1))
seed("reassembly", "all-eight-calls-partial", b"".join(chunk(i, 1000, 0, 1) for i in range(8)) + chunk(0, 1000, 64, 15))

# ---- elf -------------------------------------------------------------------------

LIB_C = r"""
const char version[] = "OpenSSL 3.0.11 19 Sep 2023";
int SSL_read(void *s, void *b, int n) { return n; }
int SSL_write(void *s, const void *b, int n) { return n; }
int SSL_read_ex(void *s, void *b, unsigned long n, unsigned long *r) { return 1; }
int SSL_write_ex(void *s, const void *b, unsigned long n, unsigned long *w) { return 1; }
int SSL_set_fd(void *s, int fd) { return 1; }
void SSL_free(void *s) {}
"""


def build_elf(name, source, flags):
    cc = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "lib.c"), os.path.join(d, name)
        with open(src, "w") as f:
            f.write(source)
        common = [cc, "-shared", "-fPIC", "-Os", "-nostdlib", "-Wl,-z,max-page-size=0x1000", "-Wl,-z,noseparate-code",
                  "-Wl,--hash-style=gnu", "-Wl,--build-id=none"]
        # A libcrypto to need, by a name no system has: the target looks for
        # it beside the file and in the library directories, and finds
        # nothing (reading a real 5 MB libcrypto would make every run slow).
        stub = [os.path.join(d, "libcrypto.so.99"), "-x", "c", "/dev/null", "-Wl,-soname,libcrypto.so.99"]
        flags = [f.replace("@LIBCRYPTO@", stub[0]) for f in flags]
        try:
            subprocess.run(common + ["-o"] + stub, check=True)
            subprocess.run(common + ["-o", out, src] + flags, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            print("elf seeds skipped: %s" % e, file=sys.stderr)
            return None
        with open(out, "rb") as f:
            return f.read()


for name, src, flags in [
    ("libssl-stripped-with-version", LIB_C, ["-s"]),
    ("libssl-symtab-needs-libcrypto", LIB_C.replace("OpenSSL 3.0.11", "no version"), ["-Wl,--no-as-needed", "@LIBCRYPTO@"]),
    ("libssl-boringssl", LIB_C.replace("OpenSSL 3.0.11 19 Sep 2023", "BoringSSL"), ["-s"]),
]:
    data = build_elf(name, src, flags)
    if data is not None:
        seed("elf", name, data)

# ---- gobin -----------------------------------------------------------------------
# What `gotls` reads of a Go executable, each input tried as all three:
# a function table (pclntab) of Go 1.20+ and of Go 1.16, build information
# (inline version, Go 1.18+), x86-64 code with RETs.

GO_FUNCS = [b"main.main", b"crypto/tls.(*Conn).Write", b"crypto/tls.(*Conn).Read", b"crypto/tls.(*Conn).Close"]


def pclntab(magic, funcs, text_start=0x401000, end=0x400):
    names, offs = b"", []
    for n in funcs:
        offs.append(len(names))
        names += n + b"\0"
    old = magic == 0xFFFFFFFA
    hdr_len = 64 if old else 72
    names_off, functab_off = hdr_len, hdr_len + len(names)
    ent = 16 if old else 8
    funcs_off = (len(funcs) + 1) * ent
    hdr = struct.pack("<IBBBBQQ", magic, 0, 0, 1, 8, len(funcs), 0)
    if old:
        hdr += struct.pack("<QQQQQ", names_off, 0, 0, 0, functab_off)
    else:
        hdr += struct.pack("<QQQQQQ", text_start, names_off, 0, 0, 0, functab_off)
    tab, recs = b"", b""
    for i, _ in enumerate(funcs):
        entry = 0x40 * (i + 1)
        if old:
            tab += struct.pack("<QQ", text_start + entry, funcs_off + i * 12)
            recs += struct.pack("<QI", text_start + entry, offs[i])
        else:
            tab += struct.pack("<II", entry, funcs_off + i * 8)
            recs += struct.pack("<II", entry, offs[i])
    tab += struct.pack("<QQ", text_start + end, 0) if old else struct.pack("<II", end, 0)
    return hdr + names + tab + recs


def buildinfo(version):
    b = b"\xff Go buildinf:" + bytes([8, 2])
    b += b"\0" * (32 - len(b))
    return b + bytes([len(version)]) + version + b"\0"


seed("gobin", "pclntab-go120", pclntab(0xFFFFFFF1, GO_FUNCS))
seed("gobin", "pclntab-go118-pie", pclntab(0xFFFFFFF0, GO_FUNCS, text_start=0))
seed("gobin", "pclntab-go116", pclntab(0xFFFFFFFA, GO_FUNCS))
seed("gobin", "buildinfo-go1.27.3", buildinfo(b"go1.27.3"))
# mov rax, 0xc3; ret; add rsp, 0x18; ret 8; int3 padding
seed("gobin", "code-rets", hx("48 c7 c0 c3 00 00 00 c3 48 83 c4 18 c2 08 00 cc cc"))

# ---- filter: tcpdump expressions ------------------------------------------------

for i, e in enumerate([
    "tcp port 443",
    "host 10.0.0.1 or 10.0.0.2 and not port 22",
    "src net 192.168.0.0/16 && dst portrange 8000-9000",
    "ip6 and (tcp or udp) and host fd00::1",
    "! ( udp || ip6 ) and net fd00::/8",
    "",
]):
    seed("filter", "expr-%d" % i, e.encode())


# ---- packets: frames (u16 length, bytes) and secrets for the pcapng writer ------


def eth_tcp(sport, dport, payload):
    ip_len = 20 + 20 + len(payload)
    ip = bytes([0x45, 0]) + struct.pack(">H", ip_len) + bytes([0, 0, 0, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1])
    tcp = struct.pack(">HH", sport, dport) + bytes(8) + bytes([0x50, 0x18]) + bytes(6)
    return bytes(12) + b"\x08\x00" + ip + tcp + payload


def frame(f):
    return b"\x02" + u16(len(f)) + f


hello = bytes([22, 3, 1, 0, 100, 1, 0, 0, 96, 3, 3]) + bytes([7] * 32) + bytes(20)
appdata = bytes([23, 3, 3, 0, 20]) + bytes(20)
seed("packets", "hello-hold-keys",
     frame(eth_tcp(40000, 443, hello)) + frame(eth_tcp(443, 40000, appdata)) + b"\x00\x07\x01" + b"\x00\x07\x02"
     + frame(eth_tcp(40000, 443, appdata)))
seed("packets", "hello-hold-timeout",
     frame(eth_tcp(40000, 443, hello)) + frame(eth_tcp(40000, 443, appdata)) + b"\x01\x07\xd0")
seed("packets", "not-tcp", frame(bytes(12) + b"\x08\x06" + bytes(28)))

# ---- write -----------------------------------------------------------------------


def main():
    for target, seeds in sorted(SEEDS.items()):
        d = os.path.join(ROOT, target)
        os.makedirs(d, exist_ok=True)
        named = {hashlib.sha1(data).hexdigest() for _, data in seeds}
        for name, data in seeds:
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        # A minimized corpus names files by their SHA-1: drop copies of seeds.
        for f in os.listdir(d):
            if f in named:
                os.remove(os.path.join(d, f))
        total = sum(len(data) for _, data in seeds)
        print("%-10s %2d seeds, %6d bytes" % (target, len(seeds), total))


if __name__ == "__main__":
    main()
