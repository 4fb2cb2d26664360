#!/usr/bin/env python3
"""Signs in to an mcp-host running with auth.mode oauth, as a client and a person would
(register, the form, PKCE, token), and prints the access token. For scripts/bench.sh.

    oauth_token.py http://127.0.0.1:PORT [field=value ...]
"""
import base64, hashlib, html, http.client, json, re, secrets, sys, urllib.parse

base = urllib.parse.urlparse(sys.argv[1])
fields = dict(a.split("=", 1) for a in sys.argv[2:])

def request(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(base.hostname, base.port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    return r.status, r.headers, r.read().decode()  # headers: any case (HAProxy sends lowercase)

status, _, body = request("POST", "/register", json.dumps({"redirect_uris": ["http://127.0.0.1/cb"], "client_name": "bench"}),
                          {"Content-Type": "application/json"})
client = json.loads(body)["client_id"]
verifier = secrets.token_urlsafe(48)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
query = urllib.parse.urlencode({"response_type": "code", "client_id": client, "redirect_uri": "http://127.0.0.1/cb",
                                "code_challenge": challenge, "code_challenge_method": "S256", "state": "b"})
status, headers, page = request("GET", "/authorize?" + query)
if status != 200:
    sys.exit(f"GET /authorize answered {status}: {re.sub('<[^>]+>', ' ', page)[:300]}")
form = {k: html.unescape(v) for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)}
form.update(fields)
cookie = headers["Set-Cookie"].split(";")[0]
status, headers, _ = request("POST", "/authorize", urllib.parse.urlencode(form),
                             {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
code = urllib.parse.parse_qs(urllib.parse.urlparse(headers["Location"]).query)["code"][0]
status, _, body = request("POST", "/token", urllib.parse.urlencode({"grant_type": "authorization_code", "client_id": client,
                                                                     "code": code, "code_verifier": verifier,
                                                                     "redirect_uri": "http://127.0.0.1/cb"}),
                          {"Content-Type": "application/x-www-form-urlencoded"})
print(json.loads(body)["access_token"])
