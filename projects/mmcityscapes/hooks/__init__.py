from .coarse_pretrain_hook import CoarsePretrainHook
from .resume_validation_hook import ResumeValidationHook
from .train_stats_hook import TrainStatsHook
from .val_loss_hook import ValLossHook

__all__ = ['CoarsePretrainHook', 'ResumeValidationHook', 'TrainStatsHook', 'ValLossHook']
