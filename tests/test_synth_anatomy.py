"""Synthetic cases built on the MNI template: contrasts in the order real scans have, gliomas that
behave like gliomas, labels in the edition's set, the same bytes for the same seed."""

from __future__ import annotations

import hashlib

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from gliomask.data.synth import synthesize
from gliomask.data.synth_anatomy import synth_anatomy_case
from gliomask.errors import GliomaskError
from gliomask.labels import ENHANCING, NECROTIC, OEDEMA

CSF, GM, WM = 1, 2, 3


@pytest.fixture(scope="module")
def cases():
    """Three cases with their pure-tissue maps (seed 5): at least one has an enhancing tumour."""
    return [synth_anatomy_case(i, 5, with_tissue=True) for i in (1, 2, 3)]


def _median(image, mask):
    return float(np.median(image[mask]))


def test_every_modality_orders_tissues_as_real_scans_do(cases):
    for images, seg, tissue in cases:
        healthy = seg == 0
        m = {mod: {t: _median(images[mod], (tissue == t) & healthy) for t in (CSF, GM, WM)} for mod in images}
        assert m["t1"][WM] > m["t1"][GM] > m["t1"][CSF]
        assert m["t1ce"][WM] > m["t1ce"][GM] > m["t1ce"][CSF]
        assert m["t2"][CSF] > m["t2"][GM] > m["t2"][WM]
        assert m["flair"][GM] > m["flair"][WM] > m["flair"][CSF]  # CSF suppressed
        assert m["flair"][CSF] < 0.5 * m["flair"][WM]
        for t in (CSF, GM, WM):  # each tissue is a real part of the brain
            assert ((tissue == t) & healthy).sum() > 5_000


def test_brain_is_skull_stripped_and_differs_between_cases(cases):
    masks = []
    for images, seg, _ in cases:
        brain = images["t1"] != 0
        assert 1.0e6 < brain.sum() < 2.2e6  # 1.0-2.2 litres at 1 mm
        for mod in images:
            assert np.array_equal(images[mod] != 0, brain)  # background exactly 0 in every modality
            assert images[mod].dtype == np.int16
        assert not seg[~brain].any()
        masks.append(brain)
    a, b = masks[0], masks[1]
    overlap = 2 * (a & b).sum() / (a.sum() + b.sum())
    assert 0.8 < overlap < 0.985  # the same template, deformed differently per case


def test_tumours_have_glioma_contrasts_and_nested_regions(cases):
    enhancing_seen = False
    for images, seg, tissue in cases:
        if not (seg == OEDEMA).any():
            continue
        wm = (tissue == WM) & (seg == 0)
        assert _median(images["flair"], seg == OEDEMA) > 1.2 * _median(images["flair"], wm)
        assert _median(images["t2"], seg == OEDEMA) > 1.3 * _median(images["t2"], wm)
        core = (seg == NECROTIC) | (seg == ENHANCING)
        # the oedema surrounds the core: most of the core's outer surface borders oedema
        shell = ndi.binary_dilation(core) & ~core & (images["t1"] != 0)
        assert (seg[shell] == OEDEMA).mean() > 0.5
        # oedema spreads in white matter rather than cortex
        oedema_tissue = tissue[seg == OEDEMA]
        assert (oedema_tissue == WM).sum() > 3 * (oedema_tissue == GM).sum()
        if (seg == ENHANCING).any():
            enhancing_seen = True
            assert _median(images["t1ce"], seg == ENHANCING) > 1.2 * _median(images["t1ce"], wm)
            assert _median(images["t1ce"], seg == NECROTIC) < 0.7 * _median(images["t1ce"], seg == ENHANCING)
    assert enhancing_seen


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.nii.gz"))}


def test_same_seed_same_bytes_and_labels_per_edition(tmp_path):
    synthesize(tmp_path / "a", cases=2, seed=9, edition="2023")
    synthesize(tmp_path / "b", cases=2, seed=9, edition="2023")
    synthesize(tmp_path / "c", cases=1, seed=10, edition="2019")
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert len(a) == 10 and a == b
    for seg in (tmp_path / "a").rglob("*-seg.nii.gz"):
        assert set(np.unique(np.asarray(nib.load(seg).dataobj)).tolist()) <= {0, 1, 2, 3}
    for seg in (tmp_path / "c").rglob("*_seg.nii.gz"):
        assert set(np.unique(np.asarray(nib.load(seg).dataobj)).tolist()) <= {0, 1, 2, 4}


def test_the_template_ships_with_gliomask_and_its_absence_is_one_clear_error(tmp_path, monkeypatch):
    from gliomask.data import template

    assert template.template_folder() == template.TEMPLATE_FOLDER
    assert (template.TEMPLATE_FOLDER / "NOTICE").is_file()  # the template's notice travels with its files
    monkeypatch.setattr(template, "TEMPLATE_FOLDER", tmp_path / "nowhere")
    with pytest.raises(GliomaskError, match="MNI template files are missing"):
        synthesize(tmp_path / "out", cases=1)
    assert not (tmp_path / "out").exists()
    synthesize(tmp_path / "simple", cases=1, anatomy="simple")  # the geometric head needs no template
    assert len(list((tmp_path / "simple").rglob("*.nii.gz"))) == 5


def test_a_tumour_mix_changes_the_kinds_of_tumours_and_nothing_else():
    """No enhancing share: no case has ET; oedema barely wider than the core: less oedema for the same
    tumour; the brain itself (every other draw) is the same."""
    from gliomask.data.synth_tumour import TumourMix

    lgg = TumourMix(enhancing_fraction=0.0)
    compact = TumourMix(oedema_ratio=(1.05, 1.15))
    for index in (1, 2):
        images, seg = synth_anatomy_case(index, 5)
        _, seg_lgg = synth_anatomy_case(index, 5, mix=lgg)
        images_compact, seg_compact = synth_anatomy_case(index, 5, mix=compact)
        assert seg.any() and seg_lgg.any() and seg_compact.any()
        assert not (seg_lgg == ENHANCING).any()
        brain, brain_compact = images["t1"] != 0, images_compact["t1"] != 0
        assert 2 * (brain & brain_compact).sum() / (brain.sum() + brain_compact.sum()) > 0.99  # the same head
        oedema_share = (seg == OEDEMA).sum() / (seg > 0).sum()
        assert (seg_compact == OEDEMA).sum() / (seg_compact > 0).sum() < 0.6 * oedema_share


def test_a_tumour_mix_out_of_range_or_on_the_simple_head_is_one_clear_error(tmp_path, capsys):
    from conftest import refused
    from gliomask.data.synth_tumour import TumourMix

    for bad in ({"enhancing_fraction": 1.5}, {"core_radius_mm": (20.0, 10.0)}, {"oedema_ratio": (0.5, 2.0)}):
        with pytest.raises(GliomaskError):
            TumourMix(**bad)
    refused(capsys, ["synth", "--out", tmp_path / "s", "--cases", "1", "--anatomy", "simple", "--enhancing-fraction",
                     "0.5", "--quiet"], "--anatomy mni")
    refused(capsys, ["synth", "--out", tmp_path / "s", "--cases", "1", "--oedema-ratio", "2", "1", "--quiet"],
            "oedema ratio")
    assert not (tmp_path / "s").exists()
