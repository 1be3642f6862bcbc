"""Framework integrations; each module imports its framework only when it is imported.

- :mod:`wattprint.integrations.transformers`: ``WattprintCallback`` for a Hugging Face
  ``Trainer``.
- :mod:`wattprint.integrations.lightning`: ``WattprintCallback`` for a PyTorch Lightning
  ``Trainer``.
- :mod:`wattprint.integrations.mlflow`: ``MlflowLogger``, over MLflow's REST API (no
  ``mlflow`` import).
"""
