"""``python -m facerep`` (also what ``torchrun -m facerep run RECIPE`` starts)."""

from facerep.cli.app import main

if __name__ == "__main__":
    main()
