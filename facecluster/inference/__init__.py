"""Models and images: decode a photo, detect, align, assess and embed its faces.

Only ``runtime`` imports onnxruntime, and only the detector, embedder and analyzer import it.
"""
