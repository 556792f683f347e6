"""The analysis and model-converter tools on trained mini models."""
import glob
import hashlib
import json
import os
import os.path as osp
import re
import shutil

import cv2
import numpy as np
import pytest
import torch

from mmcityscapes.utils.checkpoint import Checkpoint, allow_mmengine_checkpoints

from conftest import INSTANCE, REPO, SEMANTIC, assert_picture, run_tool, table_rows

pytestmark = pytest.mark.slow  # every test here runs a tool on a model


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
    published, original = Checkpoint.read(str(published)), Checkpoint.read(str(checkpoint))
    assert published.meta == original.meta and published.state.keys() == original.state.keys()
    assert all(torch.equal(published.state[k], original.state[k]) for k in published.state)
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


@pytest.mark.parametrize('task', ['semantic', 'instance', 'panoptic'])
def test_benchmark_eval_times_every_evaluator_against_the_official_one(task, tmp_path):
    proc = run_tool('tools/analysis_tools/benchmark_eval.py', '--task', task, '--images', '2', '--height', '128',
                    '--width', '256', '--masks', '4', '--nproc', '2', '--work-dir', str(tmp_path))
    rows = table_rows(proc.stdout)
    official = next(name for name in rows if 'cityscapesscripts' in name or name.startswith('official'))
    assert rows[f'`eval_cityscapes.py --task {task}`'][0] == '2' and float(rows[official][1]) > 0
    assert proc.stdout.rstrip().endswith('identical results: True') or 'identical results: True;' in proc.stdout
