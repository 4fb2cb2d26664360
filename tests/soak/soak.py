#!/usr/bin/env python3
"""A soak of mcp-host: mixed hostile and normal load on both transports and both eras for
MINUTES minutes, with a kill -9 and restart of the HTTP host half way. Reports, per minute,
the p50/p99 of a normal call, calls made, normal calls failed, and each host's RSS and
thread count; exits 1 if a normal call failed (outside the restart) or RSS or threads kept
growing after the first minutes. Run it through scripts/soak.sh, which builds first.

    soak.py MINUTES BUILD_DIR

Load, all at once:
  normal   HTTP 2026-07-28 echo calls, a legacy HTTP session's calls, stdio echo calls
  slow     calls that take 1.5 s, calls whose handler ignores cancellation (answered at the
           deadline while the handler stays stuck for 5 s)
  cancel   stdio calls cancelled 100 ms after they start
  clients  more dribbling connections than worker threads (each answered 408 in time)
  garbage  malformed JSON, deep nesting, wrong types, oversized heads, bad Host headers
  upstream codesphere calls against the fake API with 500, 429, malformed, dropped and slow
           answers queued
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

MINUTES = float(sys.argv[1])
BUILD = sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(BUILD, "mcp-host")
WORK = tempfile.mkdtemp(prefix="mcph-soak-")
M26 = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
START = time.time()
END = START + MINUTES * 60
stop = threading.Event()
lock = threading.Lock()
# minute -> {"lat": [seconds], "ok": n, "failed": n, "calls": n, "restart": n}
stats = {}
failures = []  # what failed, for the report
restarting = threading.Event()


def minute():
    return int((time.time() - START) // 60)


def record(kind, latency=None, ok=True, what=""):
    with lock:
        m = stats.setdefault(minute(), {"lat": [], "ok": 0, "failed": 0, "calls": 0, "restart": 0})
        m["calls"] += 1
        if kind != "normal":
            return
        if ok:
            m["ok"] += 1
            m["lat"].append(latency)
        elif restarting.is_set():
            m["restart"] += 1
        else:
            m["failed"] += 1
            if len(failures) < 20:
                failures.append("%.1fs %s" % (time.time() - START, what))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- The pieces ----------------------------------------------------------------------

fake = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/fakes/codesphere_fake.py"), "--port", "0"],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
FAKE_PORT = int(fake.stdout.readline().split()[1])
HTTP_PORT = free_port()


def config(name, transport):
    path = os.path.join(WORK, name + ".yaml")
    with open(path, "w") as f:
        f.write("""state_dir: %(work)s/state-%(name)s
log: { level: warn }
plugin_paths: [%(plugins)s]
server:
  transport: %(transport)s
  call_timeout_ms: 3000
  max_concurrent_calls: 32
  http:
    listen: 127.0.0.1:%(port)d
    worker_threads: 16
    header_timeout_ms: 2000
    body_timeout_ms: 2000
    max_body_bytes: 262144
plugins:
  - { name: echo, library: example-echo }
  - { name: counter, library: example-counter }
  - { name: bad, library: test-hostile, credentials: { api_token: "soak-secret-12345" } }
  - name: codesphere
    library: codesphere
    credentials: { api_token: fake-token }
    settings: { base_url: "http://127.0.0.1:%(fake)d/api", poll_interval_ms: 200 }
""" % {"work": WORK, "name": name, "plugins": os.path.join(BUILD, "plugins"), "transport": transport,
       "port": HTTP_PORT, "fake": FAKE_PORT})
    return path


HTTP_CONFIG = config("http", "http")
http_host = None


def start_http():
    global http_host
    log = open(os.path.join(WORK, "http-host.log"), "a")
    http_host = subprocess.Popen([BIN, "serve", "--config", HTTP_CONFIG], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/healthz" % HTTP_PORT, timeout=1).read()
            return
        except Exception:
            time.sleep(0.05)
    raise SystemExit("the HTTP host did not start; see " + log.name)


start_http()
stdio_host = subprocess.Popen([BIN, "serve", "--config", config("stdio", "stdio")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=open(os.path.join(WORK, "stdio-host.log"), "w"))


def proc_status(pid):
    rss = threads = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
    except OSError:
        pass
    return rss, threads


# ---- HTTP ------------------------------------------------------------------------------

def post(body, headers=None, timeout=10):
    req = urllib.request.Request("http://127.0.0.1:%d/mcp" % HTTP_PORT, data=body.encode() if isinstance(body, str) else body,
                                 headers=dict({"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
                                              **(headers or {})), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def modern_call(name, args, rid=1, timeout=10):
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": name, "arguments": args, "_meta": M26}})
    return post(body, {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": name}, timeout)


def answer_of(raw):
    text = raw.decode(errors="replace")
    if text.startswith("{"):
        return json.loads(text)
    for line in text.splitlines():  # an SSE answer
        if line.startswith("data: "):
            m = json.loads(line[6:])
            if "id" in m and ("result" in m or "error" in m):
                return m
    return None


def normal_modern():
    n = 0
    while not stop.is_set():
        n += 1
        t0 = time.time()
        try:
            status, _, raw = modern_call("echo", {"text": "n%d" % n})
            m = answer_of(raw)
            ok = status == 200 and m["result"]["content"][0]["text"] == "n%d" % n
            record("normal", time.time() - t0, ok, "modern echo: HTTP %d %s" % (status, raw[:200]))
        except Exception as e:
            record("normal", None, False, "modern echo: %r" % e)
        time.sleep(0.005)


def normal_legacy():
    sid = None
    n = 0
    while not stop.is_set():
        try:
            if sid is None:
                status, headers, raw = post(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                                                        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                                                   "clientInfo": {"name": "soak", "version": "1"}}}))
                sid = headers.get("Mcp-Session-Id")
                if sid is None:
                    raise RuntimeError("initialize: HTTP %d" % status)
            n += 1
            t0 = time.time()
            status, _, raw = post(json.dumps({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                                              "params": {"name": "echo", "arguments": {"text": "l%d" % n}}}),
                                  {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
            if status == 404:  # the session went with a restart: initialize again, as clients do
                sid = None
                continue
            m = answer_of(raw)
            record("normal", time.time() - t0, status == 200 and m["result"]["content"][0]["text"] == "l%d" % n,
                   "legacy echo: HTTP %d %s" % (status, raw[:200]))
        except Exception as e:
            record("normal", None, False, "legacy echo: %r" % e)
            sid = None
            time.sleep(0.05)
        time.sleep(0.005)


def slow_calls():
    while not stop.is_set():
        try:
            name, args = random.choice([("slow", {"ms": 1500}), ("stall", {"ms": 5000}), ("count", {"n": 3, "delay_ms": 200})])
            status, _, raw = modern_call(name, args, timeout=15)
            record("slow")
        except Exception:
            record("slow")
        time.sleep(0.2)


def dribblers(count):
    socks = []
    while not stop.is_set():
        while len(socks) < count:
            try:
                s = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=2)
                s.setblocking(False)
                s.send(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{")
                socks.append(s)
            except OSError:
                break
        for s in list(socks):
            try:
                s.send(b"x")
                s.recv(4096)  # raises BlockingIOError while the host says nothing
                done = True   # answered (408) or closed: open another
            except BlockingIOError:
                done = False
            except OSError:
                done = True
            if done:
                s.close()
                socks.remove(s)
        record("dribble")
        time.sleep(1)
    for s in socks:
        s.close()


GARBAGE = [
    b"not json", b"{", b'{"method":5}', b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}',
    b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":' + b"[" * 60000 + b"1" + b"]" * 60000 + b"}}",
    b"[" * 100000, b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":[]}}',
]


def garbage_http():
    while not stop.is_set():
        try:
            kind = random.randrange(4)
            if kind == 0:
                post(random.choice(GARBAGE), {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "ping"})
            elif kind == 1:
                post(random.choice(GARBAGE))
            elif kind == 2:  # an oversized head
                s = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + b"X-A: b\r\n" * 20000)
                s.recv(4096)
                s.close()
            else:
                s = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost:80@evil.example\r\n\r\n")
                s.recv(4096)
                s.close()
        except Exception:
            pass
        record("garbage")
        time.sleep(0.02)


def upstream_faults():
    kinds = [{"kind": "status", "status": 500}, {"kind": "rate_limit", "retryAfter": "1"}, {"kind": "malformed"},
             {"kind": "drop"}, {"kind": "slow", "delayMs": 1500}]
    while not stop.is_set():
        try:
            f = dict(random.choice(kinds), method="GET", path="/workspaces/team/1")
            urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/_fake/faults" % FAKE_PORT,
                                                          data=json.dumps(f).encode(), method="POST"), timeout=5).read()
            modern_call("list_workspaces", {}, timeout=20)
        except Exception:
            pass
        record("upstream")
        time.sleep(0.3)


# ---- stdio -----------------------------------------------------------------------------

stdio_lock = threading.Lock()
pending = {}  # id -> (sent time, kind, expected text)


def stdio_send(message):
    data = message if isinstance(message, bytes) else json.dumps(message).encode()
    with stdio_lock:
        stdio_host.stdin.write(data + b"\n")
        stdio_host.stdin.flush()


def stdio_reader():
    for line in stdio_host.stdout:
        try:
            m = json.loads(line)
        except ValueError:
            record("normal", None, False, "stdio: a line that is not JSON")
            continue
        with lock:
            entry = pending.pop(json.dumps(m.get("id")), None)
        if entry is None:
            continue
        sent, kind, expect = entry
        if kind == "normal":
            ok = "result" in m and m["result"]["content"][0]["text"] == expect
            record("normal", time.time() - sent, ok, "stdio echo: %s" % line[:200])
        elif kind == "cancelled":
            record("normal", None, False, "stdio: a cancelled call was answered: %s" % line[:200])


def stdio_load():
    stdio_send({"jsonrpc": "2.0", "id": "init", "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "soak", "version": "1"}}})
    time.sleep(0.5)
    n = 0
    while not stop.is_set():
        n += 1
        rid = "s%d" % n
        with lock:
            pending[json.dumps(rid)] = (time.time(), "normal", "s%d" % n)
        stdio_send({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "s%d" % n}}})
        if n % 20 == 0:  # a call cancelled 100 ms in: it must never be answered
            cid = "c%d" % n
            with lock:
                pending[json.dumps(cid)] = (time.time(), "cancelled", None)
            stdio_send({"jsonrpc": "2.0", "id": cid, "method": "tools/call", "params": {"name": "slow", "arguments": {"ms": 5000}}})
            threading.Timer(0.1, stdio_send, [{"jsonrpc": "2.0", "method": "notifications/cancelled",
                                                "params": {"requestId": cid, "reason": "soak"}}]).start()
        if n % 7 == 0:
            stdio_send(random.choice(GARBAGE))
        time.sleep(0.005)


# ---- Run ---------------------------------------------------------------------------------

threads = [threading.Thread(target=f, daemon=True) for f in
           (normal_modern, normal_legacy, slow_calls, lambda: dribblers(24), garbage_http, upstream_faults,
            stdio_reader, stdio_load)]
for t in threads:
    t.start()

samples = {}  # minute -> (http rss, http threads, stdio rss, stdio threads)
killed = False
print("soak: %.0f minutes, work folder %s" % (MINUTES, WORK), flush=True)
print("minute  calls  normal-ok  failed  restart  p50-ms  p99-ms  http-rss-MiB threads  stdio-rss-MiB threads", flush=True)
last_minute = 0
while time.time() < END:
    time.sleep(1)
    if not killed and time.time() > START + MINUTES * 30:
        killed = True
        restarting.set()
        http_host.send_signal(signal.SIGKILL)
        http_host.wait()
        start_http()
        time.sleep(1)
        restarting.clear()
        print("        (kill -9 of the HTTP host and restart at %.0f s)" % (time.time() - START), flush=True)
    samples[minute()] = proc_status(http_host.pid) + proc_status(stdio_host.pid)
    if minute() > last_minute:
        with lock:
            m = stats.get(last_minute, {"lat": [], "ok": 0, "failed": 0, "calls": 0, "restart": 0})
            lat = sorted(m["lat"])
        p = lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
        s = samples.get(last_minute, (0, 0, 0, 0))
        print("%6d %6d %10d %7d %8d %7.2f %7.2f %12.1f %7d %14.1f %7d" % (
            last_minute + 1, m["calls"], m["ok"], m["failed"], m["restart"], p(0.5), p(0.99),
            s[0] / 1024, s[1], s[2] / 1024, s[3]), flush=True)
        last_minute = minute()

stop.set()
time.sleep(0.5)
stdio_host.stdin.close()
for p in (http_host, stdio_host):
    p.send_signal(signal.SIGTERM)
for p in (http_host, stdio_host):
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
fake.kill()

failed = sum(m["failed"] for m in stats.values())
normal = sum(m["ok"] for m in stats.values())
verdict = []
if failed:
    verdict.append("%d normal calls failed: %s" % (failed, "; ".join(failures)))
# Flat after warm-up: the last minute against the second (or the first, for short runs).
minutes = sorted(samples)
if len(minutes) >= 3:
    warm, last = samples[minutes[1]], samples[minutes[-1]]
    for i, what in ((0, "HTTP host RSS"), (2, "stdio host RSS")):
        if last[i] > warm[i] * 1.5 + 20 * 1024:
            verdict.append("%s grew from %.1f to %.1f MiB" % (what, warm[i] / 1024, last[i] / 1024))
    for i, what in ((1, "HTTP host threads"), (3, "stdio host threads")):
        if last[i] > warm[i] + 40:
            verdict.append("%s grew from %d to %d" % (what, warm[i], last[i]))
print("soak: %d normal calls answered, %d failed; %s" % (normal, failed, "; ".join(verdict) if verdict else "RSS and threads flat"))
sys.exit(1 if verdict else 0)
