"""One eye's optic-nerve-head anatomy, as functions of the clinical angle and the distance from the
Bruch's membrane opening (BMO) centre.

Why a separate description from the rendering: the reference standard (sector RNFL, cup-to-disc,
BMO-MRW), the visual field and the image all derive from the same anatomy, so a model that learns
from the image learns real structure, and the truth written beside each volume is exact.

Numbers are taken from published norms:

- BMO 1.5-2.0 mm across, vertically oval; disc area 1-4 mm^2 (Jonas et al., IOVS 1988;
  Chauhan & Burgoyne, AJO 2013); physiological cup grows with disc size (Jonas 1988).
- BMO minimum rim width (MRW) ~ 300 um in healthy eyes, I > S > N > T (Chauhan et al.,
  Ophthalmology 2015), lost with axons in glaucoma.
- Anterior lamina cribrosa surface ~ 400 um behind the BMO plane in healthy eyes, ~450-600 um in
  glaucoma (Park et al., IOVS 2012; Lee et al., Ophthalmology 2012); prelaminar tissue 100-300 um
  thick over it in healthy eyes, thinner in glaucoma (Kim et al., IOVS 2013). The cup floor is the
  top of that tissue, so it lies ~0-300 um behind the BMO plane in healthy eyes and deeper in
  glaucoma; most cups have a broad floor and sloping walls, a few are V-shaped, and the central
  vessel trunk rises from the floor (Jonas, Surv Ophthalmol 1999).
- Peripapillary RNFL on the 3.46 mm circle: mean ~95 um, double-hump TSNIT profile with
  superior/inferior peaks ~15 deg temporal of vertical (Budenz et al., Ophthalmology 2007),
  peak positions vary between eyes by about +/-15 deg (Hood et al., IOVS 2008); thins with age by
  about 0.5 um/year (Leung et al., Ophthalmology 2012); a ~50 um floor of non-axonal tissue remains
  in end-stage disease (Hood & Kardon, Prog Retin Eye Res 2007).
- Damage: localized (wedge, arcuate) mostly infero- and supero-temporal, and diffuse
  (Jonas, Surv Ophthalmol 1999; Hood et al. 2013 "macular vulnerability zone").

Clinical angles: 0 deg temporal, 90 superior, 180 nasal, 270 inferior, the same for both eyes; a
left eye (OS) is the mirror image of a right eye (OD) across the vertical axis of the cube.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

#: (n_bscans, depth, width) and field of view (mm: bscan axis, depth, A-scan axis) per preset.
PRESETS = {
    "tiny": {"shape": (16, 128, 64), "fov_mm": (6.0, 2.0, 6.0)},
    "small": {"shape": (64, 256, 128), "fov_mm": (6.0, 2.0, 6.0)},
    "demo": {"shape": (64, 320, 160), "fov_mm": (6.0, 2.0, 6.0)},
    "cirrus": {"shape": (200, 1024, 200), "fov_mm": (6.0, 2.0, 6.0)},
}

R_REF_MM = 1.73  # radius of the clinical 3.46 mm RNFL circle
RNFL_FLOOR_UM = 53.0  # non-axonal residual thickness that never thins (the population mean)
AGE_RNFL_UM_PER_YEAR = 0.5
REFERENCE_AGE = 60.0
MRW_FLOOR_UM = 90.0  # glial and vascular rim tissue left when the axons are gone
RIM_HEIGHT_PER_MRW = 1.15  # ILM height above the BMO plane at the BMO, per um of normal minimum rim width
RIM_SHOULDER = 1.0  # the rim's rise from the cup edge to the BMO: 1 a straight slope, 2 a rounded shoulder
# The ILM's height at the BMO where the axons are gone (glia, vessels, the outer retina's end): above
# the 200 um cup edge, so a Cirrus-style vertical C/D stays below 1 (advanced glaucoma ~0.85-0.95).
RIM_BASE_UM = 220.0

# Thickness (um) of the layers between RNFL and choroid, away from the disc.
OUTER_LAYERS = ("gcl", "ipl", "inl", "opl", "onl", "elm", "myoid", "ez", "oszone", "rpe")
OUTER_THICKNESS_UM = {"gcl": 30.0, "ipl": 32.0, "inl": 32.0, "opl": 25.0, "onl": 80.0, "elm": 4.0,
                      "myoid": 22.0, "ez": 10.0, "oszone": 24.0, "rpe": 20.0}

CUP_EDGE_UM = 200.0  # the cup edge: where the ILM lies this far above the BMO plane (Cirrus's cup)
SURFACE_BLUR_UM = 50.0  # the renderer smooths every drawn surface en face by this Gaussian sigma
CUP_SHAPES = ("V", "U", "saucer", "sloping", "steep")
# Per cup profile: the flat floor as a share of the cup radius (before the eye's jitter).
CUP_FLOOR = {"V": 0.0, "U": 0.5, "saucer": 0.65, "sloping": 0.35, "steep": 0.65}


def angle_diff(a, b):
    """Signed difference a - b in degrees, in [-180, 180)."""
    return (np.asarray(a) - b + 180.0) % 360.0 - 180.0


def _bump(theta_deg, centre_deg, kappa):
    """A von Mises bump, 1 at its centre."""
    return np.exp(kappa * (np.cos(np.deg2rad(angle_diff(theta_deg, centre_deg))) - 1.0))


def smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass
class EyeAnatomy:
    """What distinguishes one eye at one point in time.

    ``disc_radii_mm`` are the BMO half-axes (horizontal, vertical); ``physiological_cdr`` is the cup
    the eye would have without glaucoma; ``severity`` is the latent disease state (0 healthy) from
    which the cohort derives the damage (``diffuse_loss``, ``wedges``).
    """

    laterality: str = "OD"
    age: float = 60.0
    disc_center_mm: tuple[float, float] = (0.0, 0.0)  # BMO centre: (nasal-ward x, superior y) from cube centre
    disc_radii_mm: tuple[float, float] = (0.80, 0.88)  # BMO half-axes (horizontal, vertical)
    physiological_cdr: float = 0.4
    cup_shape: str = "U"
    cup_floor: float = 0.45  # flat floor of the cup as a share of the cup radius
    prelaminar_um: float = 200.0  # neural tissue over the lamina at the cup centre, before damage
    lamina_depth_um: float = 400.0  # anterior lamina surface behind the BMO plane, before damage
    trunk_height_um: float = 60.0  # the central vessel trunk's mound on the cup floor
    bm_dip_um: float = 15.0  # Bruch's membrane bows backwards towards the BMO by this much
    rnfl_scale: float = 1.0  # normal variation of the whole RNFL profile
    rnfl_peaks_deg: tuple[float, float] = (75.0, 285.0)  # superior and inferior RNFL peaks
    mrw_scale: float = 1.0
    rnfl_floor_um: float = RNFL_FLOOR_UM  # this eye's non-axonal residue (glia, vessels)
    severity: float = 0.0  # latent glaucoma severity, 0 = healthy
    diffuse_loss: float = 0.0  # fraction of axonal RNFL lost everywhere
    wedges: list[tuple[float, float, float]] = field(default_factory=list)  # (centre deg, width deg, depth 0-1)
    damage_type: str = ""  # "", "wedge", "arcuate", "diffuse", "mixed"
    function_gamma: float = 1.0  # visual-field loss = 1 - (1 - axonal loss) ** gamma (discordance)
    ppa: tuple[float, float, float] | None = None  # peripapillary atrophy: (centre deg, half-width deg, width mm)
    curvature_um_per_mm2: float = 25.0  # posterior pole bowl
    disc_tilt: tuple[float, float] = (0.0, 0.0)  # BM slope (um/mm) along (nasal, superior); myopic tilt
    trunk_offset_mm: tuple[float, float] = (0.12, 0.0)  # central vessel trunk from the BMO centre (nasal, sup.)
    vessel_seed: int = 0
    choroid_um: float = 230.0

    # -- damage and RNFL -------------------------------------------------------------------------
    def damage(self, theta_deg) -> np.ndarray:
        """Fraction (0-1) of axons lost at each clinical angle."""
        theta_deg = np.asarray(theta_deg, dtype=np.float64)
        focal = np.zeros_like(theta_deg)
        for centre, width, depth in self.wedges:
            d = angle_diff(theta_deg, centre)
            # flat-topped profile: wedges have sharp edges, arcuate defects a softer fall-off
            focal = np.maximum(focal, depth * np.exp(-0.5 * (np.abs(d) / (width / 2.355)) ** 4))
        return 1.0 - (1.0 - self.diffuse_loss) * (1.0 - focal)

    def rnfl_normal_um(self, theta_deg, r_mm=R_REF_MM) -> np.ndarray:
        """This eye's RNFL before any glaucoma: individual TSNIT profile, age, thicker near the rim."""
        theta_deg = np.asarray(theta_deg, dtype=np.float64)
        sup, inf = self.rnfl_peaks_deg
        profile = (48.0 + 70.0 * _bump(theta_deg, sup, 2.5) + 75.0 * _bump(theta_deg, inf, 2.5)
                   + 18.0 * _bump(theta_deg, 180.0, 1.0))
        age_um = AGE_RNFL_UM_PER_YEAR * (self.age - REFERENCE_AGE)
        profile = profile * self.rnfl_scale - age_um
        return profile * (R_REF_MM / np.maximum(r_mm, 0.3)) ** 0.85

    def rnfl_um(self, theta_deg, r_mm=R_REF_MM) -> np.ndarray:
        normal = self.rnfl_normal_um(theta_deg, r_mm)
        floor = np.minimum(self.rnfl_floor_um * (R_REF_MM / np.maximum(r_mm, 0.3)) ** 0.5, 0.9 * normal)
        return floor + (normal - floor) * (1.0 - self.damage(theta_deg))

    # -- disc --------------------------------------------------------------------------------------
    def bmo_radius_mm(self, theta_deg) -> np.ndarray:
        rx, ry = self.disc_radii_mm
        t = np.deg2rad(theta_deg)
        return 1.0 / np.sqrt((np.cos(t) / rx) ** 2 + (np.sin(t) / ry) ** 2)

    @property
    def disc_area_mm2(self) -> float:
        return float(np.pi * self.disc_radii_mm[0] * self.disc_radii_mm[1])

    @property
    def rim_loss(self) -> float:
        """Mean axonal loss, which drives cupping."""
        return float(np.mean(self.damage(np.arange(0.0, 360.0, 5.0))))

    def cup_fraction(self, theta_deg) -> np.ndarray:
        """Cup edge as a fraction of the BMO radius at each angle: rim area is lost with the axons
        that pass there, so focal damage notches the rim."""
        loss = 0.7 * self.damage(theta_deg) + 0.3 * self.rim_loss
        rim = (1.0 - self.physiological_cdr ** 2) * (1.0 - 0.55 * loss)
        return np.sqrt(np.clip(1.0 - rim, 0.0025, 0.96))

    @property
    def vertical_cdr(self) -> float:
        """Vertical cup-to-disc ratio (the clinical one), of the recorded cup (``recorded_cup_fraction``)."""
        return float(np.mean(self.recorded_cup_fraction(np.array([90.0, 270.0]))))

    def recorded_cup_fraction(self, theta_deg) -> np.ndarray:
        """The cup as a device measures it (Cirrus, octviewer.structure): where the ILM first rises
        ``CUP_EDGE_UM`` above the BMO plane, as a fraction of the BMO radius; 1 where it never does
        (a rim lower than that is cup by the rule). It differs from the drawn cup edge
        (``cup_fraction``) where the rim is too thin to hold the edge at ``CUP_EDGE_UM``, which
        without this made the truth's cup smaller than any measurement of the image could be."""
        theta = np.asarray(theta_deg, dtype=np.float64)
        table = np.arange(0.0, 360.0, 1.0)
        rho = np.linspace(0.0, 1.0, 401)[:, None]
        radius = self.bmo_radius_mm(table)
        height = self.ilm_height_in_disc_um(rho, table[None, :])
        # the eye's bowl (curvature) lowers the disc's interior below the plane through the BMO ring
        height = height - self.curvature_um_per_mm2 * (np.mean(radius ** 2) - (rho * radius[None, :]) ** 2)
        # the image shows the surface after the renderer's en-face blur (SURFACE_BLUR_UM), which
        # lowers the top of a steep cup wall and moves the 200 um crossing outwards (+40 % cup area
        # in a small steep cup): the truth follows the drawn surface, blurred along the radius
        sigma = SURFACE_BLUR_UM / 1000.0 / float(np.mean(radius)) * (len(rho) - 1)
        height = ndimage.gaussian_filter1d(height, sigma, axis=0, mode="nearest")
        above = height >= CUP_EDGE_UM - 1e-6
        fraction = np.where(above.any(axis=0), rho[above.argmax(axis=0), 0], 1.0)
        return np.interp(theta % 360.0, table, fraction, period=360.0)

    @property
    def lamina_depth_now_um(self) -> float:
        """The lamina bows backwards as axons are lost (~+120 um at total loss)."""
        return float(self.lamina_depth_um + 120.0 * self.rim_loss)

    @property
    def prelaminar_now_um(self) -> float:
        """Prelaminar tissue is mostly axons: it thins with them, glia and capillaries remain."""
        return float(max(self.prelaminar_um * (1.0 - 0.6 * self.rim_loss), 30.0))

    @property
    def cup_depth_now_um(self) -> float:
        """Cup floor (ILM at the cup centre) behind the BMO plane; negative = in front of it."""
        return self.lamina_depth_now_um - self.prelaminar_now_um

    def bm_dip_now_um(self, r_mm, r_bmo_mm) -> np.ndarray:
        """How far Bruch's membrane lies behind its peripheral course at distance ``r_mm`` from the
        BMO centre: the peripapillary BM and sclera bow backwards towards the disc, more so as the
        lamina is pushed back in glaucoma."""
        dip = self.bm_dip_um + 15.0 * self.rim_loss
        return dip * np.exp(-0.5 * (np.maximum(np.asarray(r_mm) - r_bmo_mm, 0.0) / 0.7) ** 2)

    def mrw_normal_um(self, theta_deg) -> np.ndarray:
        theta_deg = np.asarray(theta_deg, dtype=np.float64)
        base = 250.0 + 90.0 * _bump(theta_deg, 270.0, 1.5) + 70.0 * _bump(theta_deg, 90.0, 1.5) \
            + 30.0 * _bump(theta_deg, 180.0, 1.0)
        return base * self.mrw_scale

    def rim_height_um(self, theta_deg) -> np.ndarray:
        """Height of the ILM above the BMO plane at the BMO. It is taller than the minimum rim width
        (which runs obliquely from the BMO to the rim's inner slope): at the disc margin the retina
        is ~350-450 um thick in healthy eyes (RNFL heaped at the rim plus the ending outer retina;
        Chauhan & Burgoyne, AJO 2013, fig. 1), and the glial and outer-retinal part
        (``RIM_BASE_UM``) stays when the axons go. That is why a Cirrus-style cup (ILM 200 um above
        the BMO plane) still finds a rim in most early glaucoma (vertical C/D mostly 0.6-0.8)."""
        normal = RIM_HEIGHT_PER_MRW * self.mrw_normal_um(theta_deg)
        return RIM_BASE_UM + (normal - RIM_BASE_UM) * (1.0 - self.damage(theta_deg))

    def cup_edge_height_um(self, theta_deg) -> np.ndarray:
        """Height of the cup edge above the BMO plane: ``CUP_EDGE_UM``, Cirrus's cup definition (and
        octviewer.structure's), so that a cup measured on the image is the recorded one; where the
        rim is too thin for that (advanced cupping), 70 % of the rim's height."""
        return np.minimum(CUP_EDGE_UM, 0.7 * self.rim_height_um(theta_deg))

    def ilm_height_in_disc_um(self, rho, theta_deg) -> np.ndarray:
        """ILM height above the BMO plane (negative = behind it) inside the BMO (rho = r / r_BMO < 1).

        Inside the cup (``cup_fraction``) a flat floor at ``cup_depth_now_um`` behind the BMO plane
        and a wall, shaped by ``cup_shape``, up to the cup edge (``cup_edge_height_um``); outside it
        the rim rises on to its height at the BMO. A small cup's floor may lie in front of the BMO
        plane; it stays at least 40 um below the cup edge, so the recorded cup is the drawn one."""
        rho = np.asarray(rho, dtype=np.float64)
        c = self.cup_fraction(theta_deg)
        edge = self.cup_edge_height_um(theta_deg)
        depth = np.maximum(self.cup_depth_now_um, 40.0 - edge)
        a = self.cup_floor
        x = np.clip((rho / np.maximum(c, 0.05) - a) / (1.0 - a), 0.0, 1.0)  # 0 on the floor, 1 at the edge
        if self.cup_shape == "V":
            f = 1.0 - x ** 1.3
        elif self.cup_shape == "steep":
            f = 1.0 - x ** 4
        elif self.cup_shape == "saucer":
            f = 1.0 - smoothstep(x) ** 0.8
        else:  # U, sloping: a smooth wall that meets the floor tangentially
            f = 1.0 - smoothstep(x)
        cup = edge - (depth + edge) * f
        # rim: from the cup edge on up to the rim height at the BMO, a rounded shoulder
        rim_h = self.rim_height_um(theta_deg)
        w = np.clip((rho - c) / np.maximum(1.0 - c, 0.03), 0.0, 1.0)
        rim = edge + (rim_h - edge) * (1.0 - (1.0 - w) ** RIM_SHOULDER)
        return np.where(rho < c, cup, rim)

    def mrw_um(self, theta_deg, r_bmo_mm=None) -> np.ndarray:
        """BMO minimum rim width: the shortest distance from the BMO to the ILM in each radial plane."""
        theta_deg = np.atleast_1d(np.asarray(theta_deg, dtype=np.float64))
        r_bmo = self.bmo_radius_mm(theta_deg) if r_bmo_mm is None else np.atleast_1d(r_bmo_mm)
        rho = np.linspace(0.0, 1.0, 201)[:, None]
        h = self.ilm_height_in_disc_um(rho, theta_deg[None, :])
        dist = np.hypot((1.0 - rho) * r_bmo[None, :] * 1000.0, h)
        return np.min(np.where(h < 0, np.inf, dist), axis=0)


SECTOR_NAMES = ("T", "TS", "NS", "N", "NI", "TI")
# Garway-Heath sectors (clinical degrees, 0 = temporal; lo, hi).
SECTORS = {"T": (310, 40), "TS": (40, 80), "NS": (80, 120), "N": (120, 230), "NI": (230, 270), "TI": (270, 310)}


def sector_thetas(name: str, n: int = 64) -> np.ndarray:
    lo, hi = SECTORS[name]
    span = (hi - lo) % 360
    return (lo + (np.arange(n) + 0.5) * span / n) % 360


def sector_rnfl_um(anatomy: EyeAnatomy, damaged: bool = True) -> dict[str, float]:
    """Mean RNFL per Garway-Heath sector on the 3.46 mm circle around the BMO centre."""
    f = anatomy.rnfl_um if damaged else anatomy.rnfl_normal_um
    values = f(np.stack([sector_thetas(name) for name in SECTOR_NAMES]), R_REF_MM).mean(axis=1)
    return {name: float(v) for name, v in zip(SECTOR_NAMES, values)}


def global_rnfl_um(anatomy: EyeAnatomy, damaged: bool = True) -> float:
    theta = np.arange(0.0, 360.0, 1.0)
    f = anatomy.rnfl_um if damaged else anatomy.rnfl_normal_um
    return float(np.mean(f(theta, R_REF_MM)))
