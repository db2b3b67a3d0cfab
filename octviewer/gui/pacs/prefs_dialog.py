"""File > PACS settings…: the archive (AE title, host, port), this workstation (AE title, port for
C-MOVE), TLS and the timeout; "Test connection" sends a C-ECHO in the background. Saved owner-only."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from ..dialogs import path_row
from .work import Failure, PacsWork

METHODS = {"get": "C-GET (one connection)", "move": "C-MOVE (the archive sends to this workstation's port)"}


class PacsPreferencesDialog(QDialog):
    def __init__(self, parent, path=None):
        from octviewer.pacs import PacsConfigError, load_settings

        super().__init__(parent)
        self.setWindowTitle("PACS settings")
        self.path = path
        self.saved = None
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.PlainText)
        try:
            current = load_settings(path)
        except PacsConfigError as exc:
            from octviewer.pacs import PacsSettings

            current = PacsSettings()
            self.status.setText(f"{exc}; showing the defaults.")
        self.fields = {name: QLineEdit(str(getattr(current, name))) for name in (
            "archive_ae", "archive_host", "archive_port", "local_ae", "local_port", "tls_ca_file", "tls_cert_file",
            "tls_key_file", "timeout_s")}
        self.tls = QCheckBox("Use TLS (DICOM over TLS)")
        self.tls.setChecked(current.tls)
        self.method = QComboBox()
        for key, words in METHODS.items():
            self.method.addItem(words, key)
        self.method.setCurrentIndex(list(METHODS).index(current.retrieve))
        form = QFormLayout()
        labels = {"archive_ae": "Archive AE title", "archive_host": "Archive host", "archive_port": "Archive port",
                  "local_ae": "This workstation's AE title", "local_port": "This workstation's port (C-MOVE)",
                  "tls_ca_file": "Archive CA certificate (PEM)", "tls_cert_file": "This workstation's certificate",
                  "tls_key_file": "This workstation's key", "timeout_s": "Timeout (s)"}
        for name, edit in self.fields.items():
            if name == "tls_ca_file":
                form.addRow(self.tls)
            if name.startswith("tls_"):
                form.addRow(labels[name], path_row(edit, lambda _=False, e=edit, t=labels[name]: self._pick(e, t)))
            else:
                form.addRow(labels[name], edit)
        form.addRow("Retrieve with", self.method)
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.test_connection)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self.work = PacsWork(self)
        self.work.finished.connect(self._tested)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.test_button)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

    def settings(self):
        """The settings as filled in (PacsConfigError names the field that is wrong)."""
        from octviewer.pacs import PacsConfigError, PacsSettings

        values = {name: edit.text().strip() for name, edit in self.fields.items()}
        for name in ("archive_port", "local_port"):
            if not values[name].isdigit():
                raise PacsConfigError(f"{name.replace('_', ' ')} must be a number, got {values[name]!r}")
        return PacsSettings(**values, tls=self.tls.isChecked(), retrieve=self.method.currentData())

    def _pick(self, edit: QLineEdit, title: str) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, title, edit.text(), "PEM (*.pem *.crt *.key);;All files (*)")
        if path:
            edit.setText(path)

    def test_connection(self) -> None:
        from octviewer.pacs import PacsConfigError, echo

        try:
            settings = self.settings()
        except PacsConfigError as exc:
            self.status.setText(str(exc))
            return
        self.status.setText("Testing…")
        self.test_button.setEnabled(False)
        self.work.start(lambda progress, cancel: (echo(settings), settings.describe())[1], "pacs-echo")

    def _tested(self, result) -> None:
        self.test_button.setEnabled(True)
        self.status.setText(result.message if isinstance(result, Failure) else f"The archive answered: {result}")

    def save(self) -> None:
        from octviewer.pacs import PacsConfigError, save_settings

        try:
            settings = self.settings()
            save_settings(settings, self.path)
        except (PacsConfigError, OSError) as exc:
            self.status.setText(f"Not saved: {exc}")
            return
        self.saved = settings
        self.accept()
