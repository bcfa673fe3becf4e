"""What the control plane and the gateway agent share: the access-log format (log_format), where
a namespace's configuration lives in etcd (kv_keys) and what those keys hold (envelope).

Standard library only, and nothing of chalicelib outside this package: the agent is installed
with this package and nothing else of chalicelib (docs/decisions/0015-agent-contract-package.md).
"""
