#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ from the golden
vectors: the provider documents' examples (../shared/seeds, relative to the
repository: the Field Nation, Autotask, Fentu and Patchworks token, error and
rate-limit examples) and the canned responses of the core's tests
(core/tests/common, core/tests/body.rs). Each file is a target's input
format: a few selector bytes (see the target's doc comment), then the bytes.

Run from anywhere: `python3 tests/fuzz/make_corpus.py`. It rewrites the
corpus directories; the files are checked in (a few dozen per target).
"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

# ---------------------------------------------------------------- golden vectors
FIELD_NATION_TOKEN = (
    '{\n  "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",\n'
    '  "token_type": "Bearer",\n  "expires_in": 3600\n}'
)
FIELD_NATION_ERROR = '{\n  "error": "invalid_client",\n  "error_description": "Client authentication failed"\n}'
FIELD_NATION_EXPIRED = '{\n  "error": "invalid_token",\n  "error_description": "The access token expired"\n}'
AUTOTASK_TOKEN = '{\n  "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6...",\n  "token_type": "Bearer",\n  "expires_in": 3600\n}'
AUTOTASK_ERROR = '{\n  "error": "invalid_token",\n  "error_description": "The access token has expired"\n}'
FENTU_ERROR = '{\n  "error": "unauthorized",\n  "error_description": "Invalid or expired token",\n  "status": 401\n}'
FENTU_TOKEN = '{"access_token":"fentu-at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"fentu-rt-1","scope":"read:work-orders write:work-orders"}'
PATCHWORKS_LOGIN = '{\n"message": "You have successfully logged in.",\n"token": "eyJ0eXAiOiJKV......",\n"expires_in": 86400\n}'
DEVICE = '{"device_code":"GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS","user_code":"WDJB-MJHT","verification_uri":"https://example.com/device","verification_uri_complete":"https://example.com/device?user_code=WDJB-MJHT","expires_in":1800,"interval":5}'
# Escapes, surrogate pairs, BOM, nesting, duplicates: the documented rules.
ESCAPED = '{"access_token":"a\\u0062c\\/d\\\\e","token_type":"b\\u0065arer","expires_in":"3600","scope":"caf\\u00e9 \\ud83d\\ude00","message":"line\\nbreak"}'
BOM = '\ufeff' + AUTOTASK_TOKEN
NESTED = '{"access_token":"t","x":{"a":[1,2,{"b":[[[[null]]]]}],"c":true},"expires_in":3600.0}'
DUPLICATE = '{"access_token":"one","access_token":"two"}'
ALIASED = '{"access_token":"t","refresh_token_expires_in":60,"refresh_expires_in":60}'
TOO_DEEP = '{"x":' + '[' * 40 + ']' * 40 + ',"access_token":"t"}'
BAD_TYPE = '{"access_token":"t","token_type":"mac","expires_in":-1}'
HTML = '<html><body><h1>502 Bad Gateway</h1></body></html>'

BODIES = [
    FIELD_NATION_TOKEN, FIELD_NATION_ERROR, FIELD_NATION_EXPIRED, AUTOTASK_TOKEN, AUTOTASK_ERROR,
    FENTU_ERROR, FENTU_TOKEN, PATCHWORKS_LOGIN, DEVICE, ESCAPED, BOM, NESTED, DUPLICATE, ALIASED,
    TOO_DEEP, BAD_TYPE, HTML, '', '{}',
]


def http(status, body, extra="", chunked=False, reason="OK"):
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{extra}"
    if chunked:
        b = body.encode()
        mid = len(b) // 2
        chunks = b""
        for part in (b[:mid], b[mid:]):
            if part:
                chunks += f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n"
        return head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\nX-Trailer: 1\r\n\r\n"
    return (head + f"Content-Length: {len(body.encode())}\r\n\r\n").encode() + body.encode()


RESPONSES = [
    http(200, FIELD_NATION_TOKEN),
    http(401, FIELD_NATION_EXPIRED, 'WWW-Authenticate: Bearer realm="fn", error="invalid_token", error_description="The access token expired"\r\n', reason="Unauthorized"),
    http(200, AUTOTASK_TOKEN, chunked=True),
    http(429, FENTU_ERROR, "X-RateLimit-Limit: 1000\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 1640995200\r\nRetry-After: 120\r\n", reason="Too Many Requests"),
    http(503, "", "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\nDate: Wed, 21 Oct 2015 07:27:00 GMT\r\n", reason="Service Unavailable"),
    http(200, PATCHWORKS_LOGIN, "RateLimit: limit=100, remaining=50, reset=30\r\nRateLimit-Policy: 100;w=60\r\nConnection: close\r\n"),
    b"HTTP/1.1 100 Continue\r\n\r\n" + http(200, FENTU_TOKEN),
    b"HTTP/1.0 200 OK\nContent-Length: 2\n\n{}",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 42, 42\r\n\r\n" + b"x" * 42,
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n" + HTML.encode(),
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n",
]


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def clear(target):
    d = os.path.join(OUT, target)
    if os.path.isdir(d):
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))


def main():
    for t in ["body_chunks", "head_framing", "snapshot_restore", "token_json_diff", "request_build", "credential_apply", "ffi_abi"]:
        clear(t)
    # body_chunks: expect, status index, keys | capacity index << 1, split mode.
    status_index = {200: 0, 201: 1, 400: 4, 401: 5, 429: 7, 500: 8, 503: 9}
    for i, body in enumerate(BODIES):
        patchworks = 1 if body is PATCHWORKS_LOGIN else 0
        expect = 1 if body is DEVICE else 0
        status = 200 if '"error"' not in body and body not in (HTML, "") else 401
        mode = [1, 0, 7, 33][i % 4]
        write("body_chunks", f"golden-{i:02}", bytes([expect, status_index[status], (6 << 1) | patchworks, mode]) + body.encode())
    write("body_chunks", "revocation-200", bytes([2, 0, 6 << 1, 1]) + b"")
    write("body_chunks", "small-storage", bytes([0, 0, 2 << 1, 5]) + FIELD_NATION_TOKEN.encode())
    # head_framing: head split mode, body split mode, then the response.
    for i, r in enumerate(RESPONSES):
        write("head_framing", f"golden-{i:02}", bytes([[1, 0, 9, 3][i % 4], [1, 5, 0, 2][i % 4]]) + r)
    # token_json_diff: mode (even: raw), status index | 0x80 for Patchworks keys.
    for i, body in enumerate(BODIES):
        sel = 0x80 if body is PATCHWORKS_LOGIN else (2 if '"error"' in body else 0)
        write("token_json_diff", f"golden-{i:02}", bytes([0, sel]) + body.encode())
    # Generator mode: arbitrary bytes drive it.
    for i in range(4):
        write("token_json_diff", f"generated-{i}", bytes([1, i]) + hashlib.sha256(bytes([i])).digest() * 4)
    # snapshot_restore: preset, mode, restore time deltas, image bytes.
    for preset in range(4):
        for mode, img in [(0, b""), (1, b""), (1, b"\x00" * 24 + b"\x01"), (2, b"\x00" * 84 + b"\xff\xff")]:
            dt = struct.pack("<Q", 5_000)
            du = struct.pack("<Q", 10_000 << 1)
            write("snapshot_restore", f"p{preset}-m{mode}-{len(img)}", bytes([preset, mode]) + dt + du + img)
    write("snapshot_restore", "clock-back", bytes([0, 1]) + struct.pack("<Q", 1) + struct.pack("<Q", (400 * 86400 * 1000) << 1 | 1))
    # request_build / credential_apply: the bytes drive choices and strings;
    # seed them with the documents' request examples.
    requests = [
        "grant_type=client_credentials&client_id=YOUR_CLIENT_ID&client_secret=YOUR_CLIENT_SECRET&scope=api",
        '{"grant_type":"client_credentials","client_id":"YOUR_CLIENT_ID","client_secret":"YOUR_CLIENT_SECRET","scope":"api"}',
        '{"username":"me@patchworks.com","password":"a1b2c3d4e5f6"}',
        "grant_type=refresh_token&refresh_token=fentu-rt-1&client_id=cid&client_secret=sec",
        "POST /oauth/revoke HTTP/1.1\r\nAuthorization: Bearer YOUR_ACCESS_TOKEN\r\n\r\n",
        "https://api.fieldnation.com/authentication/api/oauth/token",
        "https://webservices.autotask.net/ATServicesRest/oauth/token\r\nX-Injected: 1",
    ]
    for i, r in enumerate(requests):
        write("request_build", f"golden-{i:02}", r)
    targets = [
        "/api/rest/v2/workorders?access_token=YOUR_ACCESS_TOKEN",
        "/api/rest/v2/workorders?limit=",
        "https://api-sandbox.fndev.net/api/rest/v2/workorders?access_token=eyJhbGci...",
        "/ATServicesRest/V1.0/Companies",
        "Authorization: Bearer eyJ0eXAiOiJKV......",
        "Authorization: Bearer YOUR_API_KEY",
        "/search?q=why?",
    ]
    for i, t in enumerate(targets):
        write("credential_apply", f"golden-{i:02}", t)
    # ffi_abi: first half the pool of bytes, second half the call script.
    for i, r in enumerate(RESPONSES[:6]):
        script = bytes((j * 37 + i) % 251 for j in range(len(r)))
        write("ffi_abi", f"golden-{i:02}", r + script)


if __name__ == "__main__":
    main()
