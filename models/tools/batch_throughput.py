#!/usr/bin/env python3
"""Would batching frames from several cameras into one inference pay on this machine?

The detectors the gateway ships have a fixed batch of 1. This makes a copy of a model with
a free batch dimension (`free_batch.py`), checks that each item of a batch comes out as it
does alone, and prints ONNX Runtime's frames per second at each batch size on the same
threads. Nothing is written beside the model: the copy lives in a temporary folder.

    python3 -m venv .cache/batch/venv
    .cache/batch/venv/bin/pip install -r models/tools/requirements-batch.txt
    .cache/batch/venv/bin/python models/tools/batch_throughput.py \
        --model ../shared/models/yolox_nano.onnx --threads 2 --batches 1,2,4,8
"""

import argparse
import os
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

from free_batch import free_batch


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--frames", type=int, default=400, help="frames per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]

    model, changed = free_batch(onnx.load(args.model))
    with tempfile.TemporaryDirectory() as tmp:
        free = os.path.join(tmp, "free-batch.onnx")
        onnx.save(model, free)
        fixed, batched = session(args.model, args.threads), session(free, args.threads)
        name = batched.get_inputs()[0].name
        shape = [d if isinstance(d, int) else 1 for d in batched.get_inputs()[0].shape]
        rng = np.random.default_rng(7)
        items = [
            (rng.random(shape, dtype=np.float32) * 255).astype(np.float32)
            for _ in range(max(batches))
        ]
        alone = [fixed.run(None, {name: x})[0] for x in items]
        for b in batches:
            out = batched.run(None, {name: np.concatenate(items[:b])})[0]
            worst = max(float(np.abs(out[i] - alone[i][0]).max()) for i in range(b))
            if worst > 1e-3:
                raise SystemExit(f"batch {b}: an item differs from its run alone by {worst}")
        best = {}
        for _ in range(args.rounds):
            for b in batches:
                x = np.concatenate(items[:b])
                for _ in range(3):
                    batched.run(None, {name: x})
                runs = max(1, args.frames // b)
                start = time.perf_counter()
                for _ in range(runs):
                    batched.run(None, {name: x})
                fps = runs * b / (time.perf_counter() - start)
                best[b] = max(best.get(b, 0.0), fps)
    print(
        f"{os.path.basename(args.model)}: input {shape[1:]}, {args.threads} intra-op threads, "
        f"{changed} Reshape targets freed, each item equal to its run alone; best of {args.rounds} rounds"
    )
    for b in batches:
        print(f"batch {b}: {best[b]:.1f} frames/s ({best[b] / best[batches[0]]:.2f}x batch {batches[0]})")


if __name__ == "__main__":
    main()
