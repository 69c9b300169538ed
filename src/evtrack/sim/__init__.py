"""Event-camera simulation: ESIM/v2e-style event generation and procedural tracking datasets.

- :mod:`evtrack.sim.esim`: ``SensorConfig`` and ``EventSimulator`` (frames in, events out; Numba).
- :mod:`evtrack.sim.noise`: background activity and hot pixels.
- :mod:`evtrack.sim.scenes`, ``textures``, ``trajectories``: procedural scenes with exact boxes.
- :mod:`evtrack.sim.dataset`: ``make_dataset`` / ``write_sequence`` / ``make_sample_sequence``
  (FE108 layout); :mod:`evtrack.sim.convert` + ``video``: ``evtrack simulate`` for real videos.
- :mod:`evtrack.sim.preview`: event-frame previews with boxes; :mod:`evtrack.sim.reference`:
  slow NumPy reference of the kernel.

Submodules are imported on demand (this package import stays light).
"""
