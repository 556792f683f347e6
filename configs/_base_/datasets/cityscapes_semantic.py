# mmseg's Cityscapes pipeline and 19-class IoU evaluation, reading the dataset from
# $CITYSCAPES_ROOT (default data/cityscapes/).
_base_ = 'mmseg::_base_/datasets/cityscapes.py'

data_root = '{{$CITYSCAPES_ROOT:data/cityscapes/}}'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
