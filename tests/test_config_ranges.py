"""Values a type check lets through but no run can use are refused with one line, before anything is written."""

from __future__ import annotations

import pytest

from gliomask.config import load_config
from gliomask.errors import GliomaskError


@pytest.mark.parametrize("override,needle", [
    ("train.lr=-0.1", "train.lr"), ("train.batch_size=0", "train.batch_size"), ("train.epochs=0", "train.epochs"),
    ("train.threads=-1", "train.threads"), ("train.val_share=1.5", "train.val_share"),
    ("train.ema_decay=1", "train.ema_decay"), ("infer.region_thresholds=[0.5, 2, 0.5]", "infer.region_thresholds"),
])
def test_out_of_range_values_are_refused(override, needle):
    with pytest.raises(GliomaskError, match=needle.replace(".", r"\.")):
        load_config(None, [override])


def test_defaults_and_shipped_configs_are_in_range():
    from pathlib import Path

    load_config(None, None)
    for path in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"):
        load_config(path, None)
