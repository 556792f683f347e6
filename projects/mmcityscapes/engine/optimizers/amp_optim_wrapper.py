"""Automatic mixed precision on any device: mmengine's AmpOptimWrapper, which asserts a GPU."""
from typing import Union

import torch
from mmengine.device import is_cuda_available, is_mlu_available, is_musa_available, is_npu_available
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class PortableAmpOptimWrapper(AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` (``tools/train.py --amp``): on a GPU exactly it (float16
    autocast, loss scaling by ``loss_scale``); on the CPU, where mmengine's asserts a GPU, bfloat16
    autocast (mmengine's ``autocast``) with torch's CPU ``GradScaler`` taking ``loss_scale`` as
    on the GPU, so a step whose gradients overflow is skipped there too. The CPU path is what CI
    exercises the models' mixed-precision casts with.

    Args:
        loss_scale (str, float or dict): as ``AmpOptimWrapper``'s. Defaults to 'dynamic'.
        dtype (str or torch.dtype, optional): the autocast type; on the CPU only bfloat16.
    """

    def __init__(self, loss_scale: Union[str, float, dict] = 'dynamic', dtype: Union[str, torch.dtype, None] = None,
                 **kwargs):
        if is_cuda_available() or is_npu_available() or is_mlu_available() or is_musa_available():
            super().__init__(loss_scale=loss_scale, dtype=dtype, **kwargs)
            return
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = loss_scale if isinstance(loss_scale, float) else None
        scaler_args = dict(init_scale=loss_scale) if isinstance(loss_scale, float) else \
            dict(loss_scale) if isinstance(loss_scale, dict) else {}
        if not isinstance(loss_scale, (float, dict)) and loss_scale != 'dynamic':
            raise TypeError(f'loss_scale must be of type float, dict, or "dynamic", but got {loss_scale}')
        self.loss_scaler = torch.amp.GradScaler('cpu', **scaler_args)
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        if dtype not in (None, torch.bfloat16):
            raise ValueError(f'AMP on the CPU autocasts to bfloat16 only, not {dtype}')
        self.cast_dtype = torch.bfloat16
