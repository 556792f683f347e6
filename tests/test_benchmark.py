"""tools/analysis_tools/benchmark.py: the config's model against the reproduced projects' model, and the data
pipeline."""
import importlib.util
import re

import pytest

from conftest import SMALL_UNET, run_tool, table_rows

pytestmark = pytest.mark.slow  # every test here runs a tool on a model

TOOL = 'tools/analysis_tools/benchmark.py'


def table(stdout):
    """{model: (parameters M, images/s, latency p50 ms, p95 ms, peak MiB)} and the printed ratio."""
    rows = {name: tuple(map(float, cells)) for name, cells in table_rows(stdout).items() if name != 'model'}
    ratio = re.search(r'speed ratio \(ours / reference model\): ([\d.]+)x', stdout)
    return rows, ratio and float(ratio.group(1))


@pytest.mark.parametrize('config, mode, reference_model, parameters', [
    ('configs/maskrcnn_stage3.py', '--train', 'torchvision maskrcnn_resnet50_fpn', (44.0, 44.0)),
    ('configs/deeplabv3_r50.py', '--infer', 'torchvision deeplabv3_resnet50', (68.1, 42.0)),
    ('configs/deeplabv3_r50_tv.py', '--infer', 'torchvision deeplabv3_resnet50', (42.0, 42.0)),
])
def test_model_vs_reference_model(config, mode, reference_model, parameters):
    proc = run_tool(TOOL, config, mode, '--shape', '128', '256', '--batch', '1', '--iters', '1', '--warmup', '1',
                    '--vs')
    rows, ratio = table(proc.stdout)
    ours = rows[f'mmcityscapes {config.split("/")[-1]}']
    # the models the configs and the reproduced projects define
    assert (ours[0], rows[reference_model][0]) == parameters
    assert ours[1] > 0 and rows[reference_model][1] > 0
    (o, s), half = (ours[1], rows[reference_model][1]), 0.005  # the table rounds to 2 decimals
    assert (o - half) / (s + half) - half <= ratio <= (o + half) / (s - half) + half


@pytest.mark.parametrize('config, options', [('configs/mini/deeplabv3_r18_mini.py', ('--precision', 'int8')),
                                             ('configs/mini/maskrcnn_r18_mini.py', ('--vs',))])
def test_onnxruntime_backend_times_the_export_of_the_same_model(config, options):
    """The export's row beside the model's, and with --precision int8 its quantization's."""
    proc = run_tool(TOOL, config, '--infer', '--backend', 'onnxruntime', '--shape', '128', '256', '--batch', '1',
                    '--iters', '3', '--warmup', '1', *options)
    rows, _ = table(proc.stdout)
    name = f'mmcityscapes {config.split("/")[-1]}'
    ours, exported = rows[name], rows[f'{name} (onnxruntime)']
    assert ours[1] > 0 and exported[1] > 0 and ours[2] <= ours[3] and exported[2] <= exported[3]
    half = 0.005  # the table rounds to 2 decimals
    ratios = [('onnxruntime / PyTorch', exported, ours)]
    if '--vs' in options:
        ratios.append(('ours in onnxruntime / reference model', exported, rows['torchvision maskrcnn_resnet50_fpn']))
    if 'int8' in options:
        int8 = rows[f'{name} (onnxruntime int8)']
        assert int8[1] > 0 and int8[2] <= int8[3]
        ratios += [('int8 / float32 export', int8, exported), ('int8 / PyTorch', int8, ours)]
    for label, (a, b) in ((label, (a[1], b[1])) for label, a, b in ratios):
        ratio = float(re.search(rf'\({re.escape(label)}\): ([\d.]+)x', proc.stdout).group(1))
        assert (a - half) / (b + half) - half <= ratio <= (a + half) / (b - half) + half


def test_split_of_the_whole_step_of_a_model_and_its_exports():
    """--split: per model, decode / preprocess / network / postprocess medians and the images/s of
    the step from the decoded image to the labels, here with an export taking the decoded image; a
    labels export's postprocessing is a fraction of PyTorch's (the resize and argmax run in the
    graph). Instance configs are refused in one line."""
    proc = run_tool(TOOL, 'configs/mini/fast_scnn_mini.py', '--infer', '--backend', 'onnxruntime', '--shape', '128',
                    '256', '--batch', '1', '--iters', '3', '--warmup', '1', '--split', '--export-input', 'uint8')
    split = table_rows(proc.stdout[proc.stdout.index('| whole step of'):])
    assert split.pop('whole step of') == ['decode (ms)', 'preprocess (ms)', 'network (ms)', 'postprocess (ms)',
                                          'images/s (image in memory -> labels)']
    name = 'mmcityscapes fast_scnn_mini.py'
    assert sorted(split) == [name, f'{name} (onnxruntime)']
    (*torch_ms, torch_speed), (*onnx_ms, onnx_speed) = ([float(c) for c in split[row]] for row in sorted(split))
    assert all(ms >= 0 for ms in torch_ms + onnx_ms) and torch_ms[2] > 0 and torch_speed > 0 and onnx_speed > 0
    assert onnx_ms[3] < torch_ms[3]
    refused = run_tool(TOOL, 'configs/mini/maskrcnn_r18_mini.py', '--infer', '--split', check=False)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines()[-1] == (
        'error: --split times the whole inference step of a semantic model on the CPU (--infer, --device cpu)')


def test_profile_tables(tmp_path):
    """--profile writes, per model, synchronisations and launches per step and the top operators."""
    out = tmp_path / 'profile.md'
    proc = run_tool(TOOL, 'configs/mini/maskrcnn_r18_mini.py', '--shape', '128', '256', '--batch', '1',
                    '--iters', '2', '--warmup', '1', '--profile', str(out), '--top', '5')
    text = out.read_text()
    assert f'profile: {out}' in proc.stdout
    assert text.startswith('### mmcityscapes maskrcnn_r18_mini.py, train\n')
    assert '2 steps; per step: 0 host-device synchronisations' in text  # none on a CPU
    rows = re.findall(r'^\| (aten::\S+|\w+) +\| +([\d.]+) \| +([\d.]+) \|$', text, re.M)
    assert len(rows) == 5 and 'aten::convolution_backward' in [r[0] for r in rows]
    times = [float(r[2]) for r in rows]
    assert times == sorted(times, reverse=True) and times[-1] > 0
    convolutions = dict(re.findall(r'^\| (Conv \dx\d, dilation \d+) +\| +[\d.]+ \| +([\d.]+) \|$', text, re.M))
    assert '### mmcityscapes maskrcnn_r18_mini.py, train: convolutions' in text
    assert float(convolutions['Conv 3x3, dilation 1']) > 0 and 'Conv 7x7, dilation 1' in convolutions  # the stem


def test_profile_of_an_export_by_onnxruntime(tmp_path):
    """An export's profile comes from onnxruntime: its operators, convolutions split as PyTorch's."""
    out = tmp_path / 'profile.md'
    run_tool(TOOL, 'configs/mini/deeplabv3_r18_mini.py', '--infer', '--backend', 'onnxruntime', '--shape', '128',
             '256', '--batch', '1', '--iters', '2', '--warmup', '1', '--profile', str(out))
    text = out.read_text()
    sections = text.split('### ')
    assert [s.splitlines()[0] for s in sections[1:]] == [
        'mmcityscapes deeplabv3_r18_mini.py, inference', 'mmcityscapes deeplabv3_r18_mini.py, inference: convolutions',
        'mmcityscapes deeplabv3_r18_mini.py (onnxruntime), inference']
    exported = dict(re.findall(r'^\| (.+?) +\| +[\d.]+ \| +[\d.]+ \| +([\d.]+) % \|$', sections[3], re.M))
    torch_convolutions = re.findall(r'^\| (Conv [^|]+?) +\|', sections[2], re.M)
    assert 'Conv 3x3, dilation 12' in exported and 'Conv 3x3, dilation 12' in torch_convolutions  # ASPP, both sides
    assert 0 < sum(map(float, exported.values())) <= 100.1
    assert list(tmp_path.glob('profile_*.json')) and (tmp_path / 'profile_optimized.onnx').is_file()


def test_unet_vs_segmentation_models_pytorch():
    proc = run_tool(TOOL, 'configs/unet_r34.py', '--shape', '64', '128', '--batch', '1', '--iters', '1',
                    '--warmup', '0', '--vs', check=False)
    if importlib.util.find_spec('segmentation_models_pytorch') is None:  # an optional dependency
        assert proc.returncode == 2 and 'pip install -r requirements/optional.txt' in proc.stderr
        return
    rows, ratio = table(proc.stdout)
    assert proc.returncode == 0 and "segmentation-models-pytorch Unet('resnet34')" in rows and ratio > 0


def test_data_pipeline_throughput(mini_env):
    proc = run_tool(TOOL, 'configs/mini/deeplabv3_r18_mini.py', '--data', '--samples', '8', env=mini_env)
    speed = re.search(r'8 samples in [\d.]+ s = ([\d.]+) samples/s per worker \(first output 128x256\)', proc.stdout)
    assert speed and float(speed.group(1)) > 0


def test_side_by_side_folds_against_one_after_the_other(mini_env, tmp_path):
    tiny = ['train_dataloader.dataset.pipeline.2.scale=(256,128)', 'val_dataloader.dataset.pipeline.1.scale=(256,128)',
            'train_dataloader.dataset.pipeline.3.crop_size=(64,128)', 'model.data_preprocessor.size=(64,128)']
    proc = run_tool('tools/analysis_tools/benchmark_side_by_side.py', 'configs/unet_r34_cv5.py', '--folds', '2',
                    '--processes', '2', '--work-dir', str(tmp_path), '--cfg-options', *SMALL_UNET, *tiny,
                    'train_cfg.max_epochs=1', 'randomness.seed=0', env=mini_env)
    seconds = [float(re.search(rf'\| 2 folds {way}[^|]*\|\s*([\d.]+) \|', proc.stdout).group(1))
               for way in ('one after the other, 1 process', 'side by side, 2 processes x 1 thread')]
    ratio = float(re.search(r'side by side / one after the other: ([\d.]+)', proc.stdout).group(1))
    assert ratio == pytest.approx(seconds[1] / seconds[0], abs=0.01)
    for k in range(2):  # both ways trained every fold, each in its own directory
        assert (tmp_path / 'one_after_the_other' / f'fold_{k}' / 'result.json').is_file()
        assert (tmp_path / 'side_by_side' / f'fold_{k}' / 'result.json').is_file()
