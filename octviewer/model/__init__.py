"""Networks, preprocessing, model files and the Predictor (torch, no Qt: runs on a GPU server)."""

from .model_file import LoadedModel, ModelFileError, default_metadata, load_model, save_model
from .networks import ARCHITECTURES, InitError, build_network, is_3d
from .predictor import Cancelled, Predictor, ScanNotSupported, scale_vf, select_device, unscale_vf
from .preprocess import Preprocess

__all__ = ["ARCHITECTURES", "Cancelled", "InitError", "LoadedModel", "ModelFileError", "Predictor", "Preprocess",
           "ScanNotSupported", "build_network", "default_metadata", "is_3d", "load_model", "save_model",
           "scale_vf", "select_device", "unscale_vf"]
