"""Trains the manhole-cover detector on YOLO-format folders and exports it to ONNX.

The network is a small anchor-free detector (depthwise-separable backbone, a two-level
feature pyramid, heads at strides 8 and 16) whose ONNX output is laid out exactly like
YOLOX's raw output (`[1, cells, 5 + classes]`: `tx, ty, tw, th` raw, objectness and
class scores sigmoided), so the gateway decodes it with its YOLOX decoder.

Input as the gateway feeds it: BGR, letterboxed top-left onto a square canvas padded with
114, values scaled by 1/255.

    python train.py --data data/train --epochs 30 --out manhole-v1.onnx
    python train.py --data data/train --data real/ --epochs 10 --init manhole-v1.pt --out tuned.onnx
    python train.py --data data/train --epochs 0 --init manhole-v1.pt --out manhole-v1.onnx  # export only
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

STRIDES = (8, 16)
PAD = 114
CLASSES = 3
# Boxes up to this size (longer side, pixels) go to the stride-8 head, larger to stride 16.
SPLIT = 40


def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def dw_sep(cin: int, cout: int, s: int = 1) -> nn.Sequential:
    return nn.Sequential(conv_bn(cin, cin, 3, s, groups=cin), conv_bn(cin, cout, 1))


class Net(nn.Module):
    def __init__(self, classes: int = CLASSES):
        super().__init__()
        # Small covers are a few cells at stride 8: keep detail before it with a wider stem
        # and a block at stride 4.
        self.stem = nn.Sequential(conv_bn(3, 16, 3, 2), dw_sep(16, 32, 2), dw_sep(32, 32))
        self.c8 = nn.Sequential(dw_sep(32, 64, 2), dw_sep(64, 64), dw_sep(64, 64))
        self.c16 = nn.Sequential(dw_sep(64, 128, 2), dw_sep(128, 128))
        self.c32 = nn.Sequential(dw_sep(128, 192, 2), dw_sep(192, 192))
        self.lat16 = conv_bn(192, 128, 1)
        self.lat8 = conv_bn(128, 64, 1)
        self.p16 = dw_sep(128, 128)
        self.p8 = dw_sep(64, 64)
        out = 5 + classes
        self.h8 = nn.Sequential(dw_sep(64, 64), nn.Conv2d(64, out, 1))
        self.h16 = nn.Sequential(dw_sep(128, 128), nn.Conv2d(128, out, 1))
        # Start with low objectness everywhere, as detectors usually do.
        for h in (self.h8, self.h16):
            nn.init.constant_(h[-1].bias, 0.0)
            h[-1].bias.data[4:] = -4.6

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f8 = self.c8(self.stem(x))
        f16 = self.c16(f8)
        f32 = self.c32(f16)
        p16 = self.p16(f16 + F.interpolate(self.lat16(f32), scale_factor=2.0, mode="nearest"))
        p8 = self.p8(f8 + F.interpolate(self.lat8(p16), scale_factor=2.0, mode="nearest"))
        return [self.h8(p8), self.h16(p16)]


class Exported(nn.Module):
    """The gateway's view: one `[1, cells, 5 + classes]` tensor, YOLOX layout."""

    def __init__(self, net: Net):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = []
        for m in self.net(x):
            b, c, h, w = m.shape
            m = m.reshape(b, c, h * w).permute(0, 2, 1)
            rows.append(torch.cat([m[..., :4], torch.sigmoid(m[..., 4:])], dim=2))
        return torch.cat(rows, dim=1)


# ---------------------------------------------------------------------------------------
# Data


def read_labels(path: str) -> np.ndarray:
    """YOLO rows `class cx cy w h` (normalised) as an `n × 5` array; a missing file is none."""
    if not os.path.exists(path):
        return np.zeros((0, 5), np.float32)
    rows = [list(map(float, line.split())) for line in open(path) if line.strip()]
    return np.array(rows, np.float32).reshape(-1, 5)


def letterbox(img: Image.Image, side: int) -> tuple[np.ndarray, float]:
    """BGR canvas `side × side`, image at top-left scaled to fit, padded with 114."""
    r = min(side / img.width, side / img.height)
    w, h = max(1, int(img.width * r)), max(1, int(img.height * r))
    canvas = np.full((side, side, 3), PAD, np.uint8)
    canvas[:h, :w] = np.asarray(img.convert("RGB").resize((w, h), Image.BILINEAR))[..., ::-1]
    return canvas, r


class Folder(torch.utils.data.Dataset):
    """Images of one or more YOLO folders (`images/`, `labels/`), letterboxed onto a 640
    canvas as the gateway does, then cropped to `crop` pixels (biased towards covers)."""

    def __init__(self, roots: list[str], crop: int, side: int = 640):
        self.items = []
        for root in roots:
            for p in sorted(glob.glob(os.path.join(root, "images", "*"))):
                stem = os.path.splitext(os.path.basename(p))[0]
                self.items.append((p, os.path.join(root, "labels", stem + ".txt")))
        if not self.items:
            raise SystemExit(f"no images under {roots}")
        self.crop, self.side = crop, side

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path, lab = self.items[i]
        img = Image.open(path)
        canvas, r = letterbox(img, self.side)
        labels = read_labels(lab)
        boxes = np.c_[
            labels[:, 0],
            (labels[:, 1] - labels[:, 3] / 2) * img.width * r,
            (labels[:, 2] - labels[:, 4] / 2) * img.height * r,
            (labels[:, 1] + labels[:, 3] / 2) * img.width * r,
            (labels[:, 2] + labels[:, 4] / 2) * img.height * r,
        ]
        used_h = int(img.height * r)
        c = self.crop
        if len(boxes) and random.random() < 0.7:  # around a cover
            b = boxes[random.randrange(len(boxes))]
            x0 = int(np.clip((b[1] + b[3]) / 2 - random.uniform(0.15, 0.85) * c, 0, self.side - c))
            y0 = int(np.clip((b[2] + b[4]) / 2 - random.uniform(0.15, 0.85) * c, 0, self.side - c))
        else:
            x0 = random.randint(0, self.side - c)
            y0 = random.randint(0, max(0, min(self.side - c, used_h - c // 2)))
        patch = canvas[y0 : y0 + c, x0 : x0 + c]
        boxes = boxes.copy()
        boxes[:, [1, 3]] -= x0
        boxes[:, [2, 4]] -= y0
        if random.random() < 0.5:
            patch = patch[:, ::-1]
            boxes[:, [1, 3]] = c - boxes[:, [3, 1]]
        # Keep a cover only if most of it is in the crop.
        keep = []
        for b in boxes:
            area = (b[3] - b[1]) * (b[4] - b[2])
            cl = np.clip(b[1:], 0, c)
            if area > 0 and (cl[2] - cl[0]) * (cl[3] - cl[1]) >= 0.6 * area:
                keep.append([b[0], *cl])
        boxes = np.array(keep, np.float32).reshape(-1, 5)
        x = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float() / 255.0
        return x, targets(boxes, c)


def targets(boxes: np.ndarray, side: int) -> list[torch.Tensor]:
    """Per stride a `(5 + classes) × H × W` target with a positive mask in channel 4.

    A cover is assigned to one stride by its size, at the cell holding its centre and the two
    neighbouring cells nearest to the centre (one across, one down or up), as YOLOv5 does:
    three positives per cover learn faster than one and keep a cover near a cell border from
    teaching two cells opposite things. Smaller covers win a shared cell."""
    out = []
    for s in STRIDES:
        g = side // s
        t = np.zeros((5 + CLASSES, g, g), np.float32)
        order = np.argsort(-(boxes[:, 3] - boxes[:, 1]) * (boxes[:, 4] - boxes[:, 2]))
        for cls, x1, y1, x2, y2 in boxes[order]:
            w, h = x2 - x1, y2 - y1
            big = max(w, h) > SPLIT
            if big != (s == 16) or w < 1 or h < 1:
                continue
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            gx, gy = int(cx // s), int(cy // s)
            fx, fy = cx / s - gx, cy / s - gy
            cells = [(gx, gy), (gx + (1 if fx > 0.5 else -1), gy), (gx, gy + (1 if fy > 0.5 else -1))]
            for xx, yy in cells:
                if not (0 <= xx < g and 0 <= yy < g):
                    continue
                t[:, yy, xx] = 0
                t[0:4, yy, xx] = [cx / s - xx, cy / s - yy, math.log(w / s), math.log(h / s)]
                t[4, yy, xx] = 1
                t[5 + int(cls), yy, xx] = 1
        out.append(torch.from_numpy(t))
    return out


def loss_fn(preds: list[torch.Tensor], tgts: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
    pos_total = sum(t[:, 4].sum() for t in tgts).clamp(min=1.0)
    obj = cls = box = torch.zeros(())
    for p, t in zip(preds, tgts):
        mask = t[:, 4] > 0
        obj = obj + F.binary_cross_entropy_with_logits(p[:, 4], t[:, 4], reduction="sum")
        if mask.any():
            pp = p.permute(0, 2, 3, 1)[mask]
            tt = t.permute(0, 2, 3, 1)[mask]
            cls = cls + F.binary_cross_entropy_with_logits(pp[:, 5:], tt[:, 5:], reduction="sum")
            box = box + F.smooth_l1_loss(pp[:, :4], tt[:, :4], reduction="sum", beta=0.1)
    obj, cls, box = obj / pos_total, cls / pos_total, box / pos_total
    return obj + cls + 2.0 * box, {"obj": obj.item(), "cls": cls.item(), "box": box.item()}


# ---------------------------------------------------------------------------------------


def export(net: Net, path: str, side: int = 640) -> None:
    net.eval()
    model = Exported(net)
    dummy = torch.zeros(1, 3, side, side)
    torch.onnx.export(
        model, dummy, path, input_names=["images"], output_names=["output"], opset_version=17, dynamo=False
    )
    print(f"exported {path} ({os.path.getsize(path)} bytes)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True, help="a YOLO folder (images/, labels/); repeat to mix")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=320)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--init", help="start from these weights (.pt), e.g. to fine-tune on real frames")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", required=True, help="ONNX file to write; the weights go beside it as .pt")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(a.threads)
    data = Folder(a.data, a.crop)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=a.batch,
        shuffle=True,
        num_workers=1,
        drop_last=True,
        persistent_workers=True,
        worker_init_fn=lambda w: (random.seed(a.seed * 1000 + w), np.random.seed(a.seed * 1000 + w)),
    )
    net = Net()
    if a.init:
        net.load_state_dict(torch.load(a.init))
    if a.epochs == 0:  # export the --init weights only
        export(net, a.out)
        return
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-4)
    steps = a.epochs * len(loader)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps, pct_start=0.1)
    params = sum(p.numel() for p in net.parameters())
    print(f"{len(data)} images, {params} parameters, {a.epochs} epochs of {len(loader)} steps")
    step = 0
    started = time.time()
    for epoch in range(a.epochs):
        net.train()
        sums: dict[str, float] = {}
        for x, t in loader:
            loss, parts = loss_fn(net(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
        n = len(loader)
        print(
            f"epoch {epoch + 1}/{a.epochs}: "
            + " ".join(f"{k} {v / n:.4f}" for k, v in sums.items())
            + f" ({time.time() - started:.0f} s)",
            flush=True,
        )
        torch.save(net.state_dict(), os.path.splitext(a.out)[0] + ".pt")
    export(net, a.out)


if __name__ == "__main__":
    main()
