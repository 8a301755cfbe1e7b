"""Training data: the simulator streamed on the fly and folder datasets.

Both produce the same example dictionaries (see :mod:`fluoro_training.data.examples`),
prepared with the runtime's own preprocessing.
"""
