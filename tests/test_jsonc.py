"""``jsonc``: JSON and JSONC edited as text, so a user's comments and formatting survive an
install and an uninstall gives the original bytes back."""

from __future__ import annotations

import copy
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_mcp import jsonc

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)
objects = st.dictionaries(st.text(max_size=6), values, max_size=5)
styles = st.sampled_from([None, 2, 4, "\t"])


def _dicts(value, path=()):
    if isinstance(value, dict):
        yield path
        for key, item in value.items():
            yield from _dicts(item, path + (key,))


@settings(max_examples=300, deadline=None)
@given(objects, styles, st.data())
def test_adding_then_removing_a_key_anywhere_gives_the_same_bytes(data, indent, draw):
    text = json.dumps(data, indent=indent) + "\n"
    path = draw.draw(st.sampled_from(list(_dicts(data))))
    new = copy.deepcopy(data)
    target = new
    for key in path:
        target = target[key]
    key = "headroom-" + draw.draw(st.text(max_size=4))
    if key in target:
        return
    target[key] = draw.draw(values)
    edited = jsonc.update(text, new)
    assert jsonc.same(jsonc.loads(edited), new) and jsonc.same(json.loads(edited), new)
    assert jsonc.update(edited, data) == text


@settings(max_examples=200, deadline=None)
@given(objects, styles, objects)
def test_update_reaches_any_value(data, indent, new):
    edited = jsonc.update(json.dumps(data, indent=indent), new)
    assert jsonc.same(json.loads(edited), new)


GEMINI = """{
  // picked in /theme
  "theme": "GitHub", /* inline */
  "mcpServers": {
    "fs": {"command": "fs-mcp",}, // trailing comma, as JSON5 allows
  },
  "list": [1, 2, /* two */ 3],
}
"""


def test_comments_and_trailing_commas_survive_edits_around_them():
    data = jsonc.loads(GEMINI)
    assert data == {"theme": "GitHub", "mcpServers": {"fs": {"command": "fs-mcp"}}, "list": [1, 2, 3]}
    new = copy.deepcopy(data)
    new["mcpServers"]["headroom"] = {"command": "headroom-mcp"}
    new["list"].remove(2)
    new["hooks"] = {"SessionStart": []}
    edited = jsonc.update(GEMINI, new)
    for kept in ("// picked in /theme", "/* inline */", '"fs": {"command": "fs-mcp",}, // trailing comma'):
        assert kept in edited
    assert jsonc.loads(edited) == new
    assert '    "headroom": {\n      "command": "headroom-mcp"\n    },\n  },' in edited  # the object's own style
    new["list"].insert(1, 2)
    del new["mcpServers"]["headroom"], new["hooks"]
    assert jsonc.loads(jsonc.update(edited, new)) == data


@pytest.mark.parametrize("text, message", [
    ("{ not json", "expected a double-quoted key at line 1 column 3"),
    ('{"a": 1 "b": 2}', "expected ',' or '}'"),
    ('{"a": 1} x', "unexpected text after the value"),
    ('{"a": /* open', "unclosed /* comment"),
    ("", "unexpected end of text"),
    ('{"a": [1, 2}', "expected ',' or ']'"),
])
def test_bad_text_is_refused_with_where(text, message):
    with pytest.raises(jsonc.JsoncError, match=re.escape(message)):
        jsonc.parse(text)
