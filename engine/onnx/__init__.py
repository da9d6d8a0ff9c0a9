"""ONNX in and out: reading a file with its weights held once (load, wire, tensors, limits,
checks, legacy), folding its shape subgraphs (fold), mapping its nodes to layers (importer,
registry and its rule modules, nodes, scopes), writing a network back (export), and running it
with onnxruntime (runner, opaque nodes, verify)."""
