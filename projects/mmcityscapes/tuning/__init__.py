"""Stage-2 tuning: k-means anchors and the files that carry tuned values (the Optuna search that
runs trials is ``mmcityscapes.engine.runner.search``)."""
from mmcityscapes.tuning.anchors import fit_anchors
from mmcityscapes.tuning.values import apply_tuned, read_tuned, tuned_values, write_tuned

__all__ = ['apply_tuned', 'fit_anchors', 'read_tuned', 'tuned_values', 'write_tuned']
