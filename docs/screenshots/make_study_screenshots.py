"""Screenshots of the study browser, the OU view and the trend view on the SYNTHETIC demo study.

    PYTHONPATH=$PWD QT_QPA_PLATFORM=offscreen python docs/screenshots/make_study_screenshots.py

Analysis uses the bundled demo model on the CPU (synthetic, no clinical validity); the structure
analysis is used when ``octviewer.structure`` is present, otherwise RNFL values stay empty.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent


def make_analyse():
    from octviewer import load_volume
    from octviewer.model import Predictor

    predictor = Predictor(str(ROOT / "resources" / "models" / "demo_semt.safetensors"), device="cpu")
    try:
        from octviewer.structure import measure
    except ImportError:
        measure = None

    def analyse(path):
        volume = load_volume(path)
        return predictor.predict(volume), (measure(volume) if measure is not None else None)
    return analyse


def wait(app, widget, attr):
    while getattr(widget, attr) is None or widget.worker.busy():
        app.processEvents()
    app.processEvents()


def main() -> int:
    from octviewer.gui.ou_view import OUView
    from octviewer.gui.study_panel import StudyPanel
    from octviewer.gui.trend_view import TrendView

    from octviewer.gui.app import dark_palette
    from octviewer.study.demo import write_demo_study

    app = QApplication.instance() or QApplication(sys.argv)
    dark_palette(app)
    work = Path(tempfile.mkdtemp(prefix="octviewer-study-shots-"))
    study = write_demo_study(work / "study", patients=4, visits=5, preset="small", seed=1)
    analyse = make_analyse()

    panel = StudyPanel(cache_dir=str(work / "cache"))
    panel.resize(460, 640)
    panel.show()
    panel.open_folder(str(study))
    wait(app, panel, "index")
    pid = panel.index.patients()[0]
    first = panel.tree.topLevelItem(0)
    first.setExpanded(True)
    visit_item = first.child(first.childCount() - 1)
    visit_item.setExpanded(True)
    visit_item.child(0).setExpanded(True)
    panel.tree.setCurrentItem(visit_item.child(0))
    app.processEvents()
    panel.grab().save(str(OUT / "study_panel.png"))

    ou = OUView()
    ou.resize(900, 900)
    ou.show()
    ou.show_visit(panel.index, pid, panel.index.visits(pid)[-1].label, analyse)
    wait(app, ou, "summary")
    ou.grab().save(str(OUT / "ou_view.png"))

    trend = TrendView()
    trend.resize(820, 860)
    trend.show()
    trend.show_eye(panel.index, pid, "OD", analyse)
    wait(app, trend, "history")
    trend.grab().save(str(OUT / "trend_view.png"))
    print("wrote", *(p.name for p in OUT.glob("*.png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
