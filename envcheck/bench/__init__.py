"""`envcheck bench`: train a CIFAR-10 network, check its numbers against float64, time it, compare with references.

torch is imported inside functions only; progress leaves this package through a callback, never through render.
"""
