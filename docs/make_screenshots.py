"""Screenshots for the README and docs, taken from the real application (offscreen).

Run from the repository root after the demo model exists:
``QT_QPA_PLATFORM=offscreen python docs/make_screenshots.py``. Writes docs/screenshots/*.png and
report_page1.png (page 1 of the same report document export_pdf prints).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent / "screenshots"


def report_page(window, width=620):
    """Page 1 of the PDF report as an image: the same document export_pdf prints (A4 proportions),
    painted on white (no PDF rasteriser needed)."""
    from PySide6.QtCore import QRectF, QSizeF
    from PySide6.QtGui import QColor, QImage, QPainter

    from octviewer.gui.report import build_document

    doc = build_document(window.state, window.report_images(), window.report_meta())
    height = int(width * 297 / 210)
    doc.setPageSize(QSizeF(width, height))
    image = QImage(width, height, QImage.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    doc.drawContents(painter, QRectF(0, 0, width, height))
    painter.end()
    return image


def main():
    import pyqtgraph as pg
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from octviewer.gui.app import dark_palette
    from octviewer.gui.main_window import MainWindow
    from octviewer.gui.retrain_dialog import RetrainDialog
    from octviewer.model import Predictor
    from octviewer.resources import DEMO_MODEL, DEMO_SCAN
    from octviewer.synth import generate_cohort

    app = QApplication.instance() or QApplication(sys.argv[:1])
    dark_palette(app)
    pg.setConfigOptions(background="#111214", foreground="#e8eaed", imageAxisOrder="row-major")
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.png"):  # every picture is retaken
        old.unlink()

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
    window.workers.signals.batch.connect(on_batch)
    window.open_path(str(DEMO_SCAN))
    wait_for(window.settled)
    app.processEvents()
    window.grab().save(str(OUT / "main_window.png"))
    pdf = Path(tempfile.mkdtemp()) / "report.pdf"
    window.export_pdf(str(pdf))
    report_page(window).save(str(OUT / "report_page1.png"))

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
    window.workers.shutdown()
    print("wrote", *sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
