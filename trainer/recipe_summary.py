"""``python -m trainer.recipe_summary OUT``: the GPU recipe's results as Markdown (acceptance checks
of issue 13 for the demo model, then the ablation table), read from the files the recipe wrote."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def summary(out: Path) -> str:
    lines = ["# GPU recipe results (SYNTHETIC data: engineering result, not a clinical claim)", ""]
    for name in ("machine.txt", "timings.txt"):
        if (out / name).exists():
            lines += [f"## {name}", "```", (out / name).read_text().strip(), "```", ""]
    model = out / "demo" / "model.safetensors"
    if model.exists():
        lines.append(f"Demo model: {model.stat().st_size / 1e6:.1f} MB (limit 25 MB)\n")
    for title, report in (("Demo SEMT, test split of the training cohort", _load(out / "demo" / "report.json")),
                          ("Demo SEMT, held-out cohort (another seed)", _load(out / "demo" / "heldout_eval.json"))):
        if not report:
            continue
        im, md = report["image_level"], report.get("vf_mae", {}).get("md", {})
        checks = report.get("md_checks", {})
        share = checks.get("normal_md_ge_-2.5_share", float("nan"))
        healthy = checks.get("stage_normal_md_ge_-2.5_share", float("nan"))
        lines += [f"## {title}", "",
                  f"- AUC {im['auc']:.3f} {im.get('ci95', {}).get('auc', '')} (target >= 0.85)",
                  f"- ECE {im['ece']:.3f} (target <= 0.08), Brier {im['brier']:.3f}, "
                  f"threshold {report['threshold']:.3f}",
                  f"- MD MAE {md.get('mae', float('nan')):.2f} dB vs class-mean oracle "
                  f"{md.get('class_mean_mae', float('nan')):.2f} dB (target: below the oracle); "
                  f"Spearman within glaucoma {md.get('spearman_glaucoma', float('nan')):.2f}",
                  f"- normal volumes with predicted MD >= -2.5 dB: {share:.0%} (target >= 80%); eyes of stage "
                  f"'normal' (no preperimetric damage): {healthy:.0%}"]
        for stage, row in checks.get("md_by_stage", {}).items():
            lines.append(f"  - {stage}: predicted MD {row['predicted_mean']:.1f} ± {row['predicted_sd']:.1f} dB, "
                         f"true {row['true_mean'] if row['true_mean'] is None else round(row['true_mean'], 1)} dB, "
                         f"n={row['n']}")
        lines.append("")
    if (out / "ablation" / "ablation.md").exists():
        lines += ["## Ablation (reduced)", "", (out / "ablation" / "ablation.md").read_text()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(summary(Path(sys.argv[1])))
