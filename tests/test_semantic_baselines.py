"""U-Net head, metric set, validation loss and cross-validation runner (semantic baselines)."""
import glob
import json
import os
import os.path as osp
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.evaluation import IoUMetric
from mmseg.registry import MODELS

import mmcityscapes.components  # noqa: F401
from mmcityscapes.components import SegmentationMetric

from conftest import REPO, SMALL_UNET, run_tool, table_rows


@pytest.mark.parametrize('config,channels', [
    ('configs/unet_r34.py', [64, 128, 256, 512]),
    ('configs/unet_mobilenetv2.py', [24, 32, 96, 320]),
    ('configs/unet_resnext50.py', [256, 512, 1024, 2048]),
])
def test_unet_decodes_to_input_resolution(config, channels):
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        features = model.extract_feat(torch.randn(2, 3, 64, 128))
        logits = model.decode_head(features)
    assert [f.shape[1] for f in features] == channels
    assert logits.shape == (2, 19, 64, 128)


def test_deeplabv3_tv_is_torchvision_s_network(tmp_path):
    """configs/deeplabv3_r50_tv.py is torchvision's deeplabv3_resnet50 with its auxiliary head:
    torchvision weights, converted by the tool, load with every key and give the same outputs.
    mmseg's R50-D8 has other tensors."""
    from mmengine.model import revert_sync_batchnorm
    from mmseg.models.utils import resize
    from torchvision.models.segmentation import deeplabv3_resnet50
    torch.manual_seed(0)
    reference = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=19, aux_loss=True).eval()
    for bn in (m for m in reference.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # not the identity
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 1.5)
    torch.save(reference.state_dict(), tmp_path / 'torchvision.pth')
    run_tool('tools/model_converters/torchvision_deeplabv3.py', str(tmp_path / 'torchvision.pth'),
             str(tmp_path / 'converted.pth'))
    init_default_scope('mmseg')
    models = {}
    for config in ('configs/deeplabv3_r50_tv.py', 'configs/deeplabv3_r50.py'):
        cfg = Config.fromfile(osp.join(REPO, config))
        cfg.model.pretrained, cfg.model.backbone.init_cfg = None, None
        models[config] = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    converted = torch.load(tmp_path / 'converted.pth', weights_only=True)['state_dict']
    assert models['configs/deeplabv3_r50.py'].state_dict().keys() != converted.keys()
    ours = models['configs/deeplabv3_r50_tv.py']
    ours.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        expected, features = reference(x), ours.extract_feat(x)
        for head, key in ((ours.decode_head, 'out'), (ours.auxiliary_head, 'aux')):
            logits = resize(head(features), x.shape[2:], mode='bilinear', align_corners=False)
            assert torch.allclose(logits, expected[key], atol=1e-4), key


def _samples(rng, n, num_classes=5, shape=(20, 30)):
    samples = []
    for _ in range(n):
        gt = rng.integers(0, num_classes, shape)
        gt[rng.random(shape) < 0.1] = 255
        pred = np.where(rng.random(shape) < 0.6, gt, rng.integers(0, num_classes, shape))
        pred[pred == 255] = 0
        samples.append(dict(pred_sem_seg=dict(data=torch.from_numpy(pred)[None]),
                            gt_sem_seg=dict(data=torch.from_numpy(gt)[None])))
    return samples


def test_metric_set_against_mmseg_and_brute_force():
    rng = np.random.default_rng(0)
    samples = _samples(rng, 6)
    classes = ('a', 'b', 'c', 'd', 'e')
    ours, reference = SegmentationMetric(), IoUMetric(iou_metrics=['mIoU'])
    for metric in (ours, reference):
        metric.dataset_meta = dict(classes=classes)
        metric.process([], samples)
    mine = ours.compute_metrics(ours.results)
    theirs = reference.compute_metrics(reference.results)
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert mine[key] == pytest.approx(theirs[key], abs=0.01)
    pred = np.concatenate([s['pred_sem_seg']['data'].numpy().ravel() for s in samples])
    gt = np.concatenate([s['gt_sem_seg']['data'].numpy().ravel() for s in samples])
    pred, gt = pred[gt != 255], gt[gt != 255]
    for c, name in enumerate(classes):
        tp = np.sum((pred == c) & (gt == c))
        fp = np.sum((pred == c) & (gt != c))
        fn = np.sum((pred != c) & (gt == c))
        tn = np.sum((pred != c) & (gt != c))
        assert mine[f'F1.{name}'] == pytest.approx(100 * 2 * tp / (2 * tp + fp + fn), abs=0.01)
        assert mine[f'Precision.{name}'] == pytest.approx(100 * tp / (tp + fp), abs=0.01)
        assert mine[f'Recall.{name}'] == pytest.approx(100 * tp / (tp + fn), abs=0.01)
        assert mine[f'Specificity.{name}'] == pytest.approx(100 * tn / (tn + fp), abs=0.01)
        assert mine[f'IoU.{name}'] == pytest.approx(100 * tp / (tp + fp + fn), abs=0.01)


def test_dice_is_defined_wherever_its_denominator_is_not_zero():
    """Four classes: present and predicted (a), present but never predicted (b), absent but
    predicted (c), absent and not predicted (d). F1 is Dice, as mmseg's mDice; precision and
    recall are NaN only where their own denominators are 0, and mF1 agrees with mmseg."""
    gt = np.array([[0, 0, 1, 1, 255]])
    pred = np.array([[0, 2, 0, 2, 3]])  # the ignored pixel's prediction does not count
    sample = dict(pred_sem_seg=dict(data=torch.from_numpy(pred)[None]),
                  gt_sem_seg=dict(data=torch.from_numpy(gt)[None]))
    classes = ('a', 'b', 'c', 'd')
    ours, reference = SegmentationMetric(), IoUMetric(iou_metrics=['mIoU', 'mDice'])
    for metric in (ours, reference):
        metric.dataset_meta = dict(classes=classes)
        metric.process([], [sample])
    mine = ours.compute_metrics(ours.results)
    assert mine['F1.a'] == pytest.approx(50.0) and mine['F1.b'] == 0.0 and mine['F1.c'] == 0.0
    assert np.isnan(mine['F1.d'])
    assert np.isnan(mine['Precision.b']) and mine['Precision.c'] == 0.0  # b never predicted: NaN
    assert mine['Recall.b'] == 0.0 and np.isnan(mine['Recall.c'])  # c absent: NaN
    assert mine['mF1'] == pytest.approx(reference.compute_metrics(reference.results)['mDice'], abs=0.01)


def test_metric_scores_mmdet_s_semantic_results_alike():
    """A panoptic model's semantic result in mmdet's samples (``sem_seg``, not ``data``) gives the
    same metrics as in mmseg's; aAcc is the pixel accuracy (mmdet's SemSegMetric reports mAcc as it)."""
    samples = _samples(np.random.default_rng(1), 3)
    mmdet_samples = [{key: dict(sem_seg=sample[key]['data']) for key in sample} for sample in samples]
    metrics = []
    for batch in (samples, mmdet_samples):
        metric = SegmentationMetric()
        metric.dataset_meta = dict(classes=('a', 'b', 'c', 'd', 'e'))
        metric.process([], batch)
        metrics.append(metric.compute_metrics(metric.results))
    assert metrics[0] == metrics[1]
    pred = np.concatenate([s['pred_sem_seg']['data'].numpy().ravel() for s in samples])
    gt = np.concatenate([s['gt_sem_seg']['data'].numpy().ravel() for s in samples])
    assert metrics[1]['aAcc'] == pytest.approx(100 * np.mean(pred[gt != 255] == gt[gt != 255]), abs=0.01)


@pytest.mark.slow
def test_unet_trains_with_val_loss_and_keeps_best_by_loss(mini_env, tmp_path):
    run_tool('tools/train.py', 'configs/unet_r34.py', '--work-dir', str(tmp_path), '--cfg-options', *SMALL_UNET,
             'train_cfg.max_epochs=2', 'default_hooks.checkpoint.save_best=loss',
             'default_hooks.checkpoint.rule=less', env=mini_env)
    log = open(glob.glob(f'{tmp_path}/*/*.log')[0]).read()
    val_lines = [line for line in log.splitlines() if 'Epoch(val) [' in line and 'mIoU' in line]
    assert len(val_lines) == 2 and all(' loss: ' in line and 'mF1:' in line for line in val_lines)
    assert len(glob.glob(f'{tmp_path}/best_loss_epoch_*.pth')) == 1
    scalars = [json.loads(line) for line in open(glob.glob(f'{tmp_path}/*/vis_data/scalars.json')[0])]
    assert sum('loss' in s and 'mIoU' in s for s in scalars) == 2  # val/loss recorded each epoch


CV = ['train_cfg.max_epochs=1', 'cv.final_model=False']


@pytest.mark.slow
def test_cross_validation_runner(three_folds_alone, mini_env, tmp_path):
    """The folds of ``three_folds_alone`` (cv5's first three, one process): each validated on its
    held-out fold, mean ± std tables; a re-run skips finished folds and resumes an interrupted one;
    a changed config is refused instead of mixed with the old folds."""
    for k in range(3):
        result = json.load(open(three_folds_alone / f'fold_{k}' / 'result.json'))
        assert result['checkpoint'].endswith('.pth') and 'mIoU' in result['metrics']
        val_list = open(osp.join(mini_env['CITYSCAPES_ROOT'], f'splits/cv5/fold{k}_val.txt')).read().split()
        log = open(glob.glob(f'{three_folds_alone}/fold_{k}/*/*.log')[0]).read()
        n = len(val_list)
        assert f'Iter(val) [{n}/{n}]' in log or f'Epoch(val) [1][{n}/{n}]' in log
    rows = {r['metric']: r for r in json.load(open(three_folds_alone / 'cv_results.json'))}
    folds = [json.load(open(three_folds_alone / f'fold_{k}' / 'result.json'))['metrics']['mIoU'] for k in range(3)]
    assert rows['mIoU']['mean'] == pytest.approx(np.mean(folds))
    assert rows['mIoU']['std'] == pytest.approx(np.std(folds, ddof=1))
    assert 'mIoU' in table_rows(open(three_folds_alone / 'cv_results.md').read()) and 'IoU.road' in rows

    # finished folds are skipped; an interrupted one resumes from its checkpoint (in a copy of the runs)
    work_dir = tmp_path / 'cv'
    shutil.copytree(three_folds_alone, work_dir)
    (work_dir / 'fold_2' / 'result.json').unlink()
    options = ['--cfg-options', *SMALL_UNET, *CV, 'randomness.seed=0', 'cv.folds=3']
    proc = run_tool('tools/train.py', 'configs/unet_r34_cv5.py', '--work-dir', str(work_dir), *options, env=mini_env)
    assert proc.stdout.count('done, skipped') == 2
    assert 'resumed epoch: 1' in open(sorted(glob.glob(f'{work_dir}/fold_2/*/*.log'))[-1]).read()

    # a changed config is refused instead of mixed with the old folds
    proc = run_tool('tools/train.py', 'configs/unet_r34_cv5.py', '--work-dir', str(work_dir), *options,
                    'optim_wrapper.optimizer.lr=0.001', env=mini_env, check=False)
    assert proc.returncode != 0 and 'different config' in proc.stderr


def dist_train_cv(mini_env, work_dir, *options, wait=True):
    """tools/dist_train.sh configs/unet_r34_cv5.py with two gloo processes (torchrun gives each one thread)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    args = ['bash', 'tools/dist_train.sh', 'configs/unet_r34_cv5.py', '2', '--work-dir', str(work_dir),
            '--cfg-options', *SMALL_UNET, *CV, 'randomness.seed=0', *options]
    env = dict(mini_env, PORT=str(port), PYTHON=sys.executable)
    if not wait:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    ranks = [line for line in proc.stderr.splitlines() if line.startswith(('[rank', 'error:'))]
    assert proc.returncode == 0, '\n'.join(ranks[-60:]) + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_cross_validation_under_dist_train(mini_env, tmp_path):
    """Two folds of cv5 with two gloo processes and cv.parallel=False: each fold trains distributed, one table."""
    dist_train_cv(mini_env, tmp_path, 'cv.folds=2', 'cv.parallel=False')
    for k in range(2):
        log = open(glob.glob(f'{tmp_path}/fold_{k}/*/*.log')[0]).read()
        assert 'Distributed training: True' in log and 'GPU number: 2' in log
    rows = {r['metric']: r for r in json.load(open(tmp_path / 'cv_results.json'))}
    assert set(rows['mIoU']) == {'metric', 'fold_0', 'fold_1', 'mean', 'std'}
    assert not osp.exists(tmp_path / 'fold_2')


@pytest.fixture(scope='module')
def three_folds_alone(mini_env, tmp_path_factory):
    """Three folds of cv5 trained one after the other in one process of one thread."""
    work_dir = tmp_path_factory.mktemp('cv_alone')
    run_tool('tools/train.py', 'configs/unet_r34_cv5.py', '--work-dir', str(work_dir), '--cfg-options',
             *SMALL_UNET, *CV, 'randomness.seed=0', 'cv.folds=3', env=dict(mini_env, OMP_NUM_THREADS='1'))
    return work_dir


def assert_same_folds(work_dir, reference, folds=3):
    """Every fold's metrics and best weights are those of the reference run."""
    for k in range(folds):
        ours, theirs = (json.load(open(d / f'fold_{k}' / 'result.json')) for d in (work_dir, reference))
        assert ours['metrics'] == theirs['metrics'], f'fold_{k}'
        weights = [torch.load(r['checkpoint'], weights_only=False)['state_dict'] for r in (ours, theirs)]
        assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[1]), f'fold_{k}'
    assert json.load(open(work_dir / 'cv_results.json')) == json.load(open(reference / 'cv_results.json'))


@pytest.mark.slow
def test_cross_validation_side_by_side_survives_kill_9(three_folds_alone, mini_env, tmp_path):
    """cv.parallel (the default) under dist_train.sh: each process trains whole folds, not
    distributed, 3 folds on 2 processes. kill -9 of the process training fold 1: torchrun stops the
    other one, which saves its iteration (PreemptionHook) within torchrun's grace period; a re-run
    skips what finished, resumes the rest, and gives the metrics, weights and table of the folds
    trained one after the other in one process."""
    proc = dist_train_cv(mini_env, tmp_path, 'cv.folds=3', wait=False)
    deadline = time.time() + 600
    lock = tmp_path / 'fold_1' / '.lock'
    while time.time() < deadline and not (glob.glob(f'{tmp_path}/fold_1/*/*.log') and 'Epoch(train) [1][2/4]' in
                                           open(glob.glob(f'{tmp_path}/fold_1/*/*.log')[0]).read()):
        time.sleep(0.2)
    victim = int(re.search(r'process (\d+)', lock.read_text()).group(1))
    other = int(re.search(r'process (\d+)', (tmp_path / 'fold_0' / '.lock').read_text()).group(1))
    assert other != victim  # both processes train folds
    os.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    try:
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0 and time.time() - killed_at < 120, 'the launch outlived its killed process'
    assert not osp.exists(tmp_path / 'cv_results.json') and not osp.exists(tmp_path / 'fold_1' / 'result.json')
    finished = [k for k in range(3) if osp.isfile(tmp_path / f'fold_{k}' / 'result.json')]
    stopped = [k for k in range(3) if k not in finished and osp.isfile(tmp_path / f'fold_{k}' / 'last_checkpoint')]
    assert 'exitcode  : 75' in stderr or not stopped, stderr[-3000:]  # stopped by the signal, with a checkpoint
    print(f'finished: {finished}, stopped with a checkpoint: {stopped}')
    runs = {k: len(glob.glob(f'{tmp_path}/fold_{k}/*/*.log')) for k in range(3)}
    rerun = dist_train_cv(mini_env, tmp_path, 'cv.folds=3')
    assert rerun.stdout.count('3-fold cross-validation') == 1
    for k in range(3):  # not distributed: every fold trains in one process, its 4 steps in one run or two
        logs = [open(path).read() for path in glob.glob(f'{tmp_path}/fold_{k}/*/*.log')]
        assert all('Distributed training: False' in log for log in logs)
        assert any('Epoch(train) [1][2/4]' in log for log in logs)
    for k in range(3):  # one more training (a log) for each fold not finished
        assert len(glob.glob(f'{tmp_path}/fold_{k}/*/*.log')) == runs[k] + (k not in finished), f'fold_{k}'
    for k in stopped:
        assert 'resumed epoch: 0' in open(sorted(glob.glob(f'{tmp_path}/fold_{k}/*/*.log'))[-1]).read()
    assert_same_folds(tmp_path, three_folds_alone)
