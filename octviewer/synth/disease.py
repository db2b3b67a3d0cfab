"""The population, the disease and the reference standard of the synthetic cohort.

Why a latent severity: in a clinic no single measurement is the disease. Each glaucomatous eye
has a continuous latent severity that grows between visits; it sets the axonal loss (localized
wedge / arcuate defects and diffuse loss, with the location recorded), from which the RNFL, the
rim, the cup and the visual field all follow, each with its own normal variation and noise. The
label is not the severity: it is a clinical rule (glaucomatous optic neuropathy plus a
reproducible visual-field defect) applied to the truth, with label noise near the rule's boundary
as between graders. Eyes with structural damage but no field defect (preperimetric) are
"normal" by that rule, as are eyes with cataract-only field loss.

Visual field: Hood & Kardon's linear model (Prog Retin Eye Res 2007) per 24-2 point, mapped to the
disc through the Garway-Heath sectors (Ophthalmology 2000), turned and jittered per eye because the
map differs between eyes (with the disc's position relative to the fovea and the axial length;
Denniss et al., IOVS 2012): relative sensitivity = remaining share
of axons, total deviation TD = 10 log10 of it, so RNFL stops tracking the field near its floor
(~53 um, varying between eyes; Mwanza et al., IOVS 2015) while the field keeps falling. Each eye
scales that dB loss by its own factor (structure-function discordance, median 0.6: the field lags
the axon count, as a quarter to a third of ganglion cells are lost before a field defect shows;
Kerrigan-Baumrind et al., IOVS 2000; log-SD 0.9 between eyes: some fields fail early, some are
spared long). Each eye has a fixed normal pattern (~1.1 dB per point);
each test adds noise of ~1 dB per point that grows to ~3.5 dB at -10 dB (Henson et al., IOVS 2000;
Artes et al., IOVS 2002), a whole-field fluctuation that grows with damage, and one test in five
is unreliable (false positives lift a damaged field, false negatives sink it). MD = mean TD,
PSD = SD of TD, VFI from the pattern-deviation-flagged points (Bengtsson & Heijl, AJO 2008).
Cataract lowers all points alike: MD falls, PSD does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .anatomy import (
    CUP_FLOOR,
    CUP_SHAPES,
    RNFL_FLOOR_UM,
    SECTOR_NAMES,
    SECTORS,
    EyeAnatomy,
    global_rnfl_um,
    sector_rnfl_um,
    sector_thetas,
)

# 24-2 points served by each Garway-Heath sector (52 in all; inferior disc -> superior field).
VF_POINTS = {"T": 8, "TS": 12, "NS": 6, "N": 6, "NI": 6, "TI": 14}
STAGES = ("normal", "preperimetric", "early", "moderate", "advanced")
GON_LOSS = 0.20  # sector axonal loss that a grader calls glaucomatous optic neuropathy
#: Spread of the field's lag behind the axon count between eyes (log-SD of ``function_gamma``;
#: generator 2.5, was 0.7): with the per-eye map below, it brings r(global RNFL, MD) from ~0.65
#: to ~0.6 (docs/cohort.md)
DISCORDANCE_LOG_SD = 0.9
#: Per-eye structure-function map: the whole map turns by N(0, 10 deg), each point moves N(0, 8 deg)
SF_MAP_TURN_SD_DEG, SF_MAP_POINT_SD_DEG = 10.0, 8.0
VF_DEFECT_DB = -4.0  # third-worst point at or below this: a glaucomatous field defect


def _point_angles() -> np.ndarray:
    angles = []
    for name in SECTOR_NAMES:
        lo, hi = SECTORS[name]
        span = (hi - lo) % 360
        n = VF_POINTS[name]
        angles.extend((lo + (np.arange(n) + 0.5) * span / n) % 360)
    return np.asarray(angles)


POINT_ANGLES = _point_angles()


def point_angles(eye: EyeAnatomy) -> np.ndarray:
    """Disc angle (clinical degrees) that each 24-2 point of this eye maps to. Drawn from the eye's
    own seed, not from the cohort's generator, so an eye keeps its map at every visit and adding
    the map (generator 2.5) left every other random draw of a cohort as it was."""
    rng = np.random.default_rng([eye.vessel_seed, 242])
    turn = rng.normal(0.0, SF_MAP_TURN_SD_DEG)
    return (POINT_ANGLES + turn + rng.normal(0.0, SF_MAP_POINT_SD_DEG, len(POINT_ANGLES))) % 360.0


@dataclass
class Disease:
    """How glaucoma shows in one eye; the current ``severity`` sets how much."""

    kind: str = ""  # "", "wedge", "arcuate", "diffuse", "mixed"
    wedges: list[tuple[float, float, float]] = field(default_factory=list)  # centre deg, width deg, gain
    diffuse_gain: float = 0.0
    rate_per_year: float = 0.0  # latent severity gained per year
    function_gamma: float = 1.0  # discordance: functional loss = 1 - (1 - loss) ** gamma, i.e. TD x gamma

    def location(self) -> str:
        if not self.kind:
            return ""
        names = []
        for centre, _, _ in self.wedges:
            c = centre % 360
            names.append("IT" if 240 <= c < 330 else "ST" if 30 <= c < 120 else "other")
        return self.kind + (":" + "+".join(sorted(set(names))) if names else "")


def apply_disease(eye: EyeAnatomy, disease: Disease, severity: float) -> EyeAnatomy:
    """The eye with the given latent severity of its disease."""
    s = float(np.clip(severity, 0.0, 1.2))
    if not disease.kind or s <= 0:
        return replace(eye, severity=0.0, diffuse_loss=0.0, wedges=[], damage_type="")
    # defects deepen, widen and spread as the disease advances
    wedges = [(c, w * (1.0 + 0.8 * s), float(np.clip(g * s, 0.0, 1.0))) for c, w, g in disease.wedges]
    diffuse = disease.diffuse_gain * s + 0.9 * max(0.0, s - 0.55) ** 1.2
    return replace(eye, severity=s, diffuse_loss=float(np.clip(diffuse, 0.0, 0.97)),
                   wedges=wedges, damage_type=disease.kind, function_gamma=disease.function_gamma)


def random_anatomy(rng: np.random.Generator, laterality: str, age: float) -> EyeAnatomy:
    """A healthy eye drawn from the population (normal variation only)."""
    area = float(np.clip(rng.lognormal(np.log(1.9), 0.22), 1.0, 4.0))
    myopic = rng.random() < 0.12
    ovality = float(rng.normal(1.30, 0.06) if myopic else rng.normal(1.09, 0.05))
    rh = np.sqrt(area / (np.pi * ovality))
    cdr = float(np.clip(0.05 + 0.17 * area + rng.normal(0, 0.12), 0.05, 0.8))
    shape = str(rng.choice(CUP_SHAPES, p=[0.1, 0.4, 0.15, 0.25, 0.1]))
    floor = 0.0 if shape == "V" else float(np.clip(CUP_FLOOR[shape] + rng.normal(0.0, 0.08), 0.1, 0.85))
    # the cup floor is the top of the prelaminar tissue over the lamina: ~0-300 um behind the BMO
    # plane in healthy eyes, deeper where the physiological cup is large, shallow in small cups
    lamina = float(np.clip(rng.normal(400.0, 70.0), 230.0, 600.0))
    floor_depth = float(np.clip(rng.normal(150.0, 80.0) + 600.0 * (cdr - 0.35), -60.0, 380.0))
    prelaminar = max(lamina - floor_depth, 60.0)
    ppa = None
    if myopic or rng.random() < 0.22:
        ppa = (float(rng.normal(0, 25)), float(rng.uniform(35, 90)),
               float(rng.uniform(0.25, 0.6) if myopic else rng.uniform(0.08, 0.3)))
    return EyeAnatomy(
        laterality=laterality, age=float(age),
        disc_center_mm=(float(np.clip(rng.normal(0.0, 0.3), -0.8, 0.8)),
                        float(np.clip(rng.normal(0.0, 0.3), -0.8, 0.8))),
        disc_radii_mm=(float(rh), float(rh * ovality)),
        physiological_cdr=cdr,
        cup_shape=shape,
        cup_floor=floor,
        prelaminar_um=prelaminar,
        lamina_depth_um=lamina,
        trunk_height_um=float(rng.uniform(20.0, 110.0)),
        bm_dip_um=float(rng.uniform(0.0, 30.0)),
        rnfl_scale=float(np.clip(rng.normal(1.0, 0.085), 0.72, 1.3)),
        rnfl_peaks_deg=(75.0 + float(rng.uniform(-15, 15)), 285.0 + float(rng.uniform(-15, 15))),
        mrw_scale=float(np.clip(rng.normal(1.0, 0.15), 0.6, 1.5)),
        rnfl_floor_um=float(np.clip(rng.normal(RNFL_FLOOR_UM, 13.0), 30.0, 80.0)),
        ppa=ppa,
        curvature_um_per_mm2=float(rng.uniform(5.0, 22.0)),
        disc_tilt=((float(rng.uniform(40, 90)) if myopic else float(rng.normal(0, 12))), float(rng.normal(0, 10))),
        trunk_offset_mm=(float(rng.uniform(0.0, 0.2)), float(rng.normal(0, 0.08))),
        vessel_seed=int(rng.integers(1 << 31)),
        choroid_um=float(np.clip(rng.normal(300 - 2.0 * (age - 40), 50), 90, 420)),
    )


def random_disease(rng: np.random.Generator) -> Disease:
    kind = str(rng.choice(["wedge", "arcuate", "diffuse", "mixed"], p=[0.35, 0.30, 0.15, 0.20]))
    wedges = []
    if kind != "diffuse":
        n = 1 if rng.random() < 0.7 else 2
        first = 285.0 if rng.random() < 0.62 else 75.0
        centres = [first, 360.0 - first + 0.0][:n]
        for c in centres:
            width = rng.uniform(22, 45) if kind == "wedge" else rng.uniform(50, 95)
            gain = rng.uniform(1.3, 2.2) if kind == "wedge" else rng.uniform(0.9, 1.5)
            wedges.append((float((c + rng.normal(0, 12)) % 360), float(width), float(gain)))
        if n == 2:  # the second hemifield is usually less damaged
            c, w, g = wedges[1]
            wedges[1] = (c, w, g * rng.uniform(0.4, 0.9))
    # localized defects carry little diffuse loss: a deep wedge moves the field (the many points of
    # its arcuate area) much more than the global RNFL
    diffuse = {"wedge": rng.uniform(0.0, 0.3), "arcuate": rng.uniform(0.05, 0.35),
               "diffuse": rng.uniform(0.7, 1.0), "mixed": rng.uniform(0.4, 0.7)}[kind]
    rate = float(rng.lognormal(np.log(0.025), 0.7)) * (4.0 if rng.random() < 0.12 else 1.0)
    return Disease(kind, wedges, float(diffuse), rate, float(rng.lognormal(np.log(0.6), DISCORDANCE_LOG_SD)))


def initial_severity(rng: np.random.Generator) -> float:
    """Latent severity at the first visit of a glaucomatous eye; tuned so that among eyes meeting
    the reference standard ~50 % are early, 30 % moderate, 20 % advanced (tests pin it). Under
    generator 2.5's wider discordance the same draw gives 56 / 22 / 22 %: the field's spread for a
    given damage thins the moderate band. A narrower, more severe draw (gamma(5.0, 0.15)) gave
    53 / 26 / 21 % but label noise 4.5 % (aimed 5-8 %), fewer preperimetric eyes and a crude cup
    depth cue at AUC 0.81, so this one stays."""
    return float(np.clip(rng.gamma(3.0, 0.21), 0.03, 1.2))


# -- visual field -------------------------------------------------------------------------------

def true_td(eye: EyeAnatomy) -> np.ndarray:
    """Noise-free glaucomatous total deviation (dB) at the 52 points."""
    loss = 1.0 - (1.0 - eye.damage(point_angles(eye))) ** eye.function_gamma
    return 10.0 * np.log10(np.clip(1.0 - loss, 10 ** -3.0, 1.0))


def visual_field(eye: EyeAnatomy, rng: np.random.Generator, cataract_db: float = 0.0,
                 fixed_pattern: np.ndarray | None = None) -> dict[str, float]:
    """VFI (%), MD (dB) and PSD (dB) of one 24-2 test of the eye."""
    td_true = true_td(eye)
    if fixed_pattern is None:
        fixed_pattern = normal_pattern(rng)
    reliability = rng.lognormal(0.0, 0.25) * (1.8 if rng.random() < 0.1 else 1.0)  # false answers, fatigue
    sd = (1.0 + 0.25 * np.minimum(np.abs(td_true), 12.0)) * reliability
    # the whole field moves from test to test (attention, pupil, learning), more in a damaged field
    fluctuation = rng.normal(0.0, 0.6 + 0.1 * abs(float(np.mean(td_true))))
    # unreliable tests: false-positive answers lift the damaged points, false negatives (fatigue)
    # sink them; either moves a damaged field's MD by several dB
    lift = 0.0  # > 0 false positives, < 0 false negatives
    if rng.random() < 0.2:
        lift = rng.uniform(0.1, 0.35) * (1.0 if rng.random() < 0.5 else -1.0)
    td = (td_true * (1.0 - lift) + 3.0 * min(lift, 0.0) + fixed_pattern + rng.normal(0.0, sd) + fluctuation
          - cataract_db)
    td = np.clip(td, -32.0, 6.0)
    md = float(np.mean(td))
    psd = float(np.std(td, ddof=1))
    general_height = np.percentile(td, 85)
    pd = td - general_height
    flagged = pd < -3.0
    point_pct = np.where(flagged, np.clip(100.0 * (1.0 + td / 30.0), 0.0, 100.0), 100.0)
    return {"vfi": float(np.clip(np.mean(point_pct), 0, 100)), "md": float(np.clip(md, -35, 5)),
            "psd": float(np.clip(psd, 0, 20))}


def normal_pattern(rng: np.random.Generator) -> np.ndarray:
    """An eye's own stable departure from the normative field (dB per point)."""
    general = rng.normal(0.0, 1.1)  # the eye's overall height against the age norm
    return general + rng.normal(0.0, 1.1 * rng.lognormal(0.0, 0.3), len(POINT_ANGLES))


def true_md(eye: EyeAnatomy) -> float:
    return float(np.mean(true_td(eye)))


# -- reference standard ------------------------------------------------------------------------

def reference_margin(eye: EyeAnatomy) -> tuple[float, float]:
    """(structure margin, function margin): > 0 means GON / a VF defect, in grader-scale units."""
    thetas = np.stack([sector_thetas(n, 24) for n in SECTOR_NAMES])
    sector_loss = eye.damage(thetas).mean(axis=1)
    gon = (float(sector_loss.max()) - GON_LOSS) / 0.1
    third_worst = float(np.sort(true_td(eye))[2])
    vf = (VF_DEFECT_DB - third_worst) / 2.0
    return gon, vf


def stage_of(eye: EyeAnatomy) -> str:
    gon, vf = reference_margin(eye)
    if gon <= 0:
        return "normal"
    if vf <= 0:
        return "preperimetric"
    md = true_md(eye)
    return "early" if md > -6.0 else "moderate" if md > -12.0 else "advanced"


def clean_label(eye: EyeAnatomy) -> bool:
    gon, vf = reference_margin(eye)
    return gon > 0 and vf > 0


def label_flip_probability(eye: EyeAnatomy) -> float:
    """Graders disagree near the rule's boundary: the flip probability falls off with the margin."""
    gon, vf = reference_margin(eye)
    margin = min(gon, vf) if (gon > 0 and vf > 0) else (gon if gon <= 0 else vf)
    return float(0.5 * np.exp(-((margin / 0.85) ** 2)))


def truth_columns(eye: EyeAnatomy) -> dict[str, float]:
    sectors = sector_rnfl_um(eye)
    mrw = float(np.mean(eye.mrw_um(np.arange(0.0, 360.0, 10.0))))
    return {"severity": eye.severity, "stage": stage_of(eye), "disc_area_mm2": eye.disc_area_mm2,
            "cup_to_disc": eye.vertical_cdr, "bmo_mrw_um": mrw, "rnfl_global_um": global_rnfl_um(eye),
            **{f"rnfl_{k}_um": v for k, v in sectors.items()}}
