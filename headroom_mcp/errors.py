"""Exceptions raised by headroom-mcp.

Every error a caller can act on has its own class so that the MCP server, the CLI and the
daemon protocol can turn it into a clear message (and back) without string matching.
"""

from __future__ import annotations


class HeadroomError(Exception):
    """Base class for every error raised on purpose by headroom-mcp."""


class InvalidInput(HeadroomError, ValueError):
    """An argument is missing, of the wrong type or out of range. Nothing was written."""


class NotFound(HeadroomError, LookupError):
    """A memory id does not exist, or is not visible to the caller."""


class Forbidden(HeadroomError, PermissionError):
    """The caller's grant does not allow this (a read-only token writing, a project it lacks)."""


class StoreLocked(HeadroomError):
    """Another process owns the store (holds the data dir's lock)."""


class DaemonUnavailable(HeadroomError):
    """The store daemon could not be reached or started."""


class UnsafeSocketDir(DaemonUnavailable):
    """The daemon's socket directory could be reached by another OS user (not ours, a
    symlink, or group/other permissions): whoever controls it could answer in the daemon's
    place with forged memories, so neither the daemon listens there nor a client connects."""


class EmbedderError(HeadroomError):
    """The embedding model could not be loaded or did not answer."""


class StoreFull(HeadroomError):
    """The disk holding the store is full: the write was not stored. Free space and retry."""


class StoreDamaged(HeadroomError):
    """A store file is damaged or missing. Nothing was changed; the message says which file and what to do."""


#: The classes that cross the daemon protocol by name.
ERRORS_BY_NAME: dict[str, type[HeadroomError]] = {
    cls.__name__: cls
    for cls in (HeadroomError, InvalidInput, NotFound, Forbidden, StoreLocked, DaemonUnavailable, UnsafeSocketDir,
                EmbedderError, StoreFull, StoreDamaged)
}
