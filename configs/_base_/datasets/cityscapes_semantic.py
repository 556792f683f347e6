# mmseg's Cityscapes pipeline and 19-class IoU evaluation, reading the dataset from
# $CITYSCAPES_ROOT (default data/cityscapes).
_base_ = 'mmseg::_base_/datasets/cityscapes.py'

data_root = r"""{{$CITYSCAPES_ROOT:data/cityscapes}}"""  # any path: quotes, with or without a final /
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
