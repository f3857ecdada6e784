"""A misbehaving EST peer over TLS 1.2, for test_agent_rekey.sh: what the real service never
does (close the connection between csrattrs and the enrollment) or cannot show (the binding it
saw, in words).

    est_peer_tls12.py CERT KEY CSRATTRS_B64 CACERTS_B64 keep|close PORTFILE

Serves cacerts and csrattrs (bodies given as files, base64 as the service sends them) over TLS
1.2 with HTTP/1.1 keep-alive ("close": the csrattrs reply closes the connection). A POSTed CSR
is answered 400 with a text that says whether its challengePassword is the base64 of this
connection's tls-unique (RFC 5929). Writes the port it listens on to PORTFILE.
"""
import os
import base64, http.server, ssl, subprocess, sys, re

cert, key, attrs_file, cacerts_file, mode, portfile = sys.argv[1:7]
attrs = open(attrs_file, "rb").read()
cacerts = open(cacerts_file, "rb").read()

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, ctype, body, close=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.endswith("/cacerts"):
            self.reply(200, "application/pkcs7-mime", cacerts)
        elif self.path.endswith("/csrattrs"):
            self.reply(200, "application/csrattrs", attrs, close=(mode == "close"))
        else:
            self.reply(404, "text/plain", b"no such operation")

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        der = base64.b64decode(b"".join(body.split()))
        text = subprocess.run(["openssl", "req", "-inform", "DER", "-noout", "-text"],
                              input=der, capture_output=True).stdout.decode()
        m = re.search(r"challengePassword\s*:\s*(\S+)", text)
        cb = self.connection.get_channel_binding("tls-unique")
        want = base64.b64encode(cb).decode() if cb else "(none)"
        if m is None:
            msg = "no challengePassword"
        elif m.group(1) == want:
            msg = "challengePassword is this connection's tls-unique %s" % self.connection.version()
        else:
            msg = "challengePassword differs from tls-unique"
        self.reply(400, "text/plain", msg.encode())

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.load_cert_chain(cert, key)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
open(portfile + ".tmp", "w").write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
