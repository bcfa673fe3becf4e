"""Make moto's DynamoDB transactions cost what the transaction touches, not the whole table.

moto 5.2 backs up a transaction by deep-copying every table it names, once per item: a
create (the item plus its kind's counter) in a table of 10,000 items took seconds, long
enough for boto3's read timeout and a retry that then failed its own condition. This backs up
only the items the transaction touches and restores exactly those on failure: same outcome,
cost independent of the table.

moto 5.2's Query also walks every item of the table to find its partition: with an hour of
metric events stored, every artifact request's Query cost ~100 ms of the GIL the API shares.
A Query on a table's own key (no index) now reads only its partition, as DynamoDB does.

moto 5.2's CloudFormation executes a change set without computing the stack's outputs (a
stack made by CreateStack has them): an executed change set now gives the stack its outputs,
as CloudFormation does (tests/infra/test_deploy.py deploys through change sets).

Applied by the local stack, the test fixtures and the benchmarks.
"""
from __future__ import annotations

import copy
import threading
from types import SimpleNamespace

_applied = False
_lock = threading.Lock()


def apply() -> None:
    global _applied
    with _lock:
        if _applied:
            return
        import moto.dynamodb.models as models
        from moto.dynamodb.models import DynamoDBBackend

        original = DynamoDBBackend.transact_write_items
        # moto's own backup becomes a no-op: it hands back the live table, and its rollback
        # (`self.tables[name] = backup`) therefore changes nothing; ours restores the items.
        no_copy = SimpleNamespace(deepcopy=lambda table, memo=None: table)

        def transact_write_items(self, transact_items):
            backups = []
            for entry in transact_items:
                op = next(iter(entry.values()))
                try:
                    table = self.get_table(op["TableName"])
                    if "Item" in op:
                        key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                        if table.range_key_attr is not None:
                            key[table.range_key_attr] = op["Item"][table.range_key_attr]
                    else:
                        key = op["Key"]
                    current = self.get_item(op["TableName"], key)
                except Exception:  # let moto report malformed requests its own way
                    continue
                backups.append((op["TableName"], key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
            models.copy = no_copy
            try:
                return original(self, transact_items)
            except Exception:
                for table_name, key, attrs in reversed(backups):
                    if attrs is None:
                        self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, attrs, overwrite=True)
                raise
            finally:
                models.copy = copy

        # One transaction at a time: the module-level swap above must not leak across threads.
        serial = threading.Lock()

        def serialised(self, transact_items):
            with serial:
                return transact_write_items(self, transact_items)

        DynamoDBBackend.transact_write_items = serialised
        _query_reads_its_partition()
        _change_sets_give_outputs()
        _applied = True


def _change_sets_give_outputs() -> None:
    from moto.cloudformation.models import CloudFormationBackend

    original = CloudFormationBackend.execute_change_set

    def execute_change_set(self, change_set_name: str, stack_name: str | None = None) -> None:
        original(self, change_set_name, stack_name)
        change_set = self.change_sets.get(change_set_name) or next(
            c for c in self.change_sets.values() if c.change_set_name == change_set_name
            and stack_name in (None, getattr(c, "stack_name", None), c.stack_id))
        stack = self.stacks[change_set.stack_id]
        stack._parse_template()  # the template the change set applied
        stack.output_map = stack._create_output_map()

    CloudFormationBackend.execute_change_set = execute_change_set


def _query_reads_its_partition() -> None:
    from moto.dynamodb.models.table import Table

    walk_all, query = Table.all_items, Table.query
    partition = threading.local()  # this thread's Query: (table, hash key), else None

    def all_items(self):
        current = getattr(partition, "query", None)
        if current is not None and current[0] is self:
            # moto keeps items as {hash key: {range key: item}}: the partition, without the walk.
            return list(self.items.get(current[1], {}).values())
        return walk_all(self)

    def partition_query(self, hash_key, *args, **kwargs):
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or not self.range_key_attr:
            return query(self, hash_key, *args, **kwargs)  # an index's keys are not moto's dict's
        partition.query = (self, hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            partition.query = None

    Table.all_items = all_items
    Table.query = partition_query
