"""`python -m axolotl_nextai.real_model`, the path users type; the code is in models/real_model.py."""

from axolotl_nextai.models.real_model import main

if __name__ == "__main__":
    main()
