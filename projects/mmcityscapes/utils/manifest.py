"""``deploy.json``, the manifest of an export: written by ``deployment/``, read by model loading.

What a runtime needs to run an exported model without this repository's config, and the checks
that an export directory is complete and belongs to the config."""
import hashlib
import os.path as osp
from typing import Sequence, Tuple

from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import read_json

MANIFEST, MODEL = 'deploy.json', 'model.onnx'
FORMAT = 'mmcityscapes-deploy/1'
# What a semantic export takes: the normalised image (the default, as mmdeploy's) or the decoded one;
# and gives: the label map at the input size (the default where the config tests whole images, as
# mmdeploy's with_argmax) or the decode head's logits (which slide inference and TTA merge).
SEMANTIC_INPUTS = ('float32', 'uint8')
SEMANTIC_OUTPUTS = ('labels', 'logits')


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def is_export(path: str) -> bool:
    """Whether ``path`` names an export: its directory, its ``model.onnx`` or its ``deploy.json``."""
    return path.endswith(('.onnx', MANIFEST)) or osp.isfile(osp.join(path, MANIFEST))


def read_export(path: str) -> Tuple[str, dict]:
    """(directory, manifest) of the export ``path`` names, after checking that its model file is
    the one the manifest describes (a truncated or replaced ``model.onnx`` stops with one line)."""
    directory = path if osp.isdir(path) else osp.dirname(path) or '.'
    manifest_file = osp.join(directory, MANIFEST)
    if not osp.isfile(manifest_file):
        raise UserError(f'{directory} holds no {MANIFEST}: export a model there with tools/deployment/export.py')
    manifest = read_json(manifest_file)
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        raise UserError(f'{manifest_file} is not a {FORMAT} manifest')
    model = osp.join(directory, manifest['model'])
    if not osp.isfile(model):
        raise UserError(f'{model} is missing (named by {manifest_file})')
    if sha256(model) != manifest['model_sha256']:
        raise UserError(f'{model} is not the model {manifest_file} describes (truncated, corrupt or replaced): '
                        'export it again')
    return directory, manifest


def check_matches(manifest: dict, manifest_file: str, task: str, classes: Sequence[str], mean: Sequence[float],
                  std: Sequence[float], rgb: bool) -> None:
    """Stop unless the export was made for a model of this ``task``, ``classes`` and input
    normalisation (an ONNX model given with another config would score nonsense), with an input
    and an output the runtime models take."""
    input_ = manifest['input']
    found = [what for what, ok in (
        (f'task {manifest["task"]} (the config: {task})', manifest['task'] == task),
        ('other classes', list(manifest['classes']) == list(classes)),
        ('another input normalisation', (input_['mean'], input_['std'], input_['channels'] == 'RGB') ==
         (list(mean), list(std), rgb))) if not ok]
    if found:
        raise UserError(f'{manifest_file} was exported from another model than this config\'s: {found[0]}; '
                        f'its source config was {manifest["source"]["config"]}')
    kinds = input_.get('dtype'), manifest['output'].get('name')
    if task == 'semantic' and (kinds[0] not in SEMANTIC_INPUTS or kinds[1] not in SEMANTIC_OUTPUTS):
        raise UserError(f'{manifest_file} describes a {kinds[0]} input and a {kinds[1]} output; a semantic export '
                        f'takes {" or ".join(SEMANTIC_INPUTS)} and gives {" or ".join(SEMANTIC_OUTPUTS)}')
