"""A weight-sharing supernet over a search space's kernel-size groups and expansion ratios."""

from .choices import LayerChoice, SuperLayer, SupernetSpec
from .extract import extract
from .network import Supernet

__all__ = ["LayerChoice", "SuperLayer", "Supernet", "SupernetSpec", "extract"]
