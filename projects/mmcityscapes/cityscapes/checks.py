"""Checks of a Cityscapes root before anything is written or built (the converter's, and the
pre-flight of every tool that reads a dataset): image sizes against their annotations from the
PNG headers, polygons cityscapesscripts can draw, label ids Cityscapes has."""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from cityscapesscripts.helpers.labels import labels, name2label

from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import png_size, read_json, read_png

LABEL_IDS = np.zeros(256, bool)  # the values a *_labelIds.png may hold
LABEL_IDS[[label.id for label in labels if 0 <= label.id < 256]] = True

Size = Tuple[int, int]


def size_mismatches(pairs: Sequence[Tuple[str, Union[str, Size]]]) -> List[Tuple[str, Size, str, Size]]:
    """``(image, its size, annotation, its size)`` of every ``(image, annotation PNG or (width,
    height))`` pair whose sizes differ, from the PNG headers (no decoding); images and
    annotations that are not PNG files are left out."""
    found = []
    for image, annotation in pairs:
        image_size = png_size(image)
        annotation_size = tuple(annotation) if isinstance(annotation, (tuple, list)) else png_size(annotation)
        if image_size and annotation_size and image_size != annotation_size:
            found.append((image, image_size, annotation if isinstance(annotation, str) else 'its annotation',
                          annotation_size))
    return found


def check_sizes(pairs: Sequence[Tuple[str, Union[str, Size]]], where: str) -> None:
    """Stop with one line (count, one image, both sizes) if an image differs in size from its
    annotation: Mask R-CNN would train on misplaced boxes (NaN losses), the semantic models on
    misaligned pairs, and testing would fail on them."""
    found = size_mismatches(pairs)
    if found:
        image, (w, h), annotation, (aw, ah) = found[0]
        images, total = len({item[0] for item in found}), len({image for image, _ in pairs})
        raise UserError(f'{where}: {images} of {total} images differ in size from their annotations (e.g. '
                        f'{image} is {w}x{h}, {annotation} {aw}x{ah}): replace them or remove their annotations')


def polygon_problem(json_path: str) -> Optional[str]:
    """Why a ``*_polygons.json`` cannot be drawn by cityscapesscripts (not a polygon file, an
    unknown label, an object whose polygon has fewer than 2 points), or None."""
    payload = read_json(json_path)
    for key in ('imgHeight', 'imgWidth', 'objects'):
        if key not in payload:
            return f'{json_path}: not a Cityscapes polygon file (no "{key}")'
    for i, obj in enumerate(payload['objects']):
        label = obj.get('label')
        base = label[:-len('group')] if label not in name2label and str(label).endswith('group') else label
        if base not in name2label:
            return f'{json_path}: object {i} has the unknown label {label!r}'
        points = len(obj.get('polygon') or [])
        if points < 2 and not obj.get('deleted') and name2label[base].id >= 0:
            return (f'{json_path}: object {i} ({label}) has a polygon of {points} point{"s" * (points != 1)}, '
                    'which cityscapesscripts cannot draw')
    return None


def unknown_label_ids(label_ids_png: str) -> Tuple[int, int]:
    """(pixels whose value is no Cityscapes label id, one such value; 0 if none) of a
    ``*_labelIds.png``."""
    image = read_png(label_ids_png)
    if image.ndim != 2:
        raise UserError(f'{label_ids_png}: expected a single-channel label-id PNG')
    unknown = ~LABEL_IDS[image] if image.dtype == np.uint8 else (image > 255) | ~LABEL_IDS[np.minimum(image, 255)]
    pixels = int(np.count_nonzero(unknown))
    return pixels, int(image[unknown][0]) if pixels else 0
