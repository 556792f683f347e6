# panoptic fusion of two trained models, test only, 1024x2048 scale, Cityscapes val.
# The staged Mask R-CNN (things) and mmseg's DeepLabV3 R50 (stuff), each a checkpoint, a training
# work dir (its best checkpoint) or an ONNX export, fused by Panoptic FPN's heuristic; tested with
# the official PQ and each family's own metric:
#   python tools/test.py configs/panoptic_fusion.py
#   python tools/test.py configs/panoptic_fusion.py --cfg-options model.thing_checkpoint=exports/maskrcnn_stage3
_base_ = ['mmdet::_base_/default_runtime.py', '_base_/datasets/cityscapes_panoptic.py']
custom_imports = dict(imports=['mmcityscapes.components'], allow_failed_imports=False)

model = dict(
    type='PanopticFusion',
    thing_config='{{fileDirname}}/maskrcnn_stage3.py',
    thing_checkpoint='work_dirs/maskrcnn_staged/maskrcnn_stage3/',  # configs/maskrcnn_staged.py's last stage
    stuff_config='{{fileDirname}}/deeplabv3_r50.py',
    stuff_checkpoint='work_dirs/deeplabv3_r50/',
    # Panoptic FPN's heuristic (Kirillov et al., 2019): score and overlap thresholds, and the
    # smallest stuff region at 1024x2048 (scaled with the image)
    score_thr=0.5, overlap_thr=0.5, stuff_area=4096)

test_dataloader = dict(batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
                       sampler=dict(type='DefaultSampler', shuffle=False), dataset={{_base_.panoptic_val_dataset}})
test_cfg = dict(type='TestLoop')
test_evaluator = [
    {{_base_.panoptic_evaluator}},
    dict(type='CityscapesInstanceMetric'),  # the Mask R-CNN's own AP, on all its detections
    dict(type='mmseg.SegmentationMetric'),  # the semantic model's own mIoU
]
# nothing to train or validate: the two models are trained apart
train_dataloader = train_cfg = optim_wrapper = val_dataloader = val_cfg = val_evaluator = None
