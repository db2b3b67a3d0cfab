"""H74: a folder of B-scan images through File > Open folder… (the H65 walk-through's W13 and W32): label masks,
images of other scans and sizes refused with the files named; the en-face of a volume too thin to be one; EXIF
orientation read by one rule with TIFF's. Each test saves what it checked as a screenshot under $H74_GRABS."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from corpus import oct_like


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H74_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def _open_bscan_folder(qtbot, w, monkeypatch, folder: Path):
    """File > Open folder… on ``folder``, as a user does; until the scan is read whole or refused."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    w.menu_actions["open_folder"].trigger()
    qtbot.waitUntil(lambda: bool(w.warnings) or (w.state.volume is not None and w.state.complete), timeout=60000)


def _write_pngs(folder: Path, images, names) -> Path:
    import cv2

    folder.mkdir(exist_ok=True)
    for image, name in zip(images, names):
        assert cv2.imwrite(str(folder / name), image)
    return folder


def _mask(shape, levels: int = 9) -> np.ndarray:
    """A layer label mask: bands numbered 0..levels-1 from top to bottom."""
    return (np.arange(shape[0])[:, None] * levels // shape[0] * np.ones(shape[1], int)).astype(np.uint8)


# ---------------------------------------------------------------- W13: a folder that is not one scan's B-scans

@pytest.mark.gui
@pytest.mark.samples
def test_the_octseg_folder_of_images_and_masks_is_refused_naming_the_masks(qtbot, window, monkeypatch):
    """The walk-through's folder (two Cirrus B-scans of two eyes, each beside its label mask) opened as "volume
    scan, 4 B-scan(s)" with a mask as B-scan 2; now it is refused, the two masks named, and nothing is open."""
    samples = os.environ.get("OCTVIEWER_SAMPLES")
    folder = Path(samples or "/nonexistent") / "real_tracings"
    if not folder.is_dir():
        pytest.skip("real_tracings samples not present")
    w = window
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    _grab(w, "w13_octseg_refused")
    assert w.state.volume is None
    assert len(w.warnings) == 1
    message = w.warnings[0]
    assert "label masks" in message
    assert "OCTseg-Zeiss_test_mask_im0100.png" in message and "OCTseg-Zeiss_train_mask_im00001.png" in message


@pytest.mark.gui
def test_a_mask_among_b_scans_is_refused_by_its_grey_levels_whatever_its_name(qtbot, window, monkeypatch, tmp_path):
    """A label mask named like the B-scans (B3.png, 9 grey levels) is no B-scan: the folder is refused, naming it.
    It was read as B-scan 3 of the volume."""
    w = window
    bscans = list(oct_like((5, 64, 48)))
    bscans[2] = _mask((64, 48))
    folder = _write_pngs(tmp_path / "bscans", bscans, [f"B{i + 1}.png" for i in range(5)])
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert w.warnings and "B3.png" in w.warnings[0] and "9 grey levels" in w.warnings[0]
    assert "label mask" in w.warnings[0]


@pytest.mark.gui
def test_names_outside_one_numbered_series_are_refused_naming_them(qtbot, window, monkeypatch, tmp_path):
    """Images of two scans side by side (``test_img_1``, ``train_img_1``): said, with a name of each kind."""
    w = window
    folder = _write_pngs(tmp_path / "mixed", oct_like((4, 64, 48)),
                         ["test_img_1.png", "test_img_2.png", "train_img_1.png", "train_img_2.png"])
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert w.state.volume is None
    assert w.warnings and "do not form one numbered series" in w.warnings[0]
    assert "test_img_1.png" in w.warnings[0] and "train_img_1.png" in w.warnings[0]


@pytest.mark.gui
def test_a_b_scan_of_another_size_is_refused_naming_both_files(qtbot, window, monkeypatch, tmp_path):
    w = window
    folder = _write_pngs(tmp_path / "sizes", [*oct_like((3, 64, 48)), oct_like((1, 64, 40))[0]],
                         [f"B{i + 1}.png" for i in range(4)])
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    # width x height, as a user reads an image's size (walk-through H82, W17: NumPy's "(64, 40)")
    assert w.warnings and "B4.png: B-scan size 40 x 64 pixels (width x height)" in w.warnings[0]
    assert "differs from the first B-scan" in w.warnings[0]
    assert "48 x 64 pixels (width x height) (B1.png)" in w.warnings[0]


@pytest.mark.gui
def test_one_scans_numbered_b_scans_still_open(qtbot, window, monkeypatch, tmp_path):
    """The rules leave a plain folder of B-scans alone: B1..B20, and a blank B-scan (one grey level) among them."""
    w = window
    data = oct_like((20, 64, 48))
    data[7] = 0
    folder = _write_pngs(tmp_path / "cube", data, [f"B{i + 1}.png" for i in range(20)])
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert not w.warnings
    np.testing.assert_array_equal(w.state.volume.data, data)


# ---------------------------------------------------------------- W32: the en-face of a handful of B-scans

@pytest.mark.gui
def test_a_folder_of_four_b_scans_shows_a_message_in_the_en_face_area(qtbot, window, monkeypatch, tmp_path):
    """4 B-scans gave a 4-pixel strip with the S/T/N/I labels piled on it; now a plain message, and no labels,
    line or image. A 20-B-scan folder still shows its projection with the labels."""
    w = window
    folder = _write_pngs(tmp_path / "four", oct_like((4, 64, 48)), [f"B{i + 1}.png" for i in range(4)])
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert not w.warnings and w.state.volume.shape[0] == 4
    enface = w.enface
    _grab(enface, "w32_enface_four_bscans")
    message = getattr(enface, "message", None)
    assert message is not None and message.isVisible()
    assert "4 B-scans are too few" in message.textItem.toPlainText()
    assert enface.image.image is None
    assert not any(t.isVisible() for t in enface.orientation)
    x, _ = enface.line.getData()
    assert x is None or len(x) == 0

    cube = _write_pngs(tmp_path / "cube", oct_like((20, 64, 48)), [f"B{i + 1}.png" for i in range(20)])
    _open_bscan_folder(qtbot, w, monkeypatch, cube)
    qtbot.waitUntil(lambda: w.state.volume is not None and w.state.volume.shape[0] == 20, timeout=60000)
    _grab(enface, "w32_enface_twenty_bscans")
    assert not enface.message.isVisible() and enface.image.image is not None
    assert any(t.isVisible() for t in enface.orientation)


# ---------------------------------------------------------------- one Orientation rule for TIFF and folder images

def _with_orientation(folder: Path, images, names, turned: dict[str, int]) -> Path:
    """Images saved by Pillow (format from the suffix), those in ``turned`` with that EXIF Orientation."""
    from PIL import Image

    folder.mkdir()
    for image, name in zip(images, names):
        exif = Image.Exif()
        if name in turned:
            exif[274] = turned[name]
        Image.fromarray(image).save(folder / name, exif=exif.tobytes(), **({"quality": 95} if "jpg" in name else {}))
    return folder


@pytest.mark.gui
@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_a_folder_image_with_an_exif_orientation_is_refused_as_a_tiff_is(qtbot, window, monkeypatch, tmp_path,
                                                                          suffix):
    """B2 with EXIF Orientation 3 (turned 180 degrees) was turned by OpenCV and stacked upside down among the
    others, while a TIFF stack with Orientation 3 is refused. Now both are refused with one message."""
    from PySide6.QtWidgets import QFileDialog
    from test_attack6_io import _with_tag

    w = window
    names = [f"B{i + 1}.{suffix}" for i in range(4)]
    folder = _with_orientation(tmp_path / "turned", oct_like((4, 64, 48)), names, {f"B2.{suffix}": 3})
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert w.state.volume is None
    rule = "Orientation is 3: B-scans are read with Orientation 1 (row 0 at the top, column 0 at the left)"
    assert len(w.warnings) == 1 and f"B2.{suffix}: the image&#x27;s {rule}" in w.warnings[0]

    stack = tmp_path / "turned.tif"
    _with_tag(stack, 274, 3)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(stack), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: len(w.warnings) == 2, timeout=60000)
    assert f"turned.tif: the TIFF&#x27;s {rule}" in w.warnings[1]


@pytest.mark.gui
def test_a_folder_image_with_orientation_1_opens_as_stored(qtbot, window, monkeypatch, tmp_path):
    w = window
    data = oct_like((4, 64, 48))
    names = [f"B{i + 1}.png" for i in range(4)]
    folder = _with_orientation(tmp_path / "upright", data, names, {n: 1 for n in names})
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert not w.warnings
    np.testing.assert_array_equal(w.state.volume.data, data)


# ---------------------------------------------------------------- a folder volume's content digest

def _folder_cohort(root: Path, prefix: str) -> Path:
    """Four folder volumes (16 B-scans each) named after the patient, and their manifest."""
    root.mkdir()
    rows = ["path,patient_id,eye,label,visit"]
    for i in range(4):
        patient = f"{prefix}-{i:04d}"
        _write_pngs(root / patient, oct_like((16, 64, 48), seed=i), [f"{patient}_b{k:02d}.png" for k in range(16)])
        rows.append(f"{patient},{patient},OD,{'glaucoma' if i % 2 else 'normal'},1")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


def test_evaluate_refuses_a_models_training_folders_under_other_names(tmp_path, capsys):
    """A model trained on folders of B-scan images kept no digest of them (a folder's bytes could not be read as
    a file), so the same folders under other patient IDs and file names were "independent data" to
    ``evaluate --attach``. Now a folder volume has a content digest and they are refused as the DICOMs are."""
    from test_attack11_trainer import _model_trained_on

    from trainer.cli import main

    trained = _folder_cohort(tmp_path / "study1", "P")
    model = _model_trained_on(trained, tmp_path / "m.safetensors")
    before = model.read_bytes()
    again = _folder_cohort(tmp_path / "study2", "STUDY2")
    rc = main(["evaluate", "--model", str(model), "--data", str(again), "--split", "all", "--attach",
               "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "not independent" in err and "4 of its 4 volumes are scans the model was trained on" in err, err
    assert model.read_bytes() == before
