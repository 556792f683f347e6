from .cross_validation import CrossValidationRunner
from .staged import StagedRunner

__all__ = ['CrossValidationRunner', 'StagedRunner']
