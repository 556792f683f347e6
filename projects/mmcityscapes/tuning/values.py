"""The tuned values of stage 2: what they are in a config, and the files that carry them.

The files are variables-only configs in the form of ``configs/_base_/tuned/{anchors,hyperparams}.py``
(which ``configs/maskrcnn_stage2.py`` inherits), so a tuned set can be copied there on purpose.
"""

from mmengine.config import Config

from mmcityscapes.common.io import write_text
from mmcityscapes.utils.config import load_config

FPN_FLOW = {'trainable': 1.0, 'reduced': 0.1, 'frozen': 0.0}  # FPN gradient flow -> lr multiplier
COMMENTS = dict(
    anchor_scales='octave scales of the anchors per FPN level (strides 4-64)',
    anchor_ratios='anchor aspect ratios h/w',
    rcnn_fg_iou_thr='RoI head: foreground if IoU >= this, background otherwise',
    rpn_pos_iou_thr='RPN: positive anchor if IoU >= this',
    rpn_neg_iou_thr='RPN: negative anchor if IoU < this',
    fpn_lr_mult='FPN gradient flow: 1.0 trainable, 0.1 reduced lr, 0.0 frozen')


def apply_tuned(cfg: Config, values: dict) -> Config:
    """Set the given tuned values (any of ``COMMENTS``' keys) in a Mask R-CNN config."""
    model = cfg.model
    if 'anchor_scales' in values:
        model.rpn_head.anchor_generator.update(scales=values['anchor_scales'], ratios=values['anchor_ratios'])
    if 'rpn_pos_iou_thr' in values:
        model.train_cfg.rpn.assigner.update(pos_iou_thr=values['rpn_pos_iou_thr'],
                                            neg_iou_thr=values['rpn_neg_iou_thr'])
    if 'rcnn_fg_iou_thr' in values:
        fg = values['rcnn_fg_iou_thr']
        model.train_cfg.rcnn.assigner.update(pos_iou_thr=fg, neg_iou_thr=fg, min_pos_iou=fg)
    if 'fpn_lr_mult' in values:
        mult = values['fpn_lr_mult']
        cfg.optim_wrapper.setdefault('paramwise_cfg', {}).setdefault('custom_keys', {})['neck'] = dict(
            lr_mult=mult, decay_mult=mult)
    return cfg


def tuned_values(cfg: Config) -> dict:
    """The values ``apply_tuned`` sets, as a config holds them."""
    model = cfg.model
    neck = cfg.optim_wrapper.get('paramwise_cfg', {}).get('custom_keys', {}).get('neck', {})
    return dict(anchor_scales=list(model.rpn_head.anchor_generator.scales),
                anchor_ratios=list(model.rpn_head.anchor_generator.ratios),
                rcnn_fg_iou_thr=model.train_cfg.rcnn.assigner.pos_iou_thr,
                rpn_pos_iou_thr=model.train_cfg.rpn.assigner.pos_iou_thr,
                rpn_neg_iou_thr=model.train_cfg.rpn.assigner.neg_iou_thr,
                fpn_lr_mult=neck.get('lr_mult', 1.0))


def write_tuned(values: dict, path: str, note: str) -> bool:
    """Write ``values`` as a variables-only config, ``note`` as its header comment."""
    lines = [f'# {line}' for line in note.splitlines()]
    lines += [f'{key} = {value!r}  # {COMMENTS[key]}' for key, value in values.items()]
    return write_text('\n'.join(lines) + '\n', path)


def read_tuned(path: str) -> dict:
    """The tuned values a file of ``write_tuned`` holds."""
    cfg = load_config(path)
    return {key: cfg[key] for key in COMMENTS if key in cfg}
