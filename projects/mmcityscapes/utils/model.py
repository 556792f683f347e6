"""Models from configs: built ready to run with a checkpoint's tensors, found inside wrappers."""
import copy
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.model import BaseTTAModel, is_model_wrapper, revert_sync_batchnorm
from mmengine.registry import MODELS, DefaultScope

from mmcityscapes.utils.checkpoint import Checkpoint


def build_model(cfg: Config, model_cfg: Optional[dict] = None, checkpoint: Optional[Checkpoint] = None,
                device: str = 'cpu') -> torch.nn.Module:
    """The ready model, in eval mode on ``device`` (SyncBN as BN).

    Args:
        cfg (Config): the config, whose ``default_scope`` builds the model.
        model_cfg (dict, optional): the model to build. Defaults to ``cfg.model``.
        checkpoint (Checkpoint, optional): tensors to load after ``Checkpoint.tensors_for`` has
            checked that they fit. Defaults to None (the model as built).
        device (str): Defaults to ``'cpu'``.

    Returns:
        torch.nn.Module: the model.
    """
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(copy.deepcopy(model_cfg or cfg.model))  # mmseg's build edits its config
    model = revert_sync_batchnorm(model)
    if checkpoint is not None:
        checkpoint.load_into(model)
    return model.to(device).eval()


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside DDP/FSDP wrappers and mmengine's test-time-augmentation wrapper: the one
    a checkpoint's tensors belong to."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model
