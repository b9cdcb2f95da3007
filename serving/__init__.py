"""lastmile's prediction service: an MLflow-registered scikit-learn model behind FastAPI.

``create_app(Settings.from_env())`` builds the app; ``python -m serving --host 127.0.0.1 --port 8080`` runs it.
It depends on scikit-learn, on MLflow when it reads the registry (not when ``LASTMILE_SERVING_MODEL_DIR`` names
a downloaded version), on boto3 when it ships prediction samples (``LASTMILE_SERVING_SAMPLES_URI``), never on the
harness.
"""

from serving.app import create_app
from serving.settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError", "create_app"]
