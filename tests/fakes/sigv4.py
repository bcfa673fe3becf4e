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


def verify_presigned(expected: tuple[str, str, str, str], method: str, url: str, headers: dict[str, str],
                     now: datetime | None = None, lifetime: int | None = None) -> str | None:
    """None if `url` is a query-signed (presigned) request signed with `expected` (access key,
    secret key, region, service) whose signed headers are `headers`, within its X-Amz-Expires
    (a presign never lasts more than 7 days) or `lifetime` seconds when given (EKS takes its
    tokens for 15 minutes whatever they say); else what AWS would say."""
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

    from botocore.auth import SigV4QueryAuth

    access_key, secret_key, region, service = expected
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = dict(pairs)
    if query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or not query.get("X-Amz-Signature"):
        return "Query-string authentication requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, " \
               "X-Amz-Date, X-Amz-SignedHeaders and X-Amz-Expires parameters"
    scope = query.get("X-Amz-Credential", "").split("/")
    if len(scope) != 5 or (scope[0], scope[2], scope[3]) != (access_key, region, service) or scope[4] != "aws4_request":
        return f"The security token included in the request is invalid ({query.get('X-Amz-Credential')})"
    stamp = query.get("X-Amz-Date", "")
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        expires = int(query.get("X-Amz-Expires", ""))
    except ValueError:
        return "Missing or invalid X-Amz-Date or X-Amz-Expires"
    age = ((now or datetime.now(timezone.utc)) - when).total_seconds()
    if stamp[:8] != scope[1] or not 0 < expires <= 604800 or not -900 <= age <= (lifetime or expires):
        return "Signature expired"
    lower = {k.lower(): v for k, v in headers.items()}
    lower.setdefault("host", parts.netloc)
    names = query.get("X-Amz-SignedHeaders", "").split(";")
    if "host" not in names or any(n not in lower for n in names):
        return "SignedHeaders must include host and name only headers that were sent"
    unsigned = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in pairs if k != "X-Amz-Signature"],
                                                         quote_via=quote)))
    request = AWSRequest(method=method, url=unsigned, headers={n: lower[n] for n in names})
    request.context["timestamp"] = stamp
    auth = SigV4QueryAuth(Credentials(access_key, secret_key), service, region, expires=expires)
    wanted = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if wanted != query["X-Amz-Signature"]:
        return "The request signature we calculated does not match the signature you provided."
    return None
