"""Pure geometry functions shared by plugins: camera, SH lighting and shading, normals, rasterisation, the
functional renderer (`render`: a rasteriser stage and a shader), mesh hierarchy, the procedural face and its
iBUG layout, the shape prior's scale."""
