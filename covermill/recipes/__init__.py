"""Recipes: the YAML format producers write, validated once at the edge.

:func:`load_recipe` takes a built-in name (``pop_to_jazz``) or a file path and returns a
frozen :class:`Recipe`; every later stage trusts it.
"""

from .loader import builtin_names, describe, load_recipe, new_recipe_text, recipe_root, recipe_to_yaml
from .schema import Effect, Key, Master, Recipe, Revoice, Stem, Tempo

__all__ = [
    "Effect", "Key", "Master", "Recipe", "Revoice", "Stem", "Tempo",
    "builtin_names", "describe", "load_recipe", "new_recipe_text", "recipe_root", "recipe_to_yaml",
]
