# What every real-time config adds to mmseg's own Cityscapes config, in keys mmseg's configs do not
# define (a leaf inherits both): the plugin, the validation loss, $CITYSCAPES_ROOT (default
# data/cityscapes) and the plugin's SegmentationMetric, which each leaf puts in place with
# train_dataloader = dict(dataset=dict(data_root={{_base_.cityscapes_root}})), ...
custom_imports = dict(imports=['mmcityscapes.components'], allow_failed_imports=False)
custom_hooks = [dict(type='ValLossHook')]
cityscapes_root = r"""{{$CITYSCAPES_ROOT:data/cityscapes}}"""  # any path: quotes, with or without a final /
realtime_val_evaluator = dict(_delete_=True, type='SegmentationMetric', per_class=False)  # compact logs
realtime_test_evaluator = dict(_delete_=True, type='SegmentationMetric')  # + per-class values in the tables
