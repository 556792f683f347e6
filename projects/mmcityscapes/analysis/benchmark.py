"""Speed and memory of a config's model against the reproduced projects' models and its own ONNX
export (``tools/analysis_tools/benchmark.py``): seeded random batches through ``train_step`` /
``test_step``, timed, with peak memory and optional profiles."""
import copy
import os.path as osp
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import init_default_scope

from mmcityscapes.apis.model_source import ModelSource
from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import write_text
from mmcityscapes.common.tables import markdown_table
from mmcityscapes.datasets.layout import innermost_dataset
from mmcityscapes.utils.checkpoint import Checkpoint
from mmcityscapes.utils.manifest import read_export
from mmcityscapes.utils.memory import PeakMemory
from mmcityscapes.utils.profiling import convolution_table, onnxruntime_profile_table, profile_steps
from mmcityscapes.utils.tasks import model_family

SMP_ENCODERS = {('ResNet', 34): 'resnet34', ('ResNeXt', 50): 'resnext50_32x4d', ('MobileNetV2', None): 'mobilenet_v2'}


Step = Callable[[torch.Tensor, list, bool], object]  # one batch through a model: (images, labels, train)


def random_batch(task: str, num_classes: int, shape: Sequence[int], batch: int, seed: int = 0) -> Tuple[torch.Tensor,
                 list]:
    """uint8 images and their labels: a label map, or 1-4 boxes with rectangular masks each."""
    g = torch.Generator().manual_seed(seed)
    height, width = shape
    images = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=g)
    labels = []
    for _ in range(batch):
        if task == 'semantic':
            labels.append(torch.randint(0, num_classes, (height, width), generator=g))
            continue
        n = int(torch.randint(1, 5, (), generator=g))
        corners = torch.rand(n, 2, generator=g) * torch.tensor([width * 0.7, height * 0.7])
        sizes = (torch.rand(n, 2, generator=g) * 0.25 + 0.05) * torch.tensor([width, height])
        boxes = torch.cat([corners, corners + sizes], 1).round()
        masks = torch.zeros(n, height, width, dtype=torch.uint8)
        for mask, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
            mask[y1:y2, x1:x2] = 1
        labels.append(dict(boxes=boxes, labels=torch.randint(0, num_classes, (n,), generator=g), masks=masks))
    return images, labels


def mm_inputs(task: str, images: torch.Tensor, labels: list, train: bool) -> dict:
    """The batch in mmdet/mmseg's ``dict(inputs, data_samples)`` form."""
    from mmengine.structures import InstanceData, PixelData
    samples = []
    for label in labels:
        height, width = images.shape[2:]
        meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                    scale_factor=(1., 1.), batch_input_shape=(height, width))
        if task == 'semantic':
            from mmseg.structures import SegDataSample
            sample = SegDataSample(metainfo=meta)
            if train:
                sample.gt_sem_seg = PixelData(data=label[None])
        else:
            from mmdet.structures import DetDataSample
            from mmdet.structures.mask import BitmapMasks
            sample = DetDataSample(metainfo=meta)
            if train:
                sample.gt_instances = InstanceData(bboxes=label['boxes'], labels=label['labels'],
                                                   masks=BitmapMasks(label['masks'].numpy(), height, width))
        samples.append(sample)
    return dict(inputs=list(images), data_samples=samples)


def build_ours(cfg: Config, task: str, device: str, amp: bool) -> Tuple[torch.nn.Module, Step]:
    from mmengine.registry import MODELS
    model = revert_sync_batchnorm(MODELS.build(copy.deepcopy(cfg.model))).to(device)  # mmseg's build edits it
    sgd = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    # with AMP on CUDA, mmengine's loss scaling, as tools/train.py --amp uses
    optimizer = AmpOptimWrapper(optimizer=sgd) if amp and 'cuda' in device else OptimWrapper(sgd)

    def step(images: torch.Tensor, labels: list, train: bool) -> object:
        data = mm_inputs(task, images, labels, train)
        if train:
            model.train()
            return model.train_step(data, optimizer)
        model.eval()
        with torch.no_grad():
            return model.test_step(data)
    return model, step


def reference_model(cfg: Config, task: str, num_classes: int, shape: Sequence[int], batch: int,
                    train: bool) -> Tuple[torch.nn.Module, str]:
    """The reproduced project's model for this config, and its name."""
    if task == 'instance':
        from torchvision.models.detection import maskrcnn_resnet50_fpn
        return maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes + 1,
                                     min_size=min(shape), max_size=max(shape)), 'torchvision maskrcnn_resnet50_fpn'
    head, backbone = cfg.model.decode_head.type, cfg.model.backbone
    if head in ('ASPPHead', 'TorchvisionASPPHead'):
        if train and batch < 2:
            raise UserError('torchvision deeplabv3_resnet50 cannot train on batches of 1 (BatchNorm on its '
                            'pooled ASPP branch): use --batch 2 or more')
        from torchvision.models.segmentation import deeplabv3_resnet50
        return deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=num_classes,
                                  aux_loss=bool(cfg.model.get('auxiliary_head'))), 'torchvision deeplabv3_resnet50'
    encoder = SMP_ENCODERS.get((backbone.type, backbone.get('depth')))
    if head == 'UNetHead' and encoder:
        try:
            import segmentation_models_pytorch as smp
        except ImportError:
            raise UserError('--vs for U-Net needs segmentation-models-pytorch: '
                            'pip install -r requirements/optional.txt') from None
        name = f"segmentation-models-pytorch Unet('{encoder}')"
        return smp.Unet(encoder, encoder_weights=None, classes=num_classes), name
    raise UserError(f'--vs has no reference model for decode_head {head} on {backbone.type}')


def build_reference(cfg: Config, task: str, num_classes: int, shape: Sequence[int], batch: int, train: bool,
                    device: str, amp: bool) -> Tuple[torch.nn.Module, Step, str]:
    model, name = reference_model(cfg, task, num_classes, shape, batch, train)
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    # with AMP on CUDA, loss scaling as torchvision's reference scripts train (and as ours does)
    scaler = torch.amp.GradScaler('cuda', enabled=amp and 'cuda' in device)
    preprocessor = cfg.model.data_preprocessor  # the same normalisation as ours
    mean = torch.tensor(preprocessor.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(preprocessor.std, device=device).view(1, 3, 1, 1)

    def step(images: torch.Tensor, labels: list, train: bool) -> None:
        images = images.to(device).float()
        model.train(train)
        with torch.set_grad_enabled(train):
            if task == 'instance':  # torchvision normalises and resizes (here: to the same size) itself
                targets = [{k: v.to(device) for k, v in t.items()} for t in labels]
                out = model(list(images / 255), targets if train else None)
                loss = sum(out.values()) if train else None
            else:
                out = model((images - mean) / std)
                target = torch.stack(labels).to(device)
                if isinstance(out, dict):  # torchvision: {'out', 'aux'}, aux weighted 0.4 as in mmseg
                    loss = F.cross_entropy(out['out'], target) + (0.4 * F.cross_entropy(out['aux'], target)
                                                                 if 'aux' in out else 0)
                else:
                    loss = F.cross_entropy(out, target)
            if train:
                optimizer.zero_grad()
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
    return model, step, name


def steps_runner(step: Step, train: bool, device: str, amp: bool) -> Callable[[list], None]:
    """A function running ``step`` over batches (autocast with ``amp``) until the device is done."""
    def run_steps(batches: list) -> None:
        for images, labels in batches:
            with torch.autocast(torch.device(device).type,
                                dtype=torch.float16 if 'cuda' in device else torch.bfloat16, enabled=amp):
                step(images, labels, train)
        if 'cuda' in device:
            torch.cuda.synchronize()
    return run_steps


def run(run_steps: Callable[[list], None], batches: list, warmup: int, device: str) -> Tuple[float, List[float], int]:
    """(images/s, per-batch latencies in s, peak memory in bytes) of ``run_steps`` over
    ``batches`` after ``warmup`` of them."""
    run_steps(batches[:warmup])
    latencies = []
    with PeakMemory(device) as memory:
        for batch in batches[warmup:]:
            start = time.perf_counter()
            run_steps([batch])
            latencies.append(time.perf_counter() - start)
    return sum(len(images) for images, _ in batches[warmup:]) / sum(latencies), latencies, memory.growth()


def build_exported(cfg: Config, model: torch.nn.Module, shape: Sequence[int], device: str, work_dir: str,
                   input: Optional[str] = None) -> Tuple[torch.nn.Module, Step]:
    """The ONNX export of ``model`` (its current weights) at ``shape``, run by onnxruntime in
    ``ONNXSegmentor`` or ``ONNXDetector``, and its step."""
    from mmcityscapes.deployment.export import export
    checkpoint = osp.join(work_dir, 'weights.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), checkpoint)
    export(cfg, Checkpoint.read(checkpoint), osp.join(work_dir, 'export'), shape=shape, input=input)
    exported = ModelSource(osp.join(work_dir, 'export')).build(cfg, device)

    def step(images: torch.Tensor, labels: list, train: bool) -> object:
        return exported.test_step(mm_inputs(model_family(cfg), images, labels, train))
    return exported, step


def build_int8(cfg: Config, exported: torch.nn.Module, batches: list, device: str,
               work_dir: str) -> Tuple[torch.nn.Module, Step]:
    """The int8 quantization of the export ``exported`` (``build_exported``'s), calibrated on the
    benchmark's own random batches (the calibration sets the scales, not the speed), and its step."""
    from mmcityscapes.deployment.quantize import recorded_inputs, write_int8_export
    task = model_family(cfg)
    with recorded_inputs(exported) as feeds:
        for images, labels in batches[:4]:
            exported.test_step(mm_inputs(task, images, labels, False))
    directory, manifest = read_export(osp.dirname(exported.onnx_file))
    write_int8_export(directory, manifest, osp.join(work_dir, 'int8'), feeds, 'minmax', task,
                      calibration='the benchmark\'s random inputs (speed only)')
    int8 = ModelSource(osp.join(work_dir, 'int8')).build(cfg, device)

    def step(images: torch.Tensor, labels: list, train: bool) -> object:
        return int8.test_step(mm_inputs(task, images, labels, train))
    return int8, step


STEP_PARTS = ('decode', 'preprocess', 'network', 'postprocess')


def step_parts(model: torch.nn.Module, images: torch.Tensor) -> dict:
    """Seconds of each part of a semantic model's whole inference step on ``images`` (a uint8 batch),
    from the PNG in memory to the label map of each image, as ``test_step`` does it: decode (OpenCV),
    preprocess (the data preprocessor, and an export's input conversion), network (the model's
    ``_forward`` or the export's session) and postprocess (the logits resized to the image and
    their argmax, or an export's label map taken as the image's)."""
    import cv2
    from mmseg.models.utils import resize
    encoded = [cv2.imencode('.png', image.permute(1, 2, 0).numpy())[1] for image in images]
    seconds, start = {}, time.perf_counter()

    def lap(part: str) -> None:
        nonlocal start
        seconds[part], start = time.perf_counter() - start, time.perf_counter()

    decoded = [torch.from_numpy(cv2.imdecode(png, cv2.IMREAD_COLOR)).permute(2, 0, 1) for png in encoded]
    lap('decode')
    with torch.no_grad():
        data = model.data_preprocessor(mm_inputs('semantic', torch.stack(decoded), [None] * len(decoded), False))
        inputs, samples = data['inputs'], data['data_samples']
        feed = model.feed(inputs) if hasattr(model, 'session') else None
        lap('preprocess')
        outputs = model.session.run(None, feed)[0] if feed else model._forward(inputs)
        lap('network')
        if getattr(model, 'output', 'logits') == 'labels':
            model.add_labels(torch.from_numpy(outputs), samples)
        else:
            logits = torch.from_numpy(outputs) if feed else outputs
            model.postprocess_result(resize(logits, size=inputs.shape[2:], mode='bilinear',
                                            align_corners=model.align_corners), samples)
        lap('postprocess')
    return seconds


def split_table(models: list, batches: list, warmup: int) -> str:
    """Markdown: the median ms of each of ``STEP_PARTS`` per batch, and images/s of the whole step
    from the decoded image in memory to the labels (decoding a PNG of random pixels, the slowest
    kind to decode, is shown apart)."""
    rows = []
    for name, model, _ in models:
        for images, _ in batches[:warmup]:
            step_parts(model, images)
        timed = [step_parts(model, images) for images, _ in batches[warmup:]]
        medians = [1000 * float(np.median([t[part] for t in timed])) for part in STEP_PARTS]
        images = sum(len(images) for images, _ in batches[warmup:])
        in_memory = sum(t['preprocess'] + t['network'] + t['postprocess'] for t in timed)
        rows.append((name, *(f'{ms:.1f}' for ms in medians), f'{images / in_memory:.2f}'))
    return markdown_table(['whole step of', *(f'{part} (ms)' for part in STEP_PARTS),
                           'images/s (image in memory -> labels)'], rows)


def parameters_m(model: torch.nn.Module) -> float:
    """Parameters in millions: the module's, or for an export the ONNX graph's weight initializers
    (float or 8-bit integer tensors)."""
    if not hasattr(model, 'session'):
        return sum(p.numel() for p in model.parameters()) / 1e6
    import onnx
    graph = onnx.load(model.onnx_file, load_external_data=False).graph
    kinds = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.INT8,
             onnx.TensorProto.UINT8)
    return sum(int(np.prod(t.dims)) for t in graph.initializer if t.data_type in kinds) / 1e6


@dataclass
class BenchmarkOptions:
    """What ``benchmark`` times and how (the model-mode options of ``tools/analysis_tools/benchmark.py``).

    Args:
        infer (bool): time inference instead of training steps. Defaults to False.
        shape (tuple): the input's (height, width). Defaults to (1024, 2048).
        batch (int): images per step. Defaults to 2.
        iters (int): timed iterations. Defaults to 10.
        warmup (int): untimed iterations first. Defaults to 3.
        device (str): Defaults to ``'cpu'``.
        amp (bool): autocast (float16 on CUDA, bfloat16 on CPU). Defaults to False.
        channels_last (bool): Defaults to False.
        backend (str): ``'onnxruntime'`` also times the ONNX export. Defaults to ``'pytorch'``.
        precision (str): ``'int8'`` also times the export quantized to int8. Defaults to ``'float32'``.
        export_input (str, optional): what a semantic export takes, ``'float32'`` or ``'uint8'``.
            Defaults to None (the export's default).
        split (bool): also each model's whole step split into decode, preprocess, network and
            postprocess. Defaults to False.
        vs (bool): also the reproduced projects' model on the same inputs. Defaults to False.
        profile (str, optional): profile the timed batches into this markdown file. Defaults to None.
        top (int): operators per profile table. Defaults to 15.
    """

    infer: bool = False
    shape: Tuple[int, int] = (1024, 2048)
    batch: int = 2
    iters: int = 10
    warmup: int = 3
    device: str = 'cpu'
    amp: bool = False
    channels_last: bool = False
    backend: str = 'pytorch'
    precision: str = 'float32'
    export_input: Optional[str] = None
    split: bool = False
    vs: bool = False
    profile: Optional[str] = None
    top: int = 15

    def __post_init__(self) -> None:
        self.shape = tuple(self.shape)


def profile_model(model: torch.nn.Module, run_steps: Callable[[], None], options: BenchmarkOptions,
                  title: str) -> List[str]:
    """Markdown sections of ``run_steps()`` profiled: an export by onnxruntime's profiler (its
    session swapped for a profiling one), a PyTorch model by the torch profiler and, on the CPU,
    its convolutions by kind."""
    if hasattr(model, 'session'):
        from mmcityscapes.deployment.onnx_models import inference_session
        session = model.session
        prefix = osp.splitext(options.profile)[0]
        model.session = inference_session(model.onnx_file, options.device, profile_prefix=prefix)
        try:
            run_steps()
        finally:
            trace, model.session = model.session.end_profiling(), session
        return [onnxruntime_profile_table(trace, f'{prefix}_optimized.onnx', options.iters, title, options.top)]
    sections = [profile_steps(run_steps, options.iters, title, 'cuda' in options.device, options.top)]
    if 'cuda' not in options.device:
        sections.append(convolution_table(model, run_steps, options.iters, title))
    return sections


def benchmark_data(cfg: Config, samples: int) -> None:
    """Print how many samples per second the config's train pipeline gives in one process."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmengine.registry import DATASETS
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    shape = tuple(dataset[0]['inputs'].shape[1:])  # also: lazy initialisation, file system caches
    start = time.perf_counter()
    for i in range(samples):  # cycles through a small dataset
        dataset[i % len(dataset)]
    elapsed = time.perf_counter() - start
    source = innermost_dataset(cfg.train_dataloader.dataset)
    print(f'train pipeline of {source["type"]} ({source.get("data_root", "")}, {len(dataset)} images): {samples} '
          f'samples in {elapsed:.1f} s = {samples / elapsed:.2f} samples/s per worker '
          f'(first output {shape[0]}x{shape[1]})')


def benchmark(cfg: Config, options: BenchmarkOptions) -> None:
    """Print the speed and memory table of ``tools/analysis_tools/benchmark.py`` for ``cfg``'s model
    (``options``: what it times and how)."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    task = model_family(cfg)
    if cfg.model.data_preprocessor.get('size'):  # mmseg pads every batch to its crop size
        cfg.model.data_preprocessor.size = tuple(options.shape)
    num_classes = (cfg.model.decode_head.num_classes if task == 'semantic'
                   else cfg.model.roi_head.bbox_head.num_classes)
    train, device = not options.infer, options.device
    if options.split and (train or task != 'semantic' or device != 'cpu'):
        raise UserError('--split times the whole inference step of a semantic model on the CPU (--infer, '
                        '--device cpu)')
    batches = [random_batch(task, num_classes, options.shape, options.batch, seed=i)
               for i in range(options.warmup + options.iters)]
    models = [('mmcityscapes ' + osp.basename(cfg.filename), *build_ours(cfg, task, device, options.amp))]
    if options.backend == 'onnxruntime':
        if train:
            raise UserError('--backend onnxruntime times inference: add --infer')
        if task == 'instance' and options.batch != 1:
            raise UserError('--backend onnxruntime runs Mask R-CNN exports on one image at a time: use --batch 1')
        work_dir = tempfile.TemporaryDirectory()  # removed when the tool ends
        models.append((models[0][0] + ' (onnxruntime)', *build_exported(cfg, models[0][1], options.shape, device,
                                                                        work_dir.name, options.export_input)))
        if options.precision == 'int8':
            models.append((models[0][0] + ' (onnxruntime int8)', *build_int8(cfg, models[1][1], batches, device,
                                                                             work_dir.name)))
    elif options.precision == 'int8':
        raise UserError('--precision int8 runs an int8 export: add --backend onnxruntime')
    if options.vs:
        model, step, name = build_reference(cfg, task, num_classes, options.shape, options.batch, train, device,
                                            options.amp)
        models.append((name, model, step))
    mode = 'train' if train else 'inference'
    height, width = options.shape
    print(f'{mode}, batch {options.batch} of {height}x{width}, {options.iters} timed iterations after '
          f'{options.warmup}, {device}{", AMP" if options.amp else ""}'
          f'{", channels-last" if options.channels_last else ""}, torch {torch.__version__}, '
          f'{torch.get_num_threads()} threads')
    speeds, profiles, rows = [], [], []
    for name, model, step in models:
        if options.channels_last:
            model.to(memory_format=torch.channels_last)
        run_steps = steps_runner(step, train, device, options.amp)
        speed, latencies, memory = run(run_steps, batches, options.warmup, device)
        speeds.append(speed)
        parameters = parameters_m(model)
        p50, p95 = (1000 * float(np.percentile(latencies, q)) for q in (50, 95))
        rows.append((name, f'{parameters:.1f}', f'{speed:.2f}', f'{p50:.0f}', f'{p95:.0f}', f'{memory / 2 ** 20:.0f}'))
        if options.profile:
            profiles += profile_model(model, lambda: run_steps(batches[options.warmup:]), options, f'{name}, {mode}')
    print(markdown_table(['model', 'parameters (M)', 'images/s', 'latency p50 (ms)', 'p95 (ms)', 'peak memory (MiB)'],
                         rows))
    if options.split:
        print(split_table([m for m in models if m[0].startswith('mmcityscapes')], batches, options.warmup))
    if options.backend == 'onnxruntime':
        print(f'speed ratio (onnxruntime / PyTorch): {speeds[1] / speeds[0]:.2f}x')
    if options.precision == 'int8':
        print(f'speed ratio (int8 / float32 export): {speeds[2] / speeds[1]:.2f}x; '
              f'(int8 / PyTorch): {speeds[2] / speeds[0]:.2f}x')
    if options.vs:
        print(f'speed ratio (ours / reference model): {speeds[0] / speeds[-1]:.2f}x')
        if options.backend == 'onnxruntime':
            print(f'speed ratio (ours in onnxruntime / reference model): {speeds[1] / speeds[-1]:.2f}x')
    if options.profile:
        write_text('\n\n'.join(profiles), options.profile)
        print(f'profile: {options.profile}')


