"""Checks that a config builds, before the work dir is made.

The model's constructors and the dataloaders' sizes take the config's values, the hooks take their
arguments; otherwise one line naming the config key, with the closest name for a misspelt one."""
import copy
import difflib
import inspect
import re
from functools import reduce
from typing import Any, Callable, Optional

from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS, MODELS, DefaultScope, Registry
from mmengine.runner import Runner

from mmcityscapes.common.errors import UserError


def check_buildable(cfg: Config) -> None:
    """Stop with one line naming the config key if the dataloaders' sizes are not numbers they
    take, or the model's constructors refuse the config (a misspelt argument, with the closest
    one they take; an unknown type; a value out of range): the model is built once here, before
    the work dir is made, instead of failing in a traceback once the Runner builds it."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader') or {}
        for key, least in (('batch_size', 1), ('num_workers', 0)):
            value = loader.get(key, least)
            if not isinstance(value, int) or value < least:
                raise UserError(f'{split}_dataloader.{key}={value!r}: must be a whole number of at least {least}')
    if 'model' not in cfg:
        return
    try:
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
            MODELS.build(copy.deepcopy(cfg.model))  # mmseg's builders edit their config
    except (TypeError, ValueError, KeyError, AssertionError) as e:
        with MODELS.switch_scope_and_registry(cfg.get('default_scope')) as registry:
            raise UserError(build_error(cfg.model, e, registry)) from None


def build_error(model_cfg: dict, error: Exception, registry: Registry) -> str:
    """One line for an exception a model constructor raised: for an argument it does not take or
    an unknown type, the config key and the closest name ``registry`` or the class takes."""
    text = str(error.args[0] if isinstance(error, KeyError) and error.args else error).strip()  # KeyError quotes it
    message = text.splitlines()[0] if text else type(error).__name__
    argument = re.search(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'", message)
    unknown = re.search(r'^(\S+) is not in the (\S+) registry', message)
    if argument and (path := config_path_of(model_cfg, lambda node: argument.group(2) in node, 'model')):
        owner = reduce(lambda node, key: node[int(key)] if isinstance(node, list) else node[key],
                       path.split('.')[1:], model_cfg)
        cls = registry.get(owner['type']) if isinstance(owner.get('type'), str) else owner.get('type')
        taken = {name for klass in inspect.getmro(cls) if klass is not object
                 for name in inspect.signature(klass.__init__).parameters} - {'self', 'args', 'kwargs'}
        closest = difflib.get_close_matches(argument.group(2), taken, n=1)
        hint = f'; did you mean {path}.{closest[0]}?' if closest else ''
        return f'{path}.{argument.group(2)}: {argument.group(1)} takes no argument {argument.group(2)!r}{hint}'
    if unknown and (path := config_path_of(model_cfg, lambda node: node.get('type') == unknown.group(1), 'model')):
        closest = difflib.get_close_matches(unknown.group(1), list(registry.module_dict), n=1)
        hint = f'; did you mean {closest[0]}?' if closest else ''
        return f'{path}.type: {unknown.group(1)!r} is no type of the {unknown.group(2)} registry{hint}'
    return f'model: {message}'


def config_path_of(node: Any, holds: Callable[[dict], bool], prefix: str) -> Optional[str]:
    """The dotted path of the first dict under ``node`` (itself included) for which ``holds`` is true."""
    if isinstance(node, dict):
        if holds(node):
            return prefix
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return None
    return next((path for k, v in items if (path := config_path_of(v, holds, f'{prefix}.{k}'))), None)


def check_hook_arguments(cfg: Config) -> None:
    """Stop with one line on a hook argument the hook does not take, before training starts
    (mmengine's CheckpointHook hands unknown ones to ``Runner.save_checkpoint``, which fails at
    the first checkpoint)."""
    hooks = [(f'default_hooks.{name}', hook) for name, hook in (cfg.get('default_hooks') or {}).items()]
    hooks += [(f'custom_hooks[{i}]', hook) for i, hook in enumerate(cfg.get('custom_hooks') or [])]
    with HOOKS.switch_scope_and_registry(cfg.get('default_scope')) as registry:
        for where, hook in hooks:
            if not isinstance(hook, dict):  # None disables a default hook; a built hook is checked by Python
                continue
            hook_class = hook['type'] if inspect.isclass(hook['type']) else registry.get(hook['type'])
            if hook_class is None:
                raise UserError(f'{where}: unknown hook type {hook["type"]!r}')
            parameters = inspect.signature(hook_class).parameters
            accepted = {'type', 'priority', '_scope_'} | {name for name, p in parameters.items() if p.kind not in (
                p.VAR_POSITIONAL, p.VAR_KEYWORD)}
            if issubclass(hook_class, CheckpointHook):
                accepted |= set(inspect.signature(Runner.save_checkpoint).parameters) - {'self'}
            elif any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
                continue  # passes its extra arguments on, e.g. EMAHook to its averaged model
            for key in hook:
                if key not in accepted:
                    closest = difflib.get_close_matches(key, accepted, n=1)
                    hint = f'; did you mean {closest[0]}?' if closest else ''
                    raise UserError(f'{where}: {hook_class.__name__} takes no argument {key!r}{hint}')
