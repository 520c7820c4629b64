"""logwarden: tail logs, mine templates with Drain, score windows with ONNX models, alert with evidence."""

__version__ = "0.1.0"
