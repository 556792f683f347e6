from .cross_validation import CrossValidationRunner

__all__ = ['CrossValidationRunner']
