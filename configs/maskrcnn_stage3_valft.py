# mask-rcnn_r50_fpn stage 3 + val fine-tuning, 8x1 images, 4 epochs, 800-1024 scale, Cityscapes fine.
# Stage 3 with the staged recipe's fine-tuning on validation data, made explicit: it also trains on the
# val images of splits/val_finetune.txt (by default half of val, chosen by the data preparation)
# and is evaluated ONLY on the other half (splits/val_holdout.txt), never on images it trained on.
# Its numbers are therefore not comparable with the full-val numbers of the other stages; every
# table of tools/test.py names the annotation file and image count it was computed on.
_base_ = './maskrcnn_stage3.py'

data_root = r"""{{$CITYSCAPES_ROOT:data/cityscapes}}"""  # any path: quotes, with or without a final /
val_finetune = dict(
    type='CityscapesDataset', data_root=data_root,
    ann_file='annotations/instancesonly_filtered_gtFine_val_finetune.json',
    data_prefix=dict(img='leftImg8bit/val/'), filter_cfg=dict(filter_empty_gt=True, min_size=32),
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(dataset=dict(
    _delete_=True, type='ConcatDataset',
    datasets=[{{_base_.train_dataloader.dataset.dataset}}, val_finetune]))
holdout = 'annotations/instancesonly_filtered_gtFine_val_holdout.json'
val_dataloader = dict(dataset=dict(ann_file=holdout))
test_dataloader = val_dataloader
val_evaluator = [dict(type='ClasswiseCocoMetric', metric=['bbox', 'segm'], ann_file=data_root + '/' + holdout),
                 dict(type='CityscapesInstanceMetric')]
test_evaluator = val_evaluator
