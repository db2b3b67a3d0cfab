"""Image formation: one acquisition of an eye rendered as a Spectralis- or Cirrus-like OCT cube.

Why physics-shaped rather than painted: the cues a network may learn should be the ones a real
scan offers. So the renderer builds a reflectivity and an attenuation map from the anatomy, then
forms the image the way spectral-domain OCT does:

- linear intensity = signal x reflectivity x exp(-2 x integral of attenuation) x depth roll-off
  x speckle + noise floor. The attenuation integral makes the choroid and sclera fade and puts
  shadows under retinal vessels and the central vessel trunk.
- Speckle is multiplicative, log-normal and spatially correlated (axial ~4 um, lateral ~12 um),
  with the contrast (~0.5) measured on the real Spectralis sample; the noise floor is an axially
  correlated exponential minus a background offset (a third of vitreous pixels are 0, as in the
  real sample) and higher near the zero-delay line at the top.
- Tissue above the window top folds back as a mirror image (Fourier-domain OCT).
- Two device looks (``DEVICES``): ``spectralis`` (frames averaged: speckle contrast ~0.65 in log
  intensity, stored as 255 x I^(1/4), the fourth-root display the viewer uses for raw Spectralis
  data) and ``cirrus`` (one frame, not averaged: fully developed speckle, a noise floor only ~15 dB
  under the RNFL, stored on Cirrus's logarithmic 8-bit scale with the vitreous at ~26 grey levels).
  The layer reflectivities are one set for both; the grey-level ratios between layers then match
  each device's real B-scans (RNFL / GCL+IPL ~1.2 on Cirrus, 1.2-1.5 on Spectralis; measured by
  ``benchmarks/measure_realism.py``, docs/cohort.md).
- Real scans are irregular from A-scan to A-scan: each A-scan has its own gain (beam and pupil,
  nerve-fibre bundles) and each boundary a per-A-scan jitter of 1-2 um, as traced on real B-scans.

Acquisition-level variation (scan placement, head tilt, signal, window position, roll-off) and
artefacts (motion, blink, clipping/mirror, media opacity) come in through ``Acquisition``.
"""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass

import cv2
import numpy as np

from .anatomy import OUTER_LAYERS, OUTER_THICKNESS_UM, PRESETS, R_REF_MM, SURFACE_BLUR_UM, EyeAnatomy, smoothstep
from .vessels import rasterize

LAYERS = ("vitreous", "rnfl", "gcl", "ipl", "inl", "opl", "onl", "elm", "myoid", "ez", "oszone", "rpe",
          "choroid", "sclera")
#: Boundary names of the truth files, top down; layer k lies between boundary k-1 and k.
BOUNDARIES = ("ILM", "RNFL_GCL", "GCL_IPL", "IPL_INL", "INL_OPL", "OPL_ONL", "ONL_ELM", "ELM", "MZ_EZ",
              "EZ_OS", "OS_RPE", "BM", "CSI")
# Linear reflectivity per layer (Spectralis-like units: display = 255 * I ** 0.25). Set so that the
# grey-level ratios of real peripapillary B-scans come out (RNFL over GCL+IPL, GCL+IPL over INL,
# RPE over the RNFL and the vitreous; docs/cohort.md's realism table).
REFLECTIVITY = np.array([0.0, 0.10, 0.053, 0.068, 0.021, 0.03, 0.009, 0.02, 0.008, 0.26, 0.05, 0.45, 0.08,
                         0.02], np.float32)
# Attenuation (1/mm), applied on the way in and out. The RNFL's is van der Schoot et al.'s (IOVS 2012)
# ~4.5/mm in healthy eyes; it falls with damage together with the reflectivity (both are the same
# scattering by the axons), so the light a damaged RNFL no longer returns reaches the layers below.
ATTENUATION = np.array([0.0, 4.5, 0.8, 0.8, 0.6, 0.8, 0.6, 0.8, 0.6, 3.0, 2.0, 10.0, 12.0, 3.0], np.float32)
RNFL_DAMAGE_DIMMING = 0.3  # share of the RNFL's reflectivity and attenuation lost at total axonal loss
PRELAMINAR = (0.075, 1.8)  # reflectivity, attenuation of the prelaminar neural tissue in the disc
LAMINA = (0.08, 3.5)
RETROLAMINAR = (0.01, 4.0)
BLOOD_ATTENUATION = 18.0  # 1/mm
SPECKLE_SIGMA = 0.65  # log-intensity SD of speckle (local contrast ~0.5-0.7, as measured on valid.vol)
NOISE_OFFSET = 0.45  # background subtraction: P(0) ~ 0.36 in the vitreous
#: Device looks. speckle: log-intensity SD; speckle_z_um: axial correlation (Gaussian sigma, the 1/e
#: length of the grey levels' autocorrelation is twice it: ~10 um on Spectralis, ~4 um on Cirrus);
#: noise_gain: the noise floor against ``Acquisition.noise_floor``; display: "root4" (255 x I^(1/4))
#: or "log" (``log_grey`` grey levels per neper above ``log_floor_grey`` at the noise floor);
#: flat_floor: the noise floor does not fall with depth (Cirrus's background reads ~26 grey levels
#: from the top of the window to the bottom, where Spectralis's raw data fall off).
DEVICES = {
    "spectralis": {"speckle": SPECKLE_SIGMA, "speckle_z_um": 3.5, "noise_gain": 4.0, "display": "root4"},
    "cirrus": {"speckle": 1.0, "speckle_z_um": 1.9, "noise_gain": 5.5, "display": "log", "log_grey": 21.0,
               "log_floor_grey": 28.6, "noise_sigma": 0.5, "flat_floor": True},
}
#: The device look each sampling preset gets unless another is asked for.
PRESET_DEVICE = {"tiny": "spectralis", "small": "spectralis", "demo": "spectralis", "cirrus": "cirrus"}
ASCAN_GAIN_SD = 0.12  # log-SD of each A-scan's own gain
BOUNDARY_JITTER_UM = (1.0, 2.0, 1.2, 1.2, 1.0, 1.0, 0.8, 0.6, 0.6, 0.6, 0.6, 0.8, 4.0)  # per A-scan, per boundary


@dataclass(frozen=True)
class Acquisition:
    """How one scan of an eye was taken."""

    signal: float = 1.0  # linear signal strength (1 = good)
    offset_mm: tuple[float, float] = (0.0, 0.0)  # scan placement: disc shift in the cube (x, y)
    tilt: tuple[float, float] = (0.0, 0.0)  # head / beam tilt: BM slope (um per mm) along x and y
    window_um: float = 1150.0  # depth of Bruch's membrane at the cube centre below the window top
    rolloff_db: float = 4.0  # sensitivity lost from the top to the bottom of the window
    motion_um: float = 0.0  # SD of B-scan-to-B-scan axial jumps (eye motion); 0 = none
    blink: tuple[int, int] | None = None  # first B-scan and count of a blink (no signal)
    media_opacity: float = 0.0  # 0 clear .. 1 dense (cataract, vitreous haze): signal loss and blur
    noise_floor: float = 3.0e-4  # linear noise level (after background subtraction) in the mid vitreous


@dataclass
class RenderedVolume:
    data: np.ndarray  # (n_bscans, depth, width) uint8, 255 * I ** 0.25
    spacing_mm: tuple[float, float, float]  # (bscan, depth, ascan)
    rnfl_um: np.ndarray  # en-face (n_bscans, width) RNFL thickness (prelaminar tissue inside the BMO: 0)
    damage: np.ndarray  # en-face (n_bscans, width) fraction of axonal RNFL lost (0 inside the BMO)
    disc_mask: np.ndarray  # en-face bool: inside the BMO
    cup_mask: np.ndarray  # en-face bool: inside the cup edge
    vessels: np.ndarray  # en-face vessel calibre (um), 0 where none
    boundaries: np.ndarray  # (len(BOUNDARIES), n_bscans, width) float32 depth in px; NaN where absent
    lamina: np.ndarray  # (n_bscans, width) anterior lamina surface in px, NaN outside the BMO
    bmo: np.ndarray  # (72, 3) BMO points: bscan index, A-scan index, depth px (fractional)
    bmo_center: tuple[float, float]  # (bscan index, A-scan index) of the BMO centre
    artefacts: tuple[str, ...]


_LEVELS = 1 << 16


@functools.cache
def _quantile_tables() -> tuple[np.ndarray, np.ndarray]:
    """The standard normal and the unit exponential at 65,536 mid-quantiles (made once per process)."""
    u = (np.arange(_LEVELS) + 0.5) / _LEVELS
    inv = statistics.NormalDist().inv_cdf
    return np.array([inv(p) for p in u], np.float32), (-np.log1p(-u)).astype(np.float32)


def _draw(rng, shape, exponential: bool = False) -> np.ndarray:
    """Standard normal (or unit exponential) float32 noise, drawn as 16-bit indices into a quantile
    table: three times faster than numpy's float32 normal sampler, the same in an image (the
    normal's tails stop at 4.3 SD). Most of the rendering time is noise, so this matters."""
    return np.take(_quantile_tables()[int(exponential)], rng.integers(0, _LEVELS, shape, dtype=np.uint16))


def _blurred_normal(rng, shape, sigma_z, sigma_x):
    """Unit-variance Gaussian field correlated along depth (axis 1) and width (axis 2). Broad
    fields are drawn on a coarser grid and interpolated: the same statistics for less work."""
    if (sigma_z < 0.3 and sigma_x < 0.3) or 0 in shape:
        return _draw(rng, shape)
    fz, fx = max(1, int(sigma_z / 1.5)), max(1, int(sigma_x / 1.5))
    coarse = (shape[0], -(-shape[1] // fz) + 1, -(-shape[2] // fx) + 1)
    g = _draw(rng, coarse)
    out = np.empty(shape, np.float32)
    for i in range(shape[0]):
        sm = cv2.GaussianBlur(g[i], (0, 0), sigmaX=max(sigma_x / fx, 0.01), sigmaY=max(sigma_z / fz, 0.01))
        if fz > 1 or fx > 1:
            sm = cv2.resize(sm, (coarse[2] * fx, coarse[1] * fz), interpolation=cv2.INTER_LINEAR)
        out[i] = sm[: shape[1], : shape[2]]
    return out / max(float(out[0].std()), 1e-6)


def _noise_exponential(rng, shape, sigma_z):
    """Unit-mean exponential noise (|complex Gaussian|^2), correlated along depth when the axial
    resolution spans more than a pixel."""
    if sigma_z < 0.6:
        return _draw(rng, shape, exponential=True)
    a = _blurred_normal(rng, shape, sigma_z, 0.0)
    b = _blurred_normal(rng, shape, sigma_z, 0.0)
    return 0.5 * (a * a + b * b)


def _extent(mask: np.ndarray) -> tuple[slice, slice]:
    """Row and column slices of the bounding box of a 2D mask (empty slices if it is empty)."""
    r, c = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if len(r) == 0:
        return slice(0, 0), slice(0, 0)
    return slice(int(r[0]), int(r[-1]) + 1), slice(int(c[0]), int(c[-1]) + 1)


def _rows(lo: float, hi: float, offset: int, n: int) -> slice:
    """The rendered rows (of ``n``, row = depth px + ``offset``) that hold depths lo..hi (px)."""
    return slice(int(np.clip(np.floor(lo) + offset, 0, n)), int(np.clip(np.ceil(hi) + offset + 1, 0, n)))


def _bscan_shift(img: np.ndarray, dz: float, fill: float) -> np.ndarray:
    m = np.float32([[1, 0, 0], [0, 1, dz]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def render_volume(anatomy: EyeAnatomy, preset: str = "small", seed: int = 0, signal: float = 1.0,
                  offset_mm: tuple[float, float] = (0.0, 0.0), tilt: tuple[float, float] = (0.0, 0.0),
                  acquisition: Acquisition | None = None, device: str | None = None) -> RenderedVolume:
    """Render one acquisition of an eye. Either pass ``acquisition`` or the three simple knobs
    (``signal``, ``offset_mm``, ``tilt`` in um/mm). ``device`` picks the look (``DEVICES``; by
    default the preset's, ``PRESET_DEVICE``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    device = device or PRESET_DEVICE[preset]
    if device not in DEVICES:
        raise ValueError(f"unknown device look {device!r}; choose from {', '.join(DEVICES)}")
    look = DEVICES[device]
    acq = acquisition or Acquisition(signal=signal, offset_mm=offset_mm, tilt=tilt)
    rng = np.random.default_rng(seed)
    (n_b, n_z, n_x), (fov_y, fov_z, fov_x) = PRESETS[preset]["shape"], PRESETS[preset]["fov_mm"]
    dz_um = fov_z * 1000.0 / n_z
    px_um = fov_x * 1000.0 / n_x
    py_um = fov_y * 1000.0 / n_b

    def enface_blur(img, sigma_um):
        """Gaussian blur of an en-face map by the same distance along both axes (their spacing differs)."""
        return cv2.GaussianBlur(np.ascontiguousarray(img, np.float32), (0, 0), sigmaX=sigma_um / px_um,
                                sigmaY=max(sigma_um / py_um, 0.01))
    xs = (np.arange(n_x) + 0.5 - n_x / 2) * (fov_x / n_x)  # left to right as displayed
    ys = (n_b / 2 - np.arange(n_b) - 0.5) * (fov_y / n_b)  # first B-scan superior
    X, Y = np.meshgrid(xs, ys)
    u_sign = 1.0 if anatomy.laterality == "OD" else -1.0  # nasal is to the right for OD

    cx = u_sign * anatomy.disc_center_mm[0] + acq.offset_mm[0]
    cy = anatomy.disc_center_mm[1] + acq.offset_mm[1]
    dx, dy = X - cx, Y - cy
    u = u_sign * dx  # positive nasal
    theta = np.rad2deg(np.arctan2(dy, -u)) % 360.0
    r = np.hypot(dx, dy)
    r_bmo = anatomy.bmo_radius_mm(theta)
    rho = r / r_bmo
    inside = rho < 1.0

    # -- surfaces (um from the window top) ---------------------------------------------------
    tilt_u, tilt_v = anatomy.disc_tilt
    z_bm = (acq.window_um - anatomy.curvature_um_per_mm2 * (X ** 2 + Y ** 2)
            + acq.tilt[0] * X + acq.tilt[1] * Y + tilt_u * u + tilt_v * dy) + anatomy.bm_dip_now_um(r, r_bmo)
    rnfl_out = anatomy.rnfl_um(theta, np.maximum(r, r_bmo))
    dmg = anatomy.damage(theta)
    taper = smoothstep((r - r_bmo) / 0.35)  # outer retina ends at the BMO
    outer = {k: OUTER_THICKNESS_UM[k] * taper for k in OUTER_LAYERS}
    outer["gcl"] = outer["gcl"] * (1.0 - 0.45 * dmg)
    if anatomy.ppa is not None:  # beta-zone atrophy: no RPE and photoreceptors next to the disc
        centre, half, width = anatomy.ppa
        in_ppa = (np.abs((theta - centre + 180) % 360 - 180) < half) & (r < r_bmo + width)
        for k in ("rpe", "oszone", "ez", "myoid"):
            outer[k] = np.where(in_ppa, 0.0, outer[k])
    else:
        in_ppa = np.zeros_like(inside)
    outer_sum = sum(outer.values())
    # towards the BMO the retina blends into the neuroretinal rim: the total height above BM goes
    # from the peripapillary retina to the rim height, and the RNFL takes what the outer layers leave
    rim_h = anatomy.rim_height_um(theta)
    t_rim = smoothstep((r - r_bmo) / 0.6)
    above_bm = (outer_sum + rnfl_out) * t_rim + rim_h * (1.0 - t_rim)
    rnfl_here = np.maximum(above_bm - outer_sum, 5.0)
    z_ilm_out = z_bm - outer_sum - rnfl_here
    h_disc = anatomy.ilm_height_in_disc_um(np.minimum(rho, 1.0), theta)
    # the central vessel trunk rises from the cup floor as a mound (never above the BMO plane)
    tx, ty = cx + u_sign * anatomy.trunk_offset_mm[0], cy + anatomy.trunk_offset_mm[1]
    d_trunk = np.hypot(X - tx, Y - ty)
    mound = anatomy.trunk_height_um * np.exp(-0.5 * (d_trunk / 0.09) ** 2)
    z_ilm_in = z_bm - h_disc - np.minimum(mound, 0.8 * np.maximum(-h_disc, 0.0))
    z_ilm = np.where(inside, z_ilm_in, z_ilm_out)
    lamina_centre = anatomy.lamina_depth_now_um
    z_lamina = z_bm + lamina_centre - (lamina_centre - 150.0) * np.minimum(rho, 1.0) ** 2
    z_lamina = np.maximum(z_lamina, z_ilm + 25.0)  # some prelaminar tissue always remains

    bounds = [z_ilm]
    bounds.append(np.where(inside, z_lamina, z_ilm + rnfl_here))
    for name in OUTER_LAYERS:
        bounds.append(bounds[-1] + np.where(inside, 0.0, outer[name]))
    choroid = anatomy.choroid_um * smoothstep((r - r_bmo) / 0.45)
    bounds.append(np.where(inside, z_lamina + 260.0, bounds[-1] + choroid))
    bounds = np.stack(bounds).astype(np.float32) / dz_um  # (13, n_b, n_x) px
    # Real surfaces are smooth at the rim and undulate slightly: blur each map (SURFACE_BLUR_UM), add a
    # low-frequency ripple, keep the layers ordered.
    for k in range(bounds.shape[0]):
        ripple = enface_blur(rng.standard_normal((n_b, n_x)), 300.0)
        ripple *= (3.0 / dz_um) / max(float(ripple.std()), 1e-6)
        jitter = rng.standard_normal((n_b, n_x)).astype(np.float32) * (BOUNDARY_JITTER_UM[k] / dz_um)
        bounds[k] = enface_blur(bounds[k], SURFACE_BLUR_UM) + ripple + jitter
    bounds = np.maximum.accumulate(bounds, axis=0)
    lamina_px = enface_blur(z_lamina / dz_um, SURFACE_BLUR_UM)
    w_in = enface_blur(inside, 90.0)
    border = np.exp(-0.5 * ((rho - 1.1) / 0.12) ** 2).astype(np.float32)  # border tissue of Elschnig

    # -- vessels ------------------------------------------------------------------------------
    calibre = rasterize(anatomy.vessel_seed, xs, ys, (cx, cy), u_sign)
    calibre = np.where(rho < 0.2, 0.0, calibre).astype(np.float32)
    v_r = calibre / 2.0 / dz_um  # radius px
    v_c = bounds[0] + v_r + 6.0 / dz_um
    trunk = (d_trunk < 0.11).astype(np.float32)

    # -- image formation, a slab of B-scans at a time ----------------------------------------
    top_px = float(np.nanmin(bounds[0]))
    pad = int(max(0.0, -top_px + 8.0)) if top_px < 0 else 0  # mirror: render above the window too
    z_all = np.arange(-pad, n_z, dtype=np.float32)
    z_mm = np.abs(z_all) * dz_um / 1000.0
    gain = acq.signal * (1.0 - 0.75 * acq.media_opacity)
    rolloff = (gain * 10.0 ** (-acq.rolloff_db * z_mm / fov_z / 10.0)).astype(np.float32)
    floor = (acq.noise_floor * (0.15 + 0.85 * np.exp(-z_mm / 0.7) + 1.5 * np.exp(-z_mm / 0.08))).astype(np.float32)
    # Per A-scan tables of each layer's reflectivity and attenuation (layer k = label k): the
    # disc's tissues replace the retina's with weight w_in, damage dims the RNFL, the border tissue
    # brightens the sclera next to the BMO. Layer 12 (choroid outside the BMO, lamina inside) is
    # textured voxel by voxel below, so its table entry is 0.
    n_lab = len(LAYERS)
    refl_tab = np.repeat(REFLECTIVITY[None, :, None], n_b, 0).repeat(n_x, 2)  # (n_b, 14, n_x)
    mu_tab = np.repeat(ATTENUATION[None, :, None], n_b, 0).repeat(n_x, 2)
    refl_tab[:, 1] = REFLECTIVITY[1] * (1.0 - RNFL_DAMAGE_DIMMING * dmg) * (1.0 - w_in) + PRELAMINAR[0] * w_in
    refl_tab[:, 12] = 0.0
    refl_tab[:, 13] = REFLECTIVITY[13] * (1.0 + 2.0 * border) * (1.0 - w_in) + RETROLAMINAR[0] * w_in
    mu_tab[:, 1] = ATTENUATION[1] * (1.0 - RNFL_DAMAGE_DIMMING * dmg) * (1.0 - w_in) + PRELAMINAR[1] * w_in
    mu_tab[:, 12] = ATTENUATION[12] * (1.0 - w_in) + LAMINA[1] * w_in
    ppa_gain = np.where(in_ppa, 1.8, 1.0)  # bare sclera shines through beta-zone atrophy
    choroid_w = (REFLECTIVITY[12] * (1.0 - w_in) * ppa_gain).astype(np.float32)
    lamina_w = (LAMINA[0] * w_in * ppa_gain).astype(np.float32)
    pores_w = (0.25 * PRELAMINAR[0] * w_in).astype(np.float32)
    disc_rows, disc_cols = _extent(w_in > 1e-3)
    trunk_rows, trunk_cols = _extent(d_trunk < 0.11)
    sig_z, sig_x = look["speckle_z_um"] / dz_um, 10.0 / px_um
    speckle_sigma = look["speckle"]
    ascan_gain = np.exp(rng.standard_normal((n_b, n_x)).astype(np.float32) * ASCAN_GAIN_SD
                        - ASCAN_GAIN_SD ** 2 / 2)
    floor = floor * look["noise_gain"]
    if look.get("flat_floor"):
        floor = np.full_like(floor, acq.noise_floor * look["noise_gain"])
    out = np.empty((n_b, n_z, n_x), np.uint8)
    chunk = max(1, int(4_000_000 // ((n_z + pad) * n_x)))
    for s0 in range(0, n_b, chunk):
        sl = slice(s0, min(n_b, s0 + chunk))
        nb = sl.stop - sl.start
        b = bounds[:, sl, None, :]  # (13, nb, 1, n_x)
        # above the ILM there is only vitreous: render from the slab's top-most ILM down
        top = max(0, int(np.floor(np.nanmin(b[0]))) + pad - 1)
        z = z_all[None, top:, None]
        nz = z.shape[1]

        label = np.zeros((nb, nz, n_x), np.int8)
        for k in range(b.shape[0]):
            label += z >= b[k]
        index = label.astype(np.int32)  # into the slab's (nb, 14, n_x) tables
        index *= n_x
        index += ((np.arange(nb) * n_lab * n_x)[:, None, None] + np.arange(n_x)).astype(np.int32)
        refl = np.take(refl_tab[sl].ravel(), index)
        mu = np.take(mu_tab[sl].ravel(), index)
        del index
        # choroid (large vessel lumens as dark blobs) and, inside the BMO, the lamina
        band = _rows(np.min(b[11]), np.max(b[12]), pad - top, nz)
        if band.stop > band.start:
            blobs = _blurred_normal(rng, (nb, band.stop - band.start, n_x), 25.0 / dz_um, 45.0 / px_um)
            refl[:, band] += (label[:, band] == 12) * choroid_w[sl, None, :] * np.clip(1.0 + 0.8 * blobs, 0.1, 2.2)
        # prelaminar tissue and lamina are porous (vertical striations), only inside the disc
        rb = slice(max(disc_rows.start, s0), min(disc_rows.stop, sl.stop))
        if rb.stop > rb.start and disc_cols.stop > disc_cols.start:
            deepest = _rows(0, np.max(bounds[12, rb, disc_cols]), pad - top, nz).stop  # the lamina's back
            box = (slice(rb.start - s0, rb.stop - s0), slice(0, deepest), disc_cols)
            lab = label[box]
            pores = _blurred_normal(rng, lab.shape, 12.0 / dz_um, 8.0 / px_um)
            refl[box] += ((lab == 1) * pores_w[rb, None, disc_cols] * pores
                          + (lab == 12) * lamina_w[rb, None, disc_cols] * np.clip(1.0 + 0.6 * pores, 0.2, 2.0))
        # retinal vessels: bright top wall, blood that shadows everything below
        vr, vc = v_r[sl, None, :], v_c[sl, None, :]
        has_vessel = vr > 0
        vrows = _rows(np.min(vc - vr, where=has_vessel, initial=np.inf),
                      np.max(vc + vr, where=has_vessel, initial=-np.inf), pad - top, nz)
        zv = z[:, vrows]
        in_vessel = (np.abs(zv - vc) < vr) & has_vessel
        refl[:, vrows] = np.where(in_vessel, 0.18 * (zv < vc - 0.4 * vr) + 0.04, refl[:, vrows])
        mu[:, vrows] = np.where(in_vessel, BLOOD_ATTENUATION, mu[:, vrows])
        # the central vessel trunk: bright walls at the cup surface, blood down to the lamina's back
        rt = slice(max(trunk_rows.start, s0), min(trunk_rows.stop, sl.stop))
        if rt.stop > rt.start:
            tb = (slice(rt.start - s0, rt.stop - s0), slice(None), trunk_cols)
            b0, b12 = bounds[0, rt, None, trunk_cols], bounds[12, rt, None, trunk_cols]
            in_trunk = (trunk[rt, None, trunk_cols] > 0) & (z >= b0) & (z < b12)
            mu[tb] += 4.0 * in_trunk
            refl[tb] += 0.12 * (in_trunk & (z < b0 + 60.0 / dz_um))
        # attenuation integral (round trip), from the top of the rendered range
        np.cumsum(mu, axis=1, out=mu)
        mu *= -2.0 * dz_um / 1000.0
        np.exp(mu, out=mu)
        intensity = refl
        intensity *= mu
        intensity *= rolloff[None, top:, None]
        intensity *= ascan_gain[sl, None, :]
        del mu
        if acq.media_opacity > 0:  # forward scatter blurs the beam laterally (up to ~40 um)
            blur = 40.0 * acq.media_opacity / px_um
            for i in range(nb):
                intensity[i] = cv2.GaussianBlur(intensity[i], (0, 0), sigmaX=max(blur, 0.01), sigmaY=0.01)
        speckle = _blurred_normal(rng, intensity.shape, sig_z, sig_x)
        speckle *= speckle_sigma
        speckle -= speckle_sigma ** 2 / 2
        intensity *= np.exp(speckle, out=speckle)
        full = np.zeros((nb, n_z + pad, n_x), np.float32)
        full[:, top:] = intensity
        if pad:  # fold what lies above the zero-delay line back into the window
            mirror = full[:, :pad][:, ::-1] * 0.6
            full = full[:, pad:]
            full[:, : mirror.shape[1]] += mirror
        if look["display"] == "log":
            # Cirrus: the background noise is smoothed (it reads as a fine grey texture, SD ~11
            # grey levels), the display logarithmic from the noise floor up
            sigma_n = look["noise_sigma"]
            noise = _blurred_normal(rng, full.shape, look["speckle_z_um"] / dz_um, 0.0)
            noise *= sigma_n
            noise -= sigma_n ** 2 / 2
            np.exp(noise, out=noise)
            noise *= floor[None, pad:, None]
            full += noise
            ref = float(acq.noise_floor * look["noise_gain"])
            np.maximum(full, 1e-9, out=full)
            full /= ref
            np.log(full, out=full)
            full *= look["log_grey"]
            full += look["log_floor_grey"] + 0.5
            np.clip(full, 0.0, 255.0, out=full)
        else:
            noise = _noise_exponential(rng, full.shape, 3.5 / dz_um)
            noise -= NOISE_OFFSET
            np.maximum(noise, 0.0, out=noise)
            noise *= floor[None, pad:, None]
            full += noise
            np.clip(full, 0.0, 1.0, out=full)
            np.sqrt(full, out=full)
            np.sqrt(full, out=full)  # the fourth root
            full *= 255.0
            full += 0.5
        out[sl] = full.astype(np.uint8)

    # -- artefacts: eye motion, blink -----------------------------------------------------------
    artefacts = []
    shifts = np.zeros(n_b, np.float32)
    if acq.motion_um > 0:
        jumps = (rng.random(n_b) < 0.15) * rng.normal(0.0, acq.motion_um / dz_um, n_b)
        shifts = np.cumsum(jumps).astype(np.float32)
        shifts -= np.median(shifts)
        for i in range(n_b):
            if abs(shifts[i]) > 0.05:
                out[i] = _bscan_shift(out[i], float(shifts[i]), 0)
        artefacts.append("motion")
    bounds = bounds + shifts[None, :, None]
    valid = np.ones(n_b, bool)
    if acq.blink is not None:
        first, count = acq.blink
        lost = slice(max(0, first), min(n_b, first + count))
        if look["display"] == "log":
            fl = look["log_floor_grey"] + look["log_grey"] * look["noise_sigma"] * rng.standard_normal(out[lost].shape)
            out[lost] = np.clip(fl + 0.5, 0, 255).astype(np.uint8)
        else:
            fl = (acq.noise_floor * 0.3 * np.maximum(rng.exponential(1.0, out[lost].shape) - NOISE_OFFSET, 0))
            out[lost] = np.clip(255.0 * fl ** 0.25 + 0.5, 0, 255).astype(np.uint8)
        valid[lost] = False
        artefacts.append("blink")
    if top_px < 0:
        artefacts.append("clipping")
        if float(np.nanmin(bounds[11])) < 0:
            artefacts.append("mirror")
    if acq.media_opacity > 0.05:
        artefacts.append("media_opacity")
    if acq.signal < 0.45:
        artefacts.append("low_signal")

    # -- truth ----------------------------------------------------------------------------------
    truth_bounds = bounds.copy()
    truth_bounds[1:12] = np.where(inside[None], np.nan, truth_bounds[1:12])  # no retina layers in the BMO
    truth_bounds[12] = np.where(inside, np.nan, truth_bounds[12])
    truth_bounds[:, ~valid] = np.nan
    lamina_truth = np.where(inside, lamina_px + shifts[:, None], np.nan).astype(np.float32)
    lamina_truth[~valid] = np.nan
    angles = np.arange(0.0, 360.0, 5.0)
    rb = anatomy.bmo_radius_mm(angles)
    bu, bv = -np.cos(np.deg2rad(angles)) * rb, np.sin(np.deg2rad(angles)) * rb
    bx, by = cx + u_sign * bu, cy + bv
    b_idx = (n_b / 2 - 0.5) - by / (fov_y / n_b)
    a_idx = bx / (fov_x / n_x) + n_x / 2 - 0.5
    z_at = (acq.window_um - anatomy.curvature_um_per_mm2 * (bx ** 2 + by ** 2) + acq.tilt[0] * bx
            + acq.tilt[1] * by + tilt_u * bu + tilt_v * bv + anatomy.bm_dip_now_um(rb, rb)) / dz_um
    z_at = z_at + np.interp(b_idx, np.arange(n_b), shifts)
    bmo = np.stack([b_idx, a_idx, z_at], -1).astype(np.float32)
    centre = ((n_b / 2 - 0.5) - cy / (fov_y / n_b), cx / (fov_x / n_x) + n_x / 2 - 0.5)
    cup_mask = inside & (rho < anatomy.recorded_cup_fraction(theta))
    rnfl_map = np.where(inside, 0.0, rnfl_here).astype(np.float32)
    spacing = (fov_y / n_b, fov_z / n_z, fov_x / n_x)
    return RenderedVolume(out, spacing, rnfl_map, (dmg * (~inside)).astype(np.float32), inside, cup_mask,
                          calibre, truth_bounds.astype(np.float32), lamina_truth, bmo, centre, tuple(artefacts))


def rnfl_circle_um(anatomy: EyeAnatomy, n: int = 360) -> np.ndarray:
    """True RNFL on the 3.46 mm circle around the BMO centre, at clinical angles 0..360 (TSNIT from 0)."""
    return anatomy.rnfl_um(np.arange(n) * 360.0 / n, R_REF_MM).astype(np.float32)
