#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_cf.py - a CF of a protocol version newer than ours (3), for edges.sh (loopback only).

usage: fake_cf.py PORTFILE KEYFILE challenge|error|silent
  challenge: answers HELLO with a correctly authenticated CHALLENGE that
             chooses version 3 (the client offers 2..2)
  error:     refuses the client's version range with an ERROR (-EPROTO), as a
             v3-only server would
  silent:    accepts and never answers (a hung CF)
Exits after 30 s without a connection.
"""
import hashlib
import hmac
import os
import socket
import struct
import sys

key = bytes.fromhex(open(sys.argv[2]).read().strip())
mode = sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(8)
s.settimeout(30)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
while True:
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    c.settimeout(5)
    try:
        ln, op, fl, fid = struct.unpack("<IHHQ", c.recv(16, socket.MSG_WAITALL))
        body = c.recv(ln - 16, socket.MSG_WAITALL)
        magic, vmin, vmax, role, pad = struct.unpack_from("<IHHII", body, 8)
        cnonce = body[8 + 16:8 + 16 + 32]
        print(mode, "hello: versions", vmin, vmax, "role", role, flush=True)
        if mode == "silent":
            c.settimeout(20)
            c.recv(4096)
            c.close()
            continue
        if mode == "challenge":
            snonce = os.urandom(32)
            mac = hmac.new(key, b"srv" + cnonce + snonce, hashlib.sha512).digest()[:32]
            m = struct.pack("<HHI", 3, 0, 0) + snonce + mac
            msg = struct.pack("<HHI", 2, 0, 8 + len(m)) + m  # CHALLENGE
        else:
            txt = b"protocol version 3 only"
            m = struct.pack("<iI", -71, 0) + txt + b"\0" * (120 - len(txt))
            msg = struct.pack("<HHI", 60, 0, 8 + len(m)) + m  # ERROR, -EPROTO
        c.sendall(struct.pack("<IHHQ", 16 + len(msg), op, 0, fid) + msg)
        c.recv(4096)
    except (OSError, struct.error) as e:
        print("conn:", e, flush=True)
    c.close()
