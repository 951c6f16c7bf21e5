"""Pure geometry functions shared by plugins: camera, SH lighting, normals, rasterisation, mesh hierarchy."""
