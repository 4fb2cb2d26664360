#!/usr/bin/env python3
"""A fake Codegen REST API for the codegen plugin's tests (Python 3 standard library only).

    python3 tests/fakes/codegen_fake.py --port 0 [--token TOKEN ...]

prints `PORT <n>` as its first stdout line and serves on 127.0.0.1 until killed. State lives
in this process, so it survives restarts of the host under test. --token may be given once
per user (every one is accepted, as each user's own token is upstream); without it any
bearer token passes.

The upstream shapes follow ../shared/reference/codegen.md §B:
  POST /v1/organizations/{org}/agent/run          CreateAgentRunInput -> AgentRunResponse
  GET  /v1/organizations/{org}/agent/run/{id}     -> AgentRunResponse (each GET is a "poll")
  GET  /v1/organizations/{org}/agent/runs         skip/limit (limit 1..100, else 422) -> Page
  POST /v1/organizations/{org}/agent/run/resume   {agent_run_id, prompt, images} -> the run,
                                                  ACTIVE again (§E: we assume the same id)
Errors use both body shapes the API is known to send (§B.5): {"message", "status_code"} for
the documented custom errors, FastAPI's {"detail": [...]} for 422, {"detail": "..."} for auth.

Runs are scripted: a run stays ACTIVE for `polls` GETs, then the next GET shows `final`
(COMPLETE with `result`, or ERROR/...). `polls: null` keeps it ACTIVE until a control
request changes it. A resume makes the run ACTIVE again with its `resume_script`.

Control endpoints (never recorded, no auth):
  GET  /_fake/requests[?path=REGEX&method=M]  recorded API requests: seq, method, path, query,
                                              body, auth_ok (Authorization carried an expected
                                              token; the header itself is never recorded),
                                              user (which --token: 0, 1, ...; -1 for none),
                                              status, fault, traceparent (when sent)
  POST /_fake/reset                           forget runs, requests, faults and scripts
  POST /_fake/token      {"token": T}         the one token Authorization must carry now
  POST /_fake/faults     {"method"?, "path"?: REGEX, "count"?: 1, then either
                          "status", "body"?, "headers"?, "echo_auth"?  (answer this instead;
                          with "apply": true the request still takes effect)
                          or "delay_ms" (do the real work, then wait before answering)}
  POST /_fake/script_next {"polls", "final", "result", "resume_script"?}  for the next create
  POST /_fake/runs       {"org_id", "status", "result"?, "metadata"?, "count"?, "script"?,
                          "resume_script"?}   seed runs directly; -> {"ids": [...]}
  GET  /_fake/runs/{id}                       the run with polls, resumes and scripts
  POST /_fake/runs/{id}  {"status"?, "result"?, "script"?, "resume_script"?}  change a run
"""
import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NON_TERMINAL = {"ACTIVE", "RUNNING", "PENDING", "EVALUATION"}
DEFAULT_SCRIPT = {"polls": 2, "final": "COMPLETE", "result": None}
DEFAULT_RESUME_SCRIPT = {"polls": 1, "final": "COMPLETE", "result": None}


class State:
    def __init__(self, tokens):
        self.lock = threading.Lock()
        self.tokens = tokens  # None: any bearer token passes
        self.reset()

    def reset(self):
        self.runs = {}
        self.next_id = 1000
        self.requests = []
        self.faults = []
        self.next_scripts = []


STATE = None


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


def run_view(run):
    """The run as AgentRunResponse (§B.3)."""
    return {
        "id": run["id"],
        "organization_id": run["org_id"],
        "status": run["status"],
        "created_at": run["created_at"],
        "web_url": "https://codegen.com/agent/trace/%d" % run["id"],
        "result": run["result"],
        "summary": run["summary"],
        "source_type": "API",
        "github_pull_requests": [],
        "metadata": run["metadata"],
    }


def new_run(org_id, prompt, metadata, script, resume_script, status="ACTIVE", result=None):
    rid = STATE.next_id
    STATE.next_id += 1
    run = {
        "id": rid,
        "org_id": org_id,
        "status": status,
        "created_at": now_iso(),
        "result": result,
        "summary": None,
        "metadata": metadata,
        "prompt": prompt,
        "polls": 0,
        "script": dict(script),
        "resume_script": dict(resume_script),
        "resumes": [],
    }
    STATE.runs[rid] = run
    return run


def advance(run):
    """One GET of the run: count the poll and apply the script."""
    run["polls"] += 1
    script = run["script"]
    if run["status"].upper() in NON_TERMINAL and script.get("polls") is not None and run["polls"] > script["polls"]:
        final = script.get("final") or "COMPLETE"
        run["status"] = final
        if final.upper() == "COMPLETE":
            run["result"] = script.get("result") or ("Done: " + (run["prompt"] or "")[:60])
            run["summary"] = "completed"
        else:
            run["result"] = script.get("result")
            run["summary"] = "the agent stopped with " + final


def message_error(status, message):
    return status, {"message": message, "status_code": status}


def detail_error(loc, msg, typ):
    return 422, {"detail": [{"loc": loc, "msg": msg, "type": typ}]}


def as_int(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v):
        return int(v)
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "codegen-fake/1"

    def log_message(self, *args):  # keep stderr quiet: the test reads nothing from it
        pass

    # ---- plumbing ---------------------------------------------------------------------

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        if not raw:
            return raw, None
        try:
            return raw, json.loads(raw)
        except ValueError:
            return raw, None

    def send(self, status, body, headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        parts = urlsplit(self.path)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        raw, body = self.read_body()
        try:
            if path.startswith("/_fake/"):
                status, out = self.control(method, path, query, body)
                return self.send(status, out)
            self.api(method, path, query, raw, body)
        except Exception as e:  # a bug in the fake must not hang the test
            try:
                self.send(500, {"detail": "fake crashed: %r" % (e,)})
            except OSError:
                pass

    # ---- the Codegen API --------------------------------------------------------------

    def api(self, method, path, query, raw, body):
        auth = self.headers.get("Authorization") or ""
        delay = 0.0
        extra_headers = {}
        with STATE.lock:
            # Without a configured token any bearer token passes (the README demo); tests set them.
            tokens = STATE.tokens or []
            user = next((i for i, t in enumerate(tokens) if auth == "Bearer " + t), -1)
            auth_ok = user >= 0 if STATE.tokens is not None else \
                (auth.startswith("Bearer ") and len(auth) > len("Bearer "))
            fault = self.take_fault(method, path)
            if fault is not None and fault.get("apply") and auth_ok:
                # Do the real work, but answer with the injected response (e.g. a resume that
                # takes effect while its answer still shows the run's previous status).
                self.route(method, path, query, body)
            if fault is not None and "status" in fault:
                status = int(fault["status"])
                out = fault.get("body", {"message": "injected", "status_code": status})
                if fault.get("echo_auth"):
                    # A misbehaving upstream that quotes the credential back: the plugin must
                    # redact it (codegen.md §D.1).
                    out = {"message": "bad credentials: " + auth, "status_code": status}
                extra_headers = fault.get("headers", {})
            else:
                if fault is not None:
                    delay = fault.get("delay_ms", 0) / 1000.0
                if not auth_ok:
                    status, out = 401, {"detail": "Invalid or missing API token"}
                else:
                    status, out = self.route(method, path, query, body)
            STATE.requests.append({
                "seq": len(STATE.requests) + 1,
                "method": method,
                "path": path,
                "query": query,
                "body": body if body is not None else raw.decode("utf-8", "replace"),
                "auth_ok": auth_ok,
                "user": user,
                "status": status,
                "fault": fault is not None,
            })
            if self.headers.get("traceparent"):
                STATE.requests[-1]["traceparent"] = self.headers.get("traceparent")
        if delay:
            time.sleep(delay)
        try:
            self.send(status, out, extra_headers)
        except OSError:
            pass  # the client went away (a test killed the host mid-request): nothing to do

    def take_fault(self, method, path):
        for f in STATE.faults:
            if f.get("method") and f["method"] != method:
                continue
            if f.get("path") and not re.search(f["path"], path):
                continue
            f["count"] = f.get("count", 1) - 1
            if f["count"] <= 0:
                STATE.faults.remove(f)
            return f
        return None

    def route(self, method, path, query, body):
        m = re.fullmatch(r"/v1/organizations/([^/]+)/agent/(run|runs)(?:/([^/]+))?", path)
        if not m:
            return 404, {"detail": "Not Found"}
        org = as_int(m.group(1))
        if org is None:
            return detail_error(["path", "org_id"], "Input should be a valid integer", "int_parsing")
        kind, tail = m.group(2), m.group(3)
        if kind == "runs" and tail is None and method == "GET":
            return self.list_runs(org, query)
        if kind == "run" and tail is None and method == "POST":
            return self.create(org, body)
        if kind == "run" and tail == "resume" and method == "POST":
            return self.resume(org, body)
        if kind == "run" and tail is not None and method == "GET":
            rid = as_int(tail)
            if rid is None:
                return detail_error(["path", "agent_run_id"], "Input should be a valid integer", "int_parsing")
            run = STATE.runs.get(rid)
            if run is None or run["org_id"] != org:
                return message_error(404, "Agent run not found.")
            advance(run)
            return 200, run_view(run)
        return 405, {"detail": "Method Not Allowed"}

    def create(self, org, body):
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return detail_error(["body", "prompt"], "Field required", "missing")
        images = body.get("images")
        if images is not None and not isinstance(images, list):
            return detail_error(["body", "images"], "Input should be a valid list", "list_type")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            return detail_error(["body", "metadata"], "Input should be a valid dictionary", "dict_type")
        script = STATE.next_scripts.pop(0) if STATE.next_scripts else {}
        run = new_run(org, body["prompt"], metadata or {},
                      {**DEFAULT_SCRIPT, **{k: v for k, v in script.items() if k != "resume_script"}},
                      {**DEFAULT_RESUME_SCRIPT, **script.get("resume_script", {})})
        return 200, run_view(run)

    def resume(self, org, body):
        if not isinstance(body, dict):
            return detail_error(["body"], "Field required", "missing")
        rid = as_int(body.get("agent_run_id"))
        if rid is None or isinstance(body.get("agent_run_id"), str):
            return detail_error(["body", "agent_run_id"], "Input should be a valid integer", "int_type")
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return detail_error(["body", "prompt"], "Field required", "missing")
        run = STATE.runs.get(rid)
        if run is None or run["org_id"] != org:
            return message_error(404, "Agent run not found.")
        run["resumes"].append({"prompt": body["prompt"], "images": body.get("images")})
        run["status"] = "ACTIVE"
        run["polls"] = 0
        run["result"] = None
        run["script"] = dict(run["resume_script"])
        if run["script"].get("result") is None:
            run["script"]["result"] = "Resumed: " + body["prompt"][:60]
        return 200, run_view(run)

    def list_runs(self, org, query):
        skip, limit = as_int(query.get("skip", "0")), as_int(query.get("limit", "100"))
        if skip is None or skip < 0:
            return detail_error(["query", "skip"], "Input should be greater than or equal to 0", "greater_than_equal")
        if limit is None or limit < 1 or limit > 100:
            return detail_error(["query", "limit"], "Input should be less than or equal to 100", "less_than_equal")
        runs = sorted((r for r in STATE.runs.values() if r["org_id"] == org), key=lambda r: -r["id"])
        total = len(runs)
        return 200, {
            "items": [run_view(r) for r in runs[skip:skip + limit]],
            "total": total,
            "page": skip // limit + 1,
            "size": limit,
            "pages": (total + limit - 1) // limit,
        }

    # ---- control ----------------------------------------------------------------------

    def control(self, method, path, query, body):
        body = body if isinstance(body, dict) else {}
        with STATE.lock:
            if path == "/_fake/requests" and method == "GET":
                out = STATE.requests
                if "path" in query:
                    out = [r for r in out if re.search(query["path"], r["path"])]
                if "method" in query:
                    out = [r for r in out if r["method"] == query["method"]]
                return 200, out
            if path == "/_fake/reset" and method == "POST":
                STATE.reset()
                return 200, {"ok": True}
            if path == "/_fake/token" and method == "POST":
                STATE.tokens = [body["token"]] if body.get("token") is not None else None
                return 200, {"ok": True}
            if path == "/_fake/faults" and method == "POST":
                STATE.faults.append(body)
                return 200, {"ok": True}
            if path == "/_fake/script_next" and method == "POST":
                STATE.next_scripts.append(body)
                return 200, {"ok": True}
            if path == "/_fake/runs" and method == "POST":
                ids = []
                for _ in range(int(body.get("count", 1))):
                    run = new_run(int(body.get("org_id", 1)), body.get("prompt", "seeded"), body.get("metadata") or {},
                                  {**DEFAULT_SCRIPT, **body.get("script", {"polls": None})},
                                  {**DEFAULT_RESUME_SCRIPT, **body.get("resume_script", {})},
                                  status=body.get("status", "ACTIVE"), result=body.get("result"))
                    ids.append(run["id"])
                return 200, {"ids": ids}
            m = re.fullmatch(r"/_fake/runs/([0-9]+)", path)
            if m:
                run = STATE.runs.get(int(m.group(1)))
                if run is None:
                    return 404, {"detail": "no such run"}
                if method == "POST":
                    for k in ("status", "result", "summary"):
                        if k in body:
                            run[k] = body[k]
                    if "script" in body:
                        run["script"] = {**DEFAULT_SCRIPT, **body["script"]}
                        run["polls"] = 0
                    if "resume_script" in body:
                        run["resume_script"] = {**DEFAULT_RESUME_SCRIPT, **body["resume_script"]}
                return 200, run
        return 404, {"detail": "no such control endpoint"}


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", action="append", help="an accepted API token (repeatable: one per user)")
    args = ap.parse_args()
    STATE = State(args.token)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
