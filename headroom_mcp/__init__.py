"""headroom-mcp: shared, persistent memory for coding agents, served over MCP.

The Python API mirrors the MCP tools: ``Memory`` (async) and ``SyncMemory`` (blocking).
They are imported on first use, so that light entry points (agent hooks run on every
prompt) do not pay for asyncio and the API.
"""

from typing import Any

from .errors import DaemonUnavailable, EmbedderError, HeadroomError, InvalidInput, NotFound, StoreLocked

__version__ = "0.1.0"
__all__ = [
    "Memory", "SyncMemory", "with_memory", "HeadroomError", "InvalidInput", "NotFound", "StoreLocked",
    "DaemonUnavailable", "EmbedderError", "__version__",
]


def __getattr__(name: str) -> Any:
    if name in ("Memory", "SyncMemory"):
        from . import api

        return getattr(api, name)
    if name == "with_memory":
        from .wrap import with_memory

        return with_memory
    raise AttributeError(f"module 'headroom_mcp' has no attribute {name!r}")
