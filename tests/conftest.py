"""Shared fixtures and helpers: one generated and prepared mini-Cityscapes, and the mini models
the tool tests run on, each trained once per session."""
import csv
import functools
import glob
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
from forked_tools import ToolServer

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PY = sys.executable
MINI_COUNTS = dict(train=10, val=4, test=2, extra=4)
# The U-Net configs, trained small: 128x256 crops of 256x512 images, tiny epochs.
SMALL_UNET = ['train_dataloader.dataset.pipeline.2.scale=(512,256)',
              'train_dataloader.dataset.pipeline.3.crop_size=(128,256)',
              'val_dataloader.dataset.pipeline.1.scale=(512,256)',
              'test_dataloader.dataset.pipeline.1.scale=(512,256)',
              'model.data_preprocessor.size=(128,256)', 'model.backbone.init_cfg=None',
              'train_dataloader.batch_size=2', 'train_dataloader.num_workers=1',
              'val_dataloader.num_workers=1', 'default_hooks.logger.interval=1']


@pytest.fixture(autouse=True)
def scoped_registries():
    """mmengine's default scope as it was before each test: a test that sets it (``init_default_scope``)
    does not change where later tests' registries look."""
    from mmengine.registry import DefaultScope
    scopes = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(scopes)


def pytest_sessionfinish(session):
    if tool_server.cache_info().currsize:
        tool_server().close()


@functools.cache
def tool_server():
    return ToolServer(PY)


def run_tool(*args, env=None, check=True, timeout=900, cwd=REPO):
    """Run a repo tool as a user would (``python TOOL ARGS``, a process of its own, forked from one
    that has imported the libraries where the environment allows); return the CompletedProcess
    (text output)."""
    env = dict(os.environ) if env is None else env
    if args[0].endswith('.py') and tool_server().serves(env):
        proc = tool_server().run(args[0], args[1:], cwd, env, timeout)
    else:
        proc = subprocess.run([PY, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


def table_rows(markdown):
    """{first cell: the other cells} of every row of the markdown tables in ``markdown`` (header
    rows included, alignment rows left out)."""
    rows = [[c.strip() for c in line.strip().split('|')[1:-1]]
            for line in markdown.splitlines() if line.startswith('|')]
    return {row[0]: row[1:] for row in rows if not all(re.fullmatch(':?-+:?', c) for c in row)}


def generate_mini(out, seed=0, **counts):
    counts = {**MINI_COUNTS, **counts}
    run_tool('tools/misc/synthetic_cityscapes.py', str(out), '--train', str(counts['train']),
                  '--val', str(counts['val']), '--test', str(counts['test']), '--extra',
                  str(counts['extra']), '--seed', str(seed), '--nproc', '2')
    return out


@pytest.fixture(scope='session')
def raw_mini(tmp_path_factory):
    """A generated mini-Cityscapes (256x512), not prepared."""
    return generate_mini(tmp_path_factory.mktemp('raw') / 'cityscapes')


@pytest.fixture(scope='session')
def mini_root(tmp_path_factory):
    """A generated and prepared mini-Cityscapes (labelTrainIds, COCO json, split files)."""
    root = generate_mini(tmp_path_factory.mktemp('prepared') / 'cityscapes')
    run_tool('tools/dataset_converters/cityscapes.py', str(root), '--nproc', '2')
    return root


@pytest.fixture(scope='session')
def mini_env(mini_root):
    """Environment that points the configs at the prepared mini dataset."""
    return dict(os.environ, CITYSCAPES_ROOT=osp.join(str(mini_root), ''))


SEMANTIC = 'configs/mini/deeplabv3_r18_mini.py'
INSTANCE = 'configs/mini/maskrcnn_r18_mini.py'


def short_run(iters, interval=None):
    interval = interval or iters
    return ['--cfg-options', f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={interval}', 'default_hooks.logger.interval=1']


@pytest.fixture(scope='session')
def semantic_run(mini_env, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('semantic')
    run_tool('tools/train.py', SEMANTIC, '--work-dir', str(work_dir), '--tensorboard', *short_run(4), env=mini_env)
    return work_dir


@pytest.fixture(scope='session')
def semantic_tested(semantic_run, mini_env, tmp_path_factory):
    """tools/test.py on the semantic run, with overlays: (its stdout, the overlay folder)."""
    show_dir = tmp_path_factory.mktemp('semantic_show')
    proc = run_tool('tools/test.py', SEMANTIC, str(semantic_run / 'iter_4.pth'), '--work-dir', str(semantic_run),
                    '--show-dir', str(show_dir), env=mini_env)
    return proc.stdout, show_dir


@pytest.fixture(scope='session')
def instance_run(mini_env, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('instance')
    run_tool('tools/train.py', INSTANCE, '--work-dir', str(work_dir), *short_run(2), env=mini_env)
    return work_dir


@pytest.fixture(scope='session')
def instance_tested(instance_run, mini_env, tmp_path_factory):
    """tools/test.py on the instance run, with overlays: the overlay folder."""
    show_dir = tmp_path_factory.mktemp('instance_show')
    run_tool('tools/test.py', INSTANCE, str(instance_run / 'iter_2.pth'), '--work-dir', str(instance_run),
             '--show-dir', str(show_dir), env=mini_env)
    return show_dir


@pytest.fixture(scope='session')
def trained_instance_run(mini_env, tmp_path_factory):
    """The mini Mask R-CNN after 60 iterations from a fixed seed: scores set apart, AP above 0."""
    work_dir = tmp_path_factory.mktemp('instance_60')
    run_tool('tools/train.py', INSTANCE, '--work-dir', str(work_dir), *short_run(60), 'randomness.seed=0',
             env=mini_env)
    return work_dir


@pytest.fixture(scope='session')
def semantic_export(semantic_run, mini_env, tmp_path_factory):
    """(the semantic run's ONNX export of logits, the export tool's output)."""
    out = tmp_path_factory.mktemp('export') / 'deeplabv3_r18_mini'
    proc = run_tool('tools/deployment/export.py', SEMANTIC, str(semantic_run / 'iter_4.pth'), '--out', str(out),
                    '--output', 'logits', env=mini_env)
    return out, proc.stdout


@pytest.fixture(scope='session')
def instance_export(trained_instance_run, mini_env, tmp_path_factory):
    """(the trained instance run's ONNX export, the export tool's output)."""
    out = tmp_path_factory.mktemp('export') / 'maskrcnn_r18_mini'
    proc = run_tool('tools/deployment/export.py', INSTANCE, str(trained_instance_run / 'iter_60.pth'), '--out',
                    str(out), env=mini_env)
    return out, proc.stdout


def int8_logits_agreement(float_export, int8_export, mini_root):
    """(share of the val pixels whose float32 argmax the int8 export keeps, among those whose
    float32 top-2 margin is at least 2 % of the logits' range; the largest int8 logit error as a
    share of that range) of two semantic exports on the mini val images. Pixels of near-equal
    class scores are left out: the suite's models, trained a few iterations, have logits within
    +-0.1 where most margins are below the int8 step."""
    from mmcityscapes.deployment.onnx_models import inference_session
    from mmcityscapes.utils.manifest import read_export
    _, manifest = read_export(str(float_export))
    input_, (height, width) = manifest['input'], manifest['input']['shape'][2:]
    sessions = [inference_session(str(osp.join(export, 'model.onnx'))) for export in (float_export, int8_export)]
    logits = [[], []]
    for path in sorted(glob.glob(f'{mini_root}/leftImg8bit/val/*/*.png')):
        image = cv2.resize(cv2.imread(path), (width, height))[..., ::-1 if input_['channels'] == 'RGB' else 1]
        image = ((image - np.array(input_['mean'])) / np.array(input_['std'])).astype(np.float32)
        for i, session in enumerate(sessions):
            logits[i].append(session.run(None, {'image': image.transpose(2, 0, 1)[None]})[0])
    float32, int8 = (np.concatenate(x) for x in logits)
    span = float32.max() - float32.min()
    top2 = np.sort(float32, 1)[:, -2:]
    confident = top2[:, 1] - top2[:, 0] >= 0.02 * span
    assert confident.mean() > 0.2  # enough pixels to judge
    agreement = np.mean((float32.argmax(1) == int8.argmax(1))[confident])
    return agreement, float(np.abs(int8 - float32).max() / span)


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


def assert_picture(path, min_size):
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] >= min_size[0] and image.shape[1] >= min_size[1], path
    assert image.std() > 10  # not blank


def coco_shaped(instance_run, path):
    """The instance run's checkpoint with 80-class (COCO) class heads, saved at ``path``."""
    import torch
    content = torch.load(instance_run / 'iter_2.pth', map_location='cpu', weights_only=False)
    state = content['state_dict']
    for key in [k for k in state if k.startswith(('roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg',
                                                      'roi_head.mask_head.conv_logits'))]:
        rows = {'fc_cls': 81, 'fc_reg': 320, 'conv_logits': 80}[key.split('.')[2]]
        state[key] = torch.zeros(rows, *state[key].shape[1:])
    torch.save(content, path)
    return path


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


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
