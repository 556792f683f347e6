from .coarse_pretrain_hook import CoarsePretrainHook
from .load_report_hook import LoadReportHook
from .preemption_hook import PreemptionHook
from .resume_validation_hook import ResumeValidationHook
from .train_stats_hook import TrainStatsHook
from .val_loss_hook import ValLossHook

__all__ = ['CoarsePretrainHook', 'LoadReportHook', 'PreemptionHook', 'ResumeValidationHook', 'TrainStatsHook',
           'ValLossHook']
