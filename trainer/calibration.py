"""Probability calibration (Platt scaling), the decision threshold and VF scaling/aggregation.

Platt scaling maps a raw volume probability p to ``sigmoid(a * logit(p) + b)``. It is fitted on
the validation split's volume probabilities with Platt's smoothed targets (``(N+ + 1)/(N+ + 2)``
for glaucoma, ``1/(N- + 2)`` for normal): with these a perfectly separated validation set gives a
finite, steep map instead of an infinite one. A weak Gaussian prior pulls (a, b) toward the
identity map (1, 0) (``PRIOR`` in units of the summed log loss): without it, a validation set whose
classes sit a hair apart in logit gave a = 5e10 (seen on a 3D-CNN run), a step function that no
model file should carry. ``a`` must come out positive (a monotone map that keeps the ranking) and
at most ``MAX_SLOPE``; otherwise no calibration is stored.

The threshold is chosen on the CALIBRATED validation probabilities: among the cut points between
consecutive distinct probabilities, those with the largest Youden's J; the chosen cut is the
middle of the widest such gap. A perfectly separated validation set thus gets the midpoint
between its highest normal and lowest glaucoma probability, never the edge of the gap.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-6
PRIOR = 0.1
MAX_SLOPE = 100.0


def logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z):
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def fit_platt(labels, probs, iterations: int = 100) -> dict:
    """Newton's method on the smoothed-target log loss; returns the metadata's calibration dict."""
    y, z = np.asarray(labels, dtype=np.float64), logit(probs)
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    if n_pos == 0 or n_neg == 0:
        return {"method": "none"}
    t = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(a, b):  # smoothed-target log loss (stable form) plus the prior
        s = a * z + b
        return float(np.sum(t * np.logaddexp(0, -s) + (1 - t) * np.logaddexp(0, s))
                     + PRIOR * ((a - 1.0) ** 2 + b ** 2))

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(iterations):  # Newton with backtracking: raw probabilities of 1e-6 made plain
        p = sigmoid(a * z + b)   # Newton overshoot and overflow on a GPU run
        g = np.array([np.sum((p - t) * z), np.sum(p - t)]) + 2 * PRIOR * np.array([a - 1.0, b])
        w = p * (1 - p) + 1e-12
        h = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]]) + 2 * PRIOR * np.eye(2)
        step = np.linalg.solve(h, g)
        scale = 1.0
        while scale > 1e-6 and not loss(a - scale * step[0], b - scale * step[1]) <= current:
            scale /= 2
        if scale <= 1e-6:
            break
        a, b = a - scale * step[0], b - scale * step[1]
        current = loss(a, b)
        if np.abs(scale * step).max() < 1e-10:
            break
    if not (np.isfinite(a) and np.isfinite(b) and 0 < a <= MAX_SLOPE):
        return {"method": "none"}
    return {"method": "platt", "a": float(a), "b": float(b)}


def calibrate(labels, probs) -> tuple[dict, float]:
    """The Platt map and the threshold a model file stores, fitted on the validation split.

    A fitted map that a model file may not carry (``octviewer.model.meta.plausible_calibration``: a
    slope near 0 from a model without signal, an intercept past +-20, or a decision boundary beyond
    the network's logit range) is replaced by no calibration and a threshold on the raw probabilities,
    so a training run never ends in a file the viewer refuses.
    """
    from octviewer.model.meta import Calibration, plausible_calibration

    calibration = fit_platt(labels, probs)
    threshold = pick_threshold(labels, apply_calibration(calibration, probs))
    fitted = Calibration("platt", calibration["a"], calibration["b"]) if calibration["method"] == "platt" \
        else Calibration()
    if not plausible_calibration(fitted, threshold):
        calibration, threshold = {"method": "none"}, pick_threshold(labels, probs)
    return calibration, threshold


def apply_calibration(calibration: dict, probs) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if calibration.get("method") != "platt":
        return probs
    return sigmoid(calibration["a"] * logit(probs) + calibration["b"])


def pick_threshold(labels, probs) -> float:
    """Middle of the widest gap among the Youden-optimal cuts (see the module docstring)."""
    y, p = np.asarray(labels), np.asarray(probs, dtype=np.float64)
    if len(np.unique(y)) < 2:
        return 0.5
    u = np.unique(p)
    if len(u) < 2:
        return float(np.clip(u[0], 0.01, 0.99))
    lower, upper = u[:-1], u[1:]
    cuts = (lower + upper) / 2
    tpr = np.array([(p[y == 1] >= c).mean() for c in cuts])
    fpr = np.array([(p[y == 0] >= c).mean() for c in cuts])
    j = tpr - fpr
    best = np.flatnonzero(j >= j.max() - 1e-12)
    widest = best[np.argmax(upper[best] - lower[best])]
    return float(np.clip(cuts[widest], 0.01, 0.99))


def vf_scaling(train_vf: np.ndarray, vf_names, margin: float = 0.05) -> dict:
    """lo/hi per index so the training targets span [margin, 1 - margin] of the sigmoid."""
    out = {}
    for j, name in enumerate(vf_names):
        v = train_vf[:, j][~np.isnan(train_vf[:, j])]
        lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.0, 1.0)
        span = max(hi - lo, 1.0)
        pad = span * margin / (1 - 2 * margin)
        out[name] = {"lo": lo - pad, "hi": lo + span + pad}
    return out


def vf_std(train_vf: np.ndarray, vf_names) -> dict:
    out = {}
    for j, name in enumerate(vf_names):
        v = train_vf[:, j][~np.isnan(train_vf[:, j])]
        out[name] = float(max(v.std(), 1e-3)) if len(v) > 1 else 1.0
    return out


AGGREGATIONS = ("mean", "median", "central")


def aggregate_vf(bscan_vf: np.ndarray, how: str, central_fraction: float = 0.5) -> np.ndarray:
    """(n_bscans, k) B-scan VF estimates -> (k,) volume estimate."""
    if how == "median":
        return np.median(bscan_vf, axis=0)
    if how == "central":
        n = len(bscan_vf)
        keep = max(1, int(round(n * central_fraction)))
        start = (n - keep) // 2
        return bscan_vf[start:start + keep].mean(0)
    return bscan_vf.mean(0)
