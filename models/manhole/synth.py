"""Synthetic street-camera scenes with manhole covers, for training and evaluating the
manhole detector.

A scene is drawn top-down on a ground texture (asphalt or paving, markings, stains,
drains, potholes and other round things as hard negatives, covers in three states), warped
into a street camera's perspective, given a sky/building band above the horizon, lit,
shadowed, optionally wet, blurred, noised and JPEG-compressed. Labels are YOLO format
(`class cx cy w h`, normalised) for the covers' visible outlines.

Deterministic: image `i` of a set depends only on `--seed` and `i`, so a set can be
regenerated anywhere, in any number of processes.

    python synth.py --out data/train --count 6000 --seed 1
    python synth.py --out data/holdout --count 300 --seed 7 --hard
    python synth.py --out road.jpg --seed 2026 --scene manhole_broken
"""

from __future__ import annotations

import argparse
import io
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ["manhole_intact", "manhole_broken", "manhole_missing"]
INTACT, BROKEN, MISSING = range(3)

FRAME_W, FRAME_H = 640, 360
GROUND = 1024  # ground texture side, pixels


@dataclass
class Settings:
    hard: bool


def perspective_coeffs(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> np.ndarray:
    """The 8 coefficients of the homography taking each `src` point to its `dst` point."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    return np.linalg.solve(np.array(a, float), np.array(b, float))


def apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    m = np.append(h, 1.0).reshape(3, 3)
    p = np.c_[pts, np.ones(len(pts))] @ m.T
    return p[:, :2] / p[:, 2:3]


# ---------------------------------------------------------------------------------------
# Ground


def asphalt(rng: np.random.Generator) -> Image.Image:
    paving = rng.random() < 0.3
    base = rng.uniform(60, 130)
    tint = rng.uniform(-8, 8, 3)
    noise = rng.normal(0, rng.uniform(6, 16), (GROUND // 4, GROUND // 4))
    coarse = np.array(Image.fromarray(noise.astype(np.float32)).resize((GROUND, GROUND), Image.BILINEAR))
    fine = rng.normal(0, rng.uniform(4, 12), (GROUND, GROUND))
    g = base + coarse + fine
    if paving:  # block paving: a grid of joints
        step = int(rng.integers(40, 90))
        yy, xx = np.mgrid[0:GROUND, 0:GROUND]
        joints = ((xx + (yy // step % 2) * step // 2) % step < 3) | (yy % (step // 2) < 3)
        g = np.where(joints, g - rng.uniform(25, 45), g + rng.uniform(10, 30))
    rgb = np.clip(g[..., None] + tint, 0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def draw_markings(d: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    white = tuple(int(v) for v in rng.uniform(180, 240, 3))
    for _ in range(rng.integers(0, 4)):
        x = rng.uniform(0, GROUND)
        w = rng.uniform(8, 20)
        dash = rng.uniform(60, 200)
        y = -rng.uniform(0, dash)
        while y < GROUND:
            d.rectangle([x, y, x + w, y + dash * 0.6], fill=white)
            y += dash
    if rng.random() < 0.3:  # zebra crossing
        y0 = rng.uniform(0, GROUND - 200)
        for x in np.arange(0, GROUND, rng.uniform(50, 80)):
            d.rectangle([x, y0, x + 25, y0 + rng.uniform(120, 200)], fill=white)
    if rng.random() < 0.25:  # a painted ring or circle: round but not a cover
        cx, cy, r = rng.uniform(100, GROUND - 100), rng.uniform(100, GROUND - 100), rng.uniform(20, 70)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=white, width=int(rng.integers(4, 10)))


def blob(rng: np.random.Generator, cx: float, cy: float, r: float, n: int = 14) -> list[tuple[float, float]]:
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = r * rng.uniform(0.6, 1.2, n)
    return [(cx + q * math.cos(a), cy + q * math.sin(a)) for a, q in zip(angles, radii)]


def draw_negatives(d: ImageDraw.ImageDraw, rng: np.random.Generator, hard: bool) -> None:
    for _ in range(rng.integers(1, 8 if hard else 5)):
        kind = rng.integers(0, 6)
        cx, cy = rng.uniform(40, GROUND - 40), rng.uniform(40, GROUND - 40)
        r = rng.uniform(15, 60)
        shade = rng.uniform(15, 70)
        if kind == 0:  # stain or puddle, roughly round
            d.polygon(blob(rng, cx, cy, r), fill=(int(shade),) * 3)
        elif kind == 1:  # drain grate: a rectangle of slots
            w, h = r * 1.6, max(12.0, r * rng.uniform(0.5, 1.0))
            d.rectangle([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fill=(90, 90, 90), outline=(50, 50, 50), width=3)
            for x in np.arange(cx - w / 2 + 5, cx + w / 2 - 4, 8):
                d.rectangle([x, cy - h / 2 + 4, x + 3, cy + h / 2 - 4], fill=(12, 12, 12))
        elif kind == 2:  # pothole: irregular dark hole without a rim
            d.polygon(blob(rng, cx, cy, r, 20), fill=(int(shade * 0.5),) * 3, outline=(int(shade + 40),) * 3)
        elif kind == 3:  # patched asphalt
            d.rectangle([cx - r, cy - r * 0.7, cx + r * 1.3, cy + r], fill=(int(shade + 20),) * 3)
        elif kind == 4:  # tyre marks
            for k in range(2):
                d.line([(cx + k * 25, cy - 120), (cx + k * 25 + rng.uniform(-40, 40), cy + 120)], fill=(30, 30, 30), width=int(rng.integers(6, 14)))
        else:  # round lid-like clutter: a bucket or bin seen from above, a painted dot
            colour = tuple(int(v) for v in rng.uniform(30, 230, 3))
            rr = r * 0.5
            d.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=colour)


# ---------------------------------------------------------------------------------------
# Covers


def cover_pattern(d: ImageDraw.ImageDraw, rng: np.random.Generator, cx: float, cy: float, r: float, metal: tuple) -> None:
    dark = tuple(max(0, c - 35) for c in metal)
    kind = rng.integers(0, 3)
    if kind == 0:  # concentric rings
        for q in np.linspace(0.25, 0.85, int(rng.integers(2, 5))):
            d.ellipse([cx - r * q, cy - r * q, cx + r * q, cy + r * q], outline=dark, width=max(2, int(r * 0.04)))
    elif kind == 1:  # cross-hatch
        step = max(4.0, r * rng.uniform(0.12, 0.22))
        for o in np.arange(-r, r, step):
            d.line([(cx + o, cy - r), (cx + o, cy + r)], fill=dark, width=max(1, int(r * 0.03)))
            d.line([(cx - r, cy + o), (cx + r, cy + o)], fill=dark, width=max(1, int(r * 0.03)))
    else:  # radial ribs
        for a in np.linspace(0, 2 * math.pi, int(rng.integers(6, 13)), endpoint=False):
            d.line([(cx, cy), (cx + r * math.cos(a), cy + r * math.sin(a))], fill=dark, width=max(2, int(r * 0.05)))
    # The lid's own outline inside the rim.
    d.ellipse([cx - r * 0.92, cy - r * 0.92, cx + r * 0.92, cy + r * 0.92], outline=dark, width=max(2, int(r * 0.04)))


def draw_hole(d: ImageDraw.ImageDraw, rng: np.random.Generator, cx: float, cy: float, r: float) -> None:
    """The open shaft: near black with a lit far wall."""
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(int(rng.uniform(5, 25)),) * 3)
    wall = int(rng.uniform(40, 80))
    d.chord([cx - r, cy - r, cx + r, cy + r], 200, 340, fill=(wall, wall - 5, wall - 10))
    inner = r * 0.8
    d.ellipse([cx - inner, cy - inner * 0.9 + r * 0.1, cx + inner, cy + inner * 0.9 + r * 0.1], fill=(int(rng.uniform(0, 12)),) * 3)


def draw_cover(img: Image.Image, d: ImageDraw.ImageDraw, rng: np.random.Generator, state: int, cx: float, cy: float, r: float) -> None:
    rim = tuple(int(v) for v in rng.uniform(110, 170, 3).clip(0, 255))
    rim_w = r * rng.uniform(0.1, 0.18)
    d.ellipse([cx - r - rim_w, cy - r - rim_w, cx + r + rim_w, cy + r + rim_w], fill=rim)
    metal = tuple(int(v) for v in (rng.uniform(50, 100) + rng.uniform(-8, 8, 3)))
    if state == MISSING:
        draw_hole(d, rng, cx, cy, r)
        if rng.random() < 0.4:  # the lid lying next to the hole
            a = rng.uniform(0, 2 * math.pi)
            lx, ly = cx + 2.3 * r * math.cos(a), cy + 2.3 * r * math.sin(a)
            d.ellipse([lx - r, ly - r, lx + r, ly + r], fill=metal)
        return
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=metal)
    cover_pattern(d, rng, cx, cy, r, metal)
    if state == BROKEN:
        # Chunks missing: one to three wedges or bites opening onto the dark shaft.
        for _ in range(rng.integers(1, 4)):
            a0 = rng.uniform(0, 360)
            span = rng.uniform(35, 110)
            pts = [(cx + rng.uniform(-0.2, 0.2) * r, cy + rng.uniform(-0.2, 0.2) * r)]
            for a in np.linspace(a0, a0 + span, 6):
                q = r * rng.uniform(0.85, 1.0)
                pts.append((cx + q * math.cos(math.radians(a)), cy + q * math.sin(math.radians(a))))
            d.polygon(pts, fill=(int(rng.uniform(5, 25)),) * 3)
        # Cracks radiating from the break.
        for _ in range(rng.integers(2, 6)):
            a = rng.uniform(0, 2 * math.pi)
            pts = [(cx, cy)]
            q = 0.0
            while q < r * 0.95:
                q += r * rng.uniform(0.15, 0.3)
                a += rng.uniform(-0.4, 0.4)
                pts.append((cx + min(q, r * 0.95) * math.cos(a), cy + min(q, r * 0.95) * math.sin(a)))
            d.line(pts, fill=(10, 10, 10), width=max(2, int(r * rng.uniform(0.04, 0.08))))


# ---------------------------------------------------------------------------------------
# Camera


def scene(index: int, seed: int, hard: bool) -> tuple[Image.Image, list[tuple[int, float, float, float, float]]]:
    rng = np.random.default_rng([seed, index])
    ground = asphalt(rng)
    d = ImageDraw.Draw(ground)
    draw_markings(d, rng)
    draw_negatives(d, rng, hard)

    # Camera: the ground quad's image corners. Far edge at the horizon, near edge below the
    # frame; wider near edge = stronger perspective.
    horizon = rng.uniform(0.15, 0.5) * FRAME_H
    far_half = rng.uniform(0.25, 0.9) * FRAME_W
    near_half = far_half * rng.uniform(1.6, 5.0)
    centre = FRAME_W / 2 + rng.uniform(-0.3, 0.3) * FRAME_W
    skew = rng.uniform(-0.3, 0.3) * FRAME_W
    img_quad = [
        (centre + skew - far_half, horizon),
        (centre + skew + far_half, horizon),
        (centre + near_half, FRAME_H * rng.uniform(1.0, 1.5)),
        (centre - near_half, FRAME_H * rng.uniform(1.0, 1.5)),
    ]
    # How much ground depth the view spans: less depth, less foreshortening.
    depth = GROUND * rng.uniform(0.3, 0.7)
    ground_quad = [(0, 0), (GROUND, 0), (GROUND, depth), (0, depth)]
    to_image = perspective_coeffs(ground_quad, img_quad)

    # Covers: placed on the ground, kept where they land 1–15 % of the frame width wide.
    labels = []
    placed: list[tuple[float, float, float]] = []
    n_covers = rng.choice([0, 1, 1, 2, 2, 3], p=[0.1, 0.3, 0.2, 0.2, 0.1, 0.1])
    for _ in range(n_covers * 4):
        if len(placed) >= n_covers:
            break
        cx, cy = rng.uniform(60, GROUND - 60), rng.uniform(20, depth - 20)
        # Ground scale at that point: pixels in the image per ground pixel.
        p = apply_h(to_image, np.array([[cx, cy], [cx + 10, cy]]))
        scale = abs(p[1, 0] - p[0, 0]) / 10
        want = math.exp(rng.uniform(math.log(0.012), math.log(0.13))) * FRAME_W  # image width of the cover
        r = want / scale / 2
        if not 4 <= r <= 160 or any(math.hypot(cx - x, cy - y) < (r + q) * 2.6 for x, y, q in placed):
            continue
        ring = np.array([(cx + r * 1.12 * math.cos(a), cy + r * 1.12 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 48)])
        box = apply_h(to_image, ring)
        x1, y1 = box.min(0)
        x2, y2 = box.max(0)
        if x1 < 0 or y1 < horizon or x2 > FRAME_W or y2 > FRAME_H:
            continue
        if x2 - x1 < 0.01 * FRAME_W or y2 - y1 < 3:
            continue
        state = int(rng.choice([INTACT, BROKEN, MISSING], p=[0.3, 0.35, 0.35]))
        draw_cover(ground, d, rng, state, cx, cy, r)
        placed.append((cx, cy, r))
        labels.append((state, (x1 + x2) / 2 / FRAME_W, (y1 + y2) / 2 / FRAME_H, (x2 - x1) / FRAME_W, (y2 - y1) / FRAME_H))

    # Shadows of poles, trees and buildings, cast on the ground before the warp.
    shade = Image.new("L", (GROUND, GROUND), 0)
    sd = ImageDraw.Draw(shade)
    for _ in range(rng.integers(0, 4 if hard else 3)):
        x = rng.uniform(0, GROUND)
        w = rng.uniform(10, 300)
        sd.polygon([(x, 0), (x + w, 0), (x + w + rng.uniform(-200, 200), GROUND), (x + rng.uniform(-200, 200), GROUND)], fill=int(rng.uniform(40, 110)))
    shade = shade.filter(ImageFilter.GaussianBlur(rng.uniform(2, 12)))
    g = np.asarray(ground, np.float32) * (1 - np.asarray(shade, np.float32)[..., None] / 255)

    # Wet look: darker, with a sheen.
    if rng.random() < (0.45 if hard else 0.25):
        g = g * rng.uniform(0.6, 0.85)
        sheen = np.linspace(0, rng.uniform(30, 70), GROUND)[:, None, None]
        g = g + sheen[::-1] * (rng.random((GROUND, GROUND, 1)) < 0.6)
    ground = Image.fromarray(np.clip(g, 0, 255).astype(np.uint8))

    # Warp: PIL wants the map from output pixels to ground pixels.
    to_ground = perspective_coeffs(img_quad, ground_quad)
    frame = ground.transform((FRAME_W, FRAME_H), Image.PERSPECTIVE, tuple(to_ground), Image.BILINEAR)
    # Beside the road: kerb-side paving or verge where the ground quad does not reach.
    covered = Image.new("L", ground.size, 255).transform((FRAME_W, FRAME_H), Image.PERSPECTIVE, tuple(to_ground), Image.NEAREST)
    verge = np.array(rng.uniform(60, 160, 3)) + rng.normal(0, 10, (FRAME_H, FRAME_W, 1))
    side = Image.fromarray(np.clip(verge, 0, 255).astype(np.uint8))
    frame = Image.composite(frame, side, covered)

    # Above the horizon: sky and buildings.
    f = np.asarray(frame, np.float32).copy()
    top = int(math.ceil(horizon)) + 1
    sky = np.array(rng.uniform(120, 230, 3))
    f[:top] = sky
    fd = Image.fromarray(np.clip(f, 0, 255).astype(np.uint8))
    dd = ImageDraw.Draw(fd)
    x = -rng.uniform(0, 60)
    while x < FRAME_W:
        w = rng.uniform(40, 180)
        h = rng.uniform(0.3, 1.0) * top
        dd.rectangle([x, top - h, x + w, top], fill=tuple(int(v) for v in rng.uniform(50, 200, 3)))
        x += w + rng.uniform(0, 20)
    # A pole or two crossing the frame: clutter that is never a cover.
    for _ in range(rng.integers(0, 3)):
        px = rng.uniform(0, FRAME_W)
        dd.rectangle([px, rng.uniform(0, top), px + rng.uniform(3, 10), FRAME_H * rng.uniform(0.6, 1.0)], fill=(60, 60, 60))

    # Light: global gain and a gradient; then blur, noise and JPEG.
    f = np.asarray(fd, np.float32)
    gain = rng.uniform(0.45, 1.3) if hard else rng.uniform(0.6, 1.2)
    grad = np.linspace(rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2), FRAME_W)[None, :, None]
    f = f * gain * grad
    if rng.random() < (0.4 if hard else 0.15):  # rain streaks
        streaks = np.zeros((FRAME_H, FRAME_W), np.float32)
        ys, xs = rng.integers(0, FRAME_H, 600), rng.integers(0, FRAME_W, 600)
        for k in range(8):
            streaks[np.clip(ys + k, 0, FRAME_H - 1), np.clip(xs + k // 3, 0, FRAME_W - 1)] = 60
        f = f + streaks[..., None]
    out = Image.fromarray(np.clip(f, 0, 255).astype(np.uint8))
    blur = rng.uniform(0, 1.6 if hard else 1.0)
    if blur > 0.3:
        out = out.filter(ImageFilter.GaussianBlur(blur))
    f = np.asarray(out, np.float32) + rng.normal(0, rng.uniform(1, 9 if hard else 5), (FRAME_H, FRAME_W, 3))
    out = Image.fromarray(np.clip(f, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=int(rng.integers(25 if hard else 40, 92)))
    buf.seek(0)
    return Image.open(buf).convert("RGB"), labels


def write_one(args: tuple[str, int, int, bool]) -> int:
    out, index, seed, hard = args
    img, labels = scene(index, seed, hard)
    name = f"{index:06d}"
    img.save(os.path.join(out, "images", name + ".jpg"), quality=95)
    with open(os.path.join(out, "labels", name + ".txt"), "w") as fh:
        for c, x, y, w, h in labels:
            fh.write(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n")
    return len(labels)


def demo_scene(path: str, seed: int, state: int) -> None:
    """Writes the first scene of `seed` that shows exactly one cover, in `state`, at least
    8 % of the frame wide in the lower half: a still for a demo or test camera."""
    for index in range(10_000):
        img, labels = scene(index, seed, hard=False)
        if len(labels) == 1 and labels[0][0] == state and labels[0][3] >= 0.08 and labels[0][2] >= 0.5:
            img.save(path, quality=95)
            c, x, y, w, h = labels[0]
            print(f"{path}: scene {index} of seed {seed}, {CLASSES[c]} at ({x:.3f}, {y:.3f}) size {w:.3f} x {h:.3f}")
            return
    raise SystemExit(f"no scene of seed {seed} shows a lone {CLASSES[state]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="a folder for a set; a .jpg file with --scene")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--scene", choices=CLASSES, help="write one still showing a single cover in this state")
    ap.add_argument("--hard", action="store_true", help="harder settings: darker, blurrier, wetter, lower JPEG quality, more clutter")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    if a.scene:
        demo_scene(a.out, a.seed, CLASSES.index(a.scene))
        return
    if a.count < 1:
        ap.error("--count is required for a set")
    os.makedirs(os.path.join(a.out, "images"), exist_ok=True)
    os.makedirs(os.path.join(a.out, "labels"), exist_ok=True)
    with open(os.path.join(a.out, "classes.txt"), "w") as fh:
        fh.write("\n".join(CLASSES) + "\n")
    work = [(a.out, i, a.seed, a.hard) for i in range(a.count)]
    with ProcessPoolExecutor(a.jobs) as pool:
        objects = sum(pool.map(write_one, work, chunksize=16))
    print(f"wrote {a.count} images with {objects} covers to {a.out} (seed {a.seed}{', hard' if a.hard else ''})")


if __name__ == "__main__":
    main()
