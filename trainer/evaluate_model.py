"""``octviewer-train evaluate``: a model file against a manifest split, through the viewer's Predictor.

Using the Predictor (not the trainer's own loop) is the point: it proves the exported file gives
the viewer the probabilities the training report claims.

On a synthetic cohort (a ``truth/<volume stem>.npz`` beside the manifest, as ``octviewer-synth``
writes it) the report adds the CAM pointing game (``pointing_game_report``).

Metadata v2 (``vf_scaling`` lo/hi, ``calibration``, ``aggregation``) is read from the file. A
Predictor that still exposes the metadata as a plain dict predates v2: it returns the raw mean
probability and VF scaled over the global ranges, so this module applies the file's calibration
and re-maps the VF estimates itself (``_v1_predictor_outputs``). A v2 Predictor (typed
``ModelMeta``) does both, and its outputs are used as they are.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import distance_transform_edt

from octviewer import VolumeReadError, load_volume
from octviewer.model import Predictor, scale_vf
from octviewer.model.cam import enface_cam, pointing_game

from . import stop
from .calibration import aggregate_vf, apply_calibration
from .evaluate import cluster_resamples, evaluate_split, percentile_ci
from .manifest import assign_splits, content_hash, header_warnings, person, read_manifest
from .pseudonym import cohort_keys, patient_key, volume_digests, volume_label


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


#: localized damage types the generator records (``damage`` column, e.g. ``wedge:IT``, ``mixed:IT+ST``)
LOCALIZED = ("wedge", "arcuate", "mixed")
#: the damage region of an eye: where the share of axons lost is at least this fraction of its maximum
REGION_FRACTION = 0.5
TOLERANCE_MM = 0.5


def pointing_entry(prediction, volume, truth_path: Path) -> dict:
    """One volume of the pointing game: does the en-face CAM's peak fall within 0.5 mm of the
    recorded damage region? With two baselines on the same volume, so the hit rate can be read:
    the chance that a uniformly random en-face position hits (the dilated region's share of the
    grid), and whether the BMO centre hits (a "the network looks at the disc" predictor)."""
    with np.load(truth_path) as truth:
        damage, spacing, centre = truth["damage"], truth["spacing_mm"], truth["bmo_center"]
    region = damage >= REGION_FRACTION * float(damage.max())
    step = (float(spacing[0]), float(spacing[2]))  # between B-scans, between A-scans
    # every grid position within the tolerance of the region: the chance of a random peak hitting it
    near = distance_transform_edt(~region, sampling=step) <= TOLERANCE_MM
    centre_map = np.zeros(damage.shape)
    centre_map[int(round(float(centre[0]))), int(round(float(centre[1])))] = 1.0
    return {"hit": pointing_game(enface_cam(prediction, volume), region, step, TOLERANCE_MM),
            "chance": float(near.mean()),
            "centre_hit": pointing_game(centre_map, region, step, TOLERANCE_MM)}


def pointing_game_report(entries: list[dict], groups, n_boot: int = 1000) -> dict:
    """Hit rate over glaucoma volumes with localized damage, with a patient-cluster bootstrap CI and
    the two baselines of ``pointing_entry``."""
    if not entries:
        return {"n": 0}
    hits = np.array([e["hit"] for e in entries], float)
    boots = [hits[i].mean() for i in cluster_resamples(groups, n_boot) if len(i)]
    return {"n": len(entries), "hit_rate": float(hits.mean()),
            "ci95": percentile_ci(boots),
            "chance_rate": float(np.mean([e["chance"] for e in entries])),
            "bmo_centre_hit_rate": float(np.mean([e["centre_hit"] for e in entries])),
            "rule": f"en-face CAM peak within {TOLERANCE_MM} mm of the region where axonal loss >= "
                    f"{REGION_FRACTION} x the eye's maximum; glaucoma volumes with {'/'.join(LOCALIZED)} damage",
            "target": ">= 0.70 (issue 13)"}


def evaluate_model(model_path, manifest, split="test", seed=None, device="auto", by: str | None = None,
                   report_paths: bool = False, progress=None) -> dict:
    """``progress(done, total)`` after each volume: on a CPU a cohort takes 20 minutes, which the
    command spent without a word."""
    # exact fp32 whatever the CPU: the figures attached to a model file must be the same on every machine
    # and match the trainer's own report (bf16, where the viewer picks it, moves P by ~1e-4)
    predictor = Predictor(str(model_path), device=device, precision="fp32")
    v1 = isinstance(predictor.model.meta, dict)
    meta = _meta_dict(predictor.model.meta)
    model_seed = meta.get("provenance", {}).get("split_seed", 0)
    seed = model_seed if seed is None else seed
    records, _ = read_manifest(manifest)
    manifest_sha = content_hash(manifest)
    if by is not None and by not in (columns := list(records[0].extra) if records else []):
        # a typo in --by gave one group of every volume, shown as a subgroup analysis (attack run 7, A7-21)
        from .manifest import ManifestError
        raise ManifestError(manifest, [f"--by {by[:40]!r}: no column of the manifest to group volumes by (those "
                                       f"are its own columns: {', '.join(columns)[:300] or 'none'})"])
    records = assign_splits(records, seed, manifest=manifest)
    for warning in header_warnings(records):  # validate's and fit's words, by row count (attack run 12, A12-12)
        print(f"warning: {warning}", file=sys.stderr)
    records = [r for r in records if split == "all" or r.split == split]
    probs, vfs = [], {n: [] for n in predictor.model.vf_names}
    truth_dir = Path(manifest).parent / "truth"
    pointing, pointing_groups = [], []
    for i, r in enumerate(records):
        if stop.requested():  # the command turns Ctrl-C/SIGTERM into this flag (attack run 7, A7-22)
            raise stop.Stopped(f"stopped after {i} of {len(records)} volumes; nothing was written")
        try:
            volume = load_volume(r.path)
        except VolumeReadError:  # list every unreadable row at once (the rest are only read), then stop
            from .manifest import ManifestError, check_volumes
            check_volumes(manifest, records[records.index(r):])
            # check_volumes raised already; this is the fallback
            raise ManifestError(manifest, [f"row {r.row}: unreadable volume"]) from None
        pred = predictor.predict(volume)
        truth = truth_dir / f"{Path(r.path).stem}.npz"
        if (r.label and str(r.extra.get("damage", "")).split(":")[0] in LOCALIZED and truth.is_file()
                and pred.cam is not None):
            pointing.append(pointing_entry(pred, volume, truth))
            pointing_groups.append(person(r))
        p, vf = _v1_predictor_outputs(pred, meta) if v1 else (pred.probability, pred.vf)
        probs.append(p)
        for n in vfs:
            vfs[n].append(vf[n])
        if progress is not None:
            progress(i + 1, len(records))
    threshold = meta["threshold"]
    means = meta.get("provenance", {}).get("selection", {}).get("class_means")
    report = evaluate_split(records, np.array(probs), {n: np.array(v) for n, v in vfs.items()}, threshold,
                            class_means=means)
    if by is not None:  # fairness across groups is what the public datasets were published for
        from .evaluate import classification_metrics
        groups = {}
        for r, p in zip(records, probs):
            groups.setdefault(str(r.extra.get(by, "")), []).append((r.label, p, person(r)))
        report["by_group"] = {by: {g: classification_metrics([x for x, _, _ in v], [y for _, y, _ in v], threshold,
                                                             n_boot=200, groups=[z for _, _, z in v])
                                   for g, v in groups.items()}}
    if pointing:
        report["pointing_game"] = pointing_game_report(pointing, pointing_groups)
    report["model"] = meta.get("name")
    if why := not_independent(meta, manifest_sha, split, seed, [r.patient_id for r in records],  # A8-15
                              volume_paths=[r.path for r in records]):
        report["not_independent"] = why
    elif note := old_digests_note(meta):
        report["digest_note"] = note
    report["synthetic_data"] = meta.get("synthetic_data", False)
    report["calibration"] = meta.get("calibration", {"method": "none"})
    report["test_volumes"] = [{"volume": volume_label(manifest_sha, r, report_paths), "row": r.row,
                               "patient": patient_key(manifest_sha, person(r)),
                               "label": int(r.label), "probability": float(p)} for r, p in zip(records, probs)]
    return report


def not_independent(meta: dict, manifest_sha: str, split: str, seed: int, patient_ids=(),
                    recalibration: bool = True, volume_paths=()) -> str:
    """Why a split of the manifest (by content hash; ``patient_ids`` its rows' patients) is no independent
    data for the model (its metadata as a dict), or "": any split but the model's own test split of its
    training manifest holds the patients it was trained, calibrated or chosen on. evaluate --attach stored
    their figures as "On independent data" (A8-15) and recalibrate refitted the calibration on them as
    "another cohort" (attack run 9, A9-8). The bytes alone let the same rows through re-saved with CRLF,
    sorted or one row fewer (A10-10): a model that keeps its patients' keys (``cohort_keys``) is also
    compared by patient. With ``recalibration`` (evaluate --attach) the cohort a recalibration fitted the
    calibration and threshold on counts as the training data does, any split of it (A10-15). The same
    scans under other patient IDs (the export pseudonymised again, another installation's salt) got past
    both: a model that keeps its volumes' content digests (``volume_digests``) is also compared by the
    content of ``volume_paths``, read only then (attack run 11, A11-3)."""
    provenance = meta.get("provenance") or {}
    trained = provenance.get("data") or {}
    if manifest_sha == trained.get("manifest_sha256") and (split != "test" or seed != provenance.get("split_seed", 0)):
        return f"the model was trained on this manifest: its {split} split (seed {seed}) holds training patients"
    recal = (provenance.get("recalibration") or {}).get("data") or {} if recalibration else {}
    if manifest_sha == recal.get("manifest_sha256"):
        return "the model was recalibrated on this manifest: its calibration and threshold were fitted on it"
    keys = set(cohort_keys(patient_ids) or ())
    for data, what in ((trained, "trained"), (recal, "recalibrated")):
        if isinstance(data.get("patient_keys"), list) and (n := len(keys & set(data["patient_keys"]))):
            return f"{n} of its {len(keys)} patients are among those the model was {what} on"
    ours = None
    for data, what in ((trained, "trained"), (recal, "recalibrated")):
        if isinstance(data.get("volume_digests"), list) and data["volume_digests"]:
            ours = set(volume_digests(volume_paths, limit=None)) if ours is None else ours
            if n := len(ours & set(data["volume_digests"])):
                return (f"{n} of its {len(ours)} volumes are scans the model was {what} on (compared by content, "
                        "whatever their patient IDs)")
    return ""


def old_digests_note(meta: dict) -> str:
    """What ``not_independent`` could not compare: a model whose training (or recalibration) volumes' digests are
    of an older kind than ``io.content.volume_digest`` gives (``digest_kind`` missing or another) cannot be told
    from a cohort holding those scans under other IDs, re-encoded or exported; the patients' keys and the
    manifest hash were compared, the content not. It was said nowhere, and a model's own training scans,
    re-keyed, were stored as "On independent data" (attack run 15, A15-6)."""
    from octviewer.io.content import CONTENT_DIGEST_KIND

    provenance = meta.get("provenance") or {}
    for data in (provenance.get("data") or {}, (provenance.get("recalibration") or {}).get("data") or {}):
        if data.get("volume_digests") and data.get("digest_kind") != CONTENT_DIGEST_KIND:
            return ("the model's content digests of its training scans were made by an older version: whether this "
                    "cohort holds those scans under other patient IDs, re-encoded or exported, cannot be told by "
                    "content (its patients' keys and the manifest hash were compared); fit or recalibrate the model "
                    "again for digests of this kind")
    return ""


#: What a stored evaluation says of itself when ``old_digests_note`` applied: the operator saw the note in the
#: terminal, but whoever read Model > About or a scan's PDF later read the figures as "On independent data".
INDEPENDENCE_NOT_BY_CONTENT = ("independence not checked by content (the model's digests of its training scans are "
                               "of an older kind): this cohort may hold its training scans under other patient IDs")


def attachable_summary(report: dict, manifest, split: str) -> dict:
    """The part of an evaluation that travels inside the model file (``attach_evaluation``): the
    figures a model card shows, with their intervals, and what they were measured on, by hash (no
    paths, no patient keys), and, where the independence check could not compare content, that it could not
    (``data.independence``)."""
    import datetime as dt
    from collections import Counter

    image = report.get("image_level", {})
    volumes = report.get("test_volumes", [])
    keep = ("auc", "accuracy", "f1", "ece", "ece_floor", "brier", "n", "ci95")
    out = {"data": {"manifest_sha256": content_hash(manifest), "split": split,
                    "patients": len({v["patient"] for v in volumes}), "volumes": len(volumes),
                    "glaucoma": int(Counter(v["label"] for v in volumes)[1]),
                    "synthetic": bool(report.get("synthetic_data_manifest", report.get("synthetic_data")))},
           "evaluated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "image_level": {k: image[k] for k in keep if k in image},
           "vf_mae": {name: {k: row[k] for k in ("mae", "class_mean_mae", "mae_minus_class_mean", "n", "ci95")
                             if k in row}
                      for name, row in report.get("vf_mae", {}).items()}}
    if report.get("digest_note"):  # kept with the figures: the card and the PDF print it (attack run 16, A16-7)
        out["data"]["independence"] = INDEPENDENCE_NOT_BY_CONTENT
    checks = report.get("md_checks", {})
    if "normal_md_ge_-2.5_share" in checks:
        out["md_checks"] = {k: checks[k] for k in ("normal_md_ge_-2.5_share", "normal_md_ge_-2.5_share_ci95")
                            if k in checks}
    pg = report.get("pointing_game")
    if pg:
        out["pointing_game"] = {k: pg[k] for k in ("hit_rate", "ci95", "chance_rate", "n") if k in pg}
    return out
