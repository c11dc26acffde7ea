"""The detector for N-channel MRI, weight files, configs and safe checkpoint loading."""

from __future__ import annotations

import pickle

import pytest
import torch
import torchvision

from gliomask.models.checkpoint import load_checkpoint, save_checkpoint
from gliomask.config import Config, load_config, save_config
from gliomask.errors import GliomaskError
from gliomask.models import build_maskrcnn, inflate_conv_weight, load_weights


def _targets(h, w, n):
    masks = torch.zeros(n, h, w, dtype=torch.uint8)
    boxes = []
    for i in range(n):
        y, x = 10 + 20 * i, 12 + 15 * i
        masks[i, y:y + 16, x:x + 20] = 1
        boxes.append([x, y, x + 20, y + 16])
    regions = masks.amax(dim=0, keepdim=True).repeat(3, 1, 1) if n else torch.zeros(3, h, w, dtype=torch.uint8)
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.arange(1, n + 1, dtype=torch.int64).clamp(max=3), "masks": masks, "regions": regions}


@pytest.mark.parametrize("channels,backbone", [(4, "mobilenet_v3_fpn"), (2, "resnet18_fpn"), (4, "resnet18_fpn")])
def test_forward_backward_with_and_without_targets(channels, backbone):
    torch.manual_seed(0)
    model = build_maskrcnn(num_classes=3, in_channels=channels, backbone=backbone)
    model.train()
    images = [torch.randn(channels, 96, 112), torch.randn(channels, 96, 112)]
    targets = [_targets(96, 112, 2), _targets(96, 112, 0)]  # second slice has no tumour
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg",
                           "loss_region_bce", "loss_region_dice"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    first = next(p for p in model.parameters() if p.ndim == 4)
    assert first.shape[1] == channels and first.grad is not None and first.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model([torch.randn(channels, 96, 112)])[0]
    n = len(out["scores"])
    assert out["boxes"].shape == (n, 4) and out["masks"].shape == (n, 1, 96, 112)  # native size, no resize
    regions = out["regions"]  # dense WT/TC/ET probabilities on the input slice
    assert regions.shape == (3, 96, 112) and float(regions.min()) >= 0 and float(regions.max()) <= 1
    assert n <= 20


def test_resnet50_v2_builds_and_runs():
    model = build_maskrcnn(num_classes=3, in_channels=4, backbone="resnet50_fpn", version="v2")
    model.train()
    losses = model([torch.randn(4, 64, 64)] * 2, [_targets(64, 64, 1)] * 2)
    assert torch.isfinite(sum(losses.values()))


def test_coco_state_dict_loads_with_inflation(tmp_path):
    torch.manual_seed(1)
    reference = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    path = tmp_path / "maskrcnn_resnet50_fpn_coco.pth"
    torch.save(reference.state_dict(), path)
    model = build_maskrcnn(num_classes=3, in_channels=4, backbone="resnet50_fpn", box_head_dim=1024)
    report = load_weights(model, path)
    rgb = reference.state_dict()["backbone.body.conv1.weight"]
    expected = rgb.mean(dim=1, keepdim=True).repeat(1, 4, 1, 1) * 3 / 4
    assert torch.equal(model.backbone.body.conv1.weight.detach(), expected)
    assert torch.equal(inflate_conv_weight(rgb, 4), expected)
    assert report.inflated == ["backbone.body.conv1.weight"]
    assert set(report.skipped) == {"roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias",
                                   "roi_heads.box_predictor.bbox_pred.weight", "roi_heads.box_predictor.bbox_pred.bias",
                                   "roi_heads.mask_predictor.mask_fcn_logits.weight",
                                   "roi_heads.mask_predictor.mask_fcn_logits.bias"}
    own = model.state_dict()
    for key in report.loaded:
        if key not in report.inflated:
            assert torch.equal(own[key], reference.state_dict()[key].to(own[key].dtype)), key
    assert "roi_heads.box_head.fc6.weight" in report.loaded
    assert "loaded" in report.summary() and "re-initialised" in report.summary()


def _legacy_name(key: str) -> str:
    """The key names of torchvision files saved before FPN and RPN heads became Conv2dNormActivation blocks."""
    import re

    key = re.sub(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.0\.(weight|bias)$", r"\1.\2", key)
    return re.sub(r"^(rpn\.head\.conv)\.0\.0\.(weight|bias)$", r"\1.\2", key)


def test_a_coco_file_with_the_old_fpn_and_rpn_names_loads_every_tensor(tmp_path):
    """maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth holds inner_blocks.0.weight and rpn.head.conv.weight."""
    torch.manual_seed(2)
    reference = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    old = {_legacy_name(k): v for k, v in reference.state_dict().items()}
    assert "backbone.fpn.inner_blocks.0.weight" in old and "rpn.head.conv.weight" in old
    path = tmp_path / "maskrcnn_resnet50_fpn_coco-old.pth"
    torch.save(old, path)
    model = build_maskrcnn(num_classes=3, in_channels=4, backbone="resnet50_fpn", box_head_dim=1024, mask_head_layers=4)
    report = load_weights(model, path)
    assert not report.unexpected, report.unexpected
    assert torch.equal(model.backbone.fpn.inner_blocks[0][0].weight, reference.backbone.fpn.inner_blocks[0][0].weight)
    assert torch.equal(model.rpn.head.conv[0][0].weight, reference.rpn.head.conv[0][0].weight)
    assert "backbone.fpn" in report.summary() and "rpn.head" in report.summary()


def test_coco_weights_follow_the_version_of_the_heads(monkeypatch):
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights, MaskRCNN_ResNet50_FPN_Weights

    torch.manual_seed(3)
    v2 = torchvision.models.detection.maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=91)
    asked = []
    monkeypatch.setattr(MaskRCNN_ResNet50_FPN_V2_Weights, "get_state_dict",
                        lambda self, *a, **k: asked.append("v2") or v2.state_dict())
    monkeypatch.setattr(MaskRCNN_ResNet50_FPN_Weights, "get_state_dict", lambda self, *a, **k: asked.append("v1") or {})
    model = build_maskrcnn(num_classes=3, in_channels=4, backbone="resnet50_fpn", version="v2", box_head_dim=1024,
                           mask_head_layers=4)
    report = load_weights(model, "coco", "v2")
    assert asked == ["v2"]
    assert not report.unexpected and "roi_heads.box_head.0.0.weight" in report.loaded
    assert torch.equal(model.roi_heads.mask_head[0][0].weight, v2.roi_heads.mask_head[0][0].weight)
    assert "roi_heads.box_head" in report.summary()


def test_imagenet_backbone_file_loads(tmp_path):
    net = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(net.state_dict(), path)
    model = build_maskrcnn(num_classes=3, in_channels=2, backbone="resnet18_fpn")
    report = load_weights(model, path)
    assert report.inflated == ["backbone.body.conv1.weight"]
    assert torch.equal(model.backbone.body.layer1[0].conv1.weight, net.layer1[0].conv1.weight)
    assert not any(k.startswith("fc") for k in report.loaded)
    assert any(k.startswith("roi_heads") for k in report.missing)


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "junk.pth"
    torch.save({"foo.weight": torch.zeros(3)}, path)
    model = build_maskrcnn(num_classes=1, in_channels=4)
    with pytest.raises(GliomaskError, match="no tensor in the file matches"):
        load_weights(model, path)


def test_config_round_trip_overrides_and_unknown_keys(tmp_path):
    cfg = load_config(None, ["train.lr=0.005", "model.backbone=resnet18_fpn", "train.max_minutes=3",
                             "infer.score_thresholds=[0.3, 0.4, 0.5]", "train.amp=false"])
    assert cfg.train.lr == 0.005 and cfg.model.backbone == "resnet18_fpn" and cfg.train.max_minutes == 3.0
    assert cfg.infer.score_thresholds == [0.3, 0.4, 0.5] and cfg.train.amp is False
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(GliomaskError, match="unknown config key 'train.lrr'"):
        load_config(None, ["train.lrr=1"])
    (tmp_path / "bad.yaml").write_text("model:\n  depth: 3\n")
    with pytest.raises(GliomaskError, match="unknown config key 'model.depth'"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(GliomaskError, match="must be an integer"):
        load_config(None, ["train.epochs=many"])


class _RunsCode:
    def __reduce__(self):
        return (print, ("this ran while unpickling",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"format": 1, "model": _RunsCode()}, fh)
    with pytest.raises(GliomaskError, match="refused"):
        load_checkpoint(path)
    evil_zip = tmp_path / "evil_zip.pt"
    torch.save({"format": 1, "payload": _RunsCode()}, evil_zip)
    with pytest.raises(GliomaskError, match="refused"):
        load_checkpoint(evil_zip)


def test_checkpoint_round_trip_and_incomplete_file(tmp_path):
    model = build_maskrcnn(num_classes=3, in_channels=4)
    payload = {"model": model.state_dict(), "config": Config().to_dict(), "classes": ["WT", "TC", "ET"],
               "modalities": ["t1", "t1ce", "t2", "flair"], "scheme": "regions", "label_convention": "brats2019",
               "normalization": {"clip_percentiles": [0.5, 99.5], "crop_margin": 2}, "axis": "axial"}
    save_checkpoint(payload, tmp_path / "ok.pt")
    back = load_checkpoint(tmp_path / "ok.pt")
    assert back["classes"] == ["WT", "TC", "ET"]
    torch.save({"format": 1, "model": {}}, tmp_path / "partial.pt")
    with pytest.raises(GliomaskError, match="lacks"):
        load_checkpoint(tmp_path / "partial.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00garbage")
    with pytest.raises(GliomaskError, match="unreadable|refused"):
        load_checkpoint(tmp_path / "garbage.pt")


def test_nested_classes_with_identical_boxes_both_get_positives():
    """An enhancing rim (ET) shares its box with the core (TC); both classes must get training positives."""
    torch.manual_seed(0)
    model = build_maskrcnn(num_classes=3, in_channels=4)
    box = torch.tensor([[20.0, 20.0, 60.0, 60.0]])
    masks = torch.zeros(3, 80, 80, dtype=torch.uint8)
    masks[0, 10:70, 10:70] = 1
    masks[1:, 20:60, 20:60] = 1
    target = {"boxes": torch.cat([torch.tensor([[10.0, 10.0, 70.0, 70.0]]), box, box]),
              "labels": torch.tensor([1, 2, 3]), "masks": masks}
    proposals = [box.repeat(50, 1) + torch.randn(50, 4)]
    seen = set()
    for _ in range(5):
        _, _, labels, _ = model.roi_heads.select_training_samples(proposals, [target])
        seen |= set(labels[0].tolist())
    assert {2, 3} <= seen


@pytest.mark.parametrize("backbone,strides", [("mobilenet_v3_fpn", (8, 16, 32, 64)), ("resnet18_fpn", (4, 8, 16, 32, 64))])
def test_fpn_levels_reach_stride_8_or_finer(backbone, strides):
    model = build_maskrcnn(num_classes=1, in_channels=4, backbone=backbone).eval()
    with torch.no_grad():
        feats = model.backbone(torch.randn(1, 4, 256, 256))
    assert [tuple(f.shape[-2:]) for f in feats.values()] == [(256 // s, 256 // s) for s in strides]
    assert len(model.rpn.anchor_generator.sizes) == len(strides)  # one anchor set per FPN level
    if backbone == "mobilenet_v3_fpn":  # raw stride-4 features for the dense head
        assert tuple(model.backbone.fine.shape[-2:]) == (64, 64)


def test_region_head_learns_a_thin_rim():
    """The dense head must be able to draw a 3-pixel ring, which 28 x 28 RoI masks cannot."""
    torch.manual_seed(0)
    model = build_maskrcnn(num_classes=1, in_channels=1)
    yy, xx = torch.meshgrid(torch.arange(96), torch.arange(96), indexing="ij")
    r = ((yy - 48) ** 2 + (xx - 44) ** 2).float().sqrt()
    ring = ((r >= 18) & (r < 21)).to(torch.uint8)
    image = (ring.float() * 2 + 0.1 * torch.randn(96, 96))[None]
    disk = (r < 21).to(torch.uint8)
    target = {"boxes": torch.tensor([[23.0, 27.0, 65.0, 69.0]]), "labels": torch.tensor([1]), "masks": disk[None],
              "regions": torch.stack([disk, disk, ring])}
    opt = torch.optim.Adam(model.region_head.parameters(), lr=0.01)
    model.train()
    for _ in range(60):
        losses = model([image], [target])
        opt.zero_grad()
        (losses["loss_region_bce"] + losses["loss_region_dice"]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model([image])[0]["regions"][2] >= 0.5
    inter = (pred & ring.bool()).sum().item()
    assert 2 * inter / (pred.sum().item() + ring.sum().item()) > 0.8


def test_batchnorm_folding_keeps_the_outputs():
    """`fuse_conv_bn` (used by `Predictor`) removes every foldable BatchNorm and changes outputs only by rounding."""
    import copy

    from gliomask.models.fusion import fuse_conv_bn

    torch.manual_seed(0)
    model = build_maskrcnn(num_classes=1, in_channels=6, backbone="mobilenet_v3_fpn")
    model.train()
    model([torch.randn(6, 96, 80) for _ in range(2)], [  # move the BatchNorm statistics away from identity
        {"boxes": torch.tensor([[10.0, 10.0, 40.0, 50.0]]), "labels": torch.tensor([1]),
         "masks": torch.zeros(1, 96, 80, dtype=torch.uint8).index_fill_(1, torch.arange(10, 50), 1),
         "regions": torch.zeros(3, 96, 80, dtype=torch.uint8)} for _ in range(2)])
    model.eval()
    fused = fuse_conv_bn(copy.deepcopy(model))
    before = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    after = sum(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert before > 30 and after == 0
    x = [torch.randn(6, 96, 80)]
    with torch.no_grad():
        a, b = model(x)[0], fused(x)[0]
    torch.testing.assert_close(b["regions"], a["regions"], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError):
        fuse_conv_bn(model.train())
