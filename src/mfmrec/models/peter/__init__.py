"""PETER (Li et al., ACL 2021): a personalized Transformer that explains recommendations.

``model.py`` holds the model, its config and the two registered builds (``peter`` and
``peter+``, which also reads the review's feature word); ``vocab.py`` the word vocabulary
rebuilt deterministically from the training explanations.
"""

from mfmrec.models.peter.model import PETER, PETERConfig, build_peter, build_peter_plus

__all__ = ["PETER", "PETERConfig", "build_peter", "build_peter_plus"]
