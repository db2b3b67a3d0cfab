"""Surrogate VF labels (SEMT step 3): nearest neighbour within the same class, training split only.

Each volume is represented by the norm-3 pooling of its B-scans' stage-1 features,
F = (sum_i f_i^3)^(1/3) (the paper, after Radenovic et al.). A volume without a VF index takes
that index from the closest volume (Euclidean distance on F) of the same class that has it.
"""

from __future__ import annotations

import numpy as np


def norm3_pool(bscan_features: np.ndarray) -> np.ndarray:
    """(n_bscans, C) non-negative GAP features -> (C,) volume representation."""
    f = np.maximum(np.asarray(bscan_features, dtype=np.float64), 0.0)
    return np.cbrt(np.sum(f**3, axis=0))


def assign_surrogates(ids: list[str], features: np.ndarray, labels: np.ndarray, vf: np.ndarray,
                      vf_names: tuple[str, ...]) -> tuple[np.ndarray, list[dict]]:
    """Fill missing VF (NaN in ``vf`` (N, k)) from same-class neighbours.

    Returns the filled array and the assignment table (volume, index, source volume, distance).
    Indices nobody in a class has stay missing.
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    filled = np.array(vf, dtype=np.float64, copy=True)
    table = []
    for j, name in enumerate(vf_names):
        has = ~np.isnan(vf[:, j])
        for cls in np.unique(labels):
            donors = np.flatnonzero(has & (labels == cls))
            takers = np.flatnonzero(~has & (labels == cls))
            if len(donors) == 0 or len(takers) == 0:
                continue
            d = np.linalg.norm(features[takers, None, :] - features[None, donors, :], axis=-1)
            nearest = np.argmin(d, axis=1)
            for t, k in zip(takers, nearest):
                source = donors[k]
                filled[t, j] = vf[source, j]
                table.append({"volume": ids[t], "index": name, "source": ids[source],
                              "distance": float(d[list(takers).index(t), k]), "class": int(cls)})
    return filled, table
