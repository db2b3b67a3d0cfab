"""Peripapillary RNFL: the TSNIT profile on the 3.46 mm circle and its clinical summaries.

Angles are clinical and the same for both eyes: 0 deg temporal, 90 superior, 180 nasal,
270 inferior (TSNIT order). Laterality only decides where temporal lies on the image: on the left
for a right eye (OD) and on the right for a left eye (OS), fundus view, superior up; the first
B-scan of a cube is the most superior one.

Sectors are Garway-Heath's as Spectralis reports them (Garway-Heath et al., Ophthalmology 2000):
T 90 deg, N 110 deg, the four others 40 deg each. Clock hours are numbered as on the fundus
image, so 9 o'clock is temporal in OD and nasal in OS.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

CIRCLE_DIAMETER_MM = 3.46
PROFILE_SAMPLES = 256  # as Cirrus and Stratus report the circle
SECTORS = {"T": (315.0, 45.0), "TS": (45.0, 85.0), "NS": (85.0, 125.0), "N": (125.0, 235.0),
           "NI": (235.0, 275.0), "TI": (275.0, 315.0)}
QUADRANTS = {"T": (315.0, 45.0), "S": (45.0, 135.0), "N": (135.0, 225.0), "I": (225.0, 315.0)}


def profile_angles(n: int = PROFILE_SAMPLES) -> np.ndarray:
    return (np.arange(n) + 0.5) * (360.0 / n)


def clock_hour_centre_deg(hour: int, laterality: str | None) -> float:
    """Clinical angle at the centre of a clock hour (1-12) for this eye."""
    if laterality == "OS":
        return float(((3 - hour) * 30) % 360)
    return float(((hour - 9) * 30) % 360)


def _arc_mean(profile: np.ndarray, start: float, end: float) -> float:
    theta = profile_angles(len(profile))
    span = (end - start) % 360.0
    inside = ((theta - start) % 360.0) < span
    values = profile[inside]
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def summarise(profile: np.ndarray, laterality: str | None) -> dict:
    """Global mean, quadrants, Garway-Heath sectors and clock hours of a TSNIT profile (um)."""
    finite = profile[np.isfinite(profile)]
    return {
        "global": float(finite.mean()) if finite.size else float("nan"),
        "quadrants": {k: _arc_mean(profile, *v) for k, v in QUADRANTS.items()},
        "sectors": {k: _arc_mean(profile, *v) for k, v in SECTORS.items()},
        "clock_hours": {h: _arc_mean(profile, (clock_hour_centre_deg(h, laterality) - 15.0) % 360.0,
                                     (clock_hour_centre_deg(h, laterality) + 15.0) % 360.0)
                        for h in range(1, 13)},
    }


def circle_profile(thickness_um: np.ndarray, n: int = PROFILE_SAMPLES) -> np.ndarray:
    """A circle B-scan's thickness per A-scan, resampled to ``n`` TSNIT samples.

    Spectralis stores the circle B-scan in TSNIT order for both eyes, starting temporally (the
    first A-scan lies temporal of the disc centre: checked on the sample files' localizer).
    Gaps (NaN, e.g. vendor segmentation missing under a vessel) are filled from the neighbours.
    """
    t = np.asarray(thickness_um, np.float64)
    x = (np.arange(t.size) + 0.5) / t.size * 360.0
    ok = np.isfinite(t)
    if ok.sum() < 0.5 * t.size:
        return np.full(n, np.nan)
    t = np.interp(x, x[ok], t[ok], period=360.0)
    # average the A-scans falling in each output bin (768 -> 256 for Spectralis)
    edges = np.linspace(0.0, 360.0, n + 1)
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n - 1)
    sums = np.bincount(idx, t, minlength=n)
    counts = np.bincount(idx, minlength=n)
    out = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    if np.isnan(out).any():
        theta = profile_angles(n)
        good = np.isfinite(out)
        out = np.interp(theta, theta[good], out[good], period=360.0)
    return out


UNSURE_LIMIT = 1.0 / 3.0  # a sector (or profile sample) resting on more unsure A-scans than this is approximate


def arc_unsure(unsure_profile: np.ndarray | None, start: float, end: float, limit: float = UNSURE_LIMIT) -> bool:
    """The arc ``start``-``end`` (clinical degrees) rests on unsure A-scans for more than ``limit`` (0-1 fraction
    per profile sample): its value is approximate. The one rule for sectors, quadrants and clock hours alike."""
    if unsure_profile is None or not len(unsure_profile):
        return False
    share = _arc_mean(np.asarray(unsure_profile, np.float64), start, end)
    return bool(np.isfinite(share) and share > limit)


def uncertain_sectors(unsure_profile: np.ndarray | None, limit: float = UNSURE_LIMIT) -> tuple[str, ...]:
    """Sectors where more than ``limit`` of the circle's A-scans are unsure (0-1 fraction per sample)."""
    return tuple(k for k, v in SECTORS.items() if arc_unsure(unsure_profile, *v, limit))


def uncertain_quadrants(unsure_profile: np.ndarray | None, limit: float = UNSURE_LIMIT) -> tuple[str, ...]:
    """Quadrants (T S N I) resting on unsure A-scans as an uncertain sector does (``arc_unsure``)."""
    return tuple(k for k, v in QUADRANTS.items() if arc_unsure(unsure_profile, *v, limit))


def uncertain_clock_hours(unsure_profile: np.ndarray | None, laterality: str | None,
                          limit: float = UNSURE_LIMIT) -> tuple[int, ...]:
    """Clock hours (1-12, as on the fundus) resting on unsure A-scans as an uncertain sector does."""
    return tuple(h for h in range(1, 13)
                 if arc_unsure(unsure_profile, clock_hour_centre_deg(h, laterality) - 15.0,
                               clock_hour_centre_deg(h, laterality) + 15.0, limit))


def cube_profile(thickness_map_um: np.ndarray, centre_px: tuple[float, float], spacing_mm: tuple[float, float],
                 laterality: str | None, diameter_mm: float = CIRCLE_DIAMETER_MM,
                 n: int = PROFILE_SAMPLES) -> np.ndarray:
    """Resample an en-face RNFL thickness map (n_bscans, width) on the circle around the disc.

    ``centre_px`` is (bscan, ascan) in pixels, ``spacing_mm`` (between B-scans, between A-scans).
    Each sample averages the map over a 3 x 3 neighbourhood (~90 um on Cirrus), as vendors
    average a band around the circle. Returns NaN samples where the circle leaves the cube.
    """
    theta = np.deg2rad(profile_angles(n))
    r = diameter_mm / 2.0
    temporal_sign = -1.0 if laterality != "OS" else 1.0  # temporal is left in OD
    ascan = centre_px[1] + temporal_sign * r * np.cos(theta) / spacing_mm[1]
    bscan = centre_px[0] - r * np.sin(theta) / spacing_mm[0]  # superior = smaller B-scan index
    m = np.asarray(thickness_map_um, np.float64)
    valid = np.isfinite(m)
    filled = np.where(valid, m, 0.0)
    smooth = ndimage.uniform_filter(filled, 3, mode="nearest")
    weight = ndimage.uniform_filter(valid.astype(np.float64), 3, mode="nearest")
    coords = np.stack([bscan, ascan])
    values = ndimage.map_coordinates(smooth, coords, order=1, mode="constant", cval=np.nan)
    weights = ndimage.map_coordinates(weight, coords, order=1, mode="constant", cval=0.0)
    inside = (bscan >= 0) & (bscan <= m.shape[0] - 1) & (ascan >= 0) & (ascan <= m.shape[1] - 1)
    return np.where(inside & (weights > 0.2), values / np.maximum(weights, 1e-6), np.nan)
