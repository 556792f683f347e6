"""tools/train.py, tools/test.py and tools/dist_train.sh on the generated dataset."""
import csv
import glob
import json
import os
import os.path as osp
import re
import shutil
import signal
import socket
import subprocess
import time

import cv2
import numpy as np
import pytest

from conftest import PY, REPO, run_tool

SEMANTIC = 'configs/mini/deeplabv3_r18-d8_mini.py'
INSTANCE = 'configs/mini/mask-rcnn_r18_fpn_mini.py'


def short_run(iters, interval=None):
    interval = interval or iters
    return ['--cfg-options', f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={interval}', 'default_hooks.logger.interval=1']


@pytest.fixture(scope='module')
def semantic_run(mini_env, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('semantic')
    run_tool('tools/train.py', SEMANTIC, '--work-dir', str(work_dir), *short_run(4), env=mini_env)
    return work_dir


def csv_values(path):
    with open(path) as f:
        return {(row['metric'], row['class']): row['value'] for row in csv.DictReader(f)}


def assert_overlays(show_dir, mini_root, prediction_drawn):
    """One PNG per val image: image | ground truth | prediction, each drawn panel differing from the image."""
    images = sorted(glob.glob(f'{mini_root}/leftImg8bit/val/*/*.png'))
    assert sorted(os.listdir(show_dir)) == sorted(osp.basename(p) for p in images)
    for path in images:
        image = cv2.imread(path)
        overlay = cv2.imread(osp.join(show_dir, osp.basename(path)))
        height, width = image.shape[:2]
        assert overlay.shape == (height, 3 * width, 3), path
        panels = [overlay[:, i * width:(i + 1) * width].astype(int) for i in range(3)]
        assert np.abs(panels[0] - image).max() <= 1
        assert np.abs(panels[1] - image).mean() > 1  # ground truth drawn
        assert (np.abs(panels[2] - image).mean() > 1) == prediction_drawn


@pytest.fixture(scope='module')
def semantic_tested(semantic_run, mini_env, tmp_path_factory):
    """tools/test.py on the semantic run, with overlays: (its stdout, the overlay folder)."""
    show_dir = tmp_path_factory.mktemp('semantic_show')
    proc = run_tool('tools/test.py', SEMANTIC, str(semantic_run / 'iter_4.pth'), '--work-dir', str(semantic_run),
                    '--show-dir', str(show_dir), env=mini_env)
    return proc.stdout, show_dir


def test_semantic_train_and_test_table(semantic_run, semantic_tested, mini_root):
    checkpoint = semantic_run / 'iter_4.pth'
    assert open(semantic_run / 'last_checkpoint').read().strip() == str(checkpoint)
    stdout, show_dir = semantic_tested
    metrics = json.load(open(semantic_run / 'test_iter_4.json'))
    assert {'aAcc', 'mIoU', 'mAcc'} <= set(metrics)
    assert 0 <= metrics['mIoU'] <= 100
    table = open(semantic_run / 'test_iter_4.md').read()
    assert f'| mIoU | {metrics["mIoU"]:.4f} |' in table
    assert '| metric | value |' in stdout
    assert float(csv_values(semantic_run / 'test_iter_4.csv')[('mIoU', '')]) == pytest.approx(metrics['mIoU'])
    assert_overlays(show_dir, mini_root, prediction_drawn=True)


@pytest.fixture(scope='module')
def instance_run(mini_env, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('instance')
    run_tool('tools/train.py', INSTANCE, '--work-dir', str(work_dir), *short_run(2), env=mini_env)
    return work_dir


@pytest.fixture(scope='module')
def instance_tested(instance_run, mini_env, tmp_path_factory):
    """tools/test.py on the instance run, with overlays: the overlay folder."""
    show_dir = tmp_path_factory.mktemp('instance_show')
    run_tool('tools/test.py', INSTANCE, str(instance_run / 'iter_2.pth'), '--work-dir', str(instance_run),
             '--show-dir', str(show_dir), env=mini_env)
    return show_dir


def test_instance_train_and_test_table(instance_run, instance_tested, mini_root):
    metrics = json.load(open(instance_run / 'test_iter_2.json'))
    assert {'coco/bbox_mAP', 'coco/segm_mAP', 'coco/segm_mAP_50', 'coco/segm_mAP_s'} <= set(metrics)
    assert {'cityscapes/mAP', 'cityscapes/AP50', 'cityscapes/AP.car'} <= set(metrics)
    classes = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
    assert {f'coco/{m}_AP.{c}' for m in ('bbox', 'segm') for c in classes} <= set(metrics)
    values = csv_values(instance_run / 'test_iter_2.csv')
    assert values[('coco/segm_AP', 'car')] == str(metrics['coco/segm_AP.car'])
    assert '| class | coco/bbox_AP | coco/segm_AP | cityscapes/AP | cityscapes/AP50 |' in \
        open(instance_run / 'test_iter_2.md').read()
    assert not osp.exists(osp.join(REPO, 'matches.json'))
    assert_overlays(instance_tested, mini_root, prediction_drawn=False)  # no box above 0.3 after 2 iterations


def test_infer_semantic_official_format(semantic_run, semantic_tested, mini_env, mini_root, tmp_path):
    """infer.py's label-id PNGs, scored by eval_cityscapes.py, give test.py's mIoU; overlays have 3 panels."""
    checkpoint = str(semantic_run / 'iter_4.pth')
    miou = json.load(open(semantic_run / 'test_iter_4.json'))['mIoU']
    run_tool('tools/infer.py', SEMANTIC, checkpoint, str(mini_root / 'leftImg8bit' / 'val'), '--out',
             str(tmp_path / 'out'), env=mini_env)
    results = sorted(glob.glob(str(tmp_path / 'out' / 'results' / '*.png')))
    assert len(results) == 4 and set(np.unique(cv2.imread(results[0], cv2.IMREAD_UNCHANGED))) <= set(range(7, 34))
    run_tool('tools/analysis_tools/eval_cityscapes.py', '--task', 'semantic', '--gt-root',
             str(mini_root / 'gtFine' / 'val'), '--pred-dir', str(tmp_path / 'out' / 'results'),
             '--out', str(tmp_path / 'official.json'))
    assert 100 * json.load(open(tmp_path / 'official.json'))['averageScoreClasses'] == pytest.approx(miou, abs=0.01)
    assert_overlays(tmp_path / 'out' / 'overlays', mini_root, prediction_drawn=True)


def test_infer_instance_official_format(instance_run, mini_env, mini_root, tmp_path):
    """infer.py's instance files, scored by eval_cityscapes.py, give test.py's in-memory Cityscapes AP."""
    checkpoint, keep_all = str(instance_run / 'iter_2.pth'), ('--cfg-options', 'model.test_cfg.rcnn.score_thr=0')
    run_tool('tools/test.py', INSTANCE, checkpoint, '--work-dir', str(tmp_path), *keep_all, env=mini_env)
    metrics = json.load(open(instance_run / 'test_iter_2.json'))
    run_tool('tools/infer.py', INSTANCE, checkpoint, str(mini_root / 'leftImg8bit' / 'val'), '--out',
             str(tmp_path / 'out'), *keep_all, env=mini_env)
    txt_files = sorted(glob.glob(str(tmp_path / 'out' / 'results' / '*_pred.txt')))
    lines = [line.split() for path in txt_files for line in open(path)]
    assert len(txt_files) == 4 and lines and all(osp.isfile(tmp_path / 'out' / 'results' / line[0]) for line in lines)
    run_tool('tools/analysis_tools/eval_cityscapes.py', '--task', 'instance', '--gt-root',
             str(mini_root / 'gtFine' / 'val'), '--pred-dir', str(tmp_path / 'out' / 'results'),
             '--out', str(tmp_path / 'official.json'))
    result = json.load(open(tmp_path / 'official.json'))
    assert result['mAP'] == pytest.approx(metrics['cityscapes/mAP'], abs=1e-6)
    assert result['AP50'] == pytest.approx(metrics['cityscapes/AP50'], abs=1e-6)


def test_infer_bad_inputs_are_one_line(semantic_run, mini_env, tmp_path):
    checkpoint = str(semantic_run / 'iter_4.pth')
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    for images, expected in (('no/such/folder', 'no such image or folder: no/such/folder'),
                             (str(tmp_path / 'broken.png'), f'cannot predict {tmp_path / "broken.png"}')):
        proc = run_tool('tools/infer.py', SEMANTIC, checkpoint, images, '--out', str(tmp_path / 'out'),
                        env=mini_env, check=False)
        assert proc.returncode == 1 and expected in proc.stderr.strip().splitlines()[-1], proc.stderr
    assert not glob.glob(str(tmp_path / 'out' / '**' / '*.png'), recursive=True)


def test_default_work_dir_is_named_after_the_config(mini_env, tmp_path):
    subprocess.run([PY, osp.join(REPO, 'tools/train.py'), osp.join(REPO, SEMANTIC), *short_run(1)],
                   cwd=tmp_path, env=mini_env, check=True, capture_output=True)
    assert osp.isfile(tmp_path / 'work_dirs' / 'deeplabv3_r18-d8_mini' / 'iter_1.pth')


def test_wrong_config_key_names_the_key(mini_env, tmp_path):
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), '--cfg-options',
                    'model.backbone.deptth=18', env=mini_env, check=False)
    assert proc.returncode != 0 and 'deptth' in proc.stderr


def test_missing_checkpoint_is_one_line(mini_env):
    proc = run_tool('tools/test.py', SEMANTIC, 'no/such.pth', env=mini_env, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == 'error: checkpoint not found: no/such.pth'


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_processes_on_cpu(mini_env, tmp_path):
    env = dict(mini_env, PORT=str(_free_port()), PYTHON=PY)
    proc = subprocess.run(['bash', 'tools/dist_train.sh', SEMANTIC, '2', '--work-dir', str(tmp_path),
                           *short_run(3)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = open(glob.glob(f'{tmp_path}/*/*.log')[0]).read()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert osp.isfile(tmp_path / 'iter_3.pth')


def test_checkpoints_need_and_get_the_allow_list(semantic_run):
    load = 'import torch; c = torch.load({!r}); print(type(c["message_hub"]["log_scalars"]["train/loss"]).__name__)'
    ckpt = str(semantic_run / 'iter_4.pth')
    bare = subprocess.run([PY, '-c', load.format(ckpt)], capture_output=True, text=True)
    assert bare.returncode != 0 and 'weights_only' in bare.stderr  # what mmengine alone hits
    fixed = subprocess.run([PY, '-c', 'import projects.mmcityscapes; ' + load.format(ckpt)], cwd=REPO,
                           capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip() == 'HistoryBuffer'


def test_kill_and_resume(mini_env, tmp_path):
    args = [PY, 'tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), *short_run(12, interval=2)]
    proc = subprocess.Popen(args, cwd=REPO, env=mini_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not osp.exists(tmp_path / 'last_checkpoint') and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    latest = open(tmp_path / 'last_checkpoint').read().strip()
    done = int(re.search(r'iter_(\d+)\.pth', latest).group(1))
    assert done < 12, 'the run was killed before it finished'
    run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), '--resume', *short_run(12, interval=2),
             env=mini_env)
    log = open(sorted(glob.glob(f'{tmp_path}/*/*.log'))[-1]).read()
    assert f'resumed epoch: 0, iter: {done}' in log
    assert f'Iter(train) [{done + 1:>2}/12]' in log and f'Iter(train) [{done:>2}/12]' not in log
    assert osp.isfile(tmp_path / 'iter_12.pth')


def assert_picture(path, min_size):
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] >= min_size[0] and image.shape[1] >= min_size[1], path
    assert image.std() > 10  # not blank


def test_plot_curves(semantic_run, tmp_path):
    proc = run_tool('tools/analysis_tools/plot_curves.py', str(semantic_run), '--out', str(tmp_path / 'curves.png'))
    entries = [json.loads(line) for path in glob.glob(str(semantic_run / '*' / 'vis_data' / 'scalars.json'))
               for line in open(path)]
    n_train = sum('lr' in e for e in entries)
    assert n_train > 0 and f'{n_train} training entries' in proc.stdout and 'mIoU' in proc.stdout
    assert_picture(tmp_path / 'curves.png', (300, 1000))


def test_results_table_gathers_tests_and_logs(semantic_run, semantic_tested, instance_run, instance_tested, tmp_path):
    runs = tmp_path / 'runs'
    runs.mkdir()
    for name, run in (('semantic', semantic_run), ('instance', instance_run)):
        os.symlink(run, runs / name)
    logs_only = runs / 'logs_only'  # a run that was trained but never tested
    logs_only.mkdir()
    training_log = next(p for p in semantic_run.iterdir() if (p / 'vis_data' / 'scalars.json').is_file())
    shutil.copytree(training_log, logs_only / '20260101_000000')
    run_tool('tools/analysis_tools/results_table.py', str(runs), '--out', str(tmp_path / 'table'))
    rows = {line.split(' | ')[0][2:]: line for line in open(tmp_path / 'table.md') if line.startswith('| runs/')}
    semantic = json.load(open(semantic_run / 'test_iter_4.json'))
    instance = json.load(open(instance_run / 'test_iter_2.json'))
    assert f'| test | {semantic["mIoU"]:.2f} |' in rows['runs/semantic/iter_4']
    assert f'{100 * instance["cityscapes/mAP"]:.2f}' in rows['runs/instance/iter_2']
    last_val = [json.loads(line) for line in open(next(logs_only.glob('*/vis_data/scalars.json')))
                if 'lr' not in json.loads(line)][-1]
    assert f'| last val | {last_val["mIoU"]:.2f} |' in rows['runs/logs_only']
    assert_picture(tmp_path / 'table.png', (200, 500))
