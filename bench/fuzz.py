"""Property-based API run: schemathesis against /api/openapi.json of a real demo sidecar.

Run from the repository root: `python -m bench.fuzz [--max-examples N] [--max-time S] [--seed S]
[--workers W] [--keep]`. It starts `python -m server --demo` on a free loopback port with its data
dir in a temp folder (never the user's), lets schemathesis generate requests from the OpenAPI
document (valid and invalid ones, then sequences of calls), and prints the cases tried, the
answers by status class, each check's passes and failures, and every failure found (target 0).
When the sidecar wrote `<data dir>/api-key.json`, every request carries its key, so /api/v1 is
covered too. Exits 1 on any failure (a 5xx, an answer that breaks its schema, a status or
content type the document does not give, an invalid request accepted), 2 when the run itself
could not be made. Unlike the other benchmarks it fails CI: it checks behaviour, not time.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.sidecar import free_port, start_sidecar, stop_sidecar, wait_healthy

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance",
          "negative_data_rejection", "missing_required_header", "use_after_free",
          "ensure_resource_availability", "ignored_auth")
# Checks left out, and why (printed with the report so nobody wonders).
LEFT_OUT = {
    "positive_data_acceptance": "schema-valid requests may still be refused for what they mean "
                                "(an unknown tag id, a relative path, an order missing an image)",
    "unsupported_method": "aiohttp routes e.g. PATCH /api/models/get_types to the "
                          "/api/models/{sha256} route, which answers 400 INVALID_SHA256, not 405",
    "allow_header_conformance": "for the same reason, Allow lists the methods of both routes",
    "object_level_authorization": "one user: there are no objects of other users",
    "max_response_time": "timings on a shared 2-core machine belong in the benchmarks",
}
# /api/ws is not HTTP: a plain GET is 400 and an upgraded one would hold the connection open.
# /api/v1/auth/regenerate replaces the key every request carries: once fuzzed, the rest of
# /api/v1 would only ever answer 401 (tests/test_api_key.py covers it).
EXCLUDED_PATHS = ("/api/ws", "/api/v1/auth/regenerate")


@dataclass
class Summary:
    cases: int = 0
    requests: int = 0
    no_answer: int = 0
    statuses: Counter = field(default_factory=Counter)
    checks: dict[str, Counter] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--max-examples", type=int, default=50,
                        help="test cases per operation and generation mode (default 50)")
    parser.add_argument("--max-time", type=int,
                        help="a time budget in seconds: schemathesis repeats its fuzzing and "
                             "stateful phases until it is spent")
    parser.add_argument("--seed", type=int, help="repeat an earlier run")
    parser.add_argument("--workers", type=int, default=1, help="concurrent clients (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, events)")
    return parser.parse_args(argv)


def api_key(data_dir: Path) -> str | None:
    """The key from <data dir>/api-key.json, once the sidecar writes one."""
    try:
        return json.loads((data_dir / "api-key.json").read_text())["key"]
    except FileNotFoundError:
        return None


def schemathesis_command(base: str, events: Path, args: argparse.Namespace,
                         key: str | None) -> list[str]:
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/api/openapi.json",
               "--checks", ",".join(CHECKS), "--max-examples", str(args.max_examples),
               "--workers", str(args.workers), "--report", "ndjson",
               "--report-ndjson-path", str(events), "--request-timeout", "60"]
    for path in EXCLUDED_PATHS:
        command += ["--exclude-path", path]
    if args.max_time:
        command += ["--max-time", str(args.max_time)]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    if key:
        command += ["--header", f"Authorization: Bearer {key}"]
    return command


def summarise(events: Path) -> Summary:
    """Count cases, answers and check outcomes from schemathesis's NDJSON event stream."""
    summary = Summary()
    with events.open(encoding="utf-8") as stream:
        for line in stream:
            event = json.loads(line)
            if "ScenarioFinished" in event:
                _count(summary, event["ScenarioFinished"]["recorder"])
    return summary


def _count(summary: Summary, recorder: dict) -> None:
    summary.cases += len(recorder.get("cases", {}))
    for interaction in recorder.get("interactions", {}).values():
        summary.requests += 1
        response = interaction.get("response")
        if response is None:
            summary.no_answer += 1
            continue
        status = response["status_code"]
        summary.statuses[f"{status // 100}xx"] += 1
        if status >= 500:
            request = interaction["request"]
            summary.server_errors.append(f"{status} {request['method']} {request['uri']}")
    for checks in recorder.get("checks", {}).values():
        for check in checks:
            summary.checks.setdefault(check["name"], Counter())[check["status"]] += 1
            if check["status"] == "failure":
                failure = check.get("failure_info", {}).get("failure", {})
                summary.failures.append(f"{failure.get('code', '?')} {failure.get('operation', '?')}: "
                                        f"{failure.get('title', check['name'])}")


def report(summary: Summary, command_status: int, seconds: float) -> str:
    failures = Counter(summary.failures)
    lines = [
        f"schemathesis over /api/openapi.json in {seconds:.0f} s (exit status {command_status})",
        f"cases tried: {summary.cases}; requests: {summary.requests}; answers: "
        + ", ".join(f"{k} {v}" for k, v in sorted(summary.statuses.items()))
        + (f"; no answer: {summary.no_answer}" if summary.no_answer else ""),
        f"failures found: {len(failures)} distinct, {sum(failures.values())} in all (target 0); "
        f"5xx answers: {len(summary.server_errors)} (target 0)",
        "", f"{'check':<32}{'passed':>8}{'failed':>8}",
    ]
    for name in CHECKS:
        counts = summary.checks.get(name, Counter())
        lines.append(f"{name:<32}{counts['success']:>8}{counts['failure']:>8}")
    lines += ["", "left out: " + "; ".join(f"{k} ({v})" for k, v in LEFT_OUT.items())]
    lines += [f"FAILURE {text} (x{count})" for text, count in failures.most_common()]
    lines += [f"SERVER ERROR {text}" for text in summary.server_errors[:20]]
    return "\n".join(lines)


def run(work: Path, args: argparse.Namespace) -> int:
    port, data_dir, events = free_port(), work / "data", work / "events.ndjson"
    base = f"http://127.0.0.1:{port}"
    with (work / "sidecar.log").open("wb") as log_file:
        process = start_sidecar(data_dir, port, log_file, "--demo")
        try:
            wait_healthy(base, process)
            started = time.monotonic()
            # In the temp folder: hypothesis and schemathesis leave their own files in the cwd.
            with (work / "schemathesis.log").open("wb") as output:
                status = subprocess.run(schemathesis_command(base, events, args, api_key(data_dir)),
                                        cwd=work, stdout=output, stderr=subprocess.STDOUT).returncode
            seconds = time.monotonic() - started
        finally:
            stop_sidecar(process)
    if not events.exists():
        print((work / "schemathesis.log").read_text(errors="replace"), file=sys.stderr)
        raise RuntimeError(f"schemathesis wrote no events (exit status {status})")
    summary = summarise(events)
    failed = bool(summary.failures or summary.server_errors or summary.no_answer or status != 0)
    if failed:  # schemathesis's own account: each failure with a curl line to reproduce it
        print((work / "schemathesis.log").read_text(errors="replace"))
        tracebacks = [line for line in (work / "sidecar.log").read_text(errors="replace")
                      .splitlines() if "Unhandled error" in line]
        print("\n".join(["sidecar log:", *tracebacks[:20]]) if tracebacks else "")
    print(report(summary, status, seconds))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hikaze-fuzz-"))
    try:
        return run(work, args)
    except (RuntimeError, OSError) as exc:
        print(f"bench.fuzz: the run could not be made: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
