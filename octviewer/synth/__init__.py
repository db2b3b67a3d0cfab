"""The synthetic optic-disc cohort: engineering data for the demo, tests and benchmarks."""

from .anatomy import PRESETS, EyeAnatomy, render_volume
from .cohort import MANIFEST_COLUMNS, generate_cohort, random_eye, synth_scan, visual_field

__all__ = ["MANIFEST_COLUMNS", "PRESETS", "EyeAnatomy", "generate_cohort", "random_eye", "render_volume",
           "synth_scan", "visual_field"]
