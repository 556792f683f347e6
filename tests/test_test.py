"""tools/test.py: the metric tables of both families, --out, --tta, and the checkpoints it refuses."""
import glob
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from conftest import (
    INSTANCE,
    REPO,
    SEMANTIC,
    assert_overlays,
    assert_picture,
    coco_shaped,
    csv_values,
    run_tool,
    table_rows,
)

pytestmark = pytest.mark.slow  # every test here runs a tool on a model


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
    values = csv_values(semantic_run / 'test_deeplabv3_r18_mini_iter_4.csv')
    assert float(values[('mIoU', '')]) == pytest.approx(metrics['mIoU'])
    assert_overlays(show_dir, mini_root, prediction_drawn=True)


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
    run_tool('tools/test.py', INSTANCE, str(instance_run / 'iter_2.pth'), '--work-dir', str(tmp_path), '--out',
             str(out),
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


def test_tta_of_one_view_equals_the_plain_test(semantic_run, semantic_tested, mini_env, tmp_path):
    """--tta runs the config's SegTTAModel: on a tta_pipeline of the test view alone it scores the
    plain test, into its own table; a config without TTA (Mask R-CNN) is refused in one line. Not
    to the last digit: SegTTAModel takes the argmax of the softmax, which float32 rounding ties on
    a few pixels where this 4-iteration model's logits nearly are."""
    config = tmp_path / 'one_view_tta.py'
    config.write_text(f"_base_ = {osp.join(REPO, SEMANTIC)!r}\n"
                      "tta_pipeline = [dict(type='LoadImageFromFile'), dict(type='TestTimeAug', transforms=[\n"
                      "    [dict(type='Resize', scale=(512, 256), keep_ratio=True)], [dict(type='LoadAnnotations')],\n"
                      "    [dict(type='PackSegInputs')]])]\n")
    run_tool('tools/test.py', str(config), str(semantic_run / 'iter_4.pth'), '--tta', '--work-dir', str(tmp_path),
             env=mini_env)
    tta = json.load(open(tmp_path / 'test_one_view_tta_iter_4_tta.json'))
    plain = json.load(open(semantic_run / 'test_deeplabv3_r18_mini_iter_4.json'))
    without_source = lambda metrics: {k: v for k, v in metrics.items() if k != 'evaluated_on'}
    assert without_source(tta) == pytest.approx(without_source(plain), abs=0.1)
    proc = run_tool('tools/test.py', INSTANCE, str(semantic_run / 'iter_4.pth'), '--tta', env=mini_env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f'error: --tta: {INSTANCE} defines no tta_model')


def test_missing_checkpoint_is_one_line(mini_env):
    proc = run_tool('tools/test.py', SEMANTIC, 'no/such.pth', env=mini_env, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == 'error: checkpoint not found: no/such.pth'


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
