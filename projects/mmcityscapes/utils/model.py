"""What every part that reaches into a model needs: the model inside its wrappers."""
import torch
from mmengine.model import BaseTTAModel, is_model_wrapper


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside DDP/FSDP wrappers and mmengine's test-time-augmentation wrapper: the one
    a checkpoint's tensors belong to."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model
