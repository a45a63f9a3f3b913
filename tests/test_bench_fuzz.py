"""bench/fuzz.py's own logic: the schemathesis command it builds and how it reads the events."""
from __future__ import annotations

import argparse
import json

from bench import fuzz


def args(**overrides) -> argparse.Namespace:
    return fuzz.parse_args([f"--{k.replace('_', '-')}={v}" for k, v in overrides.items()])


def scenario(checks: dict, interactions: dict) -> str:
    recorder = {"label": "GET /x", "cases": {case: {} for case in checks}, "checks": checks,
                "interactions": interactions}
    return json.dumps({"ScenarioFinished": {"recorder": recorder}})


def answer(status: int | None, method="GET", uri="http://127.0.0.1:1/x") -> dict:
    return {"request": {"method": method, "uri": uri},
            "response": None if status is None else {"status_code": status}}


def test_the_key_is_sent_once_the_sidecar_writes_one(tmp_path):
    assert fuzz.api_key(tmp_path) is None
    command = fuzz.schemathesis_command("http://h", tmp_path / "e", args(), None)
    assert not any(part.startswith("Authorization") for part in command)

    (tmp_path / "api-key.json").write_text(json.dumps({"key": "ab" * 32}))
    command = fuzz.schemathesis_command("http://h", tmp_path / "e", args(), fuzz.api_key(tmp_path))
    assert command[command.index("--header") + 1] == f"Authorization: Bearer {'ab' * 32}"


def test_the_command_carries_the_budget_and_the_checks(tmp_path):
    command = fuzz.schemathesis_command("http://h", tmp_path / "e",
                                        args(max_examples=7, seed=3, max_time=60), None)
    assert command[command.index("--max-examples") + 1] == "7"
    assert command[command.index("--seed") + 1] == "3"
    assert command[command.index("--max-time") + 1] == "60"
    assert command[command.index("--checks") + 1].split(",") == list(fuzz.CHECKS)
    excluded = [command[i + 1] for i, part in enumerate(command) if part == "--exclude-path"]
    assert excluded == ["/api/ws", "/api/v1/auth/regenerate"]
    assert "http://h/api/openapi.json" in command
    assert not set(fuzz.CHECKS) & set(fuzz.LEFT_OUT)


def test_events_are_counted_per_check_with_failures_and_5xx(tmp_path):
    passed = {"name": "not_a_server_error", "status": "success"}
    failed = {"name": "response_schema_conformance", "status": "failure", "failure_info": {
        "failure": {"code": "ST300", "operation": "GET /x", "title": "Response violates schema"}}}
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join([
        json.dumps({"Initialize": {}}),
        scenario({"a": [passed], "b": [passed, failed]}, {"1": answer(200), "2": answer(404)}),
        scenario({"c": [{"name": "not_a_server_error", "status": "failure"}]},
                 {"3": answer(500, "POST"), "4": answer(None)}),
    ]) + "\n")

    summary = fuzz.summarise(events)

    assert (summary.cases, summary.requests, summary.no_answer) == (3, 4, 1)
    assert summary.statuses == {"2xx": 1, "4xx": 1, "5xx": 1}
    assert summary.checks["not_a_server_error"] == {"success": 2, "failure": 1}
    assert summary.checks["response_schema_conformance"] == {"failure": 1}
    assert summary.failures[0] == "ST300 GET /x: Response violates schema"
    assert summary.server_errors == ["500 POST http://127.0.0.1:1/x"]
    text = fuzz.report(summary, 1, 12.0)
    assert "cases tried: 3" in text and "5xx answers: 1" in text
    assert "FAILURE ST300 GET /x: Response violates schema (x1)" in text
