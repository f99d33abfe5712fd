"""Worker processes for the multi-process tests: each is a separate OS process and client.

    python tests/workers.py write N PREFIX AGENT [ACKS_FILE]   save N distinct facts
    python tests/workers.py same-fact AGENT                      assert one shared fact
    python tests/workers.py ping                                 print the daemon's pid
    python tests/workers.py recall QUERY                         print recall results as JSON

The data dir and identity come from HEADROOM_MCP_* variables set by the test.
"""

from __future__ import annotations

import json
import sys
import time

from headroom_mcp import SyncMemory

TOPICS = ["deploy", "lint", "cache", "queue", "auth", "billing", "search", "build", "docs", "metrics"]


def fact(prefix: str, i: int) -> str:
    # Distinct by an identifier, so dedup must keep every one of them.
    return f"{prefix} note {i}: the {TOPICS[i % len(TOPICS)]} module owner for shard {prefix}{i:05d} is team {i % 7}"


def main(argv: list[str]) -> int:
    command = argv[0]
    if command == "write":
        n, prefix, agent = int(argv[1]), argv[2], argv[3]
        acks = open(argv[4], "a", buffering=1) if len(argv) > 4 else None
        with SyncMemory(agent_id=agent) as memory:
            for i in range(n):
                r = memory.save(fact(prefix, i))
                if acks:
                    acks.write(f"{r['id']}\t{fact(prefix, i)}\n")  # acknowledged: must survive
        return 0
    if command == "same-fact":
        with SyncMemory(agent_id=argv[1]) as memory:
            memory.save("Release builds must be signed with the hardware key")
        return 0
    if command == "ping":
        with SyncMemory() as memory:
            print(memory._backend.call("ping", {}, memory.context.to_mapping())["pid"])
        return 0
    if command == "recall":
        with SyncMemory() as memory:
            print(json.dumps(memory.search(argv[1], limit=int(argv[2]) if len(argv) > 2 else 5)))
        return 0
    if command == "sleep-until":  # start several workers at one instant
        time.sleep(max(0.0, float(argv[1]) - time.time()))
        return main(argv[2:])
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
