"""`envcheck cluster`: the pre-flight of a whole torchrun job, run inside it on every rank.

Each rank probes itself, the facts travel to rank 0 over torch.distributed, and rank 0 compares them
(consistency.py, timing.py), checks the collectives (collectives.py, bandwidth.py) and reports. torch is
imported only inside the functions that run collectives; the facts and checks import none.
"""
