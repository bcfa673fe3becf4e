"""The scheduled pass runs both parts whatever the other did."""
from __future__ import annotations


def test_a_failing_part_does_not_stop_the_other(monkeypatch):
    import chalicelib.api.deployments as deployments
    import chalicelib.gateways.publisher as publisher
    from chalicelib import maintenance

    def broken():
        raise RuntimeError("driver away")

    monkeypatch.setattr(deployments, "synchronise", broken)
    monkeypatch.setattr(publisher, "republish_all", lambda: {"default": "current"})
    out = maintenance.every_minute({})
    assert out == {"deployments": {"error": "driver away"}, "gateways": {"default": "current"}}
