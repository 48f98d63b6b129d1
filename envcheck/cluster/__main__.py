"""`python -m envcheck.cluster`: what torchrun, srun or a PyTorchJob starts on every rank."""

import sys

from envcheck.cluster.main import main

# Guarded, unlike envcheck/__main__.py: tools that import every module (benchmarks/fuzz_harness.py) must not start a
# rank with their own argv.
if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
