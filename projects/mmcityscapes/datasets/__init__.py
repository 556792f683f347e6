"""Dataset tools without torch: ``synthetic`` generates a mini Cityscapes in the official layout."""
