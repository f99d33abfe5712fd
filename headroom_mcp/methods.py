"""The store's methods and their parameters, in one table.

Every way in derives what it offers from ``METHODS``: the MCP tools' input schemas
(``server``), the parameters ``service.dispatch`` accepts (the daemon and embedded mode),
which methods the daemon runs beside the writer, what ``POST /api/call`` serves and how it
bounds a limit (``hosting``), and the recall default of the CLI and the Python API. A new parameter is one line here.

Only plain data: the stdio server and the CLI read this before (or without) opening a
store, so it imports nothing heavy (no pydantic, no Chroma).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .store.records import Scope

#: Most results one recall returns to an agent: the recall tool's bound, and what
#: ``POST /api/call`` caps a larger limit to. (The store's own ceiling, for the Python API
#: and the CLI, is ``store.reading.MAX_RECALL_LIMIT``.)
MAX_RECALL = 50
#: Results a recall returns when no limit is given.
RECALL_LIMIT = 5
#: How a model should word a fact it stores, told to agents (``remember``) and to the model
#: behind ``with_memory`` alike: a fact that names its kind and what it applies to is found by
#: a later question that names them too (docs/quality.md, "As the agent asks").
FACT_WORDING = ("Name what kind of thing it is and what it applies to, in the words a later question would use: "
                "\"the user's preferred language for command-line tools is Rust\", not \"likes Rust\"; \"this "
                "repository's CI runs on Buildkite\", not \"Buildkite\".")


@dataclass(frozen=True)
class Param:
    """One parameter: its JSON type (as a Python annotation), bounds and meaning."""

    type: Any
    #: What it means, as an agent reads it in a tool's schema.
    doc: str = ""
    #: The value when omitted; None leaves it to the store (and keeps it optional).
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    #: No coercion: ``"0.9"`` is not a number and ``1`` is not a boolean.
    strict: bool = False
    #: Offered in the method's MCP tool (else only to the API, CLI and UI).
    in_tool: bool = True


@dataclass(frozen=True)
class Tool:
    """How a method is offered as an MCP tool (its read-only hint is ``Method.read``)."""

    title: str
    destructive: bool = False
    #: Arguments the tool always passes, not offered to the agent (``recall``'s ``asked_by``).
    fixed: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """One store method: what it takes, what it is, and who may call it how."""

    doc: str
    params: Mapping[str, Param] = field(default_factory=dict)
    #: Changes nothing: the daemon runs it beside the one writer.
    read: bool = False
    #: Offered to agents as an MCP tool.
    tool: Tool | None = None
    #: Served by ``POST /api/call`` (the reads the agents' hooks make beside the MCP session).
    http: bool = False

    def bounded(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with every integer past its parameter's maximum lowered to it."""
        out = dict(params)
        for name, param in self.params.items():
            value = out.get(name)
            if param.maximum is not None and type(value) is int and value > param.maximum:
                out[name] = int(param.maximum)
        return out


METHODS: dict[str, Method] = {
    "remember": Method(
        "Store a durable fact for future sessions and other agents: a user preference, a project convention or command, "
        "a decision and why, a fix for a recurring problem. The same fact said twice is stored once (status \"merged\"; the "
        "new wording is kept as history); a memory this one seems to replace in one slot (a new version, port, tool, "
        "direction) comes back in \"conflicts\", close but different ones in \"similar\". Credentials are never stored: "
        "they are redacted (kinds listed in \"redacted\") or the call is refused.",
        {
            "content": Param(str, f"The fact, one self-contained statement in plain words (max 8 KB). {FACT_WORDING}",
                             required=True),
            "scope": Param(Scope, "Who sees it: user (everywhere), project (default in a repository), session, agent or turn."),
            "importance": Param(float, "0..1, default 0.5; higher surfaces first.", minimum=0, maximum=1, strict=True),
            "tags": Param(list[str], "Short labels, e.g. [\"build\", \"preference\"]."),
            "supersedes": Param(str, "Id of a memory this fact replaces; the old one is kept as history and no longer recalled."),
        },
        tool=Tool("Remember a fact"),
    ),
    "recall": Method(
        "Search the memories visible here (this user's, this project's, this session's) by meaning and keywords, best "
        "first. Use it when starting a task or when the user refers to preferences, conventions or earlier work. "
        "Memories are short statements of fact, so a query written as the statement you expect to find, with the names "
        "it would use, matches best. Returns an empty list when nothing is relevant.",
        {
            # The wording that gets an agent to write such a query: measured with agent-written
            # queries (docs/quality.md, "As the agent asks"), R@1 0.81 -> 0.91 on the blind test set.
            "query": Param(str, "The fact you are looking for, written as the memory would state it (\"this repo's package "
                                "manager is ...\", not \"which installer?\"), plus the keywords it likely contains: tool, "
                                "file, command and error names, and their common synonyms.", required=True),
            "limit": Param(int, f"Most results to return (1-{MAX_RECALL}).", default=RECALL_LIMIT, minimum=1,
                           maximum=MAX_RECALL),
            "scope": Param(Scope, "Only memories of this scope."),
            "tags": Param(list[str], "Only memories carrying all of these tags."),
            "agent": Param(str, "Only memories asserted by this agent (claude, codex, gemini...)."),
            "min_score": Param(float, "Drop results scoring below this.", strict=True),
            "asked_by": Param(str, "Who worded the query: \"agent\" (an agent's recall, phrased as the tool asks) or "
                                   "\"prompt\" (a person's words, as the hooks and with_memory pass them; the default). "
                                   "Each is ranked with the weights chosen for it (store.ranking).", in_tool=False),
        },
        read=True, tool=Tool("Recall memories", fixed={"asked_by": "agent"}), http=True,
    ),
    "forget": Method(
        "Forget memories by id, ids, or query. Use when the user asks to forget something or a memory is wrong (to "
        "replace a fact, prefer remember with supersedes). A query first lists what it would take (would_forget) and "
        "other close matches (candidates, never taken): call again with confirm=true, or pass the ids the user meant.",
        {
            "id": Param(str, "Id of the memory to forget."),
            "ids": Param(list[str], "Ids of several memories to forget."),
            "query": Param(str, "Forget the memory this query clearly names; without confirm=true only lists it."),
            "confirm": Param(bool, "Set true to really forget what a query names.", default=False, strict=True),
            "limit": Param(int, "Most matches a query considers.", in_tool=False),
        },
        tool=Tool("Forget memories", destructive=True),
    ),
    "restore": Method("Bring forgotten memories back.", {"ids": Param(list[str], required=True)}),
    "unmerge": Method("Make a restatement a memory of its own again.", {"id": Param(str, required=True)}),
    "get": Method("One memory with its provenance.", {"memory_id": Param(str, required=True)}, read=True),
    "update": Method("Change a memory's importance or tags in place.",
                     {"id": Param(str, required=True), "importance": Param(float), "tags": Param(list[str])}),
    "list": Method(
        "The visible memories, most recently updated first.",
        {"scope": Param(Scope), "tags": Param(list[str]), "agent": Param(str), "limit": Param(int), "forgotten": Param(bool),
         "everywhere": Param(bool), "merged": Param(bool)},
        read=True,
    ),
    "context": Method("The memories that matter most here, most important first.", {"limit": Param(int)}, read=True, http=True),
    "stats": Method("Totals by scope, agent and project.", read=True),
    "check": Method("Compare the derived indexes with the collection.", {"repair": Param(bool)}),
    "backup": Method("Copy the live store into a new directory.", {"dest": Param(str, required=True)}),
    "clear": Method("Forget every memory visible here.", {"scope": Param(Scope)}),
    "import": Method("Import exported records.", {"records": Param(list[dict[str, Any]], required=True), "dedup": Param(bool)}),
}

#: The methods that change nothing, which the daemon runs beside the one writer.
READS = frozenset(name for name, method in METHODS.items() if method.read)
#: The methods ``POST /api/call`` serves.
HTTP_METHODS = frozenset(name for name, method in METHODS.items() if method.http)
#: The methods offered to agents as MCP tools, in the order they are listed.
TOOLS = {name: method for name, method in METHODS.items() if method.tool is not None}
