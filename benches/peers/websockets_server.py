"""Python `websockets`: echo on every path, and a broadcast room on /chat (sender included).
Usage: python websockets_server.py PORT"""
import asyncio
import sys

from websockets.asyncio.server import broadcast, serve

room = set()


async def handler(ws):
    if ws.request.path.startswith("/chat"):
        room.add(ws)
        try:
            async for message in ws:
                broadcast(room, message)
        finally:
            room.discard(ws)
    else:
        async for message in ws:
            await ws.send(message)


async def main(port):
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=16 * 1024 * 1024,
                     ping_interval=None) as server:
        print("listening 127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().create_future()


asyncio.run(main(int(sys.argv[1])))
