"""A minimal PostgreSQL frontend/backend protocol 3.0 client (trust auth, simple query),
enough to time lock waits exactly: the time a blocked SELECT ... FOR UPDATE returns is
the time its response reaches this socket, with no client library in between.

Run as a program it is the *holder*: it connects, opens a transaction, updates a row,
prints 'HELD <local port> <backend pid>' and then waits for ever (to be killed)."""
import socket
import struct
import sys
import time


class PgError(Exception):
    pass


class PgConn:
    def __init__(self, host, port, user, db, appname="cfbench", options=None, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        params = {"user": user, "database": db, "application_name": appname}
        if options:
            params["options"] = options
        body = struct.pack("!I", 196608)
        for k, v in params.items():
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        self.sock.sendall(struct.pack("!I", len(body) + 4) + body)
        self.backend_pid = None
        while True:
            t, payload = self._msg()
            if t == b"R":
                code = struct.unpack("!I", payload[:4])[0]
                if code != 0:
                    raise PgError(f"server asks for authentication method {code}; use trust")
            elif t == b"K":
                self.backend_pid = struct.unpack("!I", payload[:4])[0]
            elif t == b"E":
                raise PgError(_err(payload))
            elif t == b"Z":
                break

    def local_port(self):
        return self.sock.getsockname()[1]

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise PgError("connection closed by server")
            self.buf += chunk

    def _msg(self):
        self._fill(5)
        t = self.buf[:1]
        ln = struct.unpack("!I", self.buf[1:5])[0]
        if ln < 4 or ln > (64 << 20):
            raise PgError(f"bad message length {ln}")
        self._fill(1 + ln)
        payload = self.buf[5:1 + ln]
        self.buf = self.buf[1 + ln:]
        return t, payload

    def send_query(self, sql):
        q = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)

    def read_result(self, timeout=None):
        """Read until ReadyForQuery.  Returns (rows, first_byte_ns) where first_byte_ns is
        CLOCK_MONOTONIC when the first response byte arrived.  Raises PgError on an error
        response, socket.timeout when nothing came within timeout."""
        self.sock.settimeout(timeout)
        first = None
        if not self.buf:
            self._fill(1)
        first = time.monotonic_ns()
        self.sock.settimeout(None)
        rows, err = [], None
        while True:
            t, payload = self._msg()
            if t == b"D":
                n = struct.unpack("!H", payload[:2])[0]
                off, row = 2, []
                for _ in range(n):
                    ln = struct.unpack("!i", payload[off:off + 4])[0]
                    off += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(payload[off:off + ln].decode())
                        off += ln
                rows.append(row)
            elif t == b"E":
                err = _err(payload)
            elif t == b"Z":
                break
        if err:
            raise PgError(err)
        return rows, first

    def query(self, sql, timeout=30.0):
        self.send_query(sql)
        return self.read_result(timeout)[0]

    def close(self):
        try:
            self.sock.sendall(b"X" + struct.pack("!I", 4))
        except OSError:
            pass
        self.sock.close()


def _err(payload):
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return f"{fields.get('S', 'ERROR')} {fields.get('C', '')}: {fields.get('M', '')}"


def main():
    # pgwire.py hold PORT USER DB ROW [OPTIONS]
    if len(sys.argv) < 6 or sys.argv[1] != "hold":
        print("usage: pgwire.py hold PORT USER DB ROW [OPTIONS]", file=sys.stderr)
        return 2
    port, user, db, row = int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    opts = sys.argv[6] if len(sys.argv) > 6 else None
    c = PgConn("127.0.0.1", port, user, db, appname="cfbench_holder", options=opts)
    c.query("BEGIN")
    c.query(f"UPDATE accounts SET balance = balance + 1 WHERE id = {row}")
    print(f"HELD {c.local_port()} {c.backend_pid}", flush=True)
    # hold the row lock until killed; stdin closing also ends us
    sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
