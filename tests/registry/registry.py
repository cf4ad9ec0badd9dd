#!/usr/bin/env python3
"""A loopback Ollama-compatible registry for tests/test_pull.c (standard library only).

Usage: registry.py ROOT [--timeout SECONDS]

Serves, on 127.0.0.1 and 127.0.0.2 (each on a free port; "PORT1 PORT2\\n" is written
to ROOT/ports once both listen):
  GET /v2/<ns>/<model>/manifests/<tag>  ROOT/manifests/<ns>/<model>/<tag> (404 if absent)
  GET /v2/<ns>/<model>/blobs/sha256:<hex>  ROOT/blobs/sha256-<hex>
  GET /files/<hex>                      the same blob (redirect target)
Range requests ("bytes=A-" and "bytes=A-B") get 206 with Content-Range.

Behaviour is read from ROOT/ctl.json at each request (absent = {}):
  "redirect": {"<hex>": {"code": 302, "to": "same" | "second" | "<URL>"}}
              the blob URL answers with a redirect to /files/<hex> on 127.0.0.1
              ("same") or 127.0.0.2 ("second")
  "drop_once": {"<hex>": N}   the first GET of that blob sends N bytes and closes
  "drop_range": {"<hex>": [START, N]}  the first GET of that blob whose Range starts
              at byte START sends N bytes and closes
  "corrupt": ["<hex>", ...]   one byte in the middle of the blob is flipped
  "rate": B                   at most about B bytes per second for blob bodies
  "status": {"<path>": [code, "body"]}  answer that path with that status
  "ignore_range": true        answer Range requests with the whole blob (200)
  "gzip_bomb": {"<path>": [code, INFLATED, "NAME"]}  answer that path with that status
              and a valid gzip body (Content-Encoding: gzip, file name NAME in its
              header) that inflates to INFLATED zero bytes (a multiple of 1 MiB)
  "layers": {"<path>": N}     answer that path with a manifest of N layers, generated
              while sent (10^6 layers are about 150 MB)
  "big_body": {"<path>": [code, N]}  answer that path with that status and N bytes "x"
Every request is appended to ROOT/log.jsonl as one JSON object:
  {"server": 1|2, "path", "host", "range", "authorization", "status", "sent"}
(sent: body bytes written to the socket before the response ended or the client
went away; an answer with a small fixed body is logged just before it is sent, so
a client that got it finds it in the log).
The process exits by itself after --timeout seconds (default 120).
"""
import json
import os
import re
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = sys.argv[1]
TIMEOUT = 120.0
if "--timeout" in sys.argv:
    TIMEOUT = float(sys.argv[sys.argv.index("--timeout") + 1])
LOCK = threading.Lock()
DROPPED = set()
PORTS = [0, 0]


def ctl():
    try:
        with open(os.path.join(ROOT, "ctl.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def log(entry):
    with LOCK:
        with open(os.path.join(ROOT, "log.jsonl"), "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_no = 1

    def log_message(self, fmt, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass   # the client went away (a test kills it on purpose)

    def record(self, status, sent):
        log({"server": self.server_no, "path": self.path, "host": self.headers.get("Host"),
             "range": self.headers.get("Range"), "authorization": self.headers.get("Authorization"),
             "status": status, "sent": sent})

    def stream(self, status, total, pieces, headers=()):
        """Send a body of total bytes made of the byte strings pieces yields; the log
        says how many were written before the end or before the client left."""
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(total))
        self.end_headers()
        sent = 0
        try:
            for piece in pieces:
                self.wfile.write(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        self.record(status, sent)

    def simple(self, status, body, headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.record(status, len(data))   # before: a client that got it may read the log at once
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        c = ctl()
        if self.path in c.get("status", {}):
            code, body = c["status"][self.path]
            return self.simple(code, body)
        if self.path in c.get("gzip_bomb", {}):
            code, inflated, name = c["gzip_bomb"][self.path]
            head, seg, k, tail = gzip_bomb(inflated, name)
            return self.stream(code, len(head) + k * len(seg) + len(tail),
                               [head] + [seg] * k + [tail], [("Content-Encoding", "gzip")])
        if self.path in c.get("layers", {}):
            n = c["layers"][self.path]
            layer = ('{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:%s","size":1}'
                     % ("ab" * 32)).encode()
            head = ('{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
                    '"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:%s",'
                    '"size":1},"layers":[' % ("cd" * 32)).encode()
            per = 4096   # layers per write
            def pieces():
                yield head
                for i in range(0, n, per):
                    m = min(per, n - i)
                    yield (b"," if i else b"") + b",".join([layer] * m)
                yield b"]}"
            return self.stream(200, len(head) + n * len(layer) + max(n - 1, 0) + 2, pieces())
        if self.path in c.get("big_body", {}):
            code, n = c["big_body"][self.path]
            chunk = b"x" * 65536
            return self.stream(code, n, [chunk] * (n // 65536) + [b"x" * (n % 65536)])
        m = re.fullmatch(r"/v2/([^/]+)/([^/]+)/manifests/([^/]+)", self.path)
        if m:
            p = os.path.join(ROOT, "manifests", m.group(1), m.group(2), m.group(3))
            if not os.path.isfile(p):
                return self.simple(404, '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            with open(p, "rb") as f:
                return self.simple(200, f.read(),
                                   [("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")])
        m = re.fullmatch(r"/v2/[^/]+/[^/]+/blobs/sha256:([0-9a-f]{64})", self.path)
        if m:
            hx = m.group(1)
            red = c.get("redirect", {}).get(hx)
            if red:
                if red["to"].startswith("http"):   # a URL of the test's choosing
                    return self.simple(red["code"], "", [("Location", red["to"])])
                host, port = ("127.0.0.1", PORTS[0]) if red["to"] == "same" else ("127.0.0.2", PORTS[1])
                return self.simple(red["code"], "", [("Location", "http://%s:%d/files/%s" % (host, port, hx))])
            return self.blob(hx, c)
        m = re.fullmatch(r"/files/([0-9a-f]{64})", self.path)
        if m:
            return self.blob(m.group(1), c)
        return self.simple(404, "not found")

    def blob(self, hx, c):
        p = os.path.join(ROOT, "blobs", "sha256-" + hx)
        if not os.path.isfile(p):
            return self.simple(404, '{"errors":[{"code":"BLOB_UNKNOWN"}]}')
        with open(p, "rb") as f:
            data = bytearray(f.read())
        if hx in c.get("corrupt", []) and data:
            data[len(data) // 2] ^= 0xFF
        total = len(data)
        start, end = 0, total - 1
        rng = self.headers.get("Range")
        status = 200
        if rng and not c.get("ignore_range"):
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
            if not m or int(m.group(1)) >= total:
                return self.simple(416, "bad range", [("Content-Range", "bytes */%d" % total)])
            start = int(m.group(1))
            if m.group(2):
                end = min(int(m.group(2)), total - 1)
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, total))
        self.end_headers()
        drop = None
        with LOCK:
            n = c.get("drop_once", {}).get(hx)
            if n is not None and hx not in DROPPED:
                DROPPED.add(hx)
                drop = n
            dr = c.get("drop_range", {}).get(hx)
            if dr is not None and status == 206 and start == dr[0] and (hx, start) not in DROPPED:
                DROPPED.add((hx, start))
                drop = dr[1]
        rate = c.get("rate")
        sent = 0
        pos = start
        chunk = 16384 if rate else 65536
        try:
            while pos <= end:
                k = min(chunk, end + 1 - pos)
                if drop is not None and sent + k > drop:
                    k = drop - sent
                self.wfile.write(data[pos:pos + k])
                self.wfile.flush()
                sent += k
                pos += k
                if drop is not None and sent >= drop:
                    self.close_connection = True
                    break
                if rate:
                    time.sleep(k / rate)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.record(status, sent)


BOMBS = {}


def gzip_bomb(inflated, name):
    """A gzip member of `inflated` zero bytes: header (with FNAME), the same deflate
    segment repeated k times, the final block and the trailer. A segment is 1 MiB of
    zeros compressed from a fresh state and ended by a full flush, so it is
    byte-aligned and refers to nothing before it: any number of copies in a row is
    a valid deflate stream (about 1 KiB per MiB)."""
    key = (inflated, name)
    if key not in BOMBS:
        mib = 1 << 20
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        seg = c.compress(bytes(mib)) + c.flush(zlib.Z_FULL_FLUSH)
        k = inflated // mib
        crc, zeros = 0, bytes(mib)
        for _ in range(k):
            crc = zlib.crc32(zeros, crc)
        head = b"\x1f\x8b\x08\x08\0\0\0\0\x02\xff" + name.encode() + b"\0"
        tail = zlib.compressobj(9, zlib.DEFLATED, -15).flush() + struct.pack("<II", crc, inflated & 0xFFFFFFFF)
        BOMBS[key] = (head, seg, k, tail)
    return BOMBS[key]


class Second(Handler):
    server_no = 2


def main():
    s1 = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    s2 = ThreadingHTTPServer(("127.0.0.2", 0), Second)
    s1.daemon_threads = s2.daemon_threads = True
    PORTS[0], PORTS[1] = s1.server_address[1], s2.server_address[1]
    for s in (s1, s2):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    tmp = os.path.join(ROOT, "ports.tmp")
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (PORTS[0], PORTS[1]))
    os.rename(tmp, os.path.join(ROOT, "ports"))
    time.sleep(TIMEOUT)
    os._exit(0)


if __name__ == "__main__":
    main()
