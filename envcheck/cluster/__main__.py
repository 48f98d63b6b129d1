"""`python -m envcheck.cluster`: what torchrun, srun or a PyTorchJob starts on every rank."""

import sys

from envcheck.cluster.main import main

sys.exit(main(sys.argv[1:]))
