"""Screenshots for the README and docs, taken from the real application (offscreen).

Run from the repository root after the demo model exists:
``QT_QPA_PLATFORM=offscreen python docs/make_screenshots.py [--skip-retrain]``. Writes the files in
``WRITES`` to docs/screenshots/, among them report_page1.png (page 1 of the same report document
export_pdf prints) and the structure and study features as the main window wires them: a synthetic
demo study opened through File > Open study folder, a scan of it with the structure panel and
the RNFL thickness map, the OU view and the trend view, and (with OCTVIEWER_SAMPLES set) a real
Spectralis circle scan with its RNFL lines and legend.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent / "screenshots"
#: what this script (re)writes; other scripts' pictures in the folder are left alone
WRITES = ["main_window.png", "main_window_during_analysis.png", "report_page1.png", "retrain_dialog.png",
          "main_window_study.png", "main_window_structure_circle.png", "ou_dialog.png", "trend_dialog.png",
          "report_structure_page.png"]


def report_page(window, width=700, page=0):
    """A page of the PDF report as an image: the same document export_pdf prints (A4 proportions),
    painted on white (no PDF rasteriser needed)."""
    from PySide6.QtCore import QRectF, QSizeF
    from PySide6.QtGui import QColor, QImage, QPainter

    from octviewer.gui.export.scan_pdf import build_document

    doc = build_document(window.state, window.exports.report_images(), window.models.model_meta(), None,
                         window.exports.report_sections(),
                         window.study.comparison_html())
    height = int(width * 297 / 210)
    doc.setPageSize(QSizeF(width, height))
    page = doc.pageCount() - 1 if page < 0 else page
    image = QImage(width, height, QImage.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.translate(0, -page * height)
    doc.drawContents(painter, QRectF(0, page * height, width, height))
    painter.end()
    return image


def main():
    import pyqtgraph as pg
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from octviewer.gui.app import dark_palette
    from octviewer.gui.main_window import MainWindow
    from octviewer.gui.model.retrain_dialog import RetrainDialog
    from octviewer.model import Predictor
    from octviewer.resources import DEMO_MODEL, DEMO_SCAN
    from octviewer.synth import generate_cohort

    app = QApplication.instance() or QApplication(sys.argv[:1])
    dark_palette(app)
    pg.setConfigOptions(background="#111214", foreground="#e8eaed", imageAxisOrder="row-major")
    OUT.mkdir(exist_ok=True)
    for name in WRITES:  # every picture of this script is retaken
        if not (name == "retrain_dialog.png" and "--skip-retrain" in sys.argv):
            (OUT / name).unlink(missing_ok=True)

    def wait_for(signal, timeout_ms=300_000):
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()

    predictor = Predictor(str(DEMO_MODEL), device="cpu", batch_size=2)
    window = MainWindow(predictor)
    window.resize(1400, 850)
    window.show()
    seen = []

    def on_batch(generation, batch):
        seen.append(len(batch.indices))
        if sum(seen) >= 20 and not (OUT / "main_window_during_analysis.png").exists():
            window.grab().save(str(OUT / "main_window_during_analysis.png"))
    window.tasks.batch.connect(on_batch)
    window.open_path(str(DEMO_SCAN))
    wait_for(window.settled)  # analysed and measured
    app.processEvents()
    window.grab().save(str(OUT / "main_window.png"))
    pdf = Path(tempfile.mkdtemp()) / "report.pdf"
    window.exports.pdf(str(pdf))
    report_page(window).save(str(OUT / "report_page1.png"))
    wiring_screenshots(app, window, wait_for)
    if "--skip-retrain" in sys.argv:
        window.close()
        print("wrote", *sorted(p.name for p in OUT.iterdir()))
        return

    with tempfile.TemporaryDirectory() as tmp:
        manifest = generate_cohort(Path(tmp) / "cohort", patients=10, preset="tiny", seed=5)
        dialog = RetrainDialog(window, manifest=str(manifest), out=str(Path(tmp) / "run"))
        dialog.variant.setCurrentText("semt")
        dialog.epochs.setValue(3)
        dialog.image_size.setValue(64)
        dialog.init.setCurrentText("random")
        dialog.device.setCurrentText("cpu")
        dialog.extra_arguments = ["--bscans-per-volume", "8", "--batch-size", "16"]
        dialog.show()
        dialog.start()
        loop = QEventLoop()

        def check():
            if any(r > 0 for r in [len(dialog.val_auc)]) and "stage2" in dialog.stage.text():
                loop.quit()
        timer = QTimer()
        timer.timeout.connect(check)
        timer.start(200)
        QTimer.singleShot(600_000, loop.quit)
        loop.exec()
        dialog.grab().save(str(OUT / "retrain_dialog.png"))
        dialog.stop()
        dialog.process.waitForFinished(30000)
    window.tasks.shutdown()
    print("wrote", *sorted(p.name for p in OUT.iterdir()))


def wiring_screenshots(app, window, wait_for):
    """The structure and study features as a user reaches them through the menus."""
    from PySide6.QtWidgets import QFileDialog

    from octviewer.study.demo import write_demo_study

    def settle(condition, timeout_s=300):
        import time

        end = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)
        app.processEvents()

    samples = os.environ.get("OCTVIEWER_SAMPLES")
    circle = Path(samples or "-") / "heidelberg_vol" / "Willis_B_716_2.vol"
    if circle.is_file():
        window.open_path(str(circle))
        wait_for(window.settled)
        settle(lambda: window.state.structure is not None)
        window.grab().save(str(OUT / "main_window_structure_circle.png"))

    work = Path(tempfile.mkdtemp(prefix="octviewer-shots-"))
    study = write_demo_study(work / "study", patients=3, visits=4, preset="small", seed=1)
    window.resize(1700, 900)
    real_dialog = QFileDialog.getExistingDirectory
    QFileDialog.getExistingDirectory = lambda *a, **k: str(study)
    try:
        window.menu_actions["open_study_folder"].trigger()  # File > Open study folder…
    finally:
        QFileDialog.getExistingDirectory = real_dialog
    panel = window.study.panel
    settle(lambda: panel.index is not None and not panel.is_busy())
    patient = panel.tree.topLevelItem(0)
    patient.setExpanded(True)
    visit = patient.child(patient.childCount() - 1)
    visit.setExpanded(True)
    eye = visit.child(0)
    eye.setExpanded(True)
    panel.tree.setCurrentItem(eye.child(0))  # selecting a scan opens it
    wait_for(window.settled)
    settle(lambda: window.state.structure is not None)
    window.menu_actions["rnfl_map"].trigger()  # View > RNFL thickness map
    app.processEvents()
    window.grab().save(str(OUT / "main_window_study.png"))
    report_page(window, page=-1).save(str(OUT / "report_structure_page.png"))  # the last page
    window.menu_actions["rnfl_map"].trigger()

    panel.tree.setCurrentItem(visit)
    panel.ou_button.click()
    settle(lambda: window.study.ou_view.summary is not None and not window.study.ou_view.tasks.busy())
    window.study.ou_dialog.grab().save(str(OUT / "ou_dialog.png"))
    panel.tree.setCurrentItem(eye)
    panel.trend_button.click()
    settle(lambda: window.study.trend_view.history is not None and not window.study.trend_view.tasks.busy())
    window.study.trend_dialog.grab().save(str(OUT / "trend_dialog.png"))


if __name__ == "__main__":
    main()
