"""headroom-mcp: shared, persistent memory for coding agents, served over MCP.

The Python API mirrors the MCP tools: ``Memory`` (async) and ``SyncMemory`` (blocking).
"""

from .api import Memory, SyncMemory
from .errors import DaemonUnavailable, EmbedderError, HeadroomError, InvalidInput, NotFound, StoreLocked

__version__ = "0.1.0"
__all__ = [
    "Memory", "SyncMemory", "HeadroomError", "InvalidInput", "NotFound", "StoreLocked",
    "DaemonUnavailable", "EmbedderError", "__version__",
]
