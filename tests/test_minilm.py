"""The default model repacked so its int8 weights stay int8 in memory (store/minilm.py)."""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import numpy_helper

from headroom_mcp.store import minilm
from headroom_mcp.store.embedder import OnnxEmbedder, default_model_files


def _weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def test_packing_keeps_every_weight_exactly(tmp_path):
    source, _ = default_model_files()
    dest = tmp_path / "packed.onnx"
    minilm.pack(source, dest)
    original, packed = onnx.load(str(source)), onnx.load(str(dest))
    before, after = _weights(original), _weights(packed)
    producer = {out: node for node in original.graph.node for out in node.output}
    matmuls = [node for node in packed.graph.node if node.op_type == "MatMulNBits"]
    def int8_weighted(node: onnx.NodeProto) -> bool:
        mul = producer.get(node.input[1])
        cast = producer.get(mul.input[0]) if mul is not None and mul.op_type == "Mul" else None
        return cast is not None and cast.op_type == "Cast" and cast.input[0] in before
    assert len(matmuls) == sum(node.op_type == "MatMul" and int8_weighted(node) for node in original.graph.node) > 30
    for node in matmuls:  # the dequantised matrix is the original Cast(q)·scale, value for value
        twin = next(n for n in original.graph.node if n.name == node.name)
        mul = producer[twin.input[1]]
        expected = before[producer[mul.input[0]].input[0]].astype(np.float32) * before[mul.input[1]]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        blocks, scales, zeros = (after[name] for name in node.input[1:])
        k, n = attrs["K"], attrs["N"]
        values = (blocks.reshape(n, -1).astype(np.float32) - zeros.reshape(n, -1).repeat(attrs["block_size"], 1))
        rebuilt = (values * scales.reshape(n, -1).repeat(attrs["block_size"], 1))[:, :k].T
        assert np.array_equal(rebuilt, expected), node.name
    # No float32 copy of a large table is left in the packed graph.
    assert max(a.nbytes for a in after.values() if a.dtype == np.float32) < 1_000_000
    assert not [n for n in packed.graph.node if n.op_type == "Cast" and n.input[0] in before and before[n.input[0]].size > 1_000_000]


def test_default_embedder_loads_the_packed_file_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    source, _ = default_model_files()
    embedder = OnnxEmbedder()
    vector = embedder.embed(["this repo uses uv, not pip"])
    assert minilm.packed_path(source).is_file() and minilm.packed_path(source).is_relative_to(tmp_path / "cache")
    assert not list(minilm.cache_dir().glob("*.tmp"))
    assert vector.shape == (1, 384) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5


def test_an_unwritable_cache_falls_back_to_the_file_as_shipped(tmp_path, monkeypatch, caplog):
    (tmp_path / "cache").write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING, logger="headroom_mcp.embedder"):
        embedder = OnnxEmbedder()
        vector = embedder.embed(["this repo uses uv, not pip"])
    assert "could not pack the embedding model" in caplog.text
    assert vector.shape == (1, 384)
