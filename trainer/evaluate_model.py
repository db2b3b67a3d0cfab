"""``octviewer-train evaluate``: a model file against a manifest split, through the viewer's Predictor.

Using the Predictor (not the trainer's own loop) is the point: it proves the exported file gives
the viewer the probabilities the training report claims.
"""

from __future__ import annotations

import numpy as np

from octviewer import load_volume
from octviewer.model import Predictor

from .evaluate import evaluate_split
from .manifest import assign_splits, read_manifest


def evaluate_model(model_path, manifest, split="test", seed=None, device="auto", by: str | None = None) -> dict:
    predictor = Predictor(str(model_path), device=device)
    meta = predictor.model.meta
    seed = meta.get("provenance", {}).get("split_seed", 0) if seed is None else seed
    records, _ = read_manifest(manifest)
    records = [r for r in assign_splits(records, seed) if r.split == split]
    probs, vfs = [], {n: [] for n in predictor.model.vf_names}
    for r in records:
        pred = predictor.predict(load_volume(r.path))
        probs.append(pred.probability)
        for n in vfs:
            vfs[n].append(pred.vf[n])
    report = evaluate_split(records, np.array(probs), {n: np.array(v) for n, v in vfs.items()}, meta["threshold"])
    if by:  # fairness across groups is what the public datasets were published for
        from .evaluate import classification_metrics
        groups = {}
        for r, p in zip(records, probs):
            groups.setdefault(str(r.extra.get(by, "")), []).append((r.label, p))
        report["by_group"] = {by: {g: classification_metrics([x for x, _ in v], [y for _, y in v], meta["threshold"],
                                                             n_boot=200)
                                   for g, v in groups.items()}}
    report["model"] = meta.get("name")
    report["synthetic_data"] = meta.get("synthetic_data", False)
    report["test_volumes"] = [{"path": str(r.path), "probability": float(p)} for r, p in zip(records, probs)]
    return report
