#!/usr/bin/env python3
"""The AWS an EC2 instance's boot script talks to, for boot_test.sh: IMDSv2
(token, region, the role's temporary credentials), S3 GetObject and SSM
GetParameter / PutParameter, on the same HTTP and TLS endpoints. Every
signed request is checked the way AWS checks it (SigV4: the canonical
request rebuilt from what arrived, signed with the secret this stub issued,
the session token and the credential scope compared) and refused with 403
otherwise, so a boot script that passes here sends requests AWS would accept.

  aws_stub.py --state DIR --cert CERT --key KEY --bucket B [--region R]
  aws_stub.py --self-test

DIR/s3/KEY are the bucket's objects, DIR/ssm/NAME (NAME without its leading
/) the parameters' values; PutParameter appends {"name", "value", ...} lines
to DIR/put.jsonl; DIR/requests.log has one line per request with its
verdict. While DIR/deny-s3 exists, S3 answers 403 AccessDenied (as for a
role without s3:GetObject). Listens on 169.254.169.254:80 (IMDS) and
127.0.0.1:443 (S3, SSM): run it in the instance's network namespace.

--self-test checks the signature code against AWS's published examples
(the SigV4 test suite and the S3 documentation) and that tampered requests
are refused, then exits.
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
import sys
import threading
import urllib.parse

ROLE = "latency-pair-boot-test"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def hmac_sha256(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def canonical_query(query):
    """Names and values URI-encoded (RFC 3986 unreserved kept), sorted."""
    def enc(s):
        return urllib.parse.quote(s, safe="-_.~")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    return "&".join(sorted(f"{enc(k)}={enc(v)}" for k, v in pairs))


def canonical_uri(path, service):
    # S3 signs the path as sent; every other service its segments encoded again.
    if service == "s3":
        return path or "/"
    return urllib.parse.quote(path or "/", safe="/-_.~")


def signature(secret, method, path, query, headers, signed, payload_hash,
              amz_date, region, service):
    """(canonical request, hex signature); headers: lowercase name -> value."""
    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').strip().split())}\n" for name in signed)
    canonical = "\n".join([method, canonical_uri(path, service), canonical_query(query),
                           canonical_headers, ";".join(signed), payload_hash])
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac_sha256(key, part)
    return canonical, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class State:
    def __init__(self, directory, region, bucket):
        self.dir = directory
        self.region = region
        self.bucket = bucket
        self.tokens = set()
        self.key_id = "ASIA" + secrets.token_hex(8).upper()
        self.secret = secrets.token_urlsafe(30)
        self.session = secrets.token_urlsafe(60)
        self.lock = threading.Lock()

    def log(self, line):
        if not self.dir:
            return
        with self.lock, open(os.path.join(self.dir, "requests.log"), "a") as f:
            f.write(line + "\n")


def check_sigv4(state, method, target, headers, body, service, now=None):
    """None when the request carries a valid SigV4 signature, else why not.
    target: the request target as sent (path and query); headers: lowercase."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "no AWS4-HMAC-SHA256 Authorization"
    try:
        fields = dict(part.strip().split("=", 1)
                      for part in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        key_id, date, region, svc, terminal = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        given = fields["Signature"]
    except (KeyError, ValueError):
        return "malformed Authorization: " + auth
    if key_id != state.key_id or terminal != "aws4_request":
        return f"unknown credential {fields['Credential']}"
    if region != state.region or svc != service:
        return f"scope {region}/{svc}, expected {state.region}/{service}"
    if headers.get("x-amz-security-token") != state.session:
        return "missing or wrong x-amz-security-token (the role's session token)"
    if signed != sorted(signed) or any(n != n.lower() for n in signed):
        return "SignedHeaders not lowercase and sorted"
    for needed in ("host", "x-amz-date", "x-amz-security-token"):
        if needed not in signed:
            return f"{needed} not signed"
    for name in signed:
        if name not in headers:
            return f"signed header {name} not sent"
    amz_date = headers.get("x-amz-date", "")
    try:
        stamp = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        return f"bad x-amz-date {amz_date!r}"
    if amz_date[:8] != date:
        return "x-amz-date does not match the credential's date"
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if abs((now - stamp).total_seconds()) > 900:
        return "request time more than 15 minutes off"
    if service == "s3":
        payload_hash = headers.get("x-amz-content-sha256", "")
        if "x-amz-content-sha256" not in signed:
            return "S3 needs a signed x-amz-content-sha256"
        if payload_hash != "UNSIGNED-PAYLOAD" and payload_hash != hashlib.sha256(body).hexdigest():
            return "x-amz-content-sha256 is not the payload's hash"
    else:
        payload_hash = hashlib.sha256(body).hexdigest()
    url = urllib.parse.urlsplit(target)
    _, expected = signature(state.secret, method, url.path, url.query, headers, signed,
                            payload_hash, amz_date, region, svc)
    if not hmac.compare_digest(expected, given):
        return "signature does not match"
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", content_type="application/octet-stream", why=""):
        verdict = f"{code} {why}".rstrip()
        self.state.log(f"{self.command} {self.headers.get('Host', '')}{self.path} -> {verdict}")
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
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, why="no or bad X-aws-ec2-metadata-token-ttl-seconds")
            token = secrets.token_urlsafe(32)
            with self.state.lock:
                self.state.tokens.add(token)
            return self.reply(200, token.encode(), "text/plain")
        if self.command != "GET":
            return self.reply(405, why="IMDS answers GET")
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
        region = self.state.region
        if host == f"ssm.{region}.amazonaws.com":
            service = "ssm"
        elif host == f"{self.state.bucket}.s3.{region}.amazonaws.com":
            service = "s3"
        else:
            return self.reply(404, why="unknown host (bucket or region)")
        headers = {k.lower(): v for k, v in self.headers.items()}
        why = check_sigv4(self.state, self.command, self.path, headers, body, service)
        if why:
            return self.reply(403, why.encode(), "text/plain", why)
        if service == "s3":
            return self.s3()
        return self.ssm(body)

    def s3(self):
        if os.path.exists(os.path.join(self.state.dir, "deny-s3")):
            return self.reply(403, b"<Error><Code>AccessDenied</Code></Error>",
                              "application/xml", "AccessDenied (deny-s3)")
        key = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path.lstrip("/"))
        path = os.path.join(self.state.dir, "s3", key)
        if self.command != "GET":
            return self.reply(405, why="only GetObject here")
        if ".." in key.split("/") or not os.path.isfile(path):
            return self.reply(404, b"<Error><Code>NoSuchKey</Code></Error>",
                              "application/xml", "NoSuchKey")
        with open(path, "rb") as f:
            return self.reply(200, f.read())

    def ssm(self, body):
        json_type = "application/x-amz-json-1.1"
        if self.command != "POST" or self.headers.get("Content-Type") != json_type:
            return self.reply(400, why="SSM takes POST application/x-amz-json-1.1")
        try:
            request = json.loads(body)
        except ValueError:
            return self.reply(400, b'{"__type":"SerializationException"}', json_type,
                              "body is not JSON")
        target = self.headers.get("X-Amz-Target", "")
        name = request.get("Name", "")
        if target == "AmazonSSM.PutParameter":
            value = request.get("Value")
            if (not isinstance(name, str) or not name or not isinstance(value, str)
                    or not 1 <= len(value) <= 4096
                    or request.get("Type") not in ("String", "StringList", "SecureString")):
                return self.reply(400, b'{"__type":"ValidationException"}', json_type,
                                  "PutParameter needs Name, Value (1-4096) and Type")
            record = {"name": name, "value": value, "type": request.get("Type"),
                      "overwrite": request.get("Overwrite")}
            with self.state.lock, open(os.path.join(self.state.dir, "put.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")
            return self.reply(200, b'{"Version":2,"Tier":"Standard"}', json_type)
        if target == "AmazonSSM.GetParameter":
            path = os.path.join(self.state.dir, "ssm", str(name).lstrip("/"))
            if ".." in str(name).split("/") or not os.path.isfile(path):
                return self.reply(400, b'{"__type":"ParameterNotFound"}', json_type,
                                  "ParameterNotFound")
            with open(path) as f:
                value = f.read()
            answer = {"Parameter": {"Name": name, "Type": "SecureString", "Value": value}}
            return self.reply(200, json.dumps(answer).encode(), json_type)
        return self.reply(400, b'{"__type":"UnknownOperationException"}', json_type,
                          "unknown X-Amz-Target " + target)

    def handle_any(self):
        body = self.body()
        if self.server.server_address[1] == 80:
            return self.imds()
        return self.aws(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any


def self_test():
    """The signature code against AWS's published examples, and refusals."""
    vanilla = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    suite = ("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830T123600Z", "us-east-1",
             "service")
    s3_docs = {"host": "examplebucket.s3.amazonaws.com",
               "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": "20130524T000000Z"}
    s3 = ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524T000000Z", "us-east-1", "s3")
    cases = [
        # aws-sig-v4-test-suite: get-vanilla, get-vanilla-query-order-key-case, post-vanilla
        (suite, "GET", "/", "", vanilla,
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        (suite, "GET", "/", "Param2=value2&Param1=value1", vanilla,
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        (suite, "POST", "/", "", vanilla,
         "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        # S3 documentation, "Signature Calculations for the Authorization Header":
        # GET Object (with a Range header) and GET Bucket (List Objects)
        (s3, "GET", "/test.txt", "", dict(s3_docs, range="bytes=0-9"),
         "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        (s3, "GET", "/", "max-keys=2&prefix=J", s3_docs,
         "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ]
    failures = 0
    for (secret, amz_date, region, service), method, path, query, headers, want in cases:
        payload = headers.get("x-amz-content-sha256", EMPTY_SHA256)
        _, got = signature(secret, method, path, query, headers, sorted(headers), payload,
                           amz_date, region, service)
        if got != want:
            failures += 1
            print(f"self-test: {method} {path}?{query} ({service}): {got}, AWS says {want}")

    # A request signed as curl signs it is accepted; each tampering is refused.
    state = State(None, "eu-west-1", "bucket")
    now = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.timezone.utc)

    def request(secret=state.secret, region="eu-west-1", service="s3", drop=(), **changes):
        headers = {"host": "bucket.s3.eu-west-1.amazonaws.com",
                   "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
                   "x-amz-date": "20261204T120000Z", "x-amz-security-token": state.session}
        signed = sorted(h for h in headers if h not in drop)
        _, sig = signature(secret, "GET", "/manifest", "", headers, signed,
                           "UNSIGNED-PAYLOAD", "20261204T120000Z", region, service)
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={state.key_id}/20261204/{region}/{service}/"
            f"aws4_request, SignedHeaders={';'.join(signed)}, Signature={sig}")
        headers.update(changes)
        return headers

    checks = [
        ("valid", "/manifest", request(), None),
        ("another object", "/other", request(), "signature does not match"),
        ("wrong secret", "/manifest", request(secret="x" * 40), "signature does not match"),
        ("wrong region", "/manifest", request(region="us-east-1"), "scope"),
        ("wrong service", "/manifest", request(service="ssm"), "scope"),
        ("host not signed", "/manifest", request(drop=("host",)), "host not signed"),
        ("no session token", "/manifest",
         request(**{"x-amz-security-token": "other"}), "x-amz-security-token"),
        ("stale", "/manifest", request(**{"x-amz-date": "20261204T100000Z"}), "15 minutes"),
    ]
    for what, path, headers, want in checks:
        why = check_sigv4(state, "GET", path, headers, b"", "s3", now)
        if (why is None) != (want is None) or (want and want not in why):
            failures += 1
            print(f"self-test: {what}: got {why!r}, expected {want!r}")
    print(f"self-test: {len(cases)} AWS examples, {len(checks)} acceptance checks, "
          f"{failures} failures")
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--self-test", action="store_true")
    p.add_argument("--state")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--bucket")
    p.add_argument("--region", default="eu-west-1")
    a = p.parse_args()
    if a.self_test:
        sys.exit(self_test())
    if not (a.state and a.cert and a.key and a.bucket):
        p.error("--state, --cert, --key and --bucket are required")
    Handler.state = State(a.state, a.region, a.bucket)
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
