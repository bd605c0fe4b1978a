"""numba kernels of geomon: plain functions over numpy arrays, no I/O, no Python objects.

Installed as ``geomon.kernels``; never import this folder as a bare ``kernels``.
"""
