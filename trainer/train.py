"""``fit``: the SEMT recipe and its Table 1 variants, from a validated manifest to a model file.

Stages: validate + split -> cache -> stage 1 (2D classifier; the ``resnet2d`` system) -> norm-3
volume features + nearest-neighbour surrogate VF (``semt`` only) -> stage 2 multi-task training
(``mt``/``semt``; one run per value of ``alpha_grid``, the best on validation kept) -> VF
aggregation, Platt calibration and threshold on validation -> test metrics -> model file.
3D variants train one stage on resampled cubes.

Resume: each stage checkpoints after every epoch and leaves ``done.pt`` when finished. Each stage
boundary re-seeds every random generator from (seed, boundary name) before it builds a network,
so the random state a stage starts from never depends on whether the previous stages ran in this
process or were loaded from disk: a run stopped anywhere and resumed repeats the uninterrupted
one bit for bit (on the same device and software).

Fair comparison (Table 1): ``mt`` and ``semt`` build their stage-2 network from the same seed and
the same ``init`` and train it for the same ``epochs``; SEMT's stage 1 is used only for the
surrogate features, never as stage 2's starting point. SEMT's extra stage-1 epochs are reported.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from pathlib import Path

import numpy as np
import torch

from octviewer.core.files import private_folder
from octviewer.model import Preprocess, build_network, is_3d, save_model
from octviewer.model.signing import key_for_new_models

from . import distributed as dist
from . import stop
from .cache import build_cache
from .calibration import AGGREGATIONS, aggregate_vf, apply_calibration, calibrate, vf_scaling, vf_std
from .command import ArgumentError, write_out
from .config import Config, RunMismatch, check_and_record  # noqa: F401  (RunMismatch re-exported for callers)
from .engine import Data, predict_volumes, run_stage, stage_score
from .evaluate import classification_metrics, evaluate_split, markdown_table, reliability_png
from .export import model_metadata
from .label_hiding import hidden_label_rows
from .loss import SemtLoss
from .manifest import (
    ManifestError,
    assign_splits,
    header_warnings,
    one_class_problems,
    person,
    read_manifest,
    summary,
    vf_names_present,
)
from .progress import Progress
from .pseudonym import cohort_keys, patient_key, volume_digests, volume_label
from .surrogates import assign_surrogates

CENTRAL_FRACTION = 0.5


def model_name(variant: str, data) -> str:
    """``<variant>-<dataset folder>-<UTC date and time>``: two models trained on folders of the same
    name (every synthetic cohort is called ``cohort``) must not look alike in the window, the status
    bar and the model card (the shipped demo model is ``semt-cohort``)."""
    import datetime as dt

    return f"{variant}-{Path(data).parent.name}-{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M}"


def seed_boundary(seed: int, boundary: str) -> None:
    """Seed torch, NumPy and random from (seed, boundary) so a stage starts from the same state
    whether or not the stages before it ran in this process."""
    value = int.from_bytes(hashlib.sha256(f"{seed}:{boundary}".encode()).digest()[:4], "little") & 0x7FFFFFFF
    torch.manual_seed(value)
    np.random.seed(value)
    random.seed(value)


def boundary(name: str, progress: Progress) -> None:
    """A stage boundary: everything before it is on disk; a stop here loses nothing."""
    progress.log(stage=name, event="boundary")
    if stop.requested():
        raise stop.Stopped(f"stopped after {name}; everything up to it is saved: rerun with --resume to continue")


def _device(cfg: Config) -> torch.device:
    from octviewer.model import select_device

    if dist.is_distributed() and torch.cuda.is_available():
        return torch.device("cuda", dist.local_rank())
    return select_device(cfg.device)


class StartModelError(ValueError):
    """--init names a model file this fit cannot start from (another input size, other VF modules):
    a command-line error, exit 2, found before the cache is built (attack run 4, F20)."""


def start_model(cfg: Config):
    """The model file a fine-tune starts from (``--init model.safetensors``), or None.

    Fine-tuning is how a shipped model follows a changed world (a new generator, a clinic's own
    scans) on a CPU in minutes instead of a full GPU run: stage 2 starts from the whole file
    (backbone, VF modules, classifier), stage 1 from its backbone, and the VF heads keep the file's
    scaling so that their outputs keep their meaning. Loaded like the viewer loads it: verified,
    no code executed."""
    if not str(cfg.init).endswith(".safetensors"):
        return None
    from octviewer.model import load_model

    start = load_model(cfg.init)
    if start.meta.preprocess != Preprocess(size=cfg.image_size):
        raise StartModelError(f"--init {Path(cfg.init).name}: the model takes {start.meta.preprocess.size} px inputs; "
                              f"fine-tune it with --image-size {start.meta.preprocess.size}")
    if cfg.variant in ("mt", "semt") and start.architecture in ("mt", "semt") \
            and start.meta.network_params.get("reg_channels", 128) != cfg.reg_channels:
        raise StartModelError(f"--init {Path(cfg.init).name}: its VF modules have "
                              f"{start.meta.network_params.get('reg_channels', 128)} channels; "
                              "pass --reg-channels to match")
    return start


def start_record(start, init) -> dict:
    """What the new model's provenance says of the model it was fine-tuned from, its signature included: an
    unsigned start fine-tuned the way Retrain runs it gave a model signed by this workstation (trusted), and
    nothing said that nobody vouched for the weights it began from (attack run 9, A9-12; the card and the
    scan PDF show it: ``gui.model.card.start_warning``)."""
    record = {"name": start.name, "digest": start.digest, "file": Path(init).name, "vf_scaling": "kept from it",
              "signature": start.trust.text(), "trusted": start.trust.trusted}
    # the start's own unvouched origin goes on, flat (not a chain: the metadata's nesting is bounded): a second
    # Retrain recorded only the signed B of unsigned A -> B -> C, and C said nothing (attack run 10, A10-4)
    prov = getattr(getattr(start, "meta", None), "provenance", None)
    before = (prov.get("selection") or {}).get("fine_tuned_from") if isinstance(prov, dict) else None
    if isinstance(before, dict):
        origin = before if before.get("trusted") is False else before.get("untrusted_origin")
        if isinstance(origin, dict):
            record["untrusted_origin"] = {k: v for k, v in origin.items() if k != "untrusted_origin"}
    return record


def _from_start(network: torch.nn.Module, start, whole: bool) -> torch.nn.Module:
    """Copy the start model's weights into ``network``: all of them (same architecture) or the
    backbone only (stage 1, or another variant)."""
    state = start.network.state_dict()
    if not whole:
        state = {k: v for k, v in state.items() if k.startswith("backbone.")}
    missing = network.load_state_dict(state, strict=whole).missing_keys  # strict: any mismatch raises
    if any(k.startswith("backbone.") for k in missing):
        raise ValueError("the start model's backbone does not fit this network")
    return network


def stage2_network(variant: str, cfg: Config, vf_names, start=None) -> torch.nn.Module:
    """The stage-2 (or only-stage) network. The fair-initialisation rule: the same seed and init for
    ``mt`` and ``semt`` give identical starting weights (SEMT does not start from its stage 1)."""
    seed_boundary(cfg.seed, "stage2-init")
    params = {"reg_channels": cfg.reg_channels} if variant in ("mt", "semt") else {}
    init = None if start is not None or is_3d(variant) else cfg.init
    network = build_network(variant, vf_names=vf_names, init=init, **params)
    if start is not None:
        same = start.architecture == variant and tuple(start.vf_names) == tuple(vf_names)
        _from_start(network, start, whole=same)
    return network


def class_means(data: Data) -> dict:
    """Training-split mean of each VF index per class: the oracle a VF estimate has to beat."""
    out = {}
    for j, name in enumerate(data.vf_names):
        out[name] = {}
        for label in (0, 1):
            v = data.vf[(data.labels == label) & ~np.isnan(data.vf[:, j]), j]
            out[name][str(label)] = float(v.mean()) if len(v) else float(np.nanmean(data.vf[:, j]))
    return out


def choose_aggregation(cfg: Config, val: Data, bscan_vf: list, std: dict) -> dict:
    """The VF aggregation stored in the model: the option given, or (auto) the one with the lowest
    normalised validation MAE among mean, median and the central half of the B-scans."""
    choices = AGGREGATIONS if cfg.aggregation == "auto" else (cfg.aggregation,)
    best, best_err = choices[0], float("inf")
    for how in choices:
        if not val.vf_names or not len(bscan_vf):
            break
        est = np.array([aggregate_vf(b, how, CENTRAL_FRACTION) for b in bscan_vf])
        errs = [np.abs(est[ok, j] - val.vf[ok, j]).mean() / std[n]
                for j, n in enumerate(val.vf_names) if (ok := ~np.isnan(val.vf[:, j])).any()]
        err = float(np.mean(errs)) if errs else float("inf")
        if err < best_err:
            best, best_err = how, err
    agg = {"probability": "mean", "vf": best}
    if best == "central":
        agg["central_fraction"] = CENTRAL_FRACTION
    return agg


def fit(cfg: Config, make_folders=None) -> dict:
    """Run the whole recipe; returns the test report. Raises ManifestError before any training,
    RunMismatch for a resume into another run, stop.Stopped when a stop was requested.

    Everything that can refuse the run from its inputs (the --init model, the --device, the manifest, its split,
    its classes, empty training or validation splits) is checked before anything is made on disk: a refused
    manifest left an empty run folder (and a --progress-json file) behind (H87, issue 27). Then
    ``make_folders()`` (the command's one-line errors for an unusable --out or --cache-dir) or, by default,
    ``private_folder(out)`` makes the run folder."""
    if cfg.variant not in ("resnet2d", "mt", "semt", "cnn3d", "resnet3d"):
        raise ValueError(f"unknown variant {cfg.variant!r}")
    if cfg.train_set not in ("all", "part"):
        raise ValueError(f"train_set must be all or part, got {cfg.train_set!r}")
    start = start_model(cfg)  # before the manifest and the cache: a wrong --init costs no decoding (F20)
    out = Path(cfg.out)
    dist.init()
    try:  # --device mps / cuda on a computer without one was a RuntimeError traceback after the whole cache stage
        device = _device(cfg)
    except RuntimeError as exc:
        raise ArgumentError(f"--device {cfg.device}: {exc}; nothing was written") from None
    records, skipped = read_manifest(cfg.data, skip_bad=cfg.skip_bad)
    records = assign_splits(records, seed=cfg.the_split_seed, manifest=cfg.data)
    if problems := one_class_problems(summary(records)):  # before any training: its test AUC was NaN (A8-6)
        raise ManifestError(cfg.data, problems)
    hidden = hidden_label_rows(records, cfg.label_fraction, cfg.the_split_seed)
    if hidden:  # a volume whose label is withheld trains only a VF head: mt/semt, and only with a measured VF
        regresses = cfg.variant in ("mt", "semt")
        records = [r for r in records
                   if r.row not in hidden or (regresses and any(v is not None for v in r.vf.values()))]
    if cfg.train_set == "part":  # the paper's "Part": train only on volumes with a measured VF
        records = [r for r in records if r.split != "train" or any(v is not None for v in r.vf.values())]
    counts = summary(records)
    if hidden:  # the glaucoma count of the labels the fit saw, and how many labels it did not see
        counts["train"]["glaucoma"] = sum(r.label for r in records if r.split == "train" and r.row not in hidden)
        counts["train"]["label_hidden"] = sum(r.row in hidden for r in records)
    for split, name in (("train", "training"), ("val", "validation")):
        if not (counts.get(split) or {}).get("volumes"):  # the best epoch is chosen on validation: with none, the
            # run trained on NaN losses and then blamed an unreadable checkpoint (attack run 2 M7)
            patients = sum(c.get('patients', 0) for c in counts.values())
            raise ManifestError(cfg.data, [f"the {name} split holds no volumes ({patients} "
                                           "patients in all): add patients, or give a split column"])
    if make_folders is None:
        private_folder(out)  # checkpoints and the cache: owner-only where it makes it (A13-8)
    else:
        make_folders()
    progress = Progress(cfg.progress_json, enabled=dist.is_main())
    identity = check_and_record(cfg, out, write=dist.is_main())
    manifest_sha = identity["manifest_sha256"]
    for s in skipped[:50]:  # row and kind of problem only: paths may hold patient IDs and dates
        progress.log(stage="validate", event="skipped", message=": ".join(s.split(": ")[:2]))
    for warning in header_warnings(records):  # by row count: the IDs are patients' (attack run 11, A11-4)
        progress.log(stage="validate", event="warning", message=warning)
    progress.log(stage="validate", event="summary", splits=counts)
    synthetic = cfg.synthetic if cfg.synthetic is not None else all(r.extra.get("synthetic") == "1" for r in records)
    variant = cfg.variant
    vf_names = vf_names_present(records) if variant in ("mt", "semt") else ()
    if variant in ("mt", "semt") and not vf_names:
        progress.log(stage="validate", event="warning",
                     message=f"no VF values in the training split: {variant} falls back to resnet2d")
        variant = "resnet2d"
    pre = Preprocess(name="volume_area_v1", volume_shape=tuple(cfg.volume_shape)) if is_3d(variant) \
        else Preprocess(size=cfg.image_size)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else out / "cache"
    arrays = build_cache(records, pre, cache_dir, skip_bad=cfg.skip_bad, allow_pickle=cfg.allow_pickle,
                         progress=lambda d, t: progress.step(stage="cache", step=d, total=t),
                         should_stop=stop.requested)
    boundary("cache", progress)
    keep = [i for i, a in enumerate(arrays) if a is not None]
    records, arrays = [records[i] for i in keep], [arrays[i] for i in keep]
    split = {s: [i for i, r in enumerate(records) if r.split == s] for s in ("train", "val", "test")}

    def data(s, names, labelled_only=False):
        keep = [i for i in split[s] if not (labelled_only and records[i].row in hidden)]
        d = Data([records[i] for i in keep], [arrays[i] for i in keep], names, pre)
        d.labels[np.array([records[i].row in hidden for i in keep], bool)] = np.nan  # the loss skips them
        return d

    train, val, test = data("train", vf_names), data("val", vf_names), data("test", vf_names)
    scaling, std = vf_scaling(train.vf, vf_names), vf_std(train.vf, vf_names)
    if start is not None and set(vf_names) <= set(start.meta.vf_scaling):
        scaling = {n: {"lo": start.meta.vf_scaling[n].lo, "hi": start.meta.vf_scaling[n].hi} for n in vf_names}
    s1_epochs = cfg.stage1_epochs or cfg.epochs
    stage1 = None
    if variant in ("resnet2d", "semt"):
        seed_boundary(cfg.seed, "stage1-init")
        stage1 = build_network("resnet2d", init=None if start is not None else cfg.init)
        if start is not None:
            _from_start(stage1, start, whole=False)
        stage1 = run_stage("stage1", stage1, data("train", (), labelled_only=True), data("val", ()), SemtLoss(), cfg,
                           out, s1_epochs, False, progress, device)
        boundary("stage1", progress)
    if variant == "semt":
        _, _, feats = predict_volumes(stage1, train, device)
        labels = [volume_label(manifest_sha, r, cfg.report_paths) for r in train.records]
        filled, table = assign_surrogates(labels, feats, train.labels, train.vf, vf_names)
        train.vf = filled.astype(np.float32)
        if dist.is_main():
            text = io.StringIO()
            w = csv.DictWriter(text, fieldnames=["volume", "index", "source", "distance", "class"])
            w.writeheader()
            w.writerows(table)
            write_out(out / "surrogates.csv", text.getvalue())  # names volumes by path with --report-paths
        progress.log(stage="surrogates", event="assigned", n=len(table))
        boundary("surrogates", progress)
    selection = {"criterion": "AUC - 0.25 * mean_j(MAE_j / sd_j) on validation" if vf_names else "validation AUC",
                 "stage1_epochs": s1_epochs if stage1 is not None else 0,
                 "stage2_epochs": cfg.epochs if variant != "resnet2d" else 0,
                 "stage2_init": f"{Path(cfg.init).name} (same for mt and semt; not the stage-1 backbone)"}
    if start is not None:
        selection["fine_tuned_from"] = start_record(start, cfg.init)
    if variant == "resnet2d":
        network = stage1
    else:
        grid = list(cfg.alpha_grid) if vf_names else [1.0]
        scores = {}
        for g in grid:
            name = "stage2" if len(grid) == 1 else f"stage2_alpha{g:g}"
            alpha = {n: g * float(cfg.alpha.get(n, 1.0)) for n in vf_names}
            network = run_stage(name, stage2_network(variant, cfg, vf_names, start), train, val,
                                SemtLoss(vf_names, alpha, scaling, std), cfg, out, cfg.epochs, bool(vf_names),
                                progress, device, scaling, std)
            scores[g] = stage_score(out, name, device)
            boundary(name, progress)
        best_g = max(grid, key=lambda g: scores[g])
        if len(grid) > 1:
            network = stage2_network(variant, cfg, vf_names, start).to(device)
            network.load_state_dict(torch.load(out / f"stage2_alpha{best_g:g}" / "done.pt", map_location=device,
                                               weights_only=True)["model"])
        selection.update(alpha_grid=grid, alpha_scores={f"{g:g}": scores[g] for g in grid}, alpha_multiplier=best_g,
                         alpha={n: best_g * float(cfg.alpha.get(n, 1.0)) for n in vf_names})
    if dist.world() > 1:  # each rank records a checksum of its weights: DDP must keep them identical
        (out / "ranks").mkdir(exist_ok=True)
        total = sum(float(v.double().sum()) for v in network.state_dict().values() if v.is_floating_point())
        (out / "ranks" / f"rank{dist.rank()}.json").write_text(json.dumps({"weight_sum": total}))
    report = {}
    if dist.is_main():
        report = _finish(cfg, variant, network, train, val, test, pre, scaling, std, synthetic, counts, manifest_sha,
                         selection, vf_names, device, out, progress)
    dist.cleanup()
    return report


def _finish(cfg, variant, network, train, val, test, pre, scaling, std, synthetic, counts, manifest_sha, selection,
            vf_names, device, out, progress) -> dict:
    """Aggregation, calibration and threshold on validation; test report; model file."""
    val_raw, val_bvf, _ = predict_volumes(network, val, device, scaling=scaling)
    aggregation = choose_aggregation(cfg, val, val_bvf, std)
    calibration, threshold = calibrate(val.labels, val_raw)
    test_raw, test_bvf, _ = predict_volumes(network, test, device, scaling=scaling)
    test_p = apply_calibration(calibration, test_raw)
    test_vf = np.array([aggregate_vf(b, aggregation["vf"], CENTRAL_FRACTION) for b in test_bvf]) \
        if len(test_bvf) else np.zeros((0, len(vf_names)))
    vf_clinical = {n: test_vf[:, j] for j, n in enumerate(vf_names)}
    means = class_means(train)
    selection["class_means"] = means  # stored in the model so a held-out evaluation can report the oracle
    report = evaluate_split(test.records, test_p, vf_clinical, threshold, class_means=means)
    raw_metrics = classification_metrics(test.labels, test_raw, 0.5, n_boot=0)
    report["uncalibrated"] = {"brier": raw_metrics["brier"], "ece": raw_metrics["ece"]}
    report.update(variant=variant, requested_variant=cfg.variant, train_set=cfg.train_set, seed=cfg.seed,
                  split_seed=cfg.the_split_seed, splits=counts, synthetic_data=synthetic, calibration=calibration,
                  aggregation=aggregation, vf_scaling=scaling, selection=selection, manifest_sha256=manifest_sha,
                  volume_names="paths" if cfg.report_paths else "pseudonymous keys (see trainer/pseudonym.py)",
                  test_volumes=[{"volume": volume_label(manifest_sha, r, cfg.report_paths), "row": r.row,
                                 "patient": patient_key(manifest_sha, person(r)), "label": int(r.label),
                                 "probability": float(p), "raw_probability": float(q),
                                 **{f"vf_{n}": float(vf_clinical[n][k]) for n in vf_names}}
                                for k, (r, p, q) in enumerate(zip(test.records, test_p, test_raw))])
    metrics = {k: report[k] for k in ("image_level", "case_level", "vf_mae")}
    metrics = json.loads(json.dumps(metrics))
    for level in ("image_level", "case_level"):
        metrics[level].pop("reliability", None)
    meta = model_metadata(variant, vf_names, pre, cfg, name=model_name(variant, cfg.data),
                          scaling=scaling, calibration=calibration, aggregation=aggregation, threshold=threshold,
                          synthetic=synthetic, splits=counts, manifest_sha256=manifest_sha, test_metrics=metrics,
                          selection=selection,
                          patient_keys=cohort_keys(r.patient_id for r in train.records + val.records),
                          volume_digests=volume_digests(r.path for r in train.records + val.records))
    save_model(out / "model.safetensors", network.cpu(), meta, half=cfg.half, sign_with=key_for_new_models())
    # owner-only, as evaluate's --out: with --report-paths the report names every test volume by its path, and
    # a clinic's file names carry patients' names; a 0644 report.json in a 0755 run folder was anyone's (A11-2)
    write_out(out / "report.json", json.dumps(report, indent=2))
    write_out(out / "report.md", markdown_table({variant: report}, synthetic))
    reliability_png(report["image_level"]["reliability"], out / "reliability.png",
                    f"{variant}, test split, calibrated" + (" (SYNTHETIC)" if synthetic else ""))
    progress.log(stage="done", event="finished", model=str(out / "model.safetensors"),
                 image_auc=report["image_level"]["auc"])
    return report

