"""cityscapesscripts' own evaluators run on files, the reference the project's evaluators are
compared with (``tools/analysis_tools/benchmark_eval.py``, the tests).

    python -m mmcityscapes.cityscapes.reference GT_INSTANCES_JSON EXPORT_JSON

runs the official instance-level evaluation as its own script does (``CITYSCAPES_DATASET``,
``CITYSCAPES_RESULTS``), its JSON writer made numpy-aware (``official_instance``).
"""
import copy
import json
import os.path as osp
import sys
from typing import Sequence

import numpy as np


def official_semantic(gt_files: Sequence[str], pred_dir: str) -> dict:
    """cityscapesscripts' evalPixelLevelSemanticLabeling result, quiet and without its JSON file."""
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as cs
    args = copy.copy(cs.args)
    args.predictionPath, args.predictionWalk = osp.abspath(pred_dir), None
    args.quiet, args.JSONOutput = True, False
    return cs.evaluateImgLists([cs.getPrediction(args, gt) for gt in gt_files], gt_files, args)


def same_scores(ours: dict, official: dict) -> bool:
    """Whether two pixel-level result dictionaries (in any key order: the official JSON export
    sorts its keys) hold the same confusion matrix and scores."""
    keys = ('classScores', 'classInstScores', 'categoryScores', 'categoryInstScores')
    flat = lambda r: [r[k][name] for k in keys for name in sorted(r[k])]  # noqa: E731
    return ours['confMatrix'] == official['confMatrix'] and np.allclose(
        flat(ours), flat(official), rtol=0, atol=1e-12, equal_nan=True)


def official_panoptic(gt_json: str, gt_folder: str, pred_json: str, pred_folder: str, result_file: str) -> dict:
    """cityscapesscripts' evalPanopticSemanticLabeling result (it runs a process per CPU and
    writes ``result_file``)."""
    import cityscapesscripts.evaluation.evalPanopticSemanticLabeling as cs
    return cs.evaluatePanoptic(gt_json, gt_folder, pred_json, pred_folder, result_file)


def same_panoptic_scores(ours: dict, official: dict) -> bool:
    """Whether two evalPanopticSemanticLabeling result dictionaries (the official JSON's category
    keys are strings) hold the same counts and the same PQ, SQ, RQ to 1e-12."""
    groups = ('All', 'Things', 'Stuff')
    per_class = lambda r: {str(k): v for k, v in r['per_class'].items()}  # noqa: E731
    if [ours[g]['n'] for g in groups] != [official[g]['n'] for g in groups] or \
            set(per_class(ours)) != set(per_class(official)):
        return False
    flat = lambda r: [r[g][k] for g in groups for k in ('pq', 'sq', 'rq')] + [  # noqa: E731
        v[k] for _, v in sorted(per_class(r).items()) for k in ('pq', 'sq', 'rq')]
    return np.allclose(flat(ours), flat(official), rtol=0, atol=1e-12)


def official_instance(gt_instances_file: str, export_file: str) -> None:
    """cityscapesscripts' evalInstanceLevelSemanticLabeling ``main()`` (its ground-truth cache in
    ``gt_instances_file``, its result in ``export_file``), with a JSON writer that takes numpy
    scalars: the script's own fails on numpy integers before it scores anything."""
    import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as cs
    from cityscapesscripts.helpers import csHelpers

    def write_json(content: dict, path: str) -> None:
        with open(path, 'w') as f:
            json.dump(content, f, default=lambda o: o.item() if isinstance(o, np.generic) else o.__dict__,
                      sort_keys=True, indent=4)
    cs.writeDict2JSON = csHelpers.writeDict2JSON = write_json
    cs.args.gtInstancesFile, cs.args.exportFile = gt_instances_file, export_file
    sys.argv = sys.argv[:1]  # the script parses no arguments of its own
    cs.main()


if __name__ == '__main__':
    official_instance(*sys.argv[1:3])
