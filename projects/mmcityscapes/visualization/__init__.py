from .overlay import OverlayHook, overlay_panels

__all__ = ['OverlayHook', 'overlay_panels']
