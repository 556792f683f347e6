"""Exported models as mmseg/mmdet models: mmseg's (mmdet's) own inference and post-processing
around an onnxruntime session, so that the tools' runner, evaluators and inferencers use an
export exactly as they use a checkpoint."""
import os.path as osp
from typing import TYPE_CHECKING, List, NoReturn, Optional

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData
from mmseg.models import EncoderDecoder
from mmseg.models.segmentors import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from mmcityscapes.common.errors import UserError
from mmcityscapes.datasets.layout import test_metainfo
from mmcityscapes.utils.manifest import MANIFEST, check_matches
from mmcityscapes.utils.tasks import model_family

if TYPE_CHECKING:  # onnxruntime is imported when a session is made
    import onnxruntime as ort

def inference_session(onnx_file: str, device: str = 'cpu',
                      profile_prefix: Optional[str] = None) -> 'ort.InferenceSession':
    """An onnxruntime session on ``device`` (CUDA EP for cuda devices, where installed); with
    ``profile_prefix``, one that profiles every node into ``<profile_prefix>_<time>.json``
    (``session.end_profiling()`` names the file) and writes the graph it runs, after
    onnxruntime's fusions and layout changes, to ``<profile_prefix>_optimized.onnx``."""
    import onnxruntime as ort
    providers = ['CPUExecutionProvider']
    if str(device).startswith('cuda') and 'CUDAExecutionProvider' in ort.get_available_providers():
        providers.insert(0, 'CUDAExecutionProvider')
    options = ort.SessionOptions()
    if profile_prefix:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
        options.optimized_model_filepath = f'{profile_prefix}_optimized.onnx'
    try:
        return ort.InferenceSession(onnx_file, options, providers=providers)
    except Exception as e:  # onnxruntime's own words for an unreadable or invalid model
        raise UserError(f'onnxruntime cannot load {onnx_file}: {str(e).strip().splitlines()[0]}') from None


@MODELS.register_module()
class ONNXSegmentor(EncoderDecoder):
    """mmseg's ``EncoderDecoder`` inference (whole or sliding window, padding removal, flips,
    resizing to the original image) around the exported network, run by onnxruntime.

    Args:
        onnx_file (str): the export's ``model.onnx``.
        data_preprocessor (dict): the config's, which normalises the image as at export; for a
            uint8 export, one that only stacks the images (the graph normalises them).
        test_cfg (dict): the config's (``mode='whole'`` or ``'slide'``).
        align_corners (bool): the decode head's, for resizing the logits.
        num_classes (int): classes of the logits.
        device (str): onnxruntime runs on the CPU, or the CUDA EP for a cuda device.
        input (str): what the graph takes: ``'float32'`` (the normalised NCHW image) or ``'uint8'``
            (the decoded NHWC BGR image). Defaults to ``'float32'``.
        output (str): what it gives: ``'logits'`` (the decode head's) or ``'labels'`` (the label
            map at the input size, which becomes ``pred_sem_seg`` with no ``seg_logits``).
            Defaults to ``'logits'``.
    """

    def __init__(self, onnx_file: str, data_preprocessor: dict, test_cfg: dict, align_corners: bool, num_classes: int,
                 device: str = 'cpu', input: str = 'float32', output: str = 'logits',
                 init_cfg: Optional[dict] = None) -> None:
        BaseSegmentor.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.session = inference_session(onnx_file, device)
        image = self.session.get_inputs()[0]
        self.input_name, self.onnx_file, self.input, self.output = image.name, onnx_file, input, output
        self.input_size = image.shape[1:3] if input == 'uint8' else image.shape[2:]
        self.test_cfg, self.align_corners = test_cfg, align_corners
        self.num_classes = self.out_channels = num_classes
        self.train_cfg = None
        if output == 'labels' and test_cfg.get('mode', 'whole') != 'whole':
            raise UserError(f'{onnx_file} gives labels, and the config tests by sliding windows, whose logits are '
                            'merged: export it with --output logits')

    def feed(self, inputs: Tensor) -> dict:
        """The session's input for a batch from the data preprocessor."""
        fixed = [s for s in self.input_size if isinstance(s, int)]
        if len(fixed) == 2 and tuple(fixed) != tuple(inputs.shape[2:]):
            raise UserError(f'{self.onnx_file} was exported for {fixed[0]}x{fixed[1]} inputs, not '
                            f'{inputs.shape[2]}x{inputs.shape[3]}: export it with --shape '
                            f'{inputs.shape[2]} {inputs.shape[3]} or --dynamic-shape')
        inputs = inputs.detach()
        if self.input == 'uint8':  # the decoded pixels, as the preprocessor stacked them
            inputs = inputs.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        return {self.input_name: inputs.cpu().numpy() if self.input == 'uint8' else inputs.float().cpu().numpy()}

    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> list:
        if self.output == 'logits':
            return super().predict(inputs, data_samples)
        labels = torch.from_numpy(self.session.run(None, self.feed(inputs))[0]).to(inputs.device)
        if data_samples is None:  # as mmseg: the network's prediction as it is
            return [SegDataSample(pred_sem_seg=PixelData(data=label[None].long())) for label in labels]
        return self.add_labels(labels, data_samples)

    @staticmethod
    def add_labels(labels: Tensor, data_samples: list) -> list:
        """``data_samples`` with the export's label maps (N x H x W) as ``pred_sem_seg`` of their images."""
        for label, sample in zip(labels, data_samples):
            sample.pred_sem_seg = PixelData(data=label_map_of_original(label, sample.metainfo))
        return data_samples

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """The exported network's logits, resized as mmseg's ``BaseDecodeHead.predict_by_feat`` does."""
        logits = self.session.run(None, self.feed(inputs))[0]
        meta = batch_img_metas[0]
        if isinstance(meta['img_shape'], torch.Size):  # a window of slide inference
            size = meta['img_shape']
        else:
            size = meta['pad_shape'][:2] if 'pad_shape' in meta else meta['img_shape']
        return resize(torch.from_numpy(logits).to(inputs.device), size=size, mode='bilinear',
                      align_corners=self.align_corners)


def label_map_of_original(labels: Tensor, meta: dict) -> Tensor:
    """A label map of the network's input (H x W) as a 1 x H x W map of the original image, as
    mmseg's ``postprocess_result`` treats logits: padding removed, a flip undone, resized to
    ``ori_shape`` (nearest: labels are not interpolated)."""
    left, right, top, bottom = meta.get('img_padding_size', meta.get('padding_size', (0, 0, 0, 0)))
    labels = labels[top:labels.shape[0] - bottom, left:labels.shape[1] - right]
    if meta.get('flip'):
        labels = labels.flip(1 if meta['flip_direction'] == 'horizontal' else 0)
    labels = labels[None, None].float()
    if tuple(labels.shape[2:]) != tuple(meta['ori_shape'][:2]):
        labels = torch.nn.functional.interpolate(labels, size=tuple(meta['ori_shape'][:2]), mode='nearest')
    return labels[0].long()


@DET_MODELS.register_module()
class ONNXDetector(BaseDetector):
    """mmdet's Mask R-CNN prediction around the exported graph (image -> boxes, scores, labels,
    mask logits), run by onnxruntime: mmdet's mask head pastes the masks into the original image
    and rescales the boxes, as in ``StandardRoIHead.predict``.

    Args:
        onnx_file (str): the export's ``model.onnx``.
        data_preprocessor (dict): the config's, which normalises the image as at export.
        mask_head (dict): the config's mask head, for pasting (its weights are not used).
        test_cfg (dict): the config's (``rcnn.mask_thr_binary`` binarises the pasted masks).
        device (str): onnxruntime runs on the CPU, or the CUDA EP for a cuda device.
    """

    def __init__(self, onnx_file: str, data_preprocessor: dict, mask_head: dict, test_cfg: dict, device: str = 'cpu',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.session = inference_session(onnx_file, device)
        self.input_shape, self.onnx_file = tuple(self.session.get_inputs()[0].shape[2:]), onnx_file
        self.mask_head, self.test_cfg = DET_MODELS.build(mask_head), test_cfg

    def predict(self, batch_inputs: Tensor, batch_data_samples: list, rescale: bool = True) -> list:
        results = []
        for image, sample in zip(batch_inputs, batch_data_samples):
            if tuple(sample.img_shape) != self.input_shape or tuple(image.shape[1:]) != self.input_shape:
                raise UserError(f'{self.onnx_file} was exported for {self.input_shape[0]}x{self.input_shape[1]} '
                                f'images, not {sample.img_shape[0]}x{sample.img_shape[1]} (after the test '
                                f'pipeline): export it with --shape {sample.img_shape[0]} {sample.img_shape[1]}')
            outputs = self.session.run(None, {'image': image[None].detach().float().cpu().numpy()})
            boxes, scores, labels, mask_logits = (torch.from_numpy(o).to(image.device) for o in outputs)
            if self.mask_head.class_agnostic:
                mask_preds = mask_logits[:, None]
            else:  # the logits of each detection's class where mmdet's head looks for them
                mask_preds = mask_logits.new_zeros(len(labels), self.mask_head.num_classes, *mask_logits.shape[1:])
                mask_preds[torch.arange(len(labels)), labels] = mask_logits
            instances = InstanceData(bboxes=boxes, scores=scores, labels=labels)
            results += self.mask_head.predict_by_feat((mask_preds,), [instances], [sample.metainfo],
                                                      self.test_cfg.rcnn, rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def loss(self, *args, **kwargs) -> NoReturn:
        raise UserError(f'{self.onnx_file} is an exported model: it only predicts')

    _forward = extract_feat = loss


def exported_model(cfg: Config, directory: str, manifest: dict, device: str = 'cpu') -> dict:
    """The model config that runs the export in ``directory`` (its ``manifest``, as ``read_export``
    returns them) in place of ``cfg.model``, after checking that the export was made from a model
    of this config (task, classes, input normalisation)."""
    task, preprocessor = model_family(cfg), cfg.model.data_preprocessor
    check_matches(manifest, osp.join(directory, MANIFEST), task, test_metainfo(cfg)['classes'], preprocessor.mean,
                  preprocessor.std, bool(preprocessor.get('bgr_to_rgb')))
    onnx_file = osp.join(directory, manifest['model'])
    if task == 'instance':
        return dict(type='ONNXDetector', onnx_file=onnx_file, data_preprocessor=preprocessor,
                    mask_head=cfg.model.roi_head.mask_head, test_cfg=cfg.model.test_cfg, device=device)
    input, output = manifest['input']['dtype'], manifest['output']['name']
    if input == 'uint8':  # the graph orders the channels and normalises
        preprocessor = dict(preprocessor, mean=None, std=None, bgr_to_rgb=False, rgb_to_bgr=False)
    return dict(type='ONNXSegmentor', onnx_file=onnx_file, data_preprocessor=preprocessor,
                test_cfg=cfg.model.test_cfg, align_corners=cfg.model.decode_head.align_corners,
                num_classes=cfg.model.decode_head.num_classes, device=device, input=input, output=output)
