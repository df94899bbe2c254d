#!/usr/bin/env python3
"""Writes a copy of an ONNX detector with a free batch dimension.

The detectors the gateway ships have a fixed batch of 1, so the gateway runs them on one
image (a frame or a tile) at a time. Given a model whose batch is free, it analyses the
frames of several cameras, and a frame's tiles, in one inference (up to 8 images). This
names the first dimension of the model's input and output `batch`, and sets every Reshape
target that pins the batch to 1 to 0 ("as the input"). Check the copy before use:
`models/tools/batch_throughput.py` compares each item of a batch with its run alone.

    python3 -m venv .cache/model-tools/venv
    .cache/model-tools/venv/bin/pip install -r models/tools/requirements-free-batch.txt
    .cache/model-tools/venv/bin/python models/tools/free_batch.py \
        ../shared/models/yolox_nano.onnx yolox_nano-batch.onnx
"""

import argparse

import onnx
from onnx import numpy_helper


def pinned_to_one(shape):
    """`shape` with a batch of 0 ("as the input") if it pins the batch to 1, else None."""
    if shape.ndim == 1 and shape.size > 1 and shape[0] == 1:
        shape = shape.copy()
        shape[0] = 0
        return shape
    return None


def free_batch(model):
    """The model with its batch dimension free; how many Reshape targets were changed."""
    graph = model.graph
    targets = {n.input[1] for n in graph.node if n.op_type == "Reshape"}
    changed = 0
    # A Reshape's target comes as an initializer or from a Constant node.
    for init in graph.initializer:
        if init.name in targets:
            shape = pinned_to_one(numpy_helper.to_array(init))
            if shape is not None:
                init.CopyFrom(numpy_helper.from_array(shape, init.name))
                changed += 1
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] in targets:
            value = next(a for a in node.attribute if a.name == "value")
            shape = pinned_to_one(numpy_helper.to_array(value.t))
            if shape is not None:
                value.t.CopyFrom(numpy_helper.from_array(shape, value.t.name))
                changed += 1
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    # Shapes inferred for the batch of 1 would contradict the free dimension.
    del graph.value_info[:]
    return model, changed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the ONNX model with a fixed batch")
    parser.add_argument("out", help="where to write the copy")
    args = parser.parse_args()
    model, changed = free_batch(onnx.load(args.model))
    onnx.checker.check_model(model)
    onnx.save(model, args.out)
    print(f"{args.out}: batch free, {changed} Reshape targets changed")


if __name__ == "__main__":
    main()
