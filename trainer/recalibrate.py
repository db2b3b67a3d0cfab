"""``octviewer-train recalibrate``: refit a model file's calibration on a cohort, without retraining.

Why: a network's ranking often carries over to another device, population or generator version
while its probabilities do not (the demo model on generator 3.0: AUC 0.90, ECE 0.07). Refitting the
maps that turn network outputs into what a reader sees fixes that in minutes on a CPU, from labelled
volumes the network never trained on, and leaves the weights untouched to the bit:

- Platt scaling of the volume probability and the decision threshold, with the trainer's own rules
  (``calibration.fit_platt``, ``pick_threshold``);
- with ``vf=True``, an affine map per VF index (least squares of the measured value on the estimate),
  folded into the file's ``vf_scaling`` (the head's sigmoid output s means lo + (hi - lo) * s, so
  a * value + b is the same form with new lo, hi). It is a monotone map, so the median over
  B-scans commutes with it. An index whose fit has a slope <= 0, or whose new range the file
  format refuses as implausible, keeps its old map; the report says which.

The network runs through the viewer's Predictor in exact fp32, as ``evaluate`` does. The outputs
are read back to raw values by inverting the file's current Platt map, so the refit starts from
what the network gives, not from the old calibration.

The new file has no attached evaluation (its figures no longer apply: evaluate it again on data it
has not seen, with ``evaluate --attach``) and is unsigned (its content changed).
``provenance.recalibration`` records what was done, on what (by hash), and the maps it replaced,
and the model card shows it.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from octviewer import load_volume
from octviewer.io.content import CONTENT_DIGEST_KIND
from octviewer.model import Predictor
from octviewer.model.meta import ModelFileError, ModelMeta

from . import stop
from .calibration import apply_calibration, fit_platt, logit, pick_threshold, sigmoid
from .evaluate import expected_calibration_error
from .manifest import ManifestError, assign_splits, content_hash, header_warnings, read_manifest
from .pseudonym import cohort_keys, volume_digests


def network_outputs(model_path, manifest, split: str = "all", seed: int | None = None, device: str = "cpu",
                    progress: Callable[[int, int], None] | None = None) -> dict:
    """Raw (uncalibrated) volume probabilities and VF estimates of every labelled volume of a split."""
    predictor = Predictor(str(model_path), device=device, precision="fp32")
    meta = predictor.model.meta
    seed = meta.provenance.get("split_seed", 0) if seed is None else seed
    records, _ = read_manifest(manifest)
    records = [r for r in assign_splits(records, seed, manifest=manifest) if split == "all" or r.split == split]
    if not records:
        raise ManifestError(manifest, [f"no volumes in the {split!r} split"])
    cal = meta.calibration
    probs, vf = [], {n: [] for n in predictor.model.vf_names}
    for i, r in enumerate(records):
        if stop.requested():  # the command turns Ctrl-C/SIGTERM into this flag (attack run 7, A7-22)
            raise stop.Stopped(f"stopped after {i} of {len(records)} volumes; nothing was written")
        pred = predictor.predict(load_volume(r.path))
        z = logit(pred.probability)
        probs.append(float(sigmoid((z - cal.b) / cal.a)) if cal.method == "platt" else pred.probability)
        for n in vf:
            vf[n].append(float(pred.vf[n]))
        if progress is not None:
            progress(i + 1, len(records))
    return {"records": records, "raw": np.array(probs), "vf": {n: np.array(v) for n, v in vf.items()}}


#: Fewer volumes of a class than this and a Platt map and threshold are noise: two volumes moved the
#: threshold from 0.30 to 0.50 and ECE from 0.08 to 0.30 (attack run 2). A floor, not a recommendation:
#: the demo model's calibration cohorts hold 100+ volumes of each class.
MIN_PER_CLASS = 10


def _enough_of_each_class(model_path, manifest, split, seed) -> None:
    """Refuse before the network runs, from the manifest alone."""
    from octviewer.model import load_model

    records, _ = read_manifest(manifest)
    if seed is None:
        seed = load_model(model_path, "cpu").meta.provenance.get("split_seed", 0)
    records = [r for r in assign_splits(records, seed, manifest=manifest) if split == "all" or r.split == split]
    counts = [sum(1 for r in records if r.label == c) for c in (0, 1)]
    if min(counts) < MIN_PER_CLASS:
        raise ManifestError(manifest, [f"recalibration needs at least {MIN_PER_CLASS} volumes of each class; the "
                                       f"{split!r} split has {counts[0]} normal and {counts[1]} glaucoma"])


def _independent(model_path, manifest, split, seed) -> int:
    """The split seed (the model's when not given), after evaluate --attach's rule (``not_independent``):
    a calibration refitted on the model's own training patients is over-confident, and the file said
    "another cohort" (attack run 9, A9-8). Before the network runs."""
    from octviewer.model import load_model

    from .command import ArgumentError
    from .evaluate_model import not_independent, old_digests_note

    meta = load_model(model_path, "cpu").meta.to_dict()
    seed = (meta.get("provenance") or {}).get("split_seed", 0) if seed is None else seed
    records, _ = read_manifest(manifest)
    records = assign_splits(records, seed, manifest=manifest)
    for warning in header_warnings(records):  # validate's and fit's words, by row count (attack run 12, A12-12)
        print(f"warning: {warning}", file=sys.stderr)
    records = [r for r in records if split == "all" or r.split == split]
    if why := not_independent(meta, content_hash(manifest), split, seed, [r.patient_id for r in records],
                              recalibration=False, volume_paths=[r.path for r in records]):
        raise ArgumentError(f"not independent data, nothing written: {why}; recalibrate on labelled volumes the "
                            "model never trained on (another cohort)")
    if note := old_digests_note(meta):
        print(f"note: {note}", file=sys.stderr)
    return seed


def fit_vf_map(estimate, measured) -> tuple[float, float] | None:
    """(a, b) of measured ~ a * estimate + b by least squares, or None (too few values, slope <= 0)."""
    ok = np.isfinite(estimate) & np.isfinite(measured)
    if ok.sum() < 10 or np.ptp(estimate[ok]) == 0:
        return None
    a, b = np.polyfit(estimate[ok], measured[ok], 1)
    return (float(a), float(b)) if a > 0 else None


def recalibrate(model_path, manifest, out, split: str = "all", seed: int | None = None, vf: bool = False,
                note: str = "", progress: Callable[[int, int], None] | None = None) -> dict:
    """Refit and write ``out`` (never over ``model_path``); returns a report of before and after."""
    from octviewer.model.model_file import _stored, _write

    model_path, out = Path(model_path), Path(out)
    if out.resolve() == model_path.resolve():
        raise ModelFileError(out, "--out must be a new file: the model it recalibrates stays as it was")
    if out.exists() or out.is_symlink():  # it wrote a model over the manifest, a scan, any file (attack run 2)
        raise ModelFileError(out, "--out exists: give the name of a new file (nothing is overwritten)")
    if not out.parent.is_dir():
        raise ModelFileError(out, f"--out: the folder {out.parent.name or '.'} does not exist")
    seed = _independent(model_path, manifest, split, seed)
    _enough_of_each_class(model_path, manifest, split, seed)
    outputs = network_outputs(model_path, manifest, split, seed, progress=progress)
    records, raw = outputs["records"], outputs["raw"]
    labels = np.array([r.label for r in records])
    if len(np.unique(labels)) < 2:
        raise ManifestError(manifest, ["recalibration needs volumes of both classes"])
    state, model = _stored(model_path)
    meta = model.meta.to_dict()
    old_cal, old_threshold = meta["calibration"], float(meta["threshold"])
    cal = fit_platt(labels, raw)
    if cal.get("method") != "platt":
        raise ModelFileError(out, "Platt scaling could not be fitted on these volumes (trainer/calibration.py)")
    calibrated = apply_calibration(cal, raw)
    threshold = float(pick_threshold(labels, calibrated))
    report = {"volumes": int(len(records)), "glaucoma": int(labels.sum()),
              "ece_before": expected_calibration_error(labels, apply_calibration(old_cal, raw))[0],
              "ece_after": expected_calibration_error(labels, calibrated)[0],
              "threshold_before": old_threshold, "threshold_after": threshold, "vf": {}}
    new_scaling, kept = dict(meta["vf_scaling"]), []
    if vf:
        for name, estimate in outputs["vf"].items():
            measured = np.array([np.nan if r.vf.get(name) is None else r.vf[name] for r in records], np.float64)
            fit = fit_vf_map(estimate, measured)
            row = {"mae_before": float(np.nanmean(np.abs(estimate - measured)))}
            if fit is not None:
                a, b = fit
                lo, hi = meta["vf_scaling"][name]["lo"], meta["vf_scaling"][name]["hi"]
                candidate = dict(new_scaling, **{name: {"lo": a * lo + b, "hi": a * hi + b}})
                try:
                    ModelMeta.from_dict(meta | {"vf_scaling": candidate}, out)
                    new_scaling = candidate
                    row |= {"a": a, "b": b, "mae_after": float(np.nanmean(np.abs(a * estimate + b - measured)))}
                except ModelFileError as exc:
                    kept.append(f"{name} ({exc})")
            else:
                kept.append(f"{name} (no usable fit)")
            report["vf"][name] = row
    what = "Platt scaling and threshold" + (" and VF maps" if vf and len(kept) < len(outputs["vf"]) else "")
    meta["calibration"], meta["threshold"], meta["vf_scaling"] = cal, threshold, new_scaling
    meta["evaluation"] = {}
    from .evaluate_model import INDEPENDENCE_NOT_BY_CONTENT, old_digests_note

    caveat = f"; {INDEPENDENCE_NOT_BY_CONTENT}" if old_digests_note(model.meta.to_dict()) else ""  # A16-7
    meta["provenance"]["recalibration"] = {
        "note": (note or f"{what} refitted on {len(records)} volumes of another cohort "
                         f"({dt.date.today().isoformat()}), weights unchanged") + caveat,
        "data": {"manifest_sha256": content_hash(manifest), "split": split, "volumes": int(len(records)),
                 "glaucoma": int(labels.sum()), "patient_keys": cohort_keys(r.patient_id for r in records),
                 "volume_digests": volume_digests(r.path for r in records), "digest_kind": CONTENT_DIGEST_KIND},
        "previous": {"calibration": old_cal, "threshold": old_threshold,
                     "vf_scaling": model.meta.to_dict()["vf_scaling"]},
        "vf_kept": kept, "functions": "trainer.recalibrate (fit_platt, pick_threshold, fit_vf_map)"}
    checked = ModelMeta.from_dict(meta, out)
    _write(out, state, checked)
    report["vf_kept"] = kept
    return report
