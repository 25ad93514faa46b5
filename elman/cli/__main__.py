"""``python -m elman.cli`` (what ``torchrun -m elman.cli`` runs) and the ``elman`` console
script: huge pages for torch's CPU allocator (``elman.use_huge_pages``), then the command."""

import sys

from elman import use_huge_pages


def main() -> int:
    use_huge_pages()  # before the command's first tensor: torch reads it once, at that point
    from elman.cli import main as command

    return command()


if __name__ == "__main__":
    sys.exit(main())
