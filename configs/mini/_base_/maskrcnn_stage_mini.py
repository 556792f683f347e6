# What each mini Mask R-CNN stage (configs/mini/maskrcnn_stage{1,2,3}_mini.py) changes in its full
# stage config, written once. Variables only: mmengine refuses a key that two bases define, and
# every mini stage also inherits its full stage, so a leaf maps each one to its key.
_base_ = '../../_base_/models/mask-rcnn_r18_fpn_small.py'

mini_model = {{_base_.small_model}}
mini_train_dataloader = dict(batch_size=2, num_workers=1,
                             dataset=dict(dataset=dict(pipeline={{_base_.small_train_pipeline}})))
mini_val_dataloader = dict(num_workers=1, persistent_workers=False,
                           dataset=dict(pipeline={{_base_.small_test_pipeline}}))
mini_train_cfg = dict(max_epochs=1)
# a 20-iteration warmup: the full schedule's 500 would cover a whole run on the small dataset
mini_warmup = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20)]
