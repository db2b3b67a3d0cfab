"""Metrics at image (volume) and case (eye visit) level, with bootstrap intervals and calibration.

The paper's "image" is one OCT volume and its "case" one eye at one visit; reports say so in
their headers. The decision threshold is chosen on the calibrated validation probabilities (see
``calibration.pick_threshold``) and applied unchanged to the test split. Confidence intervals
come from a patient-cluster bootstrap: patients are resampled with all their volumes, because the
volumes of one patient are not independent. VF reports give per-index MAE, the Spearman
correlation within glaucoma eyes (does the estimate rank severity, not just the class?) and the
MAE of the class-mean oracle (a constant per class from the training split) to beat.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import brier_score_loss

from .calibration import pick_threshold  # noqa: F401  (the one threshold rule, re-exported for callers)
from .manifest import person


def cluster_resamples(groups, n_boot: int, seed: int = 0):
    """Index arrays of a patient-cluster bootstrap: draw patients with replacement, keep all their rows."""
    groups = np.asarray(groups)
    ids, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(ids))]
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        pick = rng.integers(0, len(ids), len(ids))
        yield np.concatenate([members[k] for k in pick]) if len(pick) else np.array([], int)


def percentile_ci(boots) -> list[float]:
    """The 95% interval of bootstrap values (NaN, NaN when there are none)."""
    if not len(boots):
        return [float("nan")] * 2
    return [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]


def paired_delta_auc(labels, probs_a, probs_b, groups, n_boot: int = 1000, seed: int = 0) -> dict:
    """AUC(a) - AUC(b) on the same volumes, with a patient-cluster bootstrap 95% CI."""
    labels, a, b = np.asarray(labels), np.asarray(probs_a), np.asarray(probs_b)
    if len(np.unique(labels)) < 2:
        return {"delta_auc": float("nan"), "ci95": [float("nan")] * 2, "n": int(len(labels))}
    delta = float(roc_auc(labels, a) - roc_auc(labels, b))
    boots = [roc_auc(labels[i], a[i]) - roc_auc(labels[i], b[i])
             for i in cluster_resamples(groups, n_boot, seed) if len(np.unique(labels[i])) == 2]
    return {"delta_auc": delta, "ci95": percentile_ci(boots), "n": int(len(labels))}


def expected_calibration_error(labels, probs, bins: int = 10) -> tuple[float, list[dict]]:
    labels, probs = np.asarray(labels, float), np.asarray(probs, float)
    edges = np.linspace(0, 1, bins + 1)
    ece, table = 0.0, []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (probs >= lo) & ((probs < hi) if hi < 1 else (probs <= hi))
        if mask.any():
            conf, acc = probs[mask].mean(), labels[mask].mean()
            ece += mask.mean() * abs(conf - acc)
            table.append({"bin": [float(lo), float(hi)], "n": int(mask.sum()), "confidence": float(conf),
                          "observed": float(acc)})
    return float(ece), table


def reliability_png(reliability: list[dict], path, title: str = "") -> None:
    """A reliability diagram (observed glaucoma rate against predicted probability), as a PNG."""
    import cv2

    size, m = 420, 50
    img = np.full((size, size, 3), 255, np.uint8)
    span = size - 2 * m

    def px(x, y):
        return int(m + x * span), int(size - m - y * span)
    cv2.rectangle(img, px(0, 0), px(1, 1), (0, 0, 0), 1)
    cv2.line(img, px(0, 0), px(1, 1), (160, 160, 160), 1, cv2.LINE_AA)
    pts = [px(b["confidence"], b["observed"]) for b in reliability]
    for a, b in zip(pts, pts[1:]):
        cv2.line(img, a, b, (200, 90, 30), 2, cv2.LINE_AA)
    for p, b in zip(pts, reliability):
        cv2.circle(img, p, 3 + int(np.sqrt(b["n"])), (200, 90, 30), -1, cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for t in (0.0, 0.5, 1.0):  # ticks: without them the diagram cannot be read
        x, y = px(t, 0)
        cv2.line(img, (x, y), (x, y + 5), (0, 0, 0), 1)
        cv2.putText(img, f"{t:.1f}", (x - 10, y + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        x, y = px(0, t)
        cv2.line(img, (x - 5, y), (x, y), (0, 0, 0), 1)
        cv2.putText(img, f"{t:.1f}", (x - 32, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "predicted probability", (m + 90, size - 10), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "observed", (5, m - 10), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title[:48], (m, 22), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def ece_floor(probs, units, n_sim: int = 1000, seed: int = 0, bins: int = 10) -> list[float]:
    """What a perfectly calibrated model's ECE would read here: [median, 95th percentile].

    ECE is biased upwards on a small test set (each bin's observed rate is noisy), and the volumes
    of one eye share its label, so the noise is that of the eyes, not of the volumes. Labels are
    drawn per unit (``units``: the eye of each row) with the unit's mean probability, as if the
    model were right, and the ECE of those labels against the same probabilities is taken. An
    observed ECE below the 95th percentile cannot be told from perfect calibration on this set; on
    60 synthetic patients (~90 eyes) the median alone is ~0.06.
    """
    probs = np.asarray(probs, dtype=np.float64)
    ids, inverse = np.unique(np.asarray(units), return_inverse=True)
    if not len(probs):
        return [float("nan")] * 2
    unit_p = np.bincount(inverse, probs) / np.bincount(inverse)
    rng = np.random.default_rng(seed)
    sims = [expected_calibration_error(rng.random(len(ids))[inverse] < unit_p[inverse], probs, bins)[0]
            for _ in range(n_sim)]
    return [float(np.median(sims)), float(np.percentile(sims, 95))]


def _point_metrics(labels, probs, threshold) -> dict:
    """Accuracy, F1 and AUC in plain NumPy: the bootstrap calls this 500 times per report, and
    scikit-learn's input checks made it 60% of a small training run (tests pin the equality)."""
    labels, probs = np.asarray(labels).astype(int), np.asarray(probs, dtype=np.float64)
    pred = probs >= threshold
    tp = int(np.sum(pred & (labels == 1)))
    fp, fn = int(np.sum(pred & (labels == 0))), int(np.sum(~pred & (labels == 1)))
    out = {"accuracy": float(np.mean(pred == (labels == 1))) if len(labels) else float("nan"),
           "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0}
    out["auc"] = roc_auc(labels, probs)
    return out


def roc_auc(labels, probs) -> float:
    """ROC AUC as the Mann-Whitney U with average ranks for ties (NaN with one class only)."""
    labels, probs = np.asarray(labels).astype(int), np.asarray(probs, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int(len(labels) - labels.sum())
    if not (n_pos and n_neg):
        return float("nan")
    order = np.argsort(probs, kind="mergesort")
    sorted_p = probs[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_p)) + 1]
    ends = np.r_[starts[1:], len(probs)]
    ranks = np.empty(len(probs))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(labels, probs, threshold, n_boot: int = 500, seed: int = 0, groups=None) -> dict:
    """Point metrics with patient-cluster bootstrap CIs (``groups``: patient per row; None = rows)."""
    labels, probs = np.asarray(labels), np.asarray(probs)
    out = _point_metrics(labels, probs, threshold)
    boots = defaultdict(list)
    groups = np.arange(len(labels)) if groups is None else groups
    for idx in cluster_resamples(groups, n_boot, seed):
        for k, v in _point_metrics(labels[idx], probs[idx], threshold).items():
            if np.isfinite(v):
                boots[k].append(v)
    out["ci95"] = {k: percentile_ci(v) for k, v in boots.items() if v}
    out["brier"] = float(brier_score_loss(labels, probs)) if len(labels) else float("nan")
    out["ece"], out["reliability"] = expected_calibration_error(labels, probs)
    out["n"] = int(len(labels))
    out["bootstrap"] = "patient-cluster" if len(np.unique(groups)) < len(labels) else "volume"
    return out


def vf_metrics(records, volume_vf: dict[str, np.ndarray], class_means: dict | None = None,
               n_boot: int = 500, seed: int = 0) -> dict:
    """Per index: MAE, Spearman within glaucoma volumes, and the class-mean oracle's MAE, with
    patient-cluster bootstrap CIs of the MAE and of the model's MAE minus the oracle's (a
    difference whose interval excludes 0 is a model that beats knowing the class)."""
    out = {}
    labels = np.array([r.label for r in records])
    groups = np.array([person(r) for r in records])
    for name, pred in volume_vf.items():
        truth = np.array([np.nan if r.vf[name] is None else r.vf[name] for r in records], dtype=np.float64)
        ok = ~np.isnan(truth)
        if not ok.any():
            continue
        pred = np.asarray(pred, dtype=np.float64)
        err = np.abs(pred - truth)
        row = {"mae": float(err[ok].mean()), "n": int(ok.sum())}
        g = ok & (labels == 1)
        if g.sum() >= 3 and np.ptp(truth[g]) > 0 and np.ptp(pred[g]) > 0:
            row["spearman_glaucoma"] = float(spearmanr(pred[g], truth[g]).statistic)
        oracle_err = None
        if class_means and name in class_means:
            oracle = np.array([class_means[name][str(lab)] for lab in labels], dtype=np.float64)
            oracle_err = np.abs(oracle - truth)
            row["class_mean_mae"] = float(oracle_err[ok].mean())
            row["mae_minus_class_mean"] = row["mae"] - row["class_mean_mae"]
        boots = defaultdict(list)
        for idx in cluster_resamples(groups[ok], n_boot, seed):
            e = err[ok][idx]
            boots["mae"].append(float(e.mean()))
            if oracle_err is not None:
                o = oracle_err[ok][idx]
                boots["class_mean_mae"].append(float(o.mean()))
                boots["mae_minus_class_mean"].append(float(e.mean() - o.mean()))
        row["ci95"] = {k: percentile_ci(v) for k, v in boots.items()}
        out[name] = row
    return out


def md_checks(records, volume_md) -> dict:
    """The demo model's acceptance checks on MD: share of normal volumes with predicted MD >= -2.5 dB,
    and predicted vs true MD per disease stage (manifest column ``stage`` or ``severity`` bands)."""
    md = np.asarray(volume_md, dtype=np.float64)
    labels = np.array([r.label for r in records])
    out = {}
    if (labels == 0).any():
        out["normal_md_ge_-2.5_share"] = float(np.mean(md[labels == 0] >= -2.5))
        groups = np.array([person(r) for r in records])[labels == 0]
        normal_ok = md[labels == 0] >= -2.5
        out["normal_md_ge_-2.5_share_ci95"] = percentile_ci(
            [float(normal_ok[idx].mean()) for idx in cluster_resamples(groups, 500, 0)])
    # the same among eyes without structural damage: label "normal" also holds preperimetric eyes
    # (damaged structure, normal field), whose structure the network reads
    healthy = np.array([r.extra.get("stage") == "normal" for r in records])
    if healthy.any():
        out["stage_normal_md_ge_-2.5_share"] = float(np.mean(md[healthy] >= -2.5))
    stages = defaultdict(list)
    for r, m in zip(records, md):
        stage = r.extra.get("stage") or ""
        if not stage and r.extra.get("severity"):
            try:
                sev = float(r.extra["severity"])
                stage = "normal" if sev <= 0 else "early" if sev < 0.35 else "moderate" if sev < 0.65 else "advanced"
            except ValueError:
                stage = ""
        if stage:
            stages[stage].append((m, r.vf.get("md")))
    out["md_by_stage"] = {s: {"n": len(v), "predicted_mean": float(np.mean([m for m, _ in v])),
                              "predicted_sd": float(np.std([m for m, _ in v])),
                              "true_mean": float(np.mean([t for _, t in v if t is not None]))
                              if any(t is not None for _, t in v) else None}
                          for s, v in sorted(stages.items())}
    return out


def evaluate_split(records, volume_probs, volume_vf: dict[str, np.ndarray], threshold: float,
                   class_means: dict | None = None, n_boot: int = 500) -> dict:
    """Image-level and case-level classification (patient-cluster CIs) and VF metrics per index.

    ``volume_probs`` are the probabilities the decision uses (calibrated when a calibration exists).
    """
    labels = np.array([r.label for r in records])
    probs = np.asarray(volume_probs)
    patients = [person(r) for r in records]  # the person split_groups found (A12-12)
    report = {"image_level": classification_metrics(labels, probs, threshold, n_boot, groups=patients),
              "threshold": threshold}
    report["image_level"]["ece_floor"] = ece_floor(probs, [f"{r.patient_id}\x1f{r.eye}" for r in records])
    cases, case_person = defaultdict(list), {}
    for r, p in zip(records, probs):
        cases[r.case].append((r.label, p))
        case_person[r.case] = person(r)
    case_labels = np.array([max(lab for lab, _ in v) for v in cases.values()])
    case_probs = np.array([np.mean([p for _, p in v]) for v in cases.values()])
    report["case_level"] = classification_metrics(case_labels, case_probs, threshold, n_boot,
                                                  groups=[case_person[c] for c in cases])
    report["vf_mae"] = vf_metrics(records, volume_vf, class_means)
    if "md" in volume_vf:
        report["md_checks"] = md_checks(records, volume_vf["md"])
    return report


def markdown_table(rows: dict[str, dict], synthetic: bool) -> str:
    """Rows laid out like the paper's Table 1 (image- and case-level metrics, VF MAE), then a
    calibration and VF table: ECE and Brier of the calibrated volume probability, and per index
    the MAE against the class-mean oracle and the within-glaucoma Spearman correlation."""
    lines = []
    if synthetic:
        lines.append("**SYNTHETIC data: engineering result only, not a clinical performance claim.**\n")
    lines.append("Image = one OCT volume; case = one eye at one visit (the paper's terms). "
                 "95% patient-cluster bootstrap CIs.\n")
    lines.append("| Method | Image Acc | Image F1 | Image AUC | Case Acc | Case F1 | Case AUC "
                 "| MAE VFI | MAE MD | MAE PSD |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")

    def fmt(m, k):
        v = m.get(k, float("nan"))
        ci = m.get("ci95", {}).get(k)
        return f"{v:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
    for method, rep in rows.items():
        im, ca, mae = rep["image_level"], rep["case_level"], rep.get("vf_mae", {})
        cells = [fmt(m, k) for m in (im, ca) for k in ("accuracy", "f1", "auc")]
        cells += [f"{mae[n]['mae']:.2f}" if n in mae else "-" for n in ("vfi", "md", "psd")]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines.append("\n| Method | Threshold | ECE | Brier | VF aggregation | MD MAE (class-mean oracle) "
                 "| MD Spearman in glaucoma | VFI MAE (oracle) | PSD MAE (oracle) |")
    lines.append("|---|---|---|---|---|---|---|---|---|")

    def vf_cell(mae, name):
        if name not in mae:
            return "-"
        row = mae[name]
        oracle = f" ({row['class_mean_mae']:.2f})" if "class_mean_mae" in row else ""
        return f"{row['mae']:.2f}{oracle}"
    for method, rep in rows.items():
        im, mae = rep["image_level"], rep.get("vf_mae", {})
        rho = mae.get("md", {}).get("spearman_glaucoma")
        agg = rep.get("aggregation", {}).get("vf", "-") if mae else "-"
        lines.append(f"| {method} | {rep.get('threshold', float('nan')):.3f} | {im.get('ece', float('nan')):.3f} "
                     f"| {im.get('brier', float('nan')):.3f} | {agg} | {vf_cell(mae, 'md')} "
                     f"| {'-' if rho is None else f'{rho:.2f}'} | {vf_cell(mae, 'vfi')} | {vf_cell(mae, 'psd')} |")
    return "\n".join(lines) + "\n"
