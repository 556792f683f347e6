"""Model loading: a checkpoint, a training work dir or an export as a ready model.

A checkpoint is read once (a work dir stands for its best checkpoint); an export is run by
onnxruntime inside mmseg's/mmdet's own inference (``tools/test.py``, ``tools/infer.py``,
``tools/deployment/export.py``, ``benchmark.py``, the panoptic fusion). A checkpoint loads without
the deployment modules and onnxruntime."""
from typing import Optional

import torch
from mmengine.config import Config, ConfigDict

from mmcityscapes.common.errors import UserError
from mmcityscapes.datasets.layout import test_metainfo
from mmcityscapes.utils.checkpoint import Checkpoint, resolve_checkpoint
from mmcityscapes.utils.manifest import is_export, read_export
from mmcityscapes.utils.model import build_model


class ModelSource:
    """A checkpoint file or an export of ``tools/deployment/export.py`` (its directory, model.onnx
    or deploy.json), checked as it is opened: a checkpoint that cannot be read, or an export whose
    model is not the one its manifest describes, stops with one line before anything is built.

    Args:
        path (str, optional): the checkpoint (or a training work dir: its best checkpoint) or the
            export; None when the config's model loads its own weights (``names_its_weights``).
        config_file (str, optional): the config of the model, beside which the config that trains
            an empty work dir is looked for. Defaults to None.
    """

    def __init__(self, path: Optional[str], config_file: Optional[str] = None) -> None:
        # a training work dir: its best checkpoint
        self.path = path if not path or is_export(path) else resolve_checkpoint(path, config_file)
        self.checkpoint: Optional[Checkpoint] = None
        self.export_dir, self.manifest = None, None
        if self.path is None:  # the config's model names its own weights (a fusion of trained models)
            return
        if is_export(self.path):
            self.export_dir, self.manifest = read_export(self.path)
        else:
            self.checkpoint = Checkpoint.read(self.path)

    @property
    def exported(self) -> bool:
        return self.manifest is not None

    def require_checkpoint(self, tool: str) -> Checkpoint:
        """The checkpoint, or one line saying that ``tool`` needs one rather than an export."""
        if self.checkpoint is None:
            raise UserError(f'{self.path} is an export, not a checkpoint: {tool} takes the checkpoint it was '
                            f'exported from ({self.manifest["source"]["checkpoint"]})')
        return self.checkpoint

    def require_logits(self, what: str) -> None:
        """One line when ``what`` takes class scores and this is an export that gives labels."""
        if self.exported and self.manifest['output'].get('name') == 'labels':
            raise UserError(f'{what} takes class scores, and {self.path} gives labels: export it with --output logits')

    def model_config(self, cfg: Config, device: str = 'cpu') -> ConfigDict:
        """The model config that runs this source: ``cfg.model`` for a checkpoint; for an export,
        the onnxruntime model in its place, after checking that the export was made from a model
        of this config (task, classes, input normalisation)."""
        if self.exported:
            from mmcityscapes.deployment.onnx_models import exported_model  # onnxruntime for exports only
            return ConfigDict(exported_model(cfg, self.export_dir, self.manifest, device))
        return cfg.model

    def load_into(self, model: torch.nn.Module) -> torch.nn.Module:
        """Copy a checkpoint's tensors into ``model`` (unwrapped), after checking that they fit
        (``Checkpoint.tensors_for``); an export's model has nothing to load."""
        if self.checkpoint is not None:
            self.checkpoint.load_into(model)
        return model

    def build(self, cfg: Config, device: str = 'cpu') -> torch.nn.Module:
        """The ready model, in eval mode on ``device`` (SyncBN as BN): the config's model with the
        checkpoint's tensors, or the onnxruntime model of the export."""
        return build_model(cfg, self.model_config(cfg, device), self.checkpoint, device)

    def dataset_meta(self, cfg: Config) -> dict:
        """The classes and palette predictions are named by: the config's test dataset's (mmdet and
        mmseg fall back to COCO's or Cityscapes' for a checkpoint without ``dataset_meta``); a
        checkpoint trained on other classes stops with one line."""
        metainfo = test_metainfo(cfg)
        trained = ((self.checkpoint.meta if self.checkpoint else {}).get('dataset_meta') or {}).get('classes')
        if trained is not None and tuple(trained) != tuple(metainfo['classes']):
            raise UserError(f'{self.path} was trained on the classes {", ".join(trained)}, not on those of the '
                            f'config ({", ".join(metainfo["classes"])})')
        return metainfo
