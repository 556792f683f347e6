from mmcityscapes.engine.runner.cross_validation import CrossValidationRunner
from mmcityscapes.engine.runner.loops import ResumableEpochBasedTrainLoop
from mmcityscapes.engine.runner.staged import StagedRunner

__all__ = ['CrossValidationRunner', 'ResumableEpochBasedTrainLoop', 'StagedRunner']
