"""Panoptic segmentation from the two families' trained models (``PanopticFusion``)."""
from mmcityscapes.panoptic.fusion import PanopticFusion

__all__ = ['PanopticFusion']
