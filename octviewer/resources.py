"""Where the bundled demo scans and demo model live (top-level ``resources/`` of the checkout)."""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEMO_MODEL = RESOURCES / "models" / "demo_semt.safetensors"
DEMO_SAMPLES = RESOURCES / "samples"
DEMO_SCAN = DEMO_SAMPLES / "demo_advanced_glaucoma_OD.dcm"  # what ``octviewer --demo`` opens

