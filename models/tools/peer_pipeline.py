#!/usr/bin/env python3
"""The reference peer for the gateway's pipeline benchmark: the kind of Python pipeline
people run today on an edge box. OpenCV decodes the clip (its bundled FFmpeg) and
letterboxes each frame, ONNX Runtime runs YOLOX, NumPy decodes the grid output and does class-wise NMS, and the
persons are counted. Every frame of the clip is analysed; prints one line of figures.

Run by `cargo bench -p edge-gateway --bench pipeline`, which installs the packages of
requirements-peer.txt into a virtual environment of its own, with the same model, clip and
thread count as the Rust pipeline.
"""

import argparse
import time

import cv2
import numpy as np
import onnxruntime as ort


def letterbox(bgr, size, pad):
    """Scales to fit `size`, anchored top-left, padded with `pad`; CHW float32."""
    h, w = bgr.shape[:2]
    ratio = min(size / w, size / h)
    nw, nh = max(1, int(w * ratio)), max(1, int(h * ratio))
    resized = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((size, size, 3), pad, dtype=np.uint8)
    canvas[:nh, :nw] = resized
    return canvas.transpose(2, 0, 1)[None].astype(np.float32), ratio


def grids(size, strides):
    cells, scale = [], []
    for s in strides:
        g = size // s
        ys, xs = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        scale.append(np.full((g * g, 1), s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(scale).astype(np.float32)


def decode(out, cells, strides, threshold):
    """YOLOX grid output (objectness and classes already sigmoided) to boxes in model pixels."""
    out = out[0]
    obj = out[:, 4]
    cls = out[:, 5:]
    best = cls.argmax(axis=1)
    score = obj * cls[np.arange(len(cls)), best]
    keep = score >= threshold
    xy = (out[keep, :2] + cells[keep]) * strides[keep]
    wh = np.exp(out[keep, 2:4]) * strides[keep]
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    return boxes, score[keep], best[keep]


def nms(boxes, scores, classes, iou):
    """Class-wise greedy NMS, NumPy."""
    kept = []
    for c in np.unique(classes):
        idx = np.where(classes == c)[0]
        idx = idx[np.argsort(-scores[idx])]
        while len(idx):
            i = idx[0]
            kept.append(i)
            rest = idx[1:]
            x1 = np.maximum(boxes[i, 0], boxes[rest, 0])
            y1 = np.maximum(boxes[i, 1], boxes[rest, 1])
            x2 = np.minimum(boxes[i, 2], boxes[rest, 2])
            y2 = np.minimum(boxes[i, 3], boxes[rest, 3])
            inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
            area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            union = area(boxes[[i]]) + area(boxes[rest]) - inter
            idx = rest[inter / np.maximum(union, 1e-9) <= iou]
    return np.array(kept, dtype=int)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--clip", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=416)
    p.add_argument("--threshold", type=float, default=0.1)
    p.add_argument("--nms-iou", type=float, default=0.45)
    p.add_argument("--min-score", type=float, default=0.25)
    args = p.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    cells, strides = grids(args.size, [8, 16, 32])

    def analyse(bgr):
        tensor, ratio = letterbox(bgr, args.size, 114)
        out = session.run(None, {name: tensor})[0]
        boxes, scores, classes = decode(out, cells, strides, args.threshold)
        kept = nms(boxes, scores, classes, args.nms_iou)
        boxes = boxes[kept] / ratio
        persons = int(((classes[kept] == 0) & (scores[kept] >= args.min_score)).sum())
        return persons, boxes

    # One warm-up frame, as the Rust side has.
    warm = cv2.VideoCapture(args.clip)
    ok, bgr = warm.read()
    if not ok:
        raise SystemExit(f"cannot read {args.clip}")
    analyse(bgr)
    warm.release()

    frames = persons = 0
    started = time.perf_counter()
    capture = cv2.VideoCapture(args.clip)
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        n, _ = analyse(bgr)
        persons += n
        frames += 1
    capture.release()
    elapsed = time.perf_counter() - started
    print(f"frames={frames} seconds={elapsed:.3f} fps={frames / elapsed:.2f} persons={persons}")


if __name__ == "__main__":
    main()
