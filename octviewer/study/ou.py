"""Both eyes of a visit: per-eye summaries ("case" level) and the inter-eye asymmetry clinicians read.

An eye visit (the paper's "case") may hold several volumes; its probability and VF estimates are
the means over them, as the design's case-level aggregation says. Structure values come from the
structure analysis (``StructureReport``) when the window supplies one; this module reads only
the agreed fields (``rnfl_global_um``, ``sectors``, ``classes``, ``cup_to_disc``), so it works
before and after that analysis lands.

Asymmetry limits (flag when the absolute OD - OS difference exceeds them):
- global RNFL 9 um: beyond the 95th percentile of inter-eye differences in normal eyes
  (Budenz, Trans Am Ophthalmol Soc 2008);
- vertical cup-to-disc ratio 0.2: the classic asymmetry sign of glaucoma (Armaly 1969;
  Qiu et al., Ophthalmology 2014).
Probabilities and VF are shown side by side with their difference, without a limit, because no
published limit applies to a network's output.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np

from .vf import VfComparison, VfMeasurement, compare_vf, vf_compared

ASYMMETRY_LIMITS = {"rnfl_global_um": 9.0, "cup_to_disc": 0.2}
#: the decimals the OU view and report show those rows with: a row is flagged by its difference as shown, "+0.20
#: ASYMMETRIC" beside the limit 0.20 read as a contradiction (walk-through H129, V4)
ASYMMETRY_DIGITS = {"rnfl_global_um": 1, "cup_to_disc": 2}
SECTOR_NAMES = ("T", "TS", "NS", "N", "NI", "TI")
#: Clinical angles of the Garway-Heath sectors (degrees, 0 = temporal, 90 = superior).
SECTOR_DEGREES = {"T": (310, 40), "TS": (40, 80), "NS": (80, 120), "N": (120, 230), "NI": (230, 270),
                  "TI": (270, 310)}


def refused_reasons(has_result: bool, structure) -> tuple[str, ...] | None:
    """The quality check's reasons where it refused a scan (no network result, its measurement refused), else None:
    the one test of the OU view's cards and the Trend's refused visits."""
    quality = getattr(structure, "quality", None)
    if has_result or quality is None or getattr(quality, "ok", True):
        return None
    return tuple(getattr(quality, "reasons", ()) or ())


@dataclass
class EyeSummary:
    """One eye at one visit, ready to draw; built in a worker, read on the GUI thread."""

    eye: str
    paths: list[str]
    probability: float | None = None
    threshold: float | None = None
    vf_predicted: dict[str, float] = field(default_factory=dict)
    vf_measured: VfMeasurement | None = None
    structure: object | None = None  # StructureReport
    enface: np.ndarray | None = None  # (n_bscans, width) uint8, fundus orientation
    model_name: str = ""
    synthetic: bool = False  # model or data synthetic
    error: str = ""
    notes: tuple[str, ...] = ()  # the predictions' notes (an unverified model file, clipped VF, ...), each once
    scan_date: dt.date | None = None  # the eye's scan at this visit (the latest of several)
    #: with the quality check off, a scan of the eye the check refuses: the note said beside the verdict (A13-17)
    gate_note: str = ""
    #: how many scans' network results ``probability`` and ``vf_predicted`` are the mean of, and the file whose
    #: RNFL and disc figures ``structure`` is (the OU view sets it): a repeat scan's eye did not say either
    #: (walk-through H95, V5)
    n_predictions: int = 0
    structure_path: str = ""

    @property
    def decision(self) -> str:
        if self.probability is None or self.threshold is None:
            return ""
        return "glaucoma" if self.probability >= self.threshold else "normal"

    def rnfl_global_um(self) -> float | None:
        return _number(getattr(self.structure, "rnfl_global_um", None))

    def cup_to_disc(self) -> float | None:
        return _number(getattr(self.structure, "cup_to_disc", None))

    def refusal(self) -> str:
        """Why the eye's scan has no network result where the quality check refused it ("refused by the quality
        check: ..."), else "": an OU card of a refused scan said only "not analysed" (walk-through H107, Y5). The
        reasons name no file (a reader's error, which may, is ``error``)."""
        reasons = refused_reasons(self.probability is not None, self.structure)
        return "refused by the quality check: " + "; ".join(reasons) if reasons is not None else ""

    def missing_reason(self, name: str) -> str:
        """Why an asymmetry row's value is empty for this eye (a blank cell alone tells the reader nothing)."""
        if self.error:
            return self.error
        if name == "probability" or name.endswith("_predicted"):
            return "not analysed by a model" if self.probability is None else "the model gives no such estimate"
        if name.endswith("_measured"):
            return "no visual field recorded for this eye and visit"
        s = self.structure
        if s is None:
            return "no structure measurement"
        reasons = tuple(getattr(getattr(s, "quality", None), "reasons", ()) or ())
        if not getattr(getattr(s, "quality", None), "ok", True):
            return "refused by the quality check: " + "; ".join(reasons)
        if name == "cup_to_disc":
            if getattr(s, "scan_pattern", "") == "circle":
                return "a circle scan does not cover the disc"
            sparse = [r for r in reasons if "too sparse" in r]
            return sparse[0] if sparse else "no disc outline found in this scan"
        return "not measured"

    def sector_um(self, name: str) -> float | None:
        sectors = getattr(self.structure, "sectors", None) or {}
        return _number(sectors.get(name))

    def sector_class(self, name: str) -> str:
        """normal / borderline / outside, or "" when the report does not classify this value."""
        classes = getattr(self.structure, "classes", None) or {}
        for key in (name, f"sector_{name}", f"sectors.{name}", f"rnfl_{name}"):
            if key in classes:
                return str(classes[key])
        return ""

    def vf_compared(self) -> bool:
        """Whether the measured field is near enough the scan to be set against its estimate (the Results
        panel's rule, ``study.vf.vf_compared``): the OU view gave a difference for a field a year off."""
        return self.vf_measured is None or vf_compared(self.vf_measured.date, self.scan_date)

    def vf_comparison(self) -> list[VfComparison]:
        return compare_vf(self.vf_predicted, self.vf_measured)


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def case_level(eye: str, paths: list[str], results: list[tuple]) -> EyeSummary:
    """Aggregate ``analyse`` results (Prediction, StructureReport | None) of one eye's volumes."""
    predictions = [p for p, _ in results if p is not None]
    structures = [s for _, s in results if s is not None]
    summary = EyeSummary(eye=eye, paths=list(paths))
    if predictions:
        summary.probability = float(np.mean([p.probability for p in predictions]))
        summary.n_predictions = len(predictions)
        summary.threshold = float(predictions[0].threshold)
        names = set.intersection(*(set(p.vf) for p in predictions))
        summary.vf_predicted = {k: float(np.mean([p.vf[k] for p in predictions])) for k in sorted(names)}
        summary.model_name = predictions[0].model_name
        summary.synthetic = any(p.synthetic_model for p in predictions)
        summary.notes = tuple(dict.fromkeys(n for p in predictions for n in p.notes))
    if structures:
        summary.structure = structures[0]
    return summary


@dataclass(frozen=True)
class AsymmetryRow:
    name: str
    label: str
    od: float | None
    os: float | None
    limit: float | None
    #: a value printed "~" (the RNFL boundary unsure on most of the circle, the boundary model missing): never
    #: flagged, an "ASYMMETRIC" +27.9 µm pointed at the wrong eye (walk-through H121, U13)
    approximate: bool = False
    #: the eyes' scans name different people (``VisitSummary.eyes_apart``): never flagged
    apart: bool = False

    @property
    def difference(self) -> float | None:
        return None if self.od is None or self.os is None else self.od - self.os

    def _beyond(self) -> bool:
        """The eyes are compared (not ``apart``) and the difference as shown is beyond the limit."""
        if self.limit is None or self.difference is None or self.apart:
            return False
        digits = ASYMMETRY_DIGITS.get(self.name)
        d = self.difference if digits is None else round(self.od, digits) - round(self.os, digits)
        return abs(d) > self.limit + 1e-9  # 0.53 - 0.33 is 0.20000000000000004 in floating point

    @property
    def flagged(self) -> bool:
        return self._beyond() and not self.approximate

    @property
    def mark(self) -> str:
        """What the difference cell says beside the number: "ASYMMETRIC", or for an approximate value beyond the
        limit that it is not flagged and why: a 12 µm difference beside the limit 9 with no word in the flag column
        read as within it, the reason only in the row's label (walk-through H131, W5)."""
        return "ASYMMETRIC" if self.flagged else "beyond the limit, approximate: not flagged" if self._beyond() else ""


def asymmetry(od: EyeSummary | None, os: EyeSummary | None) -> list[AsymmetryRow]:
    """The OD - OS comparisons an OU printout shows; values missing on either side stay None."""
    def get(summary, fn):
        return fn(summary) if summary is not None else None

    rough = any(getattr(getattr(s, "structure", None), "global_uncertain", False) for s in (od, os))

    rows = [
        AsymmetryRow("probability", "Glaucoma probability", get(od, lambda s: s.probability),
                     get(os, lambda s: s.probability), None),
        AsymmetryRow("rnfl_global_um", "Global RNFL (µm; approximate: not flagged)" if rough else "Global RNFL (µm)",
                     get(od, EyeSummary.rnfl_global_um), get(os, EyeSummary.rnfl_global_um),
                     ASYMMETRY_LIMITS["rnfl_global_um"], approximate=rough),
        AsymmetryRow("cup_to_disc", "Vertical cup-to-disc ratio", get(od, EyeSummary.cup_to_disc),
                     get(os, EyeSummary.cup_to_disc), ASYMMETRY_LIMITS["cup_to_disc"]),
    ]
    for key, label in (("md", "MD predicted (dB)"), ("vfi", "VFI predicted (%)")):
        rows.append(AsymmetryRow(f"{key}_predicted", label, get(od, lambda s, k=key: s.vf_predicted.get(k)),
                                 get(os, lambda s, k=key: s.vf_predicted.get(k)), None))
    for key, label in (("md", "MD measured (dB)"), ("vfi", "VFI measured (%)")):
        def measured(s, k=key):
            return s.vf_measured.as_dict().get(k) if s.vf_measured else None
        rows.append(AsymmetryRow(f"{key}_measured", label, get(od, measured), get(os, measured), None))
    return rows


@dataclass
class VisitSummary:
    """Both eyes of one visit, as the OU view and the OU report show them."""

    patient_id: str
    visit: str
    eyes: dict[str, EyeSummary] = field(default_factory=dict)
    #: the study's checks of the visit's scans (``StudyIndex.warnings_for``), kept with the visit they are of:
    #: the OU view showed them above the eyes and the OU report left them out (H56 walk-through, item 6)
    checks: list[str] = field(default_factory=list)
    #: the patient IDs the visit's scans' own headers give; ``patient_identity`` names those that differ from
    #: ``patient_id`` (a manifest row's, which the study files the scans under): the OU report named it alone
    header_ids: list[str] = field(default_factory=list)
    #: the study's lines for an eye's measured fields left out as another person's (``gui.study.checks.
    #: left_out_lines``): the OU view and its report read as if the eye had no perimetry (walk-through H107, Y8)
    left_out: list[str] = field(default_factory=list)
    #: which visits name which person, or write the name in which script (``gui.study.checks.people_lines``; dated:
    #: an identified report's only): the OU view said it and its report did not (walk-through H131, W3)
    people: list[str] = field(default_factory=list)
    #: why OD and OS are not compared: their scans name different people (the study's 'people' check split by
    #: eye); the OU view flagged a cup-to-disc difference between two people ASYMMETRIC (walk-through H135, W9)
    eyes_apart: str = ""

    @property
    def synthetic(self) -> bool:
        return any(e.synthetic for e in self.eyes.values())

    def asymmetry(self) -> list[AsymmetryRow]:
        rows = asymmetry(self.eyes.get("OD"), self.eyes.get("OS"))
        return [dataclasses.replace(r, apart=True) for r in rows] if self.eyes_apart else rows


def patient_identity(study_id: str, header_ids) -> str:
    """The one way a patient is named where the study's ID (a manifest row's, "used as listed") and the scans'
    own headers disagree: "ROW-ID (the scan's header: HDR-ID)", as the window title, the Results panel and the
    scan PDF say it (walk-through H65, W2); the study's ID alone where no header says another."""
    others = [h for h in dict.fromkeys(header_ids) if h and h != study_id]
    if not others:
        return study_id
    whose = "the scans' headers" if len(others) > 1 else "the scan's header"
    return f"{study_id} ({whose}: {', '.join(others)})"


def enface_image(volume) -> np.ndarray:
    """Depth-mean projection as uint8, resampled to square millimetres (rows = B-scans, superior first)."""
    import cv2

    image = volume.display().astype(np.float32).mean(axis=1)
    lo, hi = np.percentile(image, (1, 99.5))
    image = np.clip((image - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    n_bscans, width = image.shape
    sp = volume.spacing
    if sp.bscan_mm and sp.ascan_mm:
        height = int(round(width * (n_bscans * sp.bscan_mm) / (width * sp.ascan_mm)))
        if height > 0 and height != n_bscans:
            image = cv2.resize(image, (width, min(height, 4 * width)), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(image)
