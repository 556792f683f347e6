"""Datasets and loading transforms mmdet/mmseg lack for Cityscapes (registered on import)."""
from mmcityscapes.datasets.cityscapes_panoptic import CityscapesPanopticDataset, LoadCityscapesPanopticAnnotations

__all__ = ['CityscapesPanopticDataset', 'LoadCityscapesPanopticAnnotations']
