"""The read-only ACL rules and who an export is attributed to."""

from __future__ import annotations

import base64

from multidict import CIMultiDict

from streams.config import Settings
from streams.dashboard.access import auditor_rules, reader_rules
from streams.dashboard.app import operator_of


def test_reader_rules_grant_reads_under_the_namespace_only() -> None:
    rules = reader_rules(Settings(redis_namespace="camp*1:"), "pw")

    assert rules[:3] == ["reset", "on", ">pw"]
    assert r"%R~camp\*1:*" in rules  # read-only keys; the namespace's glob star escaped
    assert rules.index("-@all") < rules.index("+@read") < rules.index("-@dangerous")
    assert not [rule for rule in rules if rule.startswith("+@") and rule != "+@read"]
    assert "allkeys" not in rules and "~*" not in rules


def test_the_auditor_may_only_append_to_the_audit_stream() -> None:
    rules = auditor_rules(Settings(redis_namespace="n:"), "pw")

    assert "~n:exports" in rules
    granted = [rule for rule in rules if rule.startswith("+")]
    assert granted == ["+xadd", "+ping", "+hello", "+select", "+client|setname"]


def test_the_operator_header_wins_then_basic_auth_then_the_default() -> None:
    basic = "Basic " + base64.b64encode(b"ben:secret").decode()

    assert operator_of(CIMultiDict({"X-Votescore-Operator": "ana"}), "ops") == "ana"
    assert operator_of(CIMultiDict({"Authorization": basic}), "ops") == "ben"
    assert operator_of(CIMultiDict({"Authorization": "Basic !!!"}), "ops") == "ops"
    assert operator_of(CIMultiDict(), None) is None


def test_an_operator_name_cannot_forge_log_lines() -> None:
    headers = CIMultiDict({"X-Votescore-Operator": "ana\nINFO fake=1"})

    assert operator_of(headers, None) == "anaINFO fake1"
