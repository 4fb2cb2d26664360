#!/usr/bin/python3
"""The sign-in page in a real browser: headless Chromium driven by Selenium (Debian's chromium,
chromium-driver and python3-selenium; run with /usr/bin/python3, which sees Debian's modules).

mcp-host runs in auth.mode oauth with the codesphere plugin in front of the fake Codesphere
API, whose one key sees two teams. The browser opens /authorize, types a wrong key (the form
comes back with the reason and without the key), types the right one, picks the second team
and lands on the client's loopback redirect with a code. The code is then traded for a token
and a tool call runs with the user's key and team. Screenshots of each page are kept in
ARTIFACT_DIR (oauth-form.png, oauth-refused.png, oauth-team.png).

    signin.py BINARY PLUGIN_DIR ARTIFACT_DIR
"""
import base64
import hashlib
import http.server
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

KEY = "browser-user-key-" + secrets.token_hex(8)
WRONG_KEY = "not-a-codesphere-key-0000"
HERE = os.path.dirname(os.path.abspath(__file__))
checks = 0


def check(condition, message):
    global checks
    if not condition:
        raise AssertionError(message)
    checks += 1


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Callback(http.server.BaseHTTPRequestHandler):
    """The MCP client's loopback redirect: remembers the query it was sent."""
    received = []

    def do_GET(self):
        Callback.received.append(urllib.parse.urlparse(self.path))
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<!doctype html><title>Signed in</title><p>You can close this window.")

    def log_message(self, *args):
        pass


def start_line(proc, pattern):
    """Reads proc's stderr until a line matches; returns the match (the rest keeps flowing)."""
    for line in iter(proc.stderr.readline, ""):
        sys.stderr.write(line)
        m = re.search(pattern, line)
        if m:
            threading.Thread(target=lambda: [sys.stderr.write(l) for l in iter(proc.stderr.readline, "")], daemon=True).start()
            return m
    raise RuntimeError("process ended before printing " + pattern)


def main():
    binary, plugin_dir, artifacts = sys.argv[1:4]
    os.makedirs(artifacts, exist_ok=True)
    work = tempfile.mkdtemp()
    procs = []
    driver = None
    try:
        fake = subprocess.Popen([sys.executable, os.path.join(HERE, "../../fakes/codesphere_fake.py"), "--port", "0",
                                 "--token", KEY, "--exit-on-stdin-eof"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(fake)
        fake_url = "http://127.0.0.1:%d" % int(fake.stdout.readline().split()[1])
        alpha = {"id": 1, "defaultDataCenterId": 1, "name": "Alpha", "isFirst": True, "role": 0}
        request("POST", fake_url + "/_fake/state", json.dumps({"teams": [alpha, dict(alpha, id=2, name="Beta", isFirst=False)]}).encode(),
             {"Content-Type": "application/json"})

        config = os.path.join(work, "mcp-host.yaml")
        with open(config, "w") as f:
            f.write("state_dir: %s/state\nplugin_paths: [%s]\nserver:\n  http: { auth: { mode: oauth } }\nplugins:\n"
                    "  - { name: cs, library: codesphere, settings: { base_url: \"%s/api\", max_retries: 0 } }\n"
                    % (work, plugin_dir, fake_url))
        host = subprocess.Popen([binary, "serve", "--config", config, "--transport", "http", "--listen", "127.0.0.1:0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(host)
        mcp_url = start_line(host, r"at (http://127\.0\.0\.1:\d+)/mcp").group(1) + "/mcp"
        base = mcp_url[:-4]

        callback = http.server.HTTPServer(("127.0.0.1", 0), Callback)
        threading.Thread(target=callback.serve_forever, daemon=True).start()
        redirect = "http://127.0.0.1:%d/callback" % callback.server_port

        status, body = request("POST", base + "/register", json.dumps({"redirect_uris": [redirect], "client_name": "Browser test"}).encode(),
                            {"Content-Type": "application/json"})
        check(status == 201, "registration: %d %s" % (status, body))
        client_id = json.loads(body)["client_id"]
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(12)
        authorize = base + "/authorize?" + urllib.parse.urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect, "code_challenge": challenge,
            "code_challenge_method": "S256", "state": state, "resource": mcp_url})

        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=800,700",
                    "--user-data-dir=" + os.path.join(work, "chromium")):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.set_page_load_timeout(30)

        # The form: one labelled password field, described by its help text.
        driver.get(authorize)
        check(driver.title == "Connect to mcp-host", "title: " + driver.title)
        field = driver.find_element(By.NAME, "cs.api_token")
        check(field.get_attribute("type") == "password", "the key is a password field")
        label = driver.find_element(By.CSS_SELECTOR, "label[for='%s']" % field.get_attribute("id"))
        check(label.text == "Codesphere API token", "label: " + label.text)
        check(field.get_attribute("aria-describedby"), "the help text describes the field")
        driver.save_screenshot(os.path.join(artifacts, "oauth-form.png"))

        # A wrong key: the same form with the reason, and the key nowhere in the page.
        field.send_keys(WRONG_KEY)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        alert = WebDriverWait(driver, 15).until(lambda d: d.find_element(By.CSS_SELECTOR, "[role=alert]"))
        check("did not accept this API token" in alert.text, "refusal: " + alert.text)
        check(WRONG_KEY not in driver.page_source, "the refused key is not echoed")
        driver.save_screenshot(os.path.join(artifacts, "oauth-refused.png"))

        # The right key: two teams, so a choice, with no secret in the page.
        driver.find_element(By.NAME, "cs.api_token").send_keys(KEY)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        select = WebDriverWait(driver, 15).until(lambda d: d.find_element(By.NAME, "cs.team_id"))
        check([o.text for o in Select(select).options] == ["Alpha (1)", "Beta (2)"], "the teams are offered")
        check(KEY not in driver.page_source, "the key is not in the second step")
        driver.save_screenshot(os.path.join(artifacts, "oauth-team.png"))
        Select(select).select_by_visible_text("Beta (2)")
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(driver, 15).until(lambda d: d.current_url.startswith(redirect))
        check(driver.title == "Signed in", "landed on the loopback redirect")

        # The client's side: the code, the state, the issuer; then a token and a tool call.
        landed = [u for u in Callback.received if u.path == "/callback"]  # the browser may also ask for /favicon.ico
        check(len(landed) == 1, "one redirect: %s" % Callback.received)
        query = urllib.parse.parse_qs(landed[0].query)
        check(query.get("state") == [state], "state comes back")
        check(query.get("iss") == [base], "iss is this server")
        status, body = request("POST", base + "/token", urllib.parse.urlencode({
            "grant_type": "authorization_code", "client_id": client_id, "code": query["code"][0], "code_verifier": verifier,
            "redirect_uri": redirect, "resource": mcp_url}).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
        check(status == 200, "token: %d %s" % (status, body))
        token = json.loads(body)["access_token"]
        meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
        msg = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_workspaces", "arguments": {}, "_meta": meta}}
        status, body = request("POST", mcp_url, json.dumps(msg).encode(), {
            "Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept": "application/json",
            "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "list_workspaces"})
        check(status == 200 and not json.loads(body)["result"].get("isError"), "tool call: %d %s" % (status, body))
        _, recorded = request("GET", fake_url + "/_fake/requests")
        calls = [r for r in json.loads(recorded)["requests"] if r["path"].startswith("/workspaces/")]
        check([(r["path"], r["user"]) for r in calls] == [("/workspaces/team/2", 0)], "the user's key and picked team: %s" % calls)
        print("browser sign-in: %d checks passed; screenshots in %s" % (checks, artifacts))
    finally:
        if driver:
            driver.quit()
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
