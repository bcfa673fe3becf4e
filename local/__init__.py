"""The local stack behind `make run` and `make demo`: moto's server, the API, and (later) etcd,
the gateway agent and the Lambda delivery, all on loopback, all stopped together."""
