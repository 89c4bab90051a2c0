"""Item features: image/text encoders, image ingestion, extraction and the feature store.

The store API is imported here; encoders load lazily (``build_encoder``) so importing
the package does not import transformers.
"""

from mfmrec.features.store import (
    FeatureStore,
    MissingAwareFeatures,
    layers_name,
    list_features,
    load_features,
    save_features,
)

__all__ = ["FeatureStore", "MissingAwareFeatures", "layers_name", "list_features",
           "load_features", "save_features"]
