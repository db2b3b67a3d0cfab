"""The clinic's archive in the window: File > Open from PACS…, File > Send results to PACS,
File > PACS settings…. The work (``octviewer.pacs``) runs off the GUI thread, with progress and Cancel."""

from __future__ import annotations


def pacs_of(window):
    """The window's PACS actions, made on first use (the menus call this)."""
    actions = getattr(window, "_pacs_actions", None)
    if actions is None:
        from .actions import PacsActions

        actions = window._pacs_actions = PacsActions(window)
    return actions
