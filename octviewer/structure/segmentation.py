"""Retinal layer segmentation by shortest paths on gradient images (Chiu et al., Opt Express 2010).

Why this method: it is the classic, well-understood graph approach that needs no training data, so
it behaves the same on every device's files and its failures are visible and explainable. Each
boundary is the minimum-cost left-to-right path through a B-scan whose cost is low on the edge that
boundary is made of (dark-to-bright for the ILM, bright-to-dark for the RNFL outer boundary and
Bruch's membrane). Because every edge of Chiu's graph goes from one A-scan to the next, the
shortest path is found exactly by dynamic programming column by column (the same optimum
Dijkstra or scikit-image's ``route_through_array`` would find on that graph, but vectorised over
all B-scans of a cube at once, which is what keeps a Cirrus cube under two seconds).

Steps: the B-scans are averaged axially to about 8 um per pixel for the path search, smoothed
(also across neighbouring B-scans in a cube, so that paths agree between neighbours), the three
boundaries are found in order (ILM, then Bruch's membrane below it, then the RNFL outer boundary
between them), the surfaces are median-filtered across B-scans, and each boundary is refined at
full axial resolution within one coarse pixel.

Vendor segmentation (Heidelberg's ILM/RNFL/BM) is used when the file carries it, unless the
caller asks for ours.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..core import OctVolume

logger = logging.getLogger(__name__)

COARSE_UM = 8.0  # axial pixel size for the path search
ACROSS_MM = 0.1  # smoothing across B-scans, at most one B-scan
ILM_LATERAL_SIGMA = 0.5  # A-scans: the ILM's search image is smoothed less along the B-scan (steep cup walls)
VENDOR_LAYERS = ("ILM", "RNFL", "BM")
# RNFL outer boundary: tissue dimmer than this fraction of the RNFL just under the ILM is not RNFL.
# Chosen on the two real Spectralis circles (fourth-root grey scale) and the synthetic cubes; unverified
# on real Cirrus files.
RNFL_DIM_LEVEL = 0.75
RNFL_DIM_UM, RNFL_LIT, RNFL_REF_UM = 40.0, 2.0, 30.0
SHADOW_LEVEL, SHADOW_GROW_FRACTION = 0.7, 0.002
VESSEL_SPAN_MM = 0.4  # an arcade artery and vein side by side (~150 um each) with the gap between them
VESSEL_NEAR_MM = 0.15  # how far from a vessel's shadow its lumen can pull the RNFL boundary up
RPE_REACH_UM = 24.0
# Bruch's membrane is a smooth surface: a path further than this from a robust quadratic fit over the cube
# has left it (the fit drops such points; inside the disc opening the line is drawn across, see
# _bm_across_opening)
BM_SURFACE_UM = 40.0
# Where the segmentation is unsure, per A-scan (bit flags in ``Segmentation.unsure``): the thickness there
# is interpolated or may be wrong, and the report says how much of the circle that is.
UNSURE_VESSEL, UNSURE_SIGNAL, UNSURE_EDGE, UNSURE_DISC = 1, 2, 4, 8
UNSURE_REASONS = {UNSURE_VESSEL: "vessel shadow", UNSURE_SIGNAL: "low signal",
                  UNSURE_EDGE: "RNFL/GCL boundary uncertain", UNSURE_DISC: "disc margin"}
# The RNFL's outer edge is judged on the B-scan flattened to the ILM and averaged along it (EDGE_ALONG_UM),
# as the step between the mean brightness EDGE_WINDOW_UM above and below the boundary, against the speckle
# noise measured in the same image: weaker than EDGE_SNR noise units, or a step at least as strong lying
# higher up in the RNFL (the boundary may have run on to the GCL/IPL), and it is unsure.
EDGE_WINDOW_UM, EDGE_ALONG_UM, EDGE_SAMPLE_UM, EDGE_SNR = 16.0, 60.0, 4.0, 3.0
EDGE_GUARD_UM = 24.0  # a step closer than this above the boundary is the same edge
EDGE_MAX_UM = 300.0  # thicker RNFL is found only next to the disc
EDGE_BSCAN_MM = 0.06
LOW_SIGNAL = 0.5  # RNFL brightness (over the background) under this fraction of the scan's median
DISC_MARGIN_MM = 0.2
# The learned RNFL boundary (_rnfl_learned): used on scans more speckled than NET_SPECKLE (single frames:
# ~0.3; averaged Spectralis circles ~0.07) whose depth pixels are at most NET_PIXEL_UM, on B-scans
# NET_BSCAN_MM apart in cubes; its path may move NET_MAX_STEP samples (8 um) between the net's columns
# (60 um) at NET_STEP_COST each. The net reads the B-scan resampled to 8 um samples (trained on 2 um
# pixels, each sample a mean of four), so any pixel up to one sample can feed it. The limit was 4 um
# until a walk-through found the demo's advanced eye (6.25 um pixels, speckled) measured at a normal
# 101 um against its true 54: the path search followed the GCL/IPL there, as on every generator-3.0
# speckled cube (12 `small` eyes, 7.8 um pixels: RNFL thickness 41.1 um from the truth by the path
# search, 10.4 by the net; docs/structure.md). Averaged scans are kept out by NET_SPECKLE, not by size.
NET_SPECKLE, NET_PIXEL_UM, NET_BSCAN_MM, NET_MAX_STEP, NET_STEP_COST = 0.15, 8.0, 0.12, 3, 0.3
# Where the learned boundary is used, its A-scans are unsure (UNSURE_EDGE) where the net itself expects the
# boundary further than NET_UNSURE_UM from where it was placed (rnfl_net.spread). The visible-step test
# judged the step the net does not need: it flagged 67-88 % of every speckled scan, the good A-scans with
# the bad (docs/structure.md, "Where it is unsure").
NET_UNSURE_UM = 10.0


@dataclass(frozen=True)
class Segmentation:
    """Boundary depths in pixels of the volume's depth axis, shaped (n_bscans, width); NaN = none.

    ``bmo`` holds Bruch's membrane opening points (bscan, ascan) in pixels for cubes where the
    disc was found; ``disc_mask`` is the en-face region inside the BMO. ``edge_strength`` (0-1)
    is the mean normalised gradient along the paths: how clearly the boundaries were seen.
    """

    ilm: np.ndarray
    rnfl: np.ndarray
    bm: np.ndarray
    source: str  # "vendor" or "own"
    edge_strength: float = float("nan")
    bmo: np.ndarray | None = None
    disc_mask: np.ndarray | None = None
    bm_strength: np.ndarray | None = None  # en-face (n_bscans, width) Bruch's membrane edge strength: low in the disc
    bm_edge: np.ndarray | None = None  # en-face depth (px) of that edge: Bruch's membrane read without the path
    unsure: np.ndarray | None = None  # (n_bscans, width) uint8 UNSURE_* flags, 0 where the boundaries are sure
    notes: tuple[str, ...] = ()  # what the report must say about how the boundaries were found (``_rnfl_learned``)

    def as_layers(self) -> dict[str, np.ndarray]:
        """The boundaries under the names the viewer already draws (eyepy's)."""
        return {"ILM": self.ilm, "RNFL": self.rnfl, "BM": self.bm}


def vendor_segmentation(volume: OctVolume) -> Segmentation | None:
    """The file's own ILM/RNFL/BM, if it has all three with some finite values."""
    layers = volume.layers
    if not all(name in layers for name in VENDOR_LAYERS):
        return None
    arrays = [np.asarray(layers[name], np.float32) for name in VENDOR_LAYERS]
    if any(a.shape != (volume.n_bscans, volume.shape[2]) or not np.isfinite(a).any() for a in arrays):
        return None
    ilm, rnfl, bm = arrays
    unsure = unsure_flags(volume, ilm, rnfl, bm)
    return Segmentation(ilm=ilm, rnfl=rnfl, bm=bm, source="vendor", unsure=unsure)


def segment(volume: OctVolume, source: str = "own") -> Segmentation:
    """ILM, RNFL outer boundary and Bruch's membrane for every B-scan of ``volume``.

    ``source="vendor"`` returns the file's segmentation when it has one and falls back to ours.
    In cubes the optic disc (BMO points and mask) is added by :mod:`octviewer.structure.onh`.
    """
    if source not in ("vendor", "own"):
        raise ValueError(f"segmentation source must be 'vendor' or 'own', got {source!r}")
    seg = vendor_segmentation(volume) if source == "vendor" else None
    if seg is None:
        seg = _segment_own(volume)
    if volume.scan_pattern == "volume" and volume.n_bscans >= 8:
        from .onh import find_disc

        membrane = membrane_map(volume, seg.ilm, seg.bm) if seg.bm_strength is None else None
        bmo, disc_mask = find_disc(volume, seg, membrane)
        unsure = seg.unsure
        if disc_mask is not None and unsure is not None:
            s = volume.spacing
            distance = ndimage.distance_transform_edt(~disc_mask, sampling=(s.bscan_mm or 0.03, s.ascan_mm or 0.03))
            unsure = unsure | np.where(distance <= DISC_MARGIN_MM, UNSURE_DISC, 0).astype(np.uint8)
        bm = seg.bm
        if seg.source == "own" and disc_mask is not None:
            bm = _bm_across_opening(seg.bm, disc_mask, _depth_um(volume) or 2000.0 / volume.shape[1])
        seg = dataclasses.replace(seg, bm=bm, bmo=bmo, disc_mask=disc_mask, unsure=unsure)
    return seg


def _bm_across_opening(bm: np.ndarray, disc_mask: np.ndarray, um_z: float) -> np.ndarray:
    """Our Bruch's membrane across the disc opening: a straight line along each B-scan between the
    membrane's ends, where the path had none to follow.

    Why: inside the opening there is no RPE and no membrane, and the RPE search's cost (bright tissue
    under a dark layer) is lower in the dark tissue deep under the disc than across the opening at the
    membrane's level, so the path left the membrane 0.2-0.4 mm before the opening and dipped into the
    cup as a V (the demo's normal OD, B-scan 33: 300 um deep). Bruch's membrane is a smooth surface:
    the stretches of each B-scan where our line lies more than ``BM_SURFACE_UM`` from a robust
    quadratic fit over the cube (the same fit the membrane map uses), or inside the opening, and that
    reach into the opening, are replaced by the line between the membrane on either side. Stretches
    off the surface that do not reach the opening are left alone (the eye's own shape), as are
    stretches that run to the B-scan's end (no membrane on that side to draw from).
    """
    filled = _fill_nan(bm)
    _, keep = _smooth_surface(filled, BM_SURFACE_UM / um_z)
    off = ~keep | disc_mask
    out = np.array(bm, np.float32)
    x = np.arange(bm.shape[1])
    for b in np.nonzero(disc_mask.any(axis=1))[0]:
        labels, count = ndimage.label(off[b])
        replace = np.zeros(bm.shape[1], bool)
        for k in range(1, count + 1):
            run = labels == k
            if (run & disc_mask[b]).any() and not run[0] and not run[-1]:
                replace |= run
        if replace.any():
            out[b, replace] = np.interp(x[replace], x[~replace], filled[b, ~replace])
    return out


def _depth_um(volume: OctVolume) -> float | None:
    return volume.spacing.depth_mm * 1000.0 if volume.spacing.depth_mm else None


def _clip(a: np.ndarray, hi: float = 1.0) -> np.ndarray:
    """In-place clip to [0, hi] (np.clip allocates and is several times slower on big arrays)."""
    np.maximum(a, 0.0, out=a)
    return np.minimum(a, hi, out=a)


@dataclass
class _Edges:
    """A volume prepared for the path searches: the tissue rows of the axially averaged B-scans on
    the grey scale 0 (background) .. 1 (brightest tissue), and their depth gradients."""

    display: np.ndarray  # the volume's grey values (full resolution)
    img: np.ndarray  # (n, rows, width), smoothed
    rise: np.ndarray  # dark above, bright below, 0-1
    fall: np.ndarray  # bright above, dark below, 0-1
    grey: object  # lateral sigma (A-scans) -> the same rows smoothed that much along the B-scan
    gnorm: float
    z0: int  # first coarse row kept
    factor: int  # full-resolution pixels per coarse pixel
    px_um: float  # coarse pixel size
    across: float  # 1 in cubes (smoothing across B-scans), 0 otherwise

    def to_coarse(self, full_px: np.ndarray) -> np.ndarray:
        """Full-resolution depths (px) as coarse rows of ``img``; NaN filled along each B-scan."""
        rows = (np.asarray(full_px, np.float32) - (self.factor - 1) / 2.0) / self.factor - self.z0
        return np.clip(_fill_nan(rows), 0, self.img.shape[1] - 1)

    def to_full(self, coarse_rows: np.ndarray) -> np.ndarray:
        return (coarse_rows + self.z0) * self.factor + (self.factor - 1) / 2.0


def _fill_nan(a: np.ndarray) -> np.ndarray:
    """NaN filled from the nearest finite value along each row (the median where a row has none)."""
    a = np.array(a, np.float32)
    bad = ~np.isfinite(a)
    if not bad.any():
        return a
    fallback = float(np.nanmedian(a)) if np.isfinite(a).any() else 0.0
    x = np.arange(a.shape[1])
    for b in np.nonzero(bad.any(axis=1))[0]:
        ok = ~bad[b]
        a[b] = np.interp(x, x[ok], a[b, ok]) if ok.any() else fallback
    return a


def _edges(volume: OctVolume) -> _Edges:
    display = volume.display()  # the grey values readers see; Spectralis through its fourth root
    n, depth, width = display.shape
    um = _depth_um(volume) or 2000.0 / depth  # unknown spacing: assume a 2 mm window
    factor = max(1, int(round(COARSE_UM / um)))
    zc = depth // factor
    px_um = um * factor
    coarse = display[:, : zc * factor, :].reshape(n, zc, factor, width).mean(axis=2, dtype=np.float32)
    across = 1.0 if (volume.scan_pattern == "volume" and n > 1) else 0.0
    # smoothed over ~0.1 mm across B-scans (one B-scan on Cirrus and Spectralis ONH cubes): wider
    # would blend layers that lie at other depths in B-scans far apart
    sigma = (min(across, ACROSS_MM / (volume.spacing.bscan_mm or 0.03)), 1.0, 1.5)
    # Grey levels (background = median, brightest tissue = 99.5th percentile) and the depth rows
    # that hold tissue anywhere, from a subsampled copy; the search then skips the empty vitreous
    # and sclera (about half a Cirrus window) and finds the same paths in about half the time.
    sub = ndimage.gaussian_filter(coarse[:: max(1, n // 32)], (0, 1.0, 1.5), mode="nearest")
    sub = sub[:, :, :: max(1, width // 64)]
    lo, hi = np.percentile(sub, [50, 99.5])
    scale = 1.0 / max(hi - lo, 1e-6)
    # Background per depth row: where the noise floor is brighter near the top of the window than the
    # scan's median (near zero delay), the vitreous there would read as tissue and the ILM path would
    # start at the top of the frame. The background never brightens with depth, so the rows' lower
    # quartile, taken as a running minimum from the top, follows it without ever reaching into tissue.
    lo = np.maximum(np.minimum.accumulate(np.percentile(sub, 25, axis=(0, 2))), lo).astype(np.float32)[None, :, None]
    pad = int(round(200.0 / px_um))
    tissue_rows = np.nonzero(((sub - lo) * scale > 0.35).mean(axis=(0, 2)) > 0.01)[0]
    z0, z1 = (max(0, tissue_rows[0] - pad), min(zc, tissue_rows[-1] + pad + 1)) if tissue_rows.size else (0, zc)

    def grey(lateral_sigma: float) -> np.ndarray:
        """The tissue rows, smoothed, on the grey scale 0 = background .. 1 = brightest tissue."""
        out = ndimage.gaussian_filter(coarse[:, z0:z1, :], sigma=(sigma[0], sigma[1], lateral_sigma), mode="nearest")
        out -= lo[:, z0:z1]
        out *= scale
        return _clip(out)

    img = grey(sigma[2])
    grad = _depth_gradient(img)
    gnorm = max(float(np.percentile(np.abs(grad[:, ::2, ::2]), 99.5)), 1e-6)
    rise = _clip(grad * (1.0 / gnorm))  # dark above, bright below
    fall = _clip(grad * (-1.0 / gnorm))  # bright above, dark below
    del grad
    return _Edges(display=display, img=img, rise=rise, fall=fall, grey=grey, gnorm=gnorm, z0=int(z0), factor=factor,
                  px_um=px_um, across=across)


def _depth_gradient(a: np.ndarray) -> np.ndarray:
    grad = np.zeros_like(a)
    np.subtract(a[:, 2:, :], a[:, :-2, :], out=grad[:, 1:-1, :])
    return grad


def membrane_map(volume: OctVolume, ilm: np.ndarray, bm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bruch's membrane strength and edge depth (full-resolution px), en-face, read around given
    ILM and BM lines (the file's own): what the disc search needs, without any path search."""
    e = _edges(volume)
    strength, edge = _bm_strength(e.fall, e.rise, e.to_coarse(ilm), e.to_coarse(bm), e.px_um)
    return strength, e.to_full(edge)


def _segment_own(volume: OctVolume) -> Segmentation:
    e = _edges(volume)
    display = e.display
    img, rise, fall, grey, gnorm = e.img, e.rise, e.fall, e.grey, e.gnorm
    z0, factor, px_um, across = e.z0, e.factor, e.px_um, e.across
    n, zc, width = img.shape
    z = np.arange(zc, dtype=np.float32)[None, :, None]
    step = max(2, int(np.ceil(3.0 * (volume.spacing.ascan_mm or 0.03) * 1000.0 / px_um / 4)))

    # ILM: the first strong rise; tissue above it is penalised so deeper rises (IS/OS, RPE) lose.
    # Searched on its own, laterally less smoothed image: on a steep cup wall the wider blur lets the
    # shallower tissue of the neighbouring A-scans bleed in and the path rides up the wall (small
    # steep cups read ~16 % small). The vitreous above the ILM is dark, so little smoothing is needed.
    img_ilm = grey(ILM_LATERAL_SIGMA)
    rise_ilm = _clip(_depth_gradient(img_ilm) * (1.0 / gnorm))
    above = np.cumsum(img_ilm > 0.35, axis=1, dtype=np.float32)
    del img_ilm
    above *= px_um / 40.0
    cost_ilm = _clip(above, 2.0)
    cost_ilm += 1.0
    cost_ilm -= rise_ilm
    del rise_ilm
    ilm_c = _shortest_path_free(cost_ilm, step_cost=0.02)
    del above, cost_ilm
    ilm_b = ilm_c[:, None, :]

    # RPE: the brightest band below the ILM with the dark outer nuclear layer above it (which the
    # thick RNFL next to the disc does not have; the vitreous over a cup wall does not count as that
    # dark layer); Bruch's membrane is the fall at its bottom.
    under_ilm = np.take_along_axis(img, np.minimum(ilm_b + 2, zc - 1), 1)
    dark_cum = np.cumsum((img < 0.6 * under_ilm) & (z > ilm_b), axis=1, dtype=np.float32)
    onl_win = int(round(150.0 / px_um))
    dark_cum[:, onl_win:, :] -= dark_cum[:, :-onl_win, :].copy()
    cost_rpe = (dark_cum < 20.0 / px_um).astype(np.float32)
    cost_rpe += 1.0
    cost_rpe -= img
    cost_rpe[(z < ilm_b + 120.0 / px_um) | (z > ilm_b + 900.0 / px_um)] = 4.0
    # In the cup (where the ILM lies deeper than 120 um under the retinal surface taken across it: a
    # morphological opening removes dips narrower than 2 mm) there is no RPE to follow: the path
    # crosses at no cost, 120-900 um under that surface, so that it is not pulled off Bruch's
    # membrane outside the disc towards the cup floor.
    span = max(1, int(round(2.0 / (volume.spacing.ascan_mm or 0.03))))
    surface = ndimage.grey_opening(ilm_c, size=(1, span), mode="wrap" if volume.scan_pattern == "circle"
                                   else "nearest")[:, None, :]
    in_cup = (ilm_b > surface + 120.0 / px_um) & (z >= surface + 120.0 / px_um) & (z <= surface + 900.0 / px_um)
    cost_rpe[np.broadcast_to(in_cup, cost_rpe.shape)] = 1.0
    rpe_c = _shortest_path(cost_rpe, max_step=max(step, 3), step_cost=0.08)
    del dark_cum, cost_rpe
    rpe_b = rpe_c[:, None, :]
    cost_bm = 1.0 - fall
    cost_bm[(z < rpe_b) | (z > rpe_b + 45.0 / px_um)] = 4.0
    bm_c = _shortest_path(cost_bm, max_step=max(step // 2, 2), step_cost=0.05)
    del cost_bm

    bm_strength, bm_edge = _bm_strength(fall, rise, ilm_c, bm_c, px_um) if across else (None, None)
    if bm_edge is not None:
        bm_edge = (bm_edge + z0) * factor + (factor - 1) / 2.0
    paths = [ilm_c + z0, bm_c + z0]
    if across:
        paths = [ndimage.median_filter(p, size=(3, 1), mode="nearest") for p in paths]
    strength = float(np.mean([np.take_along_axis(rise, ilm_c[:, None, :].astype(np.intp), 1).mean(),
                              np.take_along_axis(fall, bm_c[:, None, :].astype(np.intp), 1).mean()]))
    signal = display.astype(np.float32) if factor == 1 else display
    ilm = _refine(signal, paths[0], factor, rising=True)
    bm = _refine(signal, paths[1], factor, rising=False)

    # RNFL outer boundary: on speckled scans the learned cost (_rnfl_learned); elsewhere _rnfl_path,
    # relative to the RNFL's brightness just under the ILM.
    notes: tuple[str, ...] = ()
    try:
        learned = _rnfl_learned(volume, display, ilm, bm)
    except (FileNotFoundError, ValueError) as error:
        # an install without its RNFL boundary model (a `git archive` export, a damaged file) measured a speckled
        # scan with the path search, silently: the demo's RNFL 101 instead of 89 um (attack run 16, H100)
        logger.warning("RNFL boundary model not used: %s", error)
        learned, notes = None, (f"{error}: the RNFL outer boundary of this speckled scan is from the path "
                                "search, which reads it too thick on such scans; reinstall octviewer",)
    rnfl, spread_um = learned if learned is not None else (None, None)
    if rnfl is None:
        ref_rows = np.arange(2, 2 + max(2, int(round(RNFL_REF_UM / px_um))))
        near = np.minimum(ilm_b + ref_rows[None, :, None], zc - 1)
        ref = ndimage.uniform_filter1d(np.take_along_axis(img, near, 1).mean(axis=1, keepdims=True), 9, axis=2,
                                       mode="wrap" if volume.scan_pattern == "circle" else "nearest")
        forbidden = (z <= ilm_b) | (z > bm_c[:, None, :] - 60.0 / px_um)
        rnfl_c = _rnfl_path(img, fall, ref, ilm_b, forbidden, RNFL_DIM_LEVEL, px_um, max(step, 3)) + z0
        if across:
            rnfl_c = ndimage.median_filter(rnfl_c, size=(3, 1), mode="nearest")
        rnfl = np.clip(_refine(signal, rnfl_c, factor, rising=False), ilm, bm)
    shadow = _vessel_shadows(img, bm_c, px_um, volume.scan_pattern == "circle")
    rnfl = _vessels_in_rnfl(ilm, rnfl, bm, shadow, volume.spacing.ascan_mm or 0.03, volume.scan_pattern == "circle")
    unsure = unsure_flags(volume, ilm, rnfl, bm, shadow=shadow, display=display, spread_um=spread_um)
    if notes:  # the path search on a speckled scan: every A-scan's RNFL boundary unsure, so no sector, class or
        # global figure reads as precise (the advanced demo's "98 um (normal)" against 53 with the model: H115, Z4)
        unsure = unsure | np.uint8(UNSURE_EDGE)
    return Segmentation(ilm=ilm, rnfl=rnfl, bm=bm, source="own", edge_strength=strength,
                        bm_strength=bm_strength, bm_edge=bm_edge, unsure=unsure, notes=notes)


def _rnfl_learned(volume: OctVolume, display: np.ndarray, ilm: np.ndarray,
                  bm: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The RNFL outer boundary from the learned cost (:mod:`.rnfl_net`) on speckled (single-frame)
    scans with fine depth pixels, and per A-scan how far (um) the net expects it to lie from there
    (``rnfl_net.spread``: what the unsure flag judges); None where the scan is averaged (there the path
    search meets its targets) or sampled coarser than the net was trained on; a missing or unreadable
    model file raises (``rnfl_net.load``), for the caller to say. The net's cost is followed by the same
    shortest-path search, in the band under the ILM; in dense cubes the net runs on B-scans
    ``NET_BSCAN_MM`` apart and both are interpolated between them."""
    from . import rnfl_net

    um_z = _depth_um(volume) or 2000.0 / display.shape[1]
    um_x = (volume.spacing.ascan_mm or 0.03) * 1000.0
    ilm_f, bm_f = _fill_nan(ilm), _fill_nan(bm)
    if um_z > NET_PIXEL_UM or not rnfl_net.speckle(display, ilm_f, um_z) > NET_SPECKLE:
        return None
    layers, _ = rnfl_net.load()
    n, depth, width = display.shape
    periodic = volume.scan_pattern == "circle"
    every = max(1, int(NET_BSCAN_MM / volume.spacing.bscan_mm + 1e-6)) if n > 1 and volume.spacing.bscan_mm else 1
    picked = np.arange(0, n, every)
    if picked[-1] != n - 1:
        picked = np.append(picked, n - 1)
    x, centres, _ = rnfl_net.band(display[picked], ilm_f[picked], bm_f[picked], um_z, um_x, periodic)
    cost, p = rnfl_net.cost(rnfl_net.logits(x, layers, periodic=periodic))
    cost[:, : rnfl_net.ABOVE, :] = 20.0  # never above the ILM
    path = _shortest_path(cost, max_step=NET_MAX_STEP, step_cost=NET_STEP_COST)
    rows = rnfl_net.subsample(p, path)
    under = rnfl_net.thickness_px(rows, centres, width, um_z, periodic)
    spread_um = rnfl_net.per_ascan(rnfl_net.spread(p, rows) * rnfl_net.SAMPLE_UM, centres, width, periodic)
    if len(picked) < n:
        b = np.arange(n)
        under, spread_um = (np.stack([np.interp(b, picked, a[:, j]) for j in range(width)], axis=1).astype(np.float32)
                            for a in (under, spread_um))
    return np.clip(ilm_f + under, ilm_f, bm_f), spread_um


def unsure_flags(volume: OctVolume, ilm: np.ndarray, rnfl: np.ndarray, bm: np.ndarray,
                 shadow: np.ndarray | None = None, display: np.ndarray | None = None,
                 spread_um: np.ndarray | None = None) -> np.ndarray:
    """UNSURE_* flags per A-scan for any ILM / RNFL / BM lines (ours or the file's), (n, width) uint8.

    - vessel shadow: the outer retina above Bruch's membrane much darker than around it (the
      thickness there is interpolated, by us and by the devices);
    - low signal: the RNFL just under the ILM barely brighter than the background;
    - RNFL/GCL edge: the step in brightness at the RNFL's outer boundary, read on the B-scan
      flattened to the ILM and averaged along it over ``EDGE_ALONG_UM``, is weaker than ``EDGE_SNR``
      times its noise, or a step at least as strong lies higher up in what was called RNFL; where the
      learned boundary drew the line (``spread_um`` given: the distance the net expects between its
      boundary and the true one), it is unsure where that exceeds ``NET_UNSURE_UM`` instead, since the
      net reads the layer stack, not the visible step (on single-frame B-scans the step test flagged
      most A-scans, good and bad alike).

    Why a noise model rather than a fixed contrast: the same RNFL/GCL step is clear on an averaged
    Spectralis B-scan and lost in the speckle of a single Cirrus B-scan; the noise is measured on the
    scan itself (between neighbouring A-scans), so the test holds on any device without a table.
    """
    display = volume.display() if display is None else display
    n, depth, width = display.shape
    um_z = _depth_um(volume) or 2000.0 / depth
    um_x = (volume.spacing.ascan_mm or 0.03) * 1000.0
    periodic = volume.scan_pattern == "circle"
    mode = "wrap" if periodic else "nearest"
    ilm_f, rnfl_f, bm_f = (_fill_nan(np.asarray(a, np.float32)) for a in (ilm, rnfl, bm))
    missing = ~(np.isfinite(ilm) & np.isfinite(rnfl) & np.isfinite(bm))
    flags = np.zeros((n, width), np.uint8)
    if shadow is None:
        shadow = _shadows_full(display, bm_f, um_z, periodic)
    flags[shadow] |= UNSURE_VESSEL

    # in dense cubes the edge is judged on every B-scan EDGE_BSCAN_MM apart and given to those between
    # (what it tells changes over ~0.1 mm; judging every Cirrus B-scan cost 0.15 s more than the search)
    every = max(1, int(EDGE_BSCAN_MM / volume.spacing.bscan_mm + 1e-6)) if n > 1 and volume.spacing.bscan_mm else 1
    if every > 1:
        display, ilm_f, rnfl_f = display[::every], ilm_f[::every], rnfl_f[::every]
    dz = EDGE_SAMPLE_UM / um_z  # px per sample
    w = max(2, int(round(EDGE_WINDOW_UM / EDGE_SAMPLE_UM)))
    thick = np.clip(rnfl_f - ilm_f, 0, None) / dz  # samples
    # beyond EDGE_MAX_UM (only next to the disc, never on the 3.46 mm circle) the edge is not judged: unsure
    reach = int(min(np.percentile(thick, 99.5), EDGE_MAX_UM / EDGE_SAMPLE_UM, depth / dz)) + 1
    nd = reach + 2 * w + 2 if spread_um is None else int(24.0 / EDGE_SAMPLE_UM) + 1  # the net: only `top` read
    flat = _flatten(display, ilm_f, dz, nd, EDGE_SAMPLE_UM / um_z)
    top = flat[:, int(8.0 / EDGE_SAMPLE_UM): int(24.0 / EDGE_SAMPLE_UM) + 1].mean(axis=1)
    background = float(np.median(display[:: max(1, n // 16), ::4, ::4]))  # most of a B-scan is background
    contrast = top - background
    low = contrast < LOW_SIGNAL * float(np.median(contrast))
    if spread_um is None:
        edge = _edge_unsure(flat, thick, reach, w, um_x, mode)
    else:
        edge = np.asarray(spread_um)[::every] > NET_UNSURE_UM
    if every > 1:
        edge, low = (np.repeat(a, every, axis=0)[:n] for a in (edge, low))
    flags[edge] |= UNSURE_EDGE
    flags[low | missing] |= UNSURE_SIGNAL
    return flags


def _edge_unsure(flat: np.ndarray, thick: np.ndarray, reach: int, w: int, um_x: float, mode: str) -> np.ndarray:
    """The visible-step test of :func:`unsure_flags` on the B-scans flattened to the ILM (``flat``, samples
    EDGE_SAMPLE_UM apart), ``thick`` the RNFL in samples: (n, width) bool."""
    nd, width = flat.shape[1], flat.shape[2]
    # speckle noise per sample, from differences between neighbouring A-scans inside the RNFL
    inner = flat[:, 2: max(3, int(np.median(thick))), :]
    noise = float(np.median(np.abs(np.diff(inner, axis=2)))) / 0.6745 / np.sqrt(2.0) if width > 1 else 0.0
    sigma = EDGE_ALONG_UM / um_x
    flat = ndimage.gaussian_filter1d(flat, sigma, axis=2, mode=mode) if sigma > 0.3 else flat
    lateral = max(1.0, 2.0 * np.sqrt(np.pi) * sigma)  # A-scans a gaussian of that width averages
    step_noise = max(noise * np.sqrt(2.0 / (w * lateral)), 1e-6)
    cum = np.concatenate([np.zeros_like(flat[:, :1]), np.cumsum(flat, axis=1)], axis=1)
    step = np.zeros(flat.shape, np.float32)
    i = np.arange(w, nd - w)
    step[:, i] = (2 * cum[:, i] - cum[:, i - w] - cum[:, i + w]) / w
    at = np.clip(np.round(thick), 0, nd - 1).astype(np.intp)
    here = np.take_along_axis(step, at[:, None, :], 1)[:, 0, :]
    d = np.arange(nd)[None, :, None]
    higher = (d >= (8.0 + EDGE_WINDOW_UM) / EDGE_SAMPLE_UM) & (d <= at[:, None, :] - EDGE_GUARD_UM / EDGE_SAMPLE_UM)
    above = np.where(higher, step, -np.inf).max(axis=1)
    weak = here < EDGE_SNR * step_noise
    ambiguous = (above >= EDGE_SNR * step_noise) & (above >= here)
    return weak | ambiguous | (thick > reach)


def _flatten(display: np.ndarray, ilm: np.ndarray, step_px: float, count: int, average_px: float) -> np.ndarray:
    """The B-scans resampled below the ILM, ``count`` samples ``step_px`` apart (each the mean of about
    ``average_px`` pixels), (n, count, width) float32: row k lies k samples under the ILM."""
    n, depth, width = display.shape
    k = max(1, int(round(average_px)))
    z = ilm[:, None, :] + (np.arange(count, dtype=np.float32) * step_px)[None, :, None]
    z0 = np.clip(np.floor(z).astype(np.intp), 0, depth - 1)
    frac = np.clip(z - z0, 0.0, 1.0).astype(np.float32)
    z1 = np.minimum(z0 + 1, depth - 1)
    if k > 1:
        # axial box average of k pixels, read only where sampled (the cube itself is never converted)
        acc = np.zeros(z0.shape, np.float32)
        for j in range(k):
            zj = np.clip(z0 + j - k // 2, 0, depth - 1)
            acc += np.take_along_axis(display, zj, 1)
        return acc / k
    a = np.take_along_axis(display, z0, 1).astype(np.float32)
    b = np.take_along_axis(display, z1, 1).astype(np.float32)
    return a + frac * (b - a)


def _shadows_full(display: np.ndarray, bm: np.ndarray, um_z: float, periodic: bool) -> np.ndarray:
    """:func:`_vessel_shadows` on the full-resolution B-scans, for lines that came without our paths."""
    n, depth, width = display.shape
    offsets = np.arange(-int(round(100.0 / um_z)), 1, max(1, int(round(4.0 / um_z))))
    zz = np.clip(np.round(bm).astype(np.intp)[:, None, :] + offsets[None, :, None], 0, depth - 1)
    outer = np.take_along_axis(display, zz, 1).astype(np.float32).mean(axis=1)
    outer -= float(np.percentile(display[:, :: max(1, depth // 64)], 50))
    typical = ndimage.median_filter(outer, size=(1, 61), mode="wrap" if periodic else "nearest")
    shadow = outer < SHADOW_LEVEL * typical
    grow = max(1, int(round(SHADOW_GROW_FRACTION * width)))
    return ndimage.binary_dilation(shadow, structure=np.ones((1, 2 * grow + 1), bool))


def _vessel_shadows(img: np.ndarray, bm_c: np.ndarray, px_um: float, periodic: bool) -> np.ndarray:
    """A-scans under a large retinal vessel, (n, width) bool: the outer retina just above Bruch's
    membrane is much darker there than in the A-scans around it."""
    n, zc, width = img.shape
    offsets = np.arange(-int(round(100.0 / px_um)), 1)
    zz = np.clip(bm_c[:, None, :] + offsets[None, :, None], 0, zc - 1)
    outer = np.take_along_axis(img, zz, 1).mean(axis=1)
    typical = ndimage.median_filter(outer, size=(1, 61), mode="wrap" if periodic else "nearest")
    shadow = outer < SHADOW_LEVEL * typical
    grow = max(1, int(round(SHADOW_GROW_FRACTION * width)))
    return ndimage.binary_dilation(shadow, structure=np.ones((1, 2 * grow + 1), bool))


def _vessels_in_rnfl(ilm: np.ndarray, rnfl: np.ndarray, bm: np.ndarray, shadow: np.ndarray, ascan_mm: float,
                     periodic: bool) -> np.ndarray:
    """The large retinal vessels lie in the RNFL, and Heidelberg's segmentation (like the anatomy)
    keeps them inside it. Two corrections where a vessel casts its shadow:

    - under the shadow the RNFL's own edge is lost: its thickness is interpolated linearly from
      the A-scans on either side;
    - next to it (within ``VESSEL_NEAR_MM``) the vessel's dark lumen looks like the ganglion cell
      layer, and the boundary climbs onto the vessel instead of running below it: thinning
      narrower than ``VESSEL_SPAN_MM`` is filled there (a morphological closing of the thickness
      along the B-scan, which never thins and leaves wider changes alone).
    """
    out = rnfl.copy()
    x = np.arange(rnfl.shape[1], dtype=np.float64)
    for b in range(rnfl.shape[0]):
        seen = ~shadow[b]
        if seen.all() or seen.sum() < 0.3 * seen.size:
            continue
        thickness = (rnfl[b] - ilm[b]).astype(np.float64)
        filled = np.interp(x, x[seen], thickness[seen], period=x.size if periodic else None)
        out[b] = np.where(seen, rnfl[b], ilm[b] + filled)
    mode = "wrap" if periodic else "nearest"
    span = max(1, int(round(VESSEL_SPAN_MM / ascan_mm)))
    closed = ndimage.grey_closing(out - ilm, size=(1, span), mode=mode)
    reach = int(round(VESSEL_NEAR_MM / ascan_mm))
    near = ndimage.binary_dilation(shadow, structure=np.ones((1, 2 * reach + 1), bool)) if reach else shadow
    return np.where(near, np.minimum(ilm + closed, bm), out)


def _rnfl_path(img, fall, ref, ilm_b, forbidden, level, px_um, max_step):
    """RNFL outer boundary for one dimness threshold: a fall below the ILM such that the tissue
    between is RNFL-bright (not dimmer than ``level`` of the tissue just under the ILM) and the
    tissue just below it is not."""
    zc = img.shape[1]
    z = np.arange(zc, dtype=np.float32)[None, :, None]
    dim = (img < level * ref) & (z > ilm_b)
    dim_above = np.cumsum(dim, axis=1, dtype=np.float32)
    w = max(3, int(round(24.0 / px_um)))
    lit_cum = np.cumsum(~dim, axis=1, dtype=np.float32)
    cost = np.zeros_like(lit_cum)
    cost[:, : zc - w, :] = lit_cum[:, w:, :] - lit_cum[:, : zc - w, :]
    cost *= RNFL_LIT / w
    dim_above *= px_um / RNFL_DIM_UM
    cost += _clip(dim_above, 3.0)
    cost += 1.0
    cost -= fall
    cost[forbidden] = 6.0
    return _shortest_path(cost, max_step=max_step, step_cost=0.02)


def _bm_strength(fall: np.ndarray, rise: np.ndarray, ilm_c: np.ndarray, bm_c: np.ndarray,
                 px_um: float) -> tuple[np.ndarray, np.ndarray]:
    """En-face strength of Bruch's membrane in a cube: low where there is none (inside its opening).

    Bruch's membrane is seen as an edge at its depth in either direction: bright-to-dark under the
    RPE, and dark-to-bright where the RPE has gone (beta-zone atrophy, or the RPE thinning out
    before the opening), because the choroid and sclera under the bare membrane are brighter than
    the atrophic retina above it. Reading only the RPE's edge would put the opening where the RPE
    stops, outside the true BMO. Rises within ``RPE_REACH_UM`` of the ILM are not counted, so that
    a cup floor at the membrane's depth does not read as membrane.

    Bruch's membrane is fitted by a smooth quadratic surface, robustly (points more than 40 um off
    are dropped and the fit repeated), so that inside the disc, where the path has nothing to
    follow, the edges are read where Bruch's membrane would be. Returns the strength and the depth
    (coarse px) of the strongest edge: Bruch's membrane read without the path, which next to the
    disc can leave the membrane to join its course through the cup.
    """
    n, zc, width = fall.shape
    fit, keep = _smooth_surface(bm_c, BM_SURFACE_UM / px_um)
    surface = np.where(keep, bm_c.astype(np.float64), fit)
    reach = int(round(RPE_REACH_UM / px_um))
    offsets = np.arange(-reach, reach + 1)
    zz = np.clip(np.round(surface)[:, None, :] + offsets[None, :, None], 0, zc - 1).astype(np.intp)
    deepest_ilm = ndimage.maximum_filter(ilm_c, size=(3, 5), mode="nearest")  # the image is smoothed laterally
    below_ilm = zz > deepest_ilm[:, None, :] + 2 * reach
    edges = np.maximum(np.take_along_axis(fall, zz, 1), np.take_along_axis(rise, zz, 1) * below_ilm)
    strongest = np.argmax(edges, axis=1)
    depth = np.take_along_axis(zz, strongest[:, None, :], 1)[:, 0, :].astype(np.float32)
    return edges.max(axis=1).astype(np.float32), depth


def _smooth_surface(depth: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """A quadratic surface over the cube fitted robustly to ``depth`` (n, width): points more than
    ``limit`` off are dropped and the fit repeated. Returns the fit (float64) and the points kept."""
    n, width = depth.shape
    rows, cols = np.mgrid[0:n, 0:width]
    u, v = cols / width - 0.5, rows / n - 0.5
    design = np.stack([np.ones_like(u), u, v, u * u, v * v, u * v], axis=-1).reshape(-1, 6)
    target = depth.reshape(-1).astype(np.float64)
    keep = np.ones(target.size, bool)
    for _ in range(4):
        coef, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
        fit = design @ coef
        keep = np.abs(target - fit) < limit
        if keep.sum() < 0.3 * target.size:
            break
    return fit.reshape(n, width), keep.reshape(n, width)


def _shortest_path(cost: np.ndarray, max_step: int, step_cost: float) -> np.ndarray:
    """Minimum-cost left-to-right path per B-scan; cost (n, depth, width) -> depth index (n, width).

    Moving ``d`` pixels up or down between neighbouring A-scans costs ``step_cost * d`` on top of the
    node cost, at most ``max_step`` pixels. Start and end are free (Chiu's zero-cost end columns).
    The recursion runs column by column, so it works on a column-major copy: each step then reads
    and writes contiguous memory instead of one float per cache line (about twice as fast).
    """
    n, depth, width = cost.shape
    cols = np.ascontiguousarray(cost.transpose(2, 0, 1))  # (width, n, depth)
    acc = np.empty_like(cols)
    acc[0] = cols[0]
    for x in range(1, width):
        best = acc[x - 1]
        reach = best
        for _ in range(max_step):  # L1 step penalty as repeated 3-neighbour minima
            reach = ndimage.minimum_filter1d(reach, 3, axis=1, mode="nearest")
            reach += step_cost
            best = np.minimum(best, reach)
        np.add(best, cols[x], out=acc[x])
    path = np.empty((n, width), np.int32)
    path[:, -1] = np.argmin(acc[-1], axis=1)
    offsets = np.arange(-max_step, max_step + 1)
    rows = np.arange(n)[:, None]
    for x in range(width - 1, 0, -1):
        cand = np.clip(path[:, x, None] + offsets[None, :], 0, depth - 1)
        values = acc[x - 1][rows, cand] + step_cost * np.abs(offsets)[None, :]
        path[:, x - 1] = cand[np.arange(n), np.argmin(values, axis=1)]
    return path


def _shortest_path_free(cost: np.ndarray, step_cost: float) -> np.ndarray:
    """Like :func:`_shortest_path` with no limit on the step between neighbouring A-scans.

    The ILM needs it: where the tissue surface drops into a deep cup or climbs a steep rim, it moves
    further in depth from one A-scan to the next than any fixed limit allows, and a limited path
    cuts across the cup through the vitreous. The best predecessor under a linear step cost is the
    lower envelope ``min_z' acc[z'] + c |z - z'|``, which two running minima give exactly (one from
    above, one from below), so every step size costs the same time.
    """
    n, depth, width = cost.shape
    cols = np.ascontiguousarray(cost.transpose(2, 0, 1))  # (width, n, depth), as in _shortest_path
    ramp = (step_cost * np.arange(depth, dtype=np.float32))[None, :]
    acc = np.empty_like(cols)
    acc[0] = cols[0]
    for x in range(1, width):
        prev = acc[x - 1]
        from_above = np.minimum.accumulate(prev - ramp, axis=1) + ramp
        from_below = np.minimum.accumulate((prev + ramp)[:, ::-1], axis=1)[:, ::-1] - ramp
        np.minimum(from_above, from_below, out=from_above)
        np.add(from_above, cols[x], out=acc[x])
    path = np.empty((n, width), np.int32)
    path[:, -1] = np.argmin(acc[-1], axis=1)
    z = np.arange(depth, dtype=np.float32)[None, :]
    for x in range(width - 1, 0, -1):
        values = acc[x - 1] + step_cost * np.abs(z - path[:, x, None])
        path[:, x - 1] = np.argmin(values, axis=1)
    return path


def _refine(display: np.ndarray, coarse_path: np.ndarray, factor: int, rising: bool) -> np.ndarray:
    """Full-resolution boundary: the strongest edge of the right polarity within one coarse pixel,
    placed between pixels by a parabola through the edge strength around its peak. Why: a boundary
    lies between the last dark and the first bright pixel; the centred difference is as strong on
    both, and the first of the tie was taken, so every boundary sat half a depth pixel above its
    edge (the ILM 4.8 um high on 7.8 um pixels, docs/structure.md "Fourth session")."""
    n, depth, width = display.shape
    centre = coarse_path.astype(np.float32) * factor + (factor - 1) / 2.0
    # the rows within one coarse pixel, and two more either side (one for the parabola, one for the
    # three-row average next to the searched rows), each with the row above and below it read too
    rows = np.arange(-factor - 3, factor + 4)
    rr = np.clip(np.round(centre)[:, None, :] + rows[None, :, None], 0, depth - 1).astype(np.intp)
    # edge strength averaged over three neighbouring A-scans, to keep speckle from deciding; only the
    # samples read are converted to float (converting a whole uint8 cube costs more than the rest)
    g = np.take_along_axis(display, rr, axis=1).astype(np.float32)
    edge = g[:, 2:] - g[:, :-2] if rising else g[:, :-2] - g[:, 2:]
    edge = ndimage.uniform_filter1d(edge, 3, axis=2, mode="nearest")
    edge = ndimage.uniform_filter1d(edge, 3, axis=1, mode="nearest")[:, 1:-1]
    zz = rr[:, 2:-2]
    pick = 1 + np.argmax(edge[:, 1:-1], axis=1)[:, None, :]
    refined = np.take_along_axis(zz, pick, axis=1)[:, 0, :].astype(np.float32)
    e0, e1, e2 = (np.take_along_axis(edge, pick + d, axis=1)[:, 0, :] for d in (-1, 0, 1))
    curve = e0 - 2.0 * e1 + e2
    shift = np.where(curve < 0, 0.5 * (e0 - e2) / np.where(curve < 0, curve, -1.0), 0.0)
    refined += np.clip(shift, -0.5, 0.5)
    refined = ndimage.median_filter(refined, size=(1, 5), mode="nearest")
    return refined
