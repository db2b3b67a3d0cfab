"""Metrics at image (volume) and case (eye visit) level, with bootstrap intervals and calibration.

The paper's "image" is one OCT volume and its "case" one eye at one visit; reports say so in
their headers. The decision threshold is chosen on the validation split (Youden's J) and applied
unchanged to the test split.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, roc_auc_score, roc_curve


def pick_threshold(labels, probs) -> float:
    labels, probs = np.asarray(labels), np.asarray(probs)
    if len(np.unique(labels)) < 2:
        return 0.5
    fpr, tpr, thr = roc_curve(labels, probs)
    best = int(np.argmax(tpr - fpr))
    return float(np.clip(thr[best], 1e-6, 1 - 1e-6))


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
    cv2.putText(img, "predicted probability", (m + 90, size - 15), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "observed", (5, m - 10), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title[:48], (m, 22), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def _point_metrics(labels, probs, threshold) -> dict:
    labels, probs = np.asarray(labels), np.asarray(probs)
    pred = (probs >= threshold).astype(int)
    out = {"accuracy": float(accuracy_score(labels, pred)), "f1": float(f1_score(labels, pred, zero_division=0))}
    out["auc"] = float(roc_auc_score(labels, probs)) if len(np.unique(labels)) == 2 else float("nan")
    return out


def classification_metrics(labels, probs, threshold, n_boot: int = 500, seed: int = 0) -> dict:
    labels, probs = np.asarray(labels), np.asarray(probs)
    out = _point_metrics(labels, probs, threshold)
    rng = np.random.default_rng(seed)
    boots = defaultdict(list)
    for _ in range(n_boot):
        idx = rng.integers(0, len(labels), len(labels))
        for k, v in _point_metrics(labels[idx], probs[idx], threshold).items():
            if np.isfinite(v):
                boots[k].append(v)
    out["ci95"] = {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in boots.items() if v}
    out["brier"] = float(brier_score_loss(labels, probs)) if len(labels) else float("nan")
    out["ece"], out["reliability"] = expected_calibration_error(labels, probs)
    out["n"] = int(len(labels))
    return out


def evaluate_split(records, volume_probs, volume_vf: dict[str, np.ndarray], threshold: float) -> dict:
    """Image-level and case-level classification, and MAE per VF index where VF was measured."""
    labels = np.array([r.label for r in records])
    probs = np.asarray(volume_probs)
    report = {"image_level": classification_metrics(labels, probs, threshold), "threshold": threshold}
    cases = defaultdict(list)
    for r, p in zip(records, probs):
        cases[r.case].append((r.label, p))
    case_labels = np.array([max(lab for lab, _ in v) for v in cases.values()])
    case_probs = np.array([np.mean([p for _, p in v]) for v in cases.values()])
    report["case_level"] = classification_metrics(case_labels, case_probs, threshold)
    report["vf_mae"] = {}
    for name, pred in volume_vf.items():
        truth = np.array([np.nan if r.vf[name] is None else r.vf[name] for r in records])
        ok = ~np.isnan(truth)
        if ok.any():
            err = np.abs(np.asarray(pred)[ok] - truth[ok])
            report["vf_mae"][name] = {"mae": float(err.mean()), "n": int(ok.sum())}
    return report


def markdown_table(rows: dict[str, dict], synthetic: bool) -> str:
    """Rows laid out like the paper's Table 1: one line per method, image- and case-level metrics."""
    lines = []
    if synthetic:
        lines.append("**SYNTHETIC data: engineering result only, not a clinical performance claim.**\n")
    lines.append("Image = one OCT volume; case = one eye at one visit (the paper's terms). 95% bootstrap CIs.\n")
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
    return "\n".join(lines) + "\n"
