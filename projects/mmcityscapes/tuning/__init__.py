"""Stage-2 tuning: k-means anchors, the Optuna search, and the files that carry tuned values."""
from .anchors import fit_anchors
from .search import search
from .values import apply_tuned, read_tuned, tuned_values, write_tuned

__all__ = ['apply_tuned', 'fit_anchors', 'read_tuned', 'search', 'tuned_values', 'write_tuned']
