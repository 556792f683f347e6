"""Shared fixtures: one generated and prepared mini-Cityscapes for the whole session."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

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


def run_tool(*args, env=None, check=True, timeout=900):
    """Run a repo tool as a user would; return the CompletedProcess (text output)."""
    proc = subprocess.run([PY, *args], cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


def table_rows(markdown):
    """{first cell: the other cells} of every row of the markdown tables in ``markdown`` (header
    rows included, alignment rows left out)."""
    rows = [[c.strip() for c in line.strip().split('|')[1:-1]] for line in markdown.splitlines() if line.startswith('|')]
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
