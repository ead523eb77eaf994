"""mimbench model zoo: MIM models and their classifiers, built as the authors' code builds them."""
__version__ = "0.1.0"

from .bundle import ModelBundle, load_model
from .checkpoints import CheckpointError, MissingCheckpointError, load_checkpoint
from .models import MIMOutput, build
from .registry import ModelCard, get_card, list_models

__all__ = ["CheckpointError", "MIMOutput", "MissingCheckpointError", "ModelBundle", "ModelCard", "build",
           "get_card", "list_models", "load_checkpoint", "load_model", "__version__"]
