"""A synthetic optic-nerve-head OCT cube, rendered from an anatomical description.

Why synthetic: no patient data can ship with the project, yet the demo, tests and benchmarks need
scans that look and behave like optic-disc OCT, including glaucomatous damage whose location is
known. Numbers are taken from published norms:

- Geometry: Cirrus HD-OCT Optic Disc Cube 200x200, 6 x 6 mm, 1024 samples over 2.0 mm
  (Zeiss Cirrus user manual); Spectralis axial 3.9 um, lateral ~11.8 um.
- Disc ~1.8 mm tall x 1.7 mm wide (Jonas et al., IOVS 1988); vertical cup-to-disc ratio
  0.3-0.5 normal, 0.7-0.9 in glaucoma.
- Peripapillary RNFL on a 3.46 mm circle: mean ~95 um, I >= S >= N >= T (ISNT rule; Budenz et al.,
  Ophthalmology 2007, Cirrus normative data: I ~125, S ~120, N ~70, T ~65 um); glaucoma mean 65-80 um,
  with a ~50 um floor of non-axonal tissue (Hood & Kardon, Prog Retin Eye Res 2007).
- Damage: focal wedge defects mostly infero- and supero-temporal, plus diffuse thinning
  (Jonas, Surv Ophthalmol 1999; Hood et al. 2013 "macular vulnerability zone").
- Reflectivity order from inside out (vitreous dark, RNFL bright, GCL/IPL medium, INL dark,
  OPL medium, ONL dark, ELM thin bright, ellipsoid zone bright, RPE brightest, choroid medium and
  textured) and multiplicative, exponentially distributed speckle shown on a log scale, with
  depth attenuation and vessel shadows: as in the Spectralis samples in ``shared/samples``.

Clinical angles: 0 deg temporal, 90 superior, 180 nasal, 270 inferior, the same for both eyes; a
left eye (OS) is the mirror image of a right eye (OD) across the vertical axis of the cube.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

#: (n_bscans, depth, width) and field of view (mm) per preset.
PRESETS = {
    "tiny": {"shape": (16, 128, 64), "fov_mm": (6.0, 2.0, 6.0)},
    "small": {"shape": (64, 256, 128), "fov_mm": (6.0, 2.0, 6.0)},
    "demo": {"shape": (64, 320, 160), "fov_mm": (6.0, 2.0, 6.0)},
    "cirrus": {"shape": (200, 1024, 200), "fov_mm": (6.0, 2.0, 6.0)},
}

R_REF_MM = 1.73  # radius of the clinical 3.46 mm RNFL circle
RNFL_FLOOR_UM = 50.0  # non-axonal residual thickness that never thins
# Normal RNFL on the reference circle at T, TS, S, NS, N, NI, I, TI (deg 0, 45, ... 315): mean ~95 um.
RNFL_KNOTS_DEG = np.arange(0, 360, 45)
RNFL_KNOTS_UM = np.array([64.0, 108.0, 120.0, 92.0, 70.0, 96.0, 127.0, 112.0])

# Layers from the vitreous down; each label's linear reflectivity before speckle.
LAYERS = ("vitreous", "rnfl", "gcl", "ipl", "inl", "opl", "onl", "elm", "myoid", "ez", "oszone", "rpe",
          "choroid", "sclera")
REFLECTIVITY = np.array([0.002, 1.0, 0.26, 0.36, 0.035, 0.30, 0.025, 0.30, 0.05, 0.85, 0.22, 1.35, 0.20, 0.06],
                        np.float32)
# Normal thickness (um) of the layers between RNFL and choroid, away from the disc.
OUTER_THICKNESS_UM = {"gcl": 30.0, "ipl": 32.0, "inl": 32.0, "opl": 25.0, "onl": 80.0, "elm": 4.0,
                      "myoid": 22.0, "ez": 10.0, "oszone": 24.0, "rpe": 22.0}


@dataclass
class EyeAnatomy:
    """What distinguishes one eye: the disc, the cup, the RNFL and any glaucomatous damage."""

    laterality: str = "OD"
    disc_center_mm: tuple[float, float] = (0.0, 0.0)  # (nasal-ward x, superior y) from cube centre
    disc_radii_mm: tuple[float, float] = (0.85, 0.90)  # (horizontal, vertical)
    cup_to_disc: float = 0.4
    cup_depth_um: float = 250.0
    rnfl_scale: float = 1.0  # normal variation of the whole RNFL profile
    severity: float = 0.0  # 0 = healthy, 1 = end-stage
    diffuse_loss: float = 0.0  # fraction of axonal RNFL lost everywhere
    wedges: list[tuple[float, float, float]] = field(default_factory=list)  # (centre deg, width deg, depth 0-1)
    vessel_seed: int = 0
    choroid_um: float = 230.0

    def damage(self, theta_deg: np.ndarray) -> np.ndarray:
        """Fraction (0-1) of axonal RNFL lost at each clinical angle."""
        focal = np.zeros_like(theta_deg, dtype=np.float32)
        for centre, width, depth in self.wedges:
            d = (theta_deg - centre + 180.0) % 360.0 - 180.0
            focal = np.maximum(focal, depth * np.exp(-0.5 * (d / (width / 2.355)) ** 2))
        return 1.0 - (1.0 - self.diffuse_loss) * (1.0 - focal)

    def rnfl_normal_um(self, theta_deg: np.ndarray, r_mm: np.ndarray | float = R_REF_MM) -> np.ndarray:
        """This eye's RNFL before any damage: ISNT profile, thicker towards the disc margin."""
        profile = np.interp(theta_deg, RNFL_KNOTS_DEG, RNFL_KNOTS_UM, period=360.0) * self.rnfl_scale
        return profile * (R_REF_MM / np.maximum(r_mm, 0.3)) ** 0.85

    def rnfl_um(self, theta_deg: np.ndarray, r_mm: np.ndarray | float = R_REF_MM) -> np.ndarray:
        normal = self.rnfl_normal_um(theta_deg, r_mm)
        floor = np.minimum(RNFL_FLOOR_UM, 0.9 * normal)
        return floor + (normal - floor) * (1.0 - self.damage(theta_deg))


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _vessel_map(anatomy: EyeAnatomy, xs_mm: np.ndarray, ys_mm: np.ndarray, u_sign: float) -> np.ndarray:
    """En-face vessel density (0-1): central vessels leaving the disc along the arcades."""
    rng = np.random.default_rng(anatomy.vessel_seed)
    n_y, n_x = len(ys_mm), len(xs_mm)
    # Render at ~15 um per pixel so thin vessels survive, then resample to the cube's grid.
    scale = 400
    canvas = np.zeros((scale, scale), np.float32)
    extent = (xs_mm.min(), xs_mm.max(), ys_mm.min(), ys_mm.max())

    def to_px(x, y):
        px = (x - extent[0]) / max(extent[1] - extent[0], 1e-6) * (scale - 1)
        py = (extent[3] - y) / max(extent[3] - extent[2], 1e-6) * (scale - 1)
        return np.stack([px, py], axis=-1)

    cx, cy = anatomy.disc_center_mm
    # Main arcades bend temporally (superior and inferior), smaller vessels go nasal.
    trunks = [(75, 1.0), (105, 0.6), (285, 1.0), (255, 0.6), (160, 0.45), (200, 0.45), (20, 0.35), (340, 0.35)]
    for theta0, calibre in trunks:
        theta = np.deg2rad(theta0 + rng.normal(0, 8))
        bend = rng.normal(0, 0.08) + (0.32 if theta0 in (75, 285) else 0.0) * (1 if theta0 == 285 else -1)
        s = np.linspace(0.1, 4.5, 90)
        ang = theta + bend * s + 0.08 * np.sin(s * rng.uniform(2.0, 4.0) + rng.uniform(0, 6.28))
        step = np.diff(s, prepend=0.0)
        u = np.cumsum(np.cos(ang) * step) * -1.0  # temporal is -u
        v = np.cumsum(np.sin(ang) * step)
        x = cx + u_sign * u + np.cos(theta) * 0.0
        y = cy + v
        width_px = max(1, int(round(calibre * 110e-3 / ((extent[1] - extent[0]) / scale))))
        cv2.polylines(canvas, [to_px(x, y).astype(np.int32)], False, calibre, thickness=width_px,
                      lineType=cv2.LINE_AA)
    canvas = cv2.GaussianBlur(canvas, (0, 0), 1.0)
    return np.clip(cv2.resize(canvas, (n_x, n_y), interpolation=cv2.INTER_AREA) * 1.4, 0.0, 1.0)


@dataclass
class RenderedVolume:
    data: np.ndarray  # (n_bscans, depth, width) uint8
    spacing_mm: tuple[float, float, float]  # (bscan, depth, ascan)
    rnfl_um: np.ndarray  # en-face (n_bscans, width) RNFL thickness
    damage: np.ndarray  # en-face (n_bscans, width) fraction of axonal RNFL lost
    disc_mask: np.ndarray  # en-face bool
    vessels: np.ndarray  # en-face 0-1


def render_volume(anatomy: EyeAnatomy, preset: str = "small", seed: int = 0, signal: float = 1.0,
                  offset_mm: tuple[float, float] = (0.0, 0.0),
                  tilt: tuple[float, float] = (0.0, 0.0)) -> RenderedVolume:
    """Render one acquisition of an eye. ``signal`` scales the signal strength (0.5-1.2 plausible),
    ``offset_mm`` and ``tilt`` vary fixation and head position between visits."""
    rng = np.random.default_rng(seed)
    (n_b, n_z, n_x), (fov_y, fov_z, fov_x) = PRESETS[preset]["shape"], PRESETS[preset]["fov_mm"]
    dz_um = fov_z * 1000.0 / n_z
    xs = (np.arange(n_x) + 0.5 - n_x / 2) * (fov_x / n_x)  # left to right as displayed
    ys = (n_b / 2 - np.arange(n_b) - 0.5) * (fov_y / n_b)  # first B-scan superior
    X, Y = np.meshgrid(xs, ys)
    u_sign = 1.0 if anatomy.laterality == "OD" else -1.0  # nasal is to the right for OD

    cx, cy = anatomy.disc_center_mm
    cx, cy = u_sign * cx + offset_mm[0], cy + offset_mm[1]
    dx, dy = X - cx, Y - cy
    u = u_sign * dx  # positive nasal
    theta = np.rad2deg(np.arctan2(dy, -u)) % 360.0
    rx, ry = anatomy.disc_radii_mm
    r = np.hypot(dx, dy)
    # radius of the disc margin in the direction of each pixel, and the normalised radius
    r_disc = 1.0 / np.sqrt((np.cos(np.deg2rad(theta)) / rx) ** 2 + (np.sin(np.deg2rad(theta)) / ry) ** 2)
    rho = r / r_disc
    inside = rho < 1.0

    rnfl = anatomy.rnfl_um(theta, np.maximum(r, r_disc))
    dmg = anatomy.damage(theta)
    taper = _smoothstep((r - r_disc) / 0.35)  # outer retina ends at the disc margin
    gcl_loss = 1.0 - 0.45 * dmg

    # Bruch's membrane: a gentle bowl, tilted, at ~60-65 % of the depth window.
    z_bm = (0.56 * fov_z * 1000.0 + 18.0 * (X ** 2 + Y ** 2) / 9.0 + tilt[0] * X * 25.0 + tilt[1] * Y * 25.0)
    outer = {k: v * taper * (gcl_loss if k == "gcl" else 1.0) for k, v in OUTER_THICKNESS_UM.items()}
    outer_sum = sum(outer.values())
    z_ilm_out = z_bm - outer_sum - rnfl * np.where(inside, 0.0, 1.0)
    # Cup: the ILM falls from the rim to the cup floor; a notch widens the cup where damage is.
    cdr = np.clip(anatomy.cup_to_disc * (1.0 + 0.25 * dmg * (anatomy.severity > 0)), 0.05, 0.95)
    rim_margin_um = anatomy.rnfl_um(theta, r_disc)
    s = _smoothstep((1.0 - rho) / np.maximum(1.0 - cdr, 0.05))
    z_ilm_in = z_bm - rim_margin_um * (1.0 - s) + anatomy.cup_depth_um * s
    z_ilm = np.where(inside, z_ilm_in, z_ilm_out)
    lamina_top = z_bm + np.maximum(anatomy.cup_depth_um + 60.0, 260.0)

    # Boundaries: top of each layer from RNFL to sclera, as en-face depth maps (um).
    bounds = [z_ilm]
    first_thickness = np.where(inside, lamina_top - z_ilm, rnfl)
    bounds.append(bounds[-1] + first_thickness)
    for name in ("gcl", "ipl", "inl", "opl", "onl", "elm", "myoid", "ez", "oszone", "rpe"):
        bounds.append(bounds[-1] + np.where(inside, 0.0, outer[name]))
    bounds.append(bounds[-1] + np.where(inside, 280.0, anatomy.choroid_um))  # choroid / lamina
    bounds = np.stack(bounds).astype(np.float32) / dz_um  # (13, n_b, n_x) in pixels
    # Real surfaces are smooth at the rim and undulate slightly: blur each map (~60 um) and add a
    # low-frequency ripple, then keep the layers ordered.
    px_um = 1000.0 * fov_x / n_x
    for k in range(bounds.shape[0]):
        ripple = cv2.GaussianBlur(rng.standard_normal((n_b, n_x)).astype(np.float32), (0, 0), 300.0 / px_um)
        ripple *= (3.0 / dz_um) / max(float(ripple.std()), 1e-6)
        bounds[k] = cv2.GaussianBlur(bounds[k], (0, 0), 60.0 / px_um) + ripple
    bounds = np.maximum.accumulate(bounds, axis=0)
    inside_soft = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), 60.0 / px_um)

    vessels = _vessel_map(anatomy, xs, ys, u_sign) * (rho > 0.25)
    vessel_z = (z_ilm + np.where(inside, 60.0, np.minimum(rnfl * 0.6, 45.0))) / dz_um
    vessel_r = (12.0 + 40.0 * vessels) / dz_um

    z = np.arange(n_z, dtype=np.float32)[:, None]
    attenuation_per_px = dz_um / 550.0
    noise_floor = 0.004
    out = np.empty((n_b, n_z, n_x), np.uint8)
    disc_dim = (1.0 - 0.55 * inside_soft).astype(np.float32)  # prelaminar tissue duller than RNFL
    blur_z = max(0.5, 3.0 / dz_um)  # ~6 um axial resolution
    for i in range(n_b):
        b = bounds[:, i, :]
        label = (z >= b[0]).astype(np.int32)
        for k in range(1, b.shape[0]):
            label += z >= b[k]
        refl = REFLECTIVITY[label]
        refl = np.where(label == 1, refl * disc_dim[i][None, :], refl)
        # choroid: large dark vessel lumens; lamina inside the disc: pores
        texture = cv2.GaussianBlur(rng.standard_normal((n_z, n_x)).astype(np.float32), (0, 0), 3.0 * 4 / dz_um + 1)
        texture = np.clip(1.0 + 3.5 * texture, 0.1, 2.2)
        lamina = 0.45 * inside_soft[i][None, :]  # lamina cribrosa: dimmer, porous
        refl = np.where(label == 12, refl * texture * (1.0 - lamina), refl)
        refl = np.where(label == 13, refl * (1.0 - 0.8 * lamina), refl)
        refl = cv2.GaussianBlur(refl, (0, 0), sigmaX=0.4, sigmaY=blur_z)
        # retinal vessels: bright walls in the RNFL and a shadow below
        vd = np.abs(z - vessel_z[i][None, :])
        vr = vessel_r[i][None, :]
        body = (vd < vr) & (vessels[i][None, :] > 0.15) & (inside_soft[i][None, :] < 0.5)
        refl = np.where(body, 0.55 + 0.6 * (vd > 0.6 * vr), refl)
        shadow = (z > vessel_z[i][None, :] + vr) * vessels[i][None, :]
        refl = refl * (1.0 - 0.85 * shadow)
        depth_below_ilm = np.maximum(z - b[0][None, :], 0.0)
        refl = refl * np.exp(-depth_below_ilm * attenuation_per_px)
        speckle = rng.exponential(1.0, (n_z, n_x)).astype(np.float32)
        speckle = cv2.GaussianBlur(speckle, (0, 0), sigmaX=0.5, sigmaY=max(0.6, 2.5 / dz_um)) * 1.1
        intensity = refl * speckle * signal + noise_floor * rng.exponential(1.0, (n_z, n_x))
        db = 10.0 * np.log10(intensity + 1e-6)
        out[i] = np.clip((db + 22.0) * (255.0 / 26.0), 0, 255).astype(np.uint8)
    spacing = (fov_y / n_b, fov_z / n_z, fov_x / n_x)
    return RenderedVolume(out, spacing, rnfl.astype(np.float32), dmg.astype(np.float32) * (~inside),
                          inside, vessels.astype(np.float32))
