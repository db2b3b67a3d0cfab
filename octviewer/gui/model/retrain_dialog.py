"""Model > Retrain…: run ``octviewer-train fit`` as a separate process and follow its JSON progress.

A separate process (QProcess), not a thread: training uses every core and lots of memory, may
crash on a bad GPU driver, and must survive being stopped; none of that may touch the viewer.
The model in use changes only when the user presses "Load this model" after a successful run,
has seen the evaluation and has confirmed.

Each Start is a new run in a new, timestamped folder, so a finished run's checkpoints are never
reused by accident; continuing a stopped run is the explicit Resume button. The manifest check
(which opens every file) runs in a worker thread. ImageNet initialisation needs weights that are
downloaded on first use: the dialog checks the cache before starting and offers random
initialisation or a local weights file instead of failing offline after the progress bar.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from octviewer.model.signing import SIGN_ENV

from ..background import TaskSlot
from ..dialogs import path_row
from . import retrain_checks as checks
from .run_report import evaluated, evaluation_text, new_run_dir, read_report


class RetrainDialog(QDialog):
    model_ready = Signal(str)  # path of a finished model file the user chose to load

    def __init__(self, parent=None, manifest: str = "", out: str = "", like=None):
        """``like``: the ModelMeta of the model in use, whose variant and image size a new run starts from: the
        dialog offered 224 px beside a model made at 160 (walk-through H65, W25)."""
        super().__init__(parent)
        self.setWindowTitle("Retrain model")
        self.resize(760, 680)
        self.process: QProcess | None = None
        self._buffer = b""
        self.losses: list[float] = []
        self.val_auc: list[float] = []
        self.result_model: str | None = None
        self.stopped = False
        self.run_dir: Path | None = None  # the folder of the current (or last) run
        self.extra_arguments: list[str] = []  # advanced trainer flags passed through as given
        self.manifest_ok: bool | None = None  # None while the check runs
        self._start_when_valid = False
        self._checks = TaskSlot(self, progress_widgets=False)  # one manifest check at a time; newer wins
        self._checks.done.connect(self._validated)
        self._checks.failed.connect(lambda message: self._validated((False, html.escape(message))))

        self.manifest = QLineEdit(manifest)
        self.out = QLineEdit(out or str(Path.home() / "octviewer-runs"))
        self.variant = QComboBox()
        self.variant.addItems(["semt", "mt", "resnet2d", "cnn3d", "resnet3d"])
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(10)
        self.image_size = QSpinBox()
        self.image_size.setRange(32, 512)
        self.image_size.setValue(224)
        self.follow_model(like)
        self.init = QComboBox()
        self.init.addItems(["imagenet", "random", "weights file"])
        if not checks.imagenet_weights_path().exists():  # the choice that works here (walk-through H82, W16)
            self.init.setCurrentText("random")
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("ResNet18 state dict (.pth) for 'weights file'")
        self.init_note = QLabel("")
        self.init_note.setTextFormat(Qt.PlainText)
        self.init_note.setWordWrap(True)
        self.use_random_button = QPushButton("Use random initialisation")
        self.use_random_button.clicked.connect(lambda: self.init.setCurrentText("random"))
        self.pick_weights_button = QPushButton("Choose weights file…")
        self.pick_weights_button.clicked.connect(self._pick_weights)
        self.init.currentTextChanged.connect(self._check_init)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        form = QFormLayout()
        form.addRow("Dataset manifest", path_row(self.manifest, self._pick_manifest))
        form.addRow("Runs folder", path_row(self.out, self._pick_out))
        form.addRow("Variant", self.variant)
        form.addRow("Epochs", self.epochs)
        form.addRow("Image size", self.image_size)
        form.addRow("Initialisation", self.init)
        self.init_help = QWidget()  # shown only when the chosen initialisation cannot work here
        help_layout = QVBoxLayout(self.init_help)
        help_layout.setContentsMargins(0, 0, 0, 0)
        help_layout.addWidget(self.init_note)
        init_buttons = QHBoxLayout()
        init_buttons.addWidget(self.use_random_button)
        init_buttons.addWidget(self.pick_weights_button)
        help_layout.addLayout(init_buttons)
        form.addRow("", self.init_help)
        self.form = form
        form.addRow("Weights file", self.weights)
        form.addRow("Device", self.device)

        self.validation = QLabel("Pick a manifest to see its validation.")
        self.validation.setWordWrap(True)
        self.validation.setTextFormat(Qt.RichText)
        self.stage = QLabel("")
        self.stage.setTextFormat(Qt.PlainText)  # stage names come from the trainer's output
        self.bar = QProgressBar()
        self.plot = pg.PlotWidget()
        self.plot.setLabel("left", "loss / AUC")
        self.plot.setLabel("bottom", "training step (both stages; a dashed line marks where a stage begins)")
        for side in ("left", "bottom"):  # pyqtgraph's "(x0.001)" scaling made an AUC of 0.8 read 800
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.plot.addLegend()
        self.loss_curve = self.plot.plot(pen=pg.mkPen("#ff8a65"), name="train loss")
        self.auc_curve = self.plot.plot(pen=pg.mkPen("#4fc3f7"), symbol="o", name="val AUC")
        self.plot.setMinimumHeight(160)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)

        self.start_button = QPushButton("Start new run")
        self.start_button.clicked.connect(self.start)
        self.resume_button = QPushButton("Resume stopped run")
        self.resume_button.clicked.connect(self.resume)
        self.resume_button.setEnabled(False)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        self.load_button = QPushButton("Load this model")
        self.load_button.clicked.connect(self._load)
        self.load_button.setEnabled(False)
        self.close_button = QPushButton("Close")  # as the window's X: a run still going is stopped first
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.resume_button, self.stop_button, self.load_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.validation)
        layout.addWidget(self.stage)
        layout.addWidget(self.bar)
        layout.addWidget(self.plot)
        layout.addWidget(self.log)
        layout.addLayout(buttons)
        self.manifest.editingFinished.connect(self.validate)
        # a path typed or pasted is checked once the typing pauses, not only on Enter or leaving the field
        self._typing = QTimer(self)
        self._typing.setSingleShot(True)
        self._typing.setInterval(700)
        self._typing.timeout.connect(self._validate_typed)
        self.manifest.textEdited.connect(lambda _text: self._typing.start())
        self._check_init()
        if manifest:
            self.validate()

    def follow_model(self, like) -> None:
        """Offer the variant and image size of ``like`` (the ModelMeta in use), unless a run is going (its own
        settings stay shown). Called each time Model > Retrain… is opened: the dialog is kept, and after Model >
        Load model… it offered the first model's (attack run 13, A13-4). A variant the dialog does not offer
        changes neither, so the two never come from different models."""
        running = self.process is not None and self.process.state() != QProcess.NotRunning
        if like is None or running or self.variant.findText(like.architecture) < 0:
            return
        self.variant.setCurrentText(like.architecture)
        self.image_size.setValue(like.preprocess.size)

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

    def _pick_weights(self):
        path, _ = QFileDialog.getOpenFileName(self, "ResNet18 weights", "", "PyTorch weights (*.pth *.pt)")
        if path:
            self.weights.setText(path)
            self.init.setCurrentText("weights file")

    def _check_init(self, *_):
        """Say before starting whether the chosen initialisation can work on this computer."""
        missing = self.init.currentText() == "imagenet" and not checks.imagenet_weights_path().exists()
        self.init_note.setText(
            f"ImageNet weights are not on this computer ({checks.imagenet_weights_path()}). They are downloaded when "
            "the run starts, which fails offline: use random initialisation or a local weights file."
            if missing else "")
        # a wrapped label in a form row is given one line's height when space is short: its last
        # line ran under the buttons below; reserve what the text needs at the row's width
        self.init_note.setMinimumHeight(self.init_note.heightForWidth(max(self.init_note.width(), 560)))
        if hasattr(self, "form"):
            self.form.setRowVisible(self.init_help, missing)
        self.init_help.setVisible(missing)
        self.weights.setEnabled(self.init.currentText() == "weights file")

    def init_argument(self) -> str | None:
        """The trainer's --init value, or None (with the reason shown) when it cannot work."""
        choice = self.init.currentText()
        if choice == "weights file":
            path = Path(self.weights.text())
            if not self.weights.text() or not path.is_file():
                self.stage.setText("Choose a weights file (or another initialisation) first.")
                return None
            return str(path)
        if choice == "imagenet" and not checks.imagenet_weights_path().exists():
            if not checks.confirm(self, "ImageNet weights", "The ImageNet weights are not on this computer and would "
                                  "be downloaded now; this needs internet access.\n\nDownload and start?"):
                self.stage.setText("Not started: choose random initialisation or a local weights file.")
                return None
        return choice

    def validate(self) -> None:
        """Check the manifest (files, labels, VF ranges, splits) in a worker; show the counts."""
        self.manifest_ok = None
        self.validation.setText("Checking the manifest…")
        if self.stage.text().startswith("Not started"):  # about the manifest before this one
            self.stage.setText("")
        path = self.manifest.text()
        self._checks.start(lambda _progress, _cancel: checks.validate_manifest(path), "manifest-check")

    def _validate_typed(self) -> None:
        """Check a typed path as soon as it names a file; say what is missing while it does not."""
        if Path(self.manifest.text()).is_file():
            self.validate()
        else:
            self._checks.drop()  # a check still running is for an older path
            self.manifest_ok = None
            self.validation.setText("No manifest file at this path yet.")

    def _validated(self, outcome) -> None:
        ok, text = outcome
        self.manifest_ok = ok
        self.validation.setText(text)
        if self._start_when_valid:
            self._start_when_valid = False
            if ok:
                self._launch(resume=False)
            else:
                self.start_button.setEnabled(True)
                self.stage.setText("Not started: the manifest has problems.")

    # -- the run -------------------------------------------------------------------------------
    def arguments(self, resume: bool = False) -> list[str]:
        args = ["-m", "trainer", "fit", "--data", self.manifest.text(), "--out", str(self.run_dir),
                "--variant", self.variant.currentText(), "--epochs", str(self.epochs.value()),
                "--image-size", str(self.image_size.value()), "--init", self._init_value,
                "--device", self.device.currentText(), "--progress-json", "-"]
        return args + (["--resume"] if resume else [])

    def start(self):
        """A new run in a new folder (after the manifest check, which may still be running). Without
        a manifest file nothing is asked (ImageNet download) and nothing waits for a check that
        never started: the dialog says what is missing."""
        if not self.manifest.text().strip() or not Path(self.manifest.text()).is_file():
            self.stage.setText("Not started: choose the dataset manifest (a CSV file) first.")
            return
        init = self.init_argument()
        if init is None:
            return
        self._init_value = init
        self.start_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        if self.manifest_ok is None:
            self._start_when_valid = True
            self.stage.setText("waiting for the manifest check…")
            return
        if not self.manifest_ok:
            self.start_button.setEnabled(True)
            self.stage.setText("Not started: the manifest has problems.")
            return
        self._launch(resume=False)

    def resume(self):
        """Continue the stopped run in its own folder (the trainer refuses other settings or data)."""
        if self.run_dir is None or not self.stopped:
            return
        self._launch(resume=True)

    def _launch(self, resume: bool):
        if not resume:
            self.run_dir = new_run_dir(self.out.text(), self.variant.currentText())
        self.stopped = False
        self.result_model = None
        self.load_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.losses, self.val_auc = [], []
        self._plot_stage = None
        for line in getattr(self, "_stage_lines", []):
            self.plot.removeItem(line)
        self._stage_lines = []
        self.process = QProcess(self)
        self.process.setProgram(sys.executable)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert(SIGN_ENV, "workstation")  # the model is signed with this workstation's key
        self.process.setProcessEnvironment(environment)
        self.process.setArguments(self.arguments(resume) + self.extra_arguments)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._finished)
        self.process.start()
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.log.appendPlainText(f"{'resuming' if resume else 'new run'} in {self.run_dir}")
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
            # the trainer reports steps within the epoch (or the cache), so the bar and ETA are that span's
            self.bar.setFormat("%p% of this epoch" if "epoch" in r else "%p%")
            epoch = f" epoch {r['epoch'] + 1}/{r.get('epochs', '?')}" if "epoch" in r else ""
            eta = (f", this {'epoch' if 'epoch' in r else 'step'} ends in ~{r['eta_s']:.0f} s"
                   if "eta_s" in r else "")
            self.stage.setText(f"{stage}{epoch}{eta}")
            if "loss" in r:
                if stage != getattr(self, "_plot_stage", None):  # stage 1 and stage 2 share the axis: mark the seam
                    self._plot_stage = stage
                    line = pg.InfiniteLine(pos=len(self.losses), angle=90, pen=pg.mkPen("#888", style=Qt.DashLine),
                                           label=stage, labelOpts={"position": 0.95, "color": "#bbb"})
                    self.plot.addItem(line)
                    self._stage_lines = [*getattr(self, "_stage_lines", []), line]
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
        report = self.run_dir / "report.md"
        if code == 0 and self.result_model and Path(self.result_model).exists():
            self.stage.setText("finished")
            if report.exists():
                self.log.appendPlainText("\n" + report.read_text())
            self.load_button.setEnabled(True)
        elif self.stopped:
            self.resume_button.setEnabled(True)
            self.stage.setText("stopped: Resume continues this run; Start begins a new one. "
                               "The model in use is unchanged")
        else:
            self.stage.setText(f"failed (exit {code}); the model in use is unchanged — see the log")

    def evaluation_text(self) -> str:
        return evaluation_text(self.run_dir)

    def _load(self):
        """Show the new model's evaluation and ask before it replaces the model in use."""
        if not self.result_model:
            return
        if not evaluated(read_report(self.run_dir)):  # never offer a model whose test AUC is NaN or absent (A8-6)
            QMessageBox.warning(self, "Model not evaluated", "The new model could not be evaluated on a test "
                                "split:\n\n" + self.evaluation_text() + "\n\nThe model in use is kept.")
            return
        if checks.confirm(self, "Load this model?", "Evaluation of the new model (held-out test split):\n\n"
                   + self.evaluation_text() + "\n\nReplace the model in use with it?"):
            self.model_ready.emit(self.result_model)

    def closeEvent(self, event):
        self.stop()
        if self.process is not None:
            self.process.waitForFinished(10000)
        self._checks.shutdown(10.0)  # a manifest check still running stops with the dialog
        super().closeEvent(event)
