"""`python -m axolotl_nextai.recipe_check`, the path users type; the code is in checks/recipe_check.py."""

from axolotl_nextai.checks.recipe_check import main

if __name__ == "__main__":
    main()
