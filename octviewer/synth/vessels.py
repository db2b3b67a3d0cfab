"""An individual retinal vessel tree per eye, grown from the disc.

Why grown rather than drawn from a template: with one shared layout a network can learn the
template instead of the eye. Here the four arcade trunks (supero/infero-temporal and -nasal) plus a
few small vessels leave the central trunk at jittered angles, wander, bend around the macula (the
temporal arcades) and bifurcate with daughter calibres following Murray's law (r^3 = r1^3 + r2^3),
so every eye has its own tree. Coordinates are the eye's (u nasal-ward, v superior, mm from the
BMO centre); the renderer mirrors them for left eyes.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

# Trunks leaving the disc: clinical start angle (0 temporal, 90 superior), calibre (um), and the
# heading they bend towards (the temporal arcades arch around the macula, nasal vessels run straight).
_TRUNKS = ((80.0, 125.0, 15.0), (280.0, 130.0, 345.0), (125.0, 95.0, 150.0), (235.0, 95.0, 210.0))


def vessel_tree(seed: int) -> np.ndarray:
    """Segments (k, 5): u0, v0, u1, v1 (mm from the BMO centre, u nasal) and calibre (um)."""
    rng = np.random.default_rng(seed)
    segments = []
    stack = []
    for theta, calibre, target in _TRUNKS:
        stack.append((0.0, 0.0, theta + rng.normal(0, 12), calibre * rng.uniform(0.85, 1.15),
                      target + rng.normal(0, 10), 0))
    for _ in range(int(rng.integers(1, 4))):  # small vessels in other directions
        a = rng.uniform(0, 360)
        stack.append((0.0, 0.0, a, rng.uniform(40, 70), a, 1))
    while stack:
        u, v, theta, calibre, target, depth = stack.pop()
        length = 0.0
        next_split = rng.uniform(0.6, 1.6)
        while calibre >= 22.0 and abs(u) < 3.6 and abs(v) < 3.6:
            step = 0.06
            # wander, and steer towards the heading this vessel tends to (after leaving the rim)
            pull = ((target - theta + 180.0) % 360.0 - 180.0) * (0.06 if length > 0.4 else 0.0)
            theta += rng.normal(0, 5.0) + pull
            t = np.deg2rad(theta)
            u1, v1 = u - np.cos(t) * step, v + np.sin(t) * step  # clinical angle: 0 deg temporal (-u)
            segments.append((u, v, u1, v1, calibre))
            u, v, length = u1, v1, length + step
            if length > next_split and depth < 6:
                split = rng.uniform(0.3, 0.5)  # share of the cube of calibre going to the side branch
                side = calibre * split ** (1 / 3)
                calibre = calibre * (1 - split) ** (1 / 3)
                side_theta = theta + rng.choice([-1, 1]) * rng.uniform(30, 60)
                stack.append((u, v, side_theta, side, side_theta, depth + 1))
                next_split = length + rng.uniform(0.5, 1.4)
            calibre *= 0.995
    return np.asarray(segments, np.float32).reshape(-1, 5)


_CANVAS_MM = 0.02  # pixel of the drawn tree
_CANVAS_HALF_MM = 3.7  # vessels grow while |u|, |v| < 3.6 mm


@functools.lru_cache(maxsize=16)
def vessel_canvas(seed: int, dilate: bool) -> np.ndarray:
    """The eye's tree drawn once in its own coordinates (u nasal from the BMO centre across the
    columns, v superior down the rows, 0.02 mm pixels), calibre (um) per pixel. Cached: an eye is
    scanned at several visits and every scan samples the same drawing. ``dilate`` widens thin
    vessels by a pixel so that a coarser A-scan grid does not step over them."""
    segments = vessel_tree(seed)
    n = int(round(2 * _CANVAS_HALF_MM / _CANVAS_MM)) + 1
    canvas = np.zeros((n, n), np.float32)
    seg = segments[np.argsort(segments[:, 4])]  # thick vessels last, on top
    pa = np.stack([(seg[:, 0] + _CANVAS_HALF_MM) / _CANVAS_MM, (_CANVAS_HALF_MM - seg[:, 1]) / _CANVAS_MM], -1)
    pb = np.stack([(seg[:, 2] + _CANVAS_HALF_MM) / _CANVAS_MM, (_CANVAS_HALF_MM - seg[:, 3]) / _CANVAS_MM], -1)
    for a, b, cal in zip(np.round(pa * 4).astype(int), np.round(pb * 4).astype(int), seg[:, 4]):
        thick = max(1, int(round(cal / 1000.0 / _CANVAS_MM)))
        cv2.line(canvas, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), float(cal), thick, lineType=cv2.LINE_8,
                 shift=2)
    if dilate:
        canvas = cv2.dilate(canvas, np.ones((3, 3), np.uint8))
    canvas.setflags(write=False)
    return canvas


def rasterize(seed: int, xs_mm: np.ndarray, ys_mm: np.ndarray, centre_xy: tuple[float, float],
              u_sign: float) -> np.ndarray:
    """Vessel calibre map (um, 0 = no vessel) on the cube's en-face grid (rows = ys, cols = xs) of
    the eye whose tree grows from ``seed``, its BMO centre at ``centre_xy`` (mm) in the cube."""
    canvas = vessel_canvas(seed, _CANVAS_MM < 0.5 * abs(float(xs_mm[1] - xs_mm[0])))
    n = canvas.shape[0]
    cols = np.round((u_sign * (xs_mm - centre_xy[0]) + _CANVAS_HALF_MM) / _CANVAS_MM).astype(int)
    rows = np.round((_CANVAS_HALF_MM - (ys_mm - centre_xy[1])) / _CANVAS_MM).astype(int)
    ok = (rows[:, None] >= 0) & (rows[:, None] < n) & (cols[None, :] >= 0) & (cols[None, :] < n)
    return np.where(ok, canvas[np.ix_(np.clip(rows, 0, n - 1), np.clip(cols, 0, n - 1))], 0.0).astype(np.float32)
