"""Both ends of several TLS connections in ONE asyncio event loop, on one
thread: asyncio's TLS runs OpenSSL over memory BIOs (ssl.SSLObject) and moves
the ciphertext itself, so no socket syscall happens inside SSL_read/SSL_write.

    asyncio_peer.py CERT KEY CONNS ROUNDS

Every message names the client port of its connection: a client writes
"conn I round R from port P\\n", the server answers "echo conn I round R to
port P\\n" (P: the client's local port). Prints "DONE <server port>" at the end.
"""
import asyncio
import ssl
import sys

cert, key, conns, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


async def serve(reader, writer):
    peer_port = writer.get_extra_info("peername")[1]
    while True:
        line = await reader.readline()
        if not line:
            break
        text = line.decode().strip()
        writer.write(f"echo {text.split(' from ')[0]} to port {peer_port}\n".encode())
        await writer.drain()
    writer.close()


async def client(i, port, ctx):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    local = writer.get_extra_info("sockname")[1]
    for r in range(rounds):
        writer.write(f"conn {i} round {r} from port {local}\n".encode())
        await writer.drain()
        answer = await reader.readline()
        assert answer.decode() == f"echo conn {i} round {r} to port {local}\n", answer
        # Let the other connections' records interleave with this one's.
        await asyncio.sleep(0.01)
    writer.close()
    await writer.wait_closed()


async def main():
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=sctx)
    port = server.sockets[0].getsockname()[1]
    await asyncio.gather(*(client(i, port, cctx) for i in range(conns)))
    server.close()
    await server.wait_closed()
    print("DONE", port, flush=True)


asyncio.run(main())
