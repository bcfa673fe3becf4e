"""The single DynamoDB table: its key schema, the boto3 handles and paged queries every backend
shares, and a whole-table dump and load for tooling.

Every key shape lives here; only modules of `store/` build keys or talk to DynamoDB
(tests/store/test_table_ownership.py checks the rest of the code).
Items, by partition key (`pk`) and sort key (`sk`):
  <ns>#artifact#<kind>  <name>                 an artifact: version, doc (JSON text), updated
  <ns>#counts           <kind>                 how many artifacts of a kind (for X-Total-Count)
  <ns>#summary#<kind>   <name>                 a summarised kind's artifact in brief (SUMMARISED_KINDS): version
                                               (the artifact's), summary (JSON text); written in the
                                               artifact's own transactions (docs/decisions/0034)
  <ns>#event-tag#<tag>  <timestamp>#<id>       one copy of an event per (expanded) tag
  <ns>#events           <timestamp>#<id>       every event, for queries without tags
  <ns>#release          <release name>         a release's state: version, doc (JSON text)
  <ns>#release-lock     <gateway>              the release holding the gateway: release (name), release_id
  <ns>#node             <node id>              a gateway agent's latest acknowledgement: doc (JSON), sent, received; TTL
  <ns>#workflow-runs    <workflow name>        a `repeat: N` schedule's runs claimed: schedule (its `scheduled`
                                               event's id), runs (docs/decisions/0039)
  #tokens               <sha256 of token>      an API token (hashed): name, created, role, namespaces (none: admin of "*")
  #namespaces#<what>    <ns>                   a namespace a scheduled pass visits (what: deployments, gateways)
Items that expire carry `expires_at` (epoch seconds, the table's TTL attribute).
The two event rows (`<ns>#event-tag#<tag>`, `<ns>#events`) live in the events table
(events_table_name(): same key schema and TTL attribute), not in this one (docs/decisions/0021).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from chalicelib import aws
from chalicelib.settings import settings

KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
ATTRIBUTES = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
]
TTL_ATTRIBUTE = "expires_at"
# Kinds whose every write also writes (or, when the writer gives none, deletes) a summary item:
# the scheduled pass reads the deployments' summaries, not their documents (docs/decisions/0034).
SUMMARISED_KINDS = frozenset({"deployments"})

def client():
    """The table's DynamoDB client (chalicelib.aws: one per process)."""
    return aws.client("dynamodb")


def artifact_pk(namespace: str, kind: str) -> str:
    return f"{namespace}#artifact#{kind}"


def counts_pk(namespace: str) -> str:
    return f"{namespace}#counts"


def summary_pk(namespace: str, kind: str) -> str:
    return f"{namespace}#summary#{kind}"


def stale_summaries(items: list[dict]) -> set[tuple[str, str]]:
    """(pk, sk) of the summary items among `items` (as DynamoDB returns them) whose artifact is
    not among them at the summary's version: what a restore must leave out, so that a summary
    never disagrees with its document (a torn journal line, a dump read while writes went on).
    A missing summary only makes the pass read the document."""
    versions = {(i["pk"]["S"], i["sk"]["S"]): i.get("version", {}).get("N") for i in items}
    stale = set()
    for (pk, sk), version in versions.items():
        namespace, _, rest = pk.partition("#")
        what, _, kind = rest.partition("#")
        if what == "summary" and versions.get((artifact_pk(namespace, kind), sk), "absent") != version:
            stale.add((pk, sk))
    return stale


def event_tag_pk(namespace: str, tag: str) -> str:
    return f"{namespace}#event-tag#{tag}"


def events_pk(namespace: str) -> str:
    return f"{namespace}#events"


def release_pk(namespace: str) -> str:
    return f"{namespace}#release"


def release_lock_pk(namespace: str) -> str:
    return f"{namespace}#release-lock"


def node_pk(namespace: str) -> str:
    return f"{namespace}#node"


def workflow_runs_pk(namespace: str) -> str:
    return f"{namespace}#workflow-runs"


TOKENS_PK = "#tokens"


def namespaces_pk(what: str) -> str:
    return f"#namespaces#{what}"


def query_pages(**query) -> Iterator[dict]:
    """Every page of one Query (botocore's paginator follows LastEvaluatedKey); `Limit` is the
    page size. How a store module reads past a page (query_after only where pages differ in Limit)."""
    pages = client().get_paginator("query").paginate(**{"TableName": table_name(), **query})
    yield from pages


def query_items(**query) -> Iterator[dict]:
    """Every item of one Query, page after page."""
    for page in query_pages(**query):
        yield from page["Items"]


def query_after(start: dict | None, **query) -> dict:
    """One page of a Query, after key `start` (None: from the first item). Only for a reader that
    picks each page's Limit itself (an artifact list skipping to its page); others page with
    query_pages."""
    if start:
        query["ExclusiveStartKey"] = start
    return client().query(**{"TableName": table_name(), **query})


def table_name() -> str:
    return settings().table_name


def events_table_name() -> str:
    """The event store's table: metric events arrive every window from every node, and apart
    from the artifacts their volume costs no artifact request anything (docs/decisions/0021)."""
    s = settings()
    return s.events_table_name or f"{s.table_name}-events"


def ensure_table(name: str | None = None) -> None:
    """Create the table (or the one named, e.g. events_table_name()) if missing: local tooling
    and tests; on AWS infra/resources.yaml declares both."""
    ddb = client()
    name = name or table_name()
    try:
        ddb.describe_table(TableName=name)
        return
    except ddb.exceptions.ResourceNotFoundException:
        pass
    ddb.create_table(
        TableName=name,
        KeySchema=KEY_SCHEMA,
        AttributeDefinitions=ATTRIBUTES,
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


def ensure_tables() -> None:
    """The table and the events table, if missing."""
    ensure_table()
    ensure_table(events_table_name())


def dump_items() -> list[dict]:
    """Every item of the table, as DynamoDB returns them (tooling: any endpoint; the local stack
    keeps its embedded moto's tables with local/state.py instead). A Scan, which is fine here:
    tooling, never a request path. Not the events table's: telemetry with a TTL is not state
    (docs/decisions/0021)."""
    pages = client().get_paginator("scan").paginate(TableName=table_name())
    return [item for page in pages for item in page["Items"]]


def load_items(items: list[dict]) -> int:
    """Put items as dump_items returned them (the local stack restores them on start); returns
    how many. A dump from before events had their own table holds event items: left out, they
    would age the table again. So are summaries that disagree with their artifact (stale_summaries)."""
    stale = stale_summaries(items)
    items = [item for item in items
             if not is_event_key(item["pk"]["S"]) and (item["pk"]["S"], item["sk"]["S"]) not in stale]
    ddb, name = client(), table_name()
    for i in range(0, len(items), 25):  # BatchWriteItem's limit
        request = {name: [{"PutRequest": {"Item": item}} for item in items[i:i + 25]]}
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or None
    return len(items)


def is_event_key(pk: str) -> bool:
    """`<ns>#events` or `<ns>#event-tag#<tag>` (namespaces hold no '#')."""
    _, _, rest = pk.partition("#")
    return rest == "events" or rest.startswith("event-tag#")


def watch(event: str, handler: Callable) -> Callable[[], None]:
    """Call `handler` on a botocore event of the table's client (e.g. "before-call.dynamodb.*"):
    how benchmarks count and price the requests the stores make. Returns the undo."""
    events = client().meta.events
    events.register(event, handler)
    return lambda: events.unregister(event, handler)


def reset_clients() -> None:
    """Forget cached clients and settings (tests switch endpoints)."""
    aws.reset_clients()
