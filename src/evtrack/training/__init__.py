"""Training the tracker network: pair sampling from annotated sequences, the loss and the loop.

``evtrack train`` drives :func:`evtrack.training.train.train`; nothing at inference imports this package.
"""
