"""The requests the fake OpenSearch answers, as the published API specification allows them.

Derived by reading opensearch-project/opensearch-api-specification (commit fbe9ede, August
2026): spec/namespaces/_core.yaml (info, ping, bulk, search, count, index), indices.yaml
(create, exists, get, delete, refresh, *_index_template), cat.yaml (cat.indices), cluster.yaml
(cluster.health) and spec/_global_parameters.yaml. Only the operations vamp calls (and the tests
use to look) are listed; each path with its methods and the query parameters the specification
gives them. Anything else is refused as OpenSearch refuses it: an unknown parameter is a 400
`illegal_argument_exception` ("contains unrecognized parameter"), a known path with another
method a 405, an unknown `_` path a 400 (`invalid_index_name_exception`: it would be an index).
"""
from __future__ import annotations

GLOBAL = frozenset({"pretty", "human", "error_trace", "source", "filter_path"})

_BULK = frozenset({"_source", "_source_excludes", "_source_includes", "index", "pipeline", "refresh",
                   "require_alias", "routing", "timeout", "type", "wait_for_active_shards"})
_SEARCH = frozenset({
    "_source", "_source_excludes", "_source_includes", "allow_no_indices", "allow_partial_search_results",
    "analyze_wildcard", "analyzer", "batched_reduce_size", "cancel_after_time_interval", "ccs_minimize_roundtrips",
    "default_operator", "df", "docvalue_fields", "expand_wildcards", "explain", "from", "ignore_throttled",
    "ignore_unavailable", "include_named_queries_score", "index", "lenient", "max_concurrent_shard_requests",
    "phase_took", "pre_filter_shard_size", "preference", "q", "request_cache", "rest_total_hits_as_int", "routing",
    "scroll", "search_pipeline", "search_type", "seq_no_primary_term", "size", "sort", "stats", "stored_fields",
    "suggest_field", "suggest_mode", "suggest_size", "suggest_text", "terminate_after", "timeout", "track_scores",
    "track_total_hits", "typed_keys", "verbose_pipeline", "version",
})
_COUNT = frozenset({"allow_no_indices", "analyze_wildcard", "analyzer", "default_operator", "df", "expand_wildcards",
                    "ignore_throttled", "ignore_unavailable", "lenient", "min_score", "preference", "q", "routing",
                    "terminate_after"})
_REFRESH = frozenset({"allow_no_indices", "expand_wildcards", "ignore_unavailable"})
_INDEX_DOC = frozenset({"if_primary_term", "if_seq_no", "op_type", "pipeline", "refresh", "require_alias", "routing",
                        "timeout", "version", "version_type", "wait_for_active_shards"})
_GET_DOC = frozenset({"_source", "_source_excludes", "_source_includes", "preference", "realtime", "refresh",
                      "routing", "stored_fields", "version", "version_type"})
_TEMPLATE_READ = frozenset({"cluster_manager_timeout", "flat_settings", "local", "master_timeout"})
_INDEX_READ = frozenset({"allow_no_indices", "cluster_manager_timeout", "expand_wildcards", "flat_settings",
                         "ignore_unavailable", "include_defaults", "local", "master_timeout"})
_CAT_INDICES = frozenset({"bytes", "cluster_manager_timeout", "expand_wildcards", "format", "h", "health", "help",
                          "include_unloaded_segments", "local", "master_timeout", "pri", "s", "time", "v"})
_HEALTH = frozenset({"awareness_attribute", "cluster_manager_timeout", "expand_wildcards", "level", "local",
                     "master_timeout", "timeout", "wait_for_active_shards", "wait_for_events",
                     "wait_for_no_initializing_shards", "wait_for_no_relocating_shards", "wait_for_nodes",
                     "wait_for_status"})

# path template -> method -> (operation id, query parameters besides GLOBAL)
OPERATIONS: dict[str, dict[str, tuple[str, frozenset[str]]]] = {
    "/": {"GET": ("info", frozenset()), "HEAD": ("ping", frozenset())},
    "/_bulk": {"POST": ("bulk", _BULK), "PUT": ("bulk", _BULK)},
    "/{index}/_bulk": {"POST": ("bulk", _BULK), "PUT": ("bulk", _BULK)},
    "/_search": {"GET": ("search", _SEARCH), "POST": ("search", _SEARCH)},
    "/{index}/_search": {"GET": ("search", _SEARCH), "POST": ("search", _SEARCH)},
    "/_count": {"GET": ("count", _COUNT), "POST": ("count", _COUNT)},
    "/{index}/_count": {"GET": ("count", _COUNT), "POST": ("count", _COUNT)},
    "/_refresh": {"GET": ("indices.refresh", _REFRESH), "POST": ("indices.refresh", _REFRESH)},
    "/{index}/_refresh": {"GET": ("indices.refresh", _REFRESH), "POST": ("indices.refresh", _REFRESH)},
    "/{index}/_doc": {"POST": ("index", _INDEX_DOC)},
    "/{index}/_doc/{id}": {"POST": ("index", _INDEX_DOC), "PUT": ("index", _INDEX_DOC),
                           "GET": ("get", _GET_DOC), "HEAD": ("exists", _GET_DOC)},
    "/{index}": {
        "PUT": ("indices.create", frozenset({"cluster_manager_timeout", "master_timeout", "timeout",
                                             "wait_for_active_shards"})),
        "GET": ("indices.get", _INDEX_READ),
        "HEAD": ("indices.exists", _INDEX_READ - {"master_timeout"}),
        "DELETE": ("indices.delete", frozenset({"allow_no_indices", "cluster_manager_timeout", "expand_wildcards",
                                                "ignore_unavailable", "master_timeout", "timeout"})),
    },
    "/_index_template/{name}": {
        "GET": ("indices.get_index_template", _TEMPLATE_READ),
        "HEAD": ("indices.exists_index_template", _TEMPLATE_READ),
        "PUT": ("indices.put_index_template", frozenset({"cause", "cluster_manager_timeout", "create", "master_timeout"})),
        "POST": ("indices.put_index_template", frozenset({"cause", "cluster_manager_timeout", "create", "master_timeout"})),
        "DELETE": ("indices.delete_index_template", frozenset({"cluster_manager_timeout", "master_timeout", "timeout"})),
    },
    "/_cat/indices": {"GET": ("cat.indices", _CAT_INDICES)},
    "/_cat/indices/{index}": {"GET": ("cat.indices", _CAT_INDICES)},
    "/_cluster/health": {"GET": ("cluster.health", _HEALTH)},
}

# Parameters whose values the specification constrains (schemas/_common.yaml: Refresh,
# ExpandWildcard; booleans; _core.search.yaml: TrackHits). OpenSearch parses booleans strictly.
BOOLEAN = frozenset({"ignore_unavailable", "allow_no_indices", "require_alias", "create", "local", "flat_settings",
                     "include_defaults", "pretty", "human", "error_trace", "rest_total_hits_as_int", "typed_keys"})
VALUES = {
    "refresh": frozenset({"true", "false", "wait_for", ""}),
    "expand_wildcards": frozenset({"all", "open", "closed", "hidden", "none"}),
}


def match(path: str) -> tuple[str, dict[str, str]] | None:
    """The path template a concrete path fits, and its path parameters; None if none does."""
    parts = [p for p in path.split("/") if p]
    for template in OPERATIONS:
        names = [p for p in template.split("/") if p]
        if len(names) != len(parts):
            continue
        bound: dict[str, str] = {}
        for name, part in zip(names, parts):
            if name.startswith("{"):
                if part.startswith("_") and name == "{index}" and part not in ("_all",):
                    break  # `_search` is never an index name (the literal templates come first)
                bound[name[1:-1]] = part
            elif name != part:
                break
        else:
            return template, bound
    return None
