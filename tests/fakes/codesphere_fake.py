#!/usr/bin/env python3
"""A fake Codesphere public API, for the codesphere plugin's tests and for trying it without
an account. Python 3 standard library only.

    python3 tests/fakes/codesphere_fake.py --port 0 [--token T ...] [--exit-on-stdin-eof]

The first stdout line is "PORT <n>". The API lives under http://127.0.0.1:<n>/api and
accepts `Authorization: Bearer <token>` (default token: "fake-token"; --token may be given
several times, one per user). Shapes follow the
research notes (shared/reference/codesphere.md §2): teams, workspaces, plans, domains with
several routed paths, a pipeline state machine per workspace and stage, and Server-Sent
Events logs (a finished stage's stream closes, a running stage's stream stays open and keeps
sending entries until the client leaves).

Seed data (POST /_fake/reset restores it):
    team 1 "Alpha" (the only team)
    workspace 101 "web"  plain workspace, running, dev domain 101-3000.dev.5.codesphere.com
    workspace 102 "shop" landscape (run stage on servers "app" and "api"), running
    workspace 103 "idle" not running (pipeline and logs answer 400 "Workspace is not running")
    plans 8 "Micro", 20 "Boost", 3 "Legacy" (deprecated)
    domain shop.example.com in team 1: {"/": [101], "/api": [102]}

Pipelines: every (workspace, stage) starts finished ("success", started an hour ago; the run
stage "running"). POST .../start plays a script of states, one per status poll by default:
    prepare/test: waiting, running, success        run: waiting, running (stays)
POST .../stop aborts a waiting or running stage.

Test control (never recorded, no token needed):
    GET  /_fake/requests   {"requests": [{method, path (below /api), query, body, auth, accept, traceparent, fault}]}
                           auth: whether `Authorization: Bearer <expected token>` was sent;
                           user: which --token it was (0, 1, ...; -1 for none); the token
                           itself is never echoed.
    POST /_fake/reset      back to the seed; requests and faults cleared
    POST /_fake/faults     queue a fault (or a list): {method, path, kind, ...} for the next
                           matching request; kinds:
                             status     {status: 500, title?, detail?, body?}  an error answer
                             rate_limit {retryAfter: "1"}  429 with Retry-After
                             slow       {delayMs: 2000}    answer normally after a delay
                             malformed  200 with a body that is not JSON
                             drop       close the connection without an answer
                             redirect   {status: 307, location}  a redirect
                           `times` (default 1) repeats it.
    POST /_fake/pipeline   {workspaceId, stage, script?, mode?: "poll"|"time", stepMs?,
                            failStep?, lag?, steps?}  lag: polls after a start that still
                           show the previous run (upstream is eventually consistent)
    POST /_fake/logs       {workspaceId, stage, step, server?, entries?, live?, liveMs?, problem?}
    POST /_fake/state      {teams?, plans?, workspaces?, domains?, running?: {id: bool},
                            startPolls?: n (status polls until a new workspace runs)}
    GET  /_fake/streams    {opened, open, closedByClient, closedByServer}
"""

import argparse
import copy
import datetime
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API = "/api"
IDE = "codesphere-ide"
STATES = ("waiting", "running", "success", "failure", "aborted")
TERMINAL = ("success", "failure", "aborted")
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
          429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
          504: "Gateway Timeout"}


def iso(ms):
    dt = datetime.datetime.fromtimestamp(ms / 1000.0, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (int(ms) % 1000)


def now_ms():
    return int(time.time() * 1000)


class ApiError(Exception):
    def __init__(self, status, detail=None, title=None):
        super().__init__(detail or "")
        self.status, self.detail, self.title = status, detail, title


class Pipeline:
    """One stage of one workspace: a script of states played per poll or per time."""

    def __init__(self, ws_id, stage, servers, idle_servers=(), state="success", steps=3):
        self.ws_id, self.stage = ws_id, stage
        self.servers, self.idle_servers = list(servers), list(idle_servers)
        self.nsteps = steps
        self.script = ["waiting", "running"] if stage == "run" else ["waiting", "running", "success"]
        self.mode, self.step_ms, self.fail_step, self.lag = "poll", 100, 1, 0
        self.state = state
        self.started = now_ms() - 3600 * 1000
        self.finished = None if state not in TERMINAL else self.started + 60 * 1000
        self.pos, self.t0, self.lag_left, self.old = None, None, 0, None
        self.starts = 0
        self.profile = None

    def configure(self, spec):
        for key, attr in (("script", "script"), ("mode", "mode"), ("stepMs", "step_ms"), ("failStep", "fail_step"),
                          ("lag", "lag"), ("steps", "nsteps")):
            if key in spec:
                setattr(self, attr, spec[key])
        if "state" in spec:  # set the current state directly
            self.state, self.pos = spec["state"], None
            self.finished = now_ms() if self.state in TERMINAL else None

    def start(self, profile=None):
        self.old = self.entries()
        self.lag_left = self.lag
        self.pos, self.t0 = 0, now_ms()
        self.started, self.finished = None, None
        self.starts += 1
        self.profile = profile
        self._set(self.script[0])

    def stop(self):
        if self.state in ("waiting", "running"):
            self.pos = None
            self._set("aborted")

    def _set(self, state):
        if state != "waiting" and self.started is None:
            self.started = now_ms()
        if state in TERMINAL and self.finished is None:
            self.finished = now_ms()
        if state not in TERMINAL:
            self.finished = None
        self.state = state

    def poll(self):
        """The entries a status GET sees; advances the script."""
        if self.lag_left > 0:
            self.lag_left -= 1
            return self.old
        if self.pos is not None:
            if self.mode == "time":
                i = int((now_ms() - self.t0) / max(1, self.step_ms))
            else:
                i = self.pos
                self.pos += 1
            self._set(self.script[min(i, len(self.script) - 1)])
        return self.entries()

    def step_states(self):
        n, s = self.nsteps, self.state
        if s == "waiting":
            return ["waiting"] * n
        if s == "success":
            return ["success"] * n
        if s == "running":
            k = min(n - 1, 1)
            return ["success"] * k + ["running"] + ["waiting"] * (n - k - 1)
        k = min(max(0, self.fail_step), n - 1)  # failure / aborted at fail_step
        return ["success"] * k + [s] + ["waiting"] * (n - k - 1)

    def entries(self):
        out = []
        for server in self.servers:
            e = {"state": self.state, "steps": [{"state": st} for st in self.step_states()],
                 "replica": "workspace-%d-%s-0" % (self.ws_id, server), "server": server}
            if self.started is not None:
                e["startedAt"] = iso(self.started)
            if self.finished is not None:
                e["finishedAt"] = iso(self.finished)
            out.append(e)
        for server in self.idle_servers:
            out.append({"state": "waiting", "steps": [], "replica": "workspace-%d-%s-0" % (self.ws_id, server),
                        "server": server})
        return out


def seed():
    created = iso(now_ms() - 30 * 86400 * 1000)

    def ws(wid, name, landscape=False, running=True):
        return {"id": wid, "teamId": 1, "name": name, "planId": 8, "isPrivateRepo": False, "replicas": 1,
                "baseImage": "ubuntu-24.04", "dataCenterId": 1, "userId": 7, "gitUrl": "https://github.com/acme/%s.git" % name,
                "initialBranch": "main", "sourceWorkspaceId": None, "welcomeMessage": None, "vpnConfig": None,
                "restricted": False, "collectTraces": False, "persistentLogs": False, "createdAt": created,
                "devDomain": "%d-3000.dev.5.codesphere.com" % wid, "_landscape": landscape, "_running": running}

    plans = [
        {"id": 8, "priceUsd": 5, "title": "Micro", "deprecated": False, "maxReplicas": 3,
         "characteristics": {"id": 8, "CPU": 0.5, "GPU": 0, "RAM": 1073741824, "SSD": 10737418240, "TempStorage": 0,
                             "onDemand": True}},
        {"id": 20, "priceUsd": 80, "title": "Boost", "deprecated": False, "maxReplicas": 10,
         "characteristics": {"id": 20, "CPU": 4, "GPU": 0, "RAM": 8589934592, "SSD": 53687091200, "TempStorage": 0,
                             "onDemand": False}},
        {"id": 3, "priceUsd": 10, "title": "Legacy", "deprecated": True, "maxReplicas": 1,
         "characteristics": {"id": 3, "CPU": 1, "GPU": 0, "RAM": 2147483648, "SSD": 21474836480, "TempStorage": 0,
                             "onDemand": False}},
    ]
    domains = {
        (1, "shop.example.com"): {
            "teamId": 1, "dataCenterId": 1, "name": "shop.example.com", "workspaces": {"/": [101], "/api": [102]},
            "certificateRequestStatus": {"issued": True, "reason": None},
            "dnsEntries": {"a": "203.0.113.7", "cname": "dc1.codesphere.com", "txt": "cs-verify=abc"},
            "domainVerificationStatus": {"verified": True, "reason": None}},
    }
    return {
        "teams": [{"id": 1, "defaultDataCenterId": 1, "name": "Alpha", "description": None, "avatarId": None,
                   "avatarUrl": None, "isFirst": True, "role": 0}],
        "plans": plans,
        "workspaces": {101: ws(101, "web"), 102: ws(102, "shop", landscape=True), 103: ws(103, "idle", running=False)},
        "domains": domains,
        "env": {101: [{"name": "NODE_ENV", "value": "production"}, {"name": "API_SECRET", "value": "s3cr3t-value"}]},
    }


class Fake:
    def __init__(self, tokens):
        self.tokens = tokens
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            s = seed()
            self.teams, self.plans, self.workspaces = s["teams"], s["plans"], s["workspaces"]
            self.domains, self.env = s["domains"], s["env"]
            self.generation = getattr(self, "generation", 0) + 1  # a request from before a reset must not act after it
            self.requests, self.faults = [], []
            self.pipelines, self.logs = {}, {}
            self.start_polls, self.polls_left = 2, {}
            self.next_id, self.trace = 201, 0
            self.streams = {"opened": 0, "open": 0, "closedByClient": 0, "closedByServer": 0}

    def trace_id(self):
        with self.lock:
            self.trace += 1
            return "trace-%04d" % self.trace

    def pipeline(self, ws_id, stage):
        key = (ws_id, stage)
        if key not in self.pipelines:
            ws = self.workspaces[ws_id]
            if ws.get("_landscape"):
                servers, idle = ([IDE], ["app", "api"]) if stage != "run" else (["app", "api"], [])
            else:
                servers, idle = [IDE], []
            self.pipelines[key] = Pipeline(ws_id, stage, servers, idle, "running" if stage == "run" else "success")
        return self.pipelines[key]

    def take_fault(self, method, path):
        with self.lock:
            for f in self.faults:
                if f.get("method", "*") in ("*", method) and f.get("path") == path:
                    f["times"] = f.get("times", 1) - 1
                    if f["times"] <= 0:
                        self.faults.remove(f)
                    return f
        return None


class Handler(BaseHTTPRequestHandler):
    server_version = "FakeCodesphere/1.0"
    fake = None  # set in main()

    def log_message(self, fmt, *args):  # quiet; the tests read /_fake/requests
        pass

    # --- plumbing -----------------------------------------------------------------------------

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, status, obj=None, headers=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_problem(self, status, detail=None, title=None, headers=None):
        p = {"status": status, "title": title or TITLES.get(status, "Error"), "traceId": self.fake.trace_id()}
        if detail:
            p["detail"] = detail
        self.send_json(status, p, headers)

    def handle_any(self, method):
        url = urlsplit(self.path)
        raw = self.read_body()
        try:
            if url.path.startswith("/_fake/"):
                return self.control(method, url.path[len("/_fake/"):], raw)
            path = url.path[len(API):] if url.path == API or url.path.startswith(API + "/") else url.path
            body = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
            fake = self.fake
            fault = fake.take_fault(method, path)
            presented = self.headers.get("Authorization", "")
            user = next((i for i, t in enumerate(fake.tokens) if presented == "Bearer " + t), -1)
            auth = user >= 0
            with fake.lock:
                fake.requests.append({"method": method, "path": path, "query": parse_qs(url.query), "body": body,
                                      "auth": auth, "user": user, "accept": self.headers.get("Accept"),
                                      "traceparent": self.headers.get("traceparent"),
                                      "fault": fault["kind"] if fault else None})
            if fault and self.apply_fault(fault):
                return
            if not auth:
                raise ApiError(401, "Authorization information is missing or invalid.")
            if not url.path.startswith(API + "/"):
                raise ApiError(404, "No such route")
            self.route(method, path, body)
        except ApiError as e:
            self.send_problem(e.status, e.detail, e.title)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def apply_fault(self, f):
        """True when the fault answered the request (or dropped it)."""
        kind = f["kind"]
        if kind == "slow":
            generation = self.fake.generation
            time.sleep(f.get("delayMs", 2000) / 1000.0)
            if generation != self.fake.generation:  # the test that asked for it is over
                self.close_connection = True
                return True
            return False
        if kind == "status":
            if "body" in f:
                self.send_response(f.get("status", 500))
                body = f["body"].encode()
                self.send_header("Content-Type", f.get("contentType", "text/plain"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_problem(f.get("status", 500), f.get("detail"), f.get("title"))
        elif kind == "rate_limit":
            self.send_problem(429, "Slow down", headers={"Retry-After": str(f.get("retryAfter", "1"))})
        elif kind == "malformed":
            body = b'{"id": 1, "name": "broken'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif kind == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif kind == "redirect":
            self.send_response(f.get("status", 307))
            self.send_header("Location", f["location"])
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_problem(500, "unknown fault kind " + kind)
        return True

    # --- control --------------------------------------------------------------------------------

    def control(self, method, what, raw):
        fake = self.fake
        spec = json.loads(raw) if raw else {}
        with fake.lock:
            if what == "requests" and method == "GET":
                return self.send_json(200, {"requests": fake.requests})
            if what == "streams" and method == "GET":
                return self.send_json(200, dict(fake.streams))
            if what == "health":
                return self.send_json(200, {"ok": True})
            if method != "POST":
                return self.send_json(405, {"error": "POST only"})
            if what == "reset":
                fake.reset()
            elif what == "faults":
                items = spec if isinstance(spec, list) else [spec]
                for f in items:
                    if f.get("path", "").startswith(API + "/"):
                        f["path"] = f["path"][len(API):]
                    fake.faults.append(f)
            elif what == "pipeline":
                fake.pipeline(int(spec["workspaceId"]), spec["stage"]).configure(spec)
            elif what == "logs":
                key = (int(spec["workspaceId"]), spec["stage"], int(spec.get("step", 0)), spec.get("server"))
                fake.logs[key] = spec
            elif what == "state":
                if "teams" in spec:
                    fake.teams = spec["teams"]
                if "plans" in spec:
                    fake.plans = spec["plans"]
                if "workspaces" in spec:
                    fake.workspaces = {int(w["id"]): w for w in spec["workspaces"]}
                if "domains" in spec:
                    fake.domains = {(int(d["teamId"]), d["name"]): d for d in spec["domains"]}
                for wid, running in spec.get("running", {}).items():
                    fake.workspaces[int(wid)]["_running"] = bool(running)
                if "startPolls" in spec:
                    fake.start_polls = int(spec["startPolls"])
            else:
                return self.send_json(404, {"error": "no control " + what})
        self.send_json(200, {"ok": True})

    # --- the API --------------------------------------------------------------------------------

    def route(self, method, path, body):
        parts = [p for p in path.split("/") if p]
        fake = self.fake
        if parts == ["teams"] and method == "GET":
            with fake.lock:
                return self.send_json(200, fake.teams)
        if parts == ["metadata", "workspace-plans"] and method == "GET":
            with fake.lock:
                return self.send_json(200, fake.plans)
        if parts[:1] == ["workspaces"]:
            return self.route_workspaces(method, parts[1:], body)
        if parts[:2] == ["domains", "team"] and len(parts) >= 3:
            return self.route_domains(method, self.int_or_400(parts[2]), parts[3:], body)
        raise ApiError(404, "No such route")

    @staticmethod
    def int_or_400(text):
        if not text.isdigit():
            raise ApiError(400, "Path or request body variable does not match schema.")
        return int(text)

    @staticmethod
    def public(ws):
        return {k: v for k, v in ws.items() if not k.startswith("_")}

    def workspace(self, ws_id):
        ws = self.fake.workspaces.get(ws_id)
        if ws is None:
            raise ApiError(404, "Workspace is not found.")
        return ws

    def require_running(self, ws):
        if not ws.get("_running"):
            raise ApiError(400, "Workspace is not running")

    def route_workspaces(self, method, parts, body):
        fake = self.fake
        if not parts and method == "POST":
            return self.create_workspace(body)
        if len(parts) == 2 and parts[0] == "team" and method == "GET":
            team = self.int_or_400(parts[1])
            with fake.lock:
                if not any(t["id"] == team for t in fake.teams):
                    raise ApiError(404, "Team not found.")
                return self.send_json(200, [self.public(w) for w in fake.workspaces.values() if w["teamId"] == team])
        if not parts:
            raise ApiError(404, "No such route")
        ws_id = self.int_or_400(parts[0])
        rest = parts[1:]
        if rest[:1] == ["logs"] and method == "GET":
            return self.logs(ws_id, rest[1:])
        with fake.lock:
            ws = self.workspace(ws_id)
            if not rest:
                if method == "GET":
                    return self.send_json(200, self.public(ws))
                if method == "DELETE":
                    del fake.workspaces[ws_id]
                    return self.send_json(200)
                if method == "PATCH":
                    for k in ("name", "planId", "replicas"):
                        if isinstance(body, dict) and k in body:
                            ws[k] = body[k]
                    return self.send_json(200)
            if rest == ["status"] and method == "GET":
                left = fake.polls_left.get(ws_id, 0)
                if left > 0:
                    fake.polls_left[ws_id] = left - 1
                    if left - 1 == 0:
                        ws["_running"] = True
                return self.send_json(200, {"isRunning": bool(ws.get("_running"))})
            if rest[:2] == ["git", "pull"] and method == "POST" and len(rest) in (2, 3, 4):
                self.require_running(ws)
                if len(rest) >= 3 and rest[2] not in ("origin", "upstream"):
                    raise ApiError(400, "git error: remote %s not found" % rest[2])
                return self.send_json(200)
            if rest == ["git", "head"] and method == "GET":
                self.require_running(ws)
                return self.send_json(200, {"head": "3f2a9c1e"})
            if rest[:1] == ["pipeline"] and len(rest) >= 2:
                return self.route_pipeline(method, ws, rest[1:])
            if rest[:2] == ["landscape", "deploy"] and method == "POST" and len(rest) in (2, 3):
                self.require_running(ws)
                if not ws.get("_landscape"):
                    raise ApiError(400, "Workspace does not supportMulti Server Deployments")
                fake.pipeline(ws_id, "run").start(rest[2] if len(rest) == 3 else None)
                return self.send_json(200)
            if rest == ["landscape", "teardown"] and method == "DELETE":
                return self.send_json(200)
            if rest == ["env-vars"]:
                if method == "GET":
                    return self.send_json(200, fake.env.get(ws_id, []))
                if method == "PUT":
                    current = {e["name"]: e for e in fake.env.get(ws_id, [])}
                    for e in body or []:
                        current[e["name"]] = e
                    fake.env[ws_id] = list(current.values())
                    return self.send_json(200)
                if method == "DELETE":
                    fake.env[ws_id] = [e for e in fake.env.get(ws_id, []) if e["name"] not in (body or [])]
                    return self.send_json(200)
            if rest == ["execute"] and method == "POST":
                self.require_running(ws)
                cmd = (body or {}).get("command", "")
                return self.send_json(200, {"command": cmd, "workingDir": (body or {}).get("workingDir", "/home/user/app"),
                                            "output": "ran: %s\n" % cmd, "error": ""})
        raise ApiError(404, "No such route")

    def create_workspace(self, body):
        fake = self.fake
        if not isinstance(body, dict):
            raise ApiError(400, "Path or request body variable does not match schema.")
        types = {"teamId": int, "name": str, "planId": int, "isPrivateRepo": bool, "replicas": int}
        for key, typ in types.items():
            if key not in body or type(body[key]) is not typ:
                raise ApiError(400, "Path or request body variable does not match schema: %s" % key)
        with fake.lock:
            if not any(t["id"] == body["teamId"] for t in fake.teams):
                raise ApiError(404, "Team not found.")
            if not any(p["id"] == body["planId"] for p in fake.plans):
                raise ApiError(400, "Path or request body variable does not match schema: unknown planId")
            wid = fake.next_id
            fake.next_id += 1
            ws = {"id": wid, "teamId": body["teamId"], "name": body["name"], "planId": body["planId"],
                  "isPrivateRepo": body["isPrivateRepo"], "replicas": body["replicas"], "baseImage": "ubuntu-24.04",
                  "dataCenterId": 1, "userId": 7, "gitUrl": body.get("gitUrl"),
                  "initialBranch": body.get("initialBranch"), "sourceWorkspaceId": None, "welcomeMessage": None,
                  "vpnConfig": None, "restricted": False, "collectTraces": False, "persistentLogs": False,
                  "createdAt": iso(now_ms()), "devDomain": "%d-3000.dev.5.codesphere.com" % wid,
                  "_landscape": False, "_running": fake.start_polls == 0}
            fake.workspaces[wid] = ws
            fake.polls_left[wid] = fake.start_polls
            return self.send_json(200, self.public(ws))

    def route_pipeline(self, method, ws, parts):
        stage = parts[0]
        if stage not in ("prepare", "test", "run"):
            raise ApiError(400, "Path or request body variable does not match schema.")
        self.require_running(ws)
        p = self.fake.pipeline(ws["id"], stage)
        if len(parts) == 1 and method == "GET":
            return self.send_json(200, p.poll())
        if parts[1:2] == ["start"] and method == "POST" and len(parts) in (2, 3):
            p.start(parts[2] if len(parts) == 3 else None)
            return self.send_json(200)
        if parts[1:] == ["stop"] and method == "POST":
            p.stop()
            return self.send_json(200)
        raise ApiError(404, "No such route")

    def route_domains(self, method, team, parts, body):
        fake = self.fake
        with fake.lock:
            if not any(t["id"] == team for t in fake.teams):
                raise ApiError(404, "Team not found.")
            if not parts and method == "GET":
                return self.send_json(200, [d for (t, _), d in fake.domains.items() if t == team])
            if len(parts) < 2 or parts[0] != "domain":
                raise ApiError(404, "No such route")
            name, rest = parts[1], parts[2:]
            d = fake.domains.get((team, name))
            if not rest and method == "POST":
                if d is not None:
                    raise ApiError(409, "Domain already exists.")
                d = {"teamId": team, "dataCenterId": 1, "name": name, "workspaces": {},
                     "certificateRequestStatus": {"issued": False, "reason": None},
                     "dnsEntries": {"a": "203.0.113.7", "cname": "dc1.codesphere.com", "txt": "cs-verify=new"},
                     "domainVerificationStatus": {"verified": False, "reason": "DNS records missing"}}
                fake.domains[(team, name)] = d
                return self.send_json(200, d)
            if d is None:
                raise ApiError(404, "Domain not found.")
            if not rest and method == "GET":
                return self.send_json(200, d)
            if not rest and method == "DELETE":
                del fake.domains[(team, name)]
                return self.send_json(200)
            if rest == ["workspace-connections"] and method == "PUT":
                ok = isinstance(body, dict) and all(
                    isinstance(k, str) and k.startswith("/") and isinstance(v, list) and
                    all(type(i) is int for i in v) for k, v in body.items())
                if not ok:
                    raise ApiError(400, "Path or request body variable does not match schema.")
                for ids in body.values():
                    for i in ids:
                        if i not in fake.workspaces:
                            raise ApiError(404, "Workspace is not found.")
                d["workspaces"] = body  # PUT replaces the whole map
                return self.send_json(200, d)
            if rest == ["verify"] and method == "POST":
                return self.send_json(200, d["domainVerificationStatus"])
        raise ApiError(404, "No such route")

    # --- logs (Server-Sent Events) -------------------------------------------------------------

    def logs(self, ws_id, parts):
        fake = self.fake
        # /logs/{stage}/{step} or /logs/run/{step}/server/{server}
        if len(parts) == 2:
            stage, step, server = parts[0], self.int_or_400(parts[1]), None
        elif len(parts) == 4 and parts[0] == "run" and parts[2] == "server":
            stage, step, server = "run", self.int_or_400(parts[1]), parts[3]
        else:
            raise ApiError(404, "No such route")
        if stage not in ("prepare", "test", "run"):
            raise ApiError(400, "Path or request body variable does not match schema.")
        with fake.lock:
            ws = fake.workspaces.get(ws_id)
            spec = fake.logs.get((ws_id, stage, step, server)) or fake.logs.get((ws_id, stage, step, None)) or {}
            problem = spec.get("problem")
            if ws is None:
                problem = {"status": 404, "title": "Not Found", "detail": "Workspace is not found."}
            elif not ws.get("_running"):
                problem = {"status": 400, "title": "Bad Request", "detail": "Workspace is not running"}
            elif ws.get("_landscape") and stage == "run" and server is None:
                problem = {"status": 400, "title": "Bad Request",
                           "detail": "Workspace is not running, run stage logs requested for Multi Server Deployment. "
                                     "Use the server or replica route."}
            if problem is None and ws is not None:
                p = fake.pipeline(ws_id, stage)
                if server is not None and server not in p.servers:
                    problem = {"status": 404, "title": "Not Found", "detail": "Server %s not found." % server}
                elif step >= p.nsteps:
                    problem = {"status": 404, "title": "Not Found", "detail": "Step %d not found." % step}
                live = spec.get("live", p.state in ("waiting", "running"))
            else:
                live = False
            entries = spec.get("entries")
            if entries is None:
                base = now_ms() - 60000
                entries = [{"timestamp": iso(base + i * 100), "kind": "E" if i % 7 == 3 else "I",
                            "data": "%s step %d line %d\n" % (stage, step, i)} for i in range(30)]
            live_ms = spec.get("liveMs", 100)
            generation = fake.generation
            fake.streams["opened"] += 1
            fake.streams["open"] += 1

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        closed_by = "closedByServer"
        try:
            self.wfile.write(b": connected\n\n")
            if problem is not None:
                problem = dict(problem)
                problem.setdefault("traceId", fake.trace_id())
                self.event("problem", problem)
            else:
                half = len(entries) // 2
                for chunk in (entries[:half], entries[half:]):
                    if chunk:
                        self.event("data", chunk)
                n = len(entries)
                deadline = time.time() + 120  # a safety net: no test reads this long
                while live and time.time() < deadline and generation == fake.generation:
                    time.sleep(live_ms / 1000.0)
                    self.wfile.write(b": keep-alive\n\n")
                    self.event("data", [{"timestamp": iso(now_ms()), "kind": "I",
                                         "data": "%s step %d live line %d\n" % (stage, step, n)}])
                    n += 1
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            closed_by = "closedByClient"
        finally:
            with fake.lock:
                if generation == fake.generation:
                    fake.streams["open"] -= 1
                    fake.streams[closed_by] += 1
            self.close_connection = True

    def event(self, name, payload):
        # A long payload goes out as several data: lines (the client joins them with "\n").
        # json.dumps escapes newlines inside strings, so splitting an indented dump at its
        # newlines only ever splits between tokens.
        data = json.dumps(payload, indent=1) if len(json.dumps(payload)) > 200 else json.dumps(payload)
        text = "event: %s\r\n" % name
        for line in data.split("\n"):
            text += "data: %s\r\n" % line
        text += "\r\n"
        self.wfile.write(text.encode())
        self.wfile.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--token", action="append", help="an accepted API token (repeatable: one per user)")
    ap.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (for tests)")
    args = ap.parse_args()

    Handler.fake = Fake(args.token or [os.environ.get("CODESPHERE_FAKE_TOKEN", "fake-token")])
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    if args.exit_on_stdin_eof:
        def watch():
            while sys.stdin.buffer.read(4096):
                pass
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
