"""A fake OpenSearch: a real HTTP server on 127.0.0.1, at least as strict as a cluster on what vamp sends.

No OpenSearch server can be installed on these machines, so tests drive the real opensearch-py
client (or any HTTP client) against this. Documents live in memory per index and survive
stop()/start(), which rebinds the SAME port, so a shipper can be tested across an outage.

    fake = FakeOpenSearch(); fake.start()        # fake.url -> "http://127.0.0.1:<port>"
    fake.fail("POST", "/_bulk", status=503, nth=2)  # the 2nd matching request answers 503
    fake.fail("GET", "/*/_search", action="reset")  # every matching request: connection dropped
    fake.fail_bulk(2, status=503)                 # the next 2 _bulk calls answer 503
    fake.bulk_item_statuses([None, 429, 400])     # the next _bulk: item 1 429, item 2 400, the rest as usual
    fake.fail_documents(lambda doc: ..., 500)     # every bulk item whose document matches: 500, always
    fake.documents("vamp-logs-*")                 # the _source of every matching document (stored, refreshed or not)
    fake.requests                                 # [{"method", "path", "params", "body", "headers"}, ...]
    fake.stop(); fake.start()                     # down, then up again on the same port

As a cluster does:
- requests are checked against the published API specification (tests/fakes/opensearch_api.py):
  an unknown path is a 400, a wrong method a 405, an unknown or ill-typed query parameter a 400;
  a body needs a Content-Type; a body over `max_content_length` (http.max_content_length,
  100mb by default) is a 413 and the connection is closed;
- an index created by a write takes the mapping and settings of the highest-priority index
  template matching its name, and every document is parsed against it
  (tests/fakes/opensearch_mapping.py): types, the `date_nanos` range, `dynamic`, dynamic
  templates, the total-fields limit; index names are checked (lowercase, no `\\ / * ? " < > | , #`...);
- `_bulk` parses its action lines first (a malformed one fails the whole request with a 400, as
  BulkRequestParser does) and each document on its own: a malformed document, like one the
  mapping refuses, is that item's 400 `mapper_parsing_exception`; items answer 201/200/4xx/5xx
  each, with OpenSearch's error bodies;
- searches see a write only after a refresh: the index's refresh_interval (1s unless its
  settings say otherwise; -1: never by itself), `?refresh=true|wait_for` on the write, or
  `_refresh`; `term` on a keyword is exact, on a text field it matches a lowercase token, on an
  unmapped or unindexed field nothing; sorting on an unmapped field needs `unmapped_type`;
- with `sigv4=(access_key, secret_key, region, service)` every request must carry a valid AWS
  Signature Version 4 of those credentials, or is answered 403 (as an IAM-protected domain).

Endpoints: GET|HEAD /; GET /_cluster/health; PUT|POST|GET|HEAD|DELETE /_index_template/<name>;
PUT|GET|HEAD|DELETE /<index>; POST|PUT /_bulk and /<index>/_bulk (index, create, delete);
POST|PUT /<index>/_doc[/<id>], GET|HEAD /<index>/_doc/<id>; GET|POST /[<pattern>/]_search
(bool filter/must/must_not/should of term, terms, range, exists, match_all; sort; from/size;
track_total_hits; aggs min/max/avg/sum/value_count); GET|POST /[<pattern>/]_count and
/[<pattern>/]_refresh; GET /_cat/indices[/<pattern>]?format=json. Bodies may be chunked or
gzip-compressed (http_compress=True).
"""
from __future__ import annotations

import fnmatch
import gzip
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes import opensearch_api as api
from tests.fakes.opensearch_mapping import Mapping, MappingError, index_name_error, refresh_seconds

MAX_CONTENT_LENGTH = 100 * 1024 * 1024  # http.max_content_length's default


class _Reply(Exception):
    def __init__(self, status: int, body: Any = None, close: bool = False):
        self.status, self.body, self.close = status, body, close


def _error(status: int, kind: str, reason: str, caused_by: dict | None = None, **extra: Any) -> _Reply:
    cause = {"type": kind, "reason": reason, **extra}
    error = {"root_cause": [cause], **cause}
    if caused_by:
        error["caused_by"] = caused_by
    return _Reply(status, {"error": error, "status": status})


def _item_error(status: int, kind: str, reason: str, **extra: Any) -> dict:
    return {"type": kind, "reason": reason, **extra}


def _rejected(what: str = "coordinating") -> dict:
    return _item_error(429, "rejected_execution_exception",
                       f"rejected execution of {what} operation [shard_detail=[fake][0][P], "
                       "shard_max_coordinating_and_primary_bytes=0]")


@dataclass
class _Failure:
    """Requests a test chose to fail: method and path (fnmatch) match; nth counts the matches."""

    method: str
    path: str
    status: int = 503
    action: str = "status"  # "status": answer `status`; "reset": drop the connection; "delay": sleep, then serve
    nth: int | None = None  # only the nth matching request (1-based); None: every one, `times` times
    times: int | None = None
    seconds: float = 0.0
    seen: int = 0
    used: int = 0

    def applies(self, method: str, path: str) -> bool:
        if method != self.method or not fnmatch.fnmatchcase(path, self.path):
            return False
        self.seen += 1
        if self.nth is not None and self.seen != self.nth:
            return False
        if self.times is not None and self.used >= self.times:
            return False
        self.used += 1
        return True


@dataclass
class _Index:
    mapping: Mapping
    refresh_interval: float | None
    settings: dict = field(default_factory=dict)
    docs: dict[str, tuple[dict, dict]] = field(default_factory=dict)  # _id -> (_source, indexed values)
    visible: dict[str, tuple[dict, dict]] = field(default_factory=dict)  # as of the last refresh
    refreshed_at: float = field(default_factory=time.monotonic)
    seq: int = 0

    def refresh(self) -> None:
        self.visible = dict(self.docs)
        self.refreshed_at = time.monotonic()

    def searchable(self) -> dict[str, tuple[dict, dict]]:
        if self.refresh_interval is not None and time.monotonic() - self.refreshed_at >= self.refresh_interval:
            self.refresh()  # the periodic refresh, done when someone looks
        return self.visible


# --- the query language subset ------------------------------------------------------------


def _matches(index: _Index, indexed: dict, query: dict | None) -> bool:
    if not query:
        return True
    (kind, spec), *_ = query.items()
    if kind == "match_all":
        return True
    if kind == "match_none":
        return False
    if kind == "bool":
        def clauses(key: str) -> list:
            value = spec.get(key)
            return value if isinstance(value, list) else ([value] if value is not None else [])
        should = clauses("should")
        return (
            all(_matches(index, indexed, c) for c in clauses("filter") + clauses("must"))
            and not any(_matches(index, indexed, c) for c in clauses("must_not"))
            and (not should or any(_matches(index, indexed, c) for c in should))
        )
    if kind in ("term", "terms"):
        path, wanted = next((k, v) for k, v in spec.items() if k != "boost")
        if kind == "term":
            wanted = [wanted["value"] if isinstance(wanted, dict) else wanted]
        keys = {index.mapping.query_value(path, w) for w in wanted}
        return any(v in keys for v in indexed.get(path, ()))
    if kind == "range":
        (path, bounds), *_ = spec.items()
        ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
        checks = [(ops[op], index.mapping.query_value(path, b)) for op, b in bounds.items() if op in ops and b is not None]
        return any(all(op(v, b) for op, b in checks) for v in indexed.get(path, ()))
    if kind == "exists":
        return bool(indexed.get(spec["field"]))
    raise _error(400, "parsing_exception", f"unknown query [{kind}]", line=1, col=1)


def _sort(hits: list[dict], sort: Any, indices: dict[str, _Index]) -> list[dict]:
    specs = sort if isinstance(sort, list) else [sort]
    for spec in reversed(specs):  # stable sorts, last key first
        if isinstance(spec, str):
            path, opts = spec, {}
        else:
            (path, opts), *_ = spec.items()
        opts = {"order": opts} if isinstance(opts, str) else opts
        order = opts.get("order", "asc")
        if path in ("_score", "_doc"):
            continue
        for name in {h["_index"] for h in hits} or set(indices):
            kind = indices[name].mapping.kind(path)
            if kind is None and "unmapped_type" not in opts:
                raise _error(400, "search_phase_execution_exception", "all shards failed",
                             {"type": "query_shard_exception", "reason": f"No mapping found for [{path}] in order to sort on"})
            if kind in ("text", "match_only_text"):
                raise _error(400, "search_phase_execution_exception", "all shards failed",
                             {"type": "illegal_argument_exception",
                              "reason": f"Text fields are not optimised for operations that require per-document field "
                                        f"data like aggregations and sorting, so these operations are disabled by "
                                        f"default. Please use a keyword field instead. [{path}]"})
        present = [h for h in hits if h["_indexed"].get(path)]
        missing = [h for h in hits if not h["_indexed"].get(path)]
        pick = max if order == "desc" else min
        present.sort(key=lambda h: pick(h["_indexed"][path]), reverse=order == "desc")
        hits = present + missing  # missing values last, as OpenSearch does by default
    return hits


def _aggregate(hits: list[dict], aggs: dict) -> dict:
    out = {}
    for name, spec in aggs.items():
        (kind, opts), *_ = spec.items()
        values = [v for h in hits for v in h["_indexed"].get(opts["field"], ())]
        numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if kind == "value_count":
            out[name] = {"value": len(values)}
        elif kind == "min":
            out[name] = {"value": min(numbers) if numbers else None}
        elif kind == "max":
            out[name] = {"value": max(numbers) if numbers else None}
        elif kind == "sum":
            out[name] = {"value": sum(numbers)}
        elif kind == "avg":
            out[name] = {"value": sum(numbers) / len(numbers) if numbers else None}
        else:
            raise _error(400, "parsing_exception", f"unknown aggregation type [{kind}]")
    return out


# --- the server ---------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # restart on the same port while old sockets sit in TIME_WAIT
    daemon_threads = True

    def __init__(self, address, handler, fake: "FakeOpenSearch"):
        self.fake = fake
        self.connections: set[socket.socket] = set()
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        self.connections.add(request)
        super().process_request(request, client_address)

    def close_connections(self) -> None:
        """Keep-alive connections would outlive shutdown(); a stopped server must be unreachable."""
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.connections.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real cluster; urllib3 pools connections
    server: _Server

    def log_message(self, *args) -> None:  # quiet
        pass

    def _serve(self) -> None:
        fake = self.server.fake
        raw = self._raw_body()
        parts = urlsplit(self.path)
        try:
            params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            fake._record(self.command, unquote(parts.path), params, raw, dict(self.headers.items()))
            failure = fake._failure(self.command, unquote(parts.path))
            if failure is not None and failure.action == "reset":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if failure is not None and failure.action == "delay":
                time.sleep(failure.seconds)
                failure = None
            if failure is not None:
                kind = "rejected_execution_exception" if failure.status == 429 else "fake_failure"
                raise _error(failure.status, kind, f"fake: {self.command} {parts.path} answers {failure.status}")
            if len(raw) > fake.max_content_length:
                raise _Reply(413, None, close=True)
            fake._check_signature(self.command, self.path, dict(self.headers.items()), raw)
            body = gzip.decompress(raw) if self.headers.get("Content-Encoding", "").lower() == "gzip" else raw
            if body and not (self.headers.get("Content-Type") or "").split(";")[0].strip():
                raise _Reply(406, {"error": "Content-Type header is missing", "status": 406})
            status, payload = fake._handle(self.command, unquote(parts.path), params, body, dict(self.headers.items()))
        except _Reply as r:
            status, payload = r.status, r.body
            if r.close:
                self.close_connection = True
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _raw_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return body
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


class FakeOpenSearch:
    def __init__(self, port: int = 0, max_content_length: int = MAX_CONTENT_LENGTH,
                 sigv4: tuple[str, str, str, str] | None = None):
        self.port = port  # 0: a free port, chosen at the first start() and kept after
        self.max_content_length = max_content_length
        self.sigv4 = sigv4  # (access key, secret key, region, service): every request must be signed so
        self.indices: dict[str, _Index] = {}
        self.templates: dict[str, dict] = {}
        self.requests: list[dict] = []
        self._failures: list[_Failure] = []
        self._item_statuses: list[list[int | None]] = []  # per-item statuses for the next _bulk calls
        self._document_failures: list[tuple[Callable[[dict], bool], int]] = []
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- control --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "FakeOpenSearch":
        if self._server is None:
            self._server = _Server(("127.0.0.1", self.port), _Handler, self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Down: the port refuses connections (documents are kept for the next start())."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def clear(self) -> None:
        with self._lock:
            self.indices.clear()
            self.templates.clear()
            self.requests.clear()
            self._failures.clear()
            self._item_statuses.clear()
            self._document_failures.clear()

    def fail(self, method: str, path: str, status: int = 503, *, nth: int | None = None, times: int | None = None,
             action: str = "status", seconds: float = 0.0) -> None:
        """Fail requests whose method and path (an fnmatch pattern: "/*/_search") match: the
        `nth` matching one only, or every one (at most `times`). `action`: "status" answers
        `status` and does nothing else; "reset" drops the connection without an answer;
        "delay" waits `seconds` before serving (a client timeout)."""
        with self._lock:
            self._failures.append(_Failure(method, path, status, action, nth, times, seconds))

    def fail_bulk(self, times: int = 1, status: int = 503) -> None:
        """The next `times` _bulk calls answer `status` (e.g. 503, 429) and store nothing."""
        self.fail("POST", "*_bulk", status, times=times)
        self.fail("PUT", "*_bulk", status, times=times)

    def bulk_item_statuses(self, *batches: list[int | None]) -> None:
        """The next _bulk calls (one list each) answer these statuses per item (None: as it
        would anyway; 2xx: stored), with the error bodies OpenSearch gives them."""
        with self._lock:
            self._item_statuses += [list(b) for b in batches]

    def reject_bulk_items(self, times: int = 1, status: int = 429) -> None:
        """The next `times` _bulk calls answer 200 with `errors: true`, every item `status`."""
        with self._lock:
            self._item_statuses += [[status] * 100_000 for _ in range(times)]

    def fail_documents(self, predicate: Callable[[dict], bool], status: int = 500) -> None:
        """Every bulk item whose document matches answers `status`, for as long as the fake runs."""
        with self._lock:
            self._document_failures.append((predicate, status))

    def documents(self, pattern: str = "*") -> list[dict]:
        """What is stored (as a GET by id sees it: whether or not a search would yet)."""
        with self._lock:
            return [dict(source) for name in self._resolve(pattern) for source, _ in self.indices[name].docs.values()]

    def refresh(self, pattern: str = "*") -> None:
        with self._lock:
            for name in self._resolve(pattern):
                self.indices[name].refresh()

    def mapping(self, index: str) -> dict:
        with self._lock:
            return self.indices[index].mapping.as_properties()

    def __enter__(self) -> "FakeOpenSearch":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- checks before routing ------------------------------------------------------------

    def _record(self, method: str, path: str, params: dict, raw: bytes, headers: dict) -> None:
        try:
            text = (gzip.decompress(raw) if headers.get("Content-Encoding", "").lower() == "gzip" else raw).decode("utf-8", "replace")
        except OSError:
            text = raw.decode("utf-8", "replace")
        with self._lock:
            self.requests.append({"method": method, "path": path, "params": params, "body": text, "headers": headers})

    def _failure(self, method: str, path: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.applies(method, path):
                    return failure
        return None

    def _check_signature(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        if self.sigv4 is None:
            return
        from tests.fakes.sigv4 import verify

        problem = verify(self.sigv4, method, self.url + target, headers, body)
        if problem is not None:
            raise _Reply(403, {"message": problem})

    def _check_request(self, method: str, path: str, params: dict) -> tuple[str, dict[str, str]]:
        found = api.match(path)
        if found is None:
            raise _Reply(400, {"error": f"no handler found for uri [{path}] and method [{method}]"})
        template, bound = found
        methods = api.OPERATIONS[template]
        if method not in methods:
            raise _Reply(405, {"error": f"Incorrect HTTP method for uri [{path}] and method [{method}], allowed: "
                                        f"[{', '.join(sorted(methods))}]", "status": 405})
        operation, allowed = methods[method]
        unknown = sorted(set(params) - allowed - api.GLOBAL)
        if unknown:
            raise _error(400, "illegal_argument_exception",
                         f"request [{path}] contains unrecognized parameter{'s' if len(unknown) > 1 else ''}: "
                         f"[{', '.join(unknown)}]")
        for name, value in params.items():
            if name in api.BOOLEAN and value not in ("true", "false", ""):
                raise _error(400, "illegal_argument_exception",
                             f"Failed to parse value [{value}] as only [true] or [false] are allowed.")
            if name in api.VALUES and not set(value.split(",")) <= api.VALUES[name]:
                raise _error(400, "illegal_argument_exception", f"Unknown value for {name}: [{value}]")
            if name == "track_total_hits" and value not in ("true", "false") and not value.lstrip("-").isdigit():
                raise _error(400, "illegal_argument_exception", f"Failed to parse int parameter [track_total_hits] with value [{value}]")
        return operation, bound

    # --- routing --------------------------------------------------------------------------

    def _resolve(self, pattern: str) -> list[str]:
        names: list[str] = []
        for part in (pattern or "_all").split(","):
            part = "*" if part in ("_all", "") else part
            names += [n for n in sorted(self.indices) if fnmatch.fnmatchcase(n, part) and n not in names]
        return names

    def _handle(self, method: str, path: str, params: dict, body: bytes, headers: dict) -> tuple[int, Any]:
        with self._lock:
            operation, bound = self._check_request(method, path, params)
            index = bound.get("index")
            if operation in ("info", "ping"):
                return 200, self._info()
            if operation == "bulk":
                return self._bulk(index, body, params)
            if operation.endswith("_index_template"):
                return self._template(method, bound["name"], body)
            if operation == "cluster.health":
                return 200, {"cluster_name": "fake-opensearch", "status": "green", "number_of_nodes": 1}
            if operation == "cat.indices":
                return 200, [{"health": "green", "status": "open", "index": n, "docs.count": str(len(self.indices[n].docs))}
                             for n in self._resolve(index or "*")]
            if operation == "indices.refresh":
                names = self._resolve(index or "_all")
                for name in names:
                    self.indices[name].refresh()
                return 200, {"_shards": {"total": len(names), "successful": len(names), "failed": 0}}
            if operation in ("search", "count"):
                return self._search(index or "_all", _json(body) if body else {}, params, count_only=operation == "count")
            if operation == "index":
                doc_id = bound.get("id") or uuid.uuid4().hex[:20]
                status, result = self._store(index, doc_id, body, create=params.get("op_type") == "create")
                self._after_write({index}, params)
                return status, result
            if operation in ("get", "exists"):
                found = self.indices.get(index)
                if found is None or bound["id"] not in found.docs:
                    raise _Reply(404, {"_index": index, "_id": bound["id"], "found": False})
                return 200, {"_index": index, "_id": bound["id"], "found": True, "_source": found.docs[bound["id"]][0]}
            return self._index(method, index, params, body)

    def _info(self) -> dict:
        return {
            "name": "fake-opensearch",
            "cluster_name": "fake-opensearch",
            "cluster_uuid": "fake",
            "version": {"distribution": "opensearch", "number": "2.19.0", "lucene_version": "9.12.0"},
            "tagline": "The OpenSearch Project: https://opensearch.org/",
        }

    def _template(self, method: str, name: str, body: bytes) -> tuple[int, Any]:
        if method in ("PUT", "POST"):
            template = _json(body)
            if not isinstance(template.get("index_patterns"), (list, str)):
                raise _error(400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
            Mapping(template.get("template", {}).get("mappings"), template.get("template", {}).get("settings"))
            self.templates[name] = template
            return 200, {"acknowledged": True}
        if name not in self.templates:
            if method == "HEAD":
                raise _Reply(404)
            raise _error(404, "resource_not_found_exception", f"index template matching [{name}] not found")
        if method == "DELETE":
            del self.templates[name]
            return 200, {"acknowledged": True}
        return 200, {"index_templates": [{"name": name, "index_template": self.templates[name]}]}

    def _template_for(self, index: str) -> dict:
        matching = []
        for name, template in self.templates.items():
            patterns = template["index_patterns"]
            patterns = [patterns] if isinstance(patterns, str) else patterns
            if any(fnmatch.fnmatchcase(index, p) for p in patterns):
                matching.append((template.get("priority", 0), name, template))
        if not matching:
            return {}
        return max(matching)[2].get("template", {})

    def _create_index(self, name: str, body: dict | None = None) -> _Index:
        problem = index_name_error(name)
        if problem:
            raise _error(400, "invalid_index_name_exception", f"Invalid index name [{name}], {problem}",
                         index=name, index_uuid="_na_")
        template = self._template_for(name)
        settings = {**template.get("settings", {}), **(body or {}).get("settings", {})}
        mappings = (body or {}).get("mappings") or template.get("mappings")
        try:
            created = _Index(Mapping(mappings, settings), refresh_seconds(settings), settings)
        except ValueError as e:
            raise _error(400, "illegal_argument_exception", str(e)) from None
        self.indices[name] = created
        return created

    def _index(self, method: str, pattern: str, params: dict, body: bytes) -> tuple[int, Any]:
        if method == "PUT":
            if pattern in self.indices:
                raise _error(400, "resource_already_exists_exception", f"index [{pattern}/fake] already exists",
                             index=pattern)
            self._create_index(pattern, _json(body) if body else None)
            return 200, {"acknowledged": True, "shards_acknowledged": True, "index": pattern}
        names = self._resolve(pattern)
        if not names and "*" not in pattern and params.get("ignore_unavailable") != "true":
            if method == "HEAD":
                raise _Reply(404)
            raise _error(404, "index_not_found_exception", f"no such index [{pattern}]", index=pattern)
        if method == "DELETE":
            if "*" in pattern:
                raise _error(400, "illegal_argument_exception", "Wildcard expressions or all indices are not allowed")
            for n in names:
                del self.indices[n]
            return 200, {"acknowledged": True}
        return 200, {n: {"aliases": {}, "mappings": self.indices[n].mapping.as_properties(),
                         "settings": self.indices[n].settings} for n in names}

    def _store(self, index: str | None, doc_id: str, raw: bytes, create: bool) -> tuple[int, dict]:
        """One document written: its status and result (raises _Reply for a refused one)."""
        if index is None:
            raise _Reply(400, _item_error(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;"))
        target = self.indices.get(index) or self._create_index(index)
        try:
            source = json.loads(raw)
        except ValueError as e:
            raise _Reply(400, _item_error(400, "mapper_parsing_exception", "failed to parse",
                                          caused_by={"type": "json_parse_exception", "reason": str(e)})) from None
        if create and doc_id in target.docs:
            raise _Reply(409, _item_error(409, "version_conflict_engine_exception",
                                          f"[{doc_id}]: version conflict, document already exists (current version [1])",
                                          index=index, shard="0", index_uuid="fake"))
        try:
            indexed = target.mapping.parse(source, doc_id)
        except MappingError as e:
            raise _Reply(400, e.body()) from None
        result = "updated" if doc_id in target.docs else "created"
        target.docs[doc_id] = (source, indexed)
        target.seq += 1
        return (201 if result == "created" else 200), {
            "_index": index, "_id": doc_id, "_version": 1, "result": result,
            "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": target.seq - 1, "_primary_term": 1}

    def _after_write(self, names: set, params: dict) -> None:
        if params.get("refresh") in ("true", "", "wait_for"):  # wait_for: visible before the answer, like true here
            for name in names:
                if name in self.indices:
                    self.indices[name].refresh()

    def _bulk(self, default_index: str | None, body: bytes, params: dict) -> tuple[int, Any]:
        if body and not body.endswith(b"\n"):
            raise _error(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
        lines = body.split(b"\n")[:-1] if body else []
        actions: list[tuple[str, dict, bytes | None]] = []
        i = 0
        while i < len(lines):  # action lines are parsed first: one malformed fails the request
            line_no = i + 1
            raw = lines[i].strip()
            i += 1
            if not raw:
                continue
            try:
                action_line = json.loads(raw)
            except ValueError:
                raise _error(400, "json_parse_exception", f"Malformed action/metadata line [{line_no}]: not JSON") from None
            if not isinstance(action_line, dict) or len(action_line) != 1:
                raise _error(400, "illegal_argument_exception",
                             f"Malformed action/metadata line [{line_no}], expected START_OBJECT or END_OBJECT")
            (action, meta), *_ = action_line.items()
            if action not in ("index", "create", "delete", "update"):
                raise _error(400, "illegal_argument_exception",
                             f"Malformed action/metadata line [{line_no}], expected field [create], [delete], [index] "
                             f"or [update] but found [{action}]")
            if not isinstance(meta, dict):
                raise _error(400, "illegal_argument_exception", f"Malformed action/metadata line [{line_no}]")
            unknown = set(meta) - {"_index", "_id", "routing", "op_type", "version", "version_type", "if_seq_no",
                                   "if_primary_term", "pipeline", "require_alias", "retry_on_conflict", "_source"}
            if unknown:
                raise _error(400, "illegal_argument_exception",
                             f"Action/metadata line [{line_no}] contains an unknown parameter [{sorted(unknown)[0]}]")
            if action == "delete":
                actions.append((action, meta, None))
                continue
            if i >= len(lines):
                raise _error(400, "illegal_argument_exception", f"The {action} action on line [{line_no}] has no document")
            actions.append((action, meta, lines[i]))
            i += 1
        if not actions:
            raise _error(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
        chosen = self._item_statuses.pop(0) if self._item_statuses else []
        items, touched = [], set()
        for n, (action, meta, raw) in enumerate(actions):
            index, doc_id = meta.get("_index", default_index), meta.get("_id")
            forced = chosen[n] if n < len(chosen) else None
            try:
                if action == "update":
                    raise _Reply(400, _item_error(400, "illegal_argument_exception", "the fake does not handle bulk updates"))
                if forced is not None and forced >= 300:
                    raise _Reply(forced, _rejected() if forced == 429 else _forced_error(forced, index))
                if raw is not None:
                    self._document_failure(raw, index)
                if action in ("index", "create"):
                    status, result = self._store(index, doc_id or uuid.uuid4().hex[:20], raw, create=action == "create")
                    touched.add(index)
                else:
                    target = self.indices.get(index)
                    found = target is not None and target.docs.pop(doc_id, None) is not None
                    status = 200 if found else 404
                    result = {"_index": index, "_id": doc_id, "_version": 2, "result": "deleted" if found else "not_found",
                              "_shards": {"total": 1, "successful": 1, "failed": 0}}
                    touched.add(index)
                items.append({action: {**result, "status": status}})
            except _Reply as r:
                items.append({action: {"_index": index, "_id": doc_id, "status": r.status, "error": r.body}})
        self._after_write(touched, params)
        errors = any(next(iter(item.values()))["status"] >= 300 and "error" in next(iter(item.values())) for item in items)
        return 200, {"took": 1, "errors": errors, "items": items}

    def _document_failure(self, raw: bytes, index: str | None) -> None:
        if not self._document_failures:
            return
        try:
            source = json.loads(raw)
        except ValueError:
            return
        for predicate, status in self._document_failures:
            if isinstance(source, dict) and predicate(source):
                raise _Reply(status, _rejected() if status == 429 else _forced_error(status, index))

    def _search(self, pattern: str, body: dict, params: dict, count_only: bool) -> tuple[int, Any]:
        names = self._resolve(pattern)
        if not names and "*" not in pattern and params.get("ignore_unavailable") != "true":
            raise _error(404, "index_not_found_exception", f"no such index [{pattern}]", index=pattern)
        try:
            hits = [
                {"_index": n, "_id": i, "_score": None, "_source": source, "_indexed": indexed}
                for n in names
                for i, (source, indexed) in self.indices[n].searchable().items()
                if _matches(self.indices[n], indexed, body.get("query"))
            ]
        except MappingError as e:
            raise _error(400, e.kind, e.reason, e.caused_by) from None
        shards = {"total": len(names), "successful": len(names), "skipped": 0, "failed": 0}
        if count_only:
            return 200, {"count": len(hits), "_shards": shards}
        if "sort" in body:
            hits = _sort(hits, body["sort"], {n: self.indices[n] for n in names})
        start = int(body.get("from", params.get("from", 0)))
        size = int(body.get("size", params.get("size", 10)))
        if start + size > 10_000:
            raise _error(400, "search_phase_execution_exception", "all shards failed",
                         {"type": "illegal_argument_exception",
                          "reason": f"Result window is too large, from + size must be less than or equal to: [10000] "
                                    f"but was [{start + size}]."})
        page = [{k: v for k, v in h.items() if k != "_indexed"} for h in hits[start: start + size]]
        response: dict[str, Any] = {"took": 1, "timed_out": False, "_shards": shards, "hits": {"max_score": None, "hits": page}}
        track = body.get("track_total_hits", 10_000)
        if track is True or (not isinstance(track, bool) and len(hits) <= int(track)):
            response["hits"]["total"] = {"value": len(hits), "relation": "eq"}
        elif track is not False:
            response["hits"]["total"] = {"value": int(track), "relation": "gte"}
        if "aggs" in body or "aggregations" in body:
            response["aggregations"] = _aggregate(hits, body.get("aggs") or body["aggregations"])
        return 200, response


def _forced_error(status: int, index: str | None) -> dict:
    if status == 400:
        return _item_error(400, "mapper_parsing_exception", "failed to parse (chosen by the test)")
    if status == 403:  # a write block: flood-stage disk watermark, or an operator's
        return _item_error(403, "cluster_block_exception", f"index [{index}] blocked by: [FORBIDDEN/8/index write (api)];")
    if status == 404:
        return _item_error(404, "index_not_found_exception", f"no such index [{index}]", index=index)
    if status == 409:
        return _item_error(409, "version_conflict_engine_exception", "version conflict (chosen by the test)")
    return _item_error(status, "exception" if status >= 500 else "illegal_argument_exception",
                       f"fake: item answers {status}")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as e:
        raise _error(400, "parse_exception", f"request body is required / not JSON: {e}") from None
