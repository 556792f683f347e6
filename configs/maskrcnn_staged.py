# mask-rcnn_r50_fpn staged fine-tuning: stages 0-3 with their own recipes as one run, Cityscapes.
# The staged Mask R-CNN fine-tuning recipe (configs/README.md, References) as one run
# (tools/train.py, tools/dist_train.sh):
# stage 0 -> stage 1 -> k-means anchors -> Optuna search -> stage 2 -> stage 3, each stage from the
# previous one's best checkpoint. Stages in work_dirs/maskrcnn_staged/<stage config>/, tuned values
# in work_dirs/maskrcnn_staged/tuned/, the table in work_dirs/maskrcnn_staged/staged_results.md.
# Any other key (e.g. --cfg-options train_cfg.max_epochs=1) is merged into every stage.
custom_imports = dict(imports=['mmcityscapes.components'], allow_failed_imports=False)
runner_type = 'StagedRunner'
stages = ['maskrcnn_stage0.py', 'maskrcnn_stage1.py', 'maskrcnn_stage2.py', 'maskrcnn_stage3.py']
# 3 ratios x 1 scale: the RPN head keeps the 3 anchors per location it was trained with in stage 1
anchors = dict(ratios=3, scales=1, min_size=4)
tuning = dict(
    trials=20,  # 0: no search, stage 2's own values (configs/_base_/tuned/hyperparams.py)
    epochs=3,  # per trial, over the tuning subset
    ann_file='annotations/instancesonly_filtered_gtFine_train_tune.json',  # seed: 372 train images
    heartbeat=30,  # s; a killed trial is retried once silent for twice this
    # under dist_train.sh: one trial per process, side by side (each with a stage's per-GPU batch);
    # False: each trial on all processes. The stages always train on all processes.
    parallel=True)
