"""The desktop viewer: the only package that imports PySide6 and pyqtgraph."""
