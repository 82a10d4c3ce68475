"""Jobs built on the `stablematerials` library (batch generation); entry points only, no model logic."""
