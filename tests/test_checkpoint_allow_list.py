"""The weights_only allow-list accepts mmengine's message hub and nothing more."""
import io
import pickle

import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmcityscapes.components  # noqa: F401  (installs the allow-list)


def roundtrip(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer)  # weights_only=True, torch's default


def test_message_hub_state_loads():
    hub = MessageHub('allow_list_test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', 0.25)
    state = roundtrip({'message_hub': hub.state_dict()})['message_hub']
    buffer = state['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.mean() == pytest.approx(0.375)


class GetattrPayload:
    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)


def test_getattr_is_limited_to_history_buffer_statistics():
    assert roundtrip(GetattrPayload(HistoryBuffer, 'mean')) is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='not allowed'):
        roundtrip(GetattrPayload(HistoryBuffer, '__init__'))
