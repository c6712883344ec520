"""The one thing pyproject.toml cannot say: the top-level recipes/ folder ships inside the wheel as
``affect_rl/recipes`` (one package per recipe folder, found as they are added), so that
``pip install affect-rl`` then ``affect-rl demo`` works without a clone. Everything else about the
package is in pyproject.toml; ``affect_rl.recipe_path`` finds the recipes in a wheel or a checkout.
"""

from setuptools import find_namespace_packages, setup

RECIPE_PACKAGES = ["affect_rl.recipes", *(f"affect_rl.recipes.{name}" for name in find_namespace_packages("recipes"))]

setup(
    packages=find_namespace_packages(include=["affect_rl", "affect_rl.*", "rewards", "rewards.*"]) + RECIPE_PACKAGES,
    package_dir={"affect_rl.recipes": "recipes"},
)
