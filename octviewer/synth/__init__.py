"""The synthetic optic-disc cohort: engineering data for the demo, tests and benchmarks.

anatomy (one eye's optic nerve head), vessels (its own vessel tree), render (image formation and
artefacts), disease (population, latent severity, visual field, reference standard), cohort
(patients, visits, manifest and truth files), demo (the bundled scans). See docs/cohort.md.
"""

from .anatomy import PRESETS, EyeAnatomy, sector_rnfl_um
from .cohort import (
    GENERATOR_VERSION,
    MANIFEST_COLUMNS,
    TRUTH_COLUMNS,
    generate_cohort,
    random_acquisition,
    random_eye,
    synth_scan,
)
from .disease import visual_field
from .render import BOUNDARIES, Acquisition, render_volume

__all__ = ["BOUNDARIES", "GENERATOR_VERSION", "MANIFEST_COLUMNS", "PRESETS", "TRUTH_COLUMNS", "Acquisition",
           "EyeAnatomy", "generate_cohort", "random_acquisition", "random_eye", "render_volume", "sector_rnfl_um",
           "synth_scan", "visual_field"]
