"""Counters and latency histograms for operators, in Prometheus' text format (``/metrics``).

Kept in process and tiny: an operator scrapes each replica. HTTP answers are counted by
status (so 401/403/413/429 show up), tool calls by tool and outcome, with a latency
histogram per tool; the number of memories is read from the store at scrape time.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Callable

#: Histogram bucket upper bounds, seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Thread-safe counters; ``render`` produces the ``/metrics`` body."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.http: dict[int, int] = defaultdict(int)
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self._sums: dict[str, float] = defaultdict(float)

    def http_answer(self, status: int) -> None:
        with self._lock:
            self.http[status] += 1

    def tool_call(self, tool: str, outcome: str, seconds: float) -> None:
        """One tool call: ``outcome`` is ``ok`` or the error class name."""
        with self._lock:
            self.calls[(tool, outcome)] += 1
            self._buckets[tool][bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sums[tool] += seconds

    def render(self, memories: Callable[[], int | None]) -> str:
        lines = [
            "# HELP headroom_uptime_seconds Seconds since this server started.",
            "# TYPE headroom_uptime_seconds gauge",
            f"headroom_uptime_seconds {time.time() - self.started:.3f}",
            "# HELP headroom_http_responses_total HTTP answers by status code.",
            "# TYPE headroom_http_responses_total counter",
        ]
        with self._lock:
            lines += [f'headroom_http_responses_total{{code="{code}"}} {n}' for code, n in sorted(self.http.items())]
            lines += ["# HELP headroom_tool_calls_total MCP tool calls by tool and outcome.",
                      "# TYPE headroom_tool_calls_total counter"]
            lines += [f'headroom_tool_calls_total{{tool="{t}",outcome="{o}"}} {n}' for (t, o), n in sorted(self.calls.items())]
            lines += ["# HELP headroom_tool_seconds Tool call latency.", "# TYPE headroom_tool_seconds histogram"]
            for tool, counts in sorted(self._buckets.items()):
                running = 0
                for bound, n in zip([*map(str, BUCKETS), "+Inf"], counts):
                    running += n
                    lines.append(f'headroom_tool_seconds_bucket{{tool="{tool}",le="{bound}"}} {running}')
                lines.append(f'headroom_tool_seconds_sum{{tool="{tool}"}} {self._sums[tool]:.6f}')
                lines.append(f'headroom_tool_seconds_count{{tool="{tool}"}} {running}')
        count = memories()
        if count is not None:
            lines += ["# HELP headroom_memories Records in the store (active and retired).", "# TYPE headroom_memories gauge",
                      f"headroom_memories {count}"]
        return "\n".join(lines) + "\n"
