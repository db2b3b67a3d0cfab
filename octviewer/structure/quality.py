"""The gate before any analysis: is this an optic-disc OCT that the measurements and the model can read?

Why: without it a HEYEX dummy of random noise was "analysed" as P(glaucoma) = 1.00. Every check
names its reason in words a reader can act on. ``ok`` is False when a reason makes the numbers
meaningless (not an optic-disc scan, too small a field, no signal, segmentation failed, no disc
in a cube); warnings that leave the numbers usable but qualified keep ``ok`` True and are listed
too. ``score`` (0-1) is the contrast of retina over vitreous, the figure shown as "quality".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import OctVolume

MIN_CUBE_FOV_MM = 4.5  # the 3.46 mm circle plus a margin for an off-centre disc
CIRCLE_DIAMETER_RANGE_MM = (3.2, 3.8)  # the norms are for a 3.4-3.5 mm circle
MAX_DISC_BSCAN_MM = 0.2  # B-scans further apart than this cannot resolve a cup (~0.4-1 mm tall): no disc measures
MOTION_UM = 100.0  # a step of the retina between neighbouring B-scans that counts as eye motion
MIN_SCORE = 0.2  # random noise scores < 0.05; real and synthetic scans 0.4-0.95


@dataclass(frozen=True)
class Quality:
    ok: bool
    score: float  # 0 (no usable signal) .. 1
    reasons: tuple[str, ...] = ()

    def summary(self) -> str:
        head = f"{'ok' if self.ok else 'refused'} {self.score:.2f}"
        return head + (": " + "; ".join(self.reasons) if self.reasons else "")


def circle_diameter_mm(volume: OctVolume) -> float | None:
    if volume.scan_pattern != "circle" or not volume.spacing.ascan_mm:
        return None
    return volume.shape[2] * volume.spacing.ascan_mm / np.pi


def signal_score(volume: OctVolume, seg) -> float:
    """Contrast of the retina (ILM to BM) over the vitreous above it, mapped to 0-1.

    Random-pixel volumes have none: the 'retina' and 'vitreous' the paths cut are the same noise.
    """
    display = volume.display()
    n, depth, width = display.shape
    step = max(1, n // 16)  # 16 B-scans tell the contrast as well as all of them, at a tenth of the cost
    z = np.arange(depth)[None, :, None]
    ilm, bm = seg.ilm[::step, None, :], seg.bm[::step, None, :]
    ok = np.isfinite(ilm) & np.isfinite(bm)
    retina = ok & (z >= ilm) & (z <= bm)
    vitreous = ok & (z < ilm - 3)
    if retina.sum() < 100 or vitreous.sum() < 100:
        return 0.0
    d = display[::step]
    r = d[retina].astype(np.float32)
    v = d[vitreous].astype(np.float32)
    spread = float(np.std(v)) + float(np.std(r)) + 1e-6
    contrast = (float(np.median(r)) - float(np.median(v))) / spread
    return float(np.clip(contrast / 2.0, 0.0, 1.0))


def assess_quality(volume: OctVolume, segmentation=None) -> Quality:
    """Refuse or flag, with reasons; ``segmentation`` is computed (ours) when not given."""
    refuse, warn = [], []
    pattern = volume.scan_pattern
    if pattern not in ("circle", "volume"):
        return Quality(False, 0.0, (f"a {pattern} scan: structure analysis needs a peripapillary circle scan "
                                    "or an optic-disc cube",))
    if not volume.spacing.known:
        return Quality(False, 0.0, ("the file gives no physical pixel size, so nothing can be measured in µm",))
    n, depth, width = volume.shape
    if pattern == "volume":
        fov = (n * (volume.spacing.bscan_mm or 0.0), width * volume.spacing.ascan_mm)
        if n < 8 or min(fov) < MIN_CUBE_FOV_MM:
            return Quality(False, 0.0, (f"field of view {fov[0]:.1f} x {fov[1]:.1f} mm with {n} B-scans: an optic-disc "
                                        f"cube needs at least {MIN_CUBE_FOV_MM:.1f} mm each way",))
    if depth * volume.spacing.depth_mm < 0.5:
        return Quality(False, 0.0, (f"depth window {depth * volume.spacing.depth_mm * 1000:.0f} µm: too shallow for a "
                                    "retina",))
    diameter = circle_diameter_mm(volume)
    if diameter is not None and not CIRCLE_DIAMETER_RANGE_MM[0] <= diameter <= CIRCLE_DIAMETER_RANGE_MM[1]:
        warn.append(f"circle diameter {diameter:.2f} mm: the normal figures are for a 3.46 mm circle, "
                    "so no colour classes are given")

    if segmentation is None:
        from .segmentation import segment

        segmentation = segment(volume, "own")
    seg = segmentation
    score = signal_score(volume, seg)
    if score < MIN_SCORE:
        refuse.append(f"signal too weak or no retina visible (quality {score:.2f} < {MIN_SCORE})")

    um = volume.spacing.depth_mm * 1000.0
    retina_um = (seg.bm - seg.ilm) * um
    rnfl_um = (seg.rnfl - seg.ilm) * um
    outside = np.ones_like(retina_um, bool) if seg.disc_mask is None else ~seg.disc_mask
    found = np.isfinite(retina_um) & outside
    plausible = found & (retina_um > 120) & (retina_um < 700) & (rnfl_um >= 0) & (rnfl_um < 400)
    share = plausible.sum() / max(outside.sum(), 1)
    if share < 0.8:
        refuse.append(f"segmentation failed on {100 * (1 - share):.0f}% of A-scans (retina not where a retina is)")
    top_touch = np.isfinite(seg.ilm) & (seg.ilm < 0.02 * depth)
    if top_touch.mean() > 0.05:
        warn.append(f"the retina is cut off at the top of the frame in {100 * top_touch.mean():.0f}% of A-scans")
        if top_touch.mean() > 0.15:
            refuse.append("the retina leaves the top of the frame: thickness there is unknown")
    if seg.source == "vendor":
        missing = ~np.isfinite(seg.ilm) | ~np.isfinite(seg.rnfl)
        if missing.mean() > 0.1:
            refuse.append(f"the file's own segmentation is missing on {100 * missing.mean():.0f}% of A-scans")

    if pattern == "volume":
        means = volume.display().mean(axis=(1, 2))
        blink = means < 0.5 * np.median(means)
        if blink.any():
            which = ", ".join(str(i) for i in np.nonzero(blink)[0][:8])
            warn.append(f"{int(blink.sum())} B-scan(s) dark (blink?): {which}")
            if blink.mean() > 0.1:
                refuse.append("more than 10% of B-scans are dark (blinks)")
        # The retina outside the disc is a smooth bowl: a step between neighbouring B-scans is the
        # eye moving. Raster too sparse (> 100 um between B-scans) to tell is not judged.
        ilm = np.where(outside, seg.ilm, np.nan)
        rows_ok = np.isfinite(ilm).any(axis=1)
        jumps = np.zeros(0)
        if (volume.spacing.bscan_mm or 1.0) <= 0.1 and rows_ok.all():
            jumps = np.abs(np.diff(np.nanmedian(ilm, axis=1) * um))
        if jumps.size and np.nanmax(jumps) > MOTION_UM:
            warn.append(f"eye motion: the retina jumps by up to {np.nanmax(jumps):.0f} µm between B-scans")
        if seg.disc_mask is None:
            refuse.append("no optic disc (Bruch's membrane opening) found in the cube: not an optic-disc scan?")
        elif (volume.spacing.bscan_mm or 0.0) > MAX_DISC_BSCAN_MM:
            warn.append(f"B-scans {volume.spacing.bscan_mm:.2f} mm apart: too sparse to measure the disc and cup "
                        "(not reported)")
    return Quality(ok=not refuse, score=score, reasons=tuple(refuse + warn))
