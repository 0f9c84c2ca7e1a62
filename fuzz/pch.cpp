// Owns the precompiled header the fuzz targets share (pch.hpp).
