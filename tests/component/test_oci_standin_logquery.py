"""The subset of OCI Logging's query language the stand-in's SearchLogs understands (pure parsing; the searches
themselves run in test_oci_standin_vault_logging.py)."""

from __future__ import annotations

import re

import pytest

from adapters.oci.standin.logquery import Condition, QueryError, parse


def test_a_log_path_with_conditions_and_a_sort():
    query = parse("search \"c/g/l\" | where subject = 'run-1' and data.event != \"stage.failed\" "
                  "| sort by datetime desc")

    assert query.streams == [("c", "g", "l")] and query.descending
    assert query.conditions == [Condition(("subject",), "run-1"), Condition(("data", "event"), "stage.failed", False)]


def test_several_streams_and_the_log_content_prefix():
    query = parse("search \"c\", \"c/g2\" | where logContent.subject = 'x'")

    assert query.streams == [("c",), ("c", "g2")] and query.conditions[0].path == ("subject",)


def test_a_condition_on_a_nested_data_field_holds_only_on_equal_values():
    condition = parse("search \"c\" | where data.stage.name = 'build'").conditions[0]

    assert condition.holds({"data": {"stage": {"name": "build"}}})
    assert not condition.holds({"data": {"stage": {"name": "train"}}}) and not condition.holds({"data": {}})


@pytest.mark.parametrize("text, complaint", [
    ("search \"c/g/l\" | stats count() by subject", "the clause 'stats' is not supported"),
    ("search c/g/l", "needs a quoted log stream"),
    ("search \"c/g/l\" | where unknownfield = 'x'", "the field 'unknownfield' is not supported"),
    ("search \"c/g/l\" | where subject > 'x'", "conditions are supported"),
    ("search \"c/g/l/extra\"", "is not <compartment>"),
    ("search \"c\" | sort by subject", "only 'sort by datetime"),
    ("select * from logs", "a query starts with"),
])
def test_what_is_not_supported_is_named(text, complaint):
    with pytest.raises(QueryError, match=re.escape(complaint)):
        parse(text)
