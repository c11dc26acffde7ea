"""Defaults that follow the machine and the data: threads, devices under torchrun, patient folds."""

from __future__ import annotations

import os

import torch

from gliomask.models.factory import resolve_device
from gliomask.utils import default_threads, default_workers, usable_cpus


def test_usable_cpus_follow_affinity_and_cgroup_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert usable_cpus(tmp_path) == 4  # no cgroup files: the affinity mask
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(tmp_path) == 4  # unlimited quota
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert usable_cpus(tmp_path) == 2  # 1.5 CPUs of quota: two threads, not four
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cpus(tmp_path) == 1  # cgroup v1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert usable_cpus(tmp_path / "absent") == 1  # a job pinned to one core
    assert default_workers() == 1


def test_default_threads_leave_an_explicit_omp_setting_alone(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() is None
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads() == usable_cpus()


def test_auto_device_under_torchrun_is_the_local_rank(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    if torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cuda", 1 % torch.cuda.device_count())
    else:
        assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.delenv("LOCAL_RANK")
    assert resolve_device("cpu") == torch.device("cpu")


def test_folds_keep_every_timepoint_of_a_patient_together():
    from gliomask.data.folds import make_folds
    from gliomask.io.brats import patient_of

    assert patient_of("BraTS-GLI-00123-001") == "BraTS-GLI-00123"
    assert patient_of("BraTS19_CBICA_AAB_1") == "BraTS19_CBICA_AAB_1"
    ids = [f"BraTS-GLI-{p:05d}-{t:03d}" for p in range(8) for t in range(1 + p % 3)]
    folds = make_folds(ids, [None] * len(ids), 4, seed=0)
    assert sorted(c for f in folds for c in f) == sorted(ids)
    for fold in folds:
        for cid in fold:
            others = [f for f in folds if f is not fold]
            assert not any(patient_of(o) == patient_of(cid) for f in others for o in f)
    single = [f"case{i}" for i in range(6)]  # one case per patient: folds as before, cases dealt round-robin
    assert sorted(len(f) for f in make_folds(single, [None] * 6, 3, seed=1)) == [2, 2, 2]


def test_a_manifest_patient_column_keeps_a_patients_cases_in_one_fold(tmp_path):
    """Two scans of one patient under unrelated ids (a manifest says whose they are): one fold, for every seed."""
    from conftest import write_small_case
    from gliomask.data.prepare import PrepareSettings, prepare

    names = ["t1", "t1ce", "t2", "flair", "seg"]
    rows = ["case,patient," + ",".join(names)]
    for k in range(6):
        folder = write_small_case(tmp_path / "data", f"scan{k}", seed=k)
        patient = "P_A" if k in (0, 3) else f"P_{k}"  # scan0 and scan3: baseline and follow-up of one patient
        rows.append(f"scan{k},{patient}," + ",".join(str(folder / f"scan{k}_{n}.nii.gz") for n in names))
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    for seed in range(4):
        meta = prepare(tmp_path / "m.csv", tmp_path / f"prep{seed}", PrepareSettings(folds=5, seed=seed), progress=False)
        (fold,) = [f for f in meta["folds"] if "scan0" in f]
        assert "scan3" in fold and len(meta["folds"]) == 5, meta["folds"]
        assert {c["case"]: c["patient"] for c in meta["cases"]}["scan3"] == "P_A"
