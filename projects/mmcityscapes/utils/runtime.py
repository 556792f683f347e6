"""Runtime set-up shared by the tools: checkpoint loading on torch >= 2.6 and CPU-only DDP."""
import torch
import torch.distributed as torch_dist
from mmengine.dist import init_dist

from .checkpoint import allow_mmengine_checkpoints, resolve_checkpoint


def innermost_dataset(dataset_cfg):
    """The dataset inside wrappers such as RepeatDataset."""
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def _replace_sync_bn(node):
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
        for value in node.values():
            _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _replace_sync_bn(value)


def prepare_runtime(cfg):
    """Adapt ``cfg`` to this machine before the Runner is built.

    * mmengine checkpoints (resume, ``load_from``) load with torch's ``weights_only`` loader;
    * ``load_from`` may name a training work dir: its best checkpoint (``resolve_checkpoint``);
    * a distributed launch creates its process group here, before any Runner: the plugin's
      runners communicate between the runs they chain;
    * ``--launcher pytorch`` without CUDA runs DDP on gloo: mmengine's own initialisation
      calls ``torch.cuda.set_device``, so the process group is created here, DDP gets no
      ``device_ids``, and SyncBN (CUDA-only) becomes BN.
    """
    allow_mmengine_checkpoints()
    if not cfg.get('resume'):
        cfg.load_from = resolve_checkpoint(cfg.get('load_from'))
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none':
        return
    if torch.cuda.is_available() or launcher != 'pytorch':
        if not torch_dist.is_initialized():  # before the Runner: sequences of runs communicate between runs
            init_dist(launcher, **cfg.get('env_cfg', {}).get('dist_cfg', {}))
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    _replace_sync_bn(cfg.get('model'))
