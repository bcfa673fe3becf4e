"""HAProxy access logs: receive (unix datagram socket), parse, aggregate, spool, ship."""
