"""tools/deployment/quantize.py on the suite's exports: int8 DeepLabV3 and Mask R-CNN with their
accuracy checked, run by tools/test.py as any export; bad inputs and a killed quantization."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import INSTANCE, PY, REPO, SEMANTIC, int8_logits_agreement, run_tool

pytestmark = pytest.mark.slow  # every test here quantizes a model


@pytest.fixture(scope='module')
def semantic_int8(semantic_export, mini_env, tmp_path_factory):
    """(the int8 export of the suite's DeepLabV3 export, the tool's output)."""
    out = tmp_path_factory.mktemp('int8') / 'deeplabv3_r18_mini'
    proc = run_tool('tools/deployment/quantize.py', SEMANTIC, str(semantic_export[0]), '--out', str(out),
                    '--calib-images', '4', env=mini_env)
    return out, proc.stdout


def test_int8_deeplabv3_keeps_its_accuracy_and_runs_as_any_export(semantic_int8, semantic_export, mini_env,
                                                                  mini_root, tmp_path):
    out, stdout = semantic_int8
    manifest = json.load(open(out / 'deploy.json'))
    float_manifest = json.load(open(semantic_export[0] / 'deploy.json'))
    quantization = manifest['quantization']
    assert manifest['precision'] == 'int8' and quantization['calibration'] == '4 training images'
    assert quantization['source_model_sha256'] == float_manifest['model_sha256']
    accuracy = manifest['check']['accuracy']['mIoU']
    assert abs(accuracy['drop']) <= 1.0 and f'| mIoU | {accuracy["float32"]:.2f} | {accuracy["int8"]:.2f} |' in stdout
    assert os.path.getsize(out / 'model.onnx') < 0.35 * os.path.getsize(semantic_export[0] / 'model.onnx')
    agreement, error = int8_logits_agreement(semantic_export[0], out, mini_root)
    assert agreement >= 0.98 and error <= 0.1, (agreement, error)
    run_tool('tools/test.py', SEMANTIC, str(out), '--work-dir', str(tmp_path), env=mini_env)
    tested = json.load(open(tmp_path / 'test_deeplabv3_r18_mini_deeplabv3_r18_mini_onnxruntime.json'))
    assert tested['mIoU'] == pytest.approx(accuracy['int8'], abs=0.01)


def test_int8_maskrcnn_keeps_its_ap(instance_export, mini_env, tmp_path):
    """The convolutions quantized, RoiAlign / NonMaxSuppression / TopK left float; both APs within 1 point."""
    import onnx
    out = tmp_path / 'int8'
    run_tool('tools/deployment/quantize.py', INSTANCE, str(instance_export[0]), '--out', str(out),
             '--calib-images', '4', env=mini_env)
    manifest = json.load(open(out / 'deploy.json'))
    assert manifest['quantization']['op_types'] == ['Conv', 'ConvTranspose', 'MatMul', 'Gemm']
    assert all(abs(v['drop']) <= 1.0 for v in manifest['check']['accuracy'].values())
    assert set(manifest['check']['accuracy']) == {'coco/segm_mAP', 'cityscapes/mAP'}
    graph = onnx.load(str(out / 'model.onnx')).graph
    quantized = {node.input[0] for node in graph.node if node.op_type == 'DequantizeLinear'}
    for node in graph.node:
        if node.op_type in ('RoiAlign', 'NonMaxSuppression', 'TopK'):
            assert not set(node.input) & quantized, node.name  # float inputs
    assert sum(node.op_type == 'QuantizeLinear' for node in graph.node) > 10


def test_quantize_bad_inputs_are_one_line(semantic_export, semantic_int8, instance_export, semantic_run, mini_env,
                                          mini_root, tmp_path):
    def fails(*args, env=mini_env):
        proc = run_tool('tools/deployment/quantize.py', *args, env=env, check=False)
        assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr
        return proc.stderr.strip().splitlines()[-1]
    out = str(tmp_path / 'out')
    assert 'holds no deploy.json' in fails(SEMANTIC, str(semantic_run), '--out', out)  # a training work dir
    assert 'was exported from another model than this config' in fails(SEMANTIC, str(instance_export[0]),
                                                                          '--out', out)
    assert 'is an int8 export already' in fails(SEMANTIC, str(semantic_int8[0]), '--out', out)
    assert 'already holds an export' in fails(SEMANTIC, str(semantic_export[0]), '--out', str(semantic_int8[0]))
    root = tmp_path / 'cityscapes'  # the mini dataset with every training image unreadable: no calibration
    shutil.copytree(mini_root, root, symlinks=True)
    for image in (root / 'leftImg8bit' / 'train').rglob('*.png'):
        image.write_bytes(b'not a png')
    stderr = fails(SEMANTIC, str(semantic_export[0]), '--out', out, env=dict(mini_env, CITYSCAPES_ROOT=f'{root}/'))
    assert 'labelled images are truncated' in stderr and not os.path.exists(out + '/deploy.json')
    nowhere = f'{mini_root}/nowhere/'  # --cfg-options reach the calibration data
    stderr = fails(SEMANTIC, str(semantic_export[0]), '--out', out, '--cfg-options',
                   f'train_dataloader.dataset.data_root={nowhere}')
    assert stderr.startswith(f'error: train_dataloader: missing folder {nowhere}'), stderr


def test_killed_quantization_leaves_no_export_and_reruns(semantic_export, semantic_int8, mini_env, tmp_path):
    """kill -9 while calibrating or evaluating: no deploy.json (so no export) is left; the same
    command again writes the export."""
    out = tmp_path / 'int8'
    args = [PY, 'tools/deployment/quantize.py', SEMANTIC, str(semantic_export[0]), '--out', str(out),
            '--calib-images', '4']
    proc = subprocess.Popen(args, cwd=REPO, env=mini_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    for line in proc.stdout:  # kill it once the int8 model is being evaluated
        if 'Iter(test)' in line or 'Epoch(test)' in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    time.sleep(0.5)
    assert proc.returncode == -signal.SIGKILL and not (out / 'deploy.json').exists()
    run_tool(*args[1:], env=mini_env)
    from mmcityscapes.utils.manifest import read_export
    assert read_export(str(out))[1]['precision'] == 'int8'  # complete: its model is the one it describes


def test_reduced_size_labels_export_is_calibrated_and_tested_at_its_size(semantic_run, mini_env, tmp_path):
    """A labels export at half the config's test size quantizes, its ArgMax left float: calibrated
    and tested at its size (said in one line, recorded in deploy.json), where its float32 mIoU is
    the one tools/test.py gives with the test pipeline resized to it."""
    import onnx
    export, int8 = tmp_path / 'half', tmp_path / 'int8'
    run_tool('tools/deployment/export.py', SEMANTIC, str(semantic_run / 'iter_4.pth'), '--out', str(export),
             '--shape', '128', '256', env=mini_env)
    proc = run_tool('tools/deployment/quantize.py', SEMANTIC, str(export), '--out', str(int8), '--calib-images', '2',
                    '--max-drop', '100', env=mini_env)
    assert f'{export} takes 128x256 images: calibrating and testing it at that size' in proc.stdout
    manifest = json.load(open(int8 / 'deploy.json'))
    assert manifest['output']['name'] == 'labels'
    assert manifest['quantization']['calibration'] == '2 training images at 128x256'
    assert manifest['check']['evaluated_on'].endswith(' at 128x256')
    graph = onnx.load(str(int8 / 'model.onnx')).graph
    dequantized = {node.output[0] for node in graph.node if node.op_type == 'DequantizeLinear'}
    argmax = [node for node in graph.node if node.op_type == 'ArgMax']
    assert len(argmax) == 1 and not set(argmax[0].input) & dequantized
    run_tool('tools/test.py', SEMANTIC, str(export), '--work-dir', str(tmp_path / 'test'), '--cfg-options',
             'test_dataloader.dataset.pipeline.1.scale=(256,128)', env=mini_env)
    tested = json.load(open(next((tmp_path / 'test').glob('test_*.json'))))
    assert tested['mIoU'] == pytest.approx(manifest['check']['accuracy']['mIoU']['float32'], abs=0.01)
    # a test pipeline without a Resize (here a RandomResize to the config's size) gives no image at that size
    proc = run_tool('tools/deployment/quantize.py', SEMANTIC, str(export), '--out', str(tmp_path / 'none'),
                    '--cfg-options', 'test_dataloader.dataset.pipeline.1.type=RandomResize',
                    'test_dataloader.dataset.pipeline.1.ratio_range=(1.0,1.0)', env=mini_env, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (f'error: {export}/model.onnx was exported for 128x256 inputs, not '
                                                    '256x512: export it with --shape 256 512 or --dynamic-shape')
    assert not (tmp_path / 'none' / 'deploy.json').exists()

