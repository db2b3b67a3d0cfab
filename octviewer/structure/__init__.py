"""Structure analysis: layer segmentation, peripapillary RNFL, normative comparison, disc measures.

numpy/scipy/OpenCV only (no Qt, no torch), so the viewer's workers, ``octviewer-measure`` and
``octviewer-predict`` on a GPU server all run the same code.
"""
