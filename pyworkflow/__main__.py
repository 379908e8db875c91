"""``python -m pyworkflow``: the command line."""

from pyworkflow.cli import main

if __name__ == "__main__":
    main(prog_name="pyworkflow")
