"""Interim stand-in for octviewer.model.cam (arriving from the model branch); removed once it lands."""

import cv2
import numpy as np

CAM_LIMIT = 3.0
CAM_COLORMAP = "RdBu_r"


def cam_to_bscan(cam_cells, bscan_shape, input_size):
    return cv2.resize(np.asarray(cam_cells, np.float32), (bscan_shape[1], bscan_shape[0]),
                      interpolation=cv2.INTER_LINEAR)


def enface_cam(prediction, volume):
    rows = np.asarray(prediction.cam, np.float32).mean(axis=1)
    return cv2.resize(rows, (volume.shape[2], volume.n_bscans), interpolation=cv2.INTER_LINEAR)
