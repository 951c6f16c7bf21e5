"""Built-in renderer plugins: ``sh_rasterizer`` (the renderer) and ``sh`` (its default shader).

Both run the functional renderer of `facerep.geometry.render`; a recipe's ``renderer.shader`` names any
registered shader.
"""
