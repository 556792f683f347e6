"""U-Net decoder as an mmseg decode head, for any multi-scale encoder."""
from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class UNetHead(BaseDecodeHead):
    """U-Net decoder over encoder features of increasing stride (e.g. ResNet's 1/4 ... 1/32).

    Each block upsamples x2, concatenates the encoder feature of that scale while there is one
    (skip connections at every encoder stage) and applies two 3x3 conv-norm-act layers. With
    the default five blocks (256, 128, 64, 32, 16 channels, as segmentation-models-pytorch's
    Unet) a 1/32 encoder is decoded back to the input resolution.

    Args:
        decoder_channels (Sequence[int]): output channels of the decoder blocks, deepest first.
        **kwargs: BaseDecodeHead arguments; ``in_channels``/``in_index`` list the encoder
            features from the shallowest to the deepest.
    """

    def __init__(self, decoder_channels: Sequence[int] = (256, 128, 64, 32, 16), **kwargs) -> None:
        super().__init__(input_transform='multiple_select', channels=decoder_channels[-1], **kwargs)
        skip_channels = list(self.in_channels[-2::-1])  # deepest skip first
        blocks, previous = [], self.in_channels[-1]
        for i, out in enumerate(decoder_channels):
            skip = skip_channels[i] if i < len(skip_channels) else 0
            blocks.append(nn.Sequential(
                ConvModule(previous + skip, out, 3, padding=1, conv_cfg=self.conv_cfg,
                           norm_cfg=self.norm_cfg, act_cfg=self.act_cfg),
                ConvModule(out, out, 3, padding=1, conv_cfg=self.conv_cfg,
                           norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)))
            previous = out
        self.blocks = nn.ModuleList(blocks)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        features = self._transform_inputs(inputs)
        skips = features[-2::-1]
        x = features[-1]
        for i, block in enumerate(self.blocks):
            if i < len(skips):
                x = F.interpolate(x, size=skips[i].shape[2:], mode='nearest')
                x = torch.cat([x, skips[i]], dim=1)
            else:
                x = F.interpolate(x, scale_factor=2, mode='nearest')
            x = block(x)
        return self.cls_seg(x)
