"""fluoro_training: the offline training package (torch, MONAI).

Turns simulated or user-annotated fluoroscopy into the ONNX models that
``fluoro_perception`` serves. It imports the runtime's preprocessing so that training
and serving cannot drift; the runtime never imports this package.
"""

__version__ = "0.1.0"
