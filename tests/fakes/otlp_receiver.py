#!/usr/bin/env python3
"""An OpenTelemetry collector's OTLP/HTTP receiver for traces and metrics, for the telemetry
tests. It decodes what an exporter sends as the OTLP specification defines it (JSON
encoding, Content-Type application/json: an ExportTraceServiceRequest on POST /v1/traces,
an ExportMetricsServiceRequest on POST /v1/metrics) and checks the encoding's rules: trace
and span ids as lower-case hex of 16 and 8 bytes, kind and status code as numbers, times
and 64-bit counts as decimal strings, attribute values as AnyValue objects; a metric is
exactly one of sum, gauge or histogram, sums and histograms cumulative, a histogram's
bucket counts one more than its bounds and adding up to its count. A request that breaks
them is answered 400, and remembered.
Python 3 standard library only.

    python3 tests/fakes/otlp_receiver.py --port 0 [--exit-on-stdin-eof]

The first stdout line is "PORT <n>".

Test control:
    GET  /_fake/spans    {"spans": [...], "requests": n, "rejected": [reasons], "headers": [{name: value} per export]}
                         each span flattened: traceId, spanId, parentSpanId, name, kind,
                         start, end (ints), attributes {key: python value}, status {code, message},
                         links, resource {key: value}
    GET  /_fake/metrics  {"exports": n, "points": [...]}: every data point received, flattened:
                         name, unit, type (sum|gauge|histogram), monotonic, attributes,
                         start, time, and value (sum, gauge) or count, sum, buckets, bounds
                         (histogram), resource
    POST /_fake/mode     {"delayMs": n} answer every export that much later; {"status": 503} refuse them
    POST /_fake/reset    forget everything, back to prompt 200 answers
"""

import argparse
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
DIGITS = re.compile(r"^[0-9]+$")


class Invalid(Exception):
    pass


def any_value(v):
    if not isinstance(v, dict) or len(v) != 1:
        raise Invalid("an AnyValue has exactly one field: %r" % (v,))
    (kind, x), = v.items()
    if kind == "stringValue" and isinstance(x, str):
        return x
    if kind == "boolValue" and isinstance(x, bool):
        return x
    if kind == "intValue" and (isinstance(x, int) or (isinstance(x, str) and re.match(r"^-?[0-9]+$", x))):
        return int(x)
    if kind == "doubleValue" and isinstance(x, (int, float)):
        return float(x)
    raise Invalid("unsupported AnyValue %r" % (v,))


def attributes(lst):
    if not isinstance(lst, list):
        raise Invalid("attributes must be a list")
    out = {}
    for kv in lst:
        if not isinstance(kv.get("key"), str):
            raise Invalid("an attribute needs a string key")
        if kv["key"] in out:
            raise Invalid("duplicate attribute " + kv["key"])
        out[kv["key"]] = any_value(kv.get("value"))
    return out


def nanos(x, what):
    if not (isinstance(x, int) or (isinstance(x, str) and DIGITS.match(x))):
        raise Invalid(what + " must be Unix nanoseconds")
    return int(x)


def decode(body):
    req = json.loads(body)
    spans = []
    for rs in req.get("resourceSpans", []):
        resource = attributes(rs.get("resource", {}).get("attributes", []))
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                if not HEX32.match(s.get("traceId", "")) or s["traceId"] == "0" * 32:
                    raise Invalid("bad traceId %r" % s.get("traceId"))
                if not HEX16.match(s.get("spanId", "")) or s["spanId"] == "0" * 16:
                    raise Invalid("bad spanId %r" % s.get("spanId"))
                parent = s.get("parentSpanId", "")
                if parent and not HEX16.match(parent):
                    raise Invalid("bad parentSpanId %r" % parent)
                if not isinstance(s.get("name"), str) or not s["name"]:
                    raise Invalid("a span needs a name")
                kind = s.get("kind", 0)
                if not isinstance(kind, int) or not 0 <= kind <= 5:
                    raise Invalid("kind must be a SpanKind number")
                start, end = nanos(s.get("startTimeUnixNano"), "start"), nanos(s.get("endTimeUnixNano"), "end")
                if end < start:
                    raise Invalid("a span ends before it starts")
                status = s.get("status", {})
                if not isinstance(status.get("code", 0), int):
                    raise Invalid("status.code must be a number")
                links = []
                for link in s.get("links", []):
                    if not HEX32.match(link.get("traceId", "")) or not HEX16.match(link.get("spanId", "")):
                        raise Invalid("bad link")
                    links.append({"traceId": link["traceId"], "spanId": link["spanId"]})
                spans.append({"traceId": s["traceId"], "spanId": s["spanId"], "parentSpanId": parent,
                              "traceState": s.get("traceState", ""), "name": s["name"], "kind": kind,
                              "start": start, "end": end, "attributes": attributes(s.get("attributes", [])),
                              "status": {"code": status.get("code", 0), "message": status.get("message", "")},
                              "links": links, "resource": resource})
    return spans


def count(x, what):
    if not (isinstance(x, int) or (isinstance(x, str) and DIGITS.match(x))):
        raise Invalid(what + " must be a uint64 (a decimal string)")
    return int(x)


def number_point(p):
    if "asDouble" in p and isinstance(p["asDouble"], (int, float)):
        return float(p["asDouble"])
    if "asInt" in p:
        return int(p["asInt"])
    raise Invalid("a number data point needs asDouble or asInt")


def decode_metrics(body):
    req = json.loads(body)
    points = []
    for rm in req.get("resourceMetrics", []):
        resource = attributes(rm.get("resource", {}).get("attributes", []))
        for sm in rm.get("scopeMetrics", []):
            for m in sm.get("metrics", []):
                if not isinstance(m.get("name"), str) or not m["name"]:
                    raise Invalid("a metric needs a name")
                kinds = [k for k in ("sum", "gauge", "histogram", "exponentialHistogram", "summary") if k in m]
                if len(kinds) != 1 or kinds[0] not in ("sum", "gauge", "histogram"):
                    raise Invalid("%s: exactly one of sum, gauge, histogram, not %r" % (m["name"], kinds))
                kind = kinds[0]
                data = m[kind]
                if kind != "gauge" and data.get("aggregationTemporality") != 2:
                    raise Invalid("%s: aggregationTemporality must be 2 (cumulative)" % m["name"])
                for p in data.get("dataPoints", []):
                    point = {"name": m["name"], "unit": m.get("unit", ""), "type": kind,
                             "monotonic": data.get("isMonotonic", False),
                             "attributes": attributes(p.get("attributes", [])),
                             "time": nanos(p.get("timeUnixNano"), "timeUnixNano"), "resource": resource}
                    if kind != "gauge":
                        point["start"] = nanos(p.get("startTimeUnixNano"), "startTimeUnixNano")
                        if point["start"] > point["time"]:
                            raise Invalid("%s: starts after its time" % m["name"])
                    if kind == "histogram":
                        buckets = [count(c, "bucketCounts") for c in p.get("bucketCounts", [])]
                        bounds = p.get("explicitBounds", [])
                        if len(buckets) != len(bounds) + 1:
                            raise Invalid("%s: %d buckets for %d bounds" % (m["name"], len(buckets), len(bounds)))
                        if any(not isinstance(b, (int, float)) for b in bounds) or bounds != sorted(bounds):
                            raise Invalid("%s: explicitBounds must be increasing numbers" % m["name"])
                        point.update(count=count(p.get("count"), "count"), sum=p.get("sum"), buckets=buckets, bounds=bounds)
                        if sum(buckets) != point["count"]:
                            raise Invalid("%s: bucket counts add up to %d, count is %d" % (m["name"], sum(buckets), point["count"]))
                    else:
                        point["value"] = number_point(p)
                    points.append(point)
    return points


class Receiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with getattr(self, "lock"):
            self.spans, self.requests, self.rejected, self.headers = [], 0, [], []
            self.points, self.metric_exports = [], 0
            self.delay_ms, self.status = 0, 200


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    receiver = None

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))

    def do_GET(self):
        r = self.receiver
        if self.path == "/_fake/spans":
            with r.lock:
                return self.reply(200, {"spans": r.spans, "requests": r.requests, "rejected": r.rejected,
                                        "headers": r.headers})
        if self.path == "/_fake/metrics":
            with r.lock:
                return self.reply(200, {"points": r.points, "exports": r.metric_exports})
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        r = self.receiver
        raw = self.body()
        if self.path == "/_fake/reset":
            r.reset()
            return self.reply(200, {})
        if self.path == "/_fake/mode":
            mode = json.loads(raw or b"{}")
            with r.lock:
                r.delay_ms = int(mode.get("delayMs", 0))
                r.status = int(mode.get("status", 200))
            return self.reply(200, {})
        if self.path not in ("/v1/traces", "/v1/metrics"):
            return self.reply(404, {"error": "not found"})
        traces = self.path == "/v1/traces"
        with r.lock:
            if traces:
                r.requests += 1
                r.headers.append({k.lower(): v for k, v in self.headers.items()})
            delay, status = r.delay_ms, r.status
        if delay:
            time.sleep(delay / 1000)
        if status != 200:
            return self.reply(status, {"error": "refused by the test"})
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            with r.lock:
                r.rejected.append("Content-Type " + self.headers.get("Content-Type", ""))
            return self.reply(415, {"error": "JSON only"})
        try:
            got = decode(raw) if traces else decode_metrics(raw)
        except (Invalid, ValueError, AttributeError, TypeError) as e:
            with r.lock:
                r.rejected.append(str(e))
            return self.reply(400, {"error": str(e)})
        with r.lock:
            if traces:
                r.spans.extend(got)
            else:
                r.metric_exports += 1
                r.points.extend(got)
        self.reply(200, {"partialSuccess": {}})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--exit-on-stdin-eof", action="store_true")
    args = ap.parse_args()
    Handler.receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    if args.exit_on_stdin_eof:
        def watch():
            sys.stdin.read()
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
