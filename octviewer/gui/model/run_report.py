"""The Retrain dialog's runs, Qt-free: where a new run goes, and what a finished run says about its
model: the test-split figures of its report.json in plain sentences (a Markdown table reads badly
in a message box), with a warning when the model ranks eyes no better than chance or the test split
is too small."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

from octviewer.core import VF_INDICES


def new_run_dir(runs_folder: str, variant: str) -> Path:
    """A fresh folder under the runs folder, named by variant and time: a finished run's
    checkpoints are never reused by accident."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(runs_folder) / f"{variant}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def evaluated(report) -> bool:
    """The run's report.json (a dict) holds a finite test AUC: only then may its model replace the one
    in use (a NaN AUC passed the ``auc <= 0.6`` chance test and was offered, attack run 8 A8-6)."""
    auc = ((report or {}).get("image_level") or {}).get("auc") if isinstance(report, dict) else None
    return isinstance(auc, (int, float)) and not isinstance(auc, bool) and math.isfinite(auc)


def read_report(run_dir):
    """report.json of a run folder as a dict, or None."""
    report = Path(run_dir) / "report.json" if run_dir else None
    try:
        data = json.loads(report.read_text()) if report is not None and report.exists() else None
    except (OSError, ValueError):
        data = None
    return data if isinstance(data, dict) else None


def evaluation_text(run_dir) -> str:
    """The run's test-split figures in plain sentences (report.json; the Markdown table read
    badly in a message box), with a warning when the model ranks eyes no better than chance."""
    data = read_report(run_dir)
    if data is None:
        return "No evaluation report was written for this run."
    image = data.get("image_level") or {}
    lines = []
    auc = image.get("auc")
    if not evaluated(data):  # NaN (a test split of one class) read "AUC nan" with no warning (A8-6)
        lines.append("WARNING: the model could not be evaluated (no test AUC: the test split lacks a class, or "
                     "no figures were written). Keep the model in use.")
    elif isinstance(auc, (int, float)):
        ci = (image.get("ci95") or {}).get("auc") or []
        ci_text = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if len(ci) == 2 else ""
        lines.append(f"AUC (image level) {auc:.3f}{ci_text}")
        if auc <= 0.6:
            where = "below" if auc < 0.45 else "at or near"
            lines.insert(0, f"WARNING: a test AUC of {auc:.2f} is {where} chance (0.5): this model does "
                            "not tell glaucoma from normal eyes. Keep the model in use.")
    for key, label in (("accuracy", "accuracy"), ("ece", "ECE"), ("brier", "Brier")):
        if isinstance(image.get(key), (int, float)):
            lines.append(f"{label} {image[key]:.3f}")
    for name, vf in (data.get("vf_mae") or {}).items():
        if isinstance(vf, dict) and isinstance(vf.get("mae"), (int, float)):
            base, ci = vf.get("class_mean_mae"), vf.get("ci95") or {}

            def interval(key, ci=ci):
                pair = ci.get(key) or []
                return f" [{pair[0]:.2f}, {pair[1]:.2f}]" if len(pair) == 2 else ""
            diff = vf.get("mae_minus_class_mean")
            unit = VF_INDICES.get(name, {}).get("unit", "")
            lines.append(f"{name.upper()} mean absolute error {vf['mae']:.2f} {unit}{interval('mae')}"
                         + (f" (class-mean baseline {base:.2f}" if isinstance(base, (int, float)) else "")
                         + (f"; difference {diff:+.2f}{interval('mae_minus_class_mean')}"
                            if isinstance(base, (int, float)) and isinstance(diff, (int, float)) else "")
                         + (")" if isinstance(base, (int, float)) else ""))
    n = image.get("n")
    patients = ((data.get("splits") or {}).get("test") or {}).get("patients")
    head = "Test split"
    if n:
        head += f" ({n} volumes" + (f", {patients} patients" if patients else "") + ")"
    from trainer.manifest import MIN_SPLIT_PATIENTS
    if isinstance(patients, int) and patients < MIN_SPLIT_PATIENTS:
        lines.insert(0, f"WARNING: only {patients} test patients: these figures are too uncertain to judge the "
                        "model by.")
    return head + ":\n" + "\n".join(lines) if lines else "The evaluation report holds no figures."

