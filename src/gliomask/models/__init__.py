"""Mask R-CNN for N-channel MRI slices, and loading weights from local files."""

from gliomask.models.builder import BACKBONES, build_maskrcnn
from gliomask.models.weights import inflate_conv_weight, load_weights

__all__ = ["BACKBONES", "build_maskrcnn", "load_weights", "inflate_conv_weight"]
