"""`python -m pytest_convnextpose ...` runs the `convnextpose` command line."""
from .cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
