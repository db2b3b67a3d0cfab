"""Who gets the arrow keys: the B-scan shortcuts (Up, Down, PgUp, ...) are window-wide, so without
this they took the keys from the Study tree, whose selection could not then be moved from the
keyboard. A shortcut override no child accepted reaches the window; accepting it there, when the
focus is in a widget that navigates with the key, hands the key press to that widget."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractItemView, QAbstractSpinBox, QApplication, QComboBox

#: keys the B-scan shortcuts use that lists, tables, spin boxes and combo boxes need themselves
NAVIGATION_KEYS = frozenset({Qt.Key_Up, Qt.Key_Down, Qt.Key_PageUp, Qt.Key_PageDown, Qt.Key_Home, Qt.Key_End})
NAVIGATING_WIDGETS = (QAbstractItemView, QAbstractSpinBox, QComboBox)


class NavigationKeys(QObject):
    """Installed on the window (``window.installEventFilter``)."""

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if (event.type() == QEvent.ShortcutOverride and event.key() in NAVIGATION_KEYS
                and isinstance(QApplication.focusWidget(), NAVIGATING_WIDGETS)):
            event.accept()
            return True
        return False
