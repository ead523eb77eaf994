"""Built-in trainer for MIM models and their defended variants (`python -m zoo.train --recipe NAME`)."""
from .recipes import Recipe, StageConfig, get_recipe, list_recipes, register_recipe

__all__ = ["Recipe", "StageConfig", "get_recipe", "list_recipes", "register_recipe"]
