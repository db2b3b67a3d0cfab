import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Under pytest-xdist (README: ``-n 2``) each worker computes with one thread: two workers of two torch
# threads each on two cores spun against each other (a tiny fit took 151 s instead of 35 s). Set before
# torch or NumPy is imported here; the processes the tests start inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")

import numpy as np  # noqa: E402
import pytest

# The viewer keeps QSettings under $XDG_CONFIG_HOME: give the tests (and the processes they start)
# their own, so a test run never changes the user's recent files, CAM opacity or device.
SESSION_CONFIG = os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="octviewer-test-config-")
# The results store (octviewer.pipeline.store) likewise: a test run never reads or fills the user's.
SESSION_DATA = os.environ["OCTVIEWER_DATA"] = tempfile.mkdtemp(prefix="octviewer-test-data-")
_SESSION_FOLDERS_MADE_BY = os.getpid()


def pytest_unconfigure(config):
    """The two session folders go when the run ends (1,484 pairs were once left in /tmp). Only the process that
    made them removes them: the processes a test starts inherit the two variables (and, forked, this module),
    and must not take the folders away from the run still using them."""
    if os.getpid() == _SESSION_FOLDERS_MADE_BY:
        for folder in (SESSION_CONFIG, SESSION_DATA):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _qt_garbage_dies_on_the_main_thread(request):
    """A finished test's Qt objects are collected here, on the GUI thread. Left to a later garbage
    collection, they can die on a worker thread (a manifest check still reading volumes), where a
    QObject destructor deadlocked with the GUI thread: Qt's connection lock against the GIL (a CI
    run hung in tests/test_gui_retrain.py that way).

    Only after tests marked ``gui`` (qtbot or qapp: no QObject is made without them): a full
    collection scans every object of the session (torch, Qt, NumPy: ~0.2 s of CPU each time), and
    after every test it was most of the fast tier's time."""
    yield
    if request.node.get_closest_marker("gui") is not None:
        gc.collect()
        _freeze_the_long_lived()


_MODULES_FROZEN = [0]


def _freeze_the_long_lived() -> None:
    """Just collected: what is left is, for the most part, what lives as long as the run (torch, Qt, NumPy,
    pyqtgraph, the viewer: ~400,000 objects once a window was made). Frozen (``gc.freeze``), it is no longer walked
    by each full collection: the one above after every GUI test, and the viewer's own collector timer
    (``octviewer.gui.background``), each ~0.2 s of CPU before. Done again only when the imports grew by 50 modules
    (a test that brought in the trainer, SciPy...), so a test's few survivors are rarely kept for good; objects made
    later are collected as before."""
    if len(sys.modules) >= _MODULES_FROZEN[0] + 50:
        gc.freeze()
        _MODULES_FROZEN[0] = len(sys.modules)


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The shared real/third-party sample files; tests that need them skip when unset."""
    root = os.environ.get("OCTVIEWER_SAMPLES")
    if not root or not Path(root).is_dir():
        pytest.skip("OCTVIEWER_SAMPLES is not set to the shared samples folder")
    return Path(root)


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    """A small synthetic cohort (tiny preset) written once per test session; returns its manifest."""
    from octviewer.synth import generate_cohort

    return generate_cohort(tmp_path_factory.mktemp("cohort"), patients=12, preset="tiny", seed=3)


def demo_study(folder, patients: int, visits: int, seed: int, preset: str = "tiny", fields: bool = True) -> Path:
    """The demo study (``write_demo_study``) under ``folder``; ``fields=False``: without its measured fields (the
    ``perimetry`` folder and ``visual_fields.csv``), for a test that brings its own."""
    from octviewer.study.demo import write_demo_study

    root = write_demo_study(folder, patients=patients, visits=visits, preset=preset, seed=seed)
    return root if fields else without_fields(root)


def without_fields(root: Path) -> Path:
    """``root``, a demo study (or its copy), without its measured fields: the ``perimetry`` folder and
    ``visual_fields.csv`` removed."""
    shutil.rmtree(root / "perimetry", ignore_errors=True)
    (root / "visual_fields.csv").unlink(missing_ok=True)
    return root


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """One SYNTHETIC patient, three yearly visits, both eyes (no VF files: each test adds its own)."""
    return demo_study(tmp_path_factory.mktemp("demo") / "study", patients=1, visits=3, seed=5, fields=False)


@pytest.fixture(scope="module")
def fields_demo(tmp_path_factory) -> Path:
    """One SYNTHETIC patient, two yearly visits, both eyes, a measured field (OPV DICOM) per eye and visit."""
    return demo_study(tmp_path_factory.mktemp("demo") / "study", patients=1, visits=2, seed=7)


@pytest.fixture
def small_volume():
    from octviewer.synth import random_eye, synth_scan

    rng = np.random.default_rng(0)
    return synth_scan(random_eye(rng, "OS", True), "tiny", seed=5, patient_id="PAT-SECRET").volume


@pytest.fixture
def window(qtbot, monkeypatch):
    """The main window on the bundled demo model (``open_window``); a test file that needs another model
    defines its own ``window``."""
    from octviewer.resources import DEMO_MODEL

    if not DEMO_MODEL.exists():
        pytest.skip("demo model not built")
    yield from open_window(qtbot, monkeypatch, DEMO_MODEL)


def open_study_folder(qtbot, w, monkeypatch, root):
    """File > Open study folder… on ``root`` (its dialog patched), as a user does; the Study panel once indexed."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(root))
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=60000):
        w.menu_actions["open_study_folder"].trigger()
    return w.study.panel


def structure_panel_texts(qtbot, w, monkeypatch, path) -> list[str]:
    """File > Open ``path`` (its dialog patched), once analysed and measured: every text the Structure panel draws
    when it paints its page (the sector wheel's centre, the Global line, ...)."""
    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring and w.state.structure is not None,
                    timeout=120000)
    drawn, real = [], QPainter.drawText

    def spy(painter, *args):
        drawn.append(next((a for a in args if isinstance(a, str)), ""))
        return real(painter, *args)
    monkeypatch.setattr(QPainter, "drawText", spy)
    w.structure_panel.grab()  # the panel paints its page
    monkeypatch.setattr(QPainter, "drawText", real)
    return drawn


_BUNDLED_MODELS: dict = {}


def _bundled_model(model_path, default_settings: bool):
    """The bundled demo model, read and checked once per session (``load_model``: ~1 s of a window's set-up on 2
    cores, for hundreds of windows) and shared as the viewer itself shares one: a ``LoadedModel`` is frozen and a
    Predictor works on its own copy of the network. None (load the file) for another model, or where the model's
    trust could read otherwise than on the first load: a test's own settings folder, trusted keys or signing."""
    from octviewer.model import load_model
    from octviewer.model.signing import SIGN_ENV
    from octviewer.resources import DEMO_MODEL

    path = Path(model_path).resolve()
    if (path != DEMO_MODEL.resolve() or not default_settings or os.environ.get("OCTVIEWER_TRUSTED_KEYS")
            or os.environ.get(SIGN_ENV)):
        return None
    stat = path.stat()
    key = (str(model_path), stat.st_mtime_ns, stat.st_size)
    if key not in _BUNDLED_MODELS:
        _BUNDLED_MODELS[key] = load_model(str(model_path), "cpu")
    return _BUNDLED_MODELS[key]


def open_window(qtbot, monkeypatch, model_path):
    """The main window on a model for GUI tests, as a generator for a fixture to yield from: message
    boxes recorded (``window.warnings``, ``window.infos``; questions answered No) and the quality
    gate switched off through its menu entry, as a user would, because these tests open tiny or
    made-up cubes the gate refuses (tests/test_wiring.py tests the gate itself)."""
    from PySide6.QtWidgets import QMessageBox

    from octviewer.gui.main_window import MainWindow
    from octviewer.model import Predictor

    default_settings = os.environ.get("XDG_CONFIG_HOME") == SESSION_CONFIG
    if default_settings:  # a test that chose its own folder keeps it
        # each test's window starts from the defaults: a CAM or map a test left switched on in the saved
        # settings turned the next test's toggles the other way, in whatever order a process ran them
        monkeypatch.setenv("XDG_CONFIG_HOME", tempfile.mkdtemp(dir=SESSION_CONFIG))
    warnings, infos = [], []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a[2]))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: infos.append(a[2]))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w = MainWindow(Predictor(_bundled_model(model_path, default_settings) or str(model_path), device="cpu"))
    w.warnings, w.infos = warnings, infos
    qtbot.addWidget(w)
    w.show()
    w.menu_actions["quality_gate"].trigger()
    assert not w.state.options.gate
    yield w
    w.tasks.shutdown()


# ---------------------------------------------------------------- test tiers
# Markers (registered in pyproject.toml): ``gui`` for tests that use qtbot (the window or a widget),
# ``samples`` for tests that need the real files under OCTVIEWER_SAMPLES, ``slow`` for tests that take
# more than a few seconds alone on 2 cores (a training run, a cohort, a whole-window walk-through, a
# kill-and-resume run). ``python -m pytest -m "not slow"`` is the fast tier for development; CI runs
# everything. The slow list is by measurement: OCTVIEWER_TEST_TIMES=times.csv writes each test's wall
# and CPU seconds (set-up included), which is what decides (CPU time, because the wall time of a shared
# machine says more about the neighbours than about the test).

#: Whole files, tests (file::name: every parameter) or single cases (file::name[id]) of the slow tier.
#: Chosen by measurement (OCTVIEWER_TEST_TIMES, on a shared 2-core machine): each test's unloaded time
#: estimated as max(CPU s, wall s / 4), the largest marked until the rest came to ~130 s; a second
#: measurement of the fast tier alone (fixture costs move to the next test) added the next largest.
#: A module fixture's cost lands on the first fast test that uses it, so a fixture used only by slow
#: tests costs the fast tier nothing (the 300-patient plan of test_synth_population, tiny_cohort).
#: Every test module keeps at least one fast test (its cheapest), except those whose own tests are
#: marked slow in the file (a GPU recipe, packaging, a cohort measurement), test_trainer_resume (training
#: runs) and test_predict_structure (its one test runs the predict command for ~10 s).
SLOW = {
    "test_demo.py::test_demo_command_screenshot",
    "test_demo.py::test_demo_model_separates_demo_eyes",
    "test_demo.py::test_demo_scans_are_small_and_synthetic",
    "test_demo.py::test_every_demo_eye_is_on_its_side_of_the_threshold_by_a_margin",
    "test_demo.py::test_screenshot_of_a_file_that_cannot_be_opened_fails_fast",
    "test_gui.py::test_a_circle_scan_exports_its_structure_without_a_network_result",
    "test_gui.py::test_a_cube_opened_after_a_wide_circle_scan_fills_the_view",
    "test_gui.py::test_a_failed_export_clears_the_last_exports_status",
    "test_gui.py::test_a_file_that_fails_to_open_leaves_recent_files",
    "test_gui.py::test_a_panel_is_added_in_one_call_with_a_view_menu_toggle",
    "test_gui.py::test_a_scan_that_cannot_be_shown_leaves_the_window_on_the_previous_one",
    "test_gui.py::test_a_window_collects_cyclic_garbage_on_the_gui_thread_only",
    "test_gui.py::test_an_identified_pdf_that_cannot_be_written_is_never_reported_saved",
    "test_gui.py::test_axial_stretch_fills_the_view",
    "test_gui.py::test_batches_are_drawn_with_the_models_own_cam_geometry",
    "test_gui.py::test_cam_key_toggles_bscan_and_enface",
    "test_gui.py::test_cancel_and_analyse_from_the_menu",
    "test_gui.py::test_circle_scan_after_glaucoma_eye_shows_no_previous_curve",
    "test_gui.py::test_contrast_keys_and_presets_are_remembered_per_device",
    "test_gui.py::test_corrupt_file_during_analysis_gets_a_dialog",
    "test_gui.py::test_csv_from_the_menu_has_a_volume_row_and_provenance",
    "test_gui.py::test_device_switch_during_analysis_never_moves_the_model_in_use",
    "test_gui.py::test_dropping_a_web_link_or_several_files",
    "test_gui.py::test_every_menu_action_runs_without_error",
    "test_gui.py::test_export_pdf_from_the_menu_and_ctrl_p",
    "test_gui.py::test_file_and_model_menus",
    "test_gui.py::test_help_menu_about_shortcuts_and_readable_model_card",
    "test_gui.py::test_loading_a_model_without_vf_outputs_clears_the_old_models_vf_rows",
    "test_gui.py::test_navigation_is_numbered_from_one_everywhere",
    "test_gui.py::test_open_folder_of_scan_files_and_maps_on_a_circle_scan_say_why",
    "test_gui.py::test_remaining_view_keys_and_menu_entries_do_what_they_say",
    "test_gui.py::test_report_is_rendered_from_the_state_and_anonymised",
    "test_gui.py::test_shared_samples_open",
    "test_gui.py::test_text_from_files_is_plain_text",
    "test_gui.py::test_the_bscan_label_stays_on_screen_when_zoomed_and_gets_its_probability",
    "test_gui.py::test_the_empty_window_draws_no_stray_items_and_empty_layers_are_not_named",
    "test_gui.py::test_the_settings_file_with_recent_paths_is_owner_only",
    "test_gui.py::test_the_viewer_collects_garbage_on_the_gui_thread_only",
    "test_gui_progressive.py::test_a_16_bit_scan_is_shown_when_complete_with_the_whole_volume_contrast",
    "test_gui_progressive.py::test_a_file_that_fails_to_open_while_decoding_leaves_the_scan_on_screen",
    "test_gui_progressive.py::test_closing_while_decoding_does_not_hang",
    "test_gui_progressive.py::test_first_bscan_is_shown_before_the_volume_is_complete",
    "test_gui_progressive.py::test_opening_another_file_cancels_the_decoding",
    "test_gui_retrain.py::test_manifest_check_runs_in_a_worker_and_escapes_text",
    "test_gui_retrain.py::test_offline_imagenet_is_caught_before_starting",
    "test_gui_retrain.py::test_start_without_a_manifest_says_so_before_asking_anything",
    "test_io_fuzz.py::test_mutated_corpus_in_a_guarded_process",
    "test_io_hardening.py::test_decompression_bombs_refused_before_decoding[<lambda>1]",
    "test_layering.py::test_layer_does_not_import[octviewer.model-forbidden7]",
    "test_layering.py::test_layer_does_not_import[trainer-forbidden8]",
    "test_model.py::test_cancellation_stops_within_one_batch",
    "test_model.py::test_first_bscan_and_streaming",
    "test_model.py::test_first_does_not_change_results",
    "test_model.py::test_model_file_round_trip",
    "test_model.py::test_predict_cli",
    "test_model.py::test_resnet2d_cam_matches_gradcam_library",
    "test_model.py::test_semt_cam_decomposes_logit",
    "test_model.py::test_shapes_and_ranges[resnet2d]",
    "test_model.py::test_shapes_and_ranges[resnet3d]",
    "test_model.py::test_shapes_and_ranges[semt]",
    "test_model_cam.py::test_cell_centres_match_receptive_field_probe",
    "test_model_cam.py::test_enface_cam_is_depth_mean_of_mapped_cams",
    "test_model_cli.py::test_cam_out_writes_enface_maps",
    "test_model_cli.py::test_csv_cells_are_formula_safe_and_numbers_stay_numbers",
    "test_model_cli.py::test_messages_keep_their_words_and_name_their_file",
    "test_model_cli.py::test_model_giving_nan_is_an_error_row_not_normal",
    "test_model_cli.py::test_paths_only_when_asked",
    "test_model_cli.py::test_pseudonymised_by_default_with_key_file",
    "test_model_files.py::test_fuzz_metadata_fields",
    "test_model_files.py::test_fuzz_model_file_bytes",
    "test_model_files.py::test_nan_output_raises_never_a_decision",
    "test_model_files.py::test_predictor_applies_vf_scaling_calibration_and_aggregation",
    "test_model_files.py::test_v1_file_loads_with_v1_defaults",
    "test_model_heads.py::test_heads_train_and_skip_the_cam_in_training",
    "test_model_integrity.py::test_a_classifier_bias_that_silences_the_scan_gives_no_verdict",
    "test_model_integrity.py::test_a_file_changed_after_it_was_written_is_refused",
    "test_model_integrity.py::test_every_model_has_a_digest_of_weights_and_metadata",
    "test_model_integrity.py::test_the_bundled_demo_model_is_plausible",
    "test_model_integrity.py::test_the_demo_model_is_not_saturated_on_the_demo_scans_or_on_noise",
    "test_model_integrity.py::test_the_readers_of_evaluation_never_fail_on_a_loaded_model",
    "test_model_integrity.py::test_vf_inside_the_range_carries_no_clipping_note",
    "test_model_integrity.py::test_vf_outputs_are_clipped_to_the_physical_range_and_flagged",
    "test_model_predictor.py::test_building_a_predictor_leaves_the_given_module_untouched",
    "test_model_predictor.py::test_two_predictors_on_one_model_are_independent",
    "test_model_predictor.py::test_vf_estimates_no_better_than_the_class_mean_carry_a_note",
    "test_model_signing.py::test_a_model_signed_here_is_trusted_here",
    "test_model_signing.py::test_a_signed_file_changed_afterwards_is_refused",
    "test_model_signing.py::test_attaching_an_evaluation_to_a_signed_file_says_the_signature_is_gone",
    "test_model_signing.py::test_signing_in_place_keeps_weights_and_metadata_to_the_bit",
    "test_model_signing.py::test_the_bundled_demo_model_is_signed_by_the_project_key",
    "test_model_signing.py::test_unsigned_and_unknown_models_carry_a_warning_until_the_key_is_pinned",
    "test_model_trust_gui.py::test_an_unsigned_model_is_flagged_everywhere_its_results_go",
    "test_pacs.py::test_an_archive_that_stops_answering_mid_search_times_out",
    "test_pacs.py::test_find_by_id_name_date_and_modality",
    "test_pacs.py::test_logs_carry_no_patient_identifiers",
    "test_pacs.py::test_results_go_back_only_for_dicom_scans_and_real_pdfs",
    "test_pacs.py::test_retrieve_with_c_move",
    "test_pacs.py::test_server_down_keeps_the_results_and_retry_sends_them",
    "test_pacs.py::test_the_pacs_layer_imports_neither_qt_nor_torch",
    "test_pacs_gui.py::test_a_corrupt_instance_is_named_and_the_window_keeps_running",
    "test_pacs_gui.py::test_a_whole_study_opens_in_the_study_browser",
    "test_pacs_gui.py::test_open_from_pacs_analyse_and_send_results",
    "test_pacs_gui.py::test_preferences_test_connection_and_save",
    "test_parallel.py::test_a_local_two_worker_dask_cluster_gives_the_single_process_csv",
    "test_parallel.py::test_an_unreachable_cluster_is_one_line_not_a_traceback",
    "test_parallel.py::test_scan_processes_give_the_single_process_csv",
    "test_pipeline.py::test_gate_then_network_then_measurement",
    "test_pipeline.py::test_real_predictor_on_a_real_gate",
    "test_pipeline_batch.py::test_existing_key_file_is_made_owner_only[predict]",
    "test_pipeline_batch.py::test_measure_expands_folders_as_predict_does",
    "test_pipeline_batch.py::test_resume_refuses_rows_of_another_model_or_other_settings",
    "test_pipeline_batch.py::test_resume_after_sigkill_gives_the_same_csv",
    "test_pipeline_batch.py::test_resume_refuses_another_commands_csv",
    "test_pipeline_batch.py::test_unwritable_out_is_one_line_and_its_own_exit_code[folder-measure]",
    "test_pipeline_batch.py::test_unwritable_out_is_one_line_and_its_own_exit_code[folder-predict]",
    "test_pipeline_batch.py::test_unwritable_out_is_one_line_and_its_own_exit_code[read-only-predict]",
    "test_precision.py::test_a_device_choice_carries_its_precision",
    "test_precision.py::test_bf16_keeps_the_cams",
    "test_precision.py::test_bf16_keeps_the_decisions_and_probabilities",
    "test_precision.py::test_predictor_precision",
    "test_precision_gui.py::test_bf16_cpu_says_so_and_exact_fp32_is_one_click_away",
    "test_predict_structure.py::test_structure_columns_and_quality_refusal",
    "test_public_datasets.py::test_harvard_import_and_fit",
    "test_public_datasets.py::test_zenodo_import_and_3d_fit",
    "test_store.py::test_a_result_round_trips_exactly",
    "test_structure.py::test_gate_passes_a_cirrus_cube_on_its_thinned_copy_and_measure_agrees",
    "test_structure.py::test_gate_refusal_is_confirmed_on_the_whole_cube",
    "test_structure.py::test_quality_flags_blinks_and_motion",
    "test_structure.py::test_synthetic_cubes_measured_near_truth",
    "test_study_gui.py::test_arrow_keys_move_the_study_tree_not_the_bscan",
    "test_study_index.py::test_manifest_and_folder_agree_on_a_generated_cohort",
    "test_synth.py::test_determinism_and_workers",
    "test_synth.py::test_manifest_matches_files",
    "test_synth.py::test_recorded_cup_is_the_drawn_surface_by_cirrus_rule",
    "test_synth_population.py::test_cup_to_disc_by_stage_as_on_cirrus",
    "test_synth_population.py::test_label_noise_near_the_boundary",
    "test_synth_population.py::test_normal_fields_with_cataract_stay_near_real_ones",
    "test_synth_population.py::test_progression_and_age",
    "test_synth_population.py::test_rnfl_md_correlation_in_the_aimed_band",
    "test_synth_population.py::test_rnfl_overlap",
    "test_synth_population.py::test_stage_mix_among_glaucoma",
    "test_synth_population.py::test_vf_missing_not_at_random",
    "test_synth_population.py::test_visual_field_of_normal_eyes",
    "test_trainer.py::test_bad_manifest_cli_exit",
    "test_trainer.py::test_evaluate_prints_a_summary_and_attaches_it_to_the_model",
    "test_trainer.py::test_fit_semt_end_to_end",
    "test_trainer.py::test_manifest_problems_reported_with_rows",
    "test_trainer.py::test_no_vf_semt_falls_back",
    "test_trainer.py::test_patient_level_stratified_deterministic_splits",
    "test_trainer.py::test_recalibrate_refits_maps_and_keeps_weights",
    "test_trainer.py::test_predictor_reproduces_reported_probabilities",
    "test_trainer.py::test_resume_into_another_configuration_is_refused",
    "test_trainer.py::test_sigkill_then_resume_matches_uninterrupted",
    "test_trainer.py::test_sigterm_leaves_resumable_checkpoint",
    "test_trainer.py::test_torchrun_two_cpu_ranks",
    "test_trainer.py::test_yaml_config_is_read",
    "test_trainer_manifest.py::test_large_manifest_is_fast_with_bounded_output",
    "test_trainer_manifest.py::test_retrain_dialog_validation_opens_every_volume",
    "test_trainer_manifest.py::test_validate_and_evaluate_name_an_unreadable_volume",
    "test_trainer_recipe.py::test_calibration_and_v2_fields_stored_and_applied",
    "test_trainer_recipe.py::test_fair_initialisation_rule",
    "test_trainer_recipe.py::test_fine_tune_starts_from_a_model_file_and_keeps_its_vf_scaling",
    "test_trainer_recipe.py::test_outputs_carry_pseudonymous_keys_not_paths",
    "test_trainer_recipe.py::test_part_training_set_uses_vf_labelled_volumes_only",
    "test_trainer_resume.py",
    "test_wiring.py::test_a_newer_scan_drops_the_older_structure_result",
    "test_wiring.py::test_closing_the_window_while_indexing_is_stuck_neither_hangs_nor_aborts",
    "test_wiring.py::test_failed_gate_refuses_the_scan",
    "test_wiring.py::test_forgetting_the_remembered_results_asks_first",
    "test_wiring.py::test_full_measurement_refusing_a_passed_scan_withdraws_its_result",
    "test_wiring.py::test_network_starts_only_once_the_gate_has_passed",
    "test_wiring.py::test_noise_heyex_volume_is_refused_with_a_reason",
    "test_wiring.py::test_noise_scan_is_refused_without_running_the_network",
    "test_wiring.py::test_ou_view_trend_and_ou_report_from_the_panel",
    "test_wiring.py::test_result_does_not_wait_for_the_whole_measurement",
    "test_wiring.py::test_structure_panel_and_lines_for_a_spectralis_circle",
    "test_wiring.py::test_study_manifest_from_the_menu_with_measured_vf",
    "test_wiring.py::test_study_menu_tree_scan_measured_vf_and_pdf_with_structure",
    "test_wiring.py::test_switching_scans_while_the_gate_judges_analyses_only_the_new_one",
    "test_wiring.py::test_the_scan_on_screen_is_never_analysed_again",
    "test_wiring.py::test_the_study_views_honour_the_quality_check_switch",
    "test_wiring.py::test_whole_measurement_waits_for_the_network",
}


def _slow(nodeid: str) -> bool:
    path, _, name = nodeid.partition("::")
    file = path.rsplit("/", 1)[-1]
    return file in SLOW or f"{file}::{name}" in SLOW or f"{file}::{name.split('[', 1)[0]}" in SLOW


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "qtbot" in fixtures or "qapp" in fixtures:
            item.add_marker(pytest.mark.gui)
        if "samples_dir" in fixtures:
            item.add_marker(pytest.mark.samples)
        if _slow(item.nodeid):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    target = os.environ.get("OCTVIEWER_TEST_TIMES")
    if not target:
        yield
        return
    import time

    wall, cpu = time.perf_counter(), time.process_time()
    yield
    with open(target, "a") as f:
        f.write(f"{item.nodeid},{time.perf_counter() - wall:.2f},{time.process_time() - cpu:.2f}\n")


@pytest.fixture
def held_analysis(monkeypatch):
    """Every analysis (the window's, the OU view's) waits, cancellably, until ``release`` is set: an analysis that
    is running, for tests of what opening or closing does to it."""
    import threading

    import octviewer.pipeline as pipeline

    real, release = pipeline.analyse_scan, threading.Event()

    def held(*args, cancel=None, **kwargs):
        while not release.wait(0.02):
            if cancel is not None and cancel.is_set():
                from octviewer.core import Cancelled

                raise Cancelled()
        return real(*args, cancel=cancel, **kwargs)
    monkeypatch.setattr(pipeline, "analyse_scan", held)
    yield release
    release.set()
