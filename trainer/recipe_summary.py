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


def _pair(pair, fmt=".2f") -> str:
    return f" [{pair[0]:{fmt}}, {pair[1]:{fmt}}]" if pair and len(pair) == 2 else ""


def _ci(row: dict, key: str) -> str:
    """A metric's 95% patient-cluster interval from an evaluation row, or nothing for older reports."""
    return _pair((row.get("ci95") or {}).get(key))


def report_lines(report: dict) -> list[str]:
    """An evaluation report (``evaluate`` or a fit's report.json) as Markdown bullets, with the
    acceptance targets of issue 13 beside the figures."""
    im, md = report["image_level"], report.get("vf_mae", {}).get("md", {})
    checks = report.get("md_checks", {})
    share = checks.get("normal_md_ge_-2.5_share", float("nan"))
    healthy = checks.get("stage_normal_md_ge_-2.5_share", float("nan"))
    lines = [f"- AUC {im['auc']:.3f}{_pair(im.get('ci95', {}).get('auc'), '.3f')} (target >= 0.85)",
             f"- ECE {im['ece']:.3f} (target <= 0.08), Brier {im['brier']:.3f}, threshold {report['threshold']:.3f}"]
    floor = im.get("ece_floor")
    if floor and len(floor) == 2:  # an ECE near this is the test set's noise, not miscalibration
        lines.append(f"  - a perfectly calibrated model would read ECE {floor[0]:.3f} on this set (95% of draws "
                     f"below {floor[1]:.3f}): an ECE below that cannot be told from perfect calibration here")
    if md:
        nan = float("nan")
        diff = md.get("mae_minus_class_mean", md.get("mae", nan) - md.get("class_mean_mae", nan))
        lines += [f"- MD MAE {md.get('mae', float('nan')):.2f} dB{_ci(md, 'mae')} vs class-mean oracle "
                  f"{md.get('class_mean_mae', float('nan')):.2f} dB (target: below the oracle; difference "
                  f"{diff:+.2f}"
                  f"{_ci(md, 'mae_minus_class_mean')}); Spearman within glaucoma "
                  f"{md.get('spearman_glaucoma', float('nan')):.2f}",
                  f"- normal volumes with predicted MD >= -2.5 dB: {share:.1%}"
                  f"{_pair(checks.get('normal_md_ge_-2.5_share_ci95'), '.1%')} (target >= 80%); eyes of stage "
                  f"'normal' (no preperimetric damage): {healthy:.0%}"]
    for name in ("vfi", "psd"):
        row = report.get("vf_mae", {}).get(name)
        if row and "class_mean_mae" in row:
            lines.append(f"- {name.upper()} MAE {row['mae']:.2f}{_ci(row, 'mae')} vs oracle "
                         f"{row['class_mean_mae']:.2f} (difference "
                         f"{row.get('mae_minus_class_mean', row['mae'] - row['class_mean_mae']):+.2f}"
                         f"{_ci(row, 'mae_minus_class_mean')})")
    for stage, row in checks.get("md_by_stage", {}).items():
        lines.append(f"  - {stage}: predicted MD {row['predicted_mean']:.1f} ± {row['predicted_sd']:.1f} dB, "
                     f"true {row['true_mean'] if row['true_mean'] is None else round(row['true_mean'], 1)} dB, "
                     f"n={row['n']}")
    pg = report.get("pointing_game")
    if pg:
        lines.append(f"- CAM pointing game {pg['hit_rate']:.1%}{_pair(pg.get('ci95'), '.1%')} of {pg['n']} "
                     f"(chance {pg.get('chance_rate', float('nan')):.0%}; target >= 70%)")
    return lines


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
        if report:
            lines += [f"## {title}", "", *report_lines(report), ""]
    if (out / "ablation" / "ablation.md").exists():
        lines += ["## Ablation (reduced)", "", (out / "ablation" / "ablation.md").read_text()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(summary(Path(sys.argv[1])))
