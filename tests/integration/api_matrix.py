#!/usr/bin/env python3
"""The role x route x tenant matrix of the trust service's HTTP API (python3 stdlib only).

Walks every route that /api/v1/openapi.json lists with every kind of caller (instance admin,
tenant admin, operator, auditor, device, no token, a bad token, a revoked token, an expired
token), in the caller's own tenant and in another one, and compares each answer's status with
EXPECTED below: a table written from the API's specification (docs/api.md), not read from the
server. A route the document lists that EXPECTED does not know, or the other way round, fails
the test. Mutating routes act on a fresh object in every cell, and a refused mutation is checked
to have changed nothing. Successful JSON replies are checked against the document's schemas.

Then the scope checks the matrix cannot express: a device sees only its own records, a serial of
another tenant is 404 even for the instance admin, and lists page with cursors.

Usage: ADMIN_TOKEN=tsk_... api_matrix.py --url https://127.0.0.1:PORT --cafile root.pem
"""
import argparse
import base64
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.parse

from api_lib import Checks, Client, make_csr, validate

# --- Callers ------------------------------------------------------------------------------------

IA = "instance-admin"
IAUD = "instance-auditor"
ADMIN = "admin"
OPER = "operator"
AUDIT = "auditor"
DEV = "device"
NONE = "no-token"
BAD = "bad-token"
REVOKED = "revoked-token"
EXPIRED = "expired-token"
CALLERS = [IA, IAUD, ADMIN, OPER, AUDIT, DEV, NONE, BAD, REVOKED, EXPIRED]
INVALID = {NONE, BAD, REVOKED, EXPIRED}
TENANT_ROLES = {ADMIN, OPER, AUDIT, DEV}

OWN = "alpha"  # the tenant of every tenant-bound caller
OTHER = "beta"

# --- The expected table -------------------------------------------------------------------------
#
# kind "public": no authentication; every caller gets status `ok`, with any token or none.
# kind "global": a bearer token; `allowed` callers get `ok`, other valid tokens 403, invalid 401.
# kind "tenant": a bearer token and {tenant}; the instance admin acts in both tenants, the instance
#     auditor reads in both (an auditor's routes; others 403); a tenant
#     caller gets 404 in the other tenant whatever its role, and in its own tenant `ok` when its
#     role is in `allowed`, else 403; invalid tokens 401.

T = "/api/v1/tenants/{tenant}"
A_O_U = {ADMIN, OPER, AUDIT}
A_O = {ADMIN, OPER}
ALL = {ADMIN, OPER, AUDIT, DEV}


def rule(kind, ok, allowed=frozenset()):
    return {"kind": kind, "ok": ok, "allowed": set(allowed)}


EXPECTED = {
    ("GET", "/api/v1/me"): rule("global", 200, {IA, IAUD} | ALL),
    ("GET", "/api/v1/tenants"): rule("global", 200, {IA, IAUD} | A_O_U),
    ("POST", "/api/v1/tenants"): rule("global", 201, {IA}),
    ("GET", T): rule("tenant", 200, A_O_U),
    ("GET", T + "/users"): rule("tenant", 200, {ADMIN}),
    ("POST", T + "/users"): rule("tenant", 201, {ADMIN}),
    ("GET", T + "/users/{user}"): rule("tenant", 200, {ADMIN}),
    ("POST", T + "/users/{user}/disable"): rule("tenant", 200, {ADMIN}),
    ("POST", T + "/users/{user}/enable"): rule("tenant", 200, {ADMIN}),
    ("GET", T + "/tokens"): rule("tenant", 200, {ADMIN}),
    ("POST", T + "/tokens"): rule("tenant", 201, {ADMIN}),
    ("DELETE", T + "/tokens/{id}"): rule("tenant", 200, {ADMIN}),
    ("GET", T + "/cas"): rule("tenant", 200, A_O_U),
    ("GET", T + "/cas/{kind}"): rule("tenant", 200, A_O_U),
    ("POST", T + "/cas/verification"): rule("tenant", 201, {ADMIN}),
    ("GET", T + "/profiles"): rule("tenant", 200, A_O_U),
    ("GET", T + "/profiles/{name}"): rule("tenant", 200, A_O_U),
    ("PUT", T + "/profiles/{name}"): rule("tenant", 201, {ADMIN}),
    ("GET", T + "/certificates"): rule("tenant", 200, ALL),
    ("POST", T + "/certificates"): rule("tenant", 201, A_O),
    ("GET", T + "/certificates/{serial}"): rule("tenant", 200, ALL),
    ("POST", T + "/certificates/{serial}/revoke"): rule("tenant", 200, A_O),
    ("POST", T + "/certificates/{serial}/renew"): rule("tenant", 201, A_O),
    ("POST", T + "/certificates/{serial}/rekey"): rule("tenant", 201, A_O),
    ("GET", T + "/devices"): rule("tenant", 200, A_O_U),
    ("POST", T + "/devices"): rule("tenant", 201, A_O),
    ("GET", T + "/devices/{uid}"): rule("tenant", 200, ALL),
    ("POST", T + "/devices/{uid}/disable"): rule("tenant", 200, A_O),
    ("POST", T + "/devices/{uid}/enable"): rule("tenant", 200, A_O),
    ("GET", T + "/devices/{uid}/status"): rule("tenant", 200, ALL),
    ("POST", T + "/devices/{uid}/commands"): rule("tenant", 201, A_O),
    ("GET", T + "/devices/{uid}/commands"): rule("tenant", 200, ALL),
    ("GET", T + "/devices/{uid}/commands/{id}"): rule("tenant", 200, ALL),
    ("GET", T + "/groups"): rule("tenant", 200, A_O_U),
    ("POST", T + "/groups"): rule("tenant", 201, A_O),
    ("GET", T + "/groups/{name}"): rule("tenant", 200, A_O_U),
    ("DELETE", T + "/groups/{name}"): rule("tenant", 200, A_O),
    ("POST", T + "/groups/{name}/members"): rule("tenant", 200, A_O),
    ("POST", T + "/groups/{name}/members/remove"): rule("tenant", 200, A_O),
    ("DELETE", T + "/groups/{name}/members/{uid}"): rule("tenant", 200, A_O),
    # Firmware releases. A real update file needs a signing key in a key store: publishing one,
    # and reading and withdrawing what was published, are tested in test_fw_publish.sh. Here the
    # allowed callers reach the handler with a body that is not an update file (400) and a release
    # id no tenant has (404); every other caller is refused before, as for every route.
    ("GET", T + "/firmware"): rule("tenant", 200, A_O_U),
    ("POST", T + "/firmware"): rule("tenant", 400, A_O),
    ("GET", T + "/firmware/{id}"): rule("tenant", 404, A_O_U),
    ("POST", T + "/firmware/{id}/withdraw"): rule("tenant", 404, A_O),
    ("GET", "/agent/v1/firmware/{id}"): rule("public", 401),
    ("GET", T + "/jobs"): rule("tenant", 200, A_O_U),
    ("POST", T + "/jobs"): rule("tenant", 201, A_O),
    ("GET", T + "/jobs/{id}"): rule("tenant", 200, A_O_U),
    ("GET", T + "/claims"): rule("tenant", 200, A_O),
    ("POST", T + "/claims"): rule("tenant", 201, A_O),
    ("DELETE", T + "/claims/{id}"): rule("tenant", 200, A_O),
    ("GET", T + "/revocations"): rule("tenant", 200, ALL),
    # The audit log spans the instance: instance-wide users only, tenant admins included out.
    ("GET", "/api/v1/audit"): rule("global", 200, {IA, IAUD}),
    ("GET", "/api/v1/audit/verify"): rule("global", 200, {IA, IAUD}),
    ("GET", "/api/v1/openapi.json"): rule("public", 200),
    ("GET", "/healthz"): rule("public", 200),
    ("GET", "/readyz"): rule("public", 200),
    ("GET", "/metrics"): rule("public", 200),
    ("GET", "/crl/{crl}"): rule("public", 200),
    ("GET", "/ocsp/{b64}"): rule("public", 200),
    ("POST", "/ocsp"): rule("public", 200),
    # EST: cacerts and csrattrs are open; enrollment needs a client certificate or a claim code,
    # which no caller here has (a bearer token is not an EST credential).
    ("GET", "/.well-known/est/cacerts"): rule("public", 200),
    ("GET", "/.well-known/est/csrattrs"): rule("public", 200),
    ("POST", "/.well-known/est/simpleenroll"): rule("public", 401),
    ("POST", "/.well-known/est/simplereenroll"): rule("public", 401),
    ("POST", "/.well-known/est/serverkeygen"): rule("public", 401),
    ("GET", "/.well-known/est/{tenant}/cacerts"): rule("public", 200),
    ("GET", "/.well-known/est/{tenant}/csrattrs"): rule("public", 200),
    ("POST", "/.well-known/est/{tenant}/simpleenroll"): rule("public", 401),
    ("POST", "/.well-known/est/{tenant}/simplereenroll"): rule("public", 401),
    ("POST", "/.well-known/est/{tenant}/serverkeygen"): rule("public", 401),
    # Provisioning sessions take a device's TLS client certificate, which no caller here has.
    ("POST", "/agent/v1/session"): rule("public", 401),
}


def expected_status(rule_, caller, side):
    if rule_["kind"] == "public":
        return rule_["ok"]
    if caller in INVALID:
        return 401
    if rule_["kind"] == "tenant":
        if caller == IA:
            caller = ADMIN  # an admin in every tenant
        elif caller == IAUD:
            caller = AUDIT  # an auditor in every tenant
        elif side != OWN:
            return 404
    return rule_["ok"] if caller in rule_["allowed"] else 403


# --- Fixtures -----------------------------------------------------------------------------------


class World:
    """Two tenants with a user and token for every role, made through the API as the admin."""

    def __init__(self, client, admin_token, checks):
        self.c = client
        self.ia = admin_token
        self.checks = checks
        self.n = 0
        self.tokens = {IA: admin_token}
        self.device_uid = {}
        self.device_serial = {}

    def fresh(self, prefix):
        self.n += 1
        return "%s%d" % (prefix, self.n)

    def must(self, reply, status, what):
        if reply.status != status:
            raise SystemExit("setup failed: %s: %d %s" % (what, reply.status, reply.body[:300]))
        return reply.doc

    def admin(self, method, path, body=None):
        return self.c.call(method, path, token=self.ia, body=body)

    def token_for(self, tenant, user, name, lifetime=None):
        body = {"user": user, "name": name}
        if lifetime is not None:
            body["lifetime_seconds"] = lifetime
        doc = self.must(self.admin("POST", "/api/v1/tenants/%s/tokens" % tenant, body), 201,
                        "token for %s@%s" % (user, tenant))
        return doc

    def issue(self, tenant, cn):
        doc = self.must(self.admin("POST", "/api/v1/tenants/%s/certificates" % tenant,
                                   {"csr": make_csr(cn), "profile": "device"}), 201,
                        "certificate for %s in %s" % (cn, tenant))
        return doc["serial"]

    def setup(self):
        expired = None
        for tenant in (OWN, OTHER):
            self.must(self.admin("POST", "/api/v1/tenants", {"name": tenant}), 201,
                      "tenant " + tenant)
            uid = "self-" + tenant
            self.must(self.admin("POST", "/api/v1/tenants/%s/devices" % tenant, {"uid": uid}),
                      201, "device " + uid)
            self.device_uid[tenant] = uid
            self.device_serial[tenant] = self.issue(tenant, uid)
            for role in (ADMIN, OPER, AUDIT, DEV):
                body = {"name": role + "1", "role": role}
                if role == DEV:
                    body["device_uid"] = uid
                self.must(self.admin("POST", "/api/v1/tenants/%s/users" % tenant, body), 201,
                          "user %s in %s" % (role, tenant))
                if tenant == OWN:
                    self.tokens[role] = self.token_for(tenant, role + "1", "matrix")["token"]
            if tenant == OWN:
                # Expires one second after it is made; the rest of the set-up outlasts that.
                expired = self.token_for(tenant, "admin1", "short", lifetime=1)
                revoked = self.token_for(tenant, "admin1", "revoked")
                self.must(self.admin("DELETE", "/api/v1/tenants/%s/tokens/%d" %
                                     (tenant, revoked["id"])), 200, "revoking a token")
                self.tokens[REVOKED] = revoked["token"]
        self.tokens[EXPIRED] = expired["token"]
        self.tokens[BAD] = "tsk_" + secrets.token_hex(32)
        self.tokens[NONE] = None
        # A second device in the caller's tenant, for the device's scope checks.
        self.must(self.admin("POST", "/api/v1/tenants/%s/devices" % OWN, {"uid": "other-dev"}),
                  201, "device other-dev")
        self.other_dev_serial = self.issue(OWN, "other-dev")
        self.profile = self.must(self.admin("GET", "/api/v1/tenants/%s/profiles/device" % OWN),
                                 200, "device profile")
        # The issuer's name and key hashes are fixed parts of an OCSP request: when both tenants'
        # always put a '/' in its base64, another tenant's issuing CA serves.
        self.ocsp_request = None
        for tenant in [OWN, OTHER] + ["ocsp%d" % i for i in range(1, 11)]:
            if tenant.startswith("ocsp"):
                self.must(self.admin("POST", "/api/v1/tenants", {"name": tenant}), 201,
                          "tenant " + tenant)
            issuing = self.must(self.admin("GET", "/api/v1/tenants/%s/cas/issuing" % tenant),
                                200, "issuing CA")
            self.ocsp_request = ocsp_request(issuing["pem"])
            if self.ocsp_request is not None:
                break
        if self.ocsp_request is None:
            raise SystemExit("setup failed: every OCSP request has a '/' in its base64")
        while True:
            r = self.c.call("GET", "/api/v1/me", token=self.tokens[EXPIRED])
            if r.status == 401:
                break
            time.sleep(0.25)


def ocsp_request(issuer_pem):
    """A DER OCSP request to the issuer whose base64 has no '/', or None. The matrix is about who
    may call a route; whether a %2F may stand in a path segment is a question of its own."""
    with tempfile.TemporaryDirectory() as d:
        issuer = os.path.join(d, "issuer.pem")
        out = os.path.join(d, "req.der")
        with open(issuer, "w") as f:
            f.write(issuer_pem)
        for i in range(1, 30):
            subprocess.run(["openssl", "ocsp", "-issuer", issuer, "-serial", hex(i), "-nonce",
                            "-reqout", out], check=True, capture_output=True)
            with open(out, "rb") as f:
                der = f.read()
            if b"/" not in base64.b64encode(der):
                return der
    return None


# --- One cell: the request of a route in a tenant, on a fresh object where it changes one ------


class Cell:
    """The request for a cell, and (for mutations) how to see that a refusal changed nothing."""

    def __init__(self, path, body=None, raw=None, ctype=None, unchanged=None):
        self.path = path
        self.body = body
        self.raw = raw
        self.ctype = ctype
        self.unchanged = unchanged  # a function returning "" when nothing changed, else why


def build_cell(w, method, pattern, side):
    a = w.admin
    t = "/api/v1/tenants/" + side
    key = (method, pattern)

    def gone(path):
        return lambda: "" if a("GET", path).status == 404 else path + " exists"

    def cert_state(serial, want="valid"):
        def check():
            r = a("GET", "%s/certificates/%s" % (t, serial))
            return "" if r.doc and r.doc.get("status") == want else "certificate " + serial
        return check

    if key == ("POST", "/api/v1/tenants"):
        name = w.fresh("mx-t")
        return Cell("/api/v1/tenants", body={"name": name},
                    unchanged=gone("/api/v1/tenants/" + name))
    if key == ("POST", T + "/users"):
        name = w.fresh("u")
        return Cell(t + "/users", body={"name": name, "role": "operator"},
                    unchanged=gone("%s/users/%s" % (t, name)))
    if key == ("GET", T + "/users/{user}"):
        return Cell(t + "/users/auditor1")
    if key in (("POST", T + "/users/{user}/disable"), ("POST", T + "/users/{user}/enable")):
        name = w.fresh("ud")
        w.must(a("POST", t + "/users", {"name": name, "role": "auditor"}), 201, "user " + name)
        disabling = pattern.endswith("disable")
        if not disabling:
            w.must(a("POST", "%s/users/%s/disable" % (t, name)), 200, "disabling " + name)

        def user_same():
            r = a("GET", "%s/users/%s" % (t, name))
            return "" if r.doc and r.doc["disabled"] == (not disabling) else "user " + name
        return Cell("%s/users/%s/%s" % (t, name, "disable" if disabling else "enable"),
                    unchanged=user_same)
    if key == ("POST", T + "/tokens"):
        return Cell(t + "/tokens", body={"user": "auditor1", "name": w.fresh("tok")})
    if key == ("DELETE", T + "/tokens/{id}"):
        tok = w.token_for(side, "auditor1", w.fresh("del"))

        def token_same():
            r = a("GET", t + "/tokens")
            rows = [x for x in r.doc["items"] if x["id"] == tok["id"]] if r.doc else []
            return "" if rows and rows[0]["revoked_at"] is None else "token %d" % tok["id"]
        return Cell("%s/tokens/%d" % (t, tok["id"]), unchanged=token_same)
    if key == ("GET", T + "/cas/{kind}"):
        return Cell(t + "/cas/" + ("issuing" if side == OWN else "root"))
    if key == ("POST", T + "/cas/verification"):
        return Cell(t + "/cas/verification", body={"code": w.fresh("reg")})
    if key == ("GET", T + "/profiles/{name}"):
        return Cell(t + "/profiles/device")
    if key == ("PUT", T + "/profiles/{name}"):
        name = w.fresh("prof")
        body = dict(w.profile, name=name)
        return Cell("%s/profiles/%s" % (t, name), body=body,
                    unchanged=gone("%s/profiles/%s" % (t, name)))
    if key == ("POST", T + "/certificates"):
        return Cell(t + "/certificates",
                    body={"csr": make_csr(w.fresh("iss")), "profile": "device"})
    if key == ("GET", T + "/certificates/{serial}"):
        return Cell("%s/certificates/%s" % (t, w.device_serial[side]))
    if key == ("POST", T + "/certificates/{serial}/revoke"):
        serial = w.issue(side, w.fresh("rev"))
        return Cell("%s/certificates/%s/revoke" % (t, serial), body={"reason": "keyCompromise"},
                    unchanged=cert_state(serial))
    if key == ("POST", T + "/certificates/{serial}/renew"):
        serial = w.issue(side, w.fresh("ren"))
        return Cell("%s/certificates/%s/renew" % (t, serial), unchanged=cert_state(serial))
    if key == ("POST", T + "/certificates/{serial}/rekey"):
        cn = w.fresh("rk")
        serial = w.issue(side, cn)
        return Cell("%s/certificates/%s/rekey" % (t, serial), body={"csr": make_csr(cn)},
                    unchanged=cert_state(serial))
    if key == ("POST", T + "/devices"):
        uid = w.fresh("dv")
        return Cell(t + "/devices", body={"uid": uid}, unchanged=gone("%s/devices/%s" % (t, uid)))
    if key == ("GET", T + "/devices/{uid}"):
        return Cell("%s/devices/%s" % (t, w.device_uid[side]))
    if key in (("POST", T + "/devices/{uid}/disable"), ("POST", T + "/devices/{uid}/enable")):
        uid = w.fresh("ds")
        w.must(a("POST", t + "/devices", {"uid": uid}), 201, "device " + uid)
        disabling = pattern.endswith("disable")
        if not disabling:
            w.must(a("POST", "%s/devices/%s/disable" % (t, uid)), 200, "disabling " + uid)

        def device_same():
            r = a("GET", "%s/devices/%s" % (t, uid))
            want = "enabled" if disabling else "disabled"
            return "" if r.doc and r.doc["status"] == want else "device " + uid
        return Cell("%s/devices/%s/%s" % (t, uid, "disable" if disabling else "enable"),
                    unchanged=device_same)
    if key == ("POST", T + "/claims"):
        return Cell(t + "/claims", body={"uses": 2})
    if key == ("DELETE", T + "/claims/{id}"):
        claim = w.must(a("POST", t + "/claims", {}), 201, "claim code")

        def claim_same():
            r = a("GET", t + "/claims")
            rows = [x for x in r.doc["items"] if x["id"] == claim["id"]] if r.doc else []
            return "" if rows and rows[0]["revoked_at"] is None else "claim %d" % claim["id"]
        return Cell("%s/claims/%d" % (t, claim["id"]), unchanged=claim_same)
    if key == ("GET", T + "/devices/{uid}/status"):
        return Cell("%s/devices/%s/status" % (t, w.device_uid[side]))
    if key == ("GET", T + "/devices/{uid}/commands"):
        return Cell("%s/devices/%s/commands" % (t, w.device_uid[side]))
    if key == ("POST", T + "/devices/{uid}/commands"):
        path = "%s/devices/%s/commands" % (t, w.device_uid[side])
        before = len(w.must(a("GET", path), 200, "commands")["items"])

        def commands_same():
            r = a("GET", path)
            return "" if r.doc and len(r.doc["items"]) == before else "commands of " + path
        return Cell(path, body={"name": "echo", "args": ["x"], "ttl": 60},
                    unchanged=commands_same)
    if key == ("GET", T + "/devices/{uid}/commands/{id}"):
        path = "%s/devices/%s/commands" % (t, w.device_uid[side])
        cmd = w.must(a("POST", path, {"name": "echo"}), 201, "command")
        return Cell("%s/%s" % (path, cmd["id"]))
    if key == ("POST", T + "/groups"):
        name = w.fresh("gc")
        return Cell(t + "/groups", body={"name": name}, unchanged=gone("%s/groups/%s" % (t, name)))
    if pattern.startswith(T + "/groups/{name}"):
        name = w.fresh("gr")
        w.must(a("POST", t + "/groups", {"name": name}), 201, "group " + name)
        group = "%s/groups/%s" % (t, name)
        uid = w.fresh("gm")
        w.must(a("POST", t + "/devices", {"uid": uid}), 201, "device " + uid)

        def members_are(n):
            def check():
                r = a("GET", group)
                return "" if r.doc and r.doc["members"] == n else "group " + name
            return check
        if key == ("GET", T + "/groups/{name}"):
            return Cell(group)
        if key == ("DELETE", T + "/groups/{name}"):
            return Cell(group, unchanged=lambda: "" if a("GET", group).status == 200 else
                        group + " deleted")
        if key == ("POST", T + "/groups/{name}/members"):
            return Cell(group + "/members", body={"devices": [uid]}, unchanged=members_are(0))
        w.must(a("POST", group + "/members", {"devices": [uid]}), 200, "member " + uid)
        if key == ("POST", T + "/groups/{name}/members/remove"):
            return Cell(group + "/members/remove", body={"devices": [uid]},
                        unchanged=members_are(1))
        return Cell("%s/members/%s" % (group, uid), unchanged=members_are(1))
    if key == ("POST", T + "/jobs"):
        return Cell(t + "/jobs", body={"device": w.fresh("jd"), "reenroll": True, "rekey": True})
    if key == ("GET", T + "/jobs/{id}"):
        job = w.must(a("POST", t + "/jobs", {"device": w.fresh("jg"), "reenroll": True}), 201,
                     "job")
        return Cell("%s/jobs/%d" % (t, job["id"]))
    if key == ("POST", T + "/firmware"):
        def no_release():
            r = a("GET", t + "/firmware")
            return "" if r.doc is not None and r.doc["items"] == [] else "a release appeared"
        return Cell(t + "/firmware?all=true", raw=b"TSFW not an update file",
                    ctype="application/octet-stream", unchanged=no_release)
    if pattern.startswith(T + "/firmware/{id}") or key == ("GET", "/agent/v1/firmware/{id}"):
        return Cell(pattern.replace("{tenant}", side).replace("{id}", "0" * 32))
    if key == ("POST", "/agent/v1/session"):
        # version = 1: a well-formed AgentMessage, refused for want of a client certificate.
        return Cell("/agent/v1/session", raw=b"\x08\x01", ctype="application/x-protobuf")
    if key == ("GET", T + "/revocations"):
        return Cell(t + "/revocations?since=0")
    if key == ("GET", "/crl/{crl}"):
        return Cell("/crl/%s.crl" % side)
    if key == ("GET", "/ocsp/{b64}"):
        b64 = base64.b64encode(w.ocsp_request).decode()
        return Cell("/ocsp/" + urllib.parse.quote(b64, safe=""))
    if key == ("POST", "/ocsp"):
        return Cell("/ocsp", raw=w.ocsp_request, ctype="application/ocsp-request")
    if method == "POST" and pattern.startswith("/.well-known/est/"):
        csr = subprocess.run(["openssl", "req", "-in", "/dev/stdin", "-outform", "DER"],
                             input=make_csr(w.fresh("est")).encode(), check=True,
                             capture_output=True).stdout
        return Cell(pattern.replace("{tenant}", side), raw=base64.b64encode(csr),
                    ctype="application/pkcs10")
    # Reads need no object of their own.
    return Cell(pattern.replace("{tenant}", side))


# --- The walk -----------------------------------------------------------------------------------


def response_schema(op):
    content = op.get("responses", {}).get("2XX", {}).get("content", {})
    return content.get("application/json", {}).get("schema")


def walk(w, checks, doc):
    listed = {}
    for pattern, item in doc["paths"].items():
        for method, op in item.items():
            listed[(method.upper(), pattern)] = op
    for key in sorted(set(listed) - set(EXPECTED)):
        checks.ok(False, "openapi.json lists %s %s, which the expected table does not know" % key)
    for key in sorted(set(EXPECTED) - set(listed)):
        checks.ok(False, "the expected table has %s %s, which openapi.json does not list" % key)

    cells = 0
    for key in sorted(set(listed) & set(EXPECTED)):
        method, pattern = key
        rule_ = EXPECTED[key]
        schema = response_schema(listed[key])
        for side in (OWN, OTHER):
            for caller in CALLERS:
                cell = build_cell(w, method, pattern, side)
                r = w.c.call(method, cell.path, token=w.tokens[caller], body=cell.body,
                             raw=cell.raw, ctype=cell.ctype)
                want = expected_status(rule_, caller, side)
                cells += 1
                what = "%s %s as %s in %s" % (method, cell.path, caller, side)
                if not checks.ok(r.status == want, "%s: %d, want %d (%s)" %
                                 (what, r.status, want, r.body[:200])):
                    continue
                if r.status >= 400:
                    # The JSON error form, with the code that matches the status, except where a
                    # standard has its own form (EST's text, OCSP's responses).
                    if not pattern.startswith("/.well-known/est/"):
                        code = {400: "invalid", 401: "unauthorized", 403: "forbidden",
                                404: "not_found"}[r.status]
                        checks.ok(r.error_code() == code, "%s: error code %r, want %s" %
                                  (what, r.error_code(), code))
                    if r.status == 401 and rule_["kind"] != "public":
                        checks.ok(r.headers.get("WWW-Authenticate", "").startswith("Bearer"),
                                  what + ": 401 without WWW-Authenticate: Bearer")
                    if cell.unchanged is not None:
                        why = cell.unchanged()
                        checks.ok(why == "", "%s: refused but changed %s" % (what, why))
                elif schema is not None and r.headers.get("Content-Type", "").startswith(
                        "application/json"):
                    errs = validate(schema, r.doc)
                    checks.ok(not errs, "%s: reply does not match its schema: %s" %
                              (what, "; ".join(errs[:3])))
    return cells


# --- Scope checks -------------------------------------------------------------------------------


def scope_checks(w, checks):
    c, tok = w.c, w.tokens
    own = "/api/v1/tenants/" + OWN
    other = "/api/v1/tenants/" + OTHER

    # A device sees only its own records.
    r = c.call("GET", own + "/certificates", token=tok[DEV])
    serials = {x["serial"] for x in r.doc["items"]} if r.status == 200 else set()
    checks.ok(r.status == 200 and w.device_serial[OWN] in serials and
              w.other_dev_serial not in serials and
              all(x["device_uid"] == w.device_uid[OWN] for x in r.doc["items"]),
              "a device lists only its own device's certificates: %s" % sorted(serials))
    r = c.call("GET", own + "/certificates?device=other-dev", token=tok[DEV])
    checks.ok(r.status == 200 and r.doc["items"] == [],
              "a device asking for another device's certificates gets none")
    r = c.call("GET", "%s/certificates/%s" % (own, w.other_dev_serial), token=tok[DEV])
    checks.ok(r.status == 404 and r.error_code() == "not_found",
              "a device gets 404 for another device's certificate (%d)" % r.status)
    r = c.call("GET", own + "/devices/other-dev", token=tok[DEV])
    checks.ok(r.status == 404, "a device gets 404 for another device (%d)" % r.status)
    r = c.call("GET", "/api/v1/me", token=tok[DEV])
    checks.ok(r.status == 200 and r.doc["device_uid"] == w.device_uid[OWN] and
              r.doc["tenant"] == OWN, "/me shows the device principal")
    r = c.call("GET", "%s/devices/%s" % (own, w.device_uid[OWN]), token=tok[DEV])
    checks.ok(r.status == 200 and
              [x["serial"] for x in r.doc["certificates"]] == [w.device_serial[OWN]],
              "a device's record carries its certificates")

    # A serial that exists only in the other tenant is 404 in this one, for everyone.
    beta_serial = w.device_serial[OTHER]
    for caller in (IA, ADMIN, AUDIT):
        r = c.call("GET", "%s/certificates/%s" % (own, beta_serial), token=tok[caller])
        checks.ok(r.status == 404, "%s: another tenant's serial through %s is 404 (%d)" %
                  (caller, OWN, r.status))
    for action, body in (("revoke", {}), ("renew", None), ("rekey", {"csr": make_csr("x")})):
        r = c.call("POST", "%s/certificates/%s/%s" % (own, beta_serial, action), token=tok[IA],
                   body=body)
        checks.ok(r.status == 404, "%s of another tenant's serial through %s is 404 (%d)" %
                  (action, OWN, r.status))
    r = c.call("GET", "%s/certificates/%s" % (other, beta_serial), token=tok[IA])
    checks.ok(r.status == 200 and r.doc["status"] == "valid",
              "the other tenant's certificate is unchanged")
    r = c.call("GET", own + "/certificates?limit=1000", token=tok[IA])
    checks.ok(r.status == 200 and beta_serial not in {x["serial"] for x in r.doc["items"]},
              "a tenant's list holds none of another tenant's certificates")
    # Ids of tokens and claim codes are instance-wide numbers: another tenant's, or the instance
    # admin's own token, are 404 through this tenant and stay as they were.
    ia_token_id = c.call("GET", "/api/v1/me", token=tok[IA]).doc["token_id"]
    beta_token = w.token_for(OTHER, "auditor1", "scope")
    beta_claim = w.must(w.admin("POST", other + "/claims", {}), 201, "claim code")
    for path in ("%s/tokens/%d" % (own, ia_token_id), "%s/tokens/%d" % (own, beta_token["id"]),
                 "%s/claims/%d" % (own, beta_claim["id"])):
        r = c.call("DELETE", path, token=tok[ADMIN])
        checks.ok(r.status == 404, "DELETE %s by the tenant's admin is 404 (%d)" % (path, r.status))
    checks.ok(c.call("GET", "/api/v1/me", token=tok[IA]).status == 200 and
              c.call("GET", "/api/v1/me", token=beta_token["token"]).status == 200,
              "the other tokens still work")
    r = w.admin("GET", other + "/claims")
    checks.ok([x["revoked_at"] for x in r.doc["items"] if x["id"] == beta_claim["id"]] == [None],
              "the other tenant's claim code is not revoked")
    r = c.call("GET", "/api/v1/tenants", token=tok[ADMIN])
    checks.ok(r.status == 200 and [x["name"] for x in r.doc["items"]] == [OWN],
              "a tenant admin sees only its own tenant")
    r = c.call("GET", "/api/v1/tenants", token=tok[IA])
    names = {x["name"] for x in r.doc["items"]} if r.status == 200 else set()
    checks.ok({"default", OWN, OTHER} <= names, "the instance admin sees every tenant")
    r = c.call("GET", "/api/v1/tenants/nosuch/certificates", token=tok[IA])
    checks.ok(r.status == 404, "an unknown tenant is 404 (%d)" % r.status)

    # Issuing and revoking through the API count in /metrics as they happen.
    def counters():
        text = c.call("GET", "/metrics").body.decode()
        return [int(re.search(r"^tessera_certificates_%s_total (\d+)$" % k, text, re.M).group(1))
                for k in ("issued", "revoked")]
    before = counters()
    serial = w.issue(OWN, "metrics-1")
    w.must(w.admin("POST", "%s/certificates/%s/rekey" % (own, serial), {"csr": make_csr("m")}),
           201, "rekey")
    after = counters()
    checks.ok(after == [before[0] + 2, before[1] + 1],
              "/metrics counts 2 issued and 1 revoked: %s -> %s" % (before, after))

    # PUT replaces a profile that exists (200) and creates one that does not (201).
    r = c.call("PUT", own + "/profiles/device", token=tok[ADMIN], body=w.profile)
    checks.ok(r.status == 200 and r.doc == w.profile, "PUT of an existing profile replaces it")

    # Cursor pagination: every row exactly once, in order, however small the page. The audit
    # log starts near its end (?after=ID), so that its pages stay few.
    r = c.call("GET", "/api/v1/audit/verify", token=tok[IA])
    checks.ok(r.status == 200 and r.doc["ok"] is True, "the audit chain verifies")
    recent = "&after=%d" % max(0, r.doc["entries"] - 40)
    for path, key, first in ((own + "/certificates", "serial", ""), (own + "/devices", "uid", ""),
                             ("/api/v1/audit", "id", recent)):
        whole = c.call("GET", path + "?limit=1000" + first, token=tok[IA])
        want = [x[key] for x in whole.doc["items"]]
        got, cursor, pages = [], None, 0
        while pages < 1000:
            r = c.call("GET", path + "?limit=3" + ("&cursor=" + cursor if cursor else first),
                       token=tok[IA])
            if r.status != 200:
                break
            pages += 1
            got += [x[key] for x in r.doc["items"]]
            checks.ok(len(r.doc["items"]) <= 3, path + ": a page holds at most ?limit rows")
            cursor = r.doc["next"]
            if cursor is None:
                break
        checks.ok(got == want and len(want) > 3,
                  "%s pages by 3 give the whole list once (%d rows in %d pages)" %
                  (path, len(want), pages))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--admin-token", default=os.environ.get("ADMIN_TOKEN"),
                    help="the instance admin's token (default: $ADMIN_TOKEN)")
    ap.add_argument("--auditor-token", default=os.environ.get("AUDITOR_TOKEN"),
                    help="an instance-wide auditor's token (default: $AUDITOR_TOKEN)")
    args = ap.parse_args()
    if not args.admin_token or not args.auditor_token:
        ap.error("no admin or instance auditor token")

    checks = Checks()
    client = Client(args.url, args.cafile)
    w = World(client, args.admin_token, checks)
    w.tokens[IAUD] = args.auditor_token
    w.setup()
    r = client.call("GET", "/api/v1/openapi.json")
    if r.status != 200 or not isinstance(r.doc, dict):
        raise SystemExit("openapi.json: %d" % r.status)
    cells = walk(w, checks, r.doc)
    scope_checks(w, checks)
    print("matrix: %d routes x %d callers x 2 tenants = %d cells, %d requests in all" %
          (len(EXPECTED), len(CALLERS), cells, client.count))
    print("%d passed, %d failed" % (checks.passed, len(checks.failed)))
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
