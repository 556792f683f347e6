"""tools/infer.py: the test server's formats, scored by eval_cityscapes.py, and bad inputs."""
import glob
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import time

import cv2
import numpy as np
import pytest
import torch

from conftest import INSTANCE, PY, REPO, SEMANTIC, assert_overlays, run_tool

pytestmark = pytest.mark.slow  # every test here runs a tool on a model


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
                             (str(tmp_path / 'broken.png'),
                              f'1 of 1 images could not be predicted (e.g. {tmp_path}/broken.png;'),
                             (str(tmp_path / 'a'), f'{tmp_path}/a/img.png and {tmp_path}/b/img.png have the same')):
        extra = [str(tmp_path / 'b')] if images.endswith('/a') else []
        proc = run_tool('tools/infer.py', SEMANTIC, checkpoint, images, *extra, '--out', str(tmp_path / 'out'),
                        env=mini_env, check=False)
        assert proc.returncode == 2 and expected in proc.stderr.strip().splitlines()[-1], proc.stderr
    proc = run_tool('tools/infer.py', SEMANTIC, checkpoint, str(tmp_path / 'a'), '--batch-size', '0', '--out',
                    str(tmp_path / 'out'), env=mini_env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith('--batch-size must be at least 1, not 0')
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
