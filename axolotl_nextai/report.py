"""`python -m axolotl_nextai.report`, the path users type; the code is in run/report.py."""

from axolotl_nextai.run.report import main

if __name__ == "__main__":
    main()
