"""Data preparation: synthetic cases, slicing into instances, splits, COCO export, datasets."""
