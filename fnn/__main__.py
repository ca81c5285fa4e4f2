"""``python -m fnn``: the same as the ``fnn`` command."""

from fnn.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
