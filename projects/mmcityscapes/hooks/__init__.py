from .coarse_pretrain_hook import CoarsePretrainHook
from .val_loss_hook import ValLossHook

__all__ = ['CoarsePretrainHook', 'ValLossHook']
