from .device_assigner import DeviceMaxIoUAssigner
from .device_mask_head import DeviceTargetFCNMaskHead
from .device_sampler import DeviceRandomSampler
from .float32_roi_extractor import Float32RoIExtractor
from .torchvision_aspp_head import TorchvisionASPPHead
from .unet_head import UNetHead

__all__ = ['DeviceMaxIoUAssigner', 'DeviceRandomSampler', 'DeviceTargetFCNMaskHead', 'Float32RoIExtractor',
           'TorchvisionASPPHead', 'UNetHead']
