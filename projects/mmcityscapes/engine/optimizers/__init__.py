"""Optimizer wrappers (registered on import)."""
from mmcityscapes.engine.optimizers.amp_optim_wrapper import PortableAmpOptimWrapper

__all__ = ['PortableAmpOptimWrapper']
