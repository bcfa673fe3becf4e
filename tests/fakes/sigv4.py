"""AWS Signature Version 4, checked as an IAM-protected OpenSearch domain checks it (for the fake).

The signature is recomputed with botocore (a test dependency) from the request as received:
the headers it names as signed, the query string, the body's SHA-256; the credentials are the
ones the fake was given. A missing or wrong signature, another key, region or service, a body
that does not match its hash, or a date more than 15 minutes off is refused, as AWS refuses it.
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def verify(expected: tuple[str, str, str, str], method: str, url: str, headers: dict[str, str], body: bytes) -> str | None:
    """None if the request is signed with `expected` (access key, secret key, region, service),
    else what AWS would say."""
    access_key, secret_key, region, service = expected
    lower = {k.lower(): v for k, v in headers.items()}
    m = _AUTH.match(lower.get("authorization", ""))
    if not m:
        return "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' (AWS4-HMAC-SHA256)"
    key, day, got_region, got_service, signed, signature = m.groups()
    if (key, got_region, got_service) != (access_key, region, service):
        return f"The security token included in the request is invalid ({key}/{got_region}/{got_service})"
    stamp = lower.get("x-amz-date", "")
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return "Missing or invalid X-Amz-Date"
    if abs((datetime.now(timezone.utc) - when).total_seconds()) > 900 or stamp[:8] != day:
        return "Signature expired"
    digest = lower.get("x-amz-content-sha256")
    if digest is not None and digest != hashlib.sha256(body).hexdigest():
        return "The provided 'x-amz-content-sha256' header does not match what was computed."
    names = signed.split(";")
    if "host" not in names or any(n not in lower for n in names):
        return "SignedHeaders must include host and name only headers that were sent"
    request = AWSRequest(method=method, url=url, data=body, headers={n: lower[n] for n in names})
    request.context["timestamp"] = stamp
    auth = SigV4Auth(Credentials(access_key, secret_key), service, region)
    wanted = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if wanted != signature:
        return "The request signature we calculated does not match the signature you provided."
    return None
