"""Model families: what a config's model predicts and which of its results the evaluators score.

The family is semantic, instance or panoptic; MaskFormer-style models and the fusion of trained
models give several kinds of result."""
from typing import Sequence, Tuple

from mmengine.config import Config

from mmcityscapes.common.errors import UserError

FAMILIES = dict(mmseg='semantic', mmdet='instance')  # default scope -> model family
MASKFORMER_MODELS = ('Mask2Former', 'MaskFormer')  # their test_cfg turns each kind of result on
PANOPTIC_MODELS = ('PanopticFusion', 'PanopticFPN', *MASKFORMER_MODELS)  # mmdet models with panoptic results
# the results each evaluator scores
EVALUATED_TASK = dict(CityscapesPanopticMetric='panoptic', CityscapesInstanceMetric='instance',
                      ClasswiseCocoMetric='instance', SemSegMetric='semantic', IoUMetric='semantic',
                      SegmentationMetric='semantic')
SELF_LOADING_MODELS = ('PanopticFusion',)  # models whose config names the weights they load


def names_its_weights(cfg: Config) -> bool:
    """Whether the config's model loads its own weights (a fusion of trained models), so that
    testing it takes no checkpoint."""
    return cfg.model.get('type') in SELF_LOADING_MODELS


def model_family(cfg: Config) -> str:
    """``'semantic'`` (an mmseg config), ``'instance'`` or ``'panoptic'`` (an mmdet config whose
    model predicts panoptic results), by the default scope and the model type."""
    scope = cfg.get('default_scope')
    if scope not in FAMILIES:
        raise UserError(f'default_scope {scope!r}: expected one of {", ".join(FAMILIES)}')
    return 'panoptic' if scope == 'mmdet' and cfg.model.get('type') in PANOPTIC_MODELS else FAMILIES[scope]


def predicted_tasks(cfg: Config) -> Tuple[str, ...]:
    """The results a config's model gives at test time: its family's (``model_family``); a fusion
    of trained models also gives its parts' instance and semantic results, and a MaskFormer-style
    model those its ``test_cfg`` turns on (``panoptic_on``, ``instance_on``, ``semantic_on``; mmdet's
    own fusion head has no semantic inference: one line)."""
    family = model_family(cfg)
    model_type = cfg.model.get('type')
    if model_type == 'PanopticFusion':
        return 'panoptic', 'instance', 'semantic'
    if model_type not in MASKFORMER_MODELS:
        return (family,)
    test_cfg = cfg.model.get('test_cfg') or {}
    head = (cfg.model.get('panoptic_fusion_head') or {}).get('type')
    if test_cfg.get('semantic_on') and head == 'MaskFormerFusionHead':
        raise UserError("model.test_cfg.semantic_on: mmdet's MaskFormerFusionHead has no semantic inference; set "
                        "model.panoptic_fusion_head.type='MaskFormerSemanticFusionHead' (configs/"
                        'mask2former_r50_cityscapes_panoptic.py does)')
    return tuple(task for task, key, default in (('panoptic', 'panoptic_on', True), ('instance', 'instance_on', False),
                                                 ('semantic', 'semantic_on', False)) if test_cfg.get(key, default))


def check_evaluated_tasks(cfg: Config, splits: Sequence[str]) -> None:
    """Stop with one line when an evaluator of ``splits`` scores a result the model does not give
    (``predicted_tasks``): the evaluator would fail on the first batch, in a traceback."""
    if not cfg.get('model'):
        return
    predicted = None
    for split in splits:
        evaluators = cfg.get(f'{split}_evaluator') or []
        for evaluator in evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]:
            task = EVALUATED_TASK.get(str(evaluator.get('type')).split('.')[-1])
            predicted = predicted or predicted_tasks(cfg)
            if task and task not in predicted:
                hint = (f'set model.test_cfg.{task}_on=True' if cfg.model.get('type') in MASKFORMER_MODELS
                        else f'remove it from {split}_evaluator')
                raise UserError(f'{split}_evaluator: {evaluator["type"]} scores {task} results, which the model '
                                f'({cfg.model.get("type")}) does not give ({", ".join(predicted)} only): {hint}')
