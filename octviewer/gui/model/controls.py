"""The Model menu and the Device menu in the window: which model and device are in use, loading
another model, the model card, Model > Retrain, and the status bar's model and device lines."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QLabel, QMessageBox

from ..dialogs import as_literal, text_dialog
from .card import identity, meta_dict, model_card_text


class ModelControls:
    def __init__(self, window):
        self.window = window
        self.retrain_dialog = None
        self.status_device = QLabel()
        self.status_model = QLabel()
        self.status_model.setTextFormat(Qt.PlainText)

    @property
    def predictor(self):
        return self.window.controller.predictor

    def set_device(self, name: str) -> None:
        """A failure (no CUDA here) keeps the current device and says why."""
        w = self.window
        try:
            w.controller.set_device(name)
        except RuntimeError as exc:
            self.tick_device()  # the tick goes back to the device in force
            QMessageBox.warning(w, "Device", as_literal(str(exc)))
            return
        w.settings.set("device", name)
        self.update_status()

    def tick_device(self) -> None:
        """Tick the Device menu entry of the saved choice ("auto" when it is not offered here)."""
        actions = self.window.menu_actions
        chosen = actions.get(f"device_{self.window.settings.value('device', 'auto', type=str)}")
        (chosen or actions["device_auto"]).setChecked(True)

    def update_status(self, *_args) -> None:
        p = self.predictor
        if p is not None:
            self.status_device.setText(f"device: {p.label}")  # "CPU (bf16)", "CPU (exact fp32)"
            synth = " (SYNTHETIC)" if meta_dict(p.model.meta).get("synthetic_data") else ""
            synth += "" if p.model.trust.trusted else " (NOT VERIFIED: see Model > About)"
            self.status_model.setText(f"model: {p.model.name}{synth}"
                                      + ("  — analysing…" if self.window.state.analysing else ""))
        else:
            self.status_device.setText("device: -")

    def load_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Load model", "", "Model files (*.safetensors *.pt)")
        if path:
            self.load_model(path)

    def load_model(self, path) -> bool:
        """Replace the model in use; a file that cannot be loaded leaves the current one in place."""
        from octviewer.model import Predictor

        device = self.predictor.choice if self.predictor else "auto"  # the same device and precision
        try:
            predictor = Predictor(str(path), device=device)
        except Exception as exc:  # ModelFileError and anything a tampered file provokes
            text = str(exc) if Path(path).name in str(exc) else f"{Path(path).name}: {exc}"
            QMessageBox.warning(self.window, "Cannot load model", as_literal(text))
            return False
        self.window.controller.set_predictor(predictor)
        self.update_status()
        return True

    def about_model(self) -> None:
        text = "No model loaded." if self.predictor is None else model_card_text(self.model_meta())
        self.window.dialog = text_dialog(self.window, "Model card", text)

    def model_meta(self) -> dict:
        """The metadata with the file's digest and signature (card, PDF): what names exactly this model."""
        return {**meta_dict(self.predictor.model.meta), **identity(self.predictor.model)} if self.predictor else {}

    def open_retrain(self) -> None:
        from .retrain_dialog import RetrainDialog

        like = self.predictor.model.meta if self.predictor else None
        if self.retrain_dialog is None:
            self.retrain_dialog = RetrainDialog(self.window, like=like)
            self.retrain_dialog.model_ready.connect(self.load_model)
        else:
            self.retrain_dialog.follow_model(like)  # the model in use may have changed since (A13-4)
        self.retrain_dialog.show()
        self.retrain_dialog.raise_()
