"""How long the server took over each request of ./run, from its own JSON request log.

schemathesis times a response on the client: its wall time includes the client's own stalls (a
Python process descheduled on a busy 2-core machine), so it cannot tell a slow server from a
stalled client. The server's `request` log line carries `duration_ms`, measured around the
handler and its middleware; this prints their spread and the slowest requests, and fails when
any one took the server longer than the limit.

usage: python server_times.py SERVER_LOG [LIMIT_MS]   (LIMIT_MS defaults to 10000)
"""

from __future__ import annotations

import json
import sys


def requests_in(path: str) -> list[tuple[float, str, str, int]]:
    """(duration_ms, method, path, status) of every `request` line."""
    found = []
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            fields = event.get("fields") or {}
            if fields.get("message") != "request" or "duration_ms" not in fields:
                continue
            found.append(
                (
                    float(fields["duration_ms"]),
                    str(fields.get("method", "?")),
                    str(fields.get("path", "?")),
                    int(fields.get("status", 0)),
                )
            )
    return found


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


def main() -> int:
    path = sys.argv[1]
    limit_ms = float(sys.argv[2]) if len(sys.argv) > 2 else 10_000.0
    found = requests_in(path)
    if not found:
        print(f"== server times: no request lines in {path}", file=sys.stderr)
        return 1
    durations = sorted(d for d, *_ in found)
    print(
        f"== server times over {len(found)} requests: p50 {percentile(durations, 0.50):.1f} ms, "
        f"p99 {percentile(durations, 0.99):.1f} ms, max {durations[-1]:.1f} ms (limit {limit_ms:.0f} ms)"
    )
    print("   slowest:")
    for duration, method, request_path, status in sorted(found, reverse=True)[:5]:
        print(f"     {duration:>9.1f} ms  {status}  {method} {request_path}")
    over = [r for r in found if r[0] > limit_ms]
    if over:
        print(f"== {len(over)} request(s) took the server longer than {limit_ms:.0f} ms", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
