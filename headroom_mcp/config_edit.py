"""Read-modify-write of an agent's config file, touching only our entries: the file-format half of install.

Files are edited as text (JSON and JSONC through ``jsonc``, TOML through tomlkit) in their
own line endings, so comments and the entries we do not own keep their bytes. Every write
is atomic (temp file + rename, mode kept), and what install found is noted first
(``Notes``) so that uninstall can give the user's file back byte for byte.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomlkit

from . import jsonc
from .errors import InvalidInput
from .ours import SERVER_NAME, plain

if TYPE_CHECKING:
    from .agents import ClientSpec

#: What becomes of our entry, given the current one (None: no entry).
Settle = Callable[[Any], Any]


def _read(path: Path) -> str | None:
    """A file's text with its own line endings (``read_text`` would turn CRLF into LF), or None if absent."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _remove_empty(folders: list[Path]) -> None:
    """Remove each folder that is empty, deepest first."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()


@dataclass(frozen=True)
class Notes:
    """What install remembers about one file until uninstall: the user's own file as it was
    (``backup``), or that install created it and which folders with it (``created``, a JSON
    list). Without the latter, uninstall never deletes a file or folder: it was the user's."""

    backup: Path
    created: Path
    ledger: Path | None = None  # the folder holding the notes when it is ours alone (pruned when empty)

    def read_backup(self) -> str | None:
        """The user's own file saved by an install, if any (a symlink is never followed)."""
        return _read(self.backup) if self.backup.is_file() and not self.backup.is_symlink() else None

    def created_folders(self) -> list[Path]:
        """The folders install created for the file (empty if it created none, or not the file)."""
        try:
            return [Path(p) for p in json.loads(_read(self.created) or "[]")]
        except ValueError:
            return []

    def release(self) -> None:
        """Forget the file (an uninstall is done with it), and the ledger folders left empty."""
        for note in (self.backup, self.created):
            note.unlink(missing_ok=True)
            if self.ledger is not None:
                _remove_empty([folder for folder in [note.parent, *note.parent.parents] if folder.is_relative_to(self.ledger)])


@dataclass
class Change:
    """One file's content before and after (``None``: the file does not exist).

    ``save``: keep ``before`` as the backup (it holds none of our entries, so it is the
    user's own file); ``release``: an uninstall, after which the notes are deleted.
    """

    path: Path
    before: str | None
    after: str | None
    notes: Notes
    save: bool = False
    release: bool = False

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(difflib.unified_diff(
            (self.before or "").splitlines(True), (self.after or "").splitlines(True),
            fromfile=str(self.path), tofile=str(self.path),
        ))


def loads(text: str, kind: str) -> Any:
    """Plain data of a config's text (an empty JSON file is ``{}``)."""
    return tomllib.loads(text) if kind == "toml" else (jsonc.loads(text) if text.strip() else {})


def _content(text: str, kind: str) -> str:
    """The text less whitespace and (JSON) the outer braces: what the user would lose if the file
    went, and what must match the backup for its bytes to come back (an empty file is ``{}``)."""
    bare = re.sub(r"\s", "", text)
    return bare if kind == "toml" else bare.removeprefix("{").removesuffix("}")


def _newline(text: str | None) -> str:
    """The file's line ending: CRLF when every line ends so, else LF (what a new file gets)."""
    return "\r\n" if text and "\r\n" in text and "\n" not in text.replace("\r\n", "") else "\n"


def replaced_entry(notes: Notes, spec: ClientSpec) -> Any:
    """The user's own ``headroom`` entry that ``install --force`` replaced, from the backup (None if none).

    For TOML it is the backup's own tomlkit item, so it goes back in its own layout.
    """
    text, kind = notes.read_backup(), spec.servers.format
    try:
        data = tomlkit.parse(text or "") if kind == "toml" else loads(text or "", kind)
    except Exception:  # a damaged backup gives nothing back
        return None
    servers = data.get(spec.servers_key) if isinstance(data, dict) else None
    entry = servers.get(SERVER_NAME) if isinstance(servers, dict) else None
    return entry if entry is not None and not spec.is_ours(entry) else None


def _edit_file(path: Path, kind: str, edit: Callable[[str | None], tuple[str | None, Any, Any]],
               install: bool, notes: Notes, spec: ClientSpec) -> Change:
    """Run ``edit`` (LF text in: its result text, the data before and after) in the file's own line endings, then settle.

    Installing over the user's own file marks it for a backup. Uninstalling: when what is
    left differs from the backup only in whitespace (a blank line tomlkit kept), the
    backup's bytes come back; a file left empty (no comments) that install created is
    deleted; the notes go either way.
    """
    before = _read(path)
    newline = _newline(before)
    after, original, result = edit(before if before is None else before.replace(newline, "\n"))
    after = after if after is None else after.replace("\n", newline)
    if install:
        return Change(path, before, after, notes, save=before is not None and not spec.holds_ours(original))
    saved = notes.read_backup()
    if after == before or after is None:
        pass
    elif saved is not None:
        try:
            if _content(saved, kind) == _content(after, kind) and jsonc.same(loads(saved, kind), result):
                after = saved
        except ValueError:
            pass
    elif not result and not _content(after, kind) and notes.created.is_file():
        after = None
    return Change(path, before, after, notes, release=True)


def json_edit(path: Path, edit: Callable[[dict[str, Any]], None], install: bool, notes: Notes, spec: ClientSpec) -> Change:
    """Apply ``edit`` to the file's data, then splice just the difference into its text."""

    def edit_text(before: str | None) -> tuple[str | None, Any, Any]:
        try:
            data = jsonc.loads(before) if before and before.strip() else {}
        except ValueError as exc:
            raise InvalidInput(f"{path} is not valid JSON ({exc}); fix it or move it away, nothing was changed") from None
        if not isinstance(data, dict):
            raise InvalidInput(f"{path} does not hold a JSON object; nothing was changed")
        result = copy.deepcopy(data)
        edit(result)
        if jsonc.same(result, data):
            return before, data, result
        if before is None or not before.strip():
            return (json.dumps(result, indent=2, ensure_ascii=False) + "\n" if result else before), data, result
        return jsonc.update(before, result), data, result

    return _edit_file(path, "json", edit_text, install, notes, spec)


def toml_edit(path: Path, edit: Callable[[Any], None], expect: Callable[[dict[str, Any]], None],
              install: bool, notes: Notes, spec: ClientSpec, sample: str) -> Change:
    """Edit a TOML file keeping its layout; ``expect`` applies the same change to plain data.

    TOML can say one thing several ways (tables, inline tables, dotted keys), and a
    layout-keeping edit of an unusual one could move a user's key. So the result is read
    back and must equal the original data with exactly our change; otherwise nothing is
    written and the user is told what to add by hand (from agent-configs/``sample``).
    """
    return _edit_file(path, "toml", lambda before: _toml_text(path, before, edit, expect, install, sample),
                      install, notes, spec)


def _toml_text(path: Path, before: str | None, edit: Callable[[Any], None], expect: Callable[[dict[str, Any]], None],
               install: bool, sample: str) -> tuple[str | None, Any, Any]:
    """``toml_edit`` on the text: the new text, the data before and after."""
    try:
        doc = tomlkit.parse(before or "")
        original = doc.unwrap()
        edit(doc)
        after = tomlkit.dumps(doc)
        result = tomllib.loads(after)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(f"could not edit {path} ({type(exc).__name__}: {exc}); nothing was changed") from None
    wanted = json.loads(json.dumps(original))
    expect(wanted)
    if result != wanted:
        raise InvalidInput(f"could not edit {path} without disturbing its other settings; nothing was changed. "
                           f"Add the entry from agent-configs/{sample} by hand")
    if result == original:
        return before, original, result
    if not install and after.strip():
        after = after.rstrip("\n") + "\n"  # tomlkit leaves the blank line that preceded a removed table
    elif not after.strip() and before is None:
        return None, original, result
    return after, original, result


def settle_servers(data: dict[str, Any], settle: Settle, key: str) -> None:
    """Our entry in the ``key`` table of plain data becomes what ``settle`` makes of the current one."""
    servers = data.setdefault(key, {})
    if not isinstance(servers, dict):
        raise InvalidInput(f"{key} must be an object, found {type(servers).__name__}; nothing was changed")
    value = plain(settle(servers.get(SERVER_NAME)))
    if value is None:
        servers.pop(SERVER_NAME, None)
    else:
        servers[SERVER_NAME] = value
    if not servers:
        del data[key]


def settle_toml_servers(doc: Any, settle: Settle, key: str) -> None:
    """``settle_servers`` on a tomlkit document, as a real table.

    A user's entry that ``settle`` gives back (from the backup) keeps its own layout; one it
    leaves alone is not touched at all.
    """
    servers = doc.get(key)
    current = servers.get(SERVER_NAME) if servers is not None else None
    value = settle(current)
    if value is current:
        return
    if isinstance(value, tomlkit.items.Item):
        servers[SERVER_NAME] = value
    elif value is None:
        del servers[SERVER_NAME]
        if not servers:
            del doc[key]
    else:
        if servers is None:
            servers = tomlkit.table(is_super_table=True)
            doc[key] = servers
        elif not isinstance(servers, tomlkit.items.Table):  # an inline table: make it a real one
            rest = servers.unwrap()
            del doc[key]
            servers = tomlkit.table(is_super_table=True)
            for name, entry in rest.items():
                servers[name] = entry
            doc[key] = servers
        table = tomlkit.table()
        for name, item in value.items():
            table[name] = item
        if SERVER_NAME in servers and not isinstance(servers[SERVER_NAME], tomlkit.items.Table):
            del servers[SERVER_NAME]  # an inline or dotted entry: replaced by a real table
        servers[SERVER_NAME] = table  # a table is replaced in place, keeping the blank lines around it


def set_flag(data: Any, flag: tuple[str, str], on: bool, off: bool, drop_table: bool, table: Callable[[], Any]) -> None:
    """Turn a ``(table, key)`` setting on (``on``), or take it out again (``off``; the table too when
    ``drop_table`` and it is left empty). Works on plain data and on a tomlkit document alike;
    ``table`` makes a new table of the document's kind."""
    section, key = flag
    if on:
        features = data.get(section)
        if features is None:
            features = table()
            data[section] = features
        features[key] = True
    features = data.get(section)
    if off and isinstance(features, dict) and key in features:
        del features[key]
        if not features and drop_table:
            del data[section]


def apply(changes: list[Change]) -> list[Change]:
    """Write (or delete) the changed files atomically, noting first what install found.

    A config that is a symlink (dotfile managers) is written through to its target. Its
    notes (see ``Notes``) are never followed if they are symlinks (a repository could
    plant one pointing at ~/.bashrc) and are created 0600: the backup holds the file as it
    was with none of our entries; a file install creates gets a note naming the folders it
    created with it. An uninstall deletes the notes: by then the file is back in the user's
    hands. A file we delete takes with it the folders install created for it, once empty.
    """
    for change in changes:  # every check before the first write
        for note in (change.notes.backup, change.notes.created):
            if note.is_symlink():
                raise InvalidInput(f"{note} is a symlink; remove it first (nothing was changed)")
    done, emptied = [], []
    for change in changes:
        path = change.path.resolve() if change.path.is_symlink() else change.path
        if change.changed and change.after is None:
            path.unlink(missing_ok=True)
            emptied += change.notes.created_folders()
            done.append(change)
        elif change.changed:
            created = [str(p) for p in itertools.takewhile(lambda p: not p.exists(), path.parents)]
            path.parent.mkdir(parents=True, exist_ok=True)
            mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
            if change.save and change.before is not None:
                _write_note(change.notes.backup, change.before)
            if change.before is None and not change.release:
                _write_note(change.notes.created, json.dumps(created))
            _write(path, change.after or "", mode)
            done.append(change)
        if change.release:
            change.notes.release()
    _remove_empty(emptied)
    return done


def _write_note(path: Path, text: str) -> None:
    """A note of install's, private to the user (its folder, under a git dir, made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, text, 0o600)


def _write(path: Path, text: str, mode: int) -> None:
    """Atomically: a temp file beside ``path``, then a rename over it (over a link, not through it).
    The text goes as it is, line endings included."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
