"""``octviewer-train evaluate``: a model file against a manifest split, through the viewer's Predictor.

Using the Predictor (not the trainer's own loop) is the point: it proves the exported file gives
the viewer the probabilities the training report claims.

Metadata v2 (``vf_scaling`` lo/hi, ``calibration``, ``aggregation``) is read from the file. A
Predictor that still exposes the metadata as a plain dict predates v2: it returns the raw mean
probability and VF scaled over the global ranges, so this module applies the file's calibration
and re-maps the VF estimates itself (``_v1_predictor_outputs``). A v2 Predictor (typed
``ModelMeta``) does both, and its outputs are used as they are.
"""

from __future__ import annotations

import numpy as np

from octviewer import load_volume
from octviewer.model import Predictor, scale_vf

from .calibration import aggregate_vf, apply_calibration
from .evaluate import evaluate_split
from .manifest import assign_splits, content_hash, read_manifest
from .pseudonym import patient_key, volume_label


def _meta_dict(meta) -> dict:
    return meta if isinstance(meta, dict) else meta.to_dict()


def _v1_predictor_outputs(pred, meta: dict) -> tuple[float, dict]:
    """(calibrated probability, VF per index) from a pre-v2 Predictor's Prediction."""
    prob = float(apply_calibration(meta.get("calibration", {"method": "none"}), [pred.probability])[0])
    scaling, agg = meta.get("vf_scaling"), meta.get("aggregation", {})
    vf = {}
    for name, values in pred.bscan_vf.items():
        values = np.asarray(values, np.float64)
        if isinstance(scaling, dict) and name in scaling:  # undo the global scaling, apply the file's
            s = scale_vf(name, values).astype(np.float64)
            values = scaling[name]["lo"] + (scaling[name]["hi"] - scaling[name]["lo"]) * s
        vf[name] = float(aggregate_vf(values[:, None], agg.get("vf", "mean"), agg.get("central_fraction", 0.5))[0])
    return prob, vf


def evaluate_model(model_path, manifest, split="test", seed=None, device="auto", by: str | None = None,
                   report_paths: bool = False) -> dict:
    predictor = Predictor(str(model_path), device=device)
    v1 = isinstance(predictor.model.meta, dict)
    meta = _meta_dict(predictor.model.meta)
    seed = meta.get("provenance", {}).get("split_seed", 0) if seed is None else seed
    records, _ = read_manifest(manifest)
    manifest_sha = content_hash(manifest)
    records = [r for r in assign_splits(records, seed) if split == "all" or r.split == split]
    probs, vfs = [], {n: [] for n in predictor.model.vf_names}
    for r in records:
        pred = predictor.predict(load_volume(r.path))
        p, vf = _v1_predictor_outputs(pred, meta) if v1 else (pred.probability, pred.vf)
        probs.append(p)
        for n in vfs:
            vfs[n].append(vf[n])
    threshold = meta["threshold"]
    means = meta.get("provenance", {}).get("selection", {}).get("class_means")
    report = evaluate_split(records, np.array(probs), {n: np.array(v) for n, v in vfs.items()}, threshold,
                            class_means=means)
    if by:  # fairness across groups is what the public datasets were published for
        from .evaluate import classification_metrics
        groups = {}
        for r, p in zip(records, probs):
            groups.setdefault(str(r.extra.get(by, "")), []).append((r.label, p, r.patient_id))
        report["by_group"] = {by: {g: classification_metrics([x for x, _, _ in v], [y for _, y, _ in v], threshold,
                                                             n_boot=200, groups=[z for _, _, z in v])
                                   for g, v in groups.items()}}
    report["model"] = meta.get("name")
    report["synthetic_data"] = meta.get("synthetic_data", False)
    report["calibration"] = meta.get("calibration", {"method": "none"})
    report["test_volumes"] = [{"volume": volume_label(manifest_sha, r, report_paths), "row": r.row,
                               "patient": patient_key(manifest_sha, r.patient_id),
                               "label": int(r.label), "probability": float(p)} for r, p in zip(records, probs)]
    return report
