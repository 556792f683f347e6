"""Say in one line which tensors of the model ``load_from`` left at their initialisation."""
import re

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from mmcityscapes.utils.checkpoint import unfitting_tensors
from mmcityscapes.utils.model import unwrap_model


@HOOKS.register_module()
class LoadReportHook(Hook):
    """After a checkpoint is loaded into the model, log one line if some tensors did not come
    from it: how many had another shape (an 80-class COCO checkpoint's class heads in a
    Cityscapes model: the usual fine-tuning) or were absent, and the modules they belong to.
    mmengine loads the rest and lists each such tensor in its own warning.
    """

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        model = unwrap_model(runner.model)
        state = checkpoint.get('state_dict', checkpoint)
        state = {re.sub(r'^module\.', '', key): value for key, value in state.items()}
        missing, shaped = unfitting_tensors(model.state_dict(), state)
        if not missing and not shaped:
            return
        modules = sorted({'.'.join(key.split('.')[:-1][:3]) for key in missing + shaped})
        shown = ', '.join(modules[:6]) + (f' and {len(modules) - 6} more' if len(modules) > 6 else '')
        parts = [f'{len(shaped)} had another shape'] if shaped else []
        parts += [f'{len(missing)} were not in it'] if missing else []
        runner.logger.warning(f'LoadReportHook: {len(missing) + len(shaped)} tensors keep their initialisation '
                              f'({", ".join(parts)}): {shown}')
