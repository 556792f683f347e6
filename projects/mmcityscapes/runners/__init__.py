from .cross_validation import CrossValidationRunner
from .loops import ResumableEpochBasedTrainLoop
from .staged import StagedRunner

__all__ = ['CrossValidationRunner', 'ResumableEpochBasedTrainLoop', 'StagedRunner']
