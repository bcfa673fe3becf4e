"""Storage adapters: the only code that talks to the DynamoDB table (tests/store/test_table_ownership.py).

  table.py              the table: every key shape, its client, paged queries, dump/load for tooling
  artifact_store.py     artifacts: the interface;   dynamodb_artifacts.py its backend
  event_store.py        events: the interface;      dynamodb_events.py, opensearch_events.py its
                        backends; event_backend.py  the one the settings choose
  release_store.py      release states and their gateway locks: the interface; dynamodb_releases.py its backend
  tokens.py             API tokens: the interface and its DynamoDB backend
  namespaces.py         the namespaces the scheduled passes visit
"""
