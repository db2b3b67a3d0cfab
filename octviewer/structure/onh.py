"""Optic nerve head in a cube: Bruch's membrane opening (BMO), disc and cup, rim, BMO-MRW.

Why BMO: it is the anatomical disc margin that OCT sees directly (Chauhan & Burgoyne, Am J
Ophthalmol 2013) and what Cirrus and Spectralis use as the disc boundary. BMO is where Bruch's
membrane ends, not where the RPE ends: in beta-zone atrophy (and where the RPE thins out before
the opening) the membrane runs on bare, seen as the top of the brighter choroid and sclera. So the
en-face map read here is the membrane's edge at its depth in either direction (segmentation's
``bm_strength``), and the opening is found by following the membrane inwards from the periphery,
along rays every 5 degrees, to where its edge fades into the disc interior's level: the inner end
of the first stretch without membrane long enough not to be a vessel shadow. The radii are
located between pixels and made a smooth oval; the disc area is the area of that polygon (a
pixel count is off by a pixel ring, ~15 % of a disc on a 64-B-scan cube).

Depths: each BMO point lies at the depth of Bruch's membrane just outside the opening (its edge
read directly, not the path, which next to the disc can leave the membrane). The BMO reference
plane is fitted through the BMO points. Cup: Cirrus's convention, the part of the disc where the
ILM lies deeper than a plane 200 um anterior to the BMO plane. Rim = disc - cup. Vertical
cup-to-disc ratio = vertical cup extent / vertical disc extent; the average ratio is
sqrt(cup area / disc area). BMO-MRW: for each BMO point, the shortest 3-D distance to the ILM
(Chauhan et al., Ophthalmology 2015); reported as the mean over the opening.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage
from skimage.draw import polygon2mask

from ..core import OctVolume

CUP_OFFSET_UM = 200.0
DISC_AREA_RANGE_MM2 = (0.6, 6.0)  # outside this, what was found is not an optic disc
DISC_LEVEL = 0.6  # membrane strength below this fraction of its median: surely no Bruch's membrane
DISC_SMOOTH_MM = 0.05
DISC_EDGE_FRACTION = 0.15  # the opening: membrane edge under this fraction of its median (disc interior 0.05-0.1)
BMO_RAYS = 72  # BMO points every 5 degrees around the disc centre
BMO_MIN_RADIUS_MM = 0.25  # the smallest BMO (0.6 mm2) has a radius of 0.44 mm
BMO_SMOOTH_RAYS = 5  # running median over 25 degrees: a vessel crossing the margin is one outlier
BMO_HARMONICS = 4  # the opening is a smooth oval: its radius keeps the first four harmonics of angle
BMO_RUN_MM = 0.15  # a stretch without membrane at least this long is the opening, shorter ones vessel shadows
BM_RING_MM = (0.1, 0.3)  # Bruch's membrane read this far outside the opening for the BMO depth


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


def find_disc(volume: OctVolume, seg, membrane: tuple[np.ndarray, np.ndarray] | None = None
              ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """BMO points (k, 3) as (bscan, ascan, depth) px and the en-face disc mask, or (None, None).

    The disc's core (the region around the cube's centre clearly without Bruch's membrane) gives
    the centre of the rays. On each ray the opening is where the membrane's edge, followed inwards,
    falls under ``DISC_EDGE_FRACTION`` of its median strength (interpolated between samples, so not
    tied to the pixel grid, whose B-scan spacing is ~0.1 mm on small cubes). The radii are made a
    smooth oval (running median over angle, then the first harmonics), because the opening is one.
    """
    bscan_mm, depth_mm, ascan_mm = _spacing(volume)
    # the file's own lines carry no membrane strength: the caller reads it around them
    # (``segmentation.membrane_map``) and passes it, so no own path search runs
    strength, edge = membrane if membrane is not None else (seg.bm_strength, seg.bm_edge)
    if strength is None:
        raise ValueError("find_disc needs Bruch's membrane strength: pass membrane= for a file's own lines")
    n, width = strength.shape
    strength = ndimage.gaussian_filter(strength, (DISC_SMOOTH_MM / bscan_mm, DISC_SMOOTH_MM / ascan_mm))
    level = float(np.median(strength))
    if level <= 0:
        return None, None
    core = _disc_core(strength < DISC_LEVEL * level, (bscan_mm, ascan_mm))
    if core is None:
        return None, None
    # the membrane's edge must also stand above the disc interior's typical reading, which on coarse
    # cubes (0.4 mm between B-scans) is noisier than the fraction
    threshold = max(DISC_EDGE_FRACTION * level, float(np.median(strength[core])))
    rows, cols = np.nonzero(core)
    centre = np.array([rows.mean(), cols.mean()])
    radius = _bmo_radii(strength, centre, threshold, (bscan_mm, ascan_mm))
    if radius is None:
        return None, None
    theta = np.arange(BMO_RAYS) * (2 * np.pi / BMO_RAYS)
    bmo_rows = centre[0] - radius * np.sin(theta) / bscan_mm  # superior = smaller B-scan index
    bmo_cols = centre[1] + radius * np.cos(theta) / ascan_mm
    if bmo_rows.min() < 0 or bmo_cols.min() < 0 or bmo_rows.max() > n - 1 or bmo_cols.max() > width - 1:
        return None, None  # the opening leaves the cube: not measurable
    area = _polygon_area_mm2(bmo_rows, bmo_cols, (bscan_mm, ascan_mm))
    if not DISC_AREA_RANGE_MM2[0] <= area <= DISC_AREA_RANGE_MM2[1]:
        return None, None
    disc = polygon2mask((n, width), np.stack([bmo_rows, bmo_cols], axis=1))
    depth = _bm_depth_at(edge, centre, radius, (bscan_mm, ascan_mm))
    bmo = np.stack([bmo_rows, bmo_cols, depth], axis=1).astype(np.float32)
    return bmo, disc


def _disc_core(dark: np.ndarray, spacing_mm: tuple[float, float]) -> np.ndarray | None:
    """The region without Bruch's membrane nearest the cube's centre, vessel shadows (thin and
    long) removed by a morphological opening, not touching the cube's edge."""
    bscan_mm, ascan_mm = spacing_mm
    n, width = dark.shape
    radius = (max(1, int(round(0.15 / bscan_mm))), max(1, int(round(0.15 / ascan_mm))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius[1] + 1, 2 * radius[0] + 1))
    mask = cv2.morphologyEx(dark.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    labels, count = ndimage.label(ndimage.binary_fill_holes(mask))
    centre = np.array([n / 2.0, width / 2.0])
    core, best_dist = None, np.inf
    for k in range(1, count + 1):
        region = labels == k
        rows, cols = np.nonzero(region)
        if region.sum() * bscan_mm * ascan_mm < 0.2 or rows.min() == 0 or cols.min() == 0 \
                or rows.max() == n - 1 or cols.max() == width - 1:
            continue
        dist = np.hypot((rows.mean() - centre[0]) * bscan_mm, (cols.mean() - centre[1]) * ascan_mm)
        if dist < best_dist:
            core, best_dist = region, dist
    return core


def _bmo_radii(strength: np.ndarray, centre: np.ndarray, threshold: float,
               spacing_mm: tuple[float, float]) -> np.ndarray | None:
    """BMO radius (mm) on each ray from ``centre``: where Bruch's membrane, followed inwards from
    the periphery, ends: the outer end of the first stretch, coming from outside, where the strength
    stays under ``threshold`` for ``BMO_RUN_MM`` (shorter dips are vessel shadows)."""
    bscan_mm, ascan_mm = spacing_mm
    step = 0.25 * min(bscan_mm, ascan_mm)
    r = np.arange(BMO_MIN_RADIUS_MM, 2.0, step)
    theta = np.arange(BMO_RAYS) * (2 * np.pi / BMO_RAYS)
    rows = centre[0] - r[None, :] * np.sin(theta)[:, None] / bscan_mm
    cols = centre[1] + r[None, :] * np.cos(theta)[:, None] / ascan_mm
    profile = ndimage.map_coordinates(strength, [rows, cols], order=1, mode="constant", cval=np.nan)
    below = (profile < threshold).astype(np.int32)  # NaN (outside the cube) counts as membrane
    run = max(2, int(round(BMO_RUN_MM / step)))
    total = np.cumsum(np.pad(below, ((0, 0), (1, 0))), axis=1)
    sustained = (total[:, run:] - total[:, :-run]) == run  # window ending at index j + run - 1
    has = sustained.any(axis=1)
    if has.sum() < BMO_RAYS // 2:
        return None
    end = sustained.shape[1] - 1 - np.argmax(sustained[:, ::-1], axis=1) + run - 1  # outer end of the run
    i = np.minimum(end, r.size - 2)
    k = np.arange(BMO_RAYS)
    lo, hi = profile[k, i], profile[k, i + 1]
    frac = np.clip((threshold - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)
    frac = np.where(np.isfinite(frac), frac, 0.0)
    radius = np.where(has, r[i] + frac * step, np.nan)
    known = np.isfinite(radius)
    radius = np.interp(theta, theta[known], radius[known], period=2 * np.pi)
    half = BMO_SMOOTH_RAYS // 2
    radius = np.median(np.stack([np.roll(radius, k) for k in range(-half, half + 1)]), axis=0)
    spectrum = np.fft.rfft(radius)
    spectrum[BMO_HARMONICS + 1:] = 0
    return np.fft.irfft(spectrum, BMO_RAYS)


def _polygon_area_mm2(rows: np.ndarray, cols: np.ndarray, spacing_mm: tuple[float, float]) -> float:
    y, x = rows * spacing_mm[0], cols * spacing_mm[1]
    return float(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _bm_depth_at(edge: np.ndarray, centre: np.ndarray, radius: np.ndarray,
                 spacing_mm: tuple[float, float]) -> np.ndarray:
    """Depth (px) of Bruch's membrane at each BMO point: the median depth of the membrane's edge on
    its ray just outside the opening (``BM_RING_MM``), smoothed over neighbouring rays."""
    bscan_mm, ascan_mm = spacing_mm
    theta = np.arange(BMO_RAYS) * (2 * np.pi / BMO_RAYS)
    r = radius[:, None] + np.linspace(*BM_RING_MM, 8)[None, :]
    rows = centre[0] - r * np.sin(theta)[:, None] / bscan_mm
    cols = centre[1] + r * np.cos(theta)[:, None] / ascan_mm
    depth = np.nanmedian(ndimage.map_coordinates(edge, [rows, cols], order=0, mode="constant", cval=np.nan), axis=1)
    half = BMO_SMOOTH_RAYS // 2
    return np.nanmedian(np.stack([np.roll(depth, k) for k in range(-half, half + 1)]), axis=0)


def disc_measures(volume: OctVolume, seg, cup_offset_um: float = CUP_OFFSET_UM) -> DiscMeasures | None:
    """Disc, cup and rim; ``cup_offset_um`` anterior to the BMO plane is the cup's reference
    (Cirrus's 200 um by default; 0 gives the cup as the ILM behind the BMO plane)."""
    if seg.disc_mask is None or seg.bmo is None or not np.isfinite(seg.bmo).all():
        return None
    bscan_mm, depth_mm, ascan_mm = _spacing(volume)
    disc = seg.disc_mask
    n, width = disc.shape
    bmo = seg.bmo.astype(np.float64)
    centre = (float(bmo[:, 0].mean()), float(bmo[:, 1].mean()))
    # BMO reference plane: least squares through the BMO points (Chauhan & Burgoyne 2013)
    coef, *_ = np.linalg.lstsq(np.c_[np.ones(len(bmo)), bmo[:, :2]], bmo[:, 2], rcond=None)
    rr, cc = np.mgrid[0:n, 0:width]
    plane = coef[0] + coef[1] * rr + coef[2] * cc
    cup = disc & (seg.ilm > plane - cup_offset_um / 1000.0 / depth_mm)
    cup = ndimage.binary_opening(cup)
    disc_area = _polygon_area_mm2(bmo[:, 0], bmo[:, 1], (bscan_mm, ascan_mm))
    cup_area = min(float(cup.sum() * bscan_mm * ascan_mm), disc_area)
    disc_height = (bmo[:, 0].max() - bmo[:, 0].min()) * bscan_mm
    cup_rows = np.nonzero(cup.any(axis=1))[0]
    cup_height = (cup_rows.max() - cup_rows.min() + 1) * bscan_mm if cup_rows.size else 0.0
    return DiscMeasures(
        centre_px=centre, disc_area_mm2=disc_area, cup_area_mm2=cup_area, rim_area_mm2=disc_area - cup_area,
        cup_to_disc_vertical=float(min(cup_height / disc_height, 1.0)),
        cup_to_disc_average=float(np.sqrt(cup_area / disc_area)),
        bmo_mrw_um=_bmo_mrw_um(seg, (bscan_mm, depth_mm, ascan_mm)), cup_mask=cup)


def _bmo_mrw_um(seg, spacing: tuple[float, float, float]) -> float:
    """Mean over BMO points of the shortest distance (um) to the ILM surface."""
    bscan_mm, depth_mm, ascan_mm = spacing
    n, width = seg.ilm.shape
    rr, cc = np.mgrid[0:n, 0:width]
    ok = np.isfinite(seg.ilm)
    surface = np.stack([rr[ok] * bscan_mm, seg.ilm[ok] * depth_mm, cc[ok] * ascan_mm], axis=1)
    widths = []
    for b, a, z in seg.bmo:
        point = np.array([b * bscan_mm, z * depth_mm, a * ascan_mm])
        near = np.abs(surface[:, 0] - point[0]) < 0.8
        if not near.any():
            continue
        d = np.sqrt(((surface[near] - point) ** 2).sum(axis=1)).min()
        widths.append(d * 1000.0)
    return float(np.mean(widths)) if widths else float("nan")
