"""``octviewer-train ablation``: the paper's Table 1 on one patient split.

Each system is trained for each seed on the same split (``split_seed`` fixed, training seed
varied). ``--train-set part`` gives the paper's "Part" rows (2D-ResNet and MT trained on the
VF-labelled volumes only); ``all`` the "All" rows. Metrics of each row come from the first seed's
test report (patient-cluster bootstrap CIs) plus the mean and SD of AUC over seeds; paired
differences (ΔAUC, patient-cluster bootstrap CI) compare every system with SEMT on the same test
volumes, seed by seed.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .command import write_out
from .config import Config
from .evaluate import markdown_table, paired_delta_auc
from .train import fit

PART_SYSTEMS = ("resnet2d", "mt")  # the paper's Table 1 trains only these on the VF-labelled part


def run_ablation(base: Config, out: Path, variants, seeds, train_set: str = "all", keep_files: bool = True) -> dict:
    """Train every (system, training set, seed); the tables are rewritten after each run, so a run
    cut short (a time limit) still leaves the rows finished so far. The decoded cache is
    ``base.cache_dir`` when given (processes side by side can share one), else ``out/cache``.
    ``keep_files=False`` deletes each run's checkpoints and model file once its report is written
    (many runs at once would otherwise fill a disk; the report keeps every test volume's probability)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    split_seed = base.the_split_seed
    runs: dict[str, dict[int, dict]] = {}
    result = {}
    for seed in seeds:  # seed-major: every system gets seed 0 before any gets seed 1
        for variant in variants:
            for ts in (["part", "all"] if train_set == "both" else [train_set]):
                if ts == "part" and variant not in PART_SYSTEMS:
                    continue
                cfg = Config(**{**asdict(base), "variant": variant, "seed": seed, "split_seed": split_seed,
                                "train_set": ts, "out": str(out / f"{variant}-{ts}-seed{seed}"),
                                "cache_dir": base.cache_dir or str(out / "cache")})
                runs.setdefault(f"{variant} ({ts.capitalize()})", {})[seed] = fit(cfg)
                if not keep_files:
                    for path in [*Path(cfg.out).rglob("*.pt"), Path(cfg.out) / "model.safetensors"]:
                        path.unlink(missing_ok=True)
                result = _write_tables(runs, split_seed, out)
    return result


def _write_tables(runs: dict, split_seed: int, out: Path) -> dict:
    seeds = sorted({s for by_seed in runs.values() for s in by_seed})
    summary = {"split_seed": split_seed, "seeds": seeds, "rows": {}, "paired_vs_semt": {}}
    for row, by_seed in runs.items():
        aucs = [r["image_level"]["auc"] for r in by_seed.values()]
        summary["rows"][row] = {"auc_mean": float(np.mean(aucs)),
                                "auc_sd": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0,
                                "auc_by_seed": aucs}
    reference = next((row for row in runs if row.startswith("semt")), None)
    if reference:
        for row, by_seed in runs.items():
            if row == reference:
                continue
            deltas = {}
            for seed in sorted(set(by_seed) & set(runs[reference])):
                a, b = runs[reference][seed]["test_volumes"], by_seed[seed]["test_volumes"]
                by_key = {v["volume"]: v for v in b}
                common = [v for v in a if v["volume"] in by_key]
                deltas[seed] = paired_delta_auc([v["label"] for v in common], [v["probability"] for v in common],
                                                [by_key[v["volume"]]["probability"] for v in common],
                                                [v["patient"] for v in common])
            summary["paired_vs_semt"][row] = deltas
    first = {row: by_seed[min(by_seed)] for row, by_seed in runs.items()}
    synthetic = all(r.get("synthetic_data") for r in first.values())
    table = markdown_table(first, synthetic) + "\n" + seeds_table(summary)
    write_out(out / "ablation.md", table)  # owner-only, as fit's reports (A11-2)
    write_out(out / "ablation.json", json.dumps(summary, indent=2))
    return {"table": table, **summary}


def seeds_table(summary: dict) -> str:
    lines = ["| System | AUC mean ± SD over seeds | ΔAUC SEMT − system [95% CI] per seed |", "|---|---|---|"]
    for row, s in summary["rows"].items():
        paired = summary["paired_vs_semt"].get(row, {})
        cells = "; ".join(f"{d['delta_auc']:+.3f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]" for d in paired.values())
        lines.append(f"| {row} | {s['auc_mean']:.3f} ± {s['auc_sd']:.3f} (n={len(s['auc_by_seed'])}) | "
                     f"{cells or '(reference)'} |")
    return "\n".join(lines) + "\n"
