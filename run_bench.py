#!/usr/bin/env python
"""mimbench entry point: `python run_bench.py --help`."""
import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
