"""Cityscapes id arithmetic, in one place: label ids, train ids, instance ids and class indices.

An ``*_instanceIds.png`` pixel is ``label id * 1000 + instance index`` for an individually
annotated object, and the plain label id elsewhere (stuff, and crowd regions of thing classes).
"""
import numpy as np
from cityscapesscripts.helpers.labels import id2label, labels

INSTANCE_OFFSET = 1000
NUM_LABEL_IDS = max(label.id for label in labels) + 1

TRAIN_ID_OF_LABEL = np.full(256, 255, np.uint8)  # label id -> train id (255: ignored)
for _label in labels:
    if 0 <= _label.id < 256:
        TRAIN_ID_OF_LABEL[_label.id] = _label.trainId if 0 <= _label.trainId < 255 else 255


def label_id(instance_id):
    """The label id of an ``*_instanceIds.png`` value (array or scalar)."""
    if np.isscalar(instance_id):
        instance_id = int(instance_id)
        return instance_id // INSTANCE_OFFSET if instance_id >= INSTANCE_OFFSET else instance_id
    return np.where(instance_id >= INSTANCE_OFFSET, instance_id // INSTANCE_OFFSET, instance_id)


def is_instance(instance_id):
    """Whether an ``*_instanceIds.png`` value is an individually annotated object (not a crowd or stuff)."""
    return instance_id >= INSTANCE_OFFSET


def label_name(instance_id):
    """The class name of an ``*_instanceIds.png`` value (KeyError for an unknown label id)."""
    return id2label[label_id(instance_id)].name


def class_indices(classes):
    """Lookup table: Cityscapes label id -> index in ``classes`` (names), 255 for the others."""
    lut = np.full(256, 255, np.uint8)
    for i, label in id2label.items():
        if 0 <= i < 256 and label.name in classes:
            lut[i] = classes.index(label.name)
    return lut
