"""The model file's metadata, built in one place.

Writes the metadata v2 fields agreed in the project's interfaces (``vf_scaling`` lo/hi per index,
``calibration``, ``aggregation``, ``threshold`` on the calibrated probability) as keys of the
existing ``default_metadata`` dict. When the typed ``ModelMeta`` lands, only this function changes.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from octviewer.io.content import CONTENT_DIGEST_KIND
from octviewer.model import default_metadata


def model_metadata(variant: str, vf_names, pre, cfg, *, name: str, scaling: dict, calibration: dict,
                   aggregation: dict, threshold: float, synthetic: bool, splits: dict, manifest_sha256: str,
                   test_metrics: dict, selection: dict, patient_keys: list[str] | None = None,
                   volume_digests: list[str] | None = None) -> dict:
    meta = default_metadata(variant, vf_names=vf_names, preprocess=pre)
    if variant in ("mt", "semt"):
        meta["network"]["reg_channels"] = cfg.reg_channels
    names = meta["network"]["vf_names"]
    meta.update(
        name=name, threshold=float(threshold), synthetic_data=bool(synthetic),
        vf_scaling={n: {"lo": float(scaling[n]["lo"]), "hi": float(scaling[n]["hi"])} for n in names},
        calibration=dict(calibration), aggregation=dict(aggregation))
    data = {"manifest_sha256": manifest_sha256, "splits": splits}
    if patient_keys is not None:  # the training and validation patients (trainer.pseudonym.cohort_keys)
        data["patient_keys"] = patient_keys
    if volume_digests is not None:  # their volumes by content (trainer.pseudonym.volume_digests, A11-3)
        data["volume_digests"] = volume_digests
        data["digest_kind"] = CONTENT_DIGEST_KIND
    meta["provenance"].update(data=data,
                              split_seed=cfg.the_split_seed, config=_public_config(cfg), selection=selection,
                              test_metrics=test_metrics)
    return meta


def _public_config(cfg) -> dict:
    """The options, without local paths (the manifest is identified by its hash)."""
    config = {k: v for k, v in asdict(cfg).items() if k not in ("data", "out", "cache_dir", "progress_json")}
    config["init"] = Path(cfg.init).name  # a start model's file name, not the folder it sits in
    return config
