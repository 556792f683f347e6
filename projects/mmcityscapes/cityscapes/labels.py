"""Cityscapes id arithmetic, in one place: label ids, train ids, instance ids and class indices.

An ``*_instanceIds.png`` pixel is ``label id * 1000 + instance index`` for an individually
annotated object, and the plain label id elsewhere (stuff, and crowd regions of thing classes).
"""
from typing import List, Sequence, Union

import numpy as np
from cityscapesscripts.helpers.labels import id2label, labels, name2label

INSTANCE_OFFSET = 1000
NUM_LABEL_IDS = max(label.id for label in labels) + 1

NUM_TRAIN_IDS = 1 + max(label.trainId for label in labels if 0 <= label.trainId < 255)  # 19
LAST_VOID_ID = max(label.id for label in labels if label.id >= 0 and label.category == 'void')  # 0..6 are void

TRAIN_ID_OF_LABEL = np.full(256, 255, np.uint8)  # label id -> train id (255: ignored)
for _label in labels:
    if 0 <= _label.id < 256:
        TRAIN_ID_OF_LABEL[_label.id] = _label.trainId if 0 <= _label.trainId < 255 else 255


def label_id(instance_id: Union[int, np.ndarray]) -> Union[int, np.ndarray]:
    """The label id of an ``*_instanceIds.png`` value (array or scalar)."""
    if np.isscalar(instance_id):
        instance_id = int(instance_id)
        return instance_id // INSTANCE_OFFSET if instance_id >= INSTANCE_OFFSET else instance_id
    return np.where(instance_id >= INSTANCE_OFFSET, instance_id // INSTANCE_OFFSET, instance_id)


def is_instance(instance_id: Union[int, np.ndarray]) -> Union[bool, np.ndarray]:
    """Whether an ``*_instanceIds.png`` value is an individually annotated object (not a crowd or stuff)."""
    return instance_id >= INSTANCE_OFFSET


def label_name(instance_id: int) -> str:
    """The class name of an ``*_instanceIds.png`` value (KeyError for an unknown label id)."""
    return id2label[label_id(instance_id)].name


def class_indices(classes: Sequence[str]) -> np.ndarray:
    """Lookup table: Cityscapes label id -> index in ``classes`` (names), 255 for the others."""
    lut = np.full(256, 255, np.uint8)
    for i, label in id2label.items():
        if 0 <= i < 256 and label.name in classes:
            lut[i] = classes.index(label.name)
    return lut


def label_ids_of(classes: Sequence[str]) -> List[int]:
    """The Cityscapes label id of each class name (KeyError for a name Cityscapes lacks)."""
    return [name2label[name].id for name in classes]


def looks_like_train_ids(label_ids: np.ndarray) -> bool:
    """Whether a label-id image (a prediction) rather holds train ids: apart from 255 (ignored in
    train ids) no value above 18, and most pixels on ids 0..6, which are void as label ids (no
    model predicts them) and road..traffic light as train ids."""
    values = label_ids[label_ids != 255]
    return values.size > 0 and int(values.max()) < NUM_TRAIN_IDS and \
        np.count_nonzero(values <= LAST_VOID_ID) > values.size / 2
