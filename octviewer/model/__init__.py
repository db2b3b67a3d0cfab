"""Networks, preprocessing, model files and the Predictor (torch, no Qt: runs on a GPU server).

Names are imported lazily (PEP 562) so that ``octviewer.model.cam`` and ``octviewer.model.meta``
stay importable without torch: the viewer's CAM drawing and a metadata check need only NumPy.
"""

from ..core.lazy import lazy_getattr

_NAMES = {
    "CAM_COLORMAP": "cam", "CAM_LIMIT": "cam", "CAM_LUT": "cam", "cam_rgb": "cam", "cam_to_bscan": "cam",
    "enface_cam": "cam",
    "ModelFileError": "meta", "ModelMeta": "meta", "default_meta": "meta", "VfScale": "meta",
    "Calibration": "meta", "Aggregation": "meta",
    "LoadedModel": "model_file", "default_metadata": "meta", "load_model": "model_file",
    "save_model": "model_file",
    "ARCHITECTURES": "networks", "VARIANTS": "networks", "InitError": "networks", "build_network": "networks",
    "is_3d": "networks",
    "Cancelled": "predictor", "InvalidOutput": "predictor", "Predictor": "predictor",
    "ScanNotSupported": "predictor", "scale_vf": "predictor",
    "select_device": "predictor", "unscale_vf": "predictor",
    "Preprocess": "preprocess",
}

__all__ = sorted(_NAMES)


__getattr__ = lazy_getattr(__name__, _NAMES, globals())
