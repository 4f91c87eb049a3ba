"""The `convnextpose` command line: `main.main` parses and dispatches, one module per subcommand.

`args` holds the argument types shared with the pytest plugin, `exit_codes` the one set of
exit codes, `batch` the many-files runner, `progress` the progress bars. Subcommand modules are
imported only when the parser is built, so `import pytest_convnextpose.cli` costs nothing.
"""
