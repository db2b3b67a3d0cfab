"""Published normal-eye RNFL figures and the green / yellow / red classification clinicians read.

These are published population figures, not a licensed normative database: no device maker's
reference data ships with this project. The one source used (and checked against its abstract):

- Cirrus HD-OCT, optic disc cube 200x200, 3.46 mm circle, 239 normal subjects at seven sites:
  average 93.42 +/- 9.30 um, superior 117.52 +/- 15.53, inferior 122.76 +/- 15.69,
  nasal 69.03 +/- 11.90, temporal 64.35 +/- 11.22 (mean +/- SD). "Distribution of the retinal nerve
  fiber layer thickness across normals as measured by Cirrus HD-OCT", Invest Ophthalmol Vis Sci
  ARVO E-Abstract (iovs.arvojournals.org, article 2380014).

What follows from having only that source, stated so nobody over-reads a colour:
- The same figures are used for every device. Spectralis reads a few micrometres thicker than
  Cirrus on average, so on Spectralis files the colours lean towards "normal".
- The source gives no age slope, so the classes are not age-adjusted.
- It gives quadrants only: a Garway-Heath sector is compared with the quadrant that contains its
  centre. T and N nearly are their quadrants. TS and TI are normally thicker than their quadrant's
  mean, so their thinning is flagged late (a red TS or TI is outside; a green one does not rule
  thinning out). NS and NI are normally thinner than their quadrant's mean, so against its range a
  quarter or more of normal eyes would read yellow there: they are not classed
  (``UNCLASSED_SECTORS``), and neither are clock hours, for the same reason: the middle nasal and
  temporal hours (3 and 9 o'clock in a right eye) read yellow or red in normal eyes against their
  quadrant's range (see ``CIRRUS_NORMS``).
- Percentiles assume a normal distribution: 5th = mean - 1.645 SD, 1st = mean - 2.326 SD.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = ("Cirrus HD-OCT normals (n=239, IOVS ARVO E-Abstract, article 2380014); published population "
          "figures, not a licensed normative database; not age-adjusted")
#: the device the figures above were measured on
NORMS_DEVICE = "Cirrus HD-OCT"


def source_for(device: str | None) -> str:
    """``SOURCE`` as it applies to a scan of ``device``: for any other device than Cirrus (or an unknown
    one) it says first that these are another device's normal ranges, and which way that leans. A
    Spectralis scan was coloured against Cirrus figures with nothing on screen saying so (walk-through);
    no published Spectralis figures are at hand, so the honest fix is to say it."""
    if "cirrus" in (device or "").lower():
        return SOURCE
    name = " ".join(str(device).split())
    scan = f"{'an' if name[:1].lower() in 'aeio' else 'a'} {name} scan" if name else "a scan of unknown device"
    lean = (" (Spectralis reads a few µm thicker than Cirrus, so its colours lean towards normal)"
            if "spectralis" in (device or "").lower() else "")
    return f"ANOTHER DEVICE'S NORMALS: {NORMS_DEVICE} figures applied to {scan}{lean}. " + SOURCE


def other_device(norms_source: str) -> bool:
    """True when a report's normal figures are another device's than its scan's (``source_for``)."""
    return norms_source != SOURCE


Z_5TH = 1.6449
Z_1ST = 2.3263
CLASSES = ("normal", "borderline", "outside")


@dataclass(frozen=True)
class Norm:
    mean_um: float
    sd_um: float

    @property
    def p5_um(self) -> float:
        return self.mean_um - Z_5TH * self.sd_um

    @property
    def p1_um(self) -> float:
        return self.mean_um - Z_1ST * self.sd_um

    @property
    def p95_um(self) -> float:
        return self.mean_um + Z_5TH * self.sd_um


#: Rechecked 2026-12-06 (fourth walk-through: "the clock-hour colours may over-call the nasal side")
#: against the cited abstract (iovs.arvojournals.org article 2380014, a stored copy of its page): the five
#: figures below are the abstract's, digit for digit. The abstract has no clock-hour (or sector) figures,
#: and no table per clock hour exists here. Against the quadrant holding its centre (``norm_for``): the
#: nasal quadrant's mean (69 µm) averages 135-225 deg, whose superonasal and inferonasal edges are thicker
#: than its middle, so the middle nasal clock hour (3 o'clock OD, 9 o'clock OS; the same holds for the
#: middle temporal hour) reads below its quadrant's mean in normal eyes and turned yellow or red early.
#: No published per-clock-hour figures could be checked offline, so none are entered and clock hours are
#: not classed (``analysis._classes``); a clock-hour table needs a source checked against its own text.
#: Garway-Heath sectors shown in µm without a class: normally thinner than the quadrant whose range
#: would class them (NS and NI lie in the superior and inferior quadrants, whose means their thicker
#: temporal halves, TS and TI, pull up), so that range calls normal eyes thin: on 400 synthetic normal eyes
#: NI read below the inferior 5th percentile in 29 % (NS 5.5 %); published Spectralis sector means (NI about
#: 110 µm against the inferior quadrant's 5th percentile of 97) point the same way. (seventh walk-through)
UNCLASSED_SECTORS = ("NS", "NI")
CIRRUS_NORMS = {
    "global": Norm(93.42, 9.30),
    "S": Norm(117.52, 15.53),
    "I": Norm(122.76, 15.69),
    "N": Norm(69.03, 11.90),
    "T": Norm(64.35, 11.22),
}


def quadrant_of(angle_deg: float) -> str:
    """Quadrant containing a clinical angle (0 temporal, 90 superior, 180 nasal, 270 inferior)."""
    a = angle_deg % 360.0
    if a >= 315.0 or a < 45.0:
        return "T"
    if a < 135.0:
        return "S"
    if a < 225.0:
        return "N"
    return "I"


def norm_for(name: str, centre_deg: float | None = None) -> Norm:
    """The norm for ``global``, a quadrant (T/S/N/I), or any region given its centre angle."""
    if name in CIRRUS_NORMS:
        return CIRRUS_NORMS[name]
    if centre_deg is None:
        raise KeyError(f"no published norm for {name!r}")
    return CIRRUS_NORMS[quadrant_of(centre_deg)]


def classify(value_um: float, norm: Norm) -> str:
    """normal (>= 5th percentile), borderline (1st-5th), outside (< 1st); thicker is normal."""
    if value_um != value_um:  # NaN
        return ""
    if value_um >= norm.p5_um:
        return "normal"
    if value_um >= norm.p1_um:
        return "borderline"
    return "outside"


def worst(classes) -> str:
    present = [c for c in classes if c in CLASSES]
    return max(present, key=CLASSES.index) if present else ""
