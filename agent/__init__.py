"""The gateway agent: runs on every node, applies the HAProxy config published in etcd, ships logs.

Not part of the Lambda bundle. Entry point: `python -m agent`.
"""
