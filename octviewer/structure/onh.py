"""Optic nerve head in a cube: Bruch's membrane opening (BMO), disc and cup, rim, BMO-MRW.

Why BMO: it is the anatomical disc margin that OCT sees directly (Chauhan & Burgoyne, Am J
Ophthalmol 2013) and what Cirrus and Spectralis use as the disc boundary. Inside the opening there
is no RPE and no Bruch's membrane, so the bright-to-dark edge that Bruch's membrane makes everywhere
else is missing there: the disc is the region of the en-face map of that edge's strength (read on a
robustly fitted Bruch's membrane surface) around the cube's centre where the edge has all but
vanished. Vessel shadows, thin and long, are removed by a morphological opening.

Cup: Cirrus's convention, the part of the disc where the ILM lies deeper than a plane 200 um
anterior to the BMO plane (the plane fitted through Bruch's membrane just outside the opening).
Rim = disc - cup. Vertical cup-to-disc ratio = vertical cup extent / vertical disc extent; the
average ratio is sqrt(cup area / disc area). BMO-MRW: for each BMO point, the shortest 3-D
distance to the ILM (Chauhan et al., Ophthalmology 2015); reported as the mean over the opening.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from ..core import OctVolume

CUP_OFFSET_UM = 200.0
DISC_AREA_RANGE_MM2 = (0.6, 6.0)  # outside this, what was found is not an optic disc
DISC_LEVEL = 0.6  # RPE band darker than this fraction of its median: surely no RPE
DISC_SMOOTH_MM = 0.05
DISC_EDGE_FRACTION = 0.05  # margin: where the Bruch's membrane edge has all but vanished


@dataclass(frozen=True)
class DiscMeasures:
    centre_px: tuple[float, float]  # (bscan, ascan)
    disc_area_mm2: float
    cup_area_mm2: float
    rim_area_mm2: float
    cup_to_disc_vertical: float
    cup_to_disc_average: float
    bmo_mrw_um: float
    cup_mask: np.ndarray  # en-face bool


def _spacing(volume: OctVolume) -> tuple[float, float, float]:
    s = volume.spacing
    return (s.bscan_mm or 0.03, s.depth_mm or 2.0 / volume.shape[1], s.ascan_mm or 0.03)


def find_disc(volume: OctVolume, seg) -> tuple[np.ndarray | None, np.ndarray | None]:
    """BMO points (k, 2) as (bscan, ascan) px and the en-face disc mask, or (None, None)."""
    bscan_mm, depth_mm, ascan_mm = _spacing(volume)
    if seg.rpe_brightness is None:  # vendor layers: the RPE map comes from our own pass
        from .segmentation import _segment_own

        seg = _segment_own(volume)
    rpe = seg.rpe_brightness
    n, width = rpe.shape
    rpe = ndimage.gaussian_filter(rpe, (DISC_SMOOTH_MM / bscan_mm, DISC_SMOOTH_MM / ascan_mm))
    level = float(np.median(rpe))
    if level <= 0:
        return None, None
    radius = (max(1, int(round(0.15 / bscan_mm))), max(1, int(round(0.15 / ascan_mm))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius[1] + 1, 2 * radius[0] + 1))

    def regions(mask):
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
        return ndimage.label(ndimage.binary_fill_holes(mask))

    # The core: clearly without RPE, near the centre of the cube, not touching its edge.
    labels, count = regions(rpe < DISC_LEVEL * level)
    pixel_mm2 = bscan_mm * ascan_mm
    centre = np.array([n / 2.0, width / 2.0])
    core, best_dist = None, np.inf
    for k in range(1, count + 1):
        region = labels == k
        rows, cols = np.nonzero(region)
        if region.sum() * pixel_mm2 < 0.2 or rows.min() == 0 or cols.min() == 0 or rows.max() == n - 1 \
                or cols.max() == width - 1:
            continue
        dist = np.hypot((rows.mean() - centre[0]) * bscan_mm, (cols.mean() - centre[1]) * ascan_mm)
        if dist < best_dist:
            core, best_dist = region, dist
    if core is None:
        return None, None
    # The margin: half-way between the core's brightness and the surrounding RPE's (half maximum).
    inside = float(np.median(rpe[core]))
    threshold = inside + DISC_EDGE_FRACTION * (level - inside)
    labels, _ = regions(rpe < threshold)
    hit = np.unique(labels[core & (labels > 0)])
    if hit.size == 0:
        return None, None
    best = np.isin(labels, hit)
    rows, cols = np.nonzero(best)
    area = best.sum() * pixel_mm2
    if not DISC_AREA_RANGE_MM2[0] <= area <= DISC_AREA_RANGE_MM2[1] or rows.min() == 0 or cols.min() == 0 \
            or rows.max() == n - 1 or cols.max() == width - 1:
        return None, None
    contours, _ = cv2.findContours(best.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=len)[:, 0, :]  # (k, 2) as (x=ascan, y=bscan)
    bmo = np.stack([contour[:, 1], contour[:, 0]], axis=1).astype(np.float32)
    return bmo, best


def disc_measures(volume: OctVolume, seg) -> DiscMeasures | None:
    if seg.disc_mask is None or seg.bmo is None:
        return None
    bscan_mm, depth_mm, ascan_mm = _spacing(volume)
    disc = seg.disc_mask
    n, width = disc.shape
    rows, cols = np.nonzero(disc)
    centre = (float(rows.mean()), float(cols.mean()))
    # BMO plane: least squares through Bruch's membrane on a ring just outside the opening
    ring = ndimage.binary_dilation(disc, iterations=3) & ~disc
    r, c = np.nonzero(ring & np.isfinite(seg.bm))
    if r.size < 10:
        return None
    a = np.c_[np.ones(r.size), r, c]
    coef, *_ = np.linalg.lstsq(a, seg.bm[r, c].astype(np.float64), rcond=None)
    rr, cc = np.mgrid[0:n, 0:width]
    plane = coef[0] + coef[1] * rr + coef[2] * cc
    cup = disc & (seg.ilm > plane - CUP_OFFSET_UM / 1000.0 / depth_mm)
    cup = ndimage.binary_opening(cup)
    pixel_mm2 = bscan_mm * ascan_mm
    disc_area = float(disc.sum() * pixel_mm2)
    cup_area = float(cup.sum() * pixel_mm2)
    disc_rows = np.nonzero(disc.any(axis=1))[0]
    cup_rows = np.nonzero(cup.any(axis=1))[0]
    disc_height = disc_rows.max() - disc_rows.min() + 1
    vertical = (cup_rows.max() - cup_rows.min() + 1) / disc_height if cup_rows.size else 0.0
    return DiscMeasures(
        centre_px=centre, disc_area_mm2=disc_area, cup_area_mm2=cup_area, rim_area_mm2=disc_area - cup_area,
        cup_to_disc_vertical=float(vertical), cup_to_disc_average=float(np.sqrt(cup_area / disc_area)),
        bmo_mrw_um=_bmo_mrw_um(seg, plane, (bscan_mm, depth_mm, ascan_mm)), cup_mask=cup)


def _bmo_mrw_um(seg, plane: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """Mean over BMO points of the shortest distance (um) to the ILM surface."""
    bscan_mm, depth_mm, ascan_mm = spacing
    bmo = seg.bmo[:: max(1, len(seg.bmo) // 90)]
    n, width = seg.ilm.shape
    rr, cc = np.mgrid[0:n, 0:width]
    ok = np.isfinite(seg.ilm)
    surface = np.stack([rr[ok] * bscan_mm, seg.ilm[ok] * depth_mm, cc[ok] * ascan_mm], axis=1)
    widths = []
    for b, a in bmo:
        bi, ai = int(round(b)), int(round(a))
        point = np.array([b * bscan_mm, plane[bi, ai] * depth_mm, a * ascan_mm])
        near = np.abs(surface[:, 0] - point[0]) < 0.8
        if not near.any():
            continue
        d = np.sqrt(((surface[near] - point) ** 2).sum(axis=1)).min()
        widths.append(d * 1000.0)
    return float(np.mean(widths)) if widths else float("nan")
