"""The acknowledgement both sides share: what the agent sends is what the API reads."""
from __future__ import annotations

import pytest

from agent.acknowledger import acknowledgement
from agent.applier import ApplyState
from chalicelib.contract.acknowledgement import InvalidAcknowledgement, node_path, parse


def test_what_the_agent_sends_parses_back_to_itself():
    state = ApplyState(applied=True, checksum="sha256:" + "a" * 64, generation=12)
    sent = acknowledgement("node-1", "team-a", state, 5.0)
    assert sent.status == "applied"
    assert parse(sent.as_dict(), "team-a", "node-1") == sent


def test_a_rejection_and_nothing_yet():
    rejected = ApplyState(applied=True, checksum="sha256:" + "b" * 64, generation=3, rejected_generation=4,
                          last_error="bind: bad port")
    ack = acknowledgement("n", "default", rejected, 5.0)
    assert (ack.status, ack.generation, ack.rejected_generation, ack.message) == ("rejected", 3, 4, "bind: bad port")
    assert acknowledgement("n", "default", ApplyState(), 5.0).status == "pending"


def test_paths_and_refusals():
    assert node_path("default", "n1") == "/api/v1/vga/nodes/n1"
    assert node_path("team-a", "n1") == "/team-a/api/v1/vga/nodes/n1"
    with pytest.raises(InvalidAcknowledgement) as e:
        parse({"status": "applied", "sent": 1, "namespace": "other"}, "default", "n1")
    assert e.value.field == "namespace"


def test_a_refusal_says_what_refused_it_and_which_gateways_it_names():
    state = ApplyState(applied=True, checksum="sha256:" + "c" * 64, generation=3, rejected_generation=4,
                       last_error="parsing [candidate.cfg:12] : balance uri : 'depth' expects a positive integer",
                       rejected_stage="haproxy -c", rejected_gateways=("shop/9050",))
    sent = acknowledgement("n", "default", state, 5.0)
    assert (sent.stage, sent.rejected_gateways) == ("haproxy -c", ("shop/9050",))
    assert parse(sent.as_dict(), "default", "n") == sent
    applied = acknowledgement("n", "default", ApplyState(applied=True, generation=3, rejected_stage="allowlist"), 5.0)
    assert applied.stage is None and applied.rejected_gateways is None  # only a rejection says so
    for field, value in (("stage", "cosmic rays"), ("rejected_gateways", "shop"), ("rejected_gateways", [1]),
                         ("rejected_gateways", ["g"] * 51)):
        with pytest.raises(InvalidAcknowledgement) as e:
            parse({"status": "rejected", "sent": 1, field: value}, "default", "n")
        assert e.value.field == field
