"""Model > Retrain…: run ``octviewer-train fit`` as a separate process and follow its JSON progress.

A separate process (QProcess), not a thread: training uses every core and lots of memory, may
crash on a bad GPU driver, and must survive being stopped; none of that may touch the viewer.
The model in use changes only when the user presses "Load this model" after a successful run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QProcess, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)


def _path_row(edit: QLineEdit, pick) -> QWidget:
    w = QWidget()
    h = QHBoxLayout(w)
    h.setContentsMargins(0, 0, 0, 0)
    h.addWidget(edit)
    b = QPushButton("Browse…")
    b.clicked.connect(pick)
    h.addWidget(b)
    return w


class RetrainDialog(QDialog):
    model_ready = Signal(str)  # path of a finished model file the user chose to load

    def __init__(self, parent=None, manifest: str = "", out: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Retrain model")
        self.resize(760, 680)
        self.process: QProcess | None = None
        self._buffer = b""
        self.losses: list[float] = []
        self.val_auc: list[float] = []
        self.result_model: str | None = None
        self.stopped = False
        self.extra_arguments: list[str] = []  # advanced trainer flags passed through as given

        self.manifest = QLineEdit(manifest)
        self.out = QLineEdit(out or str(Path.home() / "octviewer-runs" / "retrain"))
        self.variant = QComboBox()
        self.variant.addItems(["semt", "mt", "resnet2d", "cnn3d", "resnet3d"])
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(10)
        self.image_size = QSpinBox()
        self.image_size.setRange(32, 512)
        self.image_size.setValue(224)
        self.init = QComboBox()
        self.init.addItems(["imagenet", "random"])
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        form = QFormLayout()
        form.addRow("Dataset manifest", _path_row(self.manifest, self._pick_manifest))
        form.addRow("Output folder", _path_row(self.out, self._pick_out))
        form.addRow("Variant", self.variant)
        form.addRow("Epochs", self.epochs)
        form.addRow("Image size", self.image_size)
        form.addRow("Initialisation", self.init)
        form.addRow("Device", self.device)

        self.validation = QLabel("Pick a manifest to see its validation.")
        self.validation.setWordWrap(True)
        self.validation.setTextFormat(Qt.RichText)
        self.stage = QLabel("")
        self.bar = QProgressBar()
        self.plot = pg.PlotWidget()
        self.plot.setLabel("left", "loss / AUC")
        self.plot.setLabel("bottom", "step")
        self.plot.addLegend()
        self.loss_curve = self.plot.plot(pen=pg.mkPen("#ff8a65"), name="train loss")
        self.auc_curve = self.plot.plot(pen=pg.mkPen("#4fc3f7"), symbol="o", name="val AUC")
        self.plot.setMinimumHeight(160)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)

        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        self.load_button = QPushButton("Load this model")
        self.load_button.clicked.connect(self._load)
        self.load_button.setEnabled(False)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.load_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.validation)
        layout.addWidget(self.stage)
        layout.addWidget(self.bar)
        layout.addWidget(self.plot)
        layout.addWidget(self.log)
        layout.addLayout(buttons)
        self.manifest.editingFinished.connect(self.validate)
        if manifest:
            self.validate()

    # -- inputs --------------------------------------------------------------------------------
    def _pick_manifest(self):
        path, _ = QFileDialog.getOpenFileName(self, "Dataset manifest", "", "CSV (*.csv)")
        if path:
            self.manifest.setText(path)
            self.validate()

    def _pick_out(self):
        path = QFileDialog.getExistingDirectory(self, "Output folder")
        if path:
            self.out.setText(path)

    def validate(self) -> bool:
        """Check the manifest before starting (files, labels, VF ranges, splits); show the counts."""
        from trainer.manifest import ManifestError, assign_splits, read_manifest, summary

        try:
            records, _ = read_manifest(self.manifest.text())
        except ManifestError as exc:
            problems = "".join(f"<li>{p}</li>" for p in exc.problems[:20])
            more = f"<li>… {len(exc.problems) - 20} more</li>" if len(exc.problems) > 20 else ""
            self.validation.setText(f"<b style='color:#ef5350'>The manifest has problems:</b><ul>{problems}{more}</ul>")
            return False
        counts = summary(assign_splits(records, seed=0))
        rows = "".join(f"<tr><td>{s}</td><td>{c['volumes']}</td><td>{c['glaucoma']}</td><td>{c['patients']}</td>"
                       f"<td>{c['with_vf']['md']}</td></tr>" for s, c in counts.items())
        synthetic = all(r.extra.get("synthetic") == "1" for r in records)
        note = "<br><b style='color:#ffb74d'>SYNTHETIC data</b>" if synthetic else ""
        self.validation.setText("<b style='color:#66bb6a'>Manifest OK</b>" + note +
                                "<table><tr><th>split</th><th>volumes</th><th>glaucoma</th><th>patients</th>"
                                f"<th>with VF</th></tr>{rows}</table>")
        return True

    # -- the run -------------------------------------------------------------------------------
    def arguments(self) -> list[str]:
        return ["-m", "trainer", "fit", "--data", self.manifest.text(), "--out", self.out.text(),
                "--variant", self.variant.currentText(), "--epochs", str(self.epochs.value()),
                "--image-size", str(self.image_size.value()), "--init", self.init.currentText(),
                "--device", self.device.currentText(), "--progress-json", "-", "--resume"]

    def start(self):
        if not self.validate():
            return
        self.stopped = False
        self.result_model = None
        self.load_button.setEnabled(False)
        self.losses, self.val_auc = [], []
        self.process = QProcess(self)
        self.process.setProgram(sys.executable)
        self.process.setArguments(self.arguments() + self.extra_arguments)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._finished)
        self.process.start()
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.stage.setText("starting…")

    def stop(self):
        """SIGTERM: the trainer stops at the next step; its last checkpoint stays resumable."""
        if self.process is not None and self.process.state() != QProcess.NotRunning:
            self.stopped = True
            self.stage.setText("stopping…")
            self.process.terminate()

    def _read_stdout(self):
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                self._on_record(json.loads(line))
            except ValueError:
                self.log.appendPlainText(line.decode(errors="replace"))

    def _read_stderr(self):
        self.log.appendPlainText(bytes(self.process.readAllStandardError()).decode(errors="replace").rstrip())

    def _on_record(self, r: dict):
        stage = r.get("stage", "")
        if r.get("event") == "step":
            self.bar.setRange(0, int(r.get("total") or 0))
            self.bar.setValue(int(r.get("step") or 0))
            epoch = f" epoch {r['epoch'] + 1}/{r.get('epochs', '?')}" if "epoch" in r else ""
            eta = f", ETA {r['eta_s']:.0f} s" if "eta_s" in r else ""
            self.stage.setText(f"{stage}{epoch}{eta}")
            if "loss" in r:
                self.losses.append(float(r["loss"]))
                self.loss_curve.setData(self.losses)
        elif r.get("event") == "epoch":
            if "val_auc" in r:
                self.val_auc.append((len(self.losses), float(r["val_auc"])))
                xs, ys = zip(*self.val_auc)
                self.auc_curve.setData(list(xs), list(ys))
            self.log.appendPlainText(f"{stage} epoch {r.get('epoch', 0) + 1}: "
                                     + ", ".join(f"{k} {v:.3f}" for k, v in r.items()
                                                 if isinstance(v, float) and k != "time"))
        elif r.get("event") == "finished":
            self.result_model = r.get("model")
        elif r.get("event") in ("warning", "skipped"):
            self.log.appendPlainText(f"{stage}: {r.get('message')}")

    def _finished(self, code, status):
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        report = Path(self.out.text()) / "report.md"
        if code == 0 and self.result_model and Path(self.result_model).exists():
            self.stage.setText("finished")
            if report.exists():
                self.log.appendPlainText("\n" + report.read_text())
            self.load_button.setEnabled(True)
        elif self.stopped:
            self.stage.setText("stopped: the run can be resumed with Start (same output folder); "
                               "the model in use is unchanged")
        else:
            self.stage.setText(f"failed (exit {code}); the model in use is unchanged — see the log")

    def _load(self):
        if self.result_model:
            self.model_ready.emit(self.result_model)

    def closeEvent(self, event):
        self.stop()
        if self.process is not None:
            self.process.waitForFinished(10000)
        super().closeEvent(event)
