"""Reading a team server from this machine: what ``headroom-mcp hook --url`` uses.

Hooks start a new process for every prompt, so this is plain ``urllib`` (no MCP session,
nothing heavy to import): one POST to the server's ``/api/call`` carrying the bearer token,
and the project header the agent's MCP entry sends too.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from .errors import HeadroomError
from .ours import PROJECT_HEADER

#: The environment variable that holds a team server's token unless one is named.
DEFAULT_TOKEN_ENV = "HEADROOM_MCP_TOKEN"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect with the Authorization header, to any host: refuse."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl} refused", headers, fp)


_OPENER = urllib.request.build_opener(_NoRedirects)


#: The most a hook reads of an answer; context and recall answers are a few KB.
MAX_ANSWER = 4 * 1024 * 1024


def api_url(mcp_url: str) -> str:
    """``https://host/team/mcp`` (or ``.../sse``, with or without a trailing slash or query)
    → ``https://host/team/api/call``."""
    parts = urlsplit(mcp_url)
    return urljoin(urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", "")), "api/call")


class RemoteClient:
    """Calls the team server's read methods (``context``, ``recall``) as the token's identity."""

    def __init__(self, url: str, token: str, project: str = "", timeout: float = 5.0):
        """``url``: the server's MCP endpoint, as in the agent's config; ``timeout``: for the
        whole call (a hook must not hold up a prompt, however slowly a server answers)."""
        self.url = api_url(url)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if project:
            self.headers[PROJECT_HEADER] = project
        self.timeout = timeout

    def call(self, method: str, params: Mapping[str, Any] | None = None, context: Any = None) -> dict[str, Any]:
        """One method; ``context`` is ignored: the server takes the identity from the token."""
        body = json.dumps({"method": method, "params": dict(params or {})}).encode()
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        deadline = time.monotonic() + self.timeout
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                answer = bytearray()
                while chunk := response.read1(65536):
                    answer += chunk
                    if len(answer) > MAX_ANSWER or time.monotonic() > deadline:
                        raise HeadroomError(f"{self.url} answered too much or too slowly; gave up")
                reply: dict[str, Any] = json.loads(answer)
                return reply
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error_description", "")
            except ValueError:
                detail = ""
            raise HeadroomError(f"{self.url} answered {exc.code} {detail}".strip()) from None
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise HeadroomError(f"cannot reach {self.url}: {exc}") from None
