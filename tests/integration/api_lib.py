"""Shared pieces of the HTTP API tests (python3 stdlib only): a client on one kept-alive TLS
connection, counted checks, a checker of replies against OpenAPI 3.0 schemas, and CSRs made with
the openssl command."""
import http.client
import json
import os
import re
import ssl
import subprocess
import urllib.parse


# --- HTTP ---------------------------------------------------------------------------------------


class Reply:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers
        self.doc = None
        ctype = headers.get("Content-Type", "") if headers is not None else ""
        if ctype.startswith("application/json"):
            try:
                self.doc = json.loads(body)
            except ValueError:
                self.doc = None

    def error_code(self):
        if isinstance(self.doc, dict) and isinstance(self.doc.get("error"), dict):
            return self.doc["error"].get("code")
        return None


class Client:
    """HTTPS with the instance's root as the only trust anchor, on one kept-alive connection
    (a new TLS handshake per request would be most of the test's time)."""

    def __init__(self, base, cafile):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.conn = None
        self.count = 0

    def _send(self, method, path, data, hdrs):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                                    timeout=30)
        self.conn.request(method, path, body=data, headers=hdrs)
        resp = self.conn.getresponse()
        return Reply(resp.status, resp.read(), resp.headers)

    def call(self, method, path, token=None, body=None, raw=None, ctype=None, headers=None):
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif raw is not None:
            data = raw
            if ctype is not None:
                hdrs["Content-Type"] = ctype
        elif method in ("POST", "PUT"):
            data = b""
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        self.count += 1
        try:
            return self._send(method, path, data, hdrs)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server ended an idle connection before this request reached it.
            self.conn.close()
            self.conn = None
            return self._send(method, path, data, hdrs)


# --- Checks -------------------------------------------------------------------------------------


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def ok(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed.append(what)
            print("FAIL: " + what, flush=True)
        return cond


def validate(schema, value, path="$"):
    """Errors of value against an OpenAPI 3.0 Schema Object (the subset the API uses)."""
    errs = []
    if value is None:
        if not schema.get("nullable") and "type" in schema:
            errs.append(path + ": null")
        return errs
    if "enum" in schema and value not in schema["enum"]:
        errs.append("%s: %r not in %r" % (path, value, schema["enum"]))
    types = {"string": str, "integer": int, "boolean": bool, "object": dict, "array": list}
    t = schema.get("type")
    if t is not None:
        if not isinstance(value, types[t]) or (t == "integer" and isinstance(value, bool)):
            return errs + ["%s: %r is not %s" % (path, value, t)]
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append("%s: %r does not match %s" % (path, value, schema["pattern"]))
        if schema.get("format") == "date-time" and not re.fullmatch(
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value):
            errs.append("%s: %r is not an RFC 3339 UTC time" % (path, value))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errs.append("%s: lacks %s" % (path, name))
        for name, v in value.items():
            if name in props:
                errs += validate(props[name], v, path + "." + name)
            elif schema.get("additionalProperties") is False:
                errs.append("%s: unexpected member %s" % (path, name))
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errs += validate(schema["items"], v, "%s[%d]" % (path, i))
    return errs


# --- Fixtures -----------------------------------------------------------------------------------


def make_csr(cn):
    """A PEM CSR for a fresh P-256 key with CN=cn (the device profile's form)."""
    out = subprocess.run(
        ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", os.devnull, "-subj", "/CN=" + cn, "-outform", "PEM"],
        check=True, capture_output=True, text=True)
    return out.stdout
