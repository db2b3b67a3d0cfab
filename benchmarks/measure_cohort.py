"""How hard is the synthetic cohort? The difficulty table of docs/cohort.md, measured.

Generates a training and a test cohort (different seeds, so different patients), renders every
volume in ``--workers`` processes without writing files, and reports case-level AUCs (a case is
one eye at one visit; volumes of a case are averaged) against the manifest label (the reference
standard with its label noise):

- oracle: logistic regression on the true sector RNFL (6 Garway-Heath sectors) + vertical
  cup-to-disc ratio, fitted on the training cohort (target ~0.95);
- single truth values (global RNFL, CDR, BMO-MRW, measured MD where present), for orientation;
- crude image cues, each alone (target <= 0.80): cup depth from a thresholded ILM, mean
  intensity (target ~0.5), en-face disc darkness, cup area from the thresholded ILM;
- optionally (``--cnn``) a 2D ResNet18 (the trainer's defaults: 224 px, ImageNet init, AdamW
  lr 1e-3, weight decay 1e-4, batch 32, cosine schedule, 10 epochs, flips) trained on B-scans
  through the central part of the cube, volume probability = mean over those B-scans
  (target 0.88-0.95).

Single-cue AUCs are oriented (max of AUC and 1 - AUC): a cue that separates the classes in either
direction counts. Full scale on a GPU machine (16 cores), one command:

    python benchmarks/measure_cohort.py --train-patients 320 --test-patients 200 --workers 16 --cnn \\
        --device cuda --out runs/cohort_difficulty

Reduced scale on a laptop CPU: ``--cnn --cnn-patients 60 --image-size 112 --epochs 3`` (say so).
Results are on SYNTHETIC data, for engineering only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from octviewer.synth.anatomy import PRESETS, SECTOR_NAMES  # noqa: E402
from octviewer.synth.cohort import GLAUCOMA_SHARE, _plan, synth_scan  # noqa: E402

CUES = ("ilm_cup_depth", "mean_intensity", "enface_disc_darkness", "ilm_cup_area")


# -- crude cues ---------------------------------------------------------------------------------

def crude_cues(data: np.ndarray, spacing_mm: tuple[float, float, float]) -> dict[str, float]:
    """What a naive pipeline could read off the image, without any learned model."""
    n_b, n_z, n_x = data.shape
    dz_um = spacing_mm[1] * 1000.0
    ilm = np.empty((n_b, n_x), np.float32)
    for i in range(n_b):
        smooth = cv2.GaussianBlur(data[i].astype(np.float32), (0, 0), 2.0)
        tissue = smooth > 70.0  # a fixed threshold on the display values
        first = np.argmax(tissue, axis=0).astype(np.float32)
        first[~tissue.any(axis=0)] = np.nan
        ilm[i] = first
    ilm_um = ilm * dz_um
    if np.isnan(ilm_um).all():  # nothing reaches the threshold (a dense cataract at low signal): no cup found
        cup_depth = cup_area = 0.0
    else:
        typical = np.nanmedian(ilm_um)
        cup_depth = float(np.nanpercentile(ilm_um, 99.5) - typical)
        cup_area = float(np.nanmean(ilm_um > typical + 150.0) * 36.0)  # mm^2 of a 6 x 6 mm cube
    enface = cv2.GaussianBlur(data.astype(np.float32).mean(axis=1), (0, 0), 2.0)
    darkness = float(1.0 - enface.min() / max(float(np.median(enface)), 1e-6))
    return {"ilm_cup_depth": cup_depth, "mean_intensity": float(data.mean()), "enface_disc_darkness": darkness,
            "ilm_cup_area": cup_area}


def cnn_bscans(data: np.ndarray, n_centres: int, size: int) -> np.ndarray:
    """Central B-scans (every second one around the cube centre, with their neighbours) resized to
    ``size`` x ``size`` uint8: (2 n_centres + 1, size, size)."""
    n_b = data.shape[0]
    lo = max(0, n_b // 2 - n_centres)
    block = data[lo: lo + 2 * n_centres + 1]
    return np.stack([cv2.resize(b, (size, size), interpolation=cv2.INTER_AREA) for b in block])


def _render(args):
    task, preset, cnn, n_centres, size = args
    scan = synth_scan(task.eye, preset, seed=task.seed, acquisition=task.acquisition)
    cues = crude_cues(scan.volume.data, scan.volume.spacing.as_tuple())
    images = cnn_bscans(scan.volume.data, n_centres, size) if cnn else None
    return cues, images


def cohort_cases(patients: int, seed: int, preset: str, workers: int, cnn: bool, n_centres: int, size: int,
                 render: bool = True):
    """Rows (one per volume) with truth, label and crude cues; optional CNN B-scans."""
    tasks = _plan(patients, seed, missing_vf=1 / 3, glaucoma_share=GLAUCOMA_SHARE)
    rows = [dict(t.row, _case=(t.row["patient_id"], t.row["eye"], t.row["visit"])) for t in tasks]
    images = [None] * len(tasks)
    if render:
        jobs = [(t, preset, cnn, n_centres, size) for t in tasks]
        with ProcessPoolExecutor(max(1, workers)) as pool:
            for k, (cues, imgs) in enumerate(pool.map(_render, jobs, chunksize=4)):
                rows[k].update(cues)
                images[k] = imgs
    return rows, images


def rnfl_md_r(rows) -> float:
    """Pearson r(global RNFL, measured MD) over the volumes with a field."""
    with_vf = [r for r in rows if r["md"] != ""]
    return float(np.corrcoef([float(r["rnfl_global_um"]) for r in with_vf], [float(r["md"]) for r in with_vf])[0, 1])


def _cohort_r(seed: int, patients: int = 300) -> float:
    """``rnfl_md_r`` of one cohort plan (nothing rendered)."""
    return rnfl_md_r([t.row for t in _plan(patients, seed, missing_vf=1 / 3, glaucoma_share=GLAUCOMA_SHARE)])


# -- statistics -----------------------------------------------------------------------------------

def auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def oriented(a: float) -> float:
    return max(a, 1.0 - a)


def auc_ci(labels, scores, cases, n_boot: int = 1000) -> list[float]:
    """95 % patient-cluster bootstrap interval of a case-level AUC: a patient's eyes and visits are
    not independent cases, so the resampling draws patients (as the trainer's evaluation does)."""
    from trainer.evaluate import cluster_resamples, percentile_ci, roc_auc

    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    patients = [case[0] for case in cases]
    return percentile_ci([roc_auc(labels[i], scores[i]) for i in cluster_resamples(patients, n_boot)
                          if len(np.unique(labels[i])) == 2])


def case_auc(labels, scores, cases) -> tuple[float, list[float]]:
    """Oriented case-level AUC (a single cue may point either way) and its interval, resampled
    in the point estimate's orientation."""
    scores = np.asarray(scores, dtype=np.float64)
    if auc(labels, scores) < 0.5:
        scores = -scores
    return auc(labels, scores), auc_ci(labels, scores, cases)


def by_case(rows, key):
    """Case-level mean of a per-volume value and the case's label."""
    cases = {}
    for r in rows:
        if r.get(key, "") == "":
            continue
        cases.setdefault(r["_case"], ([], r["label"] == "glaucoma"))[0].append(float(r[key]))
    labels = np.array([lab for _, lab in cases.values()], int)
    values = np.array([np.mean(v) for v, _ in cases.values()])
    return labels, values, list(cases)


def oracle_features(rows):
    keys = [f"rnfl_{k}_um" for k in SECTOR_NAMES] + ["cup_to_disc"]
    cases = {}
    for r in rows:
        cases.setdefault(r["_case"], ([float(r[k]) for k in keys], int(r["label"] == "glaucoma")))
    x = np.array([f for f, _ in cases.values()])
    y = np.array([lab for _, lab in cases.values()])
    return x, y, list(cases)


def oracle_auc(train_rows, test_rows) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_tr, y_tr, _ = oracle_features(train_rows)
    x_te, y_te, cases = oracle_features(test_rows)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_tr, y_tr)
    return case_auc(y_te, model.predict_proba(x_te)[:, 1], cases)


# -- 2D ResNet ----------------------------------------------------------------------------------

def train_cnn(train_rows, train_images, test_rows, test_images, args) -> dict:
    import torch

    from octviewer.model.networks import build_network
    from octviewer.model.preprocess import Preprocess

    torch.manual_seed(0)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    pre = Preprocess(size=args.image_size)
    init = args.init
    cached = Path(torch.hub.get_dir()) / "checkpoints" / "resnet18-f37072fd.pth"
    if init == "imagenet" and not cached.exists():  # offline machines: do not wait for a download
        print(f"ImageNet weights not in {cached.parent}; pass --init PATH to use a local copy", flush=True)
        init = "random"
    try:
        net = build_network("resnet2d", init=init)
        init_used = init
    except Exception as exc:  # no ImageNet weights offline: say so, train from random
        print(f"ImageNet init unavailable ({exc}); using random init", flush=True)
        net = build_network("resnet2d", init="random")
        init_used = "random"
    net = net.to(device).to(memory_format=torch.channels_last)
    keep = [k for k, im in enumerate(train_images) if im is not None]
    blocks = torch.from_numpy(np.stack([train_images[k] for k in keep]))  # (V, 2c+1, S, S) uint8
    labels = torch.tensor([float(train_rows[k]["label"] == "glaucoma") for k in keep])
    if device.type == "cuda":  # a few GB of uint8: keep the training set on the GPU, index there
        blocks, labels = blocks.to(device), labels.to(device)
    n_c = args.centres
    centres = torch.arange(1, 2 * n_c, 2)  # indices into the block whose neighbours are inside it
    items = torch.cartesian_prod(torch.arange(len(keep)), centres)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(args.epochs, 1))
    gen = torch.Generator().manual_seed(0)
    amp = device.type == "cuda"

    def batch_input(vol_idx, centre_idx, source):
        rows = torch.stack([centre_idx - 1, centre_idx, centre_idx + 1], 1).to(source.device)
        x = source[vol_idx.to(source.device)[:, None], rows].to(device, non_blocking=True).float().div_(255.0)
        return x

    for epoch in range(args.epochs):
        net.train()
        order = items[torch.randperm(len(items), generator=gen)]
        t0, seen = time.time(), 0
        for s in range(0, len(order), 32):
            b = order[s: s + 32]
            x = batch_input(b[:, 0], b[:, 1], blocks)
            flip = torch.rand(len(b), generator=gen) < 0.5
            x[flip.to(device)] = x[flip.to(device)].flip(-1)
            x = pre.normalise(x)
            y = labels[b[:, 0].to(labels.device)].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logit = net(x)["logit"].float().view(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(b)
        sched.step()
        print(f"cnn epoch {epoch + 1}/{args.epochs}: {seen / (time.time() - t0):.0f} B-scans/s", flush=True)
    net.eval()
    test_keep = [k for k, im in enumerate(test_images) if im is not None]
    probs = {}
    with torch.no_grad():
        for k in test_keep:
            block = torch.from_numpy(test_images[k])[None]
            idx = torch.zeros(len(centres), dtype=torch.long)
            x = pre.normalise(batch_input(idx, centres, block))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                p = torch.sigmoid(net(x)["logit"].float().view(-1)).mean().item()
            probs[k] = p
    rows = [dict(test_rows[k], cnn=probs[k]) for k in test_keep]
    y, s, cases = by_case(rows, "cnn")
    # not oriented: a network below 0.5 has learnt nothing useful
    return {"case_auc": auc(y, s), "ci95": auc_ci(y, s, cases), "train_volumes": len(keep),
            "test_volumes": len(test_keep), "image_size": args.image_size, "epochs": args.epochs,
            "init": init_used, "device": str(device)}


# -- main ---------------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-patients", type=int, default=320)
    p.add_argument("--test-patients", type=int, default=200)
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=100, help="training cohort seed; the test cohort uses seed + 1")
    p.add_argument("--no-render", action="store_true", help="truth-only measures (oracle), no image cues")
    p.add_argument("--r-cohorts", type=int, default=0,
                   help="also r(global RNFL, MD) over this many 300-patient cohorts (seeds from --seed, truth "
                        "only): one cohort's r scatters by ~0.03, so docs/cohort.md quotes this mean")
    p.add_argument("--cnn", action="store_true", help="also train and test the 2D ResNet")
    p.add_argument("--cnn-patients", type=int, default=None,
                   help="patients per cohort for the CNN (default: all; reduce on a CPU)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--centres", type=int, default=12, help="central B-scans per volume for the CNN")
    p.add_argument("--init", default="imagenet")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("runs/cohort_difficulty"))
    args = p.parse_args(argv)
    t0 = time.time()
    cnn = args.cnn
    # the crude cues need no training: the training cohort is rendered only for the CNN
    train_rows, train_images = cohort_cases(args.train_patients, args.seed, args.preset, args.workers, cnn,
                                            args.centres, args.image_size, render=cnn)
    test_rows, test_images = cohort_cases(args.test_patients, args.seed + 1, args.preset, args.workers, cnn,
                                          args.centres, args.image_size, render=not args.no_render)
    t_gen = time.time() - t0
    y, _, cases = by_case(test_rows, "rnfl_global_um")
    result = {"synthetic": True, "preset": args.preset, "train_patients": args.train_patients,
              "test_patients": args.test_patients, "test_cases": len(cases),
              "test_glaucoma_share": float(np.mean(y)),
              "train_volumes": len(train_rows), "test_volumes": len(test_rows), "generation_s": round(t_gen, 1)}
    ci = result["ci95"] = {}  # patient-cluster bootstrap intervals of the AUCs below, by the same key
    result["oracle_sector_rnfl_cdr"], ci["oracle_sector_rnfl_cdr"] = oracle_auc(train_rows, test_rows)
    for key in ("rnfl_global_um", "cup_to_disc", "bmo_mrw_um", "md"):
        result[f"truth_{key}"], ci[f"truth_{key}"] = case_auc(*by_case(test_rows, key))
    result["corr_rnfl_global_md"] = rnfl_md_r(test_rows)
    result["label_noise"] = float(np.mean([r["label"] != r["label_rule"] for r in test_rows]))
    if args.r_cohorts:
        seeds = list(range(args.seed, args.seed + args.r_cohorts))
        with ProcessPoolExecutor(max(1, args.workers)) as pool:
            rs = list(pool.map(_cohort_r, seeds))
        result["corr_rnfl_global_md_cohorts"] = {"seeds": seeds, "r": [round(r, 4) for r in rs],
                                                 "mean": float(np.mean(rs)), "sd": float(np.std(rs, ddof=1))}
    if not args.no_render:
        for cue in CUES:
            result[f"cue_{cue}"], ci[f"cue_{cue}"] = case_auc(*by_case(test_rows, cue))
    if cnn:
        if args.cnn_patients:  # reduced scale: the first patients of each cohort
            keep_tr = {f"SYN{args.seed:03d}-{p:04d}" for p in range(args.cnn_patients)}
            keep_te = {f"SYN{args.seed + 1:03d}-{p:04d}" for p in range(args.cnn_patients)}
            tr_images = [im if r["patient_id"] in keep_tr else None for r, im in zip(train_rows, train_images)]
            te_images = [im if r["patient_id"] in keep_te else None for r, im in zip(test_rows, test_images)]
        else:
            tr_images, te_images = train_images, test_images
        t1 = time.time()
        result["cnn_resnet2d"] = train_cnn(train_rows, tr_images, test_rows, te_images, args)
        ci["cnn_resnet2d"] = result["cnn_resnet2d"].pop("ci95")
        result["cnn_resnet2d"]["seconds"] = round(time.time() - t1, 1)
    result["total_s"] = round(time.time() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "difficulty.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print("(SYNTHETIC data, for engineering only)")


if __name__ == "__main__":
    main()
