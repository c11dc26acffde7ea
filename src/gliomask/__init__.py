"""gliomask: find and outline brain tumours in multimodal MRI with Mask R-CNN."""

__version__ = "0.2.0"
