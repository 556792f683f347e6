# mmseg's Cityscapes pipeline, reading the dataset from $CITYSCAPES_ROOT (default data/cityscapes),
# scored by the plugin's SegmentationMetric (mIoU, aAcc, mAcc, F1, precision, recall, specificity).
_base_ = 'mmseg::_base_/datasets/cityscapes.py'

data_root = r"""{{$CITYSCAPES_ROOT:data/cityscapes}}"""  # any path: quotes, with or without a final /
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='SegmentationMetric', per_class=False)  # compact logs
test_evaluator = dict(_delete_=True, type='SegmentationMetric')  # + per-class values in the tables
