"""Staged Mask R-CNN: coarse-pretraining hook, k-means anchors, Optuna tuning, the staged runner."""
import glob
import json
import os
import os.path as osp
import re
import signal
import socket
import subprocess
import time

import numpy as np
import optuna
import pytest
import torch
from mmengine.config import Config
from mmengine.testing import RunnerTestCase

import mmcityscapes.components  # noqa: F401
from mmcityscapes.common.errors import UserError
from mmcityscapes.tuning import anchors as kmeans
from mmcityscapes.tuning.values import read_tuned
from mmcityscapes.utils.checkpoint import best_checkpoint

from conftest import PY, REPO, run_tool, table_rows

MINI_STAGES = [f'configs/mini/maskrcnn_stage{k}_mini.py' for k in range(4)]
STAGED = 'configs/mini/maskrcnn_staged_mini.py'
PREDICT_NOTHING = 'model.test_cfg.rcnn.score_thr=1.1'  # no detection passes: the model predicts nothing


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
        with pytest.raises(UserError, match='no/stage0.pth'):
            runner.train()

    def test_wrong_shapes_stop_with_an_example(self):
        path = self.save({'backbone.weight': torch.ones(3, 3), 'backbone.bias': torch.ones(2)})
        with pytest.raises(UserError, match=r'does not fit .*weight: \(3, 3\) in the checkpoint, \(2, 2\)'):
            self.runner_with_hook(path).train()

    def test_load_from_wins(self):
        runner = self.runner_with_hook('no/stage0.pth', load_from='anything.pth')
        hook = next(h for h in runner.hooks if type(h).__name__ == 'CoarsePretrainHook')
        before = runner.model.linear1.weight.clone()
        hook.before_train(runner)  # no error: the hook steps aside
        assert torch.equal(runner.model.linear1.weight, before)

    def test_work_dir_stands_for_its_best_checkpoint(self):
        """The best checkpoint by save_best (epoch 1: later epochs score the same), not the latest."""
        cfg = self.epoch_based_cfg
        cfg.default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, save_best='acc', rule='greater'))
        self.build_runner(cfg).train()
        work_dir, best = cfg.work_dir, best_checkpoint(cfg.work_dir)
        assert osp.basename(best) == 'best_acc_epoch_1.pth'
        assert open(osp.join(work_dir, 'last_checkpoint')).read().strip().endswith('epoch_2.pth')
        runner = self.runner_with_hook(work_dir + '/', work_dir=osp.join(self.temp_dir.name, 'next'))
        hook = next(h for h in runner.hooks if type(h).__name__ == 'CoarsePretrainHook')
        hook.src_prefix = 'linear1.'
        hook.before_train(runner)  # loads linear1 of the work dir's best checkpoint
        best = torch.load(best, weights_only=True)['state_dict']
        assert torch.equal(runner.model.linear1.weight, best['linear1.weight'])


def test_kmeans_recovers_box_shapes():
    rng = np.random.default_rng(0)
    tall = np.stack([rng.uniform(10, 40, 300), np.zeros(300)], 1)
    tall[:, 1] = tall[:, 0] * 3  # h/w = 3: pedestrians
    wide = np.stack([rng.uniform(20, 200, 300), np.zeros(300)], 1)
    wide[:, 1] = wide[:, 0] * 0.5  # h/w = 0.5: cars
    boxes = np.concatenate([tall, wide])
    scales, ratios = kmeans.fit(boxes, n_ratios=2, n_scales=1, seed=0)
    assert ratios == pytest.approx([0.5, 3.0], rel=0.05)
    fitted = kmeans.mean_best_iou(boxes, scales, ratios)
    assert fitted > kmeans.mean_best_iou(boxes, **kmeans.DEFAULT) + 0.05


@pytest.mark.slow
def test_kmeans_tool_fits_a_config_and_writes_an_inheritable_file(mini_env, tmp_path):
    out = tmp_path / 'anchors.py'
    proc = run_tool('tools/analysis_tools/kmeans_anchors.py', MINI_STAGES[2], '--out', str(out), env=mini_env)
    assert 'mean best-anchor IoU' in proc.stdout and 'at image scale (512, 256)' in proc.stdout
    anchors = Config.fromfile(str(out))
    assert len(anchors.anchor_scales) == 1 and len(anchors.anchor_ratios) == 3


def test_a_dead_trial_is_queued_again_once_then_failed(tmp_path):
    """A running trial whose heartbeat stopped: retry_stale_trials queues a copy with its
    parameters, then fails it; asked again, it queues nothing more. Optuna's own stale check
    (inside Study.optimize) never fires on this storage."""
    from mmcityscapes.engine.runner.search import open_study, retry_stale_trials
    study = open_study(f'sqlite:///{tmp_path}/study.db', 'stage2', heartbeat=1)
    trial = study.ask({'iou': optuna.distributions.FloatDistribution(0.3, 0.7)})
    study._storage.record_heartbeat(trial._trial_id)
    time.sleep(3.5)  # stale: silent for more than twice the heartbeat (SQLite keeps whole seconds)
    assert optuna.storages.fail_stale_trials(study) is None and study.trials[0].state == optuna.trial.TrialState.RUNNING
    retry_stale_trials(study)
    retry_stale_trials(study)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert study.trials[1].params == trial.params


@pytest.mark.slow
def test_two_tuning_workers_share_one_study(mini_env, tmp_path):
    storage = f'sqlite:///{tmp_path}/study.db'
    cmd = [PY, 'tools/tune.py', MINI_STAGES[2], '--trials', '2', '--epochs', '1', '--heartbeat', '2',
           '--storage', storage, '--study-name', 'shared', '--work-dir', str(tmp_path),
           '--cfg-options', 'load_from=None', 'custom_hooks=[]']  # no stage-0/1 weights in this test
    logs = [(open(tmp_path / f'worker{i}.out', 'w+'), open(tmp_path / f'worker{i}.err', 'w+')) for i in range(2)]
    workers = [subprocess.Popen(cmd, cwd=REPO, env=mini_env, stdout=out, stderr=err) for out, err in logs]
    outputs = []
    for worker, (out, err) in zip(workers, logs):  # files, not pipes: a worker waits for the other
        assert worker.wait(timeout=900) == 0, open(err.name).read()[-3000:]
        outputs.append((open(out.name).read(), open(err.name).read()))
    study = optuna.load_study(study_name='shared', storage=storage)
    numbers = sorted(t.number for t in study.trials)
    # none lost; two workers asking at the same moment may each start the last trial
    assert numbers == list(range(len(numbers))) and 2 <= len(numbers) <= 3
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in study.trials)
    assert sum(stdout.count('wrote ') for stdout, _ in outputs) == 1  # the same result, written once
    tuned = read_tuned(str(tmp_path / 'hyperparams.py'))
    assert tuned['rcnn_fg_iou_thr'] == pytest.approx(study.best_params['rcnn_fg_iou_thr'], abs=1e-3)
    assert osp.isfile(tmp_path / 'history.png')
    again = run_tool('tools/tune.py', *cmd[2:], env=mini_env)  # a finished study: no new trial
    assert len(optuna.load_study(study_name='shared', storage=storage).trials) == len(numbers)
    assert 'wrote' not in again.stdout


def test_no_prediction_still_reports_every_coco_key(mini_root):
    """mmdet's CocoMetric returns nothing when nothing is predicted; every key must be there, AP 0."""
    from mmdet.datasets import CityscapesDataset
    from mmdet.registry import METRICS
    metric = METRICS.build(dict(type='ClasswiseCocoMetric', metric=['bbox', 'segm'],
                                ann_file=str(mini_root / 'annotations/instancesonly_filtered_gtFine_val.json')))
    metric.dataset_meta = CityscapesDataset.METAINFO
    coco = json.load(open(mini_root / 'annotations/instancesonly_filtered_gtFine_val.json'))
    empty = dict(bboxes=torch.zeros(0, 4), scores=torch.zeros(0), labels=torch.zeros(0, dtype=torch.long),
                 masks=torch.zeros(0, 256, 512, dtype=torch.bool))
    metric.process({}, [dict(img_id=img['id'], ori_shape=(256, 512), pred_instances=empty) for img in coco['images']])
    metrics = metric.evaluate(len(coco['images']))
    for iou_type in ('bbox', 'segm'):
        assert all(metrics[f'coco/{iou_type}_{item}'] == 0.0 for item in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s'))
    present = {c['name'] for c in coco['categories']
               if any(a['category_id'] == c['id'] and not a['iscrowd'] for a in coco['annotations'])}
    for name in CityscapesDataset.METAINFO['classes']:
        assert metrics[f'coco/segm_AP.{name}'] == 0.0 if name in present else np.isnan(metrics[f'coco/segm_AP.{name}'])


def configs_snapshot():
    """{path: content} of every file under configs/."""
    return {path: open(path, 'rb').read() for path in glob.glob(f'{REPO}/configs/**/*', recursive=True)
            if osp.isfile(path)}


def run_until(args, env, done, timeout=1200):
    """Start a tool; kill -9 its process group as soon as ``done()`` holds. Returns False if it ended first."""
    proc = subprocess.Popen([PY, *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + timeout
    while not done() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return killed


@pytest.mark.slow
def test_staged_run_killed_in_tuning_and_in_a_stage_resumes(mini_env, tmp_path):
    """configs/mini/maskrcnn_staged_mini.py through tools/train.py: stage 0 -> 1 -> k-means -> 2-trial
    Optuna -> 2 -> 3, killed in a trial and in stage 2; each re-run continues, and configs/ is untouched."""
    args = ['tools/train.py', STAGED, '--work-dir', str(tmp_path)]
    configs_before = configs_snapshot()
    assert run_until(args, mini_env, lambda: osp.isdir(tmp_path / 'tune' / 'trial_0')), 'not killed in trial 0'
    stage2 = tmp_path / 'maskrcnn_stage2_mini'
    assert run_until(args, mini_env, lambda: osp.isfile(stage2 / 'last_checkpoint')), 'not killed in stage 2'
    assert not osp.isfile(stage2 / 'result.json')
    proc = run_tool(*args, env=mini_env, timeout=1800)

    results = json.load(open(tmp_path / 'staged_results.json'))
    stages = results['stages']
    assert [osp.basename(s['config']) for s in stages] == [osp.basename(c) for c in MINI_STAGES]
    assert 'mIoU' in stages[0]['metrics'] and all('coco/segm_mAP' in s['metrics'] for s in stages[1:])
    assert all(s['train_stats']['images'] > 0 and s['train_stats']['peak_memory_mb'] > 0 for s in stages)
    from mmdet.models.backbones import ResNet
    n = len(ResNet(depth=18).state_dict())  # every tensor of mmdet's backbone comes from stage 0
    stage1_log = open(sorted(glob.glob(f'{tmp_path}/maskrcnn_stage1_mini/*/*.log'))[0]).read()
    assert f'CoarsePretrainHook: loaded {n}/{n} backbone tensors from {stages[0]["checkpoint"]}' in stage1_log
    for k in (2, 3):
        log = open(sorted(glob.glob(f'{tmp_path}/maskrcnn_stage{k}_mini/*/*.log'))[0]).read()
        assert f'Load checkpoint from {stages[k - 1]["checkpoint"]}' in log
    assert 'resumed epoch: 1' in open(sorted(glob.glob(f'{stage2}/*/*.log'))[-1]).read()

    # the killed trial was failed and retried with its parameters; the study holds 2 finished trials
    study = optuna.load_study(study_name='stage2', storage=f'sqlite:///{tmp_path}/tune/study.db')
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    finished = [t for t in study.trials if t.state in done]
    assert len(finished) == 2 and study.trials[0].state == optuna.trial.TrialState.FAIL
    retried = [t for t in finished if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == 0]
    assert retried and retried[0].params == study.trials[0].params

    # the tuned values: in the work dir, applied to stages 2 and 3, named in the table
    tuned = {**read_tuned(str(tmp_path / 'tuned/anchors.py')), **read_tuned(str(tmp_path / 'tuned/hyperparams.py'))}
    assert results['tuned'] == tuned and len(tuned) == 6
    assert tuned['rcnn_fg_iou_thr'] == pytest.approx(study.best_params['rcnn_fg_iou_thr'], abs=1e-3)
    stage3_cfg = Config.fromfile(str(tmp_path / 'maskrcnn_stage3_mini' / 'maskrcnn_stage3_mini.py'))  # as trained
    assert stage3_cfg.model.rpn_head.anchor_generator.ratios == tuned['anchor_ratios']
    assert stage3_cfg.model.train_cfg.rpn.assigner.pos_iou_thr == tuned['rpn_pos_iou_thr']
    table = open(tmp_path / 'staged_results.md').read()
    assert table_rows(table)['rcnn_fg_iou_thr'] == [str(tuned['rcnn_fg_iou_thr'])] and 'images/s' in table
    assert table.count('(4 images)') == 4 and table in proc.stdout
    assert configs_snapshot() == configs_before
    again = run_tool(*args, env=mini_env)
    assert again.stdout.count('done, skipped') == 4


def train_losses(work_dir):
    """Every logged training loss (and lr) of the run in ``work_dir``, as its log prints them."""
    log = open(glob.glob(f'{work_dir}/*/*.log')[0]).read()
    return re.findall(r'Epoch\(train\) (\S+) .*?(lr: \S+) .*?(loss: .*)', log)


@pytest.mark.slow
def test_staged_run_under_dist_train_predicting_nothing(mini_env, tmp_path):
    """Two gloo processes train every stage together and the two trials side by side. kill -9 of
    one process in the trials: torchrun stops the other, and the same command again retries each
    killed trial exactly once and finishes; a trial trains as it does alone. A model that predicts nothing (score
    threshold above 1) still completes every stage, and its table says 0.0."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    args = ['bash', 'tools/dist_train.sh', STAGED, '2', '--work-dir', str(tmp_path), '--cfg-options',
            PREDICT_NOTHING, 'randomness.seed=0', 'default_hooks.logger.interval=1']
    env = dict(mini_env, PORT=str(port), PYTHON=PY)
    with open(tmp_path / 'first_launch.log', 'w') as output:
        launch = subprocess.Popen(args, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    deadline = time.time() + 900
    while time.time() < deadline and not any('Epoch(train) [1][1/' in open(log).read()
                                             for log in glob.glob(f'{tmp_path}/tune/trial_*/*/*.log')):
        assert launch.poll() is None, open(tmp_path / 'first_launch.log').read()[-5000:]
        time.sleep(0.2)
    workers = [int(stat.split('/')[2]) for stat in glob.glob('/proc/[0-9]*/stat')  # torchrun's children
               if int(open(stat).read().rsplit(')', 1)[1].split()[1]) == launch.pid]
    os.kill(workers[0], signal.SIGKILL)
    try:
        assert launch.wait(timeout=120) != 0
    finally:
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)
    assert not osp.isfile(tmp_path / 'tuned' / 'hyperparams.py')
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-5000:]
    stages = json.load(open(tmp_path / 'staged_results.json'))['stages']
    for stage in stages[1:]:
        assert stage['metrics']['coco/segm_mAP'] == 0.0 and stage['metrics']['cityscapes/mAP'] == 0.0
        assert osp.basename(stage['checkpoint']).startswith('best_coco_segm_mAP_epoch_1')
    row = table_rows(open(tmp_path / 'staged_results.md').read())['3']
    assert row[0] == 'maskrcnn_stage3_mini.py' and row[1:11] == ['0.0'] * 10
    study = optuna.load_study(study_name='stage2', storage=f'sqlite:///{tmp_path}/tune/study.db')
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    states = optuna.trial.TrialState
    finished = [t for t in study.trials if t.state in (states.COMPLETE, states.PRUNED)]
    assert failed and len(finished) == 2
    retried_from = [optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in finished]
    # each killed trial retried exactly once (rank 0 alone fails stale trials)
    assert sorted(n for n in retried_from if n is not None) == sorted(t.number for t in failed)
    for trial, number in zip(finished, retried_from):  # a retry has its killed trial's parameters
        assert number is None or trial.params == study.trials[number].params
    assert all(stage['train_stats']['images'] == 10 for stage in stages[1:])  # both processes counted
    for k in (2, 3):  # after the side-by-side trials, the processes train together again
        assert 'Distributed training: True' in open(glob.glob(f'{tmp_path}/maskrcnn_stage{k}_mini/*/*.log')[0]).read()
    trial = tmp_path / 'tune' / f'trial_{finished[-1].number}'
    assert 'Distributed training: False' in open(glob.glob(f'{trial}/*/*.log')[0]).read()
    run_tool('tools/train.py', str(trial / 'maskrcnn_stage2_mini.py'), '--work-dir', str(tmp_path / 'alone'),
             env=dict(mini_env, OMP_NUM_THREADS='1'))
    assert train_losses(tmp_path / 'alone') == train_losses(trial) != []


@pytest.mark.slow
def test_stages_by_hand_with_default_work_dirs(mini_env, tmp_path):
    """tools/train.py on stage k finds stage k-1's best checkpoint in its default work dir; before
    that stage is trained it says which command to run. The model predicts nothing, and
    tools/test.py still writes a table of zeros. (Stage 3 finds stage 2's checkpoint as stage 2
    finds stage 1's: it is left out.)"""
    def train(k, *options):
        return run_tool(osp.join(REPO, 'tools/train.py'), osp.join(REPO, MINI_STAGES[k]), *options, cwd=tmp_path,
                        env=mini_env, check=False)

    early = train(2)
    assert early.returncode == 2 and 'Traceback' not in early.stderr
    assert early.stderr.strip().splitlines()[-1] == (
        'error: work_dirs/maskrcnn_stage1_mini/ holds no trained checkpoint: run '
        f'`python tools/train.py {REPO}/configs/mini/maskrcnn_stage1_mini.py` first')  # the config beside stage 2's
    for k in range(3):
        proc = train(k, *(['--cfg-options', PREDICT_NOTHING] if k else []))
        assert proc.returncode == 0, proc.stderr[-3000:]
    previous = osp.basename(best_checkpoint(str(tmp_path / 'work_dirs/maskrcnn_stage1_mini')))
    assert previous.startswith('best_coco_segm_mAP_epoch_1')
    log = open(sorted(glob.glob(f'{tmp_path}/work_dirs/maskrcnn_stage2_mini/*/*.log'))[0]).read()
    assert f'Load checkpoint from work_dirs/maskrcnn_stage1_mini/{previous}' in log
    checkpoint = best_checkpoint(str(tmp_path / 'work_dirs/maskrcnn_stage2_mini'))
    proc = run_tool(osp.join(REPO, 'tools/test.py'), osp.join(REPO, MINI_STAGES[2]), checkpoint, '--cfg-options',
                    PREDICT_NOTHING, cwd=tmp_path, env=mini_env)
    rows = table_rows(proc.stdout)
    assert rows['coco/segm_mAP'] == ['0.00'] and rows['cityscapes/mAP'] == ['0.00']


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
