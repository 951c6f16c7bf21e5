"""Applications of a trained run (paper section 5.3): reconstruction of photos, expression transfer.

- `facerep.apps.model`: `FaceRep`, the object ``facerep.load(RUN)`` returns (encode / decode / render /
  reconstruct);
- `facerep.apps.export`: meshes (OBJ, textured OBJ, PLY), UV albedo textures, overlays;
- `facerep.apps.reconstruct`: ``facerep reconstruct``; `facerep.apps.transfer`: ``facerep transfer``.

Photos become network crops in `facerep.data.photos` (landmark sidecars, optional detection, aligned
crops), which the benchmarks share.
"""
