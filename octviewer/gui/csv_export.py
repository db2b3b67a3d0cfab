"""File > Export results as CSV: the volume's result first, then one row per B-scan (numbered
from 1, as the viewer shows them), each with the file name, eye and date so a row read alone
still says where it came from. Qt-free."""

from __future__ import annotations

import csv
from pathlib import Path

from .results_panel import scan_date


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_results_csv(path, volume, prediction) -> Path:
    p, v = prediction, volume
    vf_names = list(p.vf)
    common = [spreadsheet_safe(Path(v.source).name if v.source else ""), v.laterality or "",
              scan_date(v) if v.acquired else ""]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["# research use only, not a medical device"
                    + ("; model trained on SYNTHETIC data" if p.synthetic_model else "")])
        w.writerow(["level", "bscan", "probability", "decision", *vf_names, "file", "eye", "date", "model"])
        w.writerow(["volume", "", f"{p.probability:.4f}", p.decision, *[f"{p.vf[k]:.2f}" for k in vf_names],
                    *common, spreadsheet_safe(p.model_name)])
        for i in range(p.n_bscans):
            w.writerow(["bscan", i + 1, f"{p.bscan_probability[i]:.4f}", "",
                        *[f"{p.bscan_vf[k][i]:.2f}" if k in p.bscan_vf else "" for k in vf_names], *common, ""])
    return Path(path)
