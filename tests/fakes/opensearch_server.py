"""A fake OpenSearch: a real HTTP server on 127.0.0.1 speaking the REST subset vamp uses.

No OpenSearch server can be installed on these machines, so tests drive the real opensearch-py
client (or any HTTP client) against this. Documents live in memory per index and survive
stop()/start(), which rebinds the SAME port, so a shipper can be tested across an outage.

    fake = FakeOpenSearch(); fake.start()        # fake.url -> "http://127.0.0.1:<port>"
    fake.fail_bulk(2, status=503)                 # the next 2 _bulk calls answer 503
    fake.reject_bulk_items(1, status=429)         # the next _bulk answers 200, every item 429
    fake.documents("vamp-logs-*")                 # the _source of every matching document
    fake.requests                                 # [{"method", "path", "params", "body"}, ...]
    fake.stop(); fake.start()                     # down, then up again on the same port

Endpoints: GET|HEAD /; GET /_cluster/health; PUT|GET|HEAD|DELETE /_index_template/<name>;
PUT|HEAD|DELETE /<index>; POST|PUT /_bulk and /<index>/_bulk (index, create, delete);
POST|PUT /<index>/_doc[/<id>]; GET|POST /<pattern>/_search and /_search (bool filter/must/
must_not/should of term, terms, range, exists, match_all; sort; from/size; track_total_hits;
aggs min/max/avg/sum/value_count); GET|POST /<pattern>/_count; POST /<pattern>/_refresh;
GET /_cat/indices?format=json. Bodies may be chunked or gzip-compressed (http_compress=True).
Anything else answers 400 and is kept in `requests`.
"""
from __future__ import annotations

import fnmatch
import gzip
import json
import socket
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


class _Reply(Exception):
    def __init__(self, status: int, body: Any = None):
        self.status, self.body = status, body


def _error(status: int, kind: str, reason: str) -> _Reply:
    return _Reply(status, {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}, "status": status})


# --- the query language subset ------------------------------------------------------------


def _values(doc: dict, field: str) -> list:
    """Every value at a field path, through nested objects or dotted keys; lists flattened."""
    if field in doc:
        found = doc[field]
        return [v for v in (found if isinstance(found, list) else [found]) if v is not None]
    parts = field.split(".")
    for i in range(1, len(parts)):
        head = ".".join(parts[:i])
        if head in doc:
            inner, rest = doc[head], ".".join(parts[i:])
            items = inner if isinstance(inner, list) else [inner]
            return [v for item in items if isinstance(item, dict) for v in _values(item, rest)]
    return []


def _comparable(v: Any) -> tuple:
    """Numbers compare as numbers, ISO dates as instants (exact to the microsecond), the rest as text."""
    if isinstance(v, bool):
        return (1, str(v).lower())
    if isinstance(v, (int, float)):
        return (0, float(v))
    if isinstance(v, str):
        try:
            return (0, float(v))
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(v.replace("z", "Z"))
            return (2, dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc))
        except ValueError:
            return (1, v)
    return (1, json.dumps(v, sort_keys=True))


def _matches(doc: dict, query: dict | None) -> bool:
    if not query:
        return True
    (kind, spec), *_ = query.items()
    if kind == "match_all":
        return True
    if kind == "match_none":
        return False
    if kind == "bool":
        clauses = lambda key: spec.get(key) if isinstance(spec.get(key), list) else ([spec[key]] if key in spec else [])  # noqa: E731
        should = clauses("should")
        return (
            all(_matches(doc, c) for c in clauses("filter") + clauses("must"))
            and not any(_matches(doc, c) for c in clauses("must_not"))
            and (not should or any(_matches(doc, c) for c in should))
        )
    if kind in ("term", "terms"):
        field, wanted = next((k, v) for k, v in spec.items() if k != "boost")
        if kind == "term":
            wanted = [wanted["value"] if isinstance(wanted, dict) else wanted]
        wanted_keys = {_comparable(w) for w in wanted}
        return any(_comparable(v) in wanted_keys for v in _values(doc, field))
    if kind == "range":
        (field, bounds), *_ = spec.items()
        ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
        checks = [(ops[op], _comparable(b)) for op, b in bounds.items() if op in ops and b is not None]
        return any(all(op(_comparable(v), b) for op, b in checks) for v in _values(doc, field))
    if kind == "exists":
        return bool(_values(doc, spec["field"]))
    raise _error(400, "parsing_exception", f"unknown query [{kind}] (the fake supports bool, term, terms, range, exists, match_all)")


def _sort(hits: list[dict], sort: Any) -> list[dict]:
    specs = sort if isinstance(sort, list) else [sort]
    for spec in reversed(specs):  # stable sorts, last key first
        if isinstance(spec, str):
            field, order = spec, "asc"
        else:
            (field, opts), *_ = spec.items()
            order = opts if isinstance(opts, str) else opts.get("order", "asc")
        if field in ("_score", "_doc"):
            continue
        present = [h for h in hits if _values(h["_source"], field)]
        missing = [h for h in hits if not _values(h["_source"], field)]
        pick = max if order == "desc" else min
        present.sort(key=lambda h: pick(_comparable(v) for v in _values(h["_source"], field)), reverse=order == "desc")
        hits = present + missing  # missing values last, as OpenSearch does by default
    return hits


def _aggregate(docs: list[dict], aggs: dict) -> dict:
    out = {}
    for name, spec in aggs.items():
        (kind, opts), *_ = spec.items()
        values = [v for d in docs for v in _values(d, opts["field"])]
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
            raise _error(400, "parsing_exception", f"unknown aggregation [{kind}] (the fake supports min, max, avg, sum, value_count)")
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
        body = self._body()
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            status, payload = self.server.fake._handle(self.command, unquote(parts.path), params, body)
        except _Reply as r:
            status, payload = r.status, r.body
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip":  # opensearch-py http_compress=True
            body = gzip.decompress(body)
        return body

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


class FakeOpenSearch:
    def __init__(self, port: int = 0):
        self.port = port  # 0: a free port, chosen at the first start() and kept after
        self.indices: dict[str, dict[str, dict]] = {}  # index -> _id -> _source
        self.templates: dict[str, dict] = {}
        self.requests: list[dict] = []
        self._bulk_failures: list[int] = []  # statuses for the next _bulk calls
        self._item_rejections: list[int] = []  # per-item statuses for the next _bulk calls
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
            self._bulk_failures.clear()
            self._item_rejections.clear()

    def fail_bulk(self, times: int = 1, status: int = 503) -> None:
        """The next `times` _bulk calls answer `status` (e.g. 503, 429) and store nothing."""
        with self._lock:
            self._bulk_failures += [status] * times

    def reject_bulk_items(self, times: int = 1, status: int = 429) -> None:
        """The next `times` _bulk calls answer 200 with `errors: true`, every item `status`."""
        with self._lock:
            self._item_rejections += [status] * times

    def documents(self, pattern: str = "*") -> list[dict]:
        with self._lock:
            return [dict(doc) for name in self._resolve(pattern) for doc in self.indices[name].values()]

    def __enter__(self) -> "FakeOpenSearch":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- routing --------------------------------------------------------------------------

    def _resolve(self, pattern: str) -> list[str]:
        names: list[str] = []
        for part in (pattern or "_all").split(","):
            part = "*" if part in ("_all", "") else part
            names += [n for n in sorted(self.indices) if fnmatch.fnmatchcase(n, part) and n not in names]
        return names

    def _handle(self, method: str, path: str, params: dict, body: bytes) -> tuple[int, Any]:
        with self._lock:
            self.requests.append({"method": method, "path": path, "params": params, "body": body.decode("utf-8", "replace")})
            parts = [p for p in path.split("/") if p]
            if not parts:
                return 200, self._info()
            if parts[-1] == "_bulk" and len(parts) <= 2 and method in ("POST", "PUT"):
                return self._bulk(parts[0] if len(parts) == 2 else None, body)
            if parts[0] == "_index_template" and len(parts) == 2:
                return self._template(method, parts[1], body)
            if parts == ["_cluster", "health"]:
                return 200, {"cluster_name": "fake-opensearch", "status": "green", "number_of_nodes": 1}
            if parts == ["_cat", "indices"]:
                return 200, [{"health": "green", "status": "open", "index": n, "docs.count": str(len(self.indices[n]))} for n in self._resolve("*")]
            if parts[-1] in ("_search", "_count", "_refresh") and len(parts) <= 2:
                pattern = parts[0] if len(parts) == 2 else "_all"
                if parts[-1] == "_refresh":
                    return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
                return self._search(pattern, json.loads(body or b"{}"), params, count_only=parts[-1] == "_count")
            if len(parts) >= 2 and parts[1] == "_doc" and method in ("POST", "PUT"):
                doc_id = parts[2] if len(parts) == 3 else uuid.uuid4().hex
                return self._store(parts[0], doc_id, json.loads(body), create=False)
            if len(parts) == 1 and not parts[0].startswith("_"):
                return self._index(method, parts[0], params)
        raise _error(400, "illegal_argument_exception", f"the fake does not handle {method} {path}")

    def _info(self) -> dict:
        return {
            "name": "fake-opensearch",
            "cluster_name": "fake-opensearch",
            "cluster_uuid": "fake",
            "version": {"distribution": "opensearch", "number": "2.19.0", "lucene_version": "9.12.0"},
            "tagline": "The OpenSearch Project: https://opensearch.org/",
        }

    def _template(self, method: str, name: str, body: bytes) -> tuple[int, Any]:
        if method == "PUT":
            self.templates[name] = json.loads(body)
            return 200, {"acknowledged": True}
        if name not in self.templates:
            raise _error(404, "resource_not_found_exception", f"index template matching [{name}] not found")
        if method == "DELETE":
            del self.templates[name]
            return 200, {"acknowledged": True}
        return 200, {"index_templates": [{"name": name, "index_template": self.templates[name]}]}

    def _index(self, method: str, pattern: str, params: dict) -> tuple[int, Any]:
        names = self._resolve(pattern)
        if method == "PUT":
            if pattern in self.indices:
                raise _error(400, "resource_already_exists_exception", f"index [{pattern}] already exists")
            self.indices[pattern] = {}
            return 200, {"acknowledged": True, "shards_acknowledged": True, "index": pattern}
        if not names and "*" not in pattern and params.get("ignore_unavailable") != "true":
            raise _error(404, "index_not_found_exception", f"no such index [{pattern}]")
        if method == "HEAD" and not names:
            raise _Reply(404)
        if method == "DELETE":
            for n in names:
                del self.indices[n]
            return 200, {"acknowledged": True}
        return 200, {n: {"aliases": {}, "mappings": {}, "settings": {}} for n in names}

    def _store(self, index: str, doc_id: str, source: dict, create: bool) -> tuple[int, Any]:
        docs = self.indices.setdefault(index, {})
        if create and doc_id in docs:
            raise _error(409, "version_conflict_engine_exception", f"[{doc_id}]: version conflict, document already exists")
        result = "updated" if doc_id in docs else "created"
        docs[doc_id] = source
        return (201 if result == "created" else 200), {"_index": index, "_id": doc_id, "_version": 1, "result": result, "_shards": {"total": 1, "successful": 1, "failed": 0}}

    def _bulk(self, default_index: str | None, body: bytes) -> tuple[int, Any]:
        if self._bulk_failures:
            status = self._bulk_failures.pop(0)
            raise _error(status, "es_rejected_execution_exception" if status == 429 else "unavailable", f"fake: _bulk answers {status}")
        reject = self._item_rejections.pop(0) if self._item_rejections else None
        lines = [line for line in body.decode().split("\n") if line.strip()]
        items, i = [], 0
        while i < len(lines):
            (action, meta), *_ = json.loads(lines[i]).items()
            index, doc_id = meta.get("_index", default_index), meta.get("_id")
            source = json.loads(lines[i + 1]) if action in ("index", "create", "update") else None
            i += 2 if source is not None else 1
            try:
                if reject is not None:
                    raise _error(reject, "es_rejected_execution_exception", "fake: item rejected")
                if index is None:
                    raise _error(400, "action_request_validation_exception", "index is missing")
                if action in ("index", "create"):
                    status, result = self._store(index, doc_id or uuid.uuid4().hex, source, create=action == "create")
                elif action == "delete":
                    found = doc_id in self.indices.get(index, {})
                    self.indices.get(index, {}).pop(doc_id, None)
                    status, result = (200 if found else 404), {"_index": index, "_id": doc_id, "result": "deleted" if found else "not_found"}
                else:
                    raise _error(400, "illegal_argument_exception", f"the fake does not handle bulk action [{action}]")
                items.append({action: {**result, "status": status}})
            except _Reply as r:
                items.append({action: {"_index": index, "_id": doc_id, "status": r.status, "error": r.body["error"]}})
        errors = any(next(iter(item.values()))["status"] >= 300 and "error" in next(iter(item.values())) for item in items)
        return 200, {"took": 1, "errors": errors, "items": items}

    def _search(self, pattern: str, body: dict, params: dict, count_only: bool) -> tuple[int, Any]:
        names = self._resolve(pattern)
        if not names and "*" not in pattern and params.get("ignore_unavailable") != "true":
            raise _error(404, "index_not_found_exception", f"no such index [{pattern}]")
        hits = [
            {"_index": n, "_id": i, "_score": None, "_source": d}
            for n in names
            for i, d in self.indices[n].items()
            if _matches(d, body.get("query"))
        ]
        shards = {"total": len(names), "successful": len(names), "skipped": 0, "failed": 0}
        if count_only:
            return 200, {"count": len(hits), "_shards": shards}
        if "sort" in body:
            hits = _sort(hits, body["sort"])
        start = int(body.get("from", params.get("from", 0)))
        size = int(body.get("size", params.get("size", 10)))
        response: dict[str, Any] = {"took": 1, "timed_out": False, "_shards": shards, "hits": {"max_score": None, "hits": hits[start : start + size]}}
        track = body.get("track_total_hits", 10_000)
        if track is True or (not isinstance(track, bool) and len(hits) <= int(track)):
            response["hits"]["total"] = {"value": len(hits), "relation": "eq"}
        elif track is not False:
            response["hits"]["total"] = {"value": int(track), "relation": "gte"}
        if "aggs" in body or "aggregations" in body:
            response["aggregations"] = _aggregate([h["_source"] for h in hits], body.get("aggs") or body["aggregations"])
        return 200, response
