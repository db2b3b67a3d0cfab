"""Guards against a broken Qt binding: a long session must not exhaust Python's None.

PySide6 6.12.0 on Python 3.11 drops a reference to None on every call of a method returning
void, so the viewer aborted ("none_dealloc") after about 10,000 such calls, i.e. minutes of
scrolling. pyproject.toml excludes it; this test fails if a future binding does the same.
"""

import sys

import pytest


def test_void_calls_keep_none_alive():
    QtCore = pytest.importorskip("PySide6.QtCore")
    rect = QtCore.QRectF()
    before = sys.getrefcount(None)
    for _ in range(2000):
        rect.setBottom(1.0)
    assert abs(sys.getrefcount(None) - before) < 100
