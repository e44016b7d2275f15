"""The package's version, in one small module that everything may import (the stores record it)."""

__version__ = "0.1.0"
