"""Panoptic segmentation from the models users already train: a Mask R-CNN (things) and a
semantic model (stuff), combined by Panoptic FPN's heuristic."""
from typing import List, Optional

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.models.seg_heads.panoptic_fusion_heads import HeuristicFusionHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import Tensor

from mmcityscapes.apis.model_source import ModelSource
from mmcityscapes.cityscapes import panoptic
from mmcityscapes.common.errors import UserError
from mmcityscapes.datasets.layout import test_metainfo
from mmcityscapes.utils.config import load_config
from mmcityscapes.utils.tasks import model_family

REFERENCE_AREA = 1024 * 2048  # Cityscapes' image area, for which the stuff area limit is given


@MODELS.register_module()
class PanopticFusion(BaseDetector):
    """A Mask R-CNN and a semantic model, each a checkpoint or an ONNX export of its own config,
    fused into one panoptic result by Panoptic FPN's heuristic (mmdet's ``HeuristicFusionHead``):
    instances of score ``score_thr`` or more, by decreasing score, each dropped when more than
    ``overlap_thr`` of its mask is already taken and pasted on the free pixels otherwise; then
    the semantic model's argmax on the rest: a stuff class covering less than ``stuff_area``
    pixels of a 1024x2048 image (scaled with the image's area) becomes void, and so do pixels
    whose argmax is a thing class no instance covers.

    Each model sees the test image through its own data preprocessor (normalisation, padding) and
    returns its result at the original size. The data samples also get both families' own
    results, ``pred_instances`` (every detection) and ``pred_sem_seg`` (in this model's class
    order), for their own metrics.

    Args:
        thing_config (str): the Mask R-CNN's config (8 Cityscapes thing classes).
        thing_checkpoint (str): its checkpoint, training work dir or export directory.
        stuff_config (str): the semantic model's config (the 19 Cityscapes train-id classes).
        stuff_checkpoint (str): its checkpoint, training work dir or export directory.
        score_thr (float): instances below this score are not pasted. Defaults to 0.5.
        overlap_thr (float): an instance more covered than this is dropped. Defaults to 0.5.
        stuff_area (int): stuff classes below this many pixels at 1024x2048 become void.
            Defaults to 4096.
    """

    def __init__(self, thing_config: str, thing_checkpoint: str, stuff_config: str, stuff_checkpoint: str,
                 score_thr: float = 0.5, overlap_thr: float = 0.5, stuff_area: int = 4096,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor or dict(type='BaseDataPreprocessor'), init_cfg=init_cfg)
        self.things = self.build_part(thing_config, thing_checkpoint, 'instance', panoptic.THING_CLASSES)
        self.stuff = self.build_part(stuff_config, stuff_checkpoint, 'semantic', panoptic.CLASSES)
        stuff_classes = list(test_metainfo(load_config(stuff_config))['classes'])
        # the stuff model's channels in this model's class order, and its thing-class channels
        self.register_buffer('class_channels', torch.tensor([stuff_classes.index(c) for c in panoptic.CLASSES]),
                             persistent=False)
        self.score_thr, self.stuff_area = score_thr, stuff_area
        self.fusion = HeuristicFusionHead(num_things_classes=len(panoptic.THING_CLASSES),
                                          num_stuff_classes=len(panoptic.STUFF_CLASSES),
                                          test_cfg=ConfigDict(mask_overlap=overlap_thr, stuff_area_limit=stuff_area))

    @staticmethod
    def build_part(config: str, checkpoint: str, family: str, classes: tuple) -> torch.nn.Module:
        """One of the two models, ready, after checking its family and that it predicts the
        classes this model needs (one line otherwise)."""
        cfg = load_config(config)
        if model_family(cfg) != family:
            raise UserError(f'{config} is a {model_family(cfg)} config; the fusion takes '
                            f'{"an instance" if family == "instance" else "a semantic"} one here')
        missing = [c for c in classes if c not in test_metainfo(cfg)['classes']]
        if family == 'instance' and tuple(test_metainfo(cfg)['classes']) != classes or missing:
            raise UserError(f'{config} does not predict the Cityscapes {family} classes the fusion needs'
                            f'{" (e.g. " + missing[0] + ")" if missing else ""}')
        source = ModelSource(checkpoint, config)
        source.require_logits('the panoptic fusion')
        return source.build(cfg)

    def predict(self, batch_inputs: List[Tensor], batch_data_samples: List[DetDataSample],
                rescale: bool = True) -> List[DetDataSample]:
        for image, sample in zip(batch_inputs, batch_data_samples):
            instances = self.things.test_step(dict(inputs=[image], data_samples=[
                DetDataSample(metainfo=sample.metainfo)]))[0].pred_instances
            logits = self.stuff.test_step(dict(inputs=[image], data_samples=[
                SegDataSample(metainfo=sample.metainfo)]))[0].seg_logits.data
            logits = logits[self.class_channels]  # this model's class order
            things = len(panoptic.THING_CLASSES)
            # the semantic argmax among the stuff classes and "a thing" (void unless an instance covers it)
            seg_preds = torch.cat([logits[things:], logits[:things].max(0, keepdim=True)[0]])
            height, width = seg_preds.shape[-2:]
            self.fusion.test_cfg.stuff_area_limit = self.stuff_area * height * width / REFERENCE_AREA
            kept = instances[instances.scores >= self.score_thr]
            sample.pred_panoptic_seg = self.fusion.predict([kept], [seg_preds])[0]
            sample.pred_instances = instances
            sample.pred_sem_seg = PixelData(sem_seg=logits.argmax(0, keepdim=True))
        return batch_data_samples

    def loss(self, *args, **kwargs) -> dict:
        raise UserError('PanopticFusion combines trained models: train its Mask R-CNN and its semantic model')

    _forward = extract_feat = loss
