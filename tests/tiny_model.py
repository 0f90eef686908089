"""A tiny hand-built ONNX model with the reference models' I/O contract, for plumbing tests.

Its logits are fixed linear functions of the mean frame brightness and the mean log-mel, so a
test can reason about what it outputs without any training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.runtime.card import ModelCard, save_card


def tiny_model(dir_: Path, card: ModelCard, name: str = "tiny", scale: float = 1.0) -> Path:
    """``dir_/NAME.onnx`` and its card; ``scale`` multiplies the weights (models that differ)."""
    import onnx
    from onnx import TensorProto, helper

    n_classes = len(card.classes)
    inputs = [
        helper.make_tensor_value_info(k, TensorProto.FLOAT, [d if isinstance(d, int) else "B" for d in v.shape])
        for k, v in card.inputs.items()
    ]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", n_classes])
    w = scale * np.linspace(-1.0, 1.0, 4 * n_classes, dtype=np.float32).reshape(4, n_classes)
    nodes = []
    for k, v in card.inputs.items():
        axes = list(range(1, len(v.shape)))
        nodes.append(helper.make_node("ReduceMean", [k], [f"{k}_m"], axes=axes, keepdims=1))
        nodes.append(helper.make_node("Reshape", [f"{k}_m", "shape2"], [f"{k}_r"]))
    nodes.append(helper.make_node("Concat", [f"{k}_r" for k in card.inputs], ["feat"], axis=1))
    nodes.append(helper.make_node("MatMul", ["feat", "w"], ["logits"]))
    inits = [
        helper.make_tensor("w", TensorProto.FLOAT, list(w.shape), w.flatten().tolist()),
        helper.make_tensor("shape2", TensorProto.INT64, [2], [-1, 1]),
    ]
    graph = helper.make_graph(nodes, "tiny", inputs, [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = dir_ / f"{name}.onnx"
    onnx.save(model, str(path))
    save_card(card, dir_ / f"{name}.yaml")
    return path
