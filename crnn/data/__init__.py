"""Data for the readers: labelled sources, image decoding and caching, batches, augmentation."""
