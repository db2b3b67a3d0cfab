"""What the Retrain dialog checks before a run, off the GUI thread where it is slow: the manifest
(every file opened, in a worker), whether ImageNet weights are on this computer, and the plain-text
Yes/No question it asks before replacing the model in use."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox


def imagenet_weights_path() -> Path:
    """Where torchvision keeps the ResNet18 ImageNet weights once downloaded."""
    import torch
    from torchvision.models import ResNet18_Weights

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(ResNet18_Weights.IMAGENET1K_V1.url).name


def confirm(parent, title: str, text: str) -> bool:
    """A plain-text Yes/No question (text from files never rendered as markup)."""
    box = QMessageBox(QMessageBox.Question, title, text, QMessageBox.Yes | QMessageBox.No, parent)
    box.setTextFormat(Qt.PlainText)
    box.setDefaultButton(QMessageBox.No)
    return box.exec() == QMessageBox.Yes


def validate_manifest(path: str) -> tuple[bool, str]:
    """(ok, HTML summary) for a manifest; every text from the file is escaped. Runs in a worker."""
    from trainer.manifest import ManifestError, checked_split, manifest_warnings

    try:
        records, counts = checked_split(path, seed=0)
    except ManifestError as exc:
        problems = "".join(f"<li>{html.escape(str(p))}</li>" for p in exc.problems[:20])
        more = f"<li>… {len(exc.problems) - 20} more</li>" if len(exc.problems) > 20 else ""
        return False, f"<b style='color:#ef5350'>The manifest has problems:</b><ul>{problems}{more}</ul>"
    except Exception as exc:  # unreadable file, wrong encoding…
        return False, f"<b style='color:#ef5350'>Cannot read the manifest:</b> {html.escape(str(exc))}"
    rows = "".join(f"<tr><td>{html.escape(str(s))}</td><td>{c['volumes']}</td><td>{c['glaucoma']}</td>"
                   f"<td>{c['patients']}</td><td>{c['with_vf']['md']}</td></tr>" for s, c in counts.items())
    synthetic = all(r.extra.get("synthetic") == "1" for r in records)
    note = "<br><b style='color:#ffb74d'>SYNTHETIC data</b>" if synthetic else ""
    warnings = "".join(f"<br><b style='color:#ffb74d'>Warning:</b> {html.escape(w)}"
                       for w in manifest_warnings(records, counts))  # validate's warnings (A9-5)
    return True, ("<b style='color:#66bb6a'>Manifest OK</b>" + note + warnings + "<table><tr><th>split</th>"
                  f"<th>volumes</th><th>glaucoma</th><th>patients</th><th>with VF</th></tr>{rows}</table>")
