"""tools/deployment/export.py, then tools/test.py and tools/infer.py on the exports."""
import glob
import json
import os
import os.path as osp

import cv2
import numpy as np
import onnx
import pytest
import torch

from conftest import INSTANCE, REPO, SEMANTIC, run_tool, short_run

pytestmark = pytest.mark.slow  # every test here runs a tool on a model
REALTIME = 'configs/mini/fast_scnn_mini.py'


@pytest.fixture(scope='module')
def realtime_run(mini_env, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('fast_scnn')
    run_tool('tools/train.py', REALTIME, '--work-dir', str(work_dir), *short_run(4), env=mini_env)
    return work_dir


def test_labels_export_of_the_decoded_image_gives_the_checkpoint_s_tables_and_files(realtime_run, mini_env,
                                                                                   mini_root, tmp_path):
    """A real-time model exported to take the decoded image and give labels (the graph resizes and
    takes the argmax): tools/test.py gives the checkpoint's metrics within 0.01, tools/infer.py the
    same result files; --tta, which merges class scores, says it needs a logits export; quantize.py
    quantizes it."""
    checkpoint, out = str(realtime_run / 'iter_4.pth'), str(tmp_path / 'export')
    proc = run_tool('tools/deployment/export.py', REALTIME, checkpoint, '--out', out, '--input', 'uint8',
                    env=mini_env)
    assert "uint8 ['batch', 256, 512, 3] -> labels uint8 ['batch', 256, 512]" in proc.stdout
    assert 'labels_agreement' in proc.stdout
    metrics = {}
    for name, model in (('torch', checkpoint), ('onnx', out)):
        run_tool('tools/test.py', REALTIME, model, '--work-dir', str(tmp_path / name), env=mini_env)
        metrics[name] = json.load(open(glob.glob(f'{tmp_path / name}/test_*.json')[0]))
    numbers = [k for k, v in metrics['torch'].items() if isinstance(v, (int, float))]
    got, expected = ([metrics[name][k] for k in numbers] for name in ('onnx', 'torch'))
    assert numbers and np.allclose(got, expected, rtol=0, atol=0.01, equal_nan=True), metrics  # nan: a class absent
    tta = run_tool('tools/test.py', REALTIME, out, '--tta', '--work-dir', str(tmp_path / 'tta'), env=mini_env,
                   check=False)
    assert tta.returncode == 2 and tta.stderr.strip().splitlines()[-1] == (
        f'error: --tta takes class scores, and {out} gives labels: export it with --output logits')

    int8 = str(tmp_path / 'int8')  # quantized as it runs: the resize and argmax after the logits stay float
    run_tool('tools/deployment/quantize.py', REALTIME, out, '--out', int8, '--calib-images', '2', '--max-drop', '100',
             env=mini_env)
    manifest = json.load(open(f'{int8}/deploy.json'))
    assert (manifest['precision'], manifest['input']['dtype'], manifest['output']['name']) == ('int8', 'uint8',
                                                                                                'labels')
    graph = onnx.load(f'{int8}/model.onnx').graph
    producer = {name: node for node in graph.node for name in node.output}
    argmax = next(node for node in graph.node if node.op_type == 'ArgMax')
    resize = producer[argmax.input[0]]
    assert resize.op_type == 'Resize' and producer[resize.input[0]].op_type == 'Conv'  # float logits, resized
    assert any(node.op_type == 'DequantizeLinear' for node in graph.node)

    val = str(mini_root / 'leftImg8bit' / 'val')
    for name, model in (('torch', checkpoint), ('onnx', out)):
        run_tool('tools/infer.py', REALTIME, model, val, '--out', str(tmp_path / f'{name}_infer'), env=mini_env)
    results = sorted(p.name for p in (tmp_path / 'torch_infer' / 'results').glob('*.png'))
    assert results and results == sorted(p.name for p in (tmp_path / 'onnx_infer' / 'results').glob('*.png'))
    for name in results:
        a, b = (cv2.imread(str(tmp_path / f'{run}_infer' / 'results' / name), cv2.IMREAD_UNCHANGED)
                for run in ('torch', 'onnx'))
        assert np.mean(a == b) >= 0.9999


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
                     '--output', 'logits', env=mini_env)
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
