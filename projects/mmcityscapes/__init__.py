"""mmcityscapes plugin: the pieces mmdet/mmseg lack for Cityscapes (load with custom_imports)."""
from .utils.checkpoint import allow_mmengine_checkpoints

allow_mmengine_checkpoints()
