"""Gateways: weights, HAProxy rendering, publishing to etcd, and the access-log contract shared with the agent."""
