#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A man in the middle for one tcp connection: forwards both ways between the
first client that connects to LISTEN_PORT and TARGET, and flips one byte once:
the byte at stream offset OFFSET of direction DIR ('down': target -> client,
'up': client -> target). Prints its port, then 'flipped DIR OFFSET' when done.

usage: tamper_proxy.py HOST TARGET_HOST TARGET_PORT DIR OFFSET
"""
import select
import socket
import sys


def main():
    host, thost, tport, direction, offset = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    assert direction in ("down", "up")
    ls = socket.socket()
    ls.bind((host, 0))
    ls.listen(1)
    print(ls.getsockname()[1], flush=True)
    cli, _ = ls.accept()
    srv = socket.create_connection((thost, tport))
    seen = {"down": 0, "up": 0}
    done = False
    peers = {cli: (srv, "up"), srv: (cli, "down")}
    while True:
        r, _, _ = select.select(list(peers), [], [])
        for s in r:
            data = s.recv(65536)
            if not data:
                return
            out, d = peers[s]
            if not done and d == direction and seen[d] <= offset < seen[d] + len(data):
                b = bytearray(data)
                b[offset - seen[d]] ^= 0x01
                data = bytes(b)
                done = True
                print("flipped %s %d" % (d, offset), flush=True)
            seen[d] += len(data)
            out.sendall(data)


if __name__ == "__main__":
    try:
        main()
    except (ConnectionError, OSError):
        pass
