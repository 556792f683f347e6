"""The plugin's mmengine hooks (registered on import)."""
from mmcityscapes.engine.hooks.apply_changes_hook import ApplyConfigChangesHook
from mmcityscapes.engine.hooks.coarse_pretrain_hook import CoarsePretrainHook
from mmcityscapes.engine.hooks.finite_training_hook import FiniteTrainingHook
from mmcityscapes.engine.hooks.load_report_hook import LoadReportHook
from mmcityscapes.engine.hooks.overlay_hook import OverlayHook
from mmcityscapes.engine.hooks.preemption_hook import PreemptionHook
from mmcityscapes.engine.hooks.progress_hook import ProgressHook
from mmcityscapes.engine.hooks.release_workers_hook import ReleaseWorkersHook
from mmcityscapes.engine.hooks.resume_validation_hook import ResumeValidationHook
from mmcityscapes.engine.hooks.train_stats_hook import TrainStatsHook
from mmcityscapes.engine.hooks.val_loss_hook import ValLossHook

__all__ = ['ApplyConfigChangesHook', 'CoarsePretrainHook', 'FiniteTrainingHook', 'LoadReportHook', 'OverlayHook',
           'PreemptionHook', 'ProgressHook', 'ReleaseWorkersHook', 'ResumeValidationHook', 'TrainStatsHook',
           'ValLossHook']
