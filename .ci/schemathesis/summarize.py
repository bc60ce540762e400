"""Summarize schemathesis NDJSON reports of ./run: cases per phase, the links followed, the
sign-up -> log-in -> deletion -> receipt chains completed, and failures per check.

usage: python summarize.py PASS_NAME=REPORT.ndjson [PASS_NAME=REPORT.ndjson ...]
"""

from __future__ import annotations

import collections
import json
import sys
from typing import Any

CHAIN = [
    ("POST /v1/accounts", 201),
    ("POST /v1/sessions", 200),
    ("POST /v1/me/deletion", 202),
    ("GET /v1/deletions/{receipt_id}", 200),
]


def load(path: str) -> dict[str, Any]:
    phases: collections.Counter[str] = collections.Counter()
    statuses: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    links: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    failures: dict[tuple[str, str, str], list[str]] = collections.defaultdict(list)
    nodes: dict[str, tuple[str, int | None, str | None]] = {}  # case id -> (label, status, parent id)
    seed = version = None
    for line in open(path, encoding="utf-8"):
        event = json.loads(line)
        if "Initialize" in event:
            seed = event["Initialize"].get("seed")
            version = event["Initialize"].get("schemathesis_version")
        finished = event.get("ScenarioFinished")
        if not finished or "cases" not in finished.get("recorder", {}):
            continue
        phase = finished["phase"]
        recorder = finished["recorder"]
        interactions = recorder.get("interactions", {})
        for case_id, node in recorder["cases"].items():
            value = node["value"]
            label = f"{value['method']} {value['path']}"
            phases[phase] += 1
            response = (interactions.get(case_id) or {}).get("response")
            status = response.get("status_code") if response else None
            statuses[label][f"{status}"] += 1
            nodes[case_id] = (label, status, node.get("parent_id"))
            transition = node.get("transition")
            if transition and node.get("is_transition_applied"):
                links[transition["id"]][f"{status}"] += 1
        for case_id, checks in recorder.get("checks", {}).items():
            for check in checks:
                if check.get("status") == "failure":
                    failure = check["failure_info"]["failure"]
                    key = (check["name"], failure.get("code", "?"), failure.get("operation", "?"))
                    failures[key].append(failure.get("title", ""))
    chains = 0
    for label, status, parent in nodes.values():
        if (label, status) != CHAIN[-1]:
            continue
        ok, current = True, parent
        for expected in reversed(CHAIN[:-1]):
            node = nodes.get(current or "")
            if node is None or (node[0], node[1]) != expected:
                ok = False
                break
            current = node[2]
        chains += ok
    return {
        "phases": phases,
        "statuses": statuses,
        "links": links,
        "failures": failures,
        "chains": chains,
        "seed": seed,
        "version": version,
    }


def main() -> None:
    total = 0
    for argument in sys.argv[1:]:
        name, _, path = argument.partition("=")
        data = load(path)
        cases = sum(data["phases"].values())
        total += cases
        print(f"== {name} pass (schemathesis {data['version']}, seed {data['seed']}): {cases} cases")
        for phase in ("examples", "coverage", "fuzzing", "stateful"):
            print(f"   {phase:<9} {data['phases'].get(phase, 0):>6}")
        print("   responses per operation:")
        for label in sorted(data["statuses"]):
            counts = ", ".join(f"{code}x{n}" for code, n in sorted(data["statuses"][label].items()))
            print(f"     {label:<34} {counts}")
        print("   links followed (response status of the target):")
        for link in sorted(data["links"]):
            counts = ", ".join(f"{code}x{n}" for code, n in sorted(data["links"][link].items()))
            print(f"     {link}: {counts}")
        print(f"   complete sign-up 201 -> log-in 200 -> deletion 202 -> receipt 200 chains: {data['chains']}")
        print("   failed checks (check, code, operation: failing cases):")
        if not data["failures"]:
            print("     none")
        for (check, code, operation), items in sorted(data["failures"].items()):
            print(f"     {check} {code} {operation}: {len(items)}")
    print(f"== total: {total} cases")


if __name__ == "__main__":
    main()
