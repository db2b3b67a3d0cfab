"""The scan pipeline: what happens to a scan (quality gate, network, structure measurement), decided
once in ``analyse_scan`` and remembered in the results store (``octviewer.pipeline.store``).

Qt-free; torch is imported only by the predictor a caller passes in. Sits above structure and
model, below the study views, the trainer and the GUI.
"""

from .scan import ScanOptions, ScanResult, analyse_scan, refusal_text

__all__ = ["ScanOptions", "ScanResult", "analyse_scan", "refusal_text"]
