"""The paper's Table 1 where glaucoma labels are scarce: a few training patients keep their label, the
rest keep only their visual field (VF).

Why: on a small test split SEMT, MT and the 2D-ResNet differ within the noise. The multi-task
systems can learn from VF-only volumes (their VF heads) and the 2D-ResNet cannot, so if the
paper's gain exists it should show when labels are few. ``trainer/gpu_label_scarce.sh`` runs it;
this module holds its steps so that the shell script stays thin:

- ``prepare``: a manifest with an explicit patient split (a large test split: inference is cheap);
- ``hidden_label_rows``: which training labels a fit may not see (used by ``train.fit`` through
  ``Config.label_fraction``): the same patients for every system and training seed, per class,
  and nested (the 10 % labelled are among the 25 %);
- ``train``: the ablation (Part and All rows) per labelled fraction and seed;
- ``summary``: per regime the systems' metrics over seeds, paired ΔAUC of SEMT against each system
  with seeds pooled (patient-cluster bootstrap), a verdict on each of the paper's claims, and VF
  MAE beside the class-mean predictor and a structure oracle (a linear regression from the
  generator's true sector RNFL and cup-to-disc ratio).
"""

from __future__ import annotations

if __name__ == "__main__":  # a stop while the imports below load: one line, exit 130 (attack run 12, A12-5)
    from octviewer.core.stop import run_module

    run_module("trainer.label_scarce")

import argparse
import csv
import io
import json
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from .label_hiding import hidden_label_rows, labelled_patients  # noqa: F401  (used by the steps and tests)

#: the paper's claims as (claim, better row, worse row); a claim is tested on image-level AUC
CLAIMS = (
    ("SEMT beats MT", "semt (All)", "mt (All)"),
    ("SEMT beats the 2D-ResNet", "semt (All)", "resnet2d (All)"),
    ("MT beats the 2D-ResNet", "mt (All)", "resnet2d (All)"),
    ("All beats Part: 2D-ResNet", "resnet2d (All)", "resnet2d (Part)"),
    ("All beats Part: MT", "mt (All)", "mt (Part)"),
    ("SEMT beats the 3D-CNN", "semt (All)", "cnn3d (All)"),
    ("SEMT beats the 3D-ResNet", "semt (All)", "resnet3d (All)"),
)
VF_NAMES = ("md", "vfi", "psd")
REFERENCE = "semt (All)"
#: the order of the summary's rows (a system not listed follows them)
SYSTEMS = ("semt (All)", "mt (All)", "mt (Part)", "resnet2d (All)", "resnet2d (Part)", "cnn3d (All)",
           "resnet3d (All)")
CSV_COLUMNS = ("regime", "label_fraction", "system", "seed", "train_labelled_volumes", "train_hidden_volumes",
               "image_auc", "image_auc_lo", "image_auc_hi", "image_accuracy", "image_accuracy_lo",
               "image_accuracy_hi", "image_f1", "image_f1_lo", "image_f1_hi", "case_auc", "case_auc_lo",
               "case_auc_hi", "case_accuracy", "case_f1", "ece", "md_mae", "vfi_mae", "psd_mae",
               "delta_auc_semt_minus_system", "delta_auc_lo", "delta_auc_hi")


# -- the cohort's split --------------------------------------------------------------------------

def prepare(cohort: Path, out: Path, test_patients: int, val_patients: int, seed: int = 0) -> dict:
    """Write ``out`` (beside the cohort's manifest, so its relative paths hold): the cohort's rows
    with a ``split`` column, patients drawn per class for test and validation in proportion to the
    class sizes, every other patient in training. Returns the counts per split.

    The cohort is checked as ``octviewer-train validate`` checks it (``read_manifest`` with its file and header
    checks, then ``check_volumes``; its one-line errors, exit 2: a missing label column or a short row was a
    traceback, a swapped or unreadable row was split and written, A14-13) and ``out`` is checked and written as
    ``octviewer-train``'s --out (a link was written through, a FIFO blocked, the cohort itself was rewritten:
    attack run 7, A7-5, A7-6)."""
    from octviewer.core.csv_safe import csv_row
    from octviewer.core.files import read_small_file

    from .command import ArgumentError, OutputPathError, check_out, write_out
    from .manifest import (
        MAX_MANIFEST_BYTES,
        check_volumes,
        header_warnings,
        label_conflicts,
        read_manifest,
        split_groups,
    )

    cohort, out = Path(cohort), Path(out)
    if out.parent.resolve() != cohort.parent.resolve():
        raise OutputPathError(f"--out {out.name}: must be in the folder of {cohort.name} (the manifest's paths are "
                              "relative to it)")
    check_out(out, cohort)
    if test_patients < 1 or val_patients < 1:  # -5 put every patient in training (A7-7)
        raise ArgumentError(f"--test-patients and --val-patients must be 1 or more (given {test_patients} and "
                            f"{val_patients})")
    # validate's rules, by its calls (check_volumes after read_manifest, as checked_split): read without the file
    # checks, a cohort validate refuses (rows swapped between patients, volumes that do not open) was split and
    # written, the swap called "one per eye?", and cache/train then refused the file prepare wrote (A14-13)
    records, _ = read_manifest(cohort)
    check_volumes(cohort, records)
    for warning in [*label_conflicts(records), *header_warnings(records)]:
        print(f"warning: {warning}", file=sys.stderr)
    # a person the DICOM headers name under several IDs (one per eye) is one patient here, as in fit's split (A11-4)
    groups = split_groups(records)
    person = {r.patient_id: groups[r.row] for r in records}
    cls = defaultdict(int)
    for r in records:
        cls[person[r.patient_id]] = max(cls[person[r.patient_id]], r.label)
    n = len(cls)
    if test_patients + val_patients >= n:
        raise ArgumentError(f"{cohort.name}: {n} patients cannot give {test_patients} test and {val_patients} "
                            "validation patients and keep any for training")
    # per class in proportion, rounded so that the totals are what was asked: round() of each class's share
    # gave 1 test and 1 validation patient of 3 + 3 as 0 and 0 (A7-7); validation is what test + validation
    # takes beyond test, so a tie in one goes to the other class in the other
    n_glaucoma = sum(cls.values())
    test_g = (2 * test_patients * n_glaucoma + n) // (2 * n)
    val_g = (2 * (test_patients + val_patients) * n_glaucoma + n) // (2 * n) - test_g
    quota = {1: (test_g, val_g), 0: (test_patients - test_g, val_patients - val_g)}
    rng = np.random.default_rng(seed)
    split = {}
    for label in (1, 0):
        patients = sorted(p for p, c in cls.items() if c == label)
        rng.shuffle(patients)
        n_test, n_val = quota[label]
        for k, p in enumerate(patients):
            split[p] = "test" if k < n_test else "val" if k < n_test + n_val else "train"
    raw = read_small_file(cohort, MAX_MANIFEST_BYTES).decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(raw, newline=""))
    columns, rows = list(reader.fieldnames or []), list(reader)
    if "split" not in columns:
        columns.append("split")
    for r in rows:
        r["split"] = split[person[r["patient_id"].strip()]]
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=columns)
    w.writeheader()
    # a patient ID '=HYPERLINK(...)' read from the cohort is not written back as a formula (attack run 2 L8)
    w.writerows(csv_row(r, keep=("path",)) for r in rows)
    write_out(out, text.getvalue())
    counts = {s: {"patients": sum(v == s for v in split.values()), "volumes": sum(r["split"] == s for r in rows)}
              for s in ("train", "val", "test")}
    return counts


def warm_cache(manifest: Path, cache_dir: Path, image_size: int, volume_shape=None) -> int:
    """Decode every volume once into the shared cache (2D, and 3D when ``volume_shape`` is given),
    so the training processes started side by side read it instead of each decoding it again."""
    from octviewer.model import Preprocess

    from .cache import build_cache
    from .manifest import read_manifest

    records, _ = read_manifest(manifest)
    pres = [Preprocess(size=image_size)]
    if volume_shape:
        pres.append(Preprocess(name="volume_area_v1", volume_shape=tuple(volume_shape)))
    for pre in pres:
        build_cache(records, pre, Path(cache_dir))
    return len(records)


# -- training ----------------------------------------------------------------------------------

def regime_name(fraction: float) -> str:
    return f"labels{round(100 * fraction):03d}"


def train(base, root: Path, fractions, seeds, variants) -> list[Path]:
    """One ablation (Part and All rows) per (fraction, seed), seed-major, each in
    ``root/labelsNNN/seedS``; checkpoints and model files are deleted after each run (the reports
    keep every test volume's probability). Returns the folders written."""
    from dataclasses import replace

    from .ablation import run_ablation

    check_root(Path(root), base, fractions, seeds)
    done = []
    for seed in seeds:
        for fraction in fractions:
            regime = Path(root) / regime_name(fraction)
            regime.mkdir(parents=True, exist_ok=True)
            (regime / "regime.json").write_text(json.dumps({"label_fraction": fraction}))
            cfg = replace(base, label_fraction=float(fraction))
            run_ablation(cfg, regime / f"seed{seed}", variants, [seed], "both", keep_files=False)
            done.append(regime / f"seed{seed}")
    return done


#: What ``train`` and ``summary`` write in the root (and in a regime's folder): several trains side by side
#: share one root, each its own labelsNNN/seedS folders.
ROOT_ENTRIES = re.compile(r"labels\d{3}|summary\.(json|csv|md)")
REGIME_ENTRIES = re.compile(r"regime\.json|seed\d+")


def check_root(root: Path, base, fractions, seeds) -> None:
    """Before any training: the root new, empty or holding only this command's folders, and each run's
    labelsNNN/seedS folder new or empty, or with --resume an earlier run's (``command.check_run_folder``):
    --out a clinic's folder took the runs among its files (attack run 8, A8-10). Entries are counted, never
    named."""
    from .command import OutputPathError, check_run_folder

    try:
        names = os.listdir(root)
        others = [n for n in names if not ROOT_ENTRIES.fullmatch(n)]
        for regime in (n for n in names if n.startswith("labels") and (root / n).is_dir()):
            others += [n for n in os.listdir(root / regime) if not REGIME_ENTRIES.fullmatch(n)]
    except FileNotFoundError:
        others = []  # made by the first run
    except NotADirectoryError:
        raise OutputPathError(f"--out {root}: is a file, not a folder; give a folder's name") from None
    except OSError as exc:
        raise OutputPathError(f"--out {root}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if others:
        raise OutputPathError(f"--out {root}: holds {len(others)} file(s) or folder(s) this command did not write; "
                              "give a new or empty folder (nothing was written)")
    for seed in seeds:
        for fraction in fractions:
            check_run_folder(root / regime_name(fraction) / f"seed{seed}", bool(base.resume))


# -- summary -----------------------------------------------------------------------------------

def system_name(report: dict) -> str:
    return f"{report.get('requested_variant', report['variant'])} ({report['train_set'].capitalize()})"


#: What the summary reads of a fit's report.json, by key: (type, keys it must hold).
_REPORT_KEYS = {"variant": (str, ()), "train_set": (str, ()), "seed": (int, ()), "test_volumes": (list, ()),
                "image_level": (dict, ("auc", "accuracy", "f1")), "case_level": (dict, ("auc",))}


def not_a_run_report(report) -> str:
    """Why ``report`` (a report.json's JSON) is no fit report the summary can read, or "": JSON of another
    shape (another command's or version's report, a hand edit) ended the summary in a KeyError,
    AttributeError or ValueError traceback (attack run 8, A8-14)."""
    if not isinstance(report, dict):
        return f"a JSON {type(report).__name__}, not an object"
    for key, (kind, inner) in _REPORT_KEYS.items():
        value = report.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"no {key}" if value is None else f"its {key} is not a {kind.__name__}"
        if missing := [k for k in inner if not isinstance(value.get(k), (int, float))]:
            return f"its {key} has no {missing[0]}"
    if not isinstance(report.get("requested_variant", ""), str):
        return "its requested_variant is not a str"
    if not all(isinstance(v, dict) and {"row", "label", "patient", "probability"} <= set(v)
               for v in report["test_volumes"]):
        return "its test_volumes are not test volumes"
    return ""


def _regime_fraction(regime: Path) -> float:
    """The labelled fraction of a labelsNNN folder, from its regime.json, else from its name (NNN %). A
    regime.json of another shape (null, a list) ended the summary in a TypeError traceback: it is left out with
    a warning naming it, as A8-14 leaves out a report.json (attack run 9, A9-1). The value is held to fit's
    --label-fraction rule (``config.checked_values``): a 400-digit integer ended in an OverflowError traceback,
    and 7, 0 or -1 were reported as the share labelled (attack run 10, A10-20)."""
    from .config import ConfigFileError, checked_values

    path = regime / "regime.json"
    try:
        raw = json.loads(path.read_text())["label_fraction"]
        return checked_values({"label_fraction": raw})["label_fraction"]
    except (OSError, ValueError, KeyError, TypeError, IndexError, ConfigFileError) as exc:
        if path.exists() and not isinstance(exc, OSError):
            print(f"warning: {path}: not a regime file (no label_fraction above 0 up to 1); the fraction is taken "
                  f"from the folder's name", file=sys.stderr)
        return int(regime.name[-3:]) / 100


def load_runs(root: Path) -> dict:
    """{regime: {"fraction": f, "runs": {system: {seed: report}}}} from the reports under ``root``."""
    regimes = {}
    for regime in sorted(p for p in Path(root).glob("labels[0-9][0-9][0-9]") if p.is_dir()):
        fraction = _regime_fraction(regime)
        runs = defaultdict(dict)
        for path in sorted(regime.glob("seed*/*/report.json")):
            try:
                report = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a run cut off while writing counts as not run
            if why := not_a_run_report(report):
                print(f"warning: {path}: not a run report ({why}); left out", file=sys.stderr)
                continue
            runs[system_name(report)][report["seed"]] = report
        order = sorted(runs, key=lambda s: (SYSTEMS.index(s) if s in SYSTEMS else len(SYSTEMS), s))
        regimes[regime.name] = {"fraction": fraction, "runs": {s: runs[s] for s in order}}
    return regimes


def _aligned(reports: list[dict]) -> tuple[list[int], np.ndarray, np.ndarray, list[np.ndarray], list[dict]]:
    """The test volumes every report has, in one order: (rows, labels, patients, probabilities per
    report, volume dicts per report)."""
    by_report = [{v["row"]: v for v in r["test_volumes"]} for r in reports]
    rows = sorted(set.intersection(*(set(b) for b in by_report))) if by_report else []
    first = by_report[0] if by_report else {}
    labels = np.array([first[k]["label"] for k in rows], int)
    patients = np.array([first[k]["patient"] for k in rows])
    probs = [np.array([b[k]["probability"] for k in rows]) for b in by_report]
    return rows, labels, patients, probs, by_report


def pooled_delta(stat, groups, n_boot: int, seed: int = 0) -> dict:
    """``stat(index array)`` (a difference averaged over seeds) on all volumes and on a
    patient-cluster bootstrap of them: resampling the same patients for every seed and both systems
    keeps the comparison paired."""
    from .evaluate import cluster_resamples, percentile_ci

    groups = np.asarray(groups)
    point = float(stat(np.arange(len(groups))))
    boots = [v for idx in cluster_resamples(groups, n_boot, seed) if np.isfinite(v := stat(idx))]
    return {"delta": point, "ci95": percentile_ci(boots), "n": int(len(groups))}


def verdict(ci) -> str:
    """Shown (the interval is above 0), refuted (below 0) or not distinguishable (it holds 0)."""
    if not ci or not all(np.isfinite(ci)):
        return "not measured"
    return "shown" if ci[0] > 0 else "refuted" if ci[1] < 0 else "not distinguishable"


def pooled_auc_claim(better: dict, worse: dict, n_boot: int) -> dict | None:
    """ΔAUC (better − worse) averaged over the seeds both systems finished, with its CI."""
    from .evaluate import roc_auc

    seeds = sorted(set(better) & set(worse))
    if not seeds:
        return None
    _, labels, patients, probs, _ = _aligned([better[s] for s in seeds] + [worse[s] for s in seeds])
    k = len(seeds)
    if len(np.unique(labels)) < 2:
        return None

    def stat(idx):
        y = labels[idx]
        return np.mean([roc_auc(y, probs[i][idx]) - roc_auc(y, probs[k + i][idx]) for i in range(k)])
    return {**pooled_delta(stat, patients, n_boot), "seeds": seeds}


def _vf_truth(records_by_row: dict, rows, name: str) -> np.ndarray:
    return np.array([np.nan if records_by_row[r].vf.get(name) is None else records_by_row[r].vf[name]
                     for r in rows], float)


def vf_baselines(records) -> dict:
    """Per test row, the class-mean predictor's and the structure oracle's estimate of each VF index.

    Class-mean predictor: the training split's mean of the index over the volumes of the test
    volume's true class (it knows the class). Structure oracle: least squares from the generator's
    true sector RNFL thickness and cup-to-disc ratio (``rnfl_<sector>_um``, ``cup_to_disc``) to the
    index, fitted on the training volumes with a measured VF (all of them: it needs no label)."""
    train = [r for r in records if r.split == "train"]
    test = [r for r in records if r.split == "test"]
    features = sorted(k for k in (records[0].extra if records else {})
                      if k.startswith("rnfl_") and k.endswith("_um") and k != "rnfl_global_um")
    features += ["cup_to_disc"] if records and "cup_to_disc" in records[0].extra else []

    def design(rs):
        try:
            x = np.array([[float(r.extra[k]) for k in features] for r in rs], float)
        except (KeyError, ValueError):
            return None
        return np.c_[np.ones(len(rs)), x]
    out = {"class_mean": {}, "structure_oracle": {}, "structure_features": features}
    for name in VF_NAMES:
        have = [r for r in train if r.vf.get(name) is not None]
        if not have:
            continue
        means = {c: np.mean([r.vf[name] for r in have if r.label == c] or [np.mean([r.vf[name] for r in have])])
                 for c in (0, 1)}
        out["class_mean"][name] = {r.row: float(means[int(r.label)]) for r in test}
        x_train, x_test = design(have), design(test)
        if features and x_train is not None and x_test is not None:
            coef, *_ = np.linalg.lstsq(x_train, np.array([r.vf[name] for r in have]), rcond=None)
            out["structure_oracle"][name] = dict(zip((r.row for r in test), map(float, x_test @ coef)))
    return out


def pooled_mae_claim(truth: np.ndarray, est_better: list[np.ndarray], est_worse: list[np.ndarray], groups,
                     n_boot: int) -> dict:
    """MAE(worse) − MAE(better) averaged over seeds (positive: the claim holds), on the volumes
    with a measured value."""
    ok = np.isfinite(truth)
    truth = truth[ok]
    a, b = [e[ok] for e in est_better], [e[ok] for e in est_worse]

    def stat(idx):
        return np.mean([np.abs(b[i][idx] - truth[idx]).mean() - np.abs(a[i][idx] - truth[idx]).mean()
                        for i in range(len(a))]) if len(idx) else float("nan")
    return pooled_delta(stat, np.asarray(groups)[ok], n_boot)


def _ci(metric: dict, key: str):
    return (metric.get("ci95") or {}).get(key) or [float("nan")] * 2


def summarise(root: Path, manifest: Path, n_boot: int = 1000) -> dict:
    """Every finished run under ``root`` as rows, claims and VF comparisons (see the module doc)."""
    from .evaluate import paired_delta_auc
    from .manifest import read_manifest

    records, _ = read_manifest(manifest, check_files=False)
    by_row = {r.row: r for r in records}
    baselines = vf_baselines(records)
    regimes = load_runs(root)
    rows, result = [], {"regimes": {}, "structure_features": baselines["structure_features"]}
    every_seed = sorted({s for reg in regimes.values() for by_seed in reg["runs"].values() for s in by_seed})
    every_system = list(dict.fromkeys(s for reg in regimes.values() for s in reg["runs"]))
    for name, regime in regimes.items():
        runs = regime["runs"]
        ref = runs.get(REFERENCE, {})
        entry = {"label_fraction": regime["fraction"], "systems": {}, "claims": {}, "vs_semt": {}, "vf": {},
                 "missing": [f"{system} seed {seed}" for system in every_system for seed in every_seed
                             if seed not in runs.get(system, {})]}
        for system, by_seed in runs.items():
            aucs = [r["image_level"]["auc"] for r in by_seed.values()]
            case = [r["case_level"]["auc"] for r in by_seed.values()]
            entry["systems"][system] = {
                "seeds": sorted(by_seed), "image_auc_mean": float(np.mean(aucs)),
                "image_auc_sd": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0,
                "case_auc_mean": float(np.mean(case)),
                "case_auc_sd": float(np.std(case, ddof=1)) if len(case) > 1 else 0.0,
                "image_accuracy_mean": float(np.mean([r["image_level"]["accuracy"] for r in by_seed.values()])),
                "image_f1_mean": float(np.mean([r["image_level"]["f1"] for r in by_seed.values()]))}
            for seed, rep in sorted(by_seed.items()):
                im, ca, mae = rep["image_level"], rep["case_level"], rep.get("vf_mae", {})
                train_counts = rep.get("splits", {}).get("train", {})
                delta = {}
                if system != REFERENCE and seed in ref:
                    _, labels, patients, probs, _ = _aligned([ref[seed], rep])
                    delta = paired_delta_auc(labels, probs[0], probs[1], patients, n_boot)
                rows.append({
                    "regime": name, "label_fraction": regime["fraction"], "system": system, "seed": seed,
                    "train_labelled_volumes": train_counts.get("volumes", 0) - train_counts.get("label_hidden", 0),
                    "train_hidden_volumes": train_counts.get("label_hidden", 0),
                    **{f"{lvl}_{k}{suf}": v for lvl, m in (("image", im), ("case", ca))
                       for k in ("auc", "accuracy", "f1")
                       for suf, v in (("", m.get(k, float("nan"))), ("_lo", _ci(m, k)[0]), ("_hi", _ci(m, k)[1]))},
                    "ece": im.get("ece", float("nan")),
                    **{f"{n}_mae": mae.get(n, {}).get("mae", float("nan")) for n in VF_NAMES},
                    "delta_auc_semt_minus_system": delta.get("delta_auc", float("nan")),
                    "delta_auc_lo": delta.get("ci95", [float("nan")] * 2)[0],
                    "delta_auc_hi": delta.get("ci95", [float("nan")] * 2)[1]})
            if system != REFERENCE and ref:
                entry["vs_semt"][system] = pooled_auc_claim(ref, by_seed, n_boot)
        for claim, better, worse in CLAIMS:
            test = pooled_auc_claim(runs[better], runs[worse], n_boot) if better in runs and worse in runs else None
            entry["claims"][claim] = {"better": better, "worse": worse, **(test or {}),
                                      "verdict": verdict(test["ci95"]) if test else "not run"}
        entry["vf"] = _vf_section(runs, by_row, baselines, n_boot)
        result["regimes"][name] = entry
    result["rows"] = [{k: row.get(k, "") for k in CSV_COLUMNS} for row in rows]
    return result


def _has_vf(report: dict) -> bool:
    return bool(report["test_volumes"]) and any(k.startswith("vf_") for k in report["test_volumes"][0])


def _vf_section(runs: dict, by_row: dict, baselines: dict, n_boot: int) -> dict:
    """VF MAE of each VF system (mean over seeds) and of the two baselines on the same test volumes,
    and SEMT's MAE against MT's and the baselines' (seeds pooled, positive = SEMT better)."""
    systems = {s: by_seed for s, by_seed in runs.items() if all(_has_vf(r) for r in by_seed.values())}
    out = {"mae": {}, "semt_vs": {}}
    if not systems:
        return out
    rows, _, patients, _, _ = _aligned([r for by_seed in systems.values() for r in by_seed.values()])
    for name in VF_NAMES:
        truth = _vf_truth(by_row, rows, name)
        ok = np.isfinite(truth)
        if not ok.any():
            continue
        per_system = {}
        for system, by_seed in systems.items():
            tables = [{v["row"]: v for v in r["test_volumes"]} for r in by_seed.values()]
            if all(f"vf_{name}" in t[rows[0]] for t in tables):
                per_system[system] = {seed: np.array([t[row][f"vf_{name}"] for row in rows])
                                      for seed, t in zip(by_seed, tables)}
        for system, ests in per_system.items():
            maes = [float(np.abs(e[ok] - truth[ok]).mean()) for e in ests.values()]
            out["mae"].setdefault(system, {})[name] = {
                "mean": float(np.mean(maes)), "sd": float(np.std(maes, ddof=1)) if len(maes) > 1 else 0.0,
                "n_seeds": len(maes), "n": int(ok.sum())}
        base_est = {}
        for base in ("class_mean", "structure_oracle"):
            if name in baselines[base]:
                base_est[base] = est = np.array([baselines[base][name].get(r, np.nan) for r in rows])
                out["mae"].setdefault(base, {})[name] = {"mean": float(np.nanmean(np.abs(est[ok] - truth[ok]))),
                                                         "sd": 0.0, "n_seeds": 0, "n": int(ok.sum())}
        semt = per_system.get(REFERENCE)
        if semt is None:
            continue
        others = {s: e for s, e in per_system.items() if s != REFERENCE}
        others.update({b: dict.fromkeys(semt, e) for b, e in base_est.items()})
        for other, est in others.items():
            seeds = sorted(set(semt) & set(est))
            if seeds:
                test = pooled_mae_claim(truth, [semt[k] for k in seeds], [est[k] for k in seeds], patients, n_boot)
                out["semt_vs"].setdefault(other, {})[name] = {**test, "verdict": verdict(test["ci95"]),
                                                              "seeds": seeds}
    return out


def _f(v, fmt=".3f") -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)


def _delta(test: dict | None) -> str:
    if not test:
        return "-"
    lo, hi = test["ci95"]
    return f"{test['delta']:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def markdown(result: dict) -> str:
    """The summary as Markdown: the verdict table across regimes first, then each regime."""
    names = list(result["regimes"])
    lines = ["# Label-scarce Table 1 (SYNTHETIC data: an engineering result, not a clinical claim)", "",
             "Image = one OCT volume, case = one eye at one visit. ΔAUC is image-level AUC of the first system "
             "minus the second, averaged over the training seeds both finished, with a 95% patient-cluster "
             "bootstrap interval (the same test patients resampled for every seed and both systems). Verdict: "
             "**shown** (interval above 0), **refuted** (below 0), or not distinguishable at this scale.", "",
             "## Verdicts", "",
             "| Claim of the paper | " + " | ".join(
                 f"{100 * result['regimes'][n]['label_fraction']:.0f} % labelled" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for claim, better, worse in CLAIMS:
        cells = []
        for n in names:
            c = result["regimes"][n]["claims"].get(claim, {})
            cells.append(f"{c.get('verdict', 'not run')}: {_delta(c if 'delta' in c else None)}")
        lines.append(f"| {claim} ({better} vs {worse}) | " + " | ".join(cells) + " |")
    vf_claims = [("SEMT's MD beats MT's", "mt (All)"), ("SEMT's MD beats the class-mean predictor", "class_mean"),
                 ("SEMT's MD beats the structure oracle", "structure_oracle")]
    for claim, other in vf_claims:
        cells = []
        for n in names:
            c = result["regimes"][n]["vf"].get("semt_vs", {}).get(other, {}).get("md")
            cells.append(f"{c['verdict']}: {_delta(c)} dB" if c else "not run")
        lines.append(f"| {claim} (MAE difference, positive = SEMT lower) | " + " | ".join(cells) + " |")
    for n in names:
        reg = result["regimes"][n]
        lines += ["", f"## {100 * reg['label_fraction']:.0f} % of training patients labelled ({n})", ""]
        counts = next((r for r in result["rows"] if r["regime"] == n and r["system"] == REFERENCE), None)
        if counts:
            lines += [f"SEMT and MT (All) trained on {counts['train_labelled_volumes']} labelled and "
                      f"{counts['train_hidden_volumes']} VF-only volumes; the 2D-ResNet (All) on the labelled ones.",
                      ""]
        lines += ["| System | seeds | image AUC mean ± SD | case AUC mean ± SD | image accuracy | image F1 "
                  "| ΔAUC SEMT − system, seeds pooled [95% CI] |", "|---|---|---|---|---|---|---|"]
        for system, s in reg["systems"].items():
            lines.append(f"| {system} | {','.join(map(str, s['seeds']))} | {s['image_auc_mean']:.3f} ± "
                         f"{s['image_auc_sd']:.3f} | {s['case_auc_mean']:.3f} ± {s['case_auc_sd']:.3f} | "
                         f"{s['image_accuracy_mean']:.3f} | {s['image_f1_mean']:.3f} | "
                         f"{'(reference)' if system == REFERENCE else _delta(reg['vs_semt'].get(system))} |")
        if reg["missing"]:
            lines += ["", "Not finished (time limit or failure; see the logs): " + ", ".join(reg["missing"]) + "."]
        mae = reg["vf"].get("mae", {})
        if mae:
            lines += ["", "| VF estimate (test volumes with a measured field) | MD MAE dB | VFI MAE % | PSD MAE dB |",
                      "|---|---|---|---|"]
            for system, by_name in mae.items():
                label = {"class_mean": "class-mean predictor (knows the class)",
                         "structure_oracle": "structure oracle (true sector RNFL + C/D)"}.get(system, system)
                cells = [(f"{by_name[v]['mean']:.2f}" + (f" ± {by_name[v]['sd']:.2f}" if by_name[v]["n_seeds"] > 1
                                                          else "")) if v in by_name else "-" for v in VF_NAMES]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(root: Path, manifest: Path, n_boot: int = 1000) -> dict:
    """summary.json, .csv and .md in ``root``, checked and written as the commands' --out (never through
    a link, into a FIFO or over the manifest: attack run 7, A7-6) before the summary is computed."""
    from .command import check_out, write_out

    root = Path(root)
    outs = {name: root / f"summary.{name}" for name in ("json", "csv", "md")}
    for out in outs.values():
        check_out(out, manifest, option="summary")
    result = summarise(root, manifest, n_boot)
    table = io.StringIO()
    w = csv.DictWriter(table, fieldnames=CSV_COLUMNS)
    w.writeheader()
    w.writerows(result["rows"])
    for name, text in (("json", json.dumps(result, indent=2, default=float)), ("csv", table.getvalue()),
                       ("md", markdown(result))):
        write_out(outs[name], text, option="summary")
    return result


# -- command line ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    from octviewer.core.files import no_home

    # octviewer-train's rule (A10-18): train keeps fit's salt, which needs the config folder; with no home folder
    # it ended in a NoHomeFolder traceback (attack run 12, A12-6)
    if no_home("python -m trainer.label_scarce"):
        return 2
    # the docstring's first paragraph: its first line alone stopped mid-sentence (attack run 8, A8-4)
    summary = " ".join(__doc__.split("\n\n")[0].split())
    parser = argparse.ArgumentParser(prog="python -m trainer.label_scarce", description=summary)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="the cohort's manifest with a patient split (large test split)")
    p.add_argument("--cohort", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="manifest to write, in the cohort's folder")
    p.add_argument("--test-patients", type=int, required=True)
    p.add_argument("--val-patients", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("cache", help="decode every volume once into a shared cache")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--cache-dir", type=Path, required=True)
    p.add_argument("--image-size", type=int, required=True)
    p.add_argument("--volume-shape", type=int, nargs=3)
    # the prog ends with "ablation": the fit options leave out --variant and --train-set, as the ablation's do
    p = p_train = sub.add_parser("train", prog="python -m trainer.label_scarce train: label-scarce ablation",
                                 help="the ablation (Part and All) per labelled fraction and seed")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="root folder (labelsNNN/seedS/ below it)")
    p.add_argument("--fractions", type=_fraction, nargs="+", required=True,
                   help="shares of training patients labelled, each above 0 and at most 1")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:  # torch and the models load only for the command that trains
        from . import stop
        from .cli import _add_fit_args, variant_name

        p.add_argument("--variants", nargs="+", type=variant_name,
                       default=["semt", "mt", "resnet2d", "cnn3d", "resnet3d"])

        stop.install_signal_handlers()  # before torch loads: a stop then is one line, exit 130 (attack run 8)
        _add_fit_args(p)
    p = sub.add_parser("summary", help="summary.md, summary.csv and summary.json of the finished runs")
    p.add_argument("root", type=Path)
    p.add_argument("--data", type=Path, required=True, help="the prepared manifest")
    p.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.command == "train":  # twice the same regime or seed trained into one folder, the second over the first
        for option, names in (("--fractions", [regime_name(f) for f in args.fractions]),
                              ("--seeds", [f"seed{s}" for s in args.seeds])):
            if len(set(names)) < len(names):
                p_train.error(f"{option}: a value given twice (as the folders are named: {', '.join(names)[:200]})")
    from .command import error_exit

    try:
        return _run(args)
    except Exception as exc:  # one line and octviewer-train's exit codes (2, 3, 130): they were tracebacks (A7-5)
        if (code := error_exit(exc)) is None:
            raise
        return code


def _fraction(text: str) -> float:
    """A --fractions entry under --label-fraction's rule (``config.checked_values``), checked by argparse: 0,
    1.5 and nan were tracebacks after their regime folders were made (attack run 9, A9-15)."""
    from .config import ConfigFileError, checked_values

    try:
        return checked_values({"label_fraction": text})["label_fraction"]
    except ConfigFileError:
        raise argparse.ArgumentTypeError(f"each must be a number above 0 and at most 1, got {text[:40]!r}") from None


def _run(args) -> int:
    if args.command == "prepare":
        print(json.dumps(prepare(args.cohort, args.out, args.test_patients, args.val_patients, args.seed)))
    elif args.command == "cache":
        from .cli import _run_folder
        from .config import checked_values

        # fit's checks of these options and of its --cache-dir, before any work: --image-size 0 and a --cache-dir
        # naming a file were tracebacks, --image-size 100000 tried to allocate 160 GB, --volume-shape 0 0 0 was
        # taken (attack run 9, A9-14)
        checked_values({"image_size": args.image_size, **({"volume_shape": args.volume_shape} if args.volume_shape
                                                           else {})})
        _run_folder(args.cache_dir, "--cache-dir")
        n = warm_cache(args.data, args.cache_dir, args.image_size, args.volume_shape)
        print(f"cached {n} volumes in {args.cache_dir}")
    elif args.command == "train":
        from . import stop
        from .cli import _check_progress_json, _check_salt, _config

        if stop.requested():  # a time limit's SIGTERM stops at a step (handlers: main); finished runs stay
            raise stop.Stopped("stopped before any work; nothing was written")
        cfg = _config(args)
        _check_salt()  # fit's rule (A8-12): it trained stage 1, then died for want of the salt (attack run 9, A9-4)
        _check_progress_json(cfg)  # fit's rule (A8-18): it appended into the --data manifest (attack run 9, A9-3)
        train(cfg, Path(args.out), args.fractions, args.seeds, args.variants)
    elif args.command == "summary":
        result = write_summary(args.root, args.data, args.n_boot)
        print(f"{len(result['rows'])} runs summarised in {args.root / 'summary.md'}")
    return 0

