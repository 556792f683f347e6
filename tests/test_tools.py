"""tools/train.py, tools/test.py and tools/dist_train.sh on the generated dataset."""
import csv
import glob
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import signal
import socket
import subprocess
import time
import zipfile

import cv2
import numpy as np
import pytest
import torch

from mmcityscapes.utils.checkpoint import allow_mmengine_checkpoints, load_weights

from conftest import PY, REPO, run_tool, table_rows

pytestmark = pytest.mark.slow  # every test here runs a tool on a model

SEMANTIC = 'configs/mini/deeplabv3_r18_mini.py'
INSTANCE = 'configs/mini/maskrcnn_r18_mini.py'


def short_run(iters, interval=None):
    interval = interval or iters
    return ['--cfg-options', f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={interval}', 'default_hooks.logger.interval=1']


@pytest.fixture(scope='module')
def semantic_run(mini_env, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('semantic')
    run_tool('tools/train.py', SEMANTIC, '--work-dir', str(work_dir), '--tensorboard', *short_run(4), env=mini_env)
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
    metrics = json.load(open(semantic_run / 'test_deeplabv3_r18_mini_iter_4.json'))
    assert {'aAcc', 'mIoU', 'mAcc'} <= set(metrics)
    assert 0 <= metrics['mIoU'] <= 100
    table = open(semantic_run / 'test_deeplabv3_r18_mini_iter_4.md').read()
    assert table_rows(table)['mIoU'] == [f'{metrics["mIoU"]:.2f}']  # mmseg's metrics: percent already
    assert not osp.exists(semantic_run / 'test_deeplabv3_r18_mini_iter_4.png')  # mmseg's IoUMetric: no per-class value
    assert table_rows(stdout)['metric'] == ['%'] and f'evaluated_on: {metrics["evaluated_on"]}\n' in stdout
    assert float(csv_values(semantic_run / 'test_deeplabv3_r18_mini_iter_4.csv')[('mIoU', '')]) == pytest.approx(metrics['mIoU'])
    assert_overlays(show_dir, mini_root, prediction_drawn=True)


def test_tensorboard_logs_what_scalars_json_logs(semantic_run):
    """--tensorboard: the TensorBoard event file holds every loss and validation value of the run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    (events,) = glob.glob(str(semantic_run / '*' / 'vis_data' / 'events.out.tfevents.*'))
    accumulator = EventAccumulator(events)
    accumulator.Reload()
    (scalars,) = glob.glob(str(semantic_run / '*' / 'vis_data' / 'scalars.json'))
    logged = [json.loads(line) for line in open(scalars)]
    losses = [entry['loss'] for entry in logged if 'loss' in entry]
    assert len(losses) == 4
    assert [round(e.value, 4) for e in accumulator.Scalars('loss')] == [round(v, 4) for v in losses]
    assert accumulator.Scalars('mIoU')[-1].value == pytest.approx(logged[-1]['mIoU'], abs=1e-4)


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
    metrics = json.load(open(instance_run / 'test_maskrcnn_r18_mini_iter_2.json'))
    assert {'coco/bbox_mAP', 'coco/segm_mAP', 'coco/segm_mAP_50', 'coco/segm_mAP_s'} <= set(metrics)
    assert {'cityscapes/mAP', 'cityscapes/AP50', 'cityscapes/AP.car'} <= set(metrics)
    classes = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
    assert {f'coco/{m}_AP.{c}' for m in ('bbox', 'segm') for c in classes} <= set(metrics)
    assert_picture(instance_run / 'test_maskrcnn_r18_mini_iter_2.png', (300, 600))  # per-class AP bars, 4 panels
    values = csv_values(instance_run / 'test_maskrcnn_r18_mini_iter_2.csv')
    assert values[('coco/segm_AP', 'car')] == str(metrics['coco/segm_AP.car'])
    rows = table_rows(open(instance_run / 'test_maskrcnn_r18_mini_iter_2.md').read())
    assert rows['class'] == ['coco/bbox_AP', 'coco/segm_AP', 'cityscapes/AP', 'cityscapes/AP50']
    assert rows['coco/segm_mAP'] == [f'{100 * metrics["coco/segm_mAP"]:.2f}']  # fractions shown in percent
    assert rows['car'][1] == f'{100 * metrics["coco/segm_AP.car"]:.2f}'
    assert not osp.exists(osp.join(REPO, 'matches.json'))
    assert_overlays(instance_tested, mini_root, prediction_drawn=False)  # no box above 0.3 after 2 iterations


def test_test_out_dumps_raw_predictions(instance_run, mini_env, mini_root, tmp_path):
    """--out FILE.pkl: one entry per val image with its predicted instances (RLE masks), as mmdet's
    --out writes them; a name that is not .pkl is refused before anything runs."""
    import pickle
    out = tmp_path / 'predictions.pkl'
    run_tool('tools/test.py', INSTANCE, str(instance_run / 'iter_2.pth'), '--work-dir', str(tmp_path), '--out', str(out),
             '--cfg-options', 'model.test_cfg.rcnn.score_thr=0', env=mini_env)
    predictions = pickle.load(open(out, 'rb'))
    images = sorted(glob.glob(f'{mini_root}/leftImg8bit/val/*/*.png'))
    assert sorted(p['img_path'] for p in predictions) == images
    instances = predictions[0]['pred_instances']
    assert len(instances['scores']) == len(instances['masks']) > 0 and 'counts' in instances['masks'][0]
    assert not glob.glob(str(tmp_path / '.tmp*'))
    proc = run_tool('tools/test.py', INSTANCE, str(instance_run / 'iter_2.pth'), '--out', str(tmp_path / 'p.json'),
                    env=mini_env, check=False)
    assert proc.returncode == 2 and 'the file name must end with .pkl' in proc.stderr

    # the confusion matrix of those predictions: with no detection kept, every ground-truth box of
    # the val annotations (crowd regions aside) is a miss, in its class's background column
    run_tool('tools/analysis_tools/confusion_matrix.py', INSTANCE, str(out), '--score-thr', '1.1', env=mini_env)
    result = json.load(open(tmp_path / 'confusion_matrix.json'))
    coco = json.load(open(mini_root / 'annotations' / 'instancesonly_filtered_gtFine_val.json'))
    names = {c['id']: c['name'] for c in coco['categories']}
    boxes = [names[a['category_id']] for a in coco['annotations'] if not a['iscrowd']]
    counts = np.array(result['counts'])
    assert result['labels'][-1] == 'background' and counts.shape == (9, 9) and len(boxes) > 0
    assert counts[:, -1].tolist() == [boxes.count(c) for c in result['labels'][:-1]] + [0]
    assert counts[:, :-1].sum() == 0
    run_tool('tools/analysis_tools/confusion_matrix.py', INSTANCE, str(out), '--score-thr', '0', '--out-dir',
             str(tmp_path / 'kept'), env=mini_env)
    assert np.array(json.load(open(tmp_path / 'kept' / 'confusion_matrix.json'))['counts'])[:, :-1].sum() > 0
    assert_picture(tmp_path / 'kept' / 'confusion_matrix.png', (300, 300))


def test_semantic_confusion_matrix_holds_the_test_pixels(semantic_run, mini_env, tmp_path):
    """tools/test.py --out, then confusion_matrix.py: 19x19 pixel counts whose diagonal over their
    sum is the test's aAcc; a file that is not a predictions dump is one line."""
    out = tmp_path / 'predictions.pkl'
    run_tool('tools/test.py', SEMANTIC, str(semantic_run / 'iter_4.pth'), '--work-dir', str(tmp_path), '--out',
             str(out), env=mini_env)
    metrics = json.load(open(tmp_path / 'test_deeplabv3_r18_mini_iter_4.json'))
    proc = run_tool('tools/analysis_tools/confusion_matrix.py', SEMANTIC, str(out), env=mini_env)
    counts = np.array(json.load(open(tmp_path / 'confusion_matrix.json'))['counts'])
    assert counts.shape == (19, 19) and '4 images (pixels)' in proc.stdout
    assert round(100 * np.trace(counts) / counts.sum(), 2) == pytest.approx(metrics['aAcc'], abs=0.006)
    assert_picture(tmp_path / 'confusion_matrix.png', (400, 400))
    (tmp_path / 'bad.pkl').write_bytes(b'not a pickle')
    proc = run_tool('tools/analysis_tools/confusion_matrix.py', SEMANTIC, str(tmp_path / 'bad.pkl'), env=mini_env,
                    check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f'error: cannot read predictions {tmp_path}/bad.pkl')


def test_tta_of_one_view_equals_the_plain_test(semantic_run, semantic_tested, mini_env, tmp_path):
    """--tta runs the config's SegTTAModel: on a tta_pipeline of the test view alone it scores exactly
    the plain test, into its own table; a config without TTA (Mask R-CNN) is refused in one line."""
    config = tmp_path / 'one_view_tta.py'
    config.write_text(f"_base_ = {osp.join(REPO, SEMANTIC)!r}\n"
                      "tta_pipeline = [dict(type='LoadImageFromFile'), dict(type='TestTimeAug', transforms=[\n"
                      "    [dict(type='Resize', scale=(512, 256), keep_ratio=True)], [dict(type='LoadAnnotations')],\n"
                      "    [dict(type='PackSegInputs')]])]\n")
    run_tool('tools/test.py', str(config), str(semantic_run / 'iter_4.pth'), '--tta', '--work-dir', str(tmp_path),
             env=mini_env)
    tta = json.load(open(tmp_path / 'test_one_view_tta_iter_4_tta.json'))
    plain = json.load(open(semantic_run / 'test_deeplabv3_r18_mini_iter_4.json'))
    assert {k: v for k, v in tta.items() if k != 'evaluated_on'} == {k: v for k, v in plain.items() if k != 'evaluated_on'}
    proc = run_tool('tools/test.py', INSTANCE, str(semantic_run / 'iter_4.pth'), '--tta', env=mini_env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f'error: --tta: {INSTANCE} defines no tta_model')


def test_infer_semantic_official_format(semantic_run, semantic_tested, mini_env, mini_root, tmp_path):
    """infer.py's label-id PNGs, scored by eval_cityscapes.py, give test.py's mIoU; overlays have 3 panels."""
    checkpoint = str(semantic_run / 'iter_4.pth')
    miou = json.load(open(semantic_run / 'test_deeplabv3_r18_mini_iter_4.json'))['mIoU']
    run_tool('tools/infer.py', SEMANTIC, checkpoint, str(mini_root / 'leftImg8bit' / 'val'), '--out',
             str(tmp_path / 'out'), '--batch-size', '3', env=mini_env)  # 4 images: a batch of 3, one of 1
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
    metrics = json.load(open(tmp_path / 'test_maskrcnn_r18_mini_iter_2.json'))
    run_tool('tools/infer.py', INSTANCE, checkpoint, str(mini_root / 'leftImg8bit' / 'val'), '--out',
             str(tmp_path / 'out'), '--batch-size', '3', *keep_all, env=mini_env)
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
    for folder in ('a', 'b'):  # one name in two folders: one result would overwrite the other
        (tmp_path / folder).mkdir()
        (tmp_path / folder / 'img.png').write_bytes(b'')
    for images, expected in (('no/such/folder', 'no such image or folder: no/such/folder'),
                             (str(tmp_path / 'broken.png'), f'1 of 1 images could not be predicted (e.g. {tmp_path}/broken.png;'),
                             (str(tmp_path / 'a'), f'{tmp_path}/a/img.png and {tmp_path}/b/img.png have the same')):
        extra = [str(tmp_path / 'b')] if images.endswith('/a') else []
        proc = run_tool('tools/infer.py', SEMANTIC, checkpoint, images, *extra, '--out', str(tmp_path / 'out'),
                        env=mini_env, check=False)
        assert proc.returncode == 2 and expected in proc.stderr.strip().splitlines()[-1], proc.stderr
    proc = run_tool('tools/infer.py', SEMANTIC, checkpoint, str(tmp_path / 'a'), '--batch-size', '0', '--out',
                    str(tmp_path / 'out'), env=mini_env, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].endswith('--batch-size must be at least 1, not 0')
    assert not glob.glob(str(tmp_path / 'out' / '**' / '*.png'), recursive=True)


def test_infer_killed_and_rerun_gives_the_same_files(semantic_run, mini_env, mini_root, tmp_path):
    """kill -9 of infer.py after its first result, then a re-run: the same results as an
    uninterrupted run, and no temporary file of the killed process left (the official scripts
    would take one for a second prediction of its image)."""
    args = ['tools/infer.py', SEMANTIC, str(semantic_run / 'iter_4.pth'), str(mini_root / 'leftImg8bit' / 'val'),
            '--batch-size', '1', '--out']
    run_tool(*args, str(tmp_path / 'clean'), env=mini_env)
    killed = tmp_path / 'killed'
    proc = subprocess.Popen([PY, *args, str(killed)], cwd=REPO, env=mini_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not glob.glob(f'{killed}/results/*.png') and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = sorted(glob.glob(f'{killed}/results/*.png'))[0]
    stale = osp.join(osp.dirname(first), f'.tmp{proc.pid}_{osp.basename(first)}')  # as if killed mid-write
    shutil.copy(first, stale)
    run_tool(*args, str(killed), env=mini_env)
    clean = sorted(os.listdir(tmp_path / 'clean' / 'results'))
    assert sorted(os.listdir(killed / 'results')) == clean and len(clean) == 4
    for name in clean:
        assert np.array_equal(cv2.imread(str(killed / 'results' / name), cv2.IMREAD_UNCHANGED),
                              cv2.imread(str(tmp_path / 'clean' / 'results' / name), cv2.IMREAD_UNCHANGED)), name


def process_status(pid):
    """The fields of /proc/<pid>/status; empty once the process is gone."""
    try:
        return dict(line.split(':\t', 1) for line in open(f'/proc/{pid}/status').read().splitlines() if ':\t' in line)
    except OSError:
        return {}


def alive(pid):
    return not process_status(pid).get('State', 'Z').startswith('Z')  # a zombie has ended


def children(pid):
    """Live child processes of ``pid``."""
    pids = (int(osp.basename(path)) for path in glob.glob('/proc/[0-9]*'))
    return [child for child in pids if process_status(child).get('PPid', '').strip() == str(pid) and alive(child)]


def test_dataloader_workers_die_with_a_killed_training(mini_env, tmp_path):
    """kill -9 of tools/train.py alone (not its group) takes its dataloader workers with it."""
    proc = subprocess.Popen([PY, 'tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), *short_run(400)], cwd=REPO,
                            env=mini_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not any('Iter(train)' in open(log).read() for log in glob.glob(f'{tmp_path}/*/*.log')) and \
                time.time() < deadline:
            time.sleep(0.5)
        workers = children(proc.pid)
        assert len(workers) >= 2  # the config's two dataloader workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 10
        while any(alive(w) for w in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert time.time() < deadline, 'dataloader workers outlived the killed training'
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_one_training_per_work_dir(mini_env, tmp_path):
    """A second training into a busy work dir stops with one line naming the first; once the
    first is killed (-9), the work dir is free again."""
    args = [PY, 'tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), *short_run(400)]
    first = subprocess.Popen(args, cwd=REPO, env=mini_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.time() + 300
    while not glob.glob(f'{tmp_path}/*/*.log') and time.time() < deadline:
        time.sleep(0.2)
    second = run_tool(*args[1:], env=mini_env, check=False)
    assert second.returncode == 2 and second.stderr.strip().splitlines()[-1] == \
        f'error: {tmp_path} is in use by process {first.pid} on {socket.gethostname()}: wait for it, stop it, ' \
        'or pass another --work-dir'
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    third = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), *short_run(1), env=mini_env)
    assert third.returncode == 0 and osp.isfile(tmp_path / 'iter_1.pth')


def test_infer_one_pixel_image(semantic_run, mini_env, mini_root, tmp_path):
    """A 1x1 image gets its 1x1 result; mmseg's visualizer cannot draw it, so no overlay. Batched
    with an image of another size, each gets its own forward pass (mmseg cannot stack them)."""
    cv2.imwrite(str(tmp_path / 'one.png'), np.full((1, 1, 3), 128, np.uint8))
    other = sorted(glob.glob(f'{mini_root}/leftImg8bit/val/*/*.png'))[0]
    shutil.copy(other, tmp_path / 'other.png')
    proc = run_tool('tools/infer.py', SEMANTIC, str(semantic_run / 'iter_4.pth'), str(tmp_path / 'one.png'),
                    str(tmp_path / 'other.png'), '--batch-size', '2', '--out', str(tmp_path / 'out'), env=mini_env)
    assert cv2.imread(str(tmp_path / 'out' / 'results' / 'one.png'), cv2.IMREAD_UNCHANGED).shape == (1, 1)
    assert cv2.imread(str(tmp_path / 'out' / 'results' / 'other.png'), cv2.IMREAD_UNCHANGED).shape == \
        cv2.imread(other).shape[:2]
    assert 'no overlay for the one-pixel image' in proc.stdout + proc.stderr


def test_resume_skips_a_truncated_latest_checkpoint(mini_env, tmp_path):
    """--resume onto a truncated latest checkpoint resumes from the previous one, saying so;
    --resume with no checkpoint at all says it trains from scratch."""
    args = ['tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), *short_run(4, interval=2)]
    run_tool(*args, env=mini_env)
    latest = tmp_path / 'iter_4.pth'
    latest.write_bytes(latest.read_bytes()[:50000])
    proc = run_tool(*args, '--resume', env=mini_env)
    assert f'{latest} is missing, truncated or corrupt: resuming from an earlier checkpoint' in proc.stderr
    assert 'resumed epoch: 0, iter: 2' in open(sorted(glob.glob(f'{tmp_path}/*/*.log'))[-1]).read()
    assert zipfile.is_zipfile(latest)  # trained again
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path / 'new'), '--resume', *short_run(1),
                    env=mini_env)
    assert f'--resume: no checkpoint in {tmp_path / "new"}, training from scratch' in proc.stderr


def test_default_work_dir_is_named_after_the_config(mini_env, tmp_path):
    subprocess.run([PY, osp.join(REPO, 'tools/train.py'), osp.join(REPO, SEMANTIC), *short_run(1)],
                   cwd=tmp_path, env=mini_env, check=True, capture_output=True)
    assert osp.isfile(tmp_path / 'work_dirs' / 'deeplabv3_r18_mini' / 'iter_1.pth')


@pytest.mark.parametrize('root', ['/data/cityscapes', "/data/it's here/cityscapes/"])
def test_dataset_root_without_slash_or_with_a_quote(root, monkeypatch):
    """$CITYSCAPES_ROOT is a path, however spelled: every config joins it, none pastes it into code."""
    from mmengine.config import Config
    monkeypatch.setenv('CITYSCAPES_ROOT', root)
    for config in ('configs/maskrcnn_stage2.py', 'configs/maskrcnn_stage3_valft.py', 'configs/unet_r34.py',
                   'configs/deeplabv3_r50.py', SEMANTIC, INSTANCE):
        cfg = Config.fromfile(osp.join(REPO, config))
        assert cfg.val_dataloader.dataset.data_root == root, config
        evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator, list) else [cfg.val_evaluator]
        for ann_file in (e.ann_file for e in evaluators if 'ann_file' in e):
            expected = osp.join(root, 'annotations', 'instancesonly_filtered_gtFine_val')
            assert osp.normpath(ann_file).startswith(osp.normpath(expected)), config


def test_wrong_config_key_names_the_key(mini_env, tmp_path):
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path), '--cfg-options',
                    'model.backbone.deptth=18', env=mini_env, check=False)
    assert proc.returncode != 0 and 'deptth' in proc.stderr


def test_config_errors_name_the_file(mini_env, tmp_path):
    """A syntax error names the config file and line; an option key that matches nothing warns
    with the closest existing key."""
    broken = tmp_path / 'broken.py'
    broken.write_text(f"_base_ = '{osp.join(REPO, SEMANTIC)}'\nmodel = dict(\n")
    proc = run_tool('tools/train.py', str(broken), '--work-dir', str(tmp_path / 'w'), env=mini_env, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(f'error: {broken}:2: ')
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path / 'w'), *short_run(1)[:-1],
                    'default_hooks.loger.interval=1', env=mini_env, check=False)
    assert (f'warning: --cfg-options default_hooks.loger.interval matches no key of {SEMANTIC}, it is added; '
            'did you mean default_hooks.logger.interval?') in proc.stderr


def test_publish_model_and_print_config(semantic_run, tmp_path):
    """publish_model.py keeps weights and meta under a sha256-suffixed name, once; print_config.py
    shows the config with --cfg-options applied."""
    allow_mmengine_checkpoints()
    checkpoint = semantic_run / 'iter_4.pth'
    for _ in range(2):
        proc = run_tool('tools/model_converters/publish_model.py', str(checkpoint), str(tmp_path / 'semantic.pth'))
    (published,) = tmp_path.glob('semantic-*.pth')
    assert published.name == f'semantic-{hashlib.sha256(published.read_bytes()).hexdigest()[:8]}.pth'
    assert proc.stdout.strip() == f'{published} is already published'
    assert set(torch.load(published, weights_only=True)) == {'meta', 'state_dict'}
    assert 'optimizer' in torch.load(checkpoint, weights_only=True)
    (state, meta), (original, original_meta) = load_weights(str(published)), load_weights(str(checkpoint))
    assert meta == original_meta and state.keys() == original.keys()
    assert all(torch.equal(state[k], original[k]) for k in state)
    proc = run_tool('tools/analysis_tools/print_config.py', SEMANTIC, '--cfg-options', 'train_cfg.max_iters=7')
    assert 'max_iters=7' in proc.stdout and "type='EncoderDecoder'" in proc.stdout  # from the bases


def test_browse_dataset_draws_ground_truth_for_both_families(mini_env, tmp_path):
    """--max samples (also through the instance config's RepeatDataset), each image | ground truth
    at the pipeline's output size, the ground truth drawn."""
    for config, split, shape in ((INSTANCE, 'train', None), (SEMANTIC, 'val', (256, 512))):
        out = tmp_path / split
        proc = run_tool('tools/analysis_tools/browse_dataset.py', config, '--split', split, '--max', '3',
                        '--out-dir', str(out), env=mini_env)
        assert f'3 {split} samples drawn into {out}' in proc.stdout
        drawn = sorted(out.iterdir())
        assert [p.name[:5] for p in drawn] == ['0000_', '0001_', '0002_']
        for path in drawn:
            picture = cv2.imread(str(path)).astype(int)
            height, width = picture.shape[0], picture.shape[1] // 2
            assert picture.shape[1] == 2 * width and (shape is None or (height, width) == shape)
            assert np.abs(picture[:, :width] - picture[:, width:]).mean() > 1


def test_get_flops_both_families():
    """Parameters exactly the built model's; a fully convolutional model's FLOPs grow with the
    image area; Mask R-CNN (RPN and RoI heads included) is counted too."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    def flops(config, *shape):
        out = run_tool('tools/analysis_tools/get_flops.py', config, '--shape', *map(str, shape)).stdout
        match = re.search(r'at \d+x\d+: ([\d.]+)([GM]) FLOPs, .* \((\d+) exactly\)', out)
        return float(match.group(1)) * (1e9 if match.group(2) == 'G' else 1e6), int(match.group(3))

    (small, params), (large, _) = flops(SEMANTIC, 128, 256), flops(SEMANTIC, 256, 512)
    init_default_scope('mmseg')
    model = MODELS.build(Config.fromfile(osp.join(REPO, SEMANTIC)).model)
    assert params == sum(p.numel() for p in model.parameters())
    assert large / small == pytest.approx(4, rel=0.05)
    assert flops(INSTANCE, 128, 256)[0] > 1e9


def test_missing_checkpoint_is_one_line(mini_env):
    proc = run_tool('tools/test.py', SEMANTIC, 'no/such.pth', env=mini_env, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == 'error: checkpoint not found: no/such.pth'


def test_missing_dataset_or_misspelled_hook_argument_stops_before_training(mini_env, tmp_path):
    """No dataset: one line naming the first missing file, for both families. A hook argument
    mmengine would only reject at the first checkpoint: one line, before any iteration."""
    absent = tmp_path / 'no_cityscapes'
    for config, missing in ((SEMANTIC, 'folder leftImg8bit/train'),
                            (INSTANCE, 'annotation file annotations/instancesonly_filtered_gtFine_train.json')):
        proc = run_tool('tools/train.py', config, '--work-dir', str(tmp_path / 'w'),
                        env=dict(mini_env, CITYSCAPES_ROOT=f'{absent}/'), check=False)
        kind, path = missing.rsplit(' ', 1)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
            f"error: train_dataloader: missing {kind} {absent}/{path} (no Cityscapes at '{absent}/': "
            'set CITYSCAPES_ROOT or see data/README.md)'), proc.stderr[-2000:]
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path / 'w'), *short_run(2),
                    'default_hooks.checkpoint.intervall=1', env=mini_env, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        "error: default_hooks.checkpoint: CheckpointHook takes no argument 'intervall'; did you mean interval?")
    assert not glob.glob(str(tmp_path / 'w' / '*.pth')) and 'Iter(train)' not in proc.stdout + proc.stderr


def test_tables_named_after_config_and_checkpoint_in_the_work_dir(semantic_run, semantic_tested, mini_env, tmp_path):
    """The same checkpoint tested under a second config: its own table, in the work dir; the first
    config's table is kept and nothing is written beside the checkpoint."""
    other = tmp_path / 'deeplabv3_other.py'
    other.write_text(f"_base_ = '{REPO}/{SEMANTIC}'\n")
    checkpoints = tmp_path / 'checkpoints'
    checkpoints.mkdir()
    shutil.copy(semantic_run / 'iter_4.pth', checkpoints)
    first = semantic_run / 'test_deeplabv3_r18_mini_iter_4.json'
    written = os.stat(first).st_mtime_ns
    run_tool('tools/test.py', str(other), str(checkpoints / 'iter_4.pth'), '--work-dir', str(tmp_path / 'work'),
             env=mini_env)
    assert os.listdir(checkpoints) == ['iter_4.pth'] and os.stat(first).st_mtime_ns == written
    assert {p.name for p in (tmp_path / 'work').glob('test_*')} == {
        f'test_deeplabv3_other_iter_4.{ext}' for ext in ('md', 'json', 'csv')}
    assert json.load(open(tmp_path / 'work' / 'test_deeplabv3_other_iter_4.json'))['mIoU'] == \
        json.load(open(first))['mIoU']


def test_checkpoint_of_another_model_or_truncated_is_refused(semantic_run, semantic_tested, mini_env, mini_root,
                                                             tmp_path):
    """A semantic checkpoint under a Mask R-CNN config would load with a warning and score 0;
    a truncated one would end in torch's advice to unpickle unsafely. Both: one line, no table."""
    checkpoint = semantic_run / 'iter_4.pth'
    table = semantic_run / 'test_deeplabv3_r18_mini_iter_4.json'  # the semantic config's, from semantic_tested
    written = os.stat(table).st_mtime_ns
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(checkpoint.read_bytes()[:100000])
    for tool in ('tools/test.py', 'tools/infer.py'):
        images = [str(mini_root / 'leftImg8bit' / 'val')] if tool.endswith('infer.py') else []
        out = ['--out', str(tmp_path / 'out')] if images else ['--work-dir', str(tmp_path / 'work')]
        proc = run_tool(tool, INSTANCE, str(checkpoint), *images, *out, env=mini_env, check=False)
        error = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 2 and error.startswith(f'error: {checkpoint} does not fit this model: ') and \
            'trained as deeplabv3_r18_mini_' in error, proc.stderr[-2000:]
        proc = run_tool(tool, SEMANTIC, str(truncated), *images, *out, env=mini_env, check=False)
        error = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 2 and error.startswith(f'error: cannot read checkpoint {truncated}: ')
        assert 'weights_only=False' not in proc.stderr and 'Traceback' not in proc.stderr
    assert os.stat(table).st_mtime_ns == written and not osp.exists(tmp_path / 'out')


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
    fixed = subprocess.run([PY, '-c', 'import mmcityscapes.components; ' + load.format(ckpt)], cwd=REPO,
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
    rows = table_rows(open(tmp_path / 'table.md').read())
    semantic = json.load(open(semantic_run / 'test_deeplabv3_r18_mini_iter_4.json'))
    instance = json.load(open(instance_run / 'test_maskrcnn_r18_mini_iter_2.json'))
    assert rows['runs/semantic/deeplabv3_r18_mini_iter_4'][:2] == ['test', f'{semantic["mIoU"]:.2f}']
    assert f'{100 * instance["cityscapes/mAP"]:.2f}' in rows['runs/instance/maskrcnn_r18_mini_iter_2']
    last_val = [json.loads(line) for line in open(next(logs_only.glob('*/vis_data/scalars.json')))
                if 'lr' not in json.loads(line)][-1]
    assert rows['runs/logs_only'][:2] == ['last val', f'{last_val["mIoU"]:.2f}']
    assert_picture(tmp_path / 'table.png', (200, 500))


def coco_shaped(instance_run, path):
    """The instance run's checkpoint with 80-class (COCO) class heads, saved at ``path``."""
    content = torch.load(instance_run / 'iter_2.pth', map_location='cpu', weights_only=False)
    state = content['state_dict']
    for key in [k for k in state if k.startswith(('roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg',
                                                      'roi_head.mask_head.conv_logits'))]:
        rows = {'fc_cls': 81, 'fc_reg': 320, 'conv_logits': 80}[key.split('.')[2]]
        state[key] = torch.zeros(rows, *state[key].shape[1:])
    torch.save(content, path)
    return path


def test_checkpoint_with_other_class_count_is_refused(instance_run, mini_env, mini_root, tmp_path):
    """A COCO-shaped (80-class) Mask R-CNN checkpoint has every key of the 8-class model: test.py
    and infer.py refuse it in one line naming a mismatched tensor, and write no table or result."""
    checkpoint = coco_shaped(instance_run, tmp_path / 'coco_shaped.pth')
    expected = (f'error: {checkpoint} does not fit this model: 6 of its ')
    for tool, extra in (('tools/test.py', ['--work-dir', str(tmp_path / 'work')]),
                        ('tools/infer.py', [str(mini_root / 'leftImg8bit' / 'val'), '--out', str(tmp_path / 'out')])):
        proc = run_tool(tool, INSTANCE, str(checkpoint), *extra, env=mini_env, check=False)
        error = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 2 and error.startswith(expected), proc.stderr[-2000:]
        assert 'have other shapes (e.g. roi_head.bbox_head.fc_cls.' in error and ' in the checkpoint, ' in error
    assert not glob.glob(str(tmp_path / 'work' / 'test_*')) and not osp.exists(tmp_path / 'out')


def test_fine_tuning_from_a_coco_checkpoint_names_the_new_heads(instance_run, mini_env, tmp_path):
    """Training from a COCO-shaped checkpoint (the usual fine-tuning) loads what fits and says in
    one line which tensors keep their initialisation."""
    checkpoint = coco_shaped(instance_run, tmp_path / 'coco_shaped.pth')
    proc = run_tool('tools/train.py', INSTANCE, '--work-dir', str(tmp_path / 'ft'), *short_run(1),
                    f'load_from={checkpoint}', env=mini_env)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if 'LoadReportHook: ' in line]
    assert len(lines) == 1 and lines[0].endswith(
        'LoadReportHook: 6 tensors keep their initialisation (6 had another shape): roi_head.bbox_head.fc_cls, '
        'roi_head.bbox_head.fc_reg, roi_head.mask_head.conv_logits'), lines
    resumed = run_tool('tools/train.py', INSTANCE, '--work-dir', str(tmp_path / 'ft'), *short_run(1), '--resume',
                       env=mini_env)  # its own checkpoint fits: nothing to say
    assert 'LoadReportHook: ' not in resumed.stdout + resumed.stderr


def test_image_that_does_not_decode_stops_training_in_one_line(mini_root, tmp_path):
    """Images that are complete PNGs on disk (the pre-flight check passes) but do not decode: the
    first batch that reads one ends training with one line naming the file, not a worker's
    traceback."""
    root = tmp_path / 'cityscapes'
    shutil.copytree(mini_root, root, symlinks=True)
    for image in glob.glob(f'{root}/leftImg8bit/train/*/*.png'):
        data = bytearray(open(image, 'rb').read())
        data[100:-100] = bytes(len(data) - 200)  # the pixel data zeroed, signature and IEND kept
        open(image, 'wb').write(data)
    env = dict(os.environ, CITYSCAPES_ROOT=f'{root}/')
    proc = run_tool('tools/train.py', SEMANTIC, '--work-dir', str(tmp_path / 'work'), *short_run(1),
                    'train_dataloader.num_workers=1', env=env, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]  # libpng adds its own
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr and len(errors) == 1, proc.stderr[-3000:]
    error = errors[0]
    assert re.fullmatch(rf'error: cannot decode image {root}/leftImg8bit/train/\S+_leftImg8bit\.png \(corrupt\): '
                        'replace it, then continue with --resume', error), error


def test_infer_takes_the_classes_from_the_config(instance_run, mini_env, mini_root, tmp_path):
    """A checkpoint without dataset_meta (converted, third-party) is named by the config's classes,
    not mmdet's COCO fallback, and gives the files of the original; a checkpoint trained on other
    classes is refused in one line."""
    content = torch.load(instance_run / 'iter_2.pth', map_location='cpu', weights_only=False)
    image = str(sorted(glob.glob(str(mini_root / 'leftImg8bit' / 'val' / '*' / '*.png')))[0])
    keep_all = ['--cfg-options', 'model.test_cfg.rcnn.score_thr=0.0']  # some instances after 2 iterations
    run_tool('tools/infer.py', INSTANCE, str(instance_run / 'iter_2.pth'), image, '--out', str(tmp_path / 'ref'),
             *keep_all, env=mini_env)
    for name, meta in (('bare', {}), ('other', dict(content['meta'], dataset_meta=dict(classes=('cat', 'dog'))))):
        torch.save(dict(content, meta=meta), tmp_path / f'{name}.pth')
    run_tool('tools/infer.py', INSTANCE, str(tmp_path / 'bare.pth'), image, '--out', str(tmp_path / 'bare'),
             *keep_all, env=mini_env)
    written = lambda out: sorted(p.relative_to(out) for p in (out / 'results').rglob('*.*'))  # noqa: E731
    assert written(tmp_path / 'ref') and written(tmp_path / 'ref') == written(tmp_path / 'bare')
    (text,) = (tmp_path / 'ref' / 'results').glob('*_pred.txt')
    assert text.read_text() == (tmp_path / 'bare' / 'results' / text.name).read_text()
    proc = run_tool('tools/infer.py', INSTANCE, str(tmp_path / 'other.pth'), image, '--out', str(tmp_path / 'other'),
                    env=mini_env, check=False)
    error = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and error.startswith(f'error: {tmp_path}/other.pth was trained on the classes cat, dog')


def test_infer_predicts_every_good_image_of_a_folder_with_bad_files(semantic_run, mini_env, mini_root, tmp_path):
    """A zero-byte and a text ``.png`` among good images: the good ones are predicted, each bad one
    is named on its own line, and a summary ends the run with status 2."""
    folder = tmp_path / 'images'
    folder.mkdir()
    good = sorted(glob.glob(str(mini_root / 'leftImg8bit' / 'val' / '*' / '*.png')))[:2]
    for path in good:
        shutil.copy(path, folder)
    (folder / 'a_empty.png').write_bytes(b'')
    (folder / 'b_text.png').write_text('not an image')
    proc = run_tool('tools/infer.py', SEMANTIC, str(semantic_run / 'iter_4.pth'), str(folder), '--out',
                    str(tmp_path / 'out'), env=mini_env, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    for bad in ('a_empty.png', 'b_text.png'):
        assert f'skipped {folder / bad}: cannot decode image (empty, corrupt or not an image)' in lines
    assert lines[-1].startswith(f'error: 2 of 4 images could not be predicted (e.g. {folder}/a_empty.png;')
    results = sorted(osp.basename(p) for p in glob.glob(str(tmp_path / 'out' / 'results' / '*.png')))
    assert results == sorted(osp.basename(p) for p in good)


@pytest.fixture(scope='module')
def semantic_export(semantic_run, mini_env, tmp_path_factory):
    out = tmp_path_factory.mktemp('export') / 'deeplabv3_r18_mini'
    proc = run_tool('tools/deployment/export.py', SEMANTIC, str(semantic_run / 'iter_4.pth'), '--out', str(out),
                    env=mini_env)
    return out, proc.stdout


def test_exported_semantic_model_gives_the_checkpoint_s_tables_and_files(semantic_run, semantic_tested,
                                                                        semantic_export, mini_env, mini_root,
                                                                        tmp_path):
    """tools/test.py and tools/infer.py run an export by onnxruntime through the same pipeline and
    evaluators: the checkpoint's metrics within 0.01, the same label-id result files."""
    out, stdout = semantic_export
    manifest = json.load(open(out / 'deploy.json'))
    assert manifest['input']['shape'] == ['batch', 3, 256, 512] and manifest['input']['channels'] == 'RGB'
    assert manifest['source']['checkpoint'] == str(semantic_run / 'iter_4.pth')
    assert manifest['check']['max_abs_logits_difference'] <= 1e-4
    assert 'against PyTorch: max_abs_logits_difference' in stdout
    mtime = os.stat(out / 'model.onnx').st_mtime_ns
    again = run_tool('tools/deployment/export.py', SEMANTIC, str(semantic_run / 'iter_4.pth'), '--out', str(out),
                     env=mini_env)
    assert 'is up to date' in again.stdout and os.stat(out / 'model.onnx').st_mtime_ns == mtime

    run_tool('tools/test.py', SEMANTIC, str(out), '--work-dir', str(tmp_path), env=mini_env)
    ours = json.load(open(tmp_path / 'test_deeplabv3_r18_mini_deeplabv3_r18_mini_onnxruntime.json'))
    reference = json.load(open(semantic_run / 'test_deeplabv3_r18_mini_iter_4.json'))
    numbers = [k for k, v in reference.items() if isinstance(v, (int, float))]
    assert numbers and all(abs(ours[k] - reference[k]) <= 0.01 for k in numbers), (ours, reference)

    val = str(mini_root / 'leftImg8bit' / 'val')
    run_tool('tools/infer.py', SEMANTIC, str(semantic_run / 'iter_4.pth'), val, '--out', str(tmp_path / 'torch'),
             env=mini_env)
    run_tool('tools/infer.py', SEMANTIC, str(out), val, '--out', str(tmp_path / 'onnx'), env=mini_env)
    results = sorted(p.name for p in (tmp_path / 'torch' / 'results').glob('*.png'))
    assert results and results == sorted(p.name for p in (tmp_path / 'onnx' / 'results').glob('*.png'))
    for name in results:
        a, b = (cv2.imread(str(tmp_path / run / 'results' / name), cv2.IMREAD_UNCHANGED) for run in ('torch', 'onnx'))
        assert np.mean(a == b) >= 0.9999


@pytest.fixture(scope='module')
def trained_instance_run(mini_env, tmp_path_factory):
    """The mini Mask R-CNN after 60 iterations from a fixed seed: scores set apart, AP above 0."""
    work_dir = tmp_path_factory.mktemp('instance_60')
    run_tool('tools/train.py', INSTANCE, '--work-dir', str(work_dir), *short_run(60), 'randomness.seed=0',
             env=mini_env)
    return work_dir


@pytest.fixture(scope='module')
def instance_export(trained_instance_run, mini_env, tmp_path_factory):
    out = tmp_path_factory.mktemp('export') / 'maskrcnn_r18_mini'
    proc = run_tool('tools/deployment/export.py', INSTANCE, str(trained_instance_run / 'iter_60.pth'), '--out',
                    str(out), env=mini_env)
    return out, proc.stdout


def test_exported_maskrcnn_gives_the_checkpoint_s_tables_and_files(trained_instance_run, instance_export, mini_env,
                                                                   mini_root, tmp_path):
    """tools/test.py and tools/infer.py on a Mask R-CNN export: the checkpoint's COCO and Cityscapes
    AP within 0.01, the same detections in --out, the same test-server files."""
    import pickle

    from pycocotools import mask as coco_mask
    out, stdout = instance_export
    checkpoint = str(trained_instance_run / 'iter_60.pth')
    manifest = json.load(open(out / 'deploy.json'))
    assert manifest['input']['shape'] == [1, 3, 256, 512] and manifest['task'] == 'instance'
    assert 'against PyTorch: max_abs_boxes_difference' in stdout
    for run, weights in (('torch', checkpoint), ('onnx', str(out))):
        run_tool('tools/test.py', INSTANCE, weights, '--work-dir', str(tmp_path / run), '--out',
                 str(tmp_path / run / 'predictions.pkl'), env=mini_env)
    ours = json.load(open(tmp_path / 'onnx' / 'test_maskrcnn_r18_mini_maskrcnn_r18_mini_onnxruntime.json'))
    reference = json.load(open(tmp_path / 'torch' / 'test_maskrcnn_r18_mini_iter_60.json'))
    assert reference['coco/segm_mAP_50'] > 0 and reference['coco/bbox_mAP_50'] > 0
    numbers = [k for k, v in reference.items() if isinstance(v, float) and not np.isnan(v)]
    assert len(numbers) > 30 and all(abs(ours[k] - reference[k]) <= 0.01 for k in numbers), (ours, reference)

    ours, reference = (pickle.load(open(tmp_path / run / 'predictions.pkl', 'rb')) for run in ('onnx', 'torch'))
    for a, b in zip(ours, reference):
        a, b = a['pred_instances'], b['pred_instances']
        assert len(b['labels']) > 0 and torch.equal(a['labels'], b['labels'])
        assert (a['bboxes'] - b['bboxes']).abs().max() <= 0.01 and (a['scores'] - b['scores']).abs().max() <= 1e-4
        masks = [coco_mask.decode(m['masks']) for m in (a, b)]
        assert np.mean(masks[0] == masks[1]) >= 0.999

    val = str(mini_root / 'leftImg8bit' / 'val')
    for run, weights in (('torch', checkpoint), ('onnx', str(out))):
        run_tool('tools/infer.py', INSTANCE, weights, val, '--out', str(tmp_path / f'infer_{run}'), env=mini_env)
    texts = sorted(p.name for p in (tmp_path / 'infer_torch' / 'results').glob('*_pred.txt'))
    assert len(texts) == 4
    assert texts == sorted(p.name for p in (tmp_path / 'infer_onnx' / 'results').glob('*_pred.txt'))
    for name in texts:
        lines = [[line.split() for line in open(tmp_path / f'infer_{run}' / 'results' / name)]
                 for run in ('onnx', 'torch')]
        assert len(lines[0]) == len(lines[1]) > 0
        for (mask, label, score), (ref_mask, ref_label, ref_score) in zip(*lines):
            assert mask == ref_mask and label == ref_label and abs(float(score) - float(ref_score)) <= 1e-4
            a, b = (cv2.imread(str(tmp_path / f'infer_{run}' / 'results' / mask), cv2.IMREAD_UNCHANGED)
                    for run in ('onnx', 'torch'))
            assert np.mean(a == b) >= 0.999


def test_export_given_with_another_config_or_size_is_refused(semantic_export, mini_env, tmp_path):
    out, _ = semantic_export
    proc = run_tool('tools/test.py', INSTANCE, str(out), '--work-dir', str(tmp_path), env=mini_env, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        f"error: {out}/deploy.json was exported from another model than this config's: task semantic (the config: "
        f'instance); its source config was {REPO}/{SEMANTIC}')
    proc = run_tool('tools/test.py', SEMANTIC, str(out), '--work-dir', str(tmp_path), '--cfg-options',
                    'test_dataloader.dataset.pipeline.1.scale=(256,128)', env=mini_env, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        f'error: {out}/model.onnx was exported for 256x512 inputs, not 128x256: export it with --shape 128 256 '
        'or --dynamic-shape')
    assert not glob.glob(str(tmp_path / 'test_*'))


def test_maskrcnn_export_given_with_another_size_or_dynamic_shape_is_refused(instance_export, trained_instance_run,
                                                                            mini_env, tmp_path):
    out, _ = instance_export
    proc = run_tool('tools/test.py', INSTANCE, str(out), '--work-dir', str(tmp_path), '--cfg-options',
                    'test_dataloader.dataset.pipeline.1.scale=(256,128)', env=mini_env, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        f'error: {out}/model.onnx was exported for 256x512 images, not 128x256 (after the test pipeline): export '
        'it with --shape 128 256')
    assert not glob.glob(str(tmp_path / 'test_*'))
    proc = run_tool('tools/deployment/export.py', INSTANCE, str(trained_instance_run / 'iter_60.pth'), '--out',
                    str(tmp_path / 'dynamic'), '--dynamic-shape', env=mini_env, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].endswith(
        'Mask R-CNN is exported for one input size (its anchors are constants of the graph): leave out --dynamic-shape')
    assert not osp.exists(tmp_path / 'dynamic')
