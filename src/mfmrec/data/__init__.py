"""Data layer: importers, the on-disk format, splits, negatives and the demo dataset."""

from mfmrec.data.dataset import Candidates, Dataset, load_dataset
from mfmrec.data.raw import RawDataset
from mfmrec.data.writer import write_dataset

__all__ = ["Candidates", "Dataset", "RawDataset", "load_dataset", "write_dataset"]
