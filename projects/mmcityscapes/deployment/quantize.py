"""INT8 exports: onnxruntime's static quantization of a float32 export, calibrated on training
images exactly as the export receives them, and kept only when its accuracy on the val split is
within a given drop of the float32 export's."""
import copy
import os
import os.path as osp
import shutil
import tempfile
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import atomic_output, remove_stale_temporaries, write_json
from mmcityscapes.datasets.layout import innermost_dataset
from mmcityscapes.deployment.export import slides_windows, test_resize
from mmcityscapes.deployment.onnx_models import exported_model
from mmcityscapes.engine.runner.runtime import prepare_runtime
from mmcityscapes.utils.manifest import MANIFEST, MODEL, read_export, sha256
from mmcityscapes.utils.model import build_model
from mmcityscapes.utils.tasks import model_family

METHODS = ('minmax', 'entropy', 'percentile')
# Mask R-CNN: the convolutions and matrix products are quantized; RoiAlign, NonMaxSuppression,
# TopK and the box arithmetic between them stay float32.
INSTANCE_OP_TYPES = ['Conv', 'ConvTranspose', 'MatMul', 'Gemm']
# The accuracy compared: (metric key, factor to percentage points).
ACCURACY = dict(semantic=[('mIoU', 1.0)], instance=[('coco/segm_mAP', 100.0), ('cityscapes/mAP', 100.0)])


class RecordingSession:
    """An onnxruntime session that keeps a copy of every input it runs on."""

    def __init__(self, session: object) -> None:
        self.session, self.feeds = session, []

    def run(self, output_names: Optional[List[str]], feed: Dict[str, np.ndarray]) -> list:
        self.feeds.append({name: np.array(value, copy=True) for name, value in feed.items()})
        return self.session.run(output_names, feed)

    def __getattr__(self, name: str) -> object:
        return getattr(self.session, name)


@contextmanager
def recorded_inputs(model: object) -> Iterator[List[Dict[str, np.ndarray]]]:
    """While open, the onnxruntime session of ``model`` (an export's model) keeps a copy of every
    input it runs on, in the list yielded."""
    session = model.session
    model.session = RecordingSession(session)
    try:
        yield model.session.feeds
    finally:
        model.session = session


def calibration_inputs(cfg: Config, model: torch.nn.Module, images: int, seed: int = 0) -> List[Dict[str, np.ndarray]]:
    """The inputs the export ``model`` (an ``ONNXSegmentor`` or ``ONNXDetector``) receives for
    ``images`` training images (a seeded sample of the config's training set) read by the config's
    test pipeline and data preprocessor; windows of slide inference are inputs of their own. Images
    that cannot be read are skipped and named; with none left, one line."""
    dataset_cfg = copy.deepcopy(innermost_dataset(cfg.train_dataloader.dataset))
    dataset_cfg.pipeline = cfg.test_dataloader.dataset.pipeline
    dataset_cfg.pop('indices', None)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        from mmengine.registry import DATASETS
        dataset = DATASETS.build(dataset_cfg)
    if len(dataset) == 0:
        raise UserError(f'no training images to calibrate on in {cfg.filename}\'s train_dataloader '
                        f'({dataset_cfg.get("data_root")})')
    order = np.random.default_rng(seed).permutation(len(dataset))
    used = 0
    with recorded_inputs(model) as feeds:
        for index in order.tolist():
            if used == images:
                break
            try:
                sample = dataset[index]
            except Exception as e:  # an unreadable image: calibrate on the others
                print(f'skipped training image {index} for calibration: {str(e).strip().splitlines()[0]}')
                continue
            model.test_step(pseudo_collate([sample]))
            used += 1
    if not feeds:
        raise UserError(f'none of the training images of {cfg.filename} could be read for calibration')
    return feeds


class FeedReader:
    """onnxruntime's ``CalibrationDataReader`` over recorded inputs."""

    def __init__(self, feeds: List[Dict[str, np.ndarray]]) -> None:
        self.feeds: Iterator[Dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self.feeds, None)


def write_calibration(model: str, feeds: List[Dict[str, np.ndarray]], method: object,
                      op_types: Optional[List[str]], cache: str) -> None:
    """Write onnxruntime's calibration cache (``save_tensors_data``: each tensor's range) of
    ``model`` on ``feeds`` with onnxruntime's calibrator, one input at a time, its session running
    each added range reduction as soon as its activation is produced (``PRIORITY_BASED``). In
    onnxruntime's default order the reductions ran after the whole network, every activation held
    until then: DeepLabV3 R50-D8 at 1024x2048 passed 24 GB. The ranges are the same."""
    import onnxruntime
    from onnxruntime.quantization import create_calibrator, save_tensors_data
    with tempfile.TemporaryDirectory(prefix='calibrate_') as scratch:
        calibrator = create_calibrator(model, op_types, augmented_model_path=osp.join(scratch, 'augmented.onnx'),
                                       calibrate_method=method)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL  # as the calibrator's
        options.execution_order = onnxruntime.ExecutionOrder.PRIORITY_BASED
        calibrator.infer_session = onnxruntime.InferenceSession(calibrator.augmented_model_path, options,
                                                                providers=calibrator.execution_providers)
        for feed in feeds:  # minmax keeps the running ranges, entropy and percentile merge histograms
            calibrator.collect_data(FeedReader([feed]))
        save_tensors_data(calibrator.compute_data(), cache)


def output_nodes(onnx_file: str) -> List[str]:
    """The nodes that compute the graph's outputs (the logits, the detections) and, before a label
    map, its cast, argmax and resize and the node of the logits they take: they stay float, so that
    the logits are not rounded to 256 levels (near-equal class scores would swap)."""
    import onnx
    graph = onnx.load(onnx_file, load_external_data=False).graph
    producer = {name: node for node in graph.node for name in node.output}
    kept, tensors = [], [output.name for output in graph.output]
    while tensors:
        node = producer.get(tensors.pop())
        if node is not None and node.name not in kept:
            kept.append(node.name)
            if node.op_type in ('Cast', 'ArgMax', 'Resize'):
                tensors.append(node.input[0])
    return kept


def quantize_model(float_model: str, int8_model: str, feeds: List[Dict[str, np.ndarray]], method: str,
                   op_types: Optional[List[str]]) -> None:
    """onnxruntime's static quantization: QDQ, uint8 activations and per-channel int8 weights (the
    fastest combination measured on this CPU), after ``quant_pre_process``, from the ranges
    ``write_calibration`` records."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    calibrate = dict(minmax=CalibrationMethod.MinMax, entropy=CalibrationMethod.Entropy,
                     percentile=CalibrationMethod.Percentile)[method]
    prepared, cache = int8_model + '.prepared.onnx', int8_model + '.ranges.json'
    try:
        quant_pre_process(float_model, prepared, skip_symbolic_shape=True)
        write_calibration(prepared, feeds, calibrate, op_types, cache)
        quantize_static(prepared, int8_model, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=calibrate,
                        op_types_to_quantize=op_types, nodes_to_exclude=output_nodes(prepared),
                        calibration_cache_path=cache)
    finally:
        for path in (prepared, cache):
            if osp.exists(path):
                os.remove(path)


def write_int8_export(directory: str, manifest: dict, int8_dir: str, feeds: List[Dict[str, np.ndarray]],
                      method: str, task: str, calibration: str) -> dict:
    """Quantize the float32 export (``directory``, ``manifest``) into ``int8_dir`` with its manifest,
    which records the precision and the calibration (``calibration`` says on what); return it."""
    os.makedirs(int8_dir, exist_ok=True)
    op_types = INSTANCE_OP_TYPES if task == 'instance' else None
    quantize_model(osp.join(directory, manifest['model']), osp.join(int8_dir, MODEL), feeds, method, op_types)
    quantization = dict(format='QDQ', activations='uint8', weights='int8 per channel', method=method,
                        calibration=calibration, calibration_inputs=len(feeds),
                        op_types=op_types or 'all onnxruntime quantizes',
                        source_export=osp.abspath(directory), source_model_sha256=manifest['model_sha256'])
    int8_manifest = dict(manifest, model_sha256=sha256(osp.join(int8_dir, MODEL)), precision='int8',
                         quantization=quantization)
    write_json(int8_manifest, osp.join(int8_dir, MANIFEST), indent=2)
    return int8_manifest


def score_export(cfg: Config, model_cfg: dict, work_dir: str, images: Optional[int]) -> dict:
    """The config's test loop and evaluators on the model ``model_cfg`` (the first ``images`` test images)."""
    cfg = copy.deepcopy(cfg)
    cfg.model, cfg.load_from, cfg.work_dir = model_cfg, None, work_dir
    # unique names: mmengine keeps one logger and one visualizer per name in the process
    cfg.experiment_name = name = '_'.join(work_dir.split(os.sep)[-2:])
    cfg.visualizer = dict(type=cfg.visualizer.type, vis_backends=[dict(type='LocalVisBackend')], name=name)
    if images:
        cfg.test_dataloader.dataset.indices = images
    cfg.test_dataloader.persistent_workers = False
    return Runner.from_cfg(cfg).test()


def accuracy_table(accuracy: dict) -> str:
    rows = [f'| {key} | {v["float32"]:.2f} | {v["int8"]:.2f} | {v["drop"]:+.2f} |' for key, v in accuracy.items()]
    return '\n'.join(['| metric (points) | float32 | int8 | drop |', '| --- | ---: | ---: | ---: |', *rows])


def run_at_export_size(cfg: Config, directory: str, manifest: dict) -> str:
    """Set the test pipeline's ``Resize`` scale of ``cfg`` to the size a fixed-size export of
    another size takes (an edge model exported at a reduced resolution), so that it is calibrated
    and tested as it will run, saying so in one line; returns the size (``'512x1024'``) or ``''``
    (a dynamic export, one of the config's test size, a config testing by sliding windows, or a
    test pipeline without a ``Resize``, whose images the export takes as they are or refuses in
    one line)."""
    exporter = manifest.get('exporter') or {}
    if exporter.get('dynamic_shape') or not exporter.get('shape') or slides_windows(cfg):
        return ''
    height, width = exporter['shape']
    resize = test_resize(cfg)
    if resize is None or tuple(resize.scale) == (width, height):
        return ''
    resize.scale = (width, height)
    print(f'{directory} takes {height}x{width} images: calibrating and testing it at that size (the test '
          f'pipeline\'s Resize scale set to ({width}, {height}))')
    return f'{height}x{width}'


def quantize(cfg: Config, export_dir: str, out_dir: str, calib_images: int = 32, method: str = 'minmax',
             max_drop: float = 1.0, eval_images: Optional[int] = None, force: bool = False) -> dict:
    """Write the int8 export of the float32 export ``export_dir`` to ``out_dir`` (``model.onnx``
    and ``deploy.json``, which records the precision, the calibration and the accuracy of both
    on the val split) and return its manifest. Nothing is written when the accuracy drops by more
    than ``max_drop`` points unless ``force``; ``out_dir`` holding another export is refused."""
    if method not in METHODS:
        raise UserError(f'--method {method}: one of {", ".join(METHODS)}')
    if calib_images < 1:
        raise UserError(f'--calib-images must be at least 1, not {calib_images}')
    directory, manifest = read_export(export_dir)
    if manifest.get('precision', 'float32') != 'float32':
        raise UserError(f'{directory} is an {manifest["precision"]} export already: quantize its float32 export '
                        f'({manifest["quantization"]["source_export"]})')
    model_cfg = exported_model(cfg, directory, manifest)  # an export of another config: one line before anything runs
    size = run_at_export_size(cfg, directory, manifest)
    at_size = f' at {size}' if size else ''
    task = model_family(cfg)
    if osp.isfile(osp.join(out_dir, MANIFEST)):
        raise UserError(f'{out_dir} already holds an export: pass another --out or remove it')
    prepare_runtime(cfg, splits=('train', 'test'))
    if osp.isdir(out_dir):
        remove_stale_temporaries(out_dir)
    feeds = calibration_inputs(cfg, build_model(cfg, model_cfg), calib_images)
    with tempfile.TemporaryDirectory(prefix='quantize_') as scratch:
        int8_dir = osp.join(scratch, 'int8')
        int8_manifest = write_int8_export(directory, manifest, int8_dir, feeds, method, task,
                                          calibration=f'{min(calib_images, len(feeds))} training images{at_size}')
        int8_cfg = exported_model(cfg, *read_export(int8_dir))
        metrics = {precision: score_export(cfg, model, osp.join(scratch, precision), eval_images)
                   for precision, model in (('float32', model_cfg), ('int8', int8_cfg))}
        accuracy = {}
        for key, factor in ACCURACY[task]:
            float32, int8 = (float(metrics[precision][key]) * factor for precision in ('float32', 'int8'))
            accuracy[key] = dict(float32=float32, int8=int8, drop=float32 - int8)
        print(accuracy_table(accuracy))
        worst = max(accuracy.items(), key=lambda item: item[1]['drop'])
        if worst[1]['drop'] > max_drop and not force:
            raise UserError(f'int8 loses {worst[1]["drop"]:.2f} points of {worst[0]} (more than --max-drop '
                            f'{max_drop}); nothing was written (--force writes it anyway)')
        int8_manifest['check'] = dict(manifest['check'], accuracy=accuracy,
                                      evaluated_on=f'{eval_images or "all"} test images of {cfg.filename}{at_size}')
        os.makedirs(out_dir, exist_ok=True)
        with atomic_output(osp.join(out_dir, MODEL)) as partial:
            shutil.copyfile(osp.join(int8_dir, MODEL), partial)
    write_json(int8_manifest, osp.join(out_dir, MANIFEST), indent=2)  # last: its presence means complete
    return int8_manifest
