"""Datasets mmdet/mmseg lack for Cityscapes (``cityscapes_panoptic``, registered on import) and the
files a config's datasets read (``layout``), checked before anything is built (``preflight``)."""
