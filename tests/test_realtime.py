"""The real-time recipes (mmseg's BiSeNetV2, STDC1, DDRNet-23-slim, Fast-SCNN) and the U-Net
train, export to ONNX and quantize to int8 through the plugin's functions, on the generated
mini-Cityscapes."""
import os.path as osp

import pytest

from conftest import REPO, int8_logits_agreement

SMALL_UNET = {'train_dataloader.dataset.pipeline.2.scale': (512, 256),
              'train_dataloader.dataset.pipeline.3.crop_size': (128, 256),
              'test_dataloader.dataset.pipeline.1.scale': (512, 256), 'model.data_preprocessor.size': (128, 256),
              'model.backbone.init_cfg': None, 'train_dataloader.batch_size': 2, 'train_cfg.max_epochs': 1}
RECIPES = {name: (f'configs/mini/{name}_mini.py', {'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
                                                  'default_hooks.checkpoint.interval': 2})
           for name in ('bisenetv2_fcn', 'stdc1', 'ddrnet_23-slim', 'fast_scnn')}
RECIPES['unet_r34'] = ('configs/unet_r34.py', SMALL_UNET)


@pytest.mark.slow
@pytest.mark.parametrize('name', RECIPES)
def test_recipe_trains_exports_and_quantizes(name, mini_env, mini_root, tmp_path, monkeypatch):
    """A short training, the float32 export checked against PyTorch, the int8 export (calibrated
    on 4 training images) within 1 point of its mIoU and keeping its argmax where it is not a
    near-tie."""
    import glob

    from mmengine.runner import Runner

    from mmcityscapes.deployment.export import export
    from mmcityscapes.deployment.quantize import quantize
    from mmcityscapes.engine.runner.runtime import prepare_runtime
    from mmcityscapes.utils.checkpoint import Checkpoint
    from mmcityscapes.utils.config import load_config
    from mmcityscapes.utils.manifest import read_export
    monkeypatch.setenv('CITYSCAPES_ROOT', mini_env['CITYSCAPES_ROOT'])
    config, options = RECIPES[name]
    cfg = load_config(osp.join(REPO, config), options)
    cfg.work_dir = str(tmp_path / 'train')
    prepare_runtime(cfg)
    Runner.from_cfg(cfg).train()
    checkpoint = sorted(glob.glob(f'{tmp_path}/train/*.pth'))[-1]
    cfg = load_config(osp.join(REPO, config), options)
    export(cfg, Checkpoint.read(checkpoint), str(tmp_path / 'float32'), output='logits')  # int8 logits compared below
    manifest = quantize(cfg, str(tmp_path / 'float32'), str(tmp_path / 'int8'), calib_images=4)
    assert manifest['precision'] == 'int8' and manifest['check']['accuracy']['mIoU']['drop'] <= 1.0
    assert read_export(str(tmp_path / 'int8'))[1] == manifest
    agreement, error = int8_logits_agreement(tmp_path / 'float32', tmp_path / 'int8', mini_root)
    assert agreement >= 0.98 and error <= 0.1, (agreement, error)
