"""Results of running a model on one volume: frozen, plain NumPy, GUI- and torch-free."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

#: Visual-field indices: unit, clinical range used for the network's sigmoid scaling, normal range.
VF_INDICES = {
    "vfi": {"unit": "%", "range": (0.0, 100.0), "normal": (97.0, 100.0), "label": "VFI"},
    "md": {"unit": "dB", "range": (-35.0, 5.0), "normal": (-2.0, 2.0), "label": "MD"},
    "psd": {"unit": "dB", "range": (0.0, 20.0), "normal": (0.0, 2.5), "label": "PSD"},
}


def outside_normal(name: str, value, weak=()) -> bool:
    """True when ``value`` of VF index ``name`` lies outside its normal range (VF_INDICES): the one rule
    for the ● marks of the panel, the reports and the OU view, for measured values and estimates alike.

    ``weak``: the indices whose estimates are never marked. The panel and the reports pass the ones the model's
    evaluation found WORSE than the class-mean baseline (``worse_vf_indices(prediction.notes)``), beside which
    that is said instead of a normal range: a ● on a predicted PSD worse than the class mean read as an abnormal
    field (walk-through). An estimate merely not shown to beat the baseline is marked as a measured value is,
    under its "read them as weak" caveat: left unmarked, VFI 65 % stood unmarked beside a measured 95 % with its ●
    (walk-through H65, W11). Measured values pass no ``weak``."""
    spec = VF_INDICES.get(name)
    return (spec is not None and value is not None and name not in weak
            and not spec["normal"][0] <= value <= spec["normal"][1])


#: the words of a prediction's note on VF estimates that did not beat the class mean (model.meta writes it)
VF_BASELINE_WORDS = "not shown to beat the class-mean baseline"

#: after a value outside its normal range, as the estimates are marked in the results panel: a measured
#: MD of -7.8 dB went unmarked on paper beside a marked estimate (walk-through)
OUTSIDE_MARK = " ●"
#: what the mark means, said once for the window (Results panel, Help): the estimates get it as the measured values
#: do, and the Results panel's "● measured value outside the normal range" stood under an estimate's ● too
#: (walk-through H82, W17)
OUTSIDE_KEY = f"{OUTSIDE_MARK.strip()} a value (estimated or measured) outside the normal range"

_VF_NOTE = re.compile(r"^(?P<labels>[A-Z, ]+) estimates " + re.escape(VF_BASELINE_WORDS))


def weak_vf_indices(notes) -> set[str]:
    """The VF indices (vfi, md, psd) that the model card did not show to beat the class-mean baseline,
    read back from the prediction's note (``model.meta.vf_baseline_caveat`` writes it): the SR says so per
    index, and the trend does not flag a "significant change" in an estimate no better than the class mean.
    In core: the PACS layer reads it without importing the model layer (torch)."""
    labels = {v["label"]: k for k, v in VF_INDICES.items()}
    for note in notes or ():
        match = _VF_NOTE.match(str(note))
        if match:
            return {labels[x.strip()] for x in match.group("labels").split(",") if x.strip() in labels}
    return set()


#: the words of that note on the indices whose estimates the evaluation found WORSE than the class mean
VF_WORSE_WORDS = "are WORSE than the class-mean baseline"
_VF_WORSE = re.compile(r"(?:^|; )(?P<labels>[A-Z, ]+) estimates " + re.escape(VF_WORSE_WORDS))


def worse_vf_indices(notes) -> set[str]:
    """The VF indices whose estimates the model's own evaluation found WORSE than the class-mean baseline
    (a subset of ``weak_vf_indices``), read back from the same note: such an estimate is said to be worse
    beside its value, in place of its normal range, in the panel, the PDFs and the CSV (walk-through H65,
    W10: a PSD worse than guessing the class mean was shown like VFI and MD beside its normal range)."""
    labels = {v["label"]: k for k, v in VF_INDICES.items()}
    found = set()
    for note in notes or ():
        for match in _VF_WORSE.finditer(str(note)):
            found |= {labels[x.strip()] for x in match.group("labels").split(",") if x.strip() in labels}
    return found


#: what stands beside a worse estimate instead of its normal range (``worse_vf_indices``)
VF_WORSE_BESIDE = "WORSE than the class-mean baseline: do not use"


@dataclass(frozen=True)
class BatchResult:
    """What one batch of B-scans produced; streamed to the viewer as it arrives."""

    indices: np.ndarray  # (k,) B-scan indices
    probability: np.ndarray  # (k,)
    vf: dict[str, np.ndarray]  # name -> (k,) in clinical units
    cam: np.ndarray  # (k, h, w) feature-map resolution, class-logit units


@dataclass(frozen=True)
class Prediction:
    """Per-B-scan and per-volume outputs of one model on one volume.

    ``cam`` stays at the network's feature-map resolution (7 x 7 for a 224 input): mapping to the
    B-scan happens where it is drawn (``octviewer.model.cam.cam_to_bscan`` / ``enface_cam``, which
    read the ``cam_*`` geometry below), which keeps the result small and quick to copy.

    Probabilities are calibrated with the model file's calibration (``raw_probability`` is the
    uncalibrated aggregate). A result that is not a finite probability cannot be constructed: a
    broken model must fail loudly, never produce a "normal" decision.
    """

    bscan_probability: np.ndarray  # (n,) calibrated with the same map as the volume probability
    bscan_vf: dict[str, np.ndarray]  # name -> (n,)
    cam: np.ndarray  # (n, h, w) cells: calibrated logit - logit(threshold) (see octviewer/model/cam.py)
    probability: float  # volume ("image") level, calibrated: see the model's aggregation
    vf: dict[str, float]  # volume level, clinical units, aggregated as the model file says
    threshold: float
    model_name: str
    synthetic_model: bool = False
    device: str = "cpu"
    precision: str = ""  # the network's arithmetic ("bf16", "fp32"); "" where it was not recorded
    seconds: float = 0.0
    remembered: bool = False  # read back from the results store, not computed by this analysis
    notes: tuple[str, ...] = field(default=())
    raw_probability: float | None = None  # before calibration
    cam_input_size: tuple[int, int] = (224, 224)  # network input (h, w) px the CAM cells index
    cam_stride: tuple[float, float] = (32.0, 32.0)  # input px between cells, per axis
    cam_offset: tuple[float, float] = (0.0, 0.0)  # input px of cell 0's receptive-field centre

    def __post_init__(self):
        p, t = self.probability, self.threshold
        if not (isinstance(p, (int, float)) and np.isfinite(p) and 0.0 <= p <= 1.0):
            raise ValueError(f"model '{self.model_name}' gave an invalid probability ({p!r}): no decision")
        if not (isinstance(t, (int, float)) and np.isfinite(t) and 0.0 < t < 1.0):
            raise ValueError(f"model '{self.model_name}' has an invalid threshold ({t!r}): no decision")
        for name, v in self.vf.items():
            if not np.isfinite(v):
                raise ValueError(f"model '{self.model_name}' gave an invalid {name} ({v!r})")

    @property
    def decision(self) -> str:
        return "glaucoma" if self.probability >= self.threshold else "normal"

    @property
    def n_bscans(self) -> int:
        return len(self.bscan_probability)


def probability_digits(pairs) -> int:
    """The decimals that print every (probability, threshold) of ``pairs`` apart where they differ: 2, or 3 or 4.
    One number for a page (both eyes of an OU view print one threshold, in one way)."""
    pairs = [(float(p), float(t)) for p, t in pairs]
    for digits in (2, 3, 4):
        if all(f"{p:.{digits}f}" != f"{t:.{digits}f}" or p == t for p, t in pairs):
            return digits
    return 4


def probability_and_threshold(probability: float, threshold: float) -> tuple[str, str]:
    """The probability and the decision threshold as printed beside each other: two decimals, more where two would
    print them equal though they differ. "P(glaucoma) = 0.32, normal (threshold 0.32)" read against Help's rule
    (glaucoma at or above the threshold) where P was 0.3195 and the threshold 0.3215 (walk-through H104, X8)."""
    digits = probability_digits([(probability, threshold)])
    return f"{float(probability):.{digits}f}", f"{float(threshold):.{digits}f}"
