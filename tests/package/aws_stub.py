#!/usr/bin/env python3
"""The AWS an EC2 instance's boot script talks to, for boot_test.sh: IMDSv2
(token, region, the role's temporary credentials), S3 GetObject and SSM
GetParameter / PutParameter, over the same HTTP and TLS endpoints. Every
signed request is checked the way AWS checks it (SigV4: the canonical
request rebuilt from what arrived, signed with the secret this stub issued,
the session token and the credential scope compared) and refused with 403
otherwise, so a boot script that passes here sends requests AWS would accept.

  aws_stub.py --state DIR --cert CERT --key KEY [--region R]

DIR/s3/KEY are the bucket's objects, DIR/ssm/NAME (NAME without its leading
/) the parameters' values; PutParameter appends {"name", "value"} lines to
DIR/put.jsonl; DIR/requests.log has one line per request with its verdict.
Listens on 169.254.169.254:80 (IMDS) and 127.0.0.1:443 (S3, SSM).
"""
import argparse
import datetime
import hashlib
import hmac
import http.server
import json
import os
import secrets
import ssl
import threading
import urllib.parse

ROLE = "latency-pair-boot-test"


class State:
    def __init__(self, directory, region):
        self.dir = directory
        self.region = region
        self.tokens = set()
        self.key_id = "ASIA" + secrets.token_hex(8).upper()
        self.secret = secrets.token_urlsafe(30)
        self.session = secrets.token_urlsafe(60)
        self.lock = threading.Lock()

    def log(self, line):
        with self.lock, open(os.path.join(self.dir, "requests.log"), "a") as f:
            f.write(line + "\n")


def sign(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def check_sigv4(state, method, path, headers, body, service):
    """None when the request carries a valid SigV4 signature, else why not."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "no AWS4-HMAC-SHA256 Authorization"
    fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    key_id, date, region, svc, terminal = fields["Credential"].split("/")
    if key_id != state.key_id or terminal != "aws4_request":
        return f"unknown credential {fields['Credential']}"
    if region != state.region or svc != service:
        return f"scope {region}/{svc}, expected {state.region}/{service}"
    if headers.get("x-amz-security-token") != state.session:
        return "missing or wrong x-amz-security-token"
    signed = fields["SignedHeaders"].split(";")
    for needed in ("host", "x-amz-date", "x-amz-security-token"):
        if needed not in signed:
            return f"{needed} not signed"
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(date):
        return "x-amz-date does not match the credential's date"
    stamp = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc)
    if abs((datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()) > 900:
        return "request time more than 15 minutes off"
    url = urllib.parse.urlsplit(path)
    query = "&".join(sorted(url.query.split("&"))) if url.query else ""
    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').strip().split())}\n" for name in signed)
    payload_hash = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    if service == "s3" and "x-amz-content-sha256" not in signed:
        return "S3 needs a signed x-amz-content-sha256"
    canonical = "\n".join([method, url.path or "/", query, canonical_headers,
                           fields["SignedHeaders"], payload_hash])
    scope = f"{date}/{region}/{svc}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = sign(sign(sign(sign(("AWS4" + state.secret).encode(), date), region), svc),
               "aws4_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields.get("Signature", "")):
        return "signature does not match"
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", content_type="application/octet-stream", why=""):
        self.state.log(f"{self.command} {self.headers.get('Host', '')}{self.path} -> {code} {why}")
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    # IMDSv2 -------------------------------------------------------------
    def imds(self):
        if self.command == "PUT" and self.path == "/latest/api/token":
            if "X-aws-ec2-metadata-token-ttl-seconds" not in self.headers:
                return self.reply(400, why="no TTL header")
            token = secrets.token_urlsafe(32)
            self.state.tokens.add(token)
            return self.reply(200, token.encode(), "text/plain")
        if self.headers.get("X-aws-ec2-metadata-token") not in self.state.tokens:
            return self.reply(401, why="IMDSv1 or unknown token")
        prefix = "/latest/meta-data/"
        answers = {
            "placement/region": self.state.region,
            "iam/security-credentials/": ROLE,
            "iam/security-credentials/" + ROLE: json.dumps({
                "Code": "Success",
                "LastUpdated": "2026-12-04T00:00:00Z",
                "Type": "AWS-HMAC",
                "AccessKeyId": self.state.key_id,
                "SecretAccessKey": self.state.secret,
                "Token": self.state.session,
                "Expiration": "2099-01-01T00:00:00Z",
            }, indent=2),
        }
        answer = answers.get(self.path[len(prefix):]) if self.path.startswith(prefix) else None
        if answer is None:
            return self.reply(404, why="unknown metadata path")
        return self.reply(200, answer.encode(), "text/plain")

    # S3 and SSM -----------------------------------------------------------
    def aws(self, body):
        host = self.headers.get("Host", "")
        if host.startswith("ssm."):
            service = "ssm"
        elif ".s3." in host:
            service = "s3"
        else:
            return self.reply(404, why="unknown host")
        headers = {k.lower(): v for k, v in self.headers.items()}
        why = check_sigv4(self.state, self.command, self.path, headers, body, service)
        if why:
            return self.reply(403, why.encode(), "text/plain", why)
        if service == "s3":
            key = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path.lstrip("/"))
            path = os.path.join(self.state.dir, "s3", key)
            if self.command != "GET" or ".." in key or not os.path.isfile(path):
                return self.reply(404, why="no such object")
            with open(path, "rb") as f:
                return self.reply(200, f.read())
        target = self.headers.get("X-Amz-Target", "")
        request = json.loads(body or b"{}")
        name = request.get("Name", "")
        if target == "AmazonSSM.PutParameter":
            with self.state.lock, open(os.path.join(self.state.dir, "put.jsonl"), "a") as f:
                f.write(json.dumps({"name": name, "value": request.get("Value")}) + "\n")
            return self.reply(200, b'{"Version":2,"Tier":"Standard"}', "application/x-amz-json-1.1")
        if target == "AmazonSSM.GetParameter":
            path = os.path.join(self.state.dir, "ssm", name.lstrip("/"))
            if ".." in name or not os.path.isfile(path):
                return self.reply(400, b'{"__type":"ParameterNotFound"}',
                                  "application/x-amz-json-1.1", "no such parameter")
            with open(path) as f:
                value = f.read()
            answer = {"Parameter": {"Name": name, "Type": "SecureString", "Value": value}}
            return self.reply(200, json.dumps(answer).encode(), "application/x-amz-json-1.1")
        return self.reply(400, b'{"__type":"UnknownOperationException"}',
                          "application/x-amz-json-1.1", "unknown target " + target)

    def handle_any(self):
        body = self.body()
        if self.server.server_address[1] == 80:
            return self.imds()
        return self.aws(body)

    do_GET = do_PUT = do_POST = handle_any


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--state", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--region", default="us-east-1")
    a = p.parse_args()
    Handler.state = State(a.state, a.region)
    imds = http.server.ThreadingHTTPServer(("169.254.169.254", 80), Handler)
    aws = http.server.ThreadingHTTPServer(("127.0.0.1", 443), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(a.cert, a.key)
    aws.socket = context.wrap_socket(aws.socket, server_side=True)
    threading.Thread(target=imds.serve_forever, daemon=True).start()
    open(os.path.join(a.state, "ready"), "w").close()
    aws.serve_forever()


if __name__ == "__main__":
    main()
