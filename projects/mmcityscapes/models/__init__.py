from mmcityscapes.models.device_assigner import DeviceMaxIoUAssigner
from mmcityscapes.models.device_mask_head import DeviceTargetFCNMaskHead
from mmcityscapes.models.device_sampler import DeviceRandomSampler
from mmcityscapes.models.float32_roi_extractor import Float32RoIExtractor
from mmcityscapes.models.float32_rpn_head import Float32RPNHead
from mmcityscapes.models.maskformer_semantic_fusion_head import MaskFormerSemanticFusionHead
from mmcityscapes.models.torchvision_aspp_head import TorchvisionASPPHead
from mmcityscapes.models.unet_head import UNetHead

__all__ = ['DeviceMaxIoUAssigner', 'DeviceRandomSampler', 'DeviceTargetFCNMaskHead', 'Float32RoIExtractor',
           'Float32RPNHead', 'MaskFormerSemanticFusionHead', 'TorchvisionASPPHead', 'UNetHead']
