"""The gate before any analysis: is this an optic-disc OCT that the measurements and the model can read?

Why: without it a HEYEX dummy of random noise was "analysed" as P(glaucoma) = 1.00. Every check
names its reason in words a reader can act on. ``ok`` is False when a reason makes the numbers
meaningless (not an optic-disc scan, too small a field, no signal, segmentation failed, no disc
in a cube); warnings that leave the numbers usable but qualified keep ``ok`` True and are listed
too. ``score`` (0-1) is the contrast of retina over vitreous, the figure shown as "quality".
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np

from ..core import OctVolume

MIN_CUBE_FOV_MM = 4.5  # the 3.46 mm circle plus a margin for an off-centre disc
MIN_CUBE_BSCANS = 8  # fewer B-scans cannot place a disc (the model card names it: gui.model.card)
CIRCLE_DIAMETER_RANGE_MM = (3.2, 3.8)  # the norms are for a 3.4-3.5 mm circle
MAX_DISC_BSCAN_MM = 0.2  # B-scans further apart than this cannot resolve a cup (~0.4-1 mm tall): no disc measures
MOTION_UM = 100.0  # a step of the retina between neighbouring B-scans that counts as eye motion
MIN_SCORE = 0.2  # random noise scores < 0.05; real and synthetic scans 0.4-0.95
# The gate judges a cube thinned to B-scans at most this far apart and A-scans at most this far apart,
# averaged in depth to about this pixel size (a Cirrus cube: every 4th B-scan, every 2nd A-scan, 6
# pixels in depth). See ``gate_view``.
GATE_BSCAN_MM, GATE_ASCAN_MM, GATE_DEPTH_UM = 0.12, 0.08, 12.0


@dataclass(frozen=True)
class Quality:
    ok: bool
    score: float | None  # 0 (no usable signal) .. 1; None: refused before the signal was measured
    reasons: tuple[str, ...] = ()

    @property
    def signal_text(self) -> str:
        """The score in words: a line scan refused for its pattern read "signal 0.00", which a
        reader takes for no signal, though none was measured."""
        if self.score is None:
            return "signal not measured"
        return f"signal {self.score:.2f} (0-1, below {MIN_SCORE:.2f} refused)"

    def summary(self) -> str:
        """One line, as the window's Structure panel says it (and the CSVs' ``quality`` column)."""
        head = f"{'measured' if self.ok else 'refused'}; {self.signal_text}"
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


def geometry_verdict(volume: OctVolume) -> Quality | None:
    """The refusal that the scan pattern and the geometry alone give (no segmentation), or None.

    Checked before anything is segmented: a valid DICOM of 10000 x 16 x 16 or 2 x 4096 x 4096
    pixels was segmented whole, twice (the gate's thinned copy, then the whole scan to confirm the
    refusal), for 40-120 s and 2 GB, before being refused for its field of view (attack run 5, F3)."""
    pattern = volume.scan_pattern
    if pattern not in ("circle", "volume"):
        return Quality(False, None, (f"a {pattern} scan: structure analysis needs a peripapillary circle scan "
                                    "or an optic-disc cube",))
    if not volume.spacing.known:
        what = "the images give" if volume.source and os.path.isdir(volume.source) else "the file gives"  # H107, Y4
        return Quality(False, None, (f"{what} no physical pixel size, so nothing can be measured in µm",))
    if problem := volume.spacing.problem():  # thinned or segmented, it broke with IndexError/ValueError
        return Quality(False, None, (f"the pixel size is no OCT's ({problem}): nothing is measured",))
    n, depth, width = volume.shape
    if pattern == "volume":
        fov = (n * (volume.spacing.bscan_mm or 0.0), width * volume.spacing.ascan_mm)
        if n < MIN_CUBE_BSCANS or min(fov) < MIN_CUBE_FOV_MM:
            return Quality(False, None, (f"field of view {fov[0]:.1f} x {fov[1]:.1f} mm with {n} B-scans: an "
                                         f"optic-disc cube needs at least {MIN_CUBE_FOV_MM:.1f} mm each way",))
    if depth * volume.spacing.depth_mm < 0.5:
        return Quality(False, None, (f"depth window {depth * volume.spacing.depth_mm * 1000:.0f} µm: too shallow for a "
                                    "retina",))
    return None


def assess_quality(volume: OctVolume, segmentation=None) -> Quality:
    """Refuse or flag, with reasons; ``segmentation`` is computed (ours) when not given."""
    if (refused := geometry_verdict(volume)) is not None:
        return refused
    refuse, warn = [], []
    pattern = volume.scan_pattern
    n, depth, width = volume.shape
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
            refuse.append("no optic disc (Bruch's membrane opening) found in the cube (is it an optic-disc scan?)")
        elif (volume.spacing.bscan_mm or 0.0) > MAX_DISC_BSCAN_MM:
            warn.append(f"B-scans {volume.spacing.bscan_mm:.2f} mm apart: too sparse to measure the disc and cup "
                        "(not reported)")
    return Quality(ok=not refuse, score=score, reasons=tuple(refuse + warn))


def gate_view(volume: OctVolume) -> OctVolume:
    """The scan as the gate judges it: a cube thinned to ``GATE_BSCAN_MM`` between B-scans and
    ``GATE_ASCAN_MM`` between A-scans and averaged in depth to ~``GATE_DEPTH_UM`` pixels (its own
    layers thinned alike); other scans as they are.

    What the gate refuses on (no retina, no signal, a failed segmentation, the retina leaving the
    frame, blinks, no disc) shows at that sampling too, and the thinned cube segments in a tenth of
    the time (0.18 of 1.9 s of CPU for a Cirrus cube). On a 2-core machine this is what keeps the
    gate from holding back the network's result (docs/benchmarks.md). Its quality score reads
    higher than the whole scan's (averaging calms the speckle): the score shown is the whole scan's.
    """
    spacing = volume.spacing
    if volume.scan_pattern != "volume" or not spacing.known or not spacing.bscan_mm:
        return volume
    every_bscan = max(1, min(int(GATE_BSCAN_MM / spacing.bscan_mm + 1e-6), volume.n_bscans // 8))
    every_ascan = max(1, int(GATE_ASCAN_MM / spacing.ascan_mm + 1e-6))
    depth_bin = max(1, int(round(GATE_DEPTH_UM / (spacing.depth_mm * 1000.0))))
    if every_bscan == every_ascan == depth_bin == 1:
        return volume
    step = (slice(None, None, every_bscan), slice(None, None, every_ascan))
    data = volume.data[step[0], :, step[1]]
    depth = data.shape[1] // depth_bin * depth_bin
    if depth_bin > 1:  # pixels averaged in depth, in their own type (the display transform comes after)
        n, _, width = data.shape
        data = data[:, :depth].reshape(n, depth // depth_bin, depth_bin, width).mean(axis=2).astype(data.dtype)
    positions = volume.bscan_positions[::every_bscan] if volume.bscan_positions is not None else None
    layers = {name: np.asarray(a)[step] / depth_bin for name, a in volume.layers.items()}
    return volume.replace(
        data=np.ascontiguousarray(data), bscan_positions=positions, layers=layers,
        spacing=dataclasses.replace(spacing, bscan_mm=spacing.bscan_mm * every_bscan,
                                    ascan_mm=spacing.ascan_mm * every_ascan, depth_mm=spacing.depth_mm * depth_bin))


def gate(volume: OctVolume, source: str = "vendor"):
    """The verdict that stands before the network and before any number: ``assess_quality`` on
    :func:`gate_view` with its own segmentation (the file's when ``source`` is "vendor" and it has
    one). A refusal is confirmed on the whole scan, so the thinned copy never refuses a scan the
    full resolution would pass (on 82 synthetic Cirrus cubes it refused two such, both for "no
    disc"), so a refusal is the whole scan's verdict; a pass may still be overturned there
    (``measure`` assesses the whole scan). Returns ``(quality, scan judged,
    its segmentation)``; the segmentation is None where the scan pattern has none (a line scan)."""
    from .segmentation import segment

    def judge(scan):
        if geometry_verdict(scan) is not None:  # refused from its geometry: nothing to segment
            return assess_quality(scan), None
        seg = segment(scan, source)
        return assess_quality(scan, seg), seg

    if geometry_verdict(volume) is not None:  # a geometry refused as it is, or one the thinning cannot take
        return assess_quality(volume), volume, None
    view = gate_view(volume)
    quality, seg = judge(view)
    if not quality.ok and view is not volume:
        view = volume
        quality, seg = judge(volume)
    return quality, view, seg
