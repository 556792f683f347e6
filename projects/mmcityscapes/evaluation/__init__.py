"""Cityscapes evaluation.

Light (numpy, OpenCV, cityscapesscripts; no torch): ``cityscapes_semantic`` and
``cityscapes_instance`` (the official scores, computed fast) and ``result_files`` (the same on
prediction files in the official format). The mmengine metrics built on them
(``*_metric.py``, ``coco_metric.py``) are registered by ``projects.mmcityscapes.components``.
"""
