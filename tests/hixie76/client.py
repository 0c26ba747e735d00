# A hixie-76 client for tests/hixie76.rs, on websocket-client 0.4 (CPython 2.7).
#   client.py echo URL             sends messages and prints what comes back, one a line
#   client.py chat URL COUNT TEXT  sends TEXT, prints the COUNT messages it receives
# Every message printed is UTF-8; the script exits 0 once it has closed cleanly.
import sys

import websocket


def main(mode, url, *rest):
    ws = websocket.create_connection(url, timeout=10)
    if mode == "echo":
        for message in [u"hello hixie", u"caf\u00e9 \u2603", u""]:
            ws.send(message)
            print(ws.recv())
    elif mode == "chat":
        count, text = int(rest[0]), rest[1]
        ws.send(text)
        for _ in range(count):
            print(ws.recv())
    ws.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main(*sys.argv[1:])
