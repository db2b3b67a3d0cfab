"""Training, evaluation and export of the SEMT network and its Table 1 variants (torch, no Qt)."""
