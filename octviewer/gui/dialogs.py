"""Small dialogs and the text rules every message of the window follows."""

from __future__ import annotations

import html

from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


def ask(parent, title: str, text: str) -> bool:
    """A Yes/No question whose default (Enter) is No. Every question the window asks would, on Yes,
    print identifiers or throw work away, so a reflexive Enter must do neither."""
    buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    return QMessageBox.question(parent, title, text, buttons, QMessageBox.StandardButton.No) == QMessageBox.Yes


def ask_or_cancel(parent, title: str, text: str) -> bool | None:
    """``ask`` with a Cancel button: True for Yes, False for No, None for Cancel, Esc or closing the question.
    For a question on the way to something the user may still call off (an export's "Patient identifier"):
    with Yes/No alone Esc answered No and went on to the save dialog (seventh walk-through). Enter is No."""
    buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No | QMessageBox.StandardButton.Cancel
    answer = QMessageBox.question(parent, title, text, buttons, QMessageBox.StandardButton.No)
    return {QMessageBox.StandardButton.Yes: True, QMessageBox.StandardButton.No: False}.get(answer)


def text_dialog(parent, title: str, text: str) -> QDialog:
    """A non-modal window of plain, selectable, scrollable text (never cut off, never markup)."""
    dialog = QDialog(parent)
    dialog.setWindowTitle(title)
    dialog.resize(560, 480)
    edit = QPlainTextEdit(text)
    edit.setReadOnly(True)
    edit.setObjectName("text")
    close = QPushButton("Close")
    close.clicked.connect(dialog.close)
    layout = QVBoxLayout(dialog)
    layout.addWidget(edit)
    layout.addWidget(close)
    dialog.show()
    return dialog


def as_literal(text: str) -> str:
    """Message-box text shown exactly as written: QMessageBox guesses rich text from the content,
    so text that may come from a file (a reader's error quoting a header) is escaped markup. Tooltips
    guess the same way (a file name in a tooltip was markup): "" stays "" (no empty tooltip)."""
    if not text:
        return ""
    return "<p>" + html.escape(text).replace("\n", "<br>") + "</p>"


def qimage(rgb) -> QImage:
    return QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0], QImage.Format_RGB888).copy()


def path_row(edit: QLineEdit, pick) -> QWidget:
    """A path field with its Browse… button (``pick`` asks for the path)."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit)
    browse = QPushButton("Browse…")
    browse.clicked.connect(pick)
    layout.addWidget(browse)
    return row
