"""Datasets: cards (what a dataset is), data roots (where its images are), and resolving names to image lists.

    from sr_bench.data import resolve_dataset
    ds = resolve_dataset("set5")          # a card name or alias, "demo", or a folder of images
    for item in ds.items: hr = item.load()
"""

from sr_bench.data.cards import CardFile, DatasetCard, find_card, load_cards
from sr_bench.data.items import Dataset, ImageItem
from sr_bench.data.resolve import DatasetStatus, list_datasets, resolve_dataset
from sr_bench.data.roots import resolve_root

__all__ = [
    "CardFile", "Dataset", "DatasetCard", "DatasetStatus", "ImageItem", "find_card", "list_datasets", "load_cards",
    "resolve_dataset", "resolve_root",
]
