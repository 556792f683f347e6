"""Staged Mask R-CNN: coarse-pretraining hook, k-means anchors, Optuna tuning, the pipeline."""
import glob
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import optuna
import pytest
import torch
from mmengine.config import Config
from mmengine.testing import RunnerTestCase

import projects.mmcityscapes  # noqa: F401
from conftest import PY, REPO, run_tool

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import kmeans_anchors  # noqa: E402

MINI_STAGES = [f'configs/mini/maskrcnn_stage{k}_mini.py' for k in range(4)]


class TestCoarsePretrainHook(RunnerTestCase):
    """The hook on mmengine's toy runner: the toy model's ``linear1`` stands in for a backbone."""

    def runner_with_hook(self, checkpoint, **cfg_updates):
        cfg = self.epoch_based_cfg
        cfg.custom_hooks = [dict(type='CoarsePretrainHook', checkpoint=checkpoint, dst_prefix='linear1.')]
        cfg.update(cfg_updates)
        return self.build_runner(cfg)

    def save(self, state):
        path = osp.join(self.temp_dir.name, 'stage0.pth')
        torch.save(dict(state_dict=state), path)
        return path

    def test_loads_matching_backbone_tensors(self):
        weight, bias = torch.full((2, 2), 3.0), torch.full((2,), 5.0)
        path = self.save({'backbone.weight': weight, 'backbone.bias': bias, 'decode_head.conv.weight': torch.ones(1)})
        runner = self.runner_with_hook(path)
        hook = next(h for h in runner.hooks if type(h).__name__ == 'CoarsePretrainHook')
        hook.before_train(runner)
        assert torch.equal(runner.model.linear1.weight, weight) and torch.equal(runner.model.linear1.bias, bias)

    def test_missing_checkpoint_stops_with_its_path(self):
        runner = self.runner_with_hook('no/stage0.pth')
        with pytest.raises(FileNotFoundError, match='no/stage0.pth'):
            runner.train()

    def test_wrong_shapes_stop_with_an_example(self):
        path = self.save({'backbone.weight': torch.ones(3, 3), 'backbone.bias': torch.ones(2)})
        with pytest.raises(RuntimeError, match=r'does not fit .*weight: \(3, 3\) in the checkpoint, \(2, 2\)'):
            self.runner_with_hook(path).train()

    def test_load_from_wins(self):
        runner = self.runner_with_hook('no/stage0.pth', load_from='anything.pth')
        hook = next(h for h in runner.hooks if type(h).__name__ == 'CoarsePretrainHook')
        before = runner.model.linear1.weight.clone()
        hook.before_train(runner)  # no error: the hook steps aside
        assert torch.equal(runner.model.linear1.weight, before)


def test_kmeans_recovers_box_shapes():
    rng = np.random.default_rng(0)
    tall = np.stack([rng.uniform(10, 40, 300), np.zeros(300)], 1)
    tall[:, 1] = tall[:, 0] * 3  # h/w = 3: pedestrians
    wide = np.stack([rng.uniform(20, 200, 300), np.zeros(300)], 1)
    wide[:, 1] = wide[:, 0] * 0.5  # h/w = 0.5: cars
    boxes = np.concatenate([tall, wide])
    scales, ratios = kmeans_anchors.fit(boxes, n_ratios=2, n_scales=1, seed=0)
    assert ratios == pytest.approx([0.5, 3.0], rel=0.05)
    fitted = kmeans_anchors.mean_best_iou(boxes, scales, ratios)
    assert fitted > kmeans_anchors.mean_best_iou(boxes, **kmeans_anchors.DEFAULT) + 0.05


def test_kmeans_tool_writes_a_config_stage2_can_inherit(mini_root, tmp_path):
    out = tmp_path / 'anchors.py'
    proc = run_tool('tools/analysis_tools/kmeans_anchors.py',
                    str(mini_root / 'annotations' / 'instancesonly_filtered_gtFine_train.json'),
                    '--img-scale', '512', '256', '--out', str(out))
    assert 'mean best-anchor IoU' in proc.stdout
    anchors = Config.fromfile(str(out))
    assert len(anchors.anchor_scales) == 1 and len(anchors.anchor_ratios) == 3


def test_two_tuning_workers_share_one_study(mini_env, tmp_path):
    storage = f'sqlite:///{tmp_path}/study.db'
    out = tmp_path / 'hyperparams.py'
    cmd = [PY, 'tools/tune.py', 'configs/mini/maskrcnn_stage2_mini.py', '--trials', '4', '--epochs', '1',
           '--storage', storage, '--study-name', 'shared', '--work-dir', str(tmp_path), '--out', str(out),
           '--cfg-options', 'load_from=None', 'custom_hooks=[]']  # no stage-0/1 weights in this test
    workers = [subprocess.Popen(cmd, cwd=REPO, env=mini_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=900) for w in workers]
    for w, (stdout, stderr) in zip(workers, outputs):
        assert w.returncode == 0, stderr[-3000:]
    study = optuna.load_study(study_name='shared', storage=storage)
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(len(numbers))) and 4 <= len(numbers) <= 5  # none lost or duplicated
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in study.trials)
    assert sum(stdout.count(f'wrote {out}') for stdout, _ in outputs) == 1  # written once
    tuned = Config.fromfile(str(out))
    assert tuned.rcnn_fg_iou_thr == pytest.approx(study.best_params['rcnn_fg_iou_thr'], abs=1e-3)
    assert osp.isfile(tmp_path / 'history.png')


def test_pipeline_runs_the_four_stages(mini_env, tmp_path):
    args = ['tools/run_pipeline.py', '--configs', *MINI_STAGES, '--work-dir', str(tmp_path)]
    proc = run_tool(*args, env=mini_env, timeout=1800)
    results = json.load(open(tmp_path / 'pipeline_results.json'))
    assert [osp.basename(r['config']) for r in results] == [osp.basename(c) for c in MINI_STAGES]
    assert 'mIoU' in results[0]['metrics'] and all('coco/segm_mAP' in r['metrics'] for r in results[1:])
    from mmdet.models.backbones import ResNet
    n = len(ResNet(depth=18).state_dict())  # every tensor of mmdet's backbone comes from stage 0
    stage1_log = open(sorted(glob.glob(f'{tmp_path}/maskrcnn_stage1_mini/*/*.log'))[0]).read()  # training log
    assert f'CoarsePretrainHook: loaded {n}/{n} backbone tensors from {results[0]["checkpoint"]}' in stage1_log
    for k in (2, 3):
        log = open(sorted(glob.glob(f'{tmp_path}/maskrcnn_stage{k}_mini/*/*.log'))[0]).read()
        assert f'Load checkpoint from {results[k - 1]["checkpoint"]}' in log
    table = open(tmp_path / 'pipeline_results.md').read()
    assert table.count('\n| ') == 5 and 'instancesonly_filtered_gtFine_val.json (4 images)' in table
    again = run_tool(*args, env=mini_env)
    assert again.stdout.count('done, skipped') == 4 and proc.stdout.count('done, skipped') == 0


def test_val_finetune_split_never_overlaps_the_evaluation(mini_root):
    finetune = open(mini_root / 'splits' / 'val_finetune.txt').read().split()
    holdout = open(mini_root / 'splits' / 'val_holdout.txt').read().split()
    assert finetune and holdout and not set(finetune) & set(holdout)
    assert len(finetune) + len(holdout) == 4
    cfg = Config.fromfile(osp.join(REPO, 'configs/maskrcnn_stage3_valft.py'))
    trained = {d['ann_file'] for d in cfg.train_dataloader.dataset.datasets}
    assert cfg.val_dataloader.dataset.ann_file.endswith('val_holdout.json')
    assert not any('holdout' in a for a in trained) and any('val_finetune' in a for a in trained)
    coco = json.load(open(mini_root / 'annotations' / 'instancesonly_filtered_gtFine_val_holdout.json'))
    assert sorted(i['file_name'][:-len('_leftImg8bit.png')] for i in coco['images']) == sorted(holdout)
