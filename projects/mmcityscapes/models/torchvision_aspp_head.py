"""torchvision's DeepLabV3 head as an mmseg decode head."""
from typing import Dict

import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads import ASPPHead
from mmseg.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class TorchvisionASPPHead(ASPPHead):
    """The head of torchvision's ``deeplabv3_resnet50``: ASPP (image pooling, a 1x1 and three
    atrous 3x3 branches), a 1x1 projection with dropout, a 3x3 conv, then the classifier.

    mmseg's ``ASPPHead`` projects the branches with one 3x3 conv and drops out before the
    classifier; give this head ``dropout_ratio=0``, as torchvision has no dropout there.
    """

    def __init__(self, projection_dropout: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.bottleneck = nn.Sequential(
            ConvModule((len(self.dilations) + 1) * self.channels, self.channels, 1, **conv),
            nn.Dropout(projection_dropout),
            ConvModule(self.channels, self.channels, 3, padding=1, **conv))


def convert_torchvision_deeplabv3(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """A torchvision ``deeplabv3_resnet50`` state dict in the key names of
    ``configs/deeplabv3_r50_tv.py`` (same tensors; the ASPP projection's input channels are
    reordered, as mmseg concatenates image pooling first and torchvision last)."""
    heads = {'classifier.0.convs.4.1.': 'decode_head.image_pool.1.conv.',
             'classifier.0.convs.4.2.': 'decode_head.image_pool.1.bn.',
             'classifier.0.project.0.': 'decode_head.bottleneck.0.conv.',
             'classifier.0.project.1.': 'decode_head.bottleneck.0.bn.',
             'classifier.1.': 'decode_head.bottleneck.2.conv.', 'classifier.2.': 'decode_head.bottleneck.2.bn.',
             'classifier.4.': 'decode_head.conv_seg.', 'aux_classifier.0.': 'auxiliary_head.convs.0.conv.',
             'aux_classifier.1.': 'auxiliary_head.convs.0.bn.', 'aux_classifier.4.': 'auxiliary_head.conv_seg.'}
    heads.update({f'classifier.0.convs.{i}.{j}.': f'decode_head.aspp_modules.{i}.{layer}.'
                  for i in range(4) for j, layer in ((0, 'conv'), (1, 'bn'))})
    converted = {}
    for key, tensor in state_dict.items():
        prefix = next((p for p in heads if key.startswith(p)), None)
        if prefix is None and not key.startswith('backbone.'):
            raise KeyError(f'{key} is not a key of torchvision deeplabv3_resnet50')
        if prefix == 'classifier.0.project.0.':  # [branches..., pooling] -> [pooling, branches...]
            branches = tensor.shape[1] * 4 // 5
            tensor = torch.cat([tensor[:, branches:], tensor[:, :branches]], dim=1)
        converted[heads[prefix] + key[len(prefix):] if prefix else key] = tensor
    return converted
