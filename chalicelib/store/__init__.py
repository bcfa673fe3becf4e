"""Storage adapters: the artifact store and the event store, each an interface with its backends."""
